//! `POST /reviews`, and the review path shared with the Trustpilot webhook.
//!
//! A review is linked to a lead when one matches: by email (identity marker), or by
//! `reference_id` (the lead id leadflow put into the review invitation). A linked review is
//! also an engagement touchpoint of its lead (kind `review`, once per review: the delivery key
//! is `<platform>#<external_id>`). Someone unknown who gave an email and consent becomes a lead
//! with channel `review`. Everything else is stored unlinked. The review item and the platform
//! aggregate change together in one transaction (`Store::write_review`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use leadflow::edge::{json_response, AppError, InboundRequest, Response};
use leadflow::ingest::{ingest_one, IngestError};
use leadflow::model::{
    Channel, Consent, ContactInput, DeliveryKey, IdentityKey, IngestOutcome, ReviewInput,
    ReviewPlatform, Submission, TouchKind,
};
use leadflow::normalize::{check_email, EmailProblem};
use leadflow::store::{ReviewChange, ReviewStatus, ReviewWriteOutcome, StoreError};
use leadflow::telemetry::Metrics;
use serde_json::{json, Map, Value};

use crate::input::{
    field, json_object, rating, required_id, text, time, yes_no, MAX_ID_CHARS, MAX_TEXT_CHARS,
};
use crate::AppState;

/// Who wrote a review, as far as the sender knows.
#[derive(Debug, Clone, Default)]
pub struct Reviewer {
    pub email: Option<String>,
    /// An explicit marketing opt-in: lets an unknown reviewer with an email become a lead.
    pub consent: bool,
}

/// What one review did.
#[derive(Debug, Clone)]
pub struct ReviewResult {
    pub platform: ReviewPlatform,
    pub external_id: String,
    pub write: ReviewWriteOutcome,
    /// What the lead ingest did when the review was linked now (`created` for a new lead).
    pub lead: Option<IngestOutcome>,
}

impl ReviewResult {
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.write.status.as_str(),
            "platform": self.platform.as_str(),
            "external_id": self.external_id,
            "lead_id": self.write.lead_id,
            "linked": self.write.lead_id.is_some(),
            "lead_status": self.lead.as_ref().map(|o| o.status.as_str()),
            "rating": self.write.rating,
            "needs_follow_up": self.write.needs_follow_up,
        })
    }
}

pub fn parse_platform(raw: Option<String>, path: &str) -> Result<ReviewPlatform, AppError> {
    let raw = raw.ok_or_else(|| {
        AppError::unprocessable("missing_field", path, format!("{path} is required"))
    })?;
    ReviewPlatform::parse(&raw.to_ascii_lowercase()).ok_or_else(|| {
        AppError::unprocessable(
            "invalid_platform",
            path,
            "platform must be one of internal, google, trustpilot, g2, capterra, yelp, facebook",
        )
    })
}

/// `POST /reviews`: `{email | reference_id, name, rating, title, text, platform, external_id,
/// published_at, updated_at?, consent?, deleted?}`.
pub async fn post(
    state: &AppState,
    req: &InboundRequest,
    metrics: &mut Metrics,
) -> Result<Response, AppError> {
    let body = json_object(req)?;
    let platform = parse_platform(field(&body, "platform", "platform")?, "platform")?;
    let external_id = required_id(&body, "external_id", "external_id")?;
    let deleted = yes_no(&body, "deleted", "deleted")?.unwrap_or(false);
    let result = if deleted {
        apply(
            state,
            ReviewChange::Delete {
                platform,
                external_id: &external_id,
            },
            &Reviewer::default(),
            req.received_at,
            metrics,
        )
        .await?
    } else {
        let review = review_input(&body, platform, external_id.clone(), req.received_at)?;
        let reviewer = Reviewer {
            email: field(&body, "email", "email")?,
            consent: yes_no(&body, "consent", "consent")?.unwrap_or(false),
        };
        apply(
            state,
            ReviewChange::Upsert(&review),
            &reviewer,
            req.received_at,
            metrics,
        )
        .await?
    };
    let status = if result.write.status == ReviewStatus::Created {
        201
    } else {
        200
    };
    Ok(json_response(status, &result.to_json()))
}

fn review_input(
    body: &Map<String, Value>,
    platform: ReviewPlatform,
    external_id: String,
    received_at: DateTime<Utc>,
) -> Result<ReviewInput, AppError> {
    Ok(ReviewInput {
        platform,
        external_id,
        rating: rating(body, "rating", "rating")?,
        title: field(body, "title", "title")?,
        text: text(body, "text", "text", MAX_TEXT_CHARS)?,
        name: field(body, "name", "name")?,
        published_at: time(body, "published_at", "published_at")?
            .unwrap_or_else(|| crate::input::millis(received_at)),
        updated_at: time(body, "updated_at", "updated_at")?,
        reference_id: text(body, "reference_id", "reference_id", MAX_ID_CHARS)?,
    })
}

