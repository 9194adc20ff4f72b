//! LinkedIn Lead Sync (Lead Gen Forms).
//!
//! - Validation: `GET ?challengeCode=<uuid>` answered 200 with JSON `{"challengeCode",
//!   "challengeResponse": hex(HMAC-SHA256(client secret, challengeCode))}` (LinkedIn re-checks
//!   every 2 hours and wants the answer within 3 s: no I/O on this path). Only a canonical UUID
//!   is answered (else 400): the challenge HMACs with the same key as the POST signature, and
//!   a POST signs `"hmacsha256=" + body`, which no UUID can equal, so the validation endpoint
//!   can never be asked to sign a forged POST.
//! - Push: `POST` JSON lead notification, `X-LI-Signature = hex(HMAC-SHA256(client secret,
//!   "hmacsha256=" + raw body))`, the header with or without the `hmacsha256=` prefix
//!   (`LINKEDIN_CLIENT_SECRET`).
//! - The notification names the lead only; it is fetched from the Lead Sync API:
//!   `GET {LINKEDIN_API_URL}/leadFormResponses/{id}` with `LINKEDIN_ACCESS_TOKEN`, the
//!   `LinkedIn-Version` header (`LINKEDIN_API_VERSION`) and Rest.li 2.0, projecting the form
//!   (`form:(hiddenFields,creationLocale,name,id,content)`) so answers can be mapped by question.
//!
//! Assumptions, from LinkedIn's Lead Sync documentation ("Lead Notifications", "Lead Form
//! Responses", the lead sync schema) and its published Postman collection:
//! - The notification is `{"type": "LEAD_ACTION", "leadGenFormResponse":
//!   "urn:li:leadGenFormResponse:<id>", "leadGenForm": "urn:li:versionedLeadGenForm:(...)",
//!   "owner": {...}, "associatedEntity": {...}, "leadType": "SPONSORED" | "EVENT" | "COMPANY" |
//!   "ORGANIZATION_PRODUCT", "leadAction": "CREATED" | "DELETED", "occurredAt": <epoch>}`. One
//!   object per POST; an array of them is accepted too.
//! - Lead notifications carry no `notificationId` (that field belongs to organization social
//!   action notifications). The idempotency key is the lead's own id, the `<id>` of the
//!   `leadGenFormResponse` URN: a re-delivered notification, or two subscriptions announcing the
//!   same lead, map to the same key.
//! - The response is `{id, submittedAt (ms), testLead, leadType, owner, versionedLeadGenFormUrn,
//!   leadMetadata{sponsoredLeadMetadata{campaign}}, associatedEntity{associatedCreative},
//!   formResponse{answers[{questionId, answerDetails{textQuestionAnswer{answer} |
//!   multipleChoiceAnswer{options[]}}}], consentResponses[{consentId, accepted}]}, form{...}}`
//!   where the form's `content.questions[]` give `predefinedField` (FIRST_NAME, EMAIL,
//!   WORK_EMAIL, PHONE_NUMBER, COMPANY_NAME, JOB_TITLE, COUNTRY...) or a custom question text.
//! - `leadAction: DELETED` (the member deleted the lead at LinkedIn): the touchpoint that lead
//!   became is marked withdrawn and its answers dropped (`store::withdraw_delivery`); the person's
//!   lead stays (other touches may back it; erasure is the lead API's job).
//! - Sponsored leads are paid social; event, company-page and product-page leads organic social.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use leadflow::edge::{json_response, InboundRequest, Response};
use leadflow::fields::apply_field;
use leadflow::model::{Channel, Consent, DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::{json, Value};

use crate::announced::{code_text, refusal, short_message, Fetched};
use crate::oauth::RefreshGrant;

/// When a delivery was received.
type Time = chrono::DateTime<chrono::Utc>;
use crate::announced::{AnnouncedLead, FetchError, WithdrawnLead};
use crate::platform_api::ApiError;
use crate::{
    epoch_time, fill, id_string, ignored, parse_json, quarantine, set_custom, str_at, Parse,
    Platform, ProviderError, ProviderOutcome, Providers, Variable,
};

pub const PROVIDER: &str = "linkedin";

pub const CLIENT_SECRET: Variable = Variable::required_secret(
    "LINKEDIN_CLIENT_SECRET",
    "the LinkedIn app's Primary Client Secret (app > Auth): signs deliveries and challenges",
);
pub const ACCESS_TOKEN: Variable = Variable::optional_secret(
    "LINKEDIN_ACCESS_TOKEN",
    "an OAuth token with r_marketing_leadgen_automation for the lead's account or page, to \
     fetch the leads (without it every lead is quarantined as platform_auth_failed)",
);
pub const ACCESS_TOKEN_EXPIRES_AT: Variable = Variable::setting(
    "LINKEDIN_ACCESS_TOKEN_EXPIRES_AT",
    "",
    "RFC 3339 expiry of LINKEDIN_ACCESS_TOKEN (written with each refresh; blank = unknown, then \
     the token is refreshed when the API refuses it)",
);
pub const REFRESH_TOKEN: Variable = Variable::optional_secret(
    "LINKEDIN_REFRESH_TOKEN",
    "the programmatic refresh token of the same authorization (LinkedIn gives one to approved \
     Marketing Developer Platform apps; valid a year): keeps the access token alive",
);
pub const REFRESH_TOKEN_EXPIRES_AT: Variable = Variable::setting(
    "LINKEDIN_REFRESH_TOKEN_EXPIRES_AT",
    "",
    "RFC 3339 expiry of LINKEDIN_REFRESH_TOKEN (a warning is logged 30 days before)",
);
pub const CLIENT_ID: Variable = Variable::optional_secret(
    "LINKEDIN_CLIENT_ID",
    "the LinkedIn app's Client ID (app > Auth), for token refreshes",
);
pub const DEFAULT_LINKEDIN_OAUTH_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";
pub const OAUTH_URL: Variable = Variable::setting(
    "LINKEDIN_OAUTH_URL",
    DEFAULT_LINKEDIN_OAUTH_URL,
    "LinkedIn's OAuth token endpoint (local stand-ins in tests and run-local)",
);
/// The access token is refreshed a week before it expires (it lives 60 days), so a quiet
/// week without leads cannot let it lapse unnoticed.
pub const GRANT: RefreshGrant = RefreshGrant {
    provider: PROVIDER,
    access_token: &ACCESS_TOKEN,
    access_expires_at: &ACCESS_TOKEN_EXPIRES_AT,
    refresh_token: &REFRESH_TOKEN,
    refresh_expires_at: &REFRESH_TOKEN_EXPIRES_AT,
    client_id: &CLIENT_ID,
    client_secret: &CLIENT_SECRET,
    token_url: &OAUTH_URL,
    margin: chrono::Duration::days(7),
    reauthorize_warning: chrono::Duration::days(30),
};
pub const DEFAULT_LINKEDIN_API_URL: &str = "https://api.linkedin.com/rest";
pub const API_URL: Variable = Variable::setting(
    "LINKEDIN_API_URL",
    DEFAULT_LINKEDIN_API_URL,
    "the LinkedIn REST API base URL (local stand-ins in tests and run-local)",
);
/// LinkedIn's versioned APIs take a `LinkedIn-Version: YYYYMM` header; each version is served
/// for about a year, so `LINKEDIN_API_VERSION` must be moved forward from time to time.
pub const DEFAULT_LINKEDIN_API_VERSION: &str = "202601";
pub const API_VERSION: Variable = Variable::setting(
    "LINKEDIN_API_VERSION",
    DEFAULT_LINKEDIN_API_VERSION,
    "YYYYMM; LinkedIn serves each version about a year",
);

/// LinkedIn Lead Sync, `/webhooks/linkedin`.
pub const PLATFORM: Platform = Platform::new(
    PROVIDER,
    &CLIENT_SECRET,
    &[
        &CLIENT_SECRET,
        &ACCESS_TOKEN,
        &API_URL,
        &API_VERSION,
        &ACCESS_TOKEN_EXPIRES_AT,
        &REFRESH_TOKEN,
        &REFRESH_TOKEN_EXPIRES_AT,
        &CLIENT_ID,
        &OAUTH_URL,
    ],
    verify,
    Parse::Now(parse),
)
.with_handshake(|config, req| handshake(config.require(PROVIDER, &CLIENT_SECRET)?, req))
.with_fetch(|providers, lead, at| Box::pin(fetch(providers, lead, at)));

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, _now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_linkedin(secret, &req.body, req.header("x-li-signature"))
}

