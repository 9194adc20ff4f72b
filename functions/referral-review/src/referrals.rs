//! `POST /referrals` and `GET /referrals/code`.
//!
//! A referral: the referrer is resolved (email, lead id or referral code; unknown is 422), the
//! referee goes through the same ingest as every lead (kind `referral_received`, channel
//! `referral`, source `referral`, campaign = program), then the referral is recorded on the
//! referrer and credited in one transaction guarded by a per-referral item. The referral's
//! identity (`referral_id` when given, else program + referee's email/phone key, always within
//! the referrer) is both the ingest delivery key and the referral item's key, so a retry adds
//! neither a touchpoint nor a credit.

use base64::Engine;
use leadflow::edge::{json_response, AppError, InboundRequest, Response};
use leadflow::ingest::ingest_normalized;
use leadflow::model::{
    Consent, ContactInput, DeliveryKey, IdentityKey, IngestStatus, Referral, Submission, TouchKind,
};
use leadflow::normalize::{check_email, normalize, EmailProblem};
use leadflow::store::{referral_delivery, referral_key, ReferralCredit, Referrer};
use leadflow::telemetry::Metrics;
use serde_json::{json, Map, Value};

use crate::input::{field, in_object, json_object, object, text, yes_no, MAX_ID_CHARS};
use crate::AppState;

/// Programs are short labels (`spring-2026`); they become the lead's campaign.
const MAX_PROGRAM_CHARS: usize = 100;

/// How the sender names the referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferrerRef {
    LeadId(String),
    Code(String),
    Email(String),
}

fn referrer_not_found() -> AppError {
    AppError::unprocessable(
        "referrer_not_found",
        "referrer",
        "no lead matches the referrer",
    )
}

fn parse_referrer(body: &Map<String, Value>) -> Result<ReferrerRef, AppError> {
    let missing = || {
        AppError::unprocessable(
            "missing_referrer",
            "referrer",
            "referrer needs one of email, lead_id or referral_code",
        )
    };
    let r = object(body, "referrer")?.ok_or_else(missing)?;
    if let Some(id) = text(r, "lead_id", "referrer.lead_id", MAX_ID_CHARS)? {
        return Ok(ReferrerRef::LeadId(id));
    }
    if let Some(code) = text(r, "referral_code", "referrer.referral_code", MAX_ID_CHARS)? {
        return Ok(ReferrerRef::Code(code));
    }
    if let Some(email) = field(r, "email", "referrer.email")? {
        return Ok(ReferrerRef::Email(email));
    }
    Err(missing())
}

/// The lead id an email identifies (1 GetItem); an invalid address is 422 naming `field`.
async fn lead_id_by_email(
    state: &AppState,
    email: &str,
    field: &str,
) -> Result<Option<String>, AppError> {
    match check_email(email, &state.normalize) {
        Ok((_, key)) => Ok(state.store.lead_id_for(&IdentityKey::Email(key)).await?),
        Err(EmailProblem::Junk) => Ok(None),
        Err(EmailProblem::Invalid) => Err(AppError::unprocessable(
            "invalid_email",
            field,
            format!("{field} is not a valid address"),
        )),
    }
}

async fn resolve_referrer(state: &AppState, r: &ReferrerRef) -> Result<Referrer, AppError> {
    let lead_id = match r {
        ReferrerRef::LeadId(id) => Some(id.clone()),
        ReferrerRef::Code(code) => state.store.lead_id_for_referral_code(code).await?,
        ReferrerRef::Email(email) => lead_id_by_email(state, email, "referrer.email").await?,
    };
    let Some(lead_id) = lead_id else {
        return Err(referrer_not_found());
    };
    state
        .store
        .referrer(&lead_id)
        .await?
        .ok_or_else(referrer_not_found)
}

