//! Secrets that rotate: one AWS Secrets Manager secret (a JSON object whose keys are the
//! variable names the code already reads, `TYPEFORM_SECRET`, `LEAD_API_KEYS`, ...) named by
//! `SECRETS_ID`, read at cold start and cached. docs/secrets.md says why Secrets Manager and
//! how to rotate each value.
//!
//! - The cache is refreshed when it is older than [`MAX_AGE`] (checked on use, so an idle
//!   function makes no requests), and at once when a caller saw a signature fail
//!   ([`Secrets::refresh_now`]), at most once per [`MIN_FORCED_INTERVAL`] so forged requests
//!   cannot turn into a request per call.
//! - Each fetch reads the `AWSCURRENT` and `AWSPREVIOUS` staging labels: during a rotation the
//!   previous value stays accepted ([`Snapshot::previous`]) until the next rotation moves it.
//! - A refresh that fails keeps the values in force (logged, retried after the forced
//!   interval); only the cold-start read is fatal (a function must not start without them).
//!
//! Without `SECRETS_ID` there is no secret: the values come from the environment as before
//! (local runs and tests).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use tokio::sync::Mutex;

/// The variable naming the secret (its ARN or name).
pub const SECRETS_ID: &str = "SECRETS_ID";
/// Age after which the cached values are fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// The shortest time between two forced refreshes (signature failures).
pub const MIN_FORCED_INTERVAL: Duration = Duration::from_secs(30);

const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";

/// Why the secret could not be read. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("reading secret {id} ({stage}): {reason}")]
    Fetch {
        id: String,
        stage: &'static str,
        reason: String,
    },
    #[error("writing secret {id}: {reason}")]
    Put { id: String, reason: String },
    #[error("secret {id} ({stage}) is not a JSON object of strings")]
    NotAnObject { id: String, stage: &'static str },
}

/// The values in force: `current` (AWSCURRENT) and `previous` (AWSPREVIOUS, empty when there
/// is none). `generation` changes whenever a fetch found different values, so holders of
/// derived configuration know when to rebuild it.
#[derive(Default, PartialEq, Eq)]
pub struct Snapshot {
    pub generation: u64,
    current: BTreeMap<String, String>,
    previous: BTreeMap<String, String>,
}

impl Snapshot {
    /// The current value of `name`, if the secret has it (blank counts as absent).
    pub fn current(&self, name: &str) -> Option<&str> {
        non_blank(self.current.get(name))
    }

    /// The previous value of `name` when it differs from the current one.
    pub fn previous(&self, name: &str) -> Option<&str> {
        non_blank(self.previous.get(name)).filter(|p| Some(*p) != self.current(name))
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only, never values.
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("current", &self.current.keys().collect::<Vec<_>>())
            .field("previous", &self.previous.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn non_blank(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The secret, cached. Shared by the function's state (`Arc`).
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
    id: String,
    max_age: Duration,
    min_forced_interval: Duration,
    cache: Mutex<Cache>,
    fetches: AtomicU64,
}

struct Cache {
    snapshot: Arc<Snapshot>,
    /// When the values were last fetched (or a fetch last failed).
    checked_at: Instant,
    forced_at: Option<Instant>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("id", &self.id).finish()
    }
}

impl Secrets {
    /// The secret named by `SECRETS_ID`, read now; `None` when the variable is unset (values
    /// then come from the environment).
    pub async fn from_env(sdk: &aws_types::SdkConfig) -> Result<Option<Arc<Secrets>>, String> {
        match std::env::var(SECRETS_ID)
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            None => Ok(None),
            Some(id) => {
                let client = aws_sdk_secretsmanager::Client::new(sdk);
                let secrets = Secrets::load(client, id.trim(), MAX_AGE, MIN_FORCED_INTERVAL)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Some(Arc::new(secrets)))
            }
        }
    }

