//! Test helpers for the adapters: requests, signatures, and a minimal HTTP/1.1 server on
//! 127.0.0.1 standing in for the Graph and LinkedIn APIs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use leadflow::http::InboundRequest;
use leadflow::model::Submission;
use leadflow::signature::hmac_sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::ProviderOutcome;

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("valid time")
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
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), parts))
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

/// What the stand-in API answers to one request.
pub enum Reply {
    /// Status and JSON body.
    Json(u16, String),
    /// Never answers (the connection stays open): exercises the client's timeout.
    Hang,
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Path and query, as on the request line.
    pub target: String,
    pub headers: BTreeMap<String, String>,
}

/// A minimal HTTP/1.1 server on 127.0.0.1: reads a request head, answers with what the handler
/// says, closes the connection.
pub struct MockApi {
    pub base: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl MockApi {
    pub async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let rec = recorded.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = text.split("\r\n");
                    let target = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or("/")
                        .to_string();
                    let headers = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    rec.lock().unwrap().push(Recorded {
                        target: target.clone(),
                        headers,
                    });
                    match handler(&target) {
                        Reply::Hang => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        Reply::Json(status, body) => {
                            let resp = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(resp.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                    }
                });
            }
        });
        MockApi {
            base: format!("http://{addr}"),
            recorded,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
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
    p: &super::Providers,
    outcome: ProviderOutcome,
) -> Vec<Result<Submission, super::announced::FetchError>> {
    let (leads, _) = announced(outcome);
    let mut out = Vec::with_capacity(leads.len());
    for lead in &leads {
        out.push(p.fetch_lead(lead, at(1_700_000_000)).await);
    }
    out
}

/// The submissions of a delivery, whether it carried them or announced them for fetching.
pub async fn delivered(p: &super::Providers, outcome: ProviderOutcome) -> Vec<Submission> {
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