/// The referee as a submission (nothing normalized yet).
fn referee_submission(
    body: &Map<String, Value>,
    program: Option<&str>,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<Submission, AppError> {
    let referee = object(body, "referee")?.ok_or_else(|| {
        AppError::unprocessable(
            "missing_referee",
            "referee",
            "referee with an email or phone is required",
        )
    })?;
    // The delivery key is set once the referee's match key is known (see `referral_key`).
    let mut sub = Submission::new(
        "referral",
        DeliveryKey::Platform(String::new()),
        TouchKind::ReferralReceived,
        received_at,
    );
    sub.contact = ContactInput {
        email: field(referee, "email", "referee.email")?,
        phone: field(referee, "phone", "referee.phone")?,
        first_name: field(referee, "first_name", "referee.first_name")?,
        last_name: field(referee, "last_name", "referee.last_name")?,
        full_name: field(referee, "name", "referee.name")?.or(field(
            referee,
            "full_name",
            "referee.full_name",
        )?),
        company: field(referee, "company", "referee.company")?,
        job_title: field(referee, "job_title", "referee.job_title")?,
        country: field(referee, "country", "referee.country")?,
    };
    // Consent is the referee's own answer as the referrer relays it; only explicit answers count.
    if let Some(opt_in) = yes_no(body, "consent", "consent")? {
        let text = match program {
            Some(p) => format!("referral:{p}"),
            None => "referral".to_string(),
        };
        sub.consent = Some(Consent::new(opt_in, received_at, Some(text)));
    }
    sub.channel_hint = Some(leadflow::model::Channel::Referral);
    sub.source_hint = Some("referral".to_string());
    sub.attribution.utm_campaign = program.map(str::to_string);
    if let Some(p) = program {
        sub.custom.insert("referral_program".into(), p.to_string());
    }
    if let Some(note) = field(body, "note", "note")? {
        sub.custom.insert("referral_note".into(), note);
    }
    Ok(sub)
}

pub async fn post(
    state: &AppState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    let body = json_object(req)?;
    let referrer_ref = parse_referrer(&body)?;
    let program = text(&body, "program", "program", MAX_PROGRAM_CHARS)?;
    let referral_id = text(&body, "referral_id", "referral_id", MAX_ID_CHARS)?;
    // Validate the whole request before the first read.
    let sub = referee_submission(&body, program.as_deref(), req.received_at)?;
    let mut normalized =
        normalize(sub, &state.normalize).map_err(|e| in_object("referee", e.into()))?;

    let referrer = resolve_referrer(state, &referrer_ref).await?;
    let referrer_id = referrer.lead.lead_id.clone();
    let referee_keys = normalized.identity_keys();
    if referrer.owns_any(&referee_keys) {
        return Err(self_referral());
    }
    normalized
        .custom
        .insert("referrer_lead_id".into(), referrer_id.clone());
    let key = referral_key(
        &state.pepper,
        referral_id.as_deref(),
        program.as_deref(),
        &referee_keys,
    );
    normalized.delivery = referral_delivery(&referrer_id, &key);

    let outcome = ingest_normalized(&state.store, &normalized, req.received_at, metrics).await?;
    if outcome.lead_id == referrer_id {
        // The referee's identifier became the referrer's between our read and the ingest.
        return Err(self_referral());
    }
    let existing_lead = match outcome.status {
        // An erased person is not re-created by someone else's referral: nothing recorded,
        // nothing credited (counted as `suppressed` by the ingest).
        IngestStatus::Suppressed => {
            return Ok(json_response(
                200,
                &json!({"status": "suppressed", "referrer_lead_id": referrer_id}),
            ))
        }
        IngestStatus::Created => false,
        IngestStatus::Merged => true,
        IngestStatus::Duplicate => {
            // A retry: answer as recorded, or finish what a failed attempt started (the ingest
            // stored, the credit did not). The referee was new iff its first touch is this one.
            if let Some(r) = state.store.get_referral(&referrer_id, &key).await? {
                metrics.count("referral_duplicate", 1.0);
                return Ok(answer(200, "duplicate", &r));
            }
            match state.store.get_lead(&outcome.lead_id).await? {
                Some(lead) => lead.first_touch.touch_id != outcome.touch_id,
                None => true,
            }
        }
    };
    let referral = Referral {
        referral_key: key,
        referrer_lead_id: referrer_id,
        referee_lead_id: outcome.lead_id,
        existing_lead,
        program,
        touch_id: outcome.touch_id,
        created_at: req.received_at,
    };
    match state
        .store
        .credit_referral(&referral, req.received_at)
        .await?
    {
        ReferralCredit::Recorded(r) => {
            metrics.count(
                if r.existing_lead {
                    "referral_existing_lead"
                } else {
                    "referral_credited"
                },
                1.0,
            );
            tracing::info!(
                referrer_lead_id = r.referrer_lead_id,
                lead_id = r.referee_lead_id,
                existing_lead = r.existing_lead,
                "referral recorded"
            );
            Ok(answer(201, "recorded", &r))
        }
        ReferralCredit::Duplicate(r) => {
            metrics.count("referral_duplicate", 1.0);
            Ok(answer(200, "duplicate", &r))
        }
        ReferralCredit::LeadGone => Err(referrer_not_found()),
    }
}

fn self_referral() -> AppError {
    AppError::unprocessable(
        "self_referral",
        "referee",
        "the referee is the referrer (same email or phone)",
    )
}

fn answer(status: u16, what: &str, r: &Referral) -> Response {
    json_response(
        status,
        &json!({
            "status": what,
            "lead_id": r.referee_lead_id,
            "referrer_lead_id": r.referrer_lead_id,
            "existing_lead": r.existing_lead,
            "credited": !r.existing_lead,
            "program": r.program,
        }),
    )
}

/// 16 bytes from the OS CSPRNG, URL-safe base64 without padding (22 characters): unguessable,
/// and safe in a URL and in a key.
pub fn new_referral_code() -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Upstream(format!("random source unavailable: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `GET /referrals/code?email=...` or `?lead_id=...`: `{"code", "lead_id"}`.
pub async fn get_code(
    state: &AppState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    let lead_id = match (req.query.get("lead_id"), req.query.get("email")) {
        (Some(id), _) if !id.trim().is_empty() => Some(id.trim().to_string()),
        (_, Some(email)) if !email.trim().is_empty() => {
            lead_id_by_email(state, email.trim(), "email").await?
        }
        _ => {
            return Err(AppError::bad_request(
                "missing_parameter",
                "email,lead_id",
                "pass ?email= or ?lead_id=",
            ))
        }
    };
    let not_found = || AppError::not_found("lead_not_found", "no lead matches");
    let lead_id = lead_id.ok_or_else(not_found)?;
    if lead_id.chars().count() > MAX_ID_CHARS {
        return Err(not_found());
    }
    let candidate = new_referral_code()?;
    let code = state
        .store
        .referral_code(&lead_id, &candidate, req.received_at)
        .await?
        .ok_or_else(not_found)?;
    if code == candidate {
        metrics.count("referral_code_created", 1.0);
    }
    Ok(json_response(
        200,
        &json!({"code": code, "lead_id": lead_id}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_url_safe_and_distinct() {
        let a = new_referral_code().unwrap();
        let b = new_referral_code().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
