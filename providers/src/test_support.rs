//! Test helpers for the adapters: requests, signatures, the local test values, and the shared
//! stand-in server (`http-stub`) for the Graph, LinkedIn and HubSpot APIs.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use leadflow::edge::InboundRequest;
use leadflow::model::Submission;
pub use leadflow::signature::hmac_sha256;

use crate::ProviderOutcome;

/// The adapters with only these variables set.
pub fn configured(vars: &[(&str, &str)]) -> crate::Providers {
    crate::Providers::new(crate::ProvidersConfig::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    }))
}

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("valid time")
}

pub fn at_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("valid time")
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The local test values of events/local.env (`NAME=value` lines), the one file that holds
/// them: the signed samples of events/ were made with these.
pub fn local_env() -> std::collections::HashMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/local.env");
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn request(
    method: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    query: &[(&str, &str)],
) -> InboundRequest {
    let raw_query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter())
        .finish();
    InboundRequest {
        method: method.to_string(),
        path: "/webhooks/test".to_string(),
        url: if raw_query.is_empty() {
            "https://hooks.example.com/webhooks/test".to_string()
        } else {
            format!("https://hooks.example.com/webhooks/test?{raw_query}")
        },
        raw_query,
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
        body: body.to_vec(),
        received_at: at(1_700_000_000),
        ..Default::default()
    }
}

pub fn hex_hmac(key: &str, parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key.as_bytes(), parts))
}

pub fn b64_hmac(key: &str, parts: &[&[u8]]) -> String {
    b64(&hmac_sha256(key.as_bytes(), parts))
}

#[track_caller]
pub fn submissions(outcome: ProviderOutcome) -> Vec<Submission> {
    match outcome {
        ProviderOutcome::Submissions(s) => s,
        other => panic!("expected submissions, got {other:?}"),
    }
}

#[track_caller]
pub fn one(outcome: ProviderOutcome) -> Submission {
    let mut subs = submissions(outcome);
    assert_eq!(subs.len(), 1, "expected one submission");
    subs.remove(0)
}

#[track_caller]
pub fn quarantine_reason(outcome: ProviderOutcome) -> String {
    match outcome {
        ProviderOutcome::Quarantine { reason } => reason,
        other => panic!("expected quarantine, got {other:?}"),
    }
}

#[track_caller]
pub fn ignored_reason(outcome: ProviderOutcome) -> String {
    match outcome {
        ProviderOutcome::Ignored { reason } => reason,
        other => panic!("expected ignored, got {other:?}"),
    }
}

/// The Graph and LinkedIn API stand-in (`http-stub`): the real client runs against it.
pub use http_stub::{Recorded, Reply};

pub struct MockApi {
    pub base: String,
    stub: http_stub::Stub,
}

impl MockApi {
    pub async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> MockApi {
        MockApi::of(http_stub::Stub::start(handler))
    }

    /// A stand-in that reads the headers too (a bearer token).
    pub async fn start_with_headers(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> MockApi {
        MockApi::of(http_stub::Stub::start_with_headers(handler))
    }

    fn of(stub: http_stub::Stub) -> MockApi {
        MockApi {
            base: stub.base_url.clone(),
            stub,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.stub.requests()
    }
}

/// The leads and withdrawals of an `Announced` outcome.
#[track_caller]
pub fn announced(
    outcome: ProviderOutcome,
) -> (
    Vec<super::announced::AnnouncedLead>,
    Vec<super::announced::WithdrawnLead>,
) {
    match outcome {
        ProviderOutcome::Announced { leads, withdrawn } => (leads, withdrawn),
        other => panic!("expected announced leads, got {other:?}"),
    }
}

/// Each announced lead fetched from the (stand-in) platform API, in order.
pub async fn fetch_each(
    p: &crate::Providers,
    outcome: ProviderOutcome,
) -> Vec<Result<Submission, crate::announced::FetchError>> {
    let (leads, _) = announced(outcome);
    let mut out = Vec::with_capacity(leads.len());
    for lead in &leads {
        out.push(p.fetch_lead(lead, at(1_700_000_000)).await);
    }
    out
}

/// The submissions of a delivery, whether it carried them or announced them for fetching.
pub async fn delivered(p: &crate::Providers, outcome: ProviderOutcome) -> Vec<Submission> {
    match outcome {
        ProviderOutcome::Submissions(subs) => subs,
        announced @ ProviderOutcome::Announced { .. } => fetch_each(p, announced)
            .await
            .into_iter()
            .map(|r| r.expect("the lead is fetched"))
            .collect(),
        other => panic!("expected submissions, got {other:?}"),
    }
}
