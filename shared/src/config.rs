//! Configuration shared by every function: the AWS SDK configuration and the table name.
//!
//! DynamoDB is reached through the SDK's standard configuration, so `AWS_ENDPOINT_URL_DYNAMODB`
//! points every function (and the tests) at a local server with no code change.
//!
//! The functions build the SDK configuration from the environment Lambda gives them (region,
//! the execution role's credentials, endpoint overrides), not with `aws-config`: its default
//! chain (profiles, SSO, web identity and IMDS, through an STS client) is code a Lambda function
//! never runs, about 0.3 MB of each binary. Operators' tools (`tools/leadflow`) and the tests
//! keep `aws-config` and share [`sdk_timeouts`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use aws_types::SdkConfig;

/// Loads the SDK configuration once per cold start, from the environment.
pub async fn load_sdk_config() -> SdkConfig {
    sdk_config_from(
        std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }),
    )
}

/// The SDK configuration a function runs with, from the variables `var` reads:
/// - region: `AWS_REGION` (set by Lambda), else `AWS_DEFAULT_REGION`;
/// - credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, which Lambda
///   sets from the execution role for the sandbox's lifetime (and `sam local`/`cargo lambda`
///   pass through); without them requests fail with the SDK's "no credentials" error;
/// - endpoints: `AWS_ENDPOINT_URL_<SERVICE>` then `AWS_ENDPOINT_URL`, as the SDK's own
///   environment loader resolves them (DynamoDB Local, moto);
/// - `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`; standard retries (3 attempts, or
///   `AWS_MAX_ATTEMPTS`) and the bounded [`sdk_timeouts`].
pub fn sdk_config_from(vars: impl IntoIterator<Item = (String, String)>) -> SdkConfig {
    // A blank variable counts as unset: `sam local` gives a variable whose template value it
    // cannot resolve an empty value, and an empty endpoint would fail every request.
    let vars: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let set = |name: &str| vars.get(name).cloned();
    let flag = |name: &str| set(name).map(|v| v.trim().eq_ignore_ascii_case("true"));
    let attempts = set("AWS_MAX_ATTEMPTS")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| (1..=10).contains(n))
        .unwrap_or(3);
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(
            set("AWS_REGION")
                .or_else(|| set("AWS_DEFAULT_REGION"))
                .map(Region::new),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(attempts))
        .timeout_config(sdk_timeouts())
        .service_config(EnvEndpoints {
            by_service: vars
                .iter()
                .filter_map(|(name, url)| {
                    let service = name.strip_prefix("AWS_ENDPOINT_URL_")?;
                    Some((service.to_string(), url.clone()))
                })
                .collect(),
        });
    builder.set_use_fips(flag("AWS_USE_FIPS_ENDPOINT"));
    builder.set_use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"));
    builder.set_endpoint_url(set("AWS_ENDPOINT_URL"));
    if let (Some(key), Some(secret)) = (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY")) {
        let credentials = Credentials::new(key, secret, set("AWS_SESSION_TOKEN"), None, "env");
        builder.set_credentials_provider(Some(SharedCredentialsProvider::new(credentials)));
    }
    builder.build()
}

/// Timeouts every SDK client uses: bounded so a stalled connection surfaces as a 5xx (the
/// sender retries) well inside the function's own timeout.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// The service-specific endpoint overrides (`AWS_ENDPOINT_URL_DYNAMODB`...), read once: the SDK
/// asks for them by the service's id when each client is built.
#[derive(Debug)]
struct EnvEndpoints {
    /// By the variable's suffix: the service id in upper case, spaces as underscores
    /// (`SECRETS_MANAGER`), the SDK's own rule.
    by_service: BTreeMap<String, String>,
}

impl LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        // Only the endpoint is asked for this way; the global `AWS_ENDPOINT_URL` is the
        // SdkConfig's own endpoint_url, which the client falls back to.
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        let suffix = key.service_id().to_uppercase().replace(' ', "_");
        self.by_service.get(&suffix).cloned()
    }
}

/// For tools that load the SDK configuration with `aws-config` (the operators' CLI): a blank
/// `AWS_ENDPOINT_URL*` means unset. `sam local` gives a variable whose template value it
/// cannot resolve (template.yaml's `Fn::If` on `LocalDynamoDbEndpoint`) an empty value, and the
/// SDK takes an empty endpoint as given and panics on the first request ("URL was unset").
/// Runs once per cold start, on the main thread before the SDK (or any other thread) reads the
/// environment.
pub fn drop_blank_endpoint_overrides() {
    for name in blank_endpoint_overrides(std::env::vars_os()) {
        std::env::remove_var(&name);
    }
}

/// The `AWS_ENDPOINT_URL*` variables among `vars` whose value is blank.
fn blank_endpoint_overrides(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<OsString> {
    vars.into_iter()
        .filter(|(name, value)| {
            value.to_str().is_some_and(|v| v.trim().is_empty())
                && name
                    .to_str()
                    .is_some_and(|n| n.starts_with("AWS_ENDPOINT_URL"))
        })
        .map(|(name, _)| name)
        .collect()
}

/// Reads a required environment variable with an error that names it.
pub fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} must be set"))
}

/// The lead table's name (`TABLE_NAME`, set by template.yaml with `!Ref LeadsTable`).
pub fn table_name() -> Result<String, String> {
    required_env("TABLE_NAME")
}

/// An optional whole-number setting within `lo..=hi` (blank: unset), with an error naming it.
pub fn bounded_number(
    get: impl Fn(&str) -> Option<String>,
    name: &str,
    lo: u64,
    hi: u64,
) -> Result<Option<u64>, String> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|x| (lo..=hi).contains(x))
            .map(Some)
            .ok_or_else(|| format!("{name} {v:?} must be a whole number from {lo} to {hi}")),
    }
}

/// Splits a comma-separated list variable, trimming blanks.
pub fn list_env(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> SdkConfig {
        sdk_config_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_sdk_configuration_comes_from_lambdas_environment() {
        let sdk = config(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_SQS", " "),
        ]);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert!(sdk.credentials_provider().is_some());
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(3));
        assert_eq!(sdk.endpoint_url(), None);
        // Asked the way each client's `From<&SdkConfig>` asks (service id + `AWS_ENDPOINT_URL`).
        let key = |id| {
            ServiceConfigKey::builder()
                .service_id(id)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        let endpoints = sdk.service_config().unwrap();
        assert_eq!(
            endpoints.load_config(key("DynamoDB")).as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(endpoints.load_config(key("EventBridge")), None);
        assert_eq!(
            endpoints.load_config(key("Secrets Manager")).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(endpoints.load_config(key("SQS")), None, "blank is unset");
    }

    #[test]
    fn without_lambdas_variables_the_defaults_hold() {
        let sdk = config(&[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_MAX_ATTEMPTS", "5"),
            ("AWS_ACCESS_KEY_ID", "only the key"),
        ]);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert!(
            sdk.credentials_provider().is_none(),
            "a key without its secret is no credential"
        );
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(5));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));
    }

    // Decided on the variables given, not on this process's environment: setting variables
    // in a multi-threaded test binary is a data race.
    #[test]
    fn blank_endpoint_overrides_are_unset_and_others_kept() {
        let vars = [
            ("AWS_ENDPOINT_URL_LEADFLOWTESTBLANK", " "),
            ("AWS_ENDPOINT_URL_LEADFLOWTESTSET", "http://127.0.0.1:8000"),
            ("OTHER_BLANK", ""),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(
            blank_endpoint_overrides(vars),
            [OsString::from("AWS_ENDPOINT_URL_LEADFLOWTESTBLANK")]
        );
    }
}
