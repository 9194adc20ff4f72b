//! Configuration of the platforms: each provider declares the environment variables it reads
//! ([`Variable`], in its own module); [`ProvidersConfig`] reads exactly those, for every
//! provider of the registry, plus the settings every platform API call shares.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::PROVIDERS;

/// Whether a provider can work without a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Unset: the provider is not configured, and every request to it is 404.
    Required,
    /// Unset: a part of the provider is off (a handshake, a lead fetch) and says so when used.
    Optional,
}

/// What a variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A secret: never logged, `Debug` shows only whether it is set.
    Secret,
    /// A plain setting with its default (an API base URL, an API version).
    Setting { default: &'static str },
}

/// One environment variable a provider reads, declared once in the provider's module.
#[derive(Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// What it is and where the value comes from, for operators (`leadflow providers`).
    pub about: &'static str,
    pub need: Need,
    pub kind: Kind,
}

impl Variable {
    /// A secret the provider cannot work without.
    pub const fn required_secret(name: &'static str, about: &'static str) -> Variable {
        Variable {
            name,
            about,
            need: Need::Required,
            kind: Kind::Secret,
        }
    }

    /// A secret the provider can do without (some feature is off until it is set).
    pub const fn optional_secret(name: &'static str, about: &'static str) -> Variable {
        Variable {
            name,
            about,
            need: Need::Optional,
            kind: Kind::Secret,
        }
    }

    /// A setting with a default.
    pub const fn setting(
        name: &'static str,
        default: &'static str,
        about: &'static str,
    ) -> Variable {
        Variable {
            name,
            about,
            need: Need::Optional,
            kind: Kind::Setting { default },
        }
    }

    pub fn is_secret(&self) -> bool {
        self.kind == Kind::Secret
    }
}

/// Per-request timeout for platform API calls: Meta waits about 20 s for our answer, LinkedIn
/// 3 s for the challenge only.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(5);
/// Platform API calls of one batched delivery in flight at once.
pub const DEFAULT_API_CONCURRENCY: usize = 8;

/// The settings every platform API call shares (no provider owns them).
pub const PLATFORM_API_TIMEOUT_MS: Variable = Variable::setting(
    "PLATFORM_API_TIMEOUT_MS",
    "5000",
    "timeout of each platform API request (Meta Graph, LinkedIn), in milliseconds",
);

/// Settings shared by every provider, listed with the providers' own (`leadflow providers`).
pub const SHARED_VARIABLES: &[&Variable] = &[&PLATFORM_API_TIMEOUT_MS];

/// A configured secret. Empty or blank means "not configured". `Debug` says only whether it is
/// set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Option<String>);

impl Secret {
    pub fn new(value: Option<String>) -> Secret {
        Secret(
            value
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        )
    }

    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "<set>" } else { "<unset>" })
    }
}

/// The values of every declared variable, read once per cold start.
#[derive(Clone)]
pub struct ProvidersConfig {
    values: BTreeMap<&'static str, Secret>,
    /// A secret's previous value during a rotation (Secrets Manager's AWSPREVIOUS), accepted
    /// alongside the current one ([`ProvidersConfig::previous_secret`]).
    previous: BTreeMap<&'static str, Secret>,
    pub api_timeout: Duration,
    pub api_concurrency: usize,
}

impl ProvidersConfig {
    pub fn from_env() -> ProvidersConfig {
        ProvidersConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// The same from any variable source (tests pass a map). Only declared variables are read.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProvidersConfig {
        let values = PROVIDERS
            .iter()
            .flat_map(|p| p.variables())
            .map(|v| (v.name, Secret::new(get(v.name))))
            .collect();
        let api_timeout = get(PLATFORM_API_TIMEOUT_MS.name)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_API_TIMEOUT);
        ProvidersConfig {
            values,
            previous: BTreeMap::new(),
            api_timeout,
            api_concurrency: DEFAULT_API_CONCURRENCY,
        }
    }

    /// A secret's value when it is set.
    pub fn secret(&self, var: &Variable) -> Option<&str> {
        self.values.get(var.name).and_then(Secret::get)
    }

    /// The value a rotation replaced, while it is still accepted (differs from the current).
    pub fn previous_secret(&self, var: &Variable) -> Option<&str> {
        self.previous.get(var.name).and_then(Secret::get)
    }

    /// This configuration with the secret's values (leadflow::secrets) over it: each declared
    /// variable the secret holds takes its current value, and its previous one is kept.
    pub fn overlay(&self, snapshot: &leadflow::secrets::Snapshot) -> ProvidersConfig {
        let mut next = self.clone();
        for var in PROVIDERS.iter().flat_map(|p| p.variables()) {
            if let Some(v) = snapshot.current(var.name) {
                next.values
                    .insert(var.name, Secret::new(Some(v.to_string())));
            }
            next.previous.insert(
                var.name,
                Secret::new(snapshot.previous(var.name).map(str::to_string)),
            );
        }
        next
    }

    /// A setting's value (trailing `/` removed: these are base URLs and versions), else its
    /// default.
    pub fn setting(&self, var: &Variable) -> &str {
        let default = match var.kind {
            Kind::Setting { default } => default,
            Kind::Secret => "",
        };
        self.secret(var)
            .map(|v| v.trim_end_matches('/'))
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
    }
}

impl std::fmt::Debug for ProvidersConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for var in PROVIDERS.iter().flat_map(|p| p.variables()) {
            match var.kind {
                Kind::Secret => map.entry(&var.name, &self.values.get(var.name)),
                Kind::Setting { .. } => map.entry(&var.name, &self.setting(var)),
            };
        }
        map.entry(&"api_timeout", &self.api_timeout)
            .entry(&"api_concurrency", &self.api_concurrency)
            .finish()
    }
}

impl ProvidersConfig {
    /// The provider's delivery secret, or [`ProviderError::NotConfigured`].
    pub fn require(
        &self,
        provider: &'static str,
        secret: &Variable,
    ) -> Result<&str, crate::ProviderError> {
        self.secret(secret)
            .ok_or(crate::ProviderError::NotConfigured(provider))
    }
}
