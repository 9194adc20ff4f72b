//! The samples in `events/` are what `scripts/run-local` and `sam local invoke -e` send: each
//! HTTP sample must be a valid API Gateway HTTP API (payload 2.0) event, and its body must say
//! what its name promises.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine as _;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn read(name: &str) -> (serde_json::Value, ApiGatewayV2httpRequest) {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let req: ApiGatewayV2httpRequest =
        serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    (json, req)
}

fn body_bytes(name: &str, req: &ApiGatewayV2httpRequest) -> Vec<u8> {
    let body = req.body.as_deref().unwrap_or_default();
    if req.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_else(|e| panic!("{name}: body is not base64: {e}"))
    } else {
        body.as_bytes().to_vec()
    }
}

/// Every HTTP sample (any file with a `routeKey`), whoever wrote it.
#[test]
fn every_http_sample_is_a_payload_2_event() {
    let mut checked = 0;
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        if json.get("routeKey").is_none() {
            continue; // scheduled or direct-invoke payloads
        }
        let (json, req) = read(&name);
        assert_eq!(json["version"], "2.0", "{name}");
        let route = req.route_key.as_deref().unwrap_or_default();
        let (method, _) = route.split_once(' ').unwrap_or(("", ""));
        assert_eq!(
            req.request_context.http.method.as_str(),
            method,
            "{name}: requestContext.http.method vs routeKey"
        );
        assert_eq!(
            req.request_context.route_key.as_deref(),
            Some(route),
            "{name}"
        );
        assert_eq!(
            req.request_context.http.path.as_deref(),
            req.raw_path.as_deref(),
            "{name}"
        );
        assert_eq!(req.request_context.stage.as_deref(), Some("$default"));
        // HeaderMap lowercases names itself: check the file as API Gateway would send it.
        for header in json["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            assert_eq!(
                *header,
                header.to_lowercase(),
                "{name}: header names are lowercase"
            );
        }
        body_bytes(&name, &req);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} HTTP samples in events/");
}

#[test]
fn form_json() {
    let (_, req) = read("form-json.json");
    assert_eq!(req.request_context.http.method, "POST");
    assert_eq!(req.path_parameters.get("provider").unwrap(), "form");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["accept"], "application/json");
    assert!(!req.is_base64_encoded);
    let body: BTreeMap<String, String> =
        serde_json::from_slice(&body_bytes("form-json.json", &req)).unwrap();
    for (field, value) in [
        ("email", "Ada.Lovelace@Example.com"),
        ("phone", "+1 (415) 555-0132"),
        ("company", "Analytical Engines"),
        ("job_title", "CTO"),
        ("consent", "yes"),
        ("utm_source", "google"),
        ("utm_medium", "cpc"),
        ("utm_campaign", "spring-launch"),
        ("lead_magnet", "ebook:pricing-guide"),
        ("budget", "50k"),
    ] {
        assert_eq!(body.get(field).map(String::as_str), Some(value), "{field}");
    }
    for field in ["first_name", "last_name", "gclid", "landing_page"] {
        assert!(body.contains_key(field), "{field}");
    }
}

#[test]
fn form_urlencoded() {
    let (_, req) = read("form-urlencoded.json");
    assert_eq!(
        req.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(req.headers["origin"], "https://www.example.com");
    assert!(req.headers["accept"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        req.is_base64_encoded,
        "API Gateway base64-encodes form posts"
    );
    let bytes = body_bytes("form-urlencoded.json", &req);
    let fields: BTreeMap<String, String> = form_urlencoded::parse(&bytes).into_owned().collect();
    for (field, value) in [
        ("your-email", "grace@example.org"),
        ("tel", "020 7946 0018"),
        ("name", "Grace Hopper"),
        ("utm_source", "newsletter"),
        ("utm_medium", "email"),
        ("_redirect", "https://www.example.com/thanks"),
    ] {
        assert_eq!(
            fields.get(field).map(String::as_str),
            Some(value),
            "{field}"
        );
    }
    assert!(fields.contains_key("company"));
}

#[test]
fn form_multipart() {
    let (_, req) = read("form-multipart.json");
    let content_type = req.headers["content-type"].to_str().unwrap();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .expect("multipart content type with a boundary");
    assert!(req.is_base64_encoded);
    let body = String::from_utf8(body_bytes("form-multipart.json", &req)).unwrap();
    assert!(body.starts_with(&format!("--{boundary}\r\n")));
    assert!(body.ends_with(&format!("\r\n--{boundary}--\r\n")));
    for field in ["e-mail", "phone", "fname", "lname", "message"] {
        assert!(
            body.contains(&format!(
                "Content-Disposition: form-data; name=\"{field}\"\r\n\r\n"
            )),
            "{field}"
        );
    }
}

#[test]
fn form_preflight() {
    let (_, req) = read("form-preflight.json");
    assert_eq!(req.request_context.http.method, "OPTIONS");
    assert_eq!(
        req.route_key.as_deref(),
        Some("OPTIONS /webhooks/{provider}")
    );
    assert_eq!(req.headers["access-control-request-method"], "POST");
    assert!(req.headers.contains_key("origin"));
}

#[test]
fn form_invalid_has_no_contact() {
    let (_, req) = read("form-invalid.json");
    let body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body_bytes("form-invalid.json", &req)).unwrap();
    assert!(!body.is_empty());
    for field in ["email", "e-mail", "your-email", "phone", "tel"] {
        assert!(!body.contains_key(field), "{field}");
    }
}
