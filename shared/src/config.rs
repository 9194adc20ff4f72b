//! Configuration shared by every function: the AWS SDK configuration and the table name.
//!
//! DynamoDB is reached through the SDK's standard configuration, so `AWS_ENDPOINT_URL_DYNAMODB`
//! points every function (and the tests) at a local server with no code change.

use std::ffi::OsString;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

/// Loads the SDK configuration once per cold start, from the environment.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    drop_blank_endpoint_overrides();
    sdk_loader().load().await
}

/// The SDK configuration every function uses, before the environment fills in the rest (tests
/// give endpoint, region and credentials explicitly instead). Timeouts are bounded so a
/// stalled connection surfaces as a 5xx (the sender retries) well inside the function's own
/// timeout.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(8))
            .build(),
    )
}

/// A blank `AWS_ENDPOINT_URL*` means unset. `sam local` gives a variable whose template value it
/// cannot resolve (template.yaml's `Fn::If` on `LocalDynamoDbEndpoint`) an empty value, and the
/// SDK takes an empty endpoint as given and panics on the first request ("URL was unset").
/// Runs once per cold start, on the main thread before the SDK (or any other thread) reads the
/// environment.
fn drop_blank_endpoint_overrides() {
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
