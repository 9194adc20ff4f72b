//! HubSpot: Webhooks API subscriptions and workflow "Send a webhook" actions.
//!
//! Authenticity (`HUBSPOT_CLIENT_SECRET`): v3, `X-HubSpot-Signature-v3 = base64(HMAC-SHA256(
//! secret, method + uri + body + timestamp))` with `X-HubSpot-Request-Timestamp` (ms) within 5
//! minutes, `uri` being the full URL called; or v2 (`X-HubSpot-Signature-Version: v2`,
//! `hex(SHA256(secret + method + uri + body))`). v1 (`SHA256(secret + body)`) is refused: it
//! binds neither URL nor time and is open to length extension; HubSpot sends v3 alongside it.
//!
//! Known replay limit of v2: it signs no timestamp, so a captured v2 delivery verifies forever
//! and can be replayed at will. The damage is bounded (workflow bodies dedupe on their content
//! hash for 24 hours, and a replay only repeats a touch the contact really made), but v3 is
//! preferred whenever both headers are present, and apps should send v3 (workflow webhooks
//! signed with the app's secret do). A v2-only delivery is counted in the logs ("hubspot v2
//! signature: no replay window").
//!
//! Bodies:
//! - an array of CRM events (`contact.creation`, `contact.propertyChange`, `contact.restore`...):
//!   object ids only. The contacts they name are announced ([`AnnouncedLead`]) and fetched from
//!   the CRM API ([`fetch`]: `GET {HUBSPOT_API_URL}/crm/v3/objects/contacts/{id}` with the
//!   private app token `HUBSPOT_ACCESS_TOKEN`), batched like Meta's and LinkedIn's leads
//!   (`batch`: delivery markers first, bounded concurrency, each contact stored on its own).
//!   The events of one contact in one delivery are one fetch and one submission, keyed by the
//!   portal, the contact and the time of its latest event: a retried delivery is a `duplicate`
//!   without a call to HubSpot, and a later change is a new submission that merges into the
//!   person's lead (newer values win). Other object types (companies, deals...) and contact
//!   deletions are answered as ignored;
//! - an object: a workflow webhook carrying the record's properties, either under `properties`
//!   (values plain or `{"value": ...}` as in the legacy contact format) or as a flat map. It
//!   becomes one submission keyed by a hash of the body (workflow webhooks carry no delivery id).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadflow::edge::InboundRequest;
use leadflow::fields::{apply_field, apply_url_params};
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::{Map, Value};

use super::{
    body_hash, epoch_time, fill, id_string, ignored, parse_json, quarantine, set_custom, str_at,
    value_text, ProviderOutcome,
};
use crate::announced::{refusal, required_token, short_message, AnnouncedLead, FetchError, Fetched};
use crate::platform_api::ApiError;
use crate::{Parse, Platform, Providers, Variable};

pub const PROVIDER: &str = "hubspot";

pub const CLIENT_SECRET: Variable = Variable::required_secret(
    "HUBSPOT_CLIENT_SECRET",
    "the HubSpot app's client secret (app > Auth)",
);

pub const ACCESS_TOKEN: Variable = Variable::optional_secret(
    "HUBSPOT_ACCESS_TOKEN",
    "a private app access token with crm.objects.contacts.read (Settings > Integrations > \
     Private apps), to fetch the contacts CRM events name (without it those events are \
     quarantined as platform_auth_failed)",
);
pub const DEFAULT_HUBSPOT_API_URL: &str = "https://api.hubapi.com";
pub const API_URL: Variable = Variable::setting(
    "HUBSPOT_API_URL",
    DEFAULT_HUBSPOT_API_URL,
    "the HubSpot API base URL (local stand-ins in tests and run-local)",
);
pub const CONTACT_PROPERTIES: Variable = Variable::setting(
    "HUBSPOT_CONTACT_PROPERTIES",
    "",
    "more contact properties to fetch with CRM events, comma-separated internal names \
     (kept as custom answers); the contact fields and first-touch attribution are always asked",
);

/// HubSpot v3: requests older than 5 minutes are rejected.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// HubSpot webhooks and workflow webhooks, `/webhooks/hubspot`.
pub const PLATFORM: Platform = Platform::new(
    PROVIDER,
    &CLIENT_SECRET,
    &[&CLIENT_SECRET, &ACCESS_TOKEN, &API_URL, &CONTACT_PROPERTIES],
    verify,
    Parse::Now(parse),
)
.with_fetch(|providers, lead, at| Box::pin(fetch(providers, lead, at)));

