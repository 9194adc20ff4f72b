//! A local stand-in for the stack's API Gateway HTTP API, for tools that speak HTTP to the
//! functions (schemathesis, `scripts/api-contract`): it routes by template.yaml's `HttpApi`
//! events, as API Gateway does, and turns each request into the payload 2.0 event API Gateway
//! sends (`rawPath`, `rawQueryString`, lowercase headers with `cookies` apart, a base64 body
//! unless it is text, `requestContext` with `routeKey`, `$default` stage, `timeEpoch` in ms),
//! runs the function's own handler on it in process, and writes its answer back.
//!
//! A request no route of the template takes is answered as API Gateway answers it: 404
//! `{"message":"Not Found"}`, before any function runs. So a route the contract documents and
//! the template does not deploy fails here as it would on AWS.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use serde_norway::Value;

/// One `HttpApi` event of the template: `GET /leads/{id}` served by the function whose build
/// binary is `lead-api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// The function's binary (`Metadata.BuildProperties.Binary`): `form-webhook`, `lead-api`...
    pub function: String,
}

impl HttpRoute {
    /// API Gateway's route key, `GET /leads/{id}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every `HttpApi` event of every function in the template.
pub fn http_routes(template_yaml: &str) -> Result<Vec<HttpRoute>, String> {
    let doc = leadflow_tools::schema::parse_template(template_yaml)?;
    let mut out = Vec::new();
    for (_, res) in leadflow_tools::schema::resources_of_type(&doc, "AWS::Serverless::Function")? {
        let Some(binary) = res
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let events = res
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        for event in events.into_iter().flat_map(|m| m.values()) {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties");
            let field = |name: &str| {
                props
                    .and_then(|p| p.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("{binary}: an HttpApi event without {name}"))
            };
            out.push(HttpRoute {
                method: field("Method")?.to_ascii_uppercase(),
                path: field("Path")?,
                function: binary.to_string(),
            });
        }
    }
    Ok(out)
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The route API Gateway picks for a request, with its path parameters: the template's path
/// must match segment by segment (`{name}` takes one non-empty segment), the method must be the
/// route's (or `ANY`), and the most specific match wins (the most literal segments).
pub fn select<'r>(
    routes: &'r [HttpRoute],
    method: &str,
    raw_path: &str,
) -> Option<(&'r HttpRoute, BTreeMap<String, String>)> {
    let got = segments(raw_path);
    let mut best: Option<(&HttpRoute, BTreeMap<String, String>, usize)> = None;
    for route in routes {
        if route.method != method && route.method != "ANY" {
            continue;
        }
        let want = segments(&route.path);
        if want.len() != got.len() {
            continue;
        }
        let mut params = BTreeMap::new();
        let mut literals = 0;
        let matched = want.iter().zip(&got).all(|(w, g)| {
            match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) => {
                    let value = percent_decode(g);
                    params.insert(name.to_string(), value);
                    true
                }
                None => {
                    literals += 1;
                    w == g
                }
            }
        });
        if matched && best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((route, params, literals));
        }
    }
    best.map(|(r, p, _)| (r, p))
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Bodies API Gateway passes as text; every other body arrives base64-encoded.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || media == "application/json"
        || media.ends_with("+json")
        || media == "application/xml"
        || media.ends_with("+xml")
        || media == "application/javascript"
}

/// The payload 2.0 event of one HTTP request for `route`.
pub fn event(
    route: &HttpRoute,
    params: BTreeMap<String, String>,
    req: &http_stub::http1::Request,
    host: &str,
) -> ApiGatewayV2httpRequest {
    let (raw_path, raw_query) = req
        .target
        .split_once('?')
        .unwrap_or((req.target.as_str(), ""));
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_string()));
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value)
            })
            .or_insert_with(|| value.clone());
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v)
            })
            .or_insert_with(|| v.into_owned());
    }
    let text = is_text(headers.get("content-type").map(String::as_str));
    let body = if req.body.is_empty() {
        None
    } else if text {
        match std::str::from_utf8(&req.body) {
            Ok(s) => Some((s.to_string(), false)),
            Err(_) => Some((
                base64::engine::general_purpose::STANDARD.encode(&req.body),
                true,
            )),
        }
    } else {
        Some((
            base64::engine::general_purpose::STANDARD.encode(&req.body),
            true,
        ))
    };
    let now = chrono::Utc::now();
    let mut value = serde_json::json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(host),
            "http": {"method": req.method, "path": raw_path, "protocol": req.version,
                     "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("user-agent").cloned().unwrap_or_default()},
            "requestId": leadflow::store::new_id(),
            "routeKey": route.key(),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": body.as_ref().is_some_and(|(_, b64)| *b64),
    });
    if !cookies.is_empty() {
        value["cookies"] = serde_json::json!(cookies);
    }
    if !query.is_empty() {
        value["queryStringParameters"] = serde_json::json!(query);
    }
    if !params.is_empty() {
        value["pathParameters"] = serde_json::json!(params);
    }
    if let Some((b, _)) = body {
        value["body"] = b.into();
    }
    serde_json::from_value(value).expect("a payload 2.0 event")
}