const LINKEDIN_PREFIX: &str = "hmacsha256=";

/// LinkedIn: `X-LI-Signature = hex(HMAC-SHA256(client secret, "hmacsha256=" + body))`. Senders
/// disagree on whether the header value itself carries the `hmacsha256=` prefix: both accepted.
/// The MAC is always over the exact `hmacsha256=`-prefixed message, and the body must be JSON
/// (LinkedIn only sends JSON): together with the UUID-only challenge
/// ([`linkedin_challenge_response`]) no validation answer can ever pass as a POST signature.
pub fn verify_linkedin(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = signature::required(header, "X-LI-Signature")?;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return Err(SignatureError::Malformed("body (LinkedIn sends JSON)"));
    }
    let hex_sig = header.strip_prefix(LINKEDIN_PREFIX).unwrap_or(header);
    signature::verify_hmac_hex(
        secret.as_bytes(),
        &[LINKEDIN_PREFIX.as_bytes(), body],
        hex_sig,
    )
}

/// LinkedIn's validation answer: lowercase hex HMAC-SHA256(client secret, challengeCode), only
/// for a challenge in the canonical UUID form LinkedIn sends (`8-4-4-4-12` hex digits).
///
/// The challenge is MACed with the same key as the POST signature, whose message is always
/// `"hmacsha256=" + body`. A UUID can never equal such a message (it has no `=`, and it is not
/// `hmacsha256=` followed by anything), so no accepted challenge can yield a valid POST
/// signature: the endpoint is no signing oracle. Anything else gets `None` (answered 400).
pub fn linkedin_challenge_response(secret: &str, challenge_code: &str) -> Option<String> {
    is_canonical_uuid(challenge_code).then(|| {
        hex::encode(signature::hmac_sha256(
            secret.as_bytes(),
            &[challenge_code.as_bytes()],
        ))
    })
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Field projection for one lead form response, with the form decorated in.
pub const RESPONSE_FIELDS: &str = "ownerInfo,associatedEntityInfo,leadMetadataInfo,owner,leadType,versionedLeadGenFormUrn,id,submittedAt,testLead,formResponse,form:(hiddenFields,creationLocale,name,id,content)";

const RESPONSE_URN_PREFIX: &str = "urn:li:leadGenFormResponse:";

pub fn handshake(client_secret: &str, req: &InboundRequest) -> Result<Response, ProviderError> {
    let code = req
        .query
        .get("challengeCode")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .ok_or(ProviderError::Handshake {
            forbidden: false,
            code: "missing_challenge_code",
            field: Some("challengeCode"),
            message: "GET on this webhook is LinkedIn's validation and needs a challengeCode",
        })?;
    let response =
        linkedin_challenge_response(client_secret, code).ok_or(ProviderError::Handshake {
            forbidden: false,
            code: "invalid_challenge_code",
            field: Some("challengeCode"),
            message: "challengeCode must be a UUID (8-4-4-4-12 hex digits), as LinkedIn sends it",
        })?;
    tracing::info!(provider = PROVIDER, "webhook validation challenge answered");
    Ok(json_response(
        200,
        &json!({"challengeCode": code, "challengeResponse": response}),
    ))
}

/// One lead a notification announced.
#[derive(Debug, Clone)]
struct Announced {
    response_id: String,
    lead_type: Option<String>,
    occurred_at: Option<i64>,
}

fn is_path_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The leads a notification announces and the ones it withdraws (nothing is fetched here:
/// see [`fetch`]).
pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "linkedin notification") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    let notifications: Vec<&Value> = match &v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&v],
        _ => return quarantine("linkedin notification is neither an object nor an array"),
    };
    let mut leads = Vec::new();
    let mut withdrawn = Vec::new();
    let mut seen = BTreeSet::new();
    let (mut other, mut malformed) = (0usize, 0usize);
    for n in notifications {
        if str_at(n, "type").is_some_and(|t| t != "LEAD_ACTION") {
            other += 1;
            continue;
        }
        let action = match str_at(n, "leadAction") {
            Some(a @ ("CREATED" | "DELETED")) => a,
            Some(_) => {
                other += 1;
                continue;
            }
            None => {
                malformed += 1;
                continue;
            }
        };
        let Some(id) = str_at(n, "leadGenFormResponse")
            .and_then(|urn| urn.strip_prefix(RESPONSE_URN_PREFIX))
            .filter(|id| is_path_safe(id))
        else {
            malformed += 1;
            continue;
        };
        let occurred_at = n.get("occurredAt").and_then(Value::as_i64);
        if !seen.insert((action, id.to_string())) {
            continue;
        }
        if action == "DELETED" {
            withdrawn.push(WithdrawnLead {
                delivery: DeliveryKey::Platform(id.to_string()),
                at: occurred_at.and_then(epoch_time).unwrap_or(req.received_at),
            });
            continue;
        }
        let lead = Announced {
            response_id: id.to_string(),
            lead_type: str_at(n, "leadType").map(str::to_string),
            occurred_at,
        };
        let mut ids = std::collections::BTreeMap::new();
        ids.insert("lead_form_response".to_string(), id.to_string());
        if let Some(form) = str_at(n, "leadGenForm") {
            ids.insert(
                "lead_gen_form".to_string(),
                form.chars().take(128).collect(),
            );
        }
        leads.push(AnnouncedLead::new(
            PROVIDER,
            DeliveryKey::Platform(id.to_string()),
            ids,
            lead,
        ));
    }
    if malformed > 0 {
        tracing::error!(
            provider = PROVIDER,
            malformed,
            "lead notifications without a usable lead urn skipped"
        );
    }
    if leads.is_empty() && withdrawn.is_empty() {
        return if malformed > 0 {
            quarantine(format!(
                "{malformed} linkedin notification(s) without a usable leadGenFormResponse"
            ))
        } else {
            ignored(format!(
                "{other} linkedin notification(s) that are not lead actions"
            ))
        };
    }
    ProviderOutcome::Announced { leads, withdrawn }
}