/// v3 when its header is present, else v2 (announced by `X-HubSpot-Signature-Version`).
pub fn verify(
    secret: &str,
    req: &InboundRequest,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    if let Some(v3) = req.header("x-hubspot-signature-v3") {
        return verify_hubspot_v3(
            secret,
            &req.method,
            &req.url,
            &req.body,
            Some(v3),
            req.header("x-hubspot-request-timestamp"),
            now,
        );
    }
    match (
        req.header("x-hubspot-signature"),
        req.header("x-hubspot-signature-version").map(str::trim),
    ) {
        (Some(sig), Some(v)) if v.eq_ignore_ascii_case("v2") => {
            tracing::warn!(
                provider = PROVIDER,
                "hubspot v2 signature: no replay window (send v3)"
            );
            verify_hubspot_v2(secret, &req.method, &req.url, &req.body, Some(sig))
        }
        (Some(_), _) => Err(SignatureError::Malformed(
            "X-HubSpot-Signature-Version (v1 is not accepted)",
        )),
        (None, _) => Err(SignatureError::Missing("X-HubSpot-Signature-v3")),
    }
}

/// HubSpot decodes these percent-escapes in the URI before signing it (v3 only); every other
/// byte, including other escapes, is signed as received.
fn hubspot_v3_uri(uri: &str) -> String {
    // The characters whose `%XX` escapes (either hex case) HubSpot decodes.
    const DECODE: &[u8] = b":/?@!$'()*,;";
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = bytes
            .get(i..i + 3)
            .filter(|triple| triple[0] == b'%')
            .and_then(|triple| std::str::from_utf8(&triple[1..]).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|c| DECODE.contains(c));
        match decoded {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only ASCII escapes were replaced by ASCII bytes, so the result is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// HubSpot v3: `X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client secret, method + uri + body +
/// timestamp))`, `X-HubSpot-Request-Timestamp` in milliseconds, at most 5 minutes old. The
/// signature is checked first, so `Stale` means "authentic but old".
pub fn verify_hubspot_v3(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let signature = signature::required(signature, "X-HubSpot-Signature-v3")?;
    let ts = signature::required(timestamp, "X-HubSpot-Request-Timestamp")?;
    let signed_at = signature::timestamp_millis(ts)?;
    let uri = hubspot_v3_uri(uri);
    signature::verify_hmac_base64(
        secret.as_bytes(),
        &[method.as_bytes(), uri.as_bytes(), body, ts.as_bytes()],
        signature,
    )?;
    signature::check_window(signed_at, now, TOLERANCE)
}

/// HubSpot v2: `X-HubSpot-Signature = hex(SHA256(client secret + method + uri + body))`.
pub fn verify_hubspot_v2(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    secret_digest(
        secret,
        &[method.as_bytes(), uri.as_bytes(), body],
        signature,
    )
}

/// HubSpot v1: `X-HubSpot-Signature = hex(SHA256(client secret + body))`. Kept for completeness
/// and the published vector; the webhook handler does not accept it (it binds neither the URL
/// nor a time, and `SHA256(secret + body)` allows length extension).
pub fn verify_hubspot_v1(
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    secret_digest(secret, &[body], signature)
}

/// v1 and v2: `X-HubSpot-Signature = hex(SHA256(client secret + parts))`. An empty secret
/// never matches (the digest would be of public bytes only).
fn secret_digest(
    secret: &str,
    parts: &[&[u8]],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = signature::required(signature, "X-HubSpot-Signature")?;
    if secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    let signed: Vec<&[u8]> = std::iter::once(secret.as_bytes())
        .chain(parts.iter().copied())
        .collect();
    signature::verify_sha256_hex(&signed, signature)
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "hubspot body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    match &v {
        Value::Array(events) => crm_events(events, req.received_at),
        Value::Object(obj) => workflow(req, obj),
        _ => quarantine("hubspot body is neither an event array nor an object"),
    }
}

/// The CRM events whose contact is fetched: it exists and holds the person's current data.
const FETCHED_EVENTS: &[&str] = &["contact.creation", "contact.propertyChange", "contact.restore"];

/// Event ids kept on a contact's `lead_gone` record (a delivery carries at most 100 events).
const MAX_EVENT_IDS: usize = 10;

/// The events of one contact in one delivery: one fetch, one submission.
#[derive(Debug, Clone)]
struct ContactEvents {
    portal_id: String,
    contact_id: String,
    /// When its latest event occurred: the submission's time and part of its key.
    latest: DateTime<Utc>,
    event_ids: Vec<String>,
    types: Vec<&'static str>,
}

/// HubSpot object and portal ids are integers; anything else is not put into a URL or a key.
fn is_hubspot_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

fn crm_events(events: &[Value], received_at: DateTime<Utc>) -> ProviderOutcome {
    let mut types: Vec<&str> = Vec::new();
    let mut contacts: BTreeMap<(String, String), ContactEvents> = BTreeMap::new();
    let mut malformed = 0usize;
    for e in events {
        // Deliveries name the type `subscriptionType`; HubSpot's documented example body names
        // it `eventType` (tests/fixtures/providers/hubspot-webhooks-events.json): both count.
        let Some(kind) = e
            .get("subscriptionType")
            .or_else(|| e.get("eventType"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        types.push(kind);
        let Some(fetched) = FETCHED_EVENTS.iter().find(|k| **k == kind) else {
            continue;
        };
        let id = |key: &str| e.get(key).and_then(id_string).filter(|i| is_hubspot_id(i));
        let (Some(portal_id), Some(contact_id)) = (id("portalId"), id("objectId")) else {
            malformed += 1;
            continue;
        };
        let at = e
            .get("occurredAt")
            .and_then(Value::as_i64)
            .and_then(epoch_time)
            .unwrap_or(received_at);
        let entry = contacts
            .entry((portal_id.clone(), contact_id.clone()))
            .or_insert_with(|| ContactEvents {
                portal_id,
                contact_id,
                latest: at,
                event_ids: Vec::new(),
                types: Vec::new(),
            });
        entry.latest = entry.latest.max(at);
        if let Some(event_id) = e.get("eventId").and_then(id_string) {
            if entry.event_ids.len() < MAX_EVENT_IDS {
                entry.event_ids.push(event_id.chars().take(32).collect());
            }
        }
        if !entry.types.contains(fetched) {
            entry.types.push(*fetched);
        }
    }
    types.sort_unstable();
    types.dedup();
    if types.is_empty() && !events.is_empty() {
        return quarantine("hubspot array holds no webhook events (no subscriptionType)");
    }
    if malformed > 0 {
        tracing::error!(
            provider = PROVIDER,
            malformed,
            "hubspot contact events without a usable portalId/objectId skipped"
        );
    }
    if contacts.is_empty() {
        if malformed > 0 {
            return quarantine(format!(
                "{malformed} hubspot contact event(s) without a usable portalId/objectId"
            ));
        }
        return ignored(format!(
            "{} hubspot CRM event(s) ({}) name no contact to fetch ({} are)",
            events.len(),
            types.join(", "),
            FETCHED_EVENTS.join(", ")
        ));
    }
    ProviderOutcome::Announced {
        leads: contacts.into_values().map(announce).collect(),
        withdrawn: Vec::new(),
    }
}

fn announce(c: ContactEvents) -> AnnouncedLead {
    let mut ids = BTreeMap::new();
    ids.insert("portal_id".to_string(), c.portal_id.clone());
    ids.insert("contact_id".to_string(), c.contact_id.clone());
    ids.insert("events".to_string(), c.types.join(","));
    if !c.event_ids.is_empty() {
        ids.insert("event_ids".to_string(), c.event_ids.join(","));
    }
    // The contact as of its latest event: a retry of the delivery has the same key, a later
    // change another.
    let key = format!(
        "contact-{}-{}-{}",
        c.portal_id,
        c.contact_id,
        c.latest.timestamp_millis()
    );
    AnnouncedLead::new(PROVIDER, DeliveryKey::Platform(key), ids, c)
}

/// The properties asked of the CRM API: those [`contact_submission`] reads, then the
/// configured extra ones (internal names only: letters, digits, `_`).
fn requested_properties(extra: &str) -> String {
    let mut names: Vec<&str> = CONTACT_FIELDS.to_vec();
    names.extend(["hs_analytics_first_url", "recent_conversion_event_name"]);
    for name in extra.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let usable = name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !usable {
            tracing::warn!(
                provider = PROVIDER,
                "HUBSPOT_CONTACT_PROPERTIES holds a name that is not a property's internal name: skipped"
            );
        } else if !names.contains(&name) && names.len() < 200 {
            names.push(name);
        }
    }
    names.join(",")
}

/// Reads one announced contact from the CRM API. Without a token the contact cannot be read:
/// an authorization failure (quarantined, replayable once it is set).
async fn fetch(providers: &Providers, announced: &AnnouncedLead, _received_at: DateTime<Utc>) -> Fetched {
    let c: &ContactEvents = announced.detail()?;
    let config = providers.config();
    let token = required_token(config.secret(&ACCESS_TOKEN))?;
    let url = format!(
        "{}/crm/v3/objects/contacts/{}?properties={}",
        config.setting(&API_URL),
        c.contact_id,
        requested_properties(config.setting(&CONTACT_PROPERTIES))
    );
    let bearer = format!("Bearer {token}");
    let data = providers
        .api()
        .get_json(&url, &[("authorization", &bearer)])
        .await
        .map_err(classify_hubspot)?;
    if data.get("archived").and_then(Value::as_bool) == Some(true) {
        return Err(FetchError::Gone {
            status: 200,
            code: None,
            message: "the contact is archived".to_string(),
        });
    }
    let Some(props) = data.get("properties").and_then(Value::as_object) else {
        return Err(FetchError::Rejected {
            status: 200,
            code: None,
        });
    };
    let mut sub = Submission::new(
        PROVIDER,
        announced.delivery.clone(),
        TouchKind::FormSubmission,
        c.latest,
    );
    contact_submission(&mut sub, props);
    let contact_id = data.get("id").and_then(id_string);
    set_custom(
        &mut sub,
        "hubspot_contact_id",
        contact_id.as_deref().unwrap_or(&c.contact_id),
    );
    set_custom(&mut sub, "hubspot_portal_id", &c.portal_id);
    Ok(sub)
}

/// HubSpot's refusals (its "Handling errors" page): 401 and 403 are the token, 404 a contact
/// that does not exist (deleted, merged away, or never in this portal), 423/429/477 and 5xx
/// pass. Error bodies are `{"status": "error", "message", "category", "correlationId"}`.
fn classify_hubspot(e: ApiError) -> FetchError {
    let (status, body) = match refusal(e) {
        Ok(r) => r,
        Err(sorted) => return sorted,
    };
    let body = body.unwrap_or_default();
    match status {
        401 | 403 => FetchError::Auth { status, code: None },
        404 | 410 => {
            let reason = [str_at(&body, "category"), str_at(&body, "message")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            FetchError::Gone {
                status,
                code: None,
                message: short_message(Some(reason.as_str())),
            }
        }
        423 | 429 | 477 | 500..=599 => {
            FetchError::Transient(format!("hubspot api answered HTTP {status}"))
        }
        _ => FetchError::Rejected { status, code: None },
    }
}

/// HubSpot's internal property names for what `apply_field` knows under other names.
fn hubspot_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "email" | "work_email" => "email",
        "firstname" => "first_name",
        "lastname" => "last_name",
        "phone" | "mobilephone" => "phone",
        "company" => "company",
        "jobtitle" => "job_title",
        "country" => "country",
        "utm_source" => "utm_source",
        "utm_medium" => "utm_medium",
        "utm_campaign" => "utm_campaign",
        "utm_term" => "utm_term",
        "utm_content" => "utm_content",
        "hs_google_click_id" => "gclid",
        "hs_facebook_click_id" => "fbclid",
        "hs_analytics_first_referrer" => "referrer",
        _ => return None,
    })
}

