//! Secrets that rotate: form-webhook's state, built once as in main.rs, reads its provider
//! secrets from a Secrets Manager secret (moto's, on loopback) and picks up a rotation without a
//! restart: a delivery signed with the new value is accepted at once (a forced refresh after the
//! signature failure), one signed with the previous value stays accepted during the rotation,
//! and neither costs a request per call.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use form_webhook::{handler, AppState};
use integration_tests::{events_endpoint, fresh_store, lambda_event, sdk_config, Answer};
use leadflow::secrets::{AtStart, Secrets};
use leadflow::signature::hmac_sha256;
use serde_json::{json, Value};

fn typeform_delivery(secret: &str) -> Value {
    let path = format!(
        "{}/../events/typeform-response.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = ev["body"].as_str().unwrap().to_string();
    let sig = hmac_sha256(secret.as_bytes(), &[body.as_bytes()]);
    ev["headers"]["typeform-signature"] = format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
    .into();
    ev
}

async fn send(state: &AppState, ev: Value) -> Answer {
    let req: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(ev).unwrap();
    handler(state, lambda_event(req)).await.unwrap().into()
}

async fn put(client: &aws_sdk_secretsmanager::Client, id: &str, typeform: &str) {
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(json!({"TYPEFORM_SECRET": typeform}).to_string())
        .send()
        .await
        .unwrap();
}

/// A fresh secret holding `typeform`, and form-webhook's state built once over it as main.rs
/// builds it (the secret's values, then the here-empty environment).
async fn rotating_state(
    typeform: &str,
    min_forced_interval: Duration,
) -> (
    aws_sdk_secretsmanager::Client,
    String,
    Arc<Secrets>,
    AppState,
) {
    let sdk = sdk_config(&events_endpoint()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let id = format!("leadflow-test-{}", uuid_like());
    client
        .create_secret()
        .name(&id)
        .secret_string(json!({"TYPEFORM_SECRET": typeform}).to_string())
        .send()
        .await
        .unwrap();
    // A long maximum age: only a forced refresh can explain a rotation picked up here.
    let secrets = Arc::new(
        Secrets::load(
            client.clone(),
            &id,
            Duration::from_secs(3600),
            min_forced_interval,
        )
        .await
        .unwrap(),
    );
    let start = AtStart::of(secrets.clone()).await;
    let lookup = start.lookup();
    let state = AppState::from_lookup(fresh_store().await, |k| {
        lookup(k).filter(|_| k == "TYPEFORM_SECRET")
    })
    .unwrap()
    .rotating(start.secrets.clone());
    (client, id, secrets, state)
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up_without_a_restart_and_the_previous_one_still_works() {
    let (client, id, secrets, state) =
        rotating_state("first-typeform-secret", Duration::ZERO).await;
    let a = send(&state, typeform_delivery("first-typeform-secret")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["results"][0]["status"], "created");
    let after_start = secrets.requests();
    let a = send(&state, typeform_delivery("first-typeform-secret")).await;
    assert!(a.status < 300, "{}", a.text);
    assert_eq!(secrets.requests(), after_start, "no request per call");

    put(&client, &id, "second-typeform-secret").await;
    let a = send(&state, typeform_delivery("second-typeform-secret")).await;
    assert!(a.status < 300, "the rotated secret is accepted: {}", a.text);
    assert_eq!(
        secrets.requests(),
        after_start + 2,
        "one refresh (two stages)"
    );
    let a = send(&state, typeform_delivery("first-typeform-secret")).await;
    assert!(a.status < 300, "AWSPREVIOUS still accepted: {}", a.text);

    put(&client, &id, "third-typeform-secret").await;
    let a = send(&state, typeform_delivery("third-typeform-secret")).await;
    assert!(a.status < 300, "{}", a.text);
    let a = send(&state, typeform_delivery("first-typeform-secret")).await;
    assert_eq!(a.status, 401, "two rotations ago: refused: {}", a.text);
    let a = send(&state, typeform_delivery("forged")).await;
    assert_eq!(a.status, 401, "{}", a.text);
}

#[tokio::test]
async fn forced_refreshes_are_rate_limited() {
    let (_, _, secrets, state) =
        rotating_state("the-typeform-secret", Duration::from_secs(3600)).await;
    let before = secrets.requests();
    for _ in 0..5 {
        let a = send(&state, typeform_delivery("forged")).await;
        assert_eq!(a.status, 401, "{}", a.text);
    }
    assert_eq!(
        secrets.requests(),
        before + 2,
        "forged deliveries force one refresh, not one per request"
    );
}

#[tokio::test]
async fn a_missing_secret_stops_the_cold_start_with_its_name() {
    let sdk = sdk_config(&events_endpoint()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let err = Secrets::load(
        client,
        "leadflow-no-such-secret",
        Duration::from_secs(300),
        Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("leadflow-no-such-secret"), "{err}");
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