    /// Reads the secret once (the cold start) with the given refresh intervals.
    pub async fn load(
        client: aws_sdk_secretsmanager::Client,
        id: &str,
        max_age: Duration,
        min_forced_interval: Duration,
    ) -> Result<Secrets, SecretsError> {
        let (current, previous) = fetch(&client, id).await?;
        Ok(Secrets {
            client,
            id: id.to_string(),
            max_age,
            min_forced_interval,
            cache: Mutex::new(Cache {
                snapshot: Arc::new(Snapshot {
                    generation: 1,
                    current,
                    previous,
                }),
                checked_at: Instant::now(),
                forced_at: None,
            }),
            fetches: AtomicU64::new(2),
        })
    }

    /// The values in force, fetched again first when older than the maximum age.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().await;
        if cache.checked_at.elapsed() >= self.max_age {
            self.refetch(&mut cache).await;
        }
        cache.snapshot.clone()
    }

    /// After a signature failure: fetches now unless a forced fetch happened within the
    /// minimum interval. The snapshot's generation tells whether anything changed.
    pub async fn refresh_now(&self) -> Arc<Snapshot> {
        let mut cache = self.cache.lock().await;
        let recent = cache
            .forced_at
            .is_some_and(|at| at.elapsed() < self.min_forced_interval);
        if !recent {
            cache.forced_at = Some(Instant::now());
            self.refetch(&mut cache).await;
        }
        cache.snapshot.clone()
    }

    /// Writes `updates` over the secret's current values as a new version: it becomes
    /// AWSCURRENT, and Secrets Manager moves AWSPREVIOUS to the version it replaces. Then the
    /// cache takes it. For values a function mints itself (a platform access token refreshed
    /// with its refresh token), so every instance and the next cold start use them.
    pub async fn update(&self, updates: &[(&str, &str)]) -> Result<Arc<Snapshot>, SecretsError> {
        let mut cache = self.cache.lock().await;
        // Read afresh, not from the cache: an operator may have changed another value since.
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut values = fetch_stage(&self.client, &self.id, CURRENT)
            .await?
            .unwrap_or_default();
        for (name, value) in updates {
            values.insert(name.to_string(), value.to_string());
        }
        let text = serde_json::to_string(&values).unwrap_or_default();
        self.client
            .put_secret_value()
            .secret_id(&self.id)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| SecretsError::Put {
                id: self.id.clone(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        self.refetch(&mut cache).await;
        Ok(cache.snapshot.clone())
    }

    /// `GetSecretValue` requests made so far (two per fetch), for tests and benchmarks.
    pub fn requests(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn refetch(&self, cache: &mut Cache) {
        self.fetches.fetch_add(2, Ordering::Relaxed);
        cache.checked_at = Instant::now();
        match fetch(&self.client, &self.id).await {
            Ok((current, previous)) => {
                let old = &cache.snapshot;
                if old.current != current || old.previous != previous {
                    tracing::info!(
                        generation = old.generation + 1,
                        "secret values changed (rotation picked up)"
                    );
                    cache.snapshot = Arc::new(Snapshot {
                        generation: old.generation + 1,
                        current,
                        previous,
                    });
                }
            }
            // The values in force stay; the next check is after the maximum age again.
            Err(e) => tracing::warn!(error = %e, "secret refresh failed; keeping cached values"),
        }
    }
}

type Values = BTreeMap<String, String>;

/// AWSCURRENT and AWSPREVIOUS (absent before the first rotation: empty).
async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<(Values, Values), SecretsError> {
    let current = fetch_stage(client, id, CURRENT).await?.unwrap_or_default();
    let previous = fetch_stage(client, id, PREVIOUS).await?.unwrap_or_default();
    Ok((current, previous))
}

async fn fetch_stage(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    stage: &'static str,
) -> Result<Option<Values>, SecretsError> {
    let answer = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await;
    let text = match answer {
        Ok(out) => out.secret_string.unwrap_or_default(),
        Err(e) => {
            let err = e.into_service_error();
            // No version carries the label (AWSPREVIOUS before the first rotation).
            if stage == PREVIOUS && matches!(err, GetSecretValueError::ResourceNotFoundException(_))
            {
                return Ok(None);
            }
            return Err(SecretsError::Fetch {
                id: id.to_string(),
                stage,
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string(),
            });
        }
    };
    parse_values(&text)
        .map(Some)
        .ok_or_else(|| SecretsError::NotAnObject {
            id: id.to_string(),
            stage,
        })
}

/// `{"NAME": "value", ...}`; an empty secret string is an empty object.
fn parse_values(text: &str) -> Option<Values> {
    if text.trim().is_empty() {
        return Some(Values::new());
    }
    serde_json::from_str::<Values>(text).ok()
}

/// What a function starts with: the secret (when `SECRETS_ID` names one) and its values as
/// read at cold start.
#[derive(Debug, Default)]
pub struct AtStart {
    pub secrets: Option<Arc<Secrets>>,
    snapshot: Option<Arc<Snapshot>>,
}

impl AtStart {
    /// Reads the secret named by `SECRETS_ID`, if any (a failure stops the cold start).
    pub async fn from_env(sdk: &aws_types::SdkConfig) -> Result<AtStart, String> {
        match Secrets::from_env(sdk).await? {
            None => Ok(AtStart::default()),
            Some(secrets) => Ok(AtStart::of(secrets).await),
        }
    }

    /// A secret already read (tests build theirs against a local Secrets Manager).
    pub async fn of(secrets: Arc<Secrets>) -> AtStart {
        let snapshot = secrets.snapshot().await;
        AtStart {
            secrets: Some(secrets),
            snapshot: Some(snapshot),
        }
    }

    /// The secret's values first, then the environment: what `from_lookup` reads.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        lookup(self.snapshot.as_deref(), |k| std::env::var(k).ok())
    }
}

/// A variable lookup over the secret (current values) and then the environment lookup `env`:
/// what a function's `from_lookup` reads at cold start.
pub fn lookup<'a>(
    snapshot: Option<&'a Snapshot>,
    env: impl Fn(&str) -> Option<String> + 'a,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        snapshot
            .and_then(|s| s.current(name))
            .map(str::to_string)
            .or_else(|| env(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(current: &[(&str, &str)], previous: &[(&str, &str)]) -> Snapshot {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Snapshot {
            generation: 1,
            current: map(current),
            previous: map(previous),
        }
    }

    #[test]
    fn previous_only_when_it_differs_and_blank_is_absent() {
        let s = snapshot(
            &[("A", "new"), ("B", "same"), ("C", " ")],
            &[("A", "old"), ("B", "same"), ("C", "old-c")],
        );
        assert_eq!(
            (s.current("A"), s.previous("A")),
            (Some("new"), Some("old"))
        );
        assert_eq!(s.previous("B"), None);
        assert_eq!((s.current("C"), s.previous("C")), (None, Some("old-c")));
        assert_eq!(s.current("D"), None);
    }

    #[test]
    fn the_secret_wins_over_the_environment_and_debug_shows_no_value() {
        let s = snapshot(&[("A", "from-secret")], &[]);
        let get = lookup(Some(&s), |k| (k != "X").then(|| format!("env-{k}")));
        assert_eq!(get("A").as_deref(), Some("from-secret"));
        assert_eq!(get("B").as_deref(), Some("env-B"));
        assert_eq!(get("X"), None);
        assert!(!format!("{s:?}").contains("from-secret"));
    }

    #[test]
    fn values_are_a_json_object_of_strings() {
        assert_eq!(parse_values("").unwrap().len(), 0);
        assert_eq!(parse_values(r#"{"A": "1"}"#).unwrap()["A"], "1");
        assert!(parse_values(r#"{"A": 1}"#).is_none());
        assert!(parse_values("plain").is_none());
    }
}
