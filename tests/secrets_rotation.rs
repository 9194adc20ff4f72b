//! Secrets that rotate: form-webhook's state, built once as in main.rs, reads its provider
//! secrets from a Secrets Manager secret (moto's, on loopback) and picks up a rotation without a
//! restart: a delivery signed with the new value is accepted at once (a forced refresh after the
//! signature failure), one signed with the previous value stays accepted during the rotation,
//! and neither costs a request per call. A LinkedIn access token refreshed with its refresh
//! token is written back into the secret, so the next instance starts with it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use form_webhook::{handler, AppState};
use http_stub::{Recorded, Reply, Stub};
use integration_tests::{
    events_endpoint, fresh_store, lambda_event, sdk_config, Answer, EventBuilder,
};
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
    put_values(client, id, json!({ "TYPEFORM_SECRET": typeform })).await
}

/// A new secret (on moto's Secrets Manager) holding `values`: its client and name.
async fn new_secret(values: Value) -> (aws_sdk_secretsmanager::Client, String) {
    let sdk = sdk_config(&events_endpoint()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let id = format!("leadflow-test-{}", uuid_like());
    client
        .create_secret()
        .name(&id)
        .secret_string(values.to_string())
        .send()
        .await
        .unwrap();
    (client, id)
}

/// A new AWSCURRENT version of the secret holding `values`.
async fn put_values(client: &aws_sdk_secretsmanager::Client, id: &str, values: Value) {
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(values.to_string())
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
    let (client, id) = new_secret(json!({"TYPEFORM_SECRET": typeform})).await;
    let (secrets, state) = state_over(&client, &id, min_forced_interval).await;
    (client, id, secrets, state)
}

/// form-webhook's state built over the secret `id` as main.rs builds it at a cold start: the
/// secret's values, then the (here empty) environment.
async fn state_over(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
    min_forced_interval: Duration,
) -> (Arc<Secrets>, AppState) {
    // A long maximum age: only a forced refresh can explain a rotation picked up here.
    let secrets = Arc::new(
        Secrets::load(
            client.clone(),
            id,
            Duration::from_secs(3600),
            min_forced_interval,
        )
        .await
        .unwrap(),
    );
    let start = AtStart::of(secrets.clone()).await;
    let snapshot = secrets.snapshot().await;
    let lookup = start.lookup();
    let state = AppState::from_lookup(fresh_store().await, |k| {
        lookup(k).filter(|_| snapshot.current(k).is_some())
    })
    .unwrap()
    .rotating(start.secrets.clone());
    (secrets, state)
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

/// LinkedIn's Lead Sync API and OAuth token endpoint: the API takes only minted tokens; the
/// token endpoint mints `minted-<n>` for the configured refresh token.
fn linkedin_stand_in() -> Stub {
    let minted = std::sync::atomic::AtomicUsize::new(0);
    Stub::start_with_headers(move |req: &Recorded| {
        if req.target == "/oauth/v2/accessToken" {
            if !req.body.contains("refresh_token=the-refresh-token") {
                return Reply::Json(400, r#"{"error":"invalid_grant"}"#.into());
            }
            let n = minted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            return Reply::Json(
                200,
                format!(r#"{{"access_token":"minted-{n}","expires_in":5184000}}"#),
            );
        }
        match req.headers.get("authorization") {
            Some(b) if b.starts_with("Bearer minted-") => {
                let id = req.target.split('/').nth(3).unwrap_or("").split('?').next().unwrap_or("");
                Reply::Json(
                    200,
                    json!({"id": id, "submittedAt": 1_795_374_236_000_i64, "leadType": "SPONSORED",
                        "formResponse": {"answers": [{"questionId": 1,
                            "answerDetails": {"textQuestionAnswer": {"answer": format!("{id}@example.com")}}}]},
                        "form": {"content": {"questions": [{"questionId": 1, "predefinedField": "EMAIL"}]}}})
                    .to_string(),
                )
            }
            _ => Reply::Json(
                401,
                r#"{"status":401,"serviceErrorCode":65601,"code":"EXPIRED_ACCESS_TOKEN","message":"The token used in the request has expired"}"#.into(),
            ),
        }
    })
}

/// A LinkedIn lead notification for `response_id`, signed with `secret`.
fn linkedin_delivery(secret: &str, response_id: &str) -> Value {
    let path = format!(
        "{}/../events/linkedin-lead.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = ev["body"]
        .as_str()
        .unwrap()
        .replace("249592fc-d272-44ba-a7db-c2bdce579507-6", response_id);
    let sig = hex::encode(hmac_sha256(
        secret.as_bytes(),
        &[b"hmacsha256=", body.as_bytes()],
    ));
    ev["body"] = body.into();
    ev["headers"]["x-li-signature"] = sig.into();
    ev
}

#[tokio::test]
async fn a_refreshed_linkedin_token_is_written_back_for_the_next_instance() {
    let api = linkedin_stand_in();
    let values = json!({
        "TYPEFORM_SECRET": "unrelated-secret",
        "LINKEDIN_CLIENT_SECRET": "the-client-secret",
        "LINKEDIN_ACCESS_TOKEN": "expired-token",
        "LINKEDIN_REFRESH_TOKEN": "the-refresh-token",
        "LINKEDIN_CLIENT_ID": "the-client-id",
        "LINKEDIN_API_URL": format!("{}/rest", api.base_url),
        "LINKEDIN_OAUTH_URL": format!("{}/oauth/v2/accessToken", api.base_url),
    });
    let (client, id) = new_secret(values.clone()).await;
    let (_, state) = state_over(&client, &id, Duration::from_secs(30)).await;
    let a = send(&state, linkedin_delivery("the-client-secret", "lead-a")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["results"][0]["status"], "created", "{}", a.text);
    let seen = |api: &Stub| -> Vec<String> {
        api.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.target.split('?').next().unwrap()))
            .collect()
    };
    assert_eq!(
        seen(&api),
        [
            "GET /rest/leadFormResponses/lead-a",
            "POST /oauth/v2/accessToken",
            "GET /rest/leadFormResponses/lead-a",
        ]
    );

    // The secret now holds the minted token and its expiry; nothing else changed.
    let stored: Value = serde_json::from_str(
        &client
            .get_secret_value()
            .secret_id(&id)
            .send()
            .await
            .unwrap()
            .secret_string
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["LINKEDIN_ACCESS_TOKEN"], "minted-1");
    let expires = chrono::DateTime::parse_from_rfc3339(
        stored["LINKEDIN_ACCESS_TOKEN_EXPIRES_AT"].as_str().unwrap(),
    )
    .unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((59..=60).contains(&days), "{days}");
    for (k, v) in values.as_object().unwrap() {
        if k != "LINKEDIN_ACCESS_TOKEN" {
            assert_eq!(&stored[k], v, "{k}");
        }
    }

    // Another instance (a cold start) uses the stored token at once: no second refresh.
    let (_, other) = state_over(&client, &id, Duration::from_secs(30)).await;
    let a = send(&other, linkedin_delivery("the-client-secret", "lead-b")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let requests = api.requests();
    let last = requests.last().unwrap();
    assert_eq!(
        last.target.split('?').next().unwrap(),
        "/rest/leadFormResponses/lead-b"
    );
    assert_eq!(last.headers["authorization"], "Bearer minted-1");
    assert_eq!(requests.len(), 4, "{:?}", seen(&api));
}

/// GET /leads?email=... on lead-api with `key` (404: no such lead, i.e. let in).
async fn lead_api_status(state: &lead_api::ApiState, key: &str) -> u16 {
    let mut event = EventBuilder::new("GET", "/leads")
        .header("x-api-key", key)
        .query("email=nobody@example.com")
        .build();
    event.path_parameters.clear();
    let answer: Answer = lead_api::handler(state, lambda_event(event))
        .await
        .unwrap()
        .into();
    answer.status
}

#[tokio::test]
async fn api_keys_follow_the_secret_without_a_restart_and_a_removed_key_is_revoked() {
    let (client, id) = new_secret(json!({"LEAD_API_KEYS": "old-key:read"})).await;
    let secrets = Arc::new(
        Secrets::load(
            client.clone(),
            &id,
            Duration::from_secs(3600),
            Duration::ZERO,
        )
        .await
        .unwrap(),
    );
    let start = AtStart::of(secrets.clone()).await;
    let lookup = start.lookup();
    let state = lead_api::ApiState::from_lookup(fresh_store().await, |k| {
        lookup(k).filter(|_| k == "LEAD_API_KEYS")
    })
    .unwrap()
    .rotating(start.secrets.clone());
    assert_eq!(lead_api_status(&state, "old-key").await, 404);
    let after_start = secrets.requests();
    assert_eq!(lead_api_status(&state, "old-key").await, 404);
    assert_eq!(secrets.requests(), after_start, "no request per call");

    // A new key next to the old one: accepted on its first call (a forced refresh).
    put_values(
        &client,
        &id,
        json!({"LEAD_API_KEYS": "old-key:read,new-key:read"}),
    )
    .await;
    assert_eq!(lead_api_status(&state, "new-key").await, 404);
    assert_eq!(lead_api_status(&state, "old-key").await, 404);
    assert_eq!(lead_api_status(&state, "forged").await, 401);

    // The old key removed: refused once the secret is read again; never accepted as
    // AWSPREVIOUS (a removed key is a revoked one).
    put_values(&client, &id, json!({"LEAD_API_KEYS": "new-key:read"})).await;
    assert_eq!(
        lead_api_status(&state, "forged").await,
        401,
        "forces a refresh"
    );
    assert_eq!(lead_api_status(&state, "old-key").await, 401);
    assert_eq!(lead_api_status(&state, "new-key").await, 404);
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