/// Record bookkeeping, not answers: never kept as custom fields.
fn is_bookkeeping(name: &str) -> bool {
    name.starts_with("hs_")
        || matches!(
            name,
            "createdate"
                | "lastmodifieddate"
                | "lifecyclestage"
                | "hubspot_owner_id"
                | "associatedcompanyid"
                | "vid"
                | "canonical-vid"
                | "portal-id"
                | "portalId"
                | "is-contact"
                | "objectId"
                | "objectType"
                | "recent_conversion_date"
                | "first_conversion_date"
                | "num_conversion_events"
                | "num_unique_conversion_events"
        )
}

/// A property's value: plain, or `{"value": ...}` in the legacy contact format.
fn property_text(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => o.get("value").and_then(value_text),
        other => value_text(other),
    }
}

fn workflow(req: &InboundRequest, obj: &Map<String, Value>) -> ProviderOutcome {
    let props = match obj.get("properties") {
        Some(Value::Object(p)) => p,
        Some(_) => return quarantine("hubspot properties is not an object"),
        None => obj,
    };
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(body_hash(PROVIDER, &req.body)),
        TouchKind::FormSubmission,
        req.received_at,
    );
    contact_submission(&mut sub, props);
    if sub.contact.email.is_none() && sub.contact.phone.is_none() {
        return quarantine("hubspot workflow payload has no email or phone property");
    }
    ProviderOutcome::Submissions(vec![sub])
}