/// Links (when the review is new to us, or still unlinked) and stores one review change.
pub async fn apply(
    state: &AppState,
    change: ReviewChange<'_>,
    reviewer: &Reviewer,
    received_at: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<ReviewResult, AppError> {
    let platform = change.platform();
    let prev = state
        .store
        .get_review(platform, change.external_id())
        .await?;
    let mut lead = None;
    if let ReviewChange::Upsert(r) | ReviewChange::Create(r) = change {
        let needs_link = match &prev {
            None => true,
            // A later delivery may now match someone (a lead created since, a corrected email).
            Some(p) => {
                !p.deleted && p.lead_id.is_none() && matches!(change, ReviewChange::Upsert(_))
            }
        };
        if needs_link {
            lead = link(state, r, reviewer, received_at, metrics).await?;
        }
    }
    let write = state
        .store
        .write_review(
            change,
            lead.as_ref().map(|o| o.lead_id.as_str()),
            prev,
            received_at,
        )
        .await?;
    metrics.count(format!("review_{}", write.status.as_str()), 1.0);
    if write.needs_follow_up
        && matches!(write.status, ReviewStatus::Created | ReviewStatus::Updated)
    {
        metrics.count("review_follow_up", 1.0);
    }
    tracing::info!(
        platform = platform.as_str(),
        status = write.status.as_str(),
        linked = write.lead_id.is_some(),
        lead_id = write.lead_id.as_deref(),
        needs_follow_up = write.needs_follow_up,
        "review stored"
    );
    Ok(ReviewResult {
        platform,
        external_id: change.external_id().to_string(),
        write,
        lead,
    })
}

/// The review as a touchpoint of `contact`'s lead. The custom answers are what lead-api shows
/// for a lead's reviews.
fn review_submission(r: &ReviewInput, contact: ContactInput) -> Submission {
    let mut sub = Submission::new(
        "review",
        DeliveryKey::Platform(format!("{}#{}", r.platform.as_str(), r.external_id)),
        TouchKind::Review,
        r.published_at,
    );
    sub.contact = contact;
    sub.channel_hint = Some(Channel::Review);
    sub.source_hint = Some(r.platform.as_str().to_string());
    sub.custom = BTreeMap::from([
        ("platform".to_string(), r.platform.as_str().to_string()),
        ("external_id".to_string(), r.external_id.clone()),
        ("rating".to_string(), r.rating.to_string()),
    ]);
    sub
}

/// Finds (or, with consent, creates) the reviewer's lead and records the review touchpoint.
/// `None`: the review matches nobody and stays unlinked.
/// A suppressed (erased) reviewer is not linked: the review is kept as public content only.
fn linked(outcome: IngestOutcome) -> Option<IngestOutcome> {
    (outcome.status != leadflow::model::IngestStatus::Suppressed).then_some(outcome)
}

async fn link(
    state: &AppState,
    r: &ReviewInput,
    reviewer: &Reviewer,
    received_at: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Result<Option<IngestOutcome>, AppError> {
    if let Some(email) = &reviewer.email {
        let key = match check_email(email, &state.normalize) {
            Ok((_, key)) => Some(key),
            Err(EmailProblem::Junk) => None,
            Err(EmailProblem::Invalid) => {
                return Err(AppError::unprocessable(
                    "invalid_email",
                    "email",
                    "email is not a valid address",
                ))
            }
        };
        if let Some(key) = key {
            let known = state
                .store
                .lead_id_for(&IdentityKey::Email(key))
                .await?
                .is_some();
            // A known person gets the touch only: a review's display name or a missing consent
            // answer must not overwrite what the lead already has.
            let mut contact = ContactInput {
                email: Some(email.clone()),
                ..Default::default()
            };
            let mut sub = review_submission(r, ContactInput::default());
            if !known {
                if !reviewer.consent {
                    return Ok(None);
                }
                contact.full_name = r.name.clone();
                sub.consent = Some(Consent::new(
                    true,
                    received_at,
                    Some(format!("review:{}", r.platform.as_str())),
                ));
            }
            sub.contact = contact;
            let outcome =
                ingest_one(&state.store, &state.normalize, sub, received_at, metrics).await?;
            return Ok(linked(outcome));
        }
    }
    let Some(reference) = &r.reference_id else {
        return Ok(None);
    };
    let Some(lead) = state.store.get_lead(reference).await? else {
        return Ok(None);
    };
    if lead.sales.erased {
        return Ok(None);
    }
    // The lead's own identifiers route the touch to it through the normal ingest.
    let contact = ContactInput {
        email: lead.contact.email.clone(),
        phone: lead.contact.phone.clone(),
        ..Default::default()
    };
    if contact.email.is_none() && contact.phone.is_none() {
        return Ok(None);
    }
    let sub = review_submission(r, contact);
    match ingest_one(&state.store, &state.normalize, sub, received_at, metrics).await {
        Ok(o) => Ok(linked(o)),
        // A reused delivery key is a refusal like a failed normalization, not a fault.
        Err(IngestError::Store(StoreError::IdempotencyKeyReused)) => Ok(None),
        Err(IngestError::Store(e)) => Err(e.into()),
        // The stored identifiers no longer normalize (e.g. newly blocked): keep it unlinked.
        Err(IngestError::Normalize(_)) => Ok(None),
    }
}
