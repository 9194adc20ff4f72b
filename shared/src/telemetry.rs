//! Logs and metrics. Logs are JSON lines through `tracing` (the runtime's span adds the request
//! id); metrics are CloudWatch Embedded Metric Format lines, so a deployed stack gets metrics,
//! dashboards and alarms without extra API calls. Personal data never goes into either: use
//! [`mask_email`] / [`mask_phone`] when a log line must hint at who it was about.

use std::sync::Once;

use serde_json::{json, Map, Value};

static INIT: Once = Once::new();

/// JSON logs without ANSI colours (they would land in CloudWatch as garbage), filtered by
/// `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL`: a level (`debug`) or per-target directives
/// (`info,aws_smithy_runtime=debug`). `Targets` parses those without `EnvFilter`'s regex
/// span-field matching, which a Lambda never needs and which costs binary size. An unreadable
/// value falls back to `info`. Safe to call more than once (tests call it per test).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    INIT.call_once(|| {
        let level = std::env::var("RUST_LOG")
            .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
            .unwrap_or_else(|_| "info".to_string());
        let filter = log_filter(&level);
        let _ = tracing_subscriber::fmt()
            .json()
            .with_ansi(false)
            .with_target(false)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(filter)
            .try_init();
    });
}

/// The filter for a `RUST_LOG` / `AWS_LAMBDA_LOG_LEVEL` value. Lambda's `fatal` has no
/// `tracing` level: it means errors only. A value that does not parse is `info`.
fn log_filter(value: &str) -> tracing_subscriber::filter::Targets {
    let value = if value.eq_ignore_ascii_case("fatal") {
        "error"
    } else {
        value
    };
    value.parse().unwrap_or_else(|_| {
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
    })
}

/// `ada.lovelace@example.com` -> `a***@example.com`: enough to tell deliveries apart in logs.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// `+14155550132` -> `+1******32`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 4 {
        return "***".to_string();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

/// One EMF record: a set of dimensions and counters, printed as one JSON line on stdout.
pub struct Metrics {
    namespace: &'static str,
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(String, f64, &'static str)>,
}

impl Metrics {
    pub fn new(namespace: &'static str) -> Self {
        Metrics {
            namespace,
            dimensions: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn count(&mut self, name: impl Into<String>, value: f64) -> &mut Self {
        self.values.push((name.into(), value, "Count"));
        self
    }

    pub fn millis(&mut self, name: impl Into<String>, value: f64) -> &mut Self {
        self.values.push((name.into(), value, "Milliseconds"));
        self
    }

    /// The EMF document (exposed for tests).
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        let dims: Vec<&str> = self.dimensions.iter().map(|(k, _)| *k).collect();
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(n, _, unit)| json!({"Name": n, "Unit": unit}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dims],
                    "Metrics": metrics,
                }]
            }),
        );
        for (k, v) in &self.dimensions {
            root.insert((*k).to_string(), json!(v));
        }
        for (n, v, _) in &self.values {
            root.insert(n.clone(), json!(v));
        }
        Value::Object(root)
    }

    /// Prints the record; nothing is printed when no value was recorded.
    pub fn emit(&self) {
        if self.values.is_empty() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        println!("{}", self.to_json(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_and_directives_as_operators_write_them() {
        use tracing::level_filters::LevelFilter;
        use tracing::Level;
        let f = log_filter("debug");
        assert!(f.would_enable("leadflow", &Level::DEBUG));
        assert!(!f.would_enable("leadflow", &Level::TRACE));
        let f = log_filter("warn,aws_smithy_runtime=debug");
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!f.would_enable("leadflow", &Level::INFO));
        assert_eq!(
            log_filter("fatal").default_level(),
            Some(LevelFilter::ERROR)
        );
        for junk in ["leadflow=loud", "debug,x=y=z"] {
            assert_eq!(
                log_filter(junk).default_level(),
                Some(LevelFilter::INFO),
                "{junk}"
            );
        }
    }

    #[test]
    fn masks_hide_personal_data() {
        assert_eq!(mask_email("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(mask_phone("+14155550132"), "+1********32");
    }

    #[test]
    fn emf_shape() {
        let mut m = Metrics::new("leadflow").dimension("provider", "form");
        m.count("created", 1.0);
        let v = m.to_json(1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "provider"
        );
        assert_eq!(v["created"], 1.0);
        assert_eq!(v["provider"], "form");
    }
}