/// Contact fields in the order they are applied, so `email` wins over `work_email` and
/// `phone` over `mobilephone` whatever the JSON order.
const CONTACT_FIELDS: [&str; 17] = [
    "email",
    "work_email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "jobtitle",
    "country",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "hs_google_click_id",
    "hs_facebook_click_id",
    "hs_analytics_first_referrer",
];

/// A contact's properties (a workflow webhook's, or the CRM API's) into `sub`: contact fields,
/// first-touch attribution, the rest as custom answers (record bookkeeping left out).
fn contact_submission(sub: &mut Submission, props: &Map<String, Value>) {
    sub.source_hint = Some(PROVIDER.to_string());
    for name in CONTACT_FIELDS {
        if let (Some(field), Some(text)) =
            (hubspot_field(name), props.get(name).and_then(property_text))
        {
            apply_field(sub, field, &text);
        }
    }
    if let Some(url) = props.get("hs_analytics_first_url").and_then(property_text) {
        fill(&mut sub.attribution.landing_page, Some(&url));
        apply_url_params(sub, &url);
    }
    if let Some(form) = props
        .get("recent_conversion_event_name")
        .and_then(property_text)
    {
        fill(&mut sub.attribution.form_id, Some(&form));
    }
    for (name, value) in props {
        if hubspot_field(name).is_some()
            || is_bookkeeping(name)
            || name == "recent_conversion_event_name"
        {
            continue;
        }
        if let Some(text) = property_text(value) {
            set_custom(sub, name, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const SECRET: &str = "test-hubspot-client-secret";
    const URL: &str = "https://hooks.example.com/webhooks/test";
    const NOW_MS: i64 = 1_700_000_000_000;

    fn providers() -> Providers {
        configured(&[("HUBSPOT_CLIENT_SECRET", SECRET)])
    }

    fn v3(body: &str, ts_ms: i64) -> InboundRequest {
        let ts = ts_ms.to_string();
        let sig = b64_hmac(
            SECRET,
            &[b"POST", URL.as_bytes(), body.as_bytes(), ts.as_bytes()],
        );
        request(
            "POST",
            body.as_bytes(),
            &[
                ("X-HubSpot-Signature-v3", &sig),
                ("X-HubSpot-Request-Timestamp", &ts),
                ("content-type", "application/json"),
            ],
            &[],
        )
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        at(NOW_MS / 1000)
    }

    const EVENTS: &str = r#"[{"eventId":1,"subscriptionId":25,"portalId":33,"appId":1160452,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW"},{"eventId":2,"subscriptionId":26,"portalId":33,"appId":1160452,"occurredAt":1700000000000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,"propertyName":"email","propertyValue":"x@example.com","changeSource":"CRM"}]"#;

    const LEGACY_CONTACT: &str = r#"{"vid":3234574,"canonical-vid":3234574,"portal-id":62515,"is-contact":true,"properties":{"email":{"value":"brian@example.com","versions":[{"value":"brian@example.com","source-type":"FORM"}]},"firstname":{"value":"Brian"},"lastname":{"value":"Halligan"},"company":{"value":"HubSpot"},"phone":{"value":"+1 617 555 0100"},"hs_analytics_first_url":{"value":"https://www.example.com/pricing?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q3"},"recent_conversion_event_name":{"value":"Pricing form"},"numemployees":{"value":"51-200"},"createdate":{"value":"1700000000000"},"hs_object_id":{"value":"3234574"}},"form-submissions":[],"identity-profiles":[]}"#;

    const FLAT: &str = r#"{"email":"ada@example.com","firstname":"Ada","mobilephone":"+44 20 7946 0958","jobtitle":"Analyst","industry":"Computing","hs_object_id":"51","utm_source":"newsletter"}"#;

    // --- CRM events: contacts fetched from the CRM API (stand-in: http-stub) ---

    const TOKEN: &str = "test-hubspot-access-token";

    /// HubSpot's own "Retrieve a contact" example (tests/fixtures/providers/README.md).
    const CRM_CONTACT: &str = include_str!("../../tests/fixtures/providers/hubspot-crm-contact.json");

    fn crm_providers(api: &str, extra: &[(&str, &str)]) -> Providers {
        // `configured` takes a variable's first value: the test's own come first.
        let mut vars = extra.to_vec();
        vars.extend_from_slice(&[
            ("HUBSPOT_CLIENT_SECRET", SECRET),
            ("HUBSPOT_ACCESS_TOKEN", TOKEN),
            ("HUBSPOT_API_URL", api),
            ("PLATFORM_API_TIMEOUT_MS", "300"),
        ]);
        configured(&vars)
    }

    /// The CRM API as HubSpot answers: the token checked, contacts by id, its error bodies.
    fn crm_api(req: &Recorded) -> Reply {
        if req.headers.get("authorization").map(String::as_str) != Some("Bearer test-hubspot-access-token") {
            return Reply::Json(
                401,
                r#"{"status":"error","message":"Authentication credentials not found.","correlationId":"c1","category":"INVALID_AUTHENTICATION"}"#.into(),
            );
        }
        let id = req
            .target
            .trim_start_matches("/crm/v3/objects/contacts/")
            .split('?')
            .next()
            .unwrap_or_default();
        match id {
            "98630638716" | "123" => Reply::Json(200, CRM_CONTACT.into()),
            "429" => Reply::Json(429, r#"{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}"#.into()),
            "500" => Reply::Json(500, "oops".into()),
            "777" => Reply::Hang,
            "888" => Reply::Json(200, CRM_CONTACT.replace(r#""archived": false"#, r#""archived": true"#)),
            "999" => Reply::Json(200, r#"{"id":"999","archived":false}"#.into()),
            _ => Reply::Json(404, r#"{"status":"error","message":"resource not found","correlationId":"c2","category":"OBJECT_NOT_FOUND"}"#.into()),
        }
    }

    fn contact_events(portal: u64, contact: &str, kinds: &[(&str, i64)]) -> String {
        let events: Vec<Value> = kinds
            .iter()
            .enumerate()
            .map(|(i, (kind, at))| {
                serde_json::json!({"eventId": 100 + i, "subscriptionId": 25, "portalId": portal,
                    "appId": 1160452, "occurredAt": at, "subscriptionType": kind,
                    "attemptNumber": 0, "objectId": contact, "changeSource": "CRM"})
            })
            .collect();
        Value::Array(events).to_string()
    }

    #[tokio::test]
    async fn crm_events_announce_each_contact_once() {
        let p = crm_providers("http://127.0.0.1:9", &[]);
        let (leads, withdrawn) = announced(
            p.handle("hubspot", &v3(EVENTS, NOW_MS), now())
                .await
                .unwrap(),
        );
        assert!(withdrawn.is_empty());
        // A creation and a property change of contact 123: one fetch.
        assert_eq!(leads.len(), 1);
        let lead = &leads[0];
        assert_eq!(lead.provider, "hubspot");
        assert_eq!(
            lead.delivery,
            DeliveryKey::Platform("contact-33-123-1700000000000".into())
        );
        assert_eq!(lead.ids["contact_id"], "123");
        assert_eq!(lead.ids["portal_id"], "33");
        assert_eq!(lead.ids["events"], "contact.creation,contact.propertyChange");
        // Nothing of the property value (personal data) is kept.
        assert!(!format!("{lead:?}").contains("x@example.com"));

        // Two contacts, the later event decides the key; ids as strings count too.
        let body = r#"[{"subscriptionType":"contact.propertyChange","portalId":"33","objectId":"5","occurredAt":1700000000000},
            {"subscriptionType":"contact.propertyChange","portalId":33,"objectId":5,"occurredAt":1700000009000},
            {"subscriptionType":"contact.restore","portalId":33,"objectId":6,"occurredAt":1700000001000},
            {"subscriptionType":"company.creation","portalId":33,"objectId":7,"occurredAt":1700000001000}]"#;
        let (leads, _) = announced(p.handle("hubspot", &v3(body, NOW_MS), now()).await.unwrap());
        let keys: Vec<&str> = leads.iter().map(|l| l.platform_id()).collect();
        assert_eq!(keys, ["contact-33-5-1700000009000", "contact-33-6-1700000001000"]);
    }

    #[tokio::test]
    async fn crm_events_without_a_contact_to_fetch() {
        let p = crm_providers("http://127.0.0.1:9", &[]);
        // Deletions and other objects: nothing to fetch.
        let body = r#"[{"subscriptionType":"contact.deletion","portalId":33,"objectId":5},{"subscriptionType":"deal.creation","portalId":33,"objectId":9}]"#;
        let reason = ignored_reason(p.handle("hubspot", &v3(body, NOW_MS), now()).await.unwrap());
        assert!(reason.contains("contact.deletion, deal.creation"), "{reason}");
        // Contact events whose ids cannot go into a URL or a key: quarantined.
        for bad in [r#""12/../34""#, r#""""#, "1.5", r#""123456789012345678901234""#, "null"] {
            let body = format!(r#"[{{"subscriptionType":"contact.creation","portalId":33,"objectId":{bad}}}]"#);
            let reason = quarantine_reason(p.handle("hubspot", &v3(&body, NOW_MS), now()).await.unwrap());
            assert!(reason.contains("without a usable portalId/objectId"), "{bad}: {reason}");
        }
    }

    #[tokio::test]
    async fn a_contact_is_fetched_with_the_token_and_becomes_a_submission() {
        let api = MockApi::start_with_headers(crm_api).await;
        let p = crm_providers(&api.base, &[("HUBSPOT_CONTACT_PROPERTIES", "industry, bad name,numemployees")]);
        let body = contact_events(62515, "98630638716", &[("contact.creation", 1_739_288_700_400)]);
        let out = p.handle("hubspot", &v3(&body, NOW_MS), now()).await.unwrap();
        let results = fetch_each(&p, out).await;
        let s = results[0].as_ref().expect("fetched");
        assert_eq!(s.provider, "hubspot");
        assert_eq!(s.kind, TouchKind::FormSubmission);
        assert_eq!(s.occurred_at.timestamp_millis(), 1_739_288_700_400);
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("contact-62515-98630638716-1739288700400".into())
        );
        assert_eq!(s.contact.email.as_deref(), Some("mark.s@lumon.industries"));
        assert_eq!(s.contact.first_name.as_deref(), Some("Mark"));
        assert_eq!(s.contact.last_name.as_deref(), Some("S."));
        assert_eq!(s.source_hint.as_deref(), Some("hubspot"));
        assert_eq!(s.custom["hubspot_contact_id"], "98630638716");
        assert_eq!(s.custom["hubspot_portal_id"], "62515");
        // Bookkeeping is not kept as answers.
        assert!(!s.custom.contains_key("createdate"));
        assert!(!s.custom.contains_key("hs_object_id"));
        let sent = &api.requests()[0];
        assert_eq!(sent.headers["authorization"], "Bearer test-hubspot-access-token");
        assert!(
            sent.target.starts_with("/crm/v3/objects/contacts/98630638716?properties=email,work_email,firstname,"),
            "{}",
            sent.target
        );
        // The extra properties asked, the unusable name left out, and never the token in the URL.
        assert!(sent.target.ends_with(",industry,numemployees"), "{}", sent.target);
        assert!(!sent.target.contains("bad"));
        assert!(!sent.target.contains(TOKEN));
    }

    #[tokio::test]
    async fn crm_api_refusals_are_sorted() {
        let api = MockApi::start_with_headers(crm_api).await;
        let p = crm_providers(&api.base, &[]);
        async fn fetch_one(p: &Providers, contact: &str) -> Fetched {
            let body = contact_events(33, contact, &[("contact.creation", 1_700_000_000_000)]);
            let out = p.handle("hubspot", &v3(&body, NOW_MS), now()).await.unwrap();
            fetch_each(p, out).await.remove(0)
        }
        match fetch_one(&p, "404").await {
            Err(FetchError::Gone { status: 404, message, .. }) => {
                assert_eq!(message, "OBJECT_NOT_FOUND: resource not found")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(fetch_one(&p, "888").await, Err(FetchError::Gone { status: 200, .. })));
        assert!(matches!(fetch_one(&p, "999").await, Err(FetchError::Rejected { status: 200, .. })));
        for transient in ["429", "500", "777"] {
            match fetch_one(&p, transient).await {
                Err(e @ FetchError::Transient(_)) => assert!(!e.to_string().contains(TOKEN)),
                other => panic!("{transient}: {other:?}"),
            }
        }
        // A wrong token, and none at all: authorization failures.
        let wrong = crm_providers(&api.base, &[("HUBSPOT_ACCESS_TOKEN", "expired")]);
        assert!(matches!(fetch_one(&wrong, "123").await, Err(FetchError::Auth { status: 401, .. })));
        let none = configured(&[("HUBSPOT_CLIENT_SECRET", SECRET), ("HUBSPOT_API_URL", &api.base)]);
        assert!(matches!(fetch_one(&none, "123").await, Err(FetchError::Auth { status: 0, .. })));
    }

    #[tokio::test]
    async fn workflow_webhook_with_legacy_properties() {
        let s = one(providers()
            .handle("hubspot", &v3(LEGACY_CONTACT, NOW_MS), now())
            .await
            .unwrap());
        assert_eq!(s.contact.email.as_deref(), Some("brian@example.com"));
        assert_eq!(s.contact.first_name.as_deref(), Some("Brian"));
        assert_eq!(s.contact.company.as_deref(), Some("HubSpot"));
        assert_eq!(s.contact.phone.as_deref(), Some("+1 617 555 0100"));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("linkedin"));
        assert_eq!(s.attribution.utm_campaign.as_deref(), Some("q3"));
        assert_eq!(s.attribution.form_id.as_deref(), Some("Pricing form"));
        assert_eq!(
            s.attribution.landing_page.as_deref(),
            Some("https://www.example.com/pricing?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q3")
        );
        assert_eq!(
            s.custom.get("numemployees").map(String::as_str),
            Some("51-200")
        );
        assert!(!s.custom.contains_key("createdate"));
        assert!(!s.custom.contains_key("hs_object_id"));
        // Keyed by the body: the same delivery again has the same key.
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform(body_hash("hubspot", LEGACY_CONTACT.as_bytes()))
        );
        assert_eq!(s.kind, TouchKind::FormSubmission);
    }

    #[tokio::test]
    async fn workflow_webhook_with_flat_properties_and_v2() {
        use sha2::{Digest, Sha256};
        let sig = hex::encode(Sha256::digest(
            [SECRET.as_bytes(), b"POST", URL.as_bytes(), FLAT.as_bytes()].concat(),
        ));
        let req = request(
            "POST",
            FLAT.as_bytes(),
            &[
                ("X-HubSpot-Signature", &sig),
                ("X-HubSpot-Signature-Version", "v2"),
            ],
            &[],
        );
        let s = one(providers().handle("hubspot", &req, now()).await.unwrap());
        assert_eq!(s.contact.email.as_deref(), Some("ada@example.com"));
        assert_eq!(s.contact.phone.as_deref(), Some("+44 20 7946 0958"));
        assert_eq!(s.contact.job_title.as_deref(), Some("Analyst"));
        assert_eq!(s.attribution.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(s.custom["industry"], "Computing");
        // v2 over another method does not verify.
        let mut get = req.clone();
        get.method = "PUT".into();
        assert!(verify(SECRET, &get, now()).is_err());
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers();
        // Tampered body.
        let mut req = v3(FLAT, NOW_MS);
        req.body = FLAT.replace("Ada", "Eve").into_bytes();
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Wrong secret.
        let ts = NOW_MS.to_string();
        let sig = b64_hmac(
            "other",
            &[b"POST", URL.as_bytes(), FLAT.as_bytes(), ts.as_bytes()],
        );
        let req = request(
            "POST",
            FLAT.as_bytes(),
            &[
                ("X-HubSpot-Signature-v3", &sig),
                ("X-HubSpot-Request-Timestamp", &ts),
            ],
            &[],
        );
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Another URL (a different query string) does not verify.
        let mut req = v3(FLAT, NOW_MS);
        req.url = format!("{URL}?x=1");
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
        // Stale: authentic but signed 6 minutes ago.
        let e = p
            .handle("hubspot", &v3(FLAT, NOW_MS - 360_000), now())
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "stale_timestamp"));
        // Missing.
        let req = request("POST", FLAT.as_bytes(), &[], &[]);
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "missing_signature"
        );
        // v3 without its timestamp.
        let mut req = v3(FLAT, NOW_MS);
        req.headers.remove("x-hubspot-request-timestamp");
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "missing_signature"
        );
        // v1 alone is refused.
        let req = request(
            "POST",
            FLAT.as_bytes(),
            &[
                ("X-HubSpot-Signature", "00"),
                ("X-HubSpot-Signature-Version", "v1"),
            ],
            &[],
        );
        assert_eq!(
            p.handle("hubspot", &req, now()).await.unwrap_err().code(),
            "invalid_signature"
        );
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (body, want) in [
            ("[{\"eventId\":", "JSON"),
            ("\"just a string\"", "neither"),
            (r#"{"properties":[1,2]}"#, "not an object"),
            (
                r#"{"firstname":"No","lastname":"Contact"}"#,
                "no email or phone",
            ),
            (r#"[{"hello":"world"}]"#, "no webhook events"),
        ] {
            let reason =
                quarantine_reason(p.handle("hubspot", &v3(body, NOW_MS), now()).await.unwrap());
            assert!(reason.contains(want), "{reason}");
        }
    }

    // --- The signature scheme (published vectors first) ---

    const HS_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const HS_BODY: &[u8] = b"{'example_field':'example_value'}";
    const HS_URI: &str = "https://www.example.com/webhook_uri";

    #[test]
    fn hubspot_v1_vector() {
        let sig = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750";
        assert_eq!(verify_hubspot_v1(HS_SECRET, HS_BODY, Some(sig)), Ok(()));
        assert_eq!(
            verify_hubspot_v1(HS_SECRET, b"{'example_field':'other'}", Some(sig)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn hubspot_v2_vector() {
        let sig = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383";
        assert_eq!(
            verify_hubspot_v2(HS_SECRET, "POST", HS_URI, HS_BODY, Some(sig)),
            Ok(())
        );
        assert_eq!(
            verify_hubspot_v2(HS_SECRET, "GET", HS_URI, HS_BODY, Some(sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hubspot_v2("wrong", "POST", HS_URI, HS_BODY, Some(sig)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn hubspot_v3_vector() {
        let sig = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";
        let now = at_ms(15_000_000 + 60_000);
        assert_eq!(
            verify_hubspot_v3(
                HS_SECRET,
                "POST",
                HS_URI,
                HS_BODY,
                Some(sig),
                Some("15000000"),
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn hubspot_v3_failure_modes() {
        let body = br#"[{"eventId":1}]"#;
        let ts = "1700000000000";
        let now = at_ms(1_700_000_000_000 + 30_000);
        let uri = "https://hooks.example.com/webhooks/hubspot?key=a%3Ab";
        // HubSpot signs the URI with `%3A` decoded.
        let signed_uri = "https://hooks.example.com/webhooks/hubspot?key=a:b";
        let sig = b64(&hmac_sha256(
            b"hs",
            &[b"POST", signed_uri.as_bytes(), body, ts.as_bytes()],
        ));
        let check = |secret: &str, body: &[u8], sig: Option<&str>, ts: Option<&str>, now| {
            verify_hubspot_v3(secret, "POST", uri, body, sig, ts, now)
        };
        assert_eq!(check("hs", body, Some(&sig), Some(ts), now), Ok(()));
        assert_eq!(
            check("hs", br#"[{"eventId":2}]"#, Some(&sig), Some(ts), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("other", body, Some(&sig), Some(ts), now),
            Err(SignatureError::Mismatch)
        );
        // Authentic but 6 minutes old, or from the future.
        assert_eq!(
            check(
                "hs",
                body,
                Some(&sig),
                Some(ts),
                at_ms(1_700_000_000_000 + 360_000)
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(
                "hs",
                body,
                Some(&sig),
                Some(ts),
                at_ms(1_700_000_000_000 - 360_000)
            ),
            Err(SignatureError::Stale)
        );
        // A fresh timestamp swapped in breaks the signature.
        assert_eq!(
            check("hs", body, Some(&sig), Some("1700000020000"), now),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            check("hs", body, None, Some(ts), now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            check("hs", body, Some(&sig), None, now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            check("hs", body, Some(&sig), Some("yesterday"), now),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn hubspot_uri_decoding_is_limited_to_its_list() {
        assert_eq!(
            hubspot_v3_uri("https://x.io/a%2Fb?q=%3a%20%C3%A4%3B"),
            "https://x.io/a/b?q=:%20%C3%A4;"
        );
        assert_eq!(hubspot_v3_uri("%"), "%");
        assert_eq!(hubspot_v3_uri("ä%2"), "ä%2");
    }
}