/// Reads one announced lead from the Lead Sync API. Without a configured token the lead cannot
/// be read: an authorization failure (quarantined, replayable once it is set). A token that is
/// about to expire is refreshed first, and one the API refuses is refreshed and tried once more
/// ([`crate::oauth`]).
async fn fetch(providers: &Providers, announced: &AnnouncedLead, received_at: Time) -> Fetched {
    let lead: &Announced = announced.detail()?;
    let token = providers.access_token(&GRANT).await?;
    let data = match read_response(providers, &lead.response_id, &token).await {
        Err(refused @ ApiError::Status { status: 401, .. }) => {
            match providers.refreshed_token(&GRANT, &token).await? {
                Some(fresh) => read_response(providers, &lead.response_id, &fresh).await,
                None => Err(refused),
            }
        }
        answer => answer,
    }
    .map_err(classify_linkedin)?;
    Ok(lead_submission(lead, &data, received_at))
}

/// `GET /leadFormResponses/{id}` with the form projected in.
async fn read_response(
    providers: &Providers,
    response_id: &str,
    token: &str,
) -> Result<Value, ApiError> {
    let config = providers.config();
    let bearer = format!("Bearer {token}");
    let base = config.setting(&API_URL);
    let url = format!("{base}/leadFormResponses/{response_id}?fields={RESPONSE_FIELDS}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("linkedin-version", config.setting(&API_VERSION)),
        ("x-restli-protocol-version", "2.0.0"),
    ];
    providers.api().get_json(&url, &headers).await
}

/// LinkedIn REST errors: `{"status", "serviceErrorCode", "code", "message"}`, sorted by status.
fn classify_linkedin(e: ApiError) -> FetchError {
    let (status, body) = match refusal(e) {
        Ok(r) => r,
        Err(sorted) => return sorted,
    };
    let code = body
        .as_ref()
        .and_then(|b| b.get("serviceErrorCode"))
        .and_then(Value::as_i64);
    let message = body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str);
    match status {
        401 | 403 => FetchError::Auth { status, code },
        404 | 410 => FetchError::Gone {
            status,
            code,
            message: short_message(message),
        },
        429 | 500..=599 => FetchError::Transient(format!(
            "linkedin api answered HTTP {status}{}",
            code_text(code)
        )),
        _ => FetchError::Rejected { status, code },
    }
}

/// `{"localized": {"en_US": "..."}}` in the form's locale, else any locale.
fn localized(v: Option<&Value>, locale: Option<&str>) -> Option<String> {
    let map = v?.get("localized")?.as_object()?;
    locale
        .and_then(|l| map.get(l))
        .or_else(|| map.values().next())
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Where a predefined field goes: a name `apply_field` places, or `None` for a custom answer.
fn predefined_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "FIRST_NAME" => "first_name",
        "LAST_NAME" => "last_name",
        "EMAIL" => "email",
        "WORK_EMAIL" => "work_email",
        "PHONE_NUMBER" => "phone",
        "WORK_PHONE_NUMBER" => "work_phone",
        "COMPANY_NAME" => "company",
        "JOB_TITLE" => "job_title",
        "COUNTRY" => "country",
        _ => return None,
    })
}

struct Question {
    predefined: Option<String>,
    label: Option<String>,
    options: HashMap<String, String>,
}

