//! Property tests over every body parser of form-webhook: web form bodies (urlencoded,
//! multipart, JSON) and each provider's payload parser (`leadflow-providers`). Random bytes and
//! mutations of the platforms' published examples (tests/fixtures/providers) never panic, and
//! never become an error a sender would retry (parsers quarantine or refuse with a 4xx); valid
//! inputs round-trip. `PROPTEST_CASES` sets the cases per property (default 128).

use chrono::{TimeZone, Utc};
use form_webhook::form::read_fields;
use leadflow::edge::InboundRequest;
use leadflow_providers::{
    calendly, facebook, google_ads, hubspot, jotform, linkedin, tally, typeform, unbounce, webflow,
    ProviderOutcome,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/providers/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn request(content_type: &str, body: Vec<u8>) -> InboundRequest {
    let mut req = InboundRequest {
        method: "POST".into(),
        path: "/webhooks/test".into(),
        body,
        received_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        ..Default::default()
    };
    req.headers
        .insert("content-type".into(), content_type.to_string());
    req
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Every provider parser on one body (the ones that read JSON, urlencoded or multipart).
fn parse_all(req: &InboundRequest) -> Vec<(&'static str, ProviderOutcome)> {
    vec![
        ("typeform", typeform::parse(req)),
        ("facebook", facebook::parse(req)),
        ("google-ads", google_ads::parse(req)),
        ("hubspot", hubspot::parse(req)),
        ("linkedin", linkedin::parse(req)),
        ("tally", tally::parse(req)),
        ("webflow", webflow::parse(req)),
        ("calendly", calendly::parse(req)),
        ("unbounce", unbounce::parse(req)),
        ("jotform", block_on(jotform::parse(req))),
    ]
}

/// The published examples, with the parser each one is for.
const FIXTURES: [(&str, &str, &str); 13] = [
    (
        "typeform",
        "typeform-example-payload.json",
        "application/json",
    ),
    ("facebook", "meta-leadgen-webhook.json", "application/json"),
    (
        "google-ads",
        "google-ads-send-test-data.json",
        "application/json",
    ),
    (
        "hubspot",
        "hubspot-webhooks-events.json",
        "application/json",
    ),
    (
        "hubspot",
        "hubspot-workflow-legacy-contact.json",
        "application/json",
    ),
    (
        "linkedin",
        "linkedin-lead-notification.json",
        "application/json",
    ),
    ("tally", "tally-webhook-payload.json", "application/json"),
    (
        "webflow",
        "webflow-v2-form-submission.json",
        "application/json",
    ),
    (
        "webflow",
        "webflow-v1-form-submission.json",
        "application/json",
    ),
    (
        "calendly",
        "calendly-invitee-created.json",
        "application/json",
    ),
    (
        "unbounce",
        "unbounce-form-submission.urlencoded",
        "application/x-www-form-urlencoded",
    ),
    (
        "jotform",
        "jotform-webhook.multipart",
        "multipart/form-data; boundary=------JotformBoundary7MA4YWxk",
    ),
    (
        "hubspot",
        "hubspot-workflow-legacy-contact.json",
        "application/json",
    ),
];

fn parse_one(provider: &str, req: &InboundRequest) -> ProviderOutcome {
    parse_all(req)
        .into_iter()
        .find(|(p, _)| *p == provider)
        .map(|(_, o)| o)
        .expect("a parser")
}

#[test]
fn every_published_example_parses_into_leads_or_is_ignored_as_documented() {
    for (provider, name, ct) in FIXTURES {
        let out = parse_one(provider, &request(ct, fixture(name)));
        match (name, out) {
            ("hubspot-webhooks-events.json", ProviderOutcome::Ignored { .. }) => {}
            (_, ProviderOutcome::Submissions(subs)) => {
                assert_eq!(subs.len(), 1, "{name}");
                assert!(subs[0].contact.email.is_some(), "{name}");
            }
            (_, ProviderOutcome::Announced { leads, .. }) => assert!(!leads.is_empty(), "{name}"),
            (_, other) => panic!("{name}: {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn mutate(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = body.len().max(1);
        match m {
            Mutation::Truncate(i) => body.truncate(i % len),
            Mutation::Flip(i, b) => {
                if !body.is_empty() {
                    let i = i % body.len();
                    body[i] ^= b | 1;
                }
            }
            Mutation::Insert(i, bytes) => {
                let i = i % (body.len() + 1);
                body.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(i, n) => {
                if !body.is_empty() {
                    let i = i % body.len();
                    let end = (i + n).min(body.len());
                    body.drain(i..end);
                }
            }
        }
    }
    body
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bodies_never_panic_any_parser(
        body in prop::collection::vec(any::<u8>(), 0..3_000),
        ct in prop_oneof![
            Just("application/json".to_string()),
            Just("application/x-www-form-urlencoded".to_string()),
            "multipart/form-data; boundary=[a-zA-Z0-9-]{1,30}",
            ".{0,30}",
        ],
    ) {
        let req = request(&ct, body);
        for (_, out) in parse_all(&req) {
            prop_assert!(!matches!(out, ProviderOutcome::Respond(_)));
        }
    }

    #[test]
    fn mutated_published_examples_never_panic(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (provider, name, ct) = FIXTURES[which];
        let body = mutate(fixture(name), &mutations);
        let out = parse_one(provider, &request(ct, body));
        // Whatever a mutation did, the outcome is one a handler answers without a 5xx.
        match out {
            ProviderOutcome::Submissions(subs) => prop_assert!(subs.len() <= 1_000),
            ProviderOutcome::Announced { leads, withdrawn } => {
                prop_assert!(leads.len() + withdrawn.len() <= 1_000)
            }
            ProviderOutcome::Quarantine { .. } | ProviderOutcome::Ignored { .. } => {}
            ProviderOutcome::Respond(_) => prop_assert!(false, "a POST is never a handshake"),
        }
    }

    #[test]
    fn random_json_values_never_panic_any_parser(value in json_value()) {
        let req = request("application/json", value.to_string().into_bytes());
        let _ = parse_all(&req);
    }

    #[test]
    fn form_bodies_never_panic_and_fail_only_with_4xx(
        body in prop::collection::vec(any::<u8>(), 0..2_000),
        ct in prop_oneof![
            Just("application/json"),
            Just("application/x-www-form-urlencoded"),
            Just("multipart/form-data; boundary=XyZ"),
            Just("multipart/form-data"),
            Just("text/plain"),
        ],
    ) {
        if let Err(e) = block_on(read_fields(&request(ct, body))) {
            prop_assert!((400..500).contains(&e.status()), "{}", e.status());
        }
    }

    #[test]
    fn urlencoded_forms_round_trip(fields in prop::collection::vec((".{1,20}", ".{0,40}"), 1..20)) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let read = block_on(read_fields(&request("application/x-www-form-urlencoded", body.into_bytes()))).unwrap();
        prop_assert_eq!(read, fields);
    }

    #[test]
    fn json_forms_round_trip(fields in prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,15}", ".{0,40}", 1..20)) {
        let body = serde_json::to_vec(&fields).unwrap();
        let mut read = block_on(read_fields(&request("application/json", body))).unwrap();
        read.sort();
        let want: Vec<(String, String)> = fields.into_iter().collect();
        prop_assert_eq!(read, want);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,30}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("email".to_string()),
                    Just("payload".to_string()),
                    Just("form_response".to_string()),
                    Just("entry".to_string()),
                    Just("events".to_string()),
                    Just("data".to_string()),
                    Just("fields".to_string()),
                    ".{0,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
