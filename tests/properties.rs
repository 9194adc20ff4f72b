//! Property tests through the whole handler, on the local DynamoDB: random web form bodies and
//! authentic (re-signed) mutations of a platform's published example never get a 5xx (a 5xx
//! asks the sender to retry, which only helps for a real outage). Fewer cases than the pure
//! parser properties (`PROPTEST_CASES`, default 32 here): each case is a real request.

use base64::Engine;
use form_webhook::{handler, AppState};
use integration_tests::{fresh_store, lambda_event, Answer, EventBuilder};
use leadflow::signature::hmac_sha256;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse::<u32>().ok())
        .map(|c| c.min(64))
        .unwrap_or(32);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

struct Env {
    rt: tokio::runtime::Runtime,
    state: AppState,
}

fn env() -> &'static Env {
    static ENV: std::sync::OnceLock<Env> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt.block_on(fresh_store());
        let state = AppState::from_lookup(store, |k| {
            (k == "TALLY_SECRET").then(|| "test-tally-secret".to_string())
        })
        .unwrap();
        Env { rt, state }
    })
}

fn send(ev: EventBuilder) -> Answer {
    let e = env();
    e.rt.block_on(handler(&e.state, lambda_event(ev.build())))
        .unwrap()
        .into()
}

fn tally_example() -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/providers/tally-webhook-payload.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_form_bodies_never_get_a_5xx(
        body in prop::collection::vec(any::<u8>(), 0..4_000),
        ct in prop_oneof![
            Just("application/json"),
            Just("application/x-www-form-urlencoded"),
            Just("multipart/form-data; boundary=XyZ"),
            Just("text/plain"),
        ],
        key in prop::option::of("[ -~]{0,250}"),
    ) {
        let mut ev = EventBuilder::new("POST", "/webhooks/form")
            .header("accept", "application/json")
            .header("content-type", ct)
            .base64_body(&body);
        if let Some(k) = key {
            ev = ev.header("idempotency-key", &k);
        }
        let a = send(ev);
        prop_assert!(a.status < 500, "{} {}", a.status, a.text);
    }

    #[test]
    fn random_field_values_never_get_a_5xx(
        fields in prop::collection::vec(("[a-z_]{1,12}", "\\PC{0,300}"), 0..30),
        email in prop_oneof![Just("someone@example.com".to_string()), "\\PC{0,40}"],
    ) {
        let mut pairs: Vec<(String, String)> = fields;
        pairs.push(("email".into(), email));
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        let a = send(
            EventBuilder::new("POST", "/webhooks/form")
                .header("accept", "application/json")
                .header("content-type", "application/x-www-form-urlencoded")
                .base64_body(body.as_bytes()),
        );
        prop_assert!(a.status < 500, "{} {}", a.status, a.text);
    }

    #[test]
    fn authentic_mutations_of_a_published_example_never_get_a_5xx(
        cut in any::<usize>(),
        insert in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut body = tally_example();
        let at = cut % (body.len() + 1);
        body.splice(at..at, insert);
        // Signed after the mutation: the platform itself sent these bytes.
        let sig = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(b"test-tally-secret", &[&body]));
        let a = send(
            EventBuilder::new("POST", "/webhooks/tally")
                .header("content-type", "application/json")
                .header("tally-signature", &sig)
                .base64_body(&body),
        );
        prop_assert!(a.status < 500, "{} {}", a.status, a.text);
        prop_assert!(a.status != 401);
    }
}