fn lead_submission(
    lead: &Announced,
    data: &Value,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Submission {
    let occurred_at = data
        .get("submittedAt")
        .and_then(Value::as_i64)
        .and_then(epoch_time)
        .or_else(|| lead.occurred_at.and_then(epoch_time))
        .unwrap_or(received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(lead.response_id.clone()),
        TouchKind::AdLead,
        occurred_at,
    );
    sub.source_hint = Some(PROVIDER.to_string());
    let lead_type = str_at(data, "leadType").or(lead.lead_type.as_deref());
    sub.channel_hint = Some(match lead_type {
        Some("EVENT" | "COMPANY" | "ORGANIZATION_PRODUCT") => Channel::OrganicSocial,
        _ => Channel::PaidSocial,
    });
    sub.is_test = data
        .get("testLead")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let form = data.get("form");
    let locale = form.and_then(|f| f.get("creationLocale")).and_then(|l| {
        Some(format!(
            "{}_{}",
            str_at(l, "language")?,
            str_at(l, "country")?
        ))
    });
    let locale = locale.as_deref();

    // Hidden fields first: they carry the UTMs the advertiser set on the form.
    if let Some(hidden) = form
        .and_then(|f| f.get("hiddenFields"))
        .and_then(Value::as_array)
    {
        for h in hidden {
            if let (Some(name), Some(value)) = (str_at(h, "name"), str_at(h, "value")) {
                apply_field(&mut sub, name, value);
            }
        }
    }

    let questions: HashMap<String, Question> = form
        .and_then(|f| f.pointer("/content/questions"))
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .filter_map(|q| {
                    let id = q.get("questionId").and_then(id_string)?;
                    let options = q
                        .pointer("/questionDetails/multipleChoiceQuestionDetails/options")
                        .and_then(Value::as_array)
                        .map(|opts| {
                            opts.iter()
                                .filter_map(|o| {
                                    Some((
                                        o.get("id").and_then(id_string)?,
                                        localized(o.get("text"), locale)?,
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Some((
                        id,
                        Question {
                            predefined: str_at(q, "predefinedField").map(str::to_string),
                            label: localized(q.get("question"), locale)
                                .or_else(|| str_at(q, "name").map(str::to_string)),
                            options,
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();

    if let Some(answers) = data
        .pointer("/formResponse/answers")
        .and_then(Value::as_array)
    {
        for a in answers {
            let Some(qid) = a.get("questionId").and_then(id_string) else {
                continue;
            };
            let q = questions.get(&qid);
            let details = a.get("answerDetails");
            let text = details
                .and_then(|d| d.pointer("/textQuestionAnswer/answer"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let opts = details?
                        .pointer("/multipleChoiceAnswer/options")?
                        .as_array()?;
                    let labels: Vec<String> = opts
                        .iter()
                        .filter_map(id_string)
                        .map(|id| q.and_then(|q| q.options.get(&id).cloned()).unwrap_or(id))
                        .collect();
                    Some(labels.join(", "))
                });
            let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            match q.and_then(|q| q.predefined.as_deref()) {
                Some(field) => match predefined_field(field) {
                    Some(name) => {
                        apply_field(&mut sub, name, &text);
                    }
                    None => set_custom(&mut sub, field, &text),
                },
                None => {
                    let label = q
                        .and_then(|q| q.label.clone())
                        .unwrap_or_else(|| format!("question_{qid}"));
                    let key: String = label.chars().take(80).collect();
                    set_custom(&mut sub, &key, &text);
                }
            }
        }
    }

    // Consent checkboxes: explicit answers to the advertiser's own wording.
    if let Some(responses) = data
        .pointer("/formResponse/consentResponses")
        .and_then(Value::as_array)
    {
        let wording: HashMap<String, String> = form
            .and_then(|f| f.pointer("/content/legalInfo/consents"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| {
                        Some((
                            c.get("id").and_then(id_string)?,
                            localized(c.get("consent"), locale)?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(r) = responses.first() {
            if let Some(accepted) = r.get("accepted").and_then(Value::as_bool) {
                let text = r
                    .get("consentId")
                    .and_then(id_string)
                    .and_then(|id| wording.get(&id).cloned());
                sub.consent = Some(Consent::new(accepted, occurred_at, text));
            }
        }
    }

    // Attribution: campaign name when the projection decorated it, else the campaign id.
    let campaign_urn = data
        .pointer("/leadMetadata/sponsoredLeadMetadata/campaign")
        .and_then(Value::as_str);
    let campaign_name = data
        .pointer("/leadMetadataInfo/sponsoredLeadMetadataInfo/campaign/name")
        .and_then(Value::as_str);
    let campaign_id = campaign_urn.and_then(|u| u.rsplit(':').next());
    fill(
        &mut sub.attribution.utm_campaign,
        campaign_name.or(campaign_id),
    );
    let form_id = form
        .and_then(|f| f.get("id"))
        .and_then(id_string)
        .or_else(|| {
            // urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7234246,1)
            let urn = str_at(data, "versionedLeadGenFormUrn")?;
            let inner = urn.split("urn:li:leadGenForm:").nth(1)?;
            inner.split([',', ')']).next().map(str::to_string)
        });
    fill(&mut sub.attribution.form_id, form_id.as_deref());
    for (key, value) in [
        ("linkedin_campaign", campaign_urn),
        ("linkedin_form_name", form.and_then(|f| str_at(f, "name"))),
        (
            "linkedin_creative",
            data.pointer("/associatedEntity/associatedCreative")
                .and_then(Value::as_str),
        ),
        (
            "linkedin_account",
            data.pointer("/owner/sponsoredAccount")
                .or_else(|| data.pointer("/owner/organization"))
                .and_then(Value::as_str),
        ),
    ] {
        if let Some(v) = value {
            set_custom(&mut sub, key, v);
        }
    }
    sub
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{Providers, ProvidersConfig};
    use std::collections::HashMap as Map;

    const SECRET: &str = "test-linkedin-client-secret";
    const TOKEN: &str = "test-linkedin-access-token";

    fn providers(api: &str, timeout_ms: u64) -> Providers {
        let vars: Map<&str, String> = Map::from([
            ("LINKEDIN_CLIENT_SECRET", SECRET.to_string()),
            ("LINKEDIN_ACCESS_TOKEN", TOKEN.to_string()),
            ("LINKEDIN_API_URL", format!("{api}/rest")),
            ("LINKEDIN_API_VERSION", "202601".to_string()),
            ("PLATFORM_API_TIMEOUT_MS", timeout_ms.to_string()),
        ]);
        Providers::new(ProvidersConfig::from_lookup(|k| vars.get(k).cloned()))
    }

    fn notification(id: &str, action: &str) -> String {
        format!(
            r#"{{"type":"LEAD_ACTION","leadGenFormResponse":"urn:li:leadGenFormResponse:{id}","leadGenForm":"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7234246,1)","owner":{{"sponsoredAccount":"urn:li:sponsoredAccount:1234567"}},"associatedEntity":{{"sponsoredCreative":"urn:li:sponsoredCreative:241257736"}},"leadType":"SPONSORED","leadAction":"{action}","occurredAt":1689894599288}}"#
        )
    }

    fn signed(body: &str, with_prefix: bool) -> InboundRequest {
        let sig = hex_hmac(SECRET, &[b"hmacsha256=", body.as_bytes()]);
        let sig = if with_prefix {
            format!("hmacsha256={sig}")
        } else {
            sig
        };
        request("POST", body.as_bytes(), &[("X-LI-Signature", &sig)], &[])
    }

    /// The documented example response (Postman collection), form decorated in.
    fn response_json(id: &str) -> String {
        format!(
            r#"{{"owner":{{"sponsoredAccount":"urn:li:sponsoredAccount:1234567"}},"submitter":"urn:li:person:BcLKblgopR","leadType":"SPONSORED","leadMetadata":{{"sponsoredLeadMetadata":{{"campaign":"urn:li:sponsoredCampaign:198356826"}}}},"versionedLeadGenFormUrn":"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:7234246,1)","id":"{id}","submittedAt":1689894599288,"testLead":false,"associatedEntity":{{"associatedCreative":"urn:li:sponsoredCreative:241257736"}},"formResponse":{{"consentResponses":[{{"accepted":true,"consentId":0}}],"answers":[{{"answerDetails":{{"textQuestionAnswer":{{"answer":"kevjohonson@email.com"}}}},"questionId":307234246}},{{"answerDetails":{{"textQuestionAnswer":{{"answer":"kjohonson@email.com"}}}},"questionId":607234246}},{{"answerDetails":{{"multipleChoiceAnswer":{{"options":[0]}}}},"questionId":707234246}},{{"answerDetails":{{"textQuestionAnswer":{{"answer":"Mexico"}}}},"questionId":807234246}},{{"answerDetails":{{"textQuestionAnswer":{{"answer":"Kevin"}}}},"questionId":107234246}},{{"answerDetails":{{"textQuestionAnswer":{{"answer":"Johonson"}}}},"questionId":207234246}},{{"answerDetails":{{"textQuestionAnswer":{{"answer":"Senior Engineer"}}}},"questionId":407234246}},{{"answerDetails":{{"textQuestionAnswer":{{"answer":"Ingeniería"}}}},"questionId":507234246}}]}},"form":{{"hiddenFields":[{{"name":"utm_source","value":"linkedin"}},{{"name":"utm_campaign","value":"q3-cto"}}],"creationLocale":{{"country":"ES","language":"es"}},"name":"Form with written spanish","id":7234246,"content":{{"questions":[{{"questionId":107234246,"question":{{"localized":{{"es_ES":"Nombre"}}}},"name":"First name","predefinedField":"FIRST_NAME"}},{{"questionId":207234246,"question":{{"localized":{{"es_ES":"Apellidos"}}}},"name":"Last name","predefinedField":"LAST_NAME"}},{{"questionId":307234246,"question":{{"localized":{{"es_ES":"Correo electrónico"}}}},"name":"Email address","predefinedField":"EMAIL"}},{{"questionId":407234246,"question":{{"localized":{{"es_ES":"Cargo"}}}},"name":"Job title","predefinedField":"JOB_TITLE"}},{{"questionId":507234246,"question":{{"localized":{{"es_ES":"Función"}}}},"name":"Function","predefinedField":"JOB_FUNCTION"}},{{"questionId":607234246,"question":{{"localized":{{"es_ES":"Correo electrónico del trabajo"}}}},"name":"Work email","predefinedField":"WORK_EMAIL"}},{{"name":"Custom question 0","questionDetails":{{"multipleChoiceQuestionDetails":{{"options":[{{"text":{{"localized":{{"es_ES":"Rojo"}}}},"id":0}},{{"text":{{"localized":{{"es_ES":"Azul"}}}},"id":1}}]}}}},"questionId":707234246,"question":{{"localized":{{"es_ES":"Cuál es tu color favorito"}}}}}},{{"name":"Custom question 1","questionId":807234246,"question":{{"localized":{{"es_ES":"Dónde creciste"}}}}}}],"legalInfo":{{"consents":[{{"consent":{{"localized":{{"es_ES":"Acepto recibir comunicaciones"}}}},"checkRequired":true,"id":0}}]}}}}}}}}"#
        )
    }

    fn api_handler(target: &str) -> Reply {
        let id = target
            .trim_start_matches("/rest/leadFormResponses/")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        match id.as_str() {
            "fail-500" => Reply::Json(500, r#"{"status":500}"#.into()),
            "hang" => Reply::Hang,
            _ => Reply::Json(200, response_json(&id)),
        }
    }

    #[tokio::test]
    async fn challenge_is_answered_with_the_hmac() {
        let p = providers("http://127.0.0.1:9", 200);
        let code = "890e4f5a-4b2c-4a2e-9c3a-7e6f1c0d9b8a";
        let req = request("GET", b"", &[], &[("challengeCode", code)]);
        match p.handle("linkedin", &req, at(0)).await.unwrap() {
            ProviderOutcome::Respond(r) => {
                assert_eq!(r.status_code, 200);
                let body: Value = serde_json::from_str(r.body_text()).unwrap();
                assert_eq!(body["challengeCode"], code);
                assert_eq!(
                    body["challengeResponse"],
                    hex_hmac(SECRET, &[code.as_bytes()])
                );
            }
            other => panic!("{other:?}"),
        }
        let req = request("GET", b"", &[], &[]);
        assert_eq!(
            p.handle("linkedin", &req, at(0))
                .await
                .unwrap_err()
                .status(),
            400
        );
    }

    #[tokio::test]
    async fn lead_is_fetched_and_mapped() {
        let api = MockApi::start(api_handler).await;
        let p = providers(&api.base, 2_000);
        let id = "249592fc-d272-44ba-a7db-c2bdce579507-6";
        for with_prefix in [false, true] {
            let out = p
                .handle(
                    "linkedin",
                    &signed(&notification(id, "CREATED"), with_prefix),
                    at(0),
                )
                .await
                .unwrap();
            let mut subs = delivered(&p, out).await;
            assert_eq!(subs.len(), 1);
            let s = subs.remove(0);
            assert_eq!(s.delivery, DeliveryKey::Platform(id.into()));
            assert_eq!(s.kind, TouchKind::AdLead);
            assert_eq!(s.channel_hint, Some(Channel::PaidSocial));
            assert_eq!(s.source_hint.as_deref(), Some("linkedin"));
            assert_eq!(s.occurred_at.timestamp_millis(), 1689894599288);
            assert_eq!(s.contact.email.as_deref(), Some("kevjohonson@email.com"));
            assert_eq!(s.contact.first_name.as_deref(), Some("Kevin"));
            assert_eq!(s.contact.last_name.as_deref(), Some("Johonson"));
            assert_eq!(s.contact.job_title.as_deref(), Some("Senior Engineer"));
            assert_eq!(s.custom["job_function"], "Ingeniería");
            assert_eq!(s.custom["cuál_es_tu_color_favorito"], "Rojo");
            assert_eq!(s.custom["dónde_creciste"], "Mexico");
            assert_eq!(s.attribution.utm_source.as_deref(), Some("linkedin"));
            assert_eq!(s.attribution.utm_campaign.as_deref(), Some("q3-cto"));
            assert_eq!(s.attribution.form_id.as_deref(), Some("7234246"));
            assert_eq!(
                s.custom["linkedin_campaign"],
                "urn:li:sponsoredCampaign:198356826"
            );
            let consent = s.consent.as_ref().unwrap();
            assert!(consent.marketing_opt_in);
            assert_eq!(
                consent.text.as_deref(),
                Some("Acepto recibir comunicaciones")
            );
            assert!(!s.is_test);
        }
        let reqs = api.requests();
        assert_eq!(reqs.len(), 2);
        let r = &reqs[0];
        assert!(
            r.target
                .starts_with(&format!("/rest/leadFormResponses/{id}?fields=")),
            "{}",
            r.target
        );
        assert!(r
            .target
            .contains("form:(hiddenFields,creationLocale,name,id,content)"));
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(r.headers["linkedin-version"], "202601");
        assert_eq!(r.headers["x-restli-protocol-version"], "2.0.0");
    }

    #[tokio::test]
    async fn without_the_form_answers_are_kept_by_question_id() {
        let data: Value = serde_json::from_str(
            r#"{"id":"x","leadType":"EVENT","testLead":true,"versionedLeadGenFormUrn":"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:42,3)","formResponse":{"answers":[{"questionId":5,"answerDetails":{"textQuestionAnswer":{"answer":"hi"}}}]}}"#,
        )
        .unwrap();
        let lead = Announced {
            response_id: "x".into(),
            lead_type: None,
            occurred_at: Some(1_700_000_000_000),
        };
        let s = lead_submission(&lead, &data, at(0));
        assert_eq!(s.custom["question_5"], "hi");
        assert_eq!(s.channel_hint, Some(Channel::OrganicSocial));
        assert!(s.is_test);
        assert_eq!(s.attribution.form_id.as_deref(), Some("42"));
        assert_eq!(s.occurred_at.timestamp(), 1_700_000_000);
    }

    #[tokio::test]
    async fn api_failures_are_transient() {
        let api = MockApi::start(api_handler).await;
        let p = providers(&api.base, 300);
        for id in ["fail-500", "hang"] {
            let out = p
                .handle(
                    "linkedin",
                    &signed(&notification(id, "CREATED"), false),
                    at(0),
                )
                .await
                .unwrap();
            let results = fetch_each(&p, out).await;
            match &results[0] {
                Err(e @ FetchError::Transient(_)) => assert!(!e.to_string().contains(TOKEN)),
                other => panic!("{id}: {other:?}"),
            }
        }
    }

    const REFRESH: &str = "test-linkedin-refresh-token";
    const CLIENT_ID: &str = "test-linkedin-client-id";
    const MINTED: &str = "test-linkedin-minted-token";

    /// LinkedIn's API and OAuth token endpoint: the API accepts the configured token only when
    /// it is `good` and the minted one; the token endpoint mints for the right refresh token,
    /// client id and secret (`invalid_grant` otherwise), or is down when `token_down`.
    fn oauth_handler(good: &'static str, token_down: bool) -> impl Fn(&Recorded) -> Reply {
        move |req: &Recorded| {
            if req.target == "/oauth/v2/accessToken" {
                if token_down {
                    return Reply::Json(503, "{}".into());
                }
                let form: Map<String, String> =
                    form_urlencoded::parse(req.body.as_bytes()).into_owned().collect();
                let wanted = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", REFRESH),
                    ("client_id", CLIENT_ID),
                    ("client_secret", SECRET),
                ];
                if req.method != "POST"
                    || wanted.iter().any(|(k, v)| form.get(*k).map(String::as_str) != Some(v))
                {
                    return Reply::Json(
                        400,
                        r#"{"error":"invalid_grant","error_description":"The provided authorization grant or refresh token is invalid, expired or revoked"}"#.into(),
                    );
                }
                return Reply::Json(
                    200,
                    format!(
                        r#"{{"access_token":"{MINTED}","expires_in":5184000,"refresh_token":"{REFRESH}","refresh_token_expires_in":31103999}}"#
                    ),
                );
            }
            let bearer = req.headers.get("authorization").map(String::as_str);
            if bearer == Some(&format!("Bearer {MINTED}")) || bearer == Some(&format!("Bearer {good}")) {
                api_handler(&req.target)
            } else {
                Reply::Json(
                    401,
                    r#"{"status":401,"serviceErrorCode":65601,"code":"EXPIRED_ACCESS_TOKEN","message":"The token used in the request has expired"}"#.into(),
                )
            }
        }
    }

    /// LinkedIn configured with a refresh token; `token` and its recorded expiry.
    fn refreshing(api: &str, token: &str, expires_at: Option<DateTime<Utc>>) -> Providers {
        let mut vars: Map<&str, String> = Map::from([
            ("LINKEDIN_CLIENT_SECRET", SECRET.to_string()),
            ("LINKEDIN_ACCESS_TOKEN", token.to_string()),
            ("LINKEDIN_REFRESH_TOKEN", REFRESH.to_string()),
            ("LINKEDIN_CLIENT_ID", CLIENT_ID.to_string()),
            ("LINKEDIN_API_URL", format!("{api}/rest")),
            ("LINKEDIN_OAUTH_URL", format!("{api}/oauth/v2/accessToken")),
            ("PLATFORM_API_TIMEOUT_MS", "2000".to_string()),
        ]);
        if let Some(at) = expires_at {
            vars.insert("LINKEDIN_ACCESS_TOKEN_EXPIRES_AT", at.to_rfc3339());
        }
        Providers::new(ProvidersConfig::from_lookup(|k| vars.get(k).cloned()))
    }

    async fn fetch_one(p: &Providers, id: &str) -> Fetched {
        let out = p
            .handle("linkedin", &signed(&notification(id, "CREATED"), false), at(0))
            .await
            .unwrap();
        fetch_each(p, out).await.remove(0)
    }

    fn targets(api: &MockApi) -> Vec<String> {
        api.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.target.split('?').next().unwrap_or("")))
            .collect()
    }

    #[tokio::test]
    async fn a_refused_token_is_refreshed_and_the_call_repeated_once() {
        let api = MockApi::start_with_headers(oauth_handler("none", false)).await;
        let p = refreshing(&api.base, "expired-token", None);
        let s = fetch_one(&p, "lead-1").await.unwrap();
        assert_eq!(s.contact.email.as_deref(), Some("kevjohonson@email.com"));
        // The next lead uses the minted token straight away.
        fetch_one(&p, "lead-2").await.unwrap();
        assert_eq!(
            targets(&api),
            [
                "GET /rest/leadFormResponses/lead-1",
                "POST /oauth/v2/accessToken",
                "GET /rest/leadFormResponses/lead-1",
                "GET /rest/leadFormResponses/lead-2",
            ]
        );
        let reqs = api.requests();
        assert_eq!(
            reqs[1].headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(reqs[2].headers["authorization"], format!("Bearer {MINTED}"));
        assert_eq!(p.tokens().refreshes(), 1);
    }

    /// A token two days from expiry: the token endpoint is asked before the API; answers the
    /// authorization the API then got.
    async fn bearer_after_early_refresh(token_endpoint_down: bool) -> String {
        let api = MockApi::start_with_headers(oauth_handler(TOKEN, token_endpoint_down)).await;
        let soon = Utc::now() + chrono::Duration::days(2);
        let p = refreshing(&api.base, TOKEN, Some(soon));
        fetch_one(&p, "lead-1").await.unwrap();
        assert_eq!(
            targets(&api),
            ["POST /oauth/v2/accessToken", "GET /rest/leadFormResponses/lead-1"]
        );
        api.requests()[1].headers["authorization"].clone()
    }

    #[tokio::test]
    async fn a_token_about_to_expire_is_refreshed_before_the_call() {
        assert_eq!(bearer_after_early_refresh(false).await, format!("Bearer {MINTED}"));

        // A month left: no refresh.
        let api = MockApi::start_with_headers(oauth_handler(TOKEN, false)).await;
        let later = Utc::now() + chrono::Duration::days(30);
        let p = refreshing(&api.base, TOKEN, Some(later));
        fetch_one(&p, "lead-1").await.unwrap();
        assert_eq!(targets(&api), ["GET /rest/leadFormResponses/lead-1"]);
        assert_eq!(p.tokens().refreshes(), 0);
    }

    #[tokio::test]
    async fn a_failed_early_refresh_keeps_the_token_while_it_lasts() {
        assert_eq!(bearer_after_early_refresh(true).await, format!("Bearer {TOKEN}"));
    }

    #[tokio::test]
    async fn concurrent_refusals_refresh_once() {
        let api = MockApi::start_with_headers(oauth_handler("none", false)).await;
        let p = refreshing(&api.base, "expired-token", None);
        let ids: Vec<String> = (0..6).map(|i| format!("lead-{i}")).collect();
        let all = futures_util::future::join_all(ids.iter().map(|id| fetch_one(&p, id))).await;
        assert!(all.iter().all(Result::is_ok), "{all:?}");
        assert_eq!(p.tokens().refreshes(), 1);
        let posts = targets(&api).iter().filter(|t| t.starts_with("POST")).count();
        assert_eq!(posts, 1);
    }

    #[tokio::test]
    async fn a_dead_refresh_token_or_none_is_an_authorization_failure() {
        let api = MockApi::start_with_headers(oauth_handler("none", false)).await;
        let vars: Map<&str, String> = Map::from([
            ("LINKEDIN_CLIENT_SECRET", SECRET.to_string()),
            ("LINKEDIN_ACCESS_TOKEN", "expired-token".to_string()),
            ("LINKEDIN_REFRESH_TOKEN", "revoked-refresh-token".to_string()),
            ("LINKEDIN_CLIENT_ID", CLIENT_ID.to_string()),
            ("LINKEDIN_API_URL", format!("{}/rest", api.base)),
            ("LINKEDIN_OAUTH_URL", format!("{}/oauth/v2/accessToken", api.base)),
        ]);
        let p = Providers::new(ProvidersConfig::from_lookup(|k| vars.get(k).cloned()));
        match fetch_one(&p, "lead-1").await {
            Err(e @ FetchError::Auth { status: 400, .. }) => {
                let text = e.to_string();
                assert!(!text.contains("revoked-refresh-token") && !text.contains(SECRET));
            }
            other => panic!("{other:?}"),
        }
        // Without a refresh token the API's refusal stands and nothing is asked of the
        // token endpoint.
        let api = MockApi::start_with_headers(oauth_handler("none", false)).await;
        let p = providers(&api.base, 2_000);
        assert!(matches!(
            fetch_one(&p, "lead-1").await,
            Err(FetchError::Auth { status: 401, .. })
        ));
        assert_eq!(targets(&api), ["GET /rest/leadFormResponses/lead-1"]);
    }

    #[tokio::test]
    async fn deletions_are_withdrawals_and_other_notifications_are_ignored() {
        let p = providers("http://127.0.0.1:9", 200);
        let (leads, withdrawn) = announced(
            p.handle(
                "linkedin",
                &signed(&notification("abc", "DELETED"), false),
                at(0),
            )
            .await
            .unwrap(),
        );
        assert!(leads.is_empty());
        assert_eq!(withdrawn.len(), 1);
        assert_eq!(withdrawn[0].delivery, DeliveryKey::Platform("abc".into()));
        assert_eq!(withdrawn[0].at.timestamp_millis(), 1689894599288);
        // One POST may carry both.
        let both = format!(
            "[{},{}]",
            notification("abc", "DELETED"),
            notification("def", "CREATED")
        );
        let (leads, withdrawn) = announced(
            p.handle("linkedin", &signed(&both, false), at(0))
                .await
                .unwrap(),
        );
        assert_eq!((leads.len(), withdrawn.len()), (1, 1));
        ignored_reason(
            p.handle(
                "linkedin",
                &signed(
                    r#"{"type":"ORGANIZATION_SOCIAL_ACTION_NOTIFICATIONS","notifications":[]}"#,
                    false,
                ),
                at(0),
            )
            .await
            .unwrap(),
        );
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers("http://127.0.0.1:9", 200);
        let body = notification("abc", "CREATED");
        let mut req = signed(&body, false);
        req.body = body.replace("abc", "abd").into_bytes();
        assert_eq!(
            p.handle("linkedin", &req, at(0)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let sig = hex_hmac("wrong", &[b"hmacsha256=", body.as_bytes()]);
        let req = request("POST", body.as_bytes(), &[("x-li-signature", &sig)], &[]);
        assert_eq!(
            p.handle("linkedin", &req, at(0)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let req = request("POST", body.as_bytes(), &[], &[]);
        assert_eq!(
            p.handle("linkedin", &req, at(0)).await.unwrap_err().code(),
            "missing_signature"
        );
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers("http://127.0.0.1:9", 200);
        // A body that is not JSON is not LinkedIn's: refused before parsing.
        assert_eq!(
            p.handle("linkedin", &signed("42", false), at(0))
                .await
                .unwrap_err()
                .code(),
            "invalid_signature"
        );
        for (body, want) in [
            ("{\"type\":", "JSON"),
            (
                r#"{"type":"LEAD_ACTION","leadAction":"CREATED"}"#,
                "leadGenFormResponse",
            ),
            (
                r#"{"type":"LEAD_ACTION","leadAction":"CREATED","leadGenFormResponse":"urn:li:leadGenFormResponse:../../me"}"#,
                "leadGenFormResponse",
            ),
        ] {
            let reason = quarantine_reason(
                p.handle("linkedin", &signed(body, false), at(0))
                    .await
                    .unwrap(),
            );
            assert!(reason.contains(want), "{reason}");
        }
    }

    // --- The signature scheme (published vectors first) ---

    #[test]
    fn linkedin_with_and_without_prefix() {
        let body = br#"{"type":"LEAD_ACTION"}"#;
        let sig = hex::encode(hmac_sha256(b"li", &[b"hmacsha256=", body]));
        assert_eq!(verify_linkedin("li", body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_linkedin("li", body, Some(&format!("hmacsha256={sig}"))),
            Ok(())
        );
        assert_eq!(
            verify_linkedin("li", b"{}", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_linkedin("lj", body, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        // HMAC over the bare body (without the prefix) is not LinkedIn's scheme.
        let bare = hex::encode(hmac_sha256(b"li", &[body]));
        assert_eq!(
            verify_linkedin("li", body, Some(&bare)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_linkedin("li", body, None),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_linkedin("li", body, Some("hmacsha256=xyz")),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn linkedin_challenge_is_hex_hmac_of_the_code() {
        let code = "f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a";
        let resp = linkedin_challenge_response("li-secret", code).unwrap();
        assert_eq!(resp.len(), 64);
        assert_eq!(
            resp,
            hex::encode(hmac_sha256(b"li-secret", &[code.as_bytes()]))
        );
        assert!(resp.chars().all(|c| !c.is_ascii_uppercase()));
    }

    #[test]
    fn linkedin_answers_only_uuid_challenges_so_it_signs_no_post() {
        let body = r#"{"type":"LEAD_ACTION","leadAction":"CREATED"}"#;
        for not_uuid in [
            format!("hmacsha256={body}"),
            "hmacsha256=".to_string(),
            "1234".to_string(),
            "{f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a}".to_string(),
            "urn:uuid:f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a".to_string(),
            "f0a4fb6b6b5a4f4d9d7e3c4c2b1f0e9a".to_string(),
            "g0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a".to_string(),
        ] {
            assert_eq!(
                linkedin_challenge_response("li", &not_uuid),
                None,
                "{not_uuid}"
            );
        }
        // The answer to an accepted challenge never verifies a POST, with or without prefix.
        let answer =
            linkedin_challenge_response("li", "f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a").unwrap();
        for header in [answer.clone(), format!("hmacsha256={answer}")] {
            assert_eq!(
                verify_linkedin("li", body.as_bytes(), Some(&header)),
                Err(SignatureError::Mismatch)
            );
        }
        // A body that is not JSON is refused before any MAC is computed.
        let sig = hex::encode(hmac_sha256(b"li", &[b"hmacsha256=", b"plain"]));
        assert!(matches!(
            verify_linkedin("li", b"plain", Some(&sig)),
            Err(SignatureError::Malformed(_))
        ));
    }

    // --- What the Lead Sync API answers ---

    fn status(status: u16, body: Value) -> ApiError {
        ApiError::Status {
            status,
            body: Some(body),
        }
    }

    #[test]
    fn linkedin_answers_are_sorted_by_status() {
        let s = |code| status(code, json!({"status": code, "message": "m"}));
        assert!(matches!(classify_linkedin(s(401)), FetchError::Auth { .. }));
        assert!(matches!(classify_linkedin(s(403)), FetchError::Auth { .. }));
        assert!(matches!(classify_linkedin(s(404)), FetchError::Gone { .. }));
        assert!(matches!(
            classify_linkedin(s(503)),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            classify_linkedin(s(429)),
            FetchError::Transient(_)
        ));
        assert!(matches!(
            classify_linkedin(s(400)),
            FetchError::Rejected { .. }
        ));
    }
}
