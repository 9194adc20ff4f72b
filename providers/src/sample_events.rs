//! The platform samples in `events/` (see `events/PROVIDERS.md`) verify with the documented test
//! secrets and parse into what they should. Timestamped samples are checked at the time they
//! were signed (their `requestContext.timeEpoch`), and shown to be stale afterwards.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use leadflow::edge::{InboundRequest, MAX_BODY_BYTES};
use leadflow::model::TouchKind;

use crate::test_support::*;
use crate::{ProviderOutcome, Providers, ProvidersConfig, PROVIDERS};

fn load(name: &str) -> InboundRequest {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let event: ApiGatewayV2httpRequest =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    InboundRequest::from_apigw(&event, MAX_BODY_BYTES).expect("decodable sample")
}

/// The platforms configured with the test values the samples were signed with.
fn providers(api_base: &str) -> Providers {
    let mut vars = local_env();
    vars.insert("GRAPH_API_URL".into(), format!("{api_base}/v21.0"));
    vars.insert("LINKEDIN_API_URL".into(), format!("{api_base}/rest"));
    Providers::new(ProvidersConfig::from_lookup(|k| vars.get(k).cloned()))
}

/// Graph and LinkedIn stand-ins answering every lead with one documented-shape lead.
async fn api() -> MockApi {
    MockApi::start(|target: &str| {
        if let Some(rest) = target.strip_prefix("/v21.0/") {
            let id = rest.split('?').next().unwrap_or("");
            Reply::Json(
                200,
                format!(
                    r#"{{"id":"{id}","created_time":"2026-11-22T19:03:50+0000","campaign_name":"winter-leads","form_id":"1234567890123456","is_organic":false,"platform":"fb","field_data":[{{"name":"full_name","values":["Ada Lovelace"]}},{{"name":"email","values":["ada.{id}@example.com"]}},{{"name":"phone_number","values":["+14155550132"]}}]}}"#
                ),
            )
        } else {
            Reply::Json(
                200,
                r#"{"id":"249592fc-d272-44ba-a7db-c2bdce579507-6","submittedAt":1795374236000,"testLead":false,"leadType":"SPONSORED","formResponse":{"answers":[{"questionId":1,"answerDetails":{"textQuestionAnswer":{"answer":"kevin.j@example.com"}}}]},"form":{"id":7234246,"content":{"questions":[{"questionId":1,"predefinedField":"EMAIL"}]}}}"#
                    .to_string(),
            )
        }
    })
    .await
}

fn provider_of(req: &InboundRequest) -> String {
    req.path_params
        .get("provider")
        .cloned()
        .expect("pathParameters.provider")
}

/// One signed delivery sample per platform: its file, the touch it makes, how many.
const SAMPLES: [(&str, TouchKind, usize); 10] = [
    ("typeform-response.json", TouchKind::FormSubmission, 1),
    ("facebook-leadgen.json", TouchKind::AdLead, 2),
    ("google-ads-lead.json", TouchKind::AdLead, 1),
    ("hubspot-workflow.json", TouchKind::FormSubmission, 1),
    ("linkedin-lead.json", TouchKind::AdLead, 1),
    ("tally-response.json", TouchKind::FormSubmission, 1),
    ("webflow-form.json", TouchKind::FormSubmission, 1),
    ("calendly-invitee-created.json", TouchKind::MeetingBooked, 1),
    ("unbounce-form.json", TouchKind::FormSubmission, 1),
    ("jotform-submission.json", TouchKind::FormSubmission, 1),
];

/// A platform on the registry has a signed sample that reaches it.
#[test]
fn every_registered_platform_has_a_sample() {
    for p in PROVIDERS {
        assert!(
            SAMPLES
                .iter()
                .any(|(name, ..)| provider_of(&load(name)) == p.name()),
            "events/ has no sample for {}",
            p.name()
        );
    }
}

/// The deployment keeps every declared secret in the Secrets Manager secret (SECRETS_ID), never
/// in a plaintext environment variable of template.yaml; `sam local` has a test value for each
/// (sam-local-env.json, the environment path). Settings have defaults and may be left out.
#[test]
fn the_deployment_passes_every_declared_secret() {
    let read = |name: &str| {
        let path = format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let (template, sam) = (read("template.yaml"), read("sam-local-env.json"));
    assert!(
        template.contains(
            "          SECRETS_ID: !If [UseLocalDynamoDb, !Ref AWS::NoValue, !Ref AppSecrets]"
        ),
        "template.yaml does not give form-webhook SECRETS_ID"
    );
    for v in PROVIDERS.iter().flat_map(|p| p.variables()) {
        if v.is_secret() {
            assert_eq!(
                template.matches(&format!("{}: ", v.name)).count(),
                1,
                "template.yaml declares {} more than once",
                v.name
            );
            assert!(
                template.contains(&format!(
                    "{}: !If [UseLocalDynamoDb, \"\", !Ref AWS::NoValue]",
                    v.name
                )),
                "template.yaml must declare {} for sam local only (never a value in AWS)",
                v.name
            );
            assert!(
                sam.contains(&format!("\"{}\":", v.name)),
                "sam-local-env.json has no {}",
                v.name
            );
        }
    }
}

#[tokio::test]
async fn every_platform_sample_verifies_and_parses() {
    let api = api().await;
    let p = providers(&api.base);
    for (name, kind, count) in SAMPLES {
        let req = load(name);
        let provider = provider_of(&req);
        assert!(name.starts_with(&provider), "{name} routes to {provider}");
        let out = p
            .handle(&provider, &req, req.received_at)
            .await
            .unwrap_or_else(|e| panic!("{name}: {} {e}", e.code()));
        let subs = delivered(&p, out).await;
        assert_eq!(subs.len(), count, "{name}");
        for s in subs {
            assert_eq!(s.provider, provider, "{name}");
            assert_eq!(s.kind, kind, "{name}");
            assert!(
                s.contact.email.as_deref().is_some_and(|e| e.contains('@')),
                "{name}: no email"
            );
        }
    }
}

#[tokio::test]
async fn handshake_and_announcing_samples() {
    let p = providers("http://127.0.0.1:9");
    for name in ["facebook-verify.json", "linkedin-challenge.json"] {
        let req = load(name);
        match p.handle(&provider_of(&req), &req, req.received_at).await {
            Ok(ProviderOutcome::Respond(r)) => assert_eq!(r.status_code, 200, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // HubSpot's CRM events name one contact (a creation and a change): one fetch announced.
    let req = load("hubspot-events.json");
    let (leads, _) = announced(p.handle("hubspot", &req, req.received_at).await.unwrap());
    let keys: Vec<&str> = leads.iter().map(|l| l.platform_id()).collect();
    assert_eq!(keys, ["contact-62515-3234574-1795374236500"]);
}

#[tokio::test]
async fn timestamped_samples_go_stale() {
    let p = providers("http://127.0.0.1:9");
    for name in [
        "hubspot-events.json",
        "webflow-form.json",
        "calendly-invitee-created.json",
    ] {
        let req = load(name);
        let later = req.received_at + chrono::Duration::minutes(10);
        let e = p.handle(&provider_of(&req), &req, later).await.unwrap_err();
        assert_eq!(e.code(), "stale_timestamp", "{name}");
    }
}