/// A function's answer as HTTP: status, headers (`cookies` as `Set-Cookie`), body bytes.
pub fn answer(resp: ApiGatewayV2httpResponse) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    for (k, v) in resp.multi_value_headers.iter() {
        if let Ok(v) = v.to_str() {
            headers.push((k.as_str().to_string(), v.to_string()));
        }
    }
    for c in &resp.cookies {
        headers.push(("set-cookie".to_string(), c.clone()));
    }
    let body = match resp.body {
        Some(Body::Text(t)) if resp.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(t.as_bytes())
            .unwrap_or_default(),
        Some(Body::Text(t)) => t.into_bytes(),
        Some(Body::Binary(b)) => b,
        _ => Vec::new(),
    };
    (resp.status_code as u16, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../template.yaml");

    #[test]
    fn routes_follow_the_template_and_literals_win() {
        let routes = http_routes(TEMPLATE).unwrap();
        let pick =
            |m: &str, p: &str| select(&routes, m, p).map(|(r, p)| (r.key(), r.function.clone(), p));
        let (key, function, params) = pick("GET", "/leads/01ABC").unwrap();
        assert_eq!(
            (key.as_str(), function.as_str()),
            ("GET /leads/{id}", "lead-api")
        );
        assert_eq!(params["id"], "01ABC");
        assert_eq!(pick("GET", "/leads/export").unwrap().0, "GET /leads/export");
        assert_eq!(
            pick("POST", "/webhooks/form").unwrap().0,
            "POST /webhooks/form"
        );
        assert_eq!(
            pick("POST", "/webhooks/tally").unwrap().0,
            "POST /webhooks/{provider}"
        );
        // The web form's preflight goes to the platforms' OPTIONS route, the same function.
        let (key, function, _) = pick("OPTIONS", "/webhooks/form").unwrap();
        assert_eq!(
            (key.as_str(), function.as_str()),
            ("OPTIONS /webhooks/{provider}", "form-webhook")
        );
        assert_eq!(pick("POST", "/reviews").unwrap().1, "referral-review");
        assert_eq!(pick("GET", "/reviews/aggregates").unwrap().1, "lead-api");
        assert!(pick("PUT", "/leads/1").is_none());
        assert!(pick("GET", "/leads/1/2/3").is_none());
    }

    /// docs/openapi.yaml and template.yaml name the same operations: every deployed route is
    /// documented, and every documented operation reaches a function through API Gateway.
    #[test]
    fn the_contract_documents_exactly_the_deployed_routes() {
        let routes = http_routes(TEMPLATE).unwrap();
        let doc: Value = serde_norway::from_str(include_str!("../../docs/openapi.yaml")).unwrap();
        let paths = doc["paths"].as_mapping().unwrap();
        let documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                let path = path.as_str().unwrap().to_string();
                item.as_mapping()
                    .unwrap()
                    .keys()
                    .filter_map(Value::as_str)
                    .filter(|m| ["get", "post", "put", "patch", "delete", "options"].contains(m))
                    .map(move |m| (m.to_ascii_uppercase(), path.clone()))
            })
            .collect();
        for r in &routes {
            assert!(
                documented.contains(&(r.method.clone(), r.path.clone())),
                "{} is deployed but not in docs/openapi.yaml",
                r.key()
            );
        }
        for (method, path) in &documented {
            let concrete = path.replace("{id}", "01ABC").replace("{provider}", "tally");
            assert!(
                select(&routes, method, &concrete).is_some(),
                "{method} {path} is documented but no route of template.yaml takes it"
            );
        }
    }

    #[test]
    fn text_bodies_stay_text_and_others_are_base64() {
        assert!(is_text(Some("application/json; charset=utf-8")));
        assert!(is_text(Some("text/csv")));
        assert!(!is_text(Some("multipart/form-data; boundary=x")));
        assert!(!is_text(Some("application/x-www-form-urlencoded")));
        assert!(!is_text(None));
        assert_eq!(percent_decode("a%20b+c"), "a b+c");
    }
}
