//! What leadflow announces on its EventBridge bus, and the one publisher every function uses.
//!
//! Two publishers, one per kind of change, so a consumer sees each change once in the normal
//! case: `lead-events` (source `leadflow.leads`, from the table's stream) announces new leads and
//! the changes ingest, merges and sales events make; `rescore` (source `leadflow.rescore`)
//! announces the changes its scheduled decay makes. Delivery is at least once: every event's
//! detail carries the lead's `version` after the change, so `(lead_id, version)` identifies it.
//!
//! Details carry the lead id and non-personal facts only (score, temperature, stage, rule names,
//! attribution); a consumer that needs the person fetches the lead through lead-api.

use serde_json::{json, Value};

use crate::model::Temperature;
use crate::predict::Prediction;
use crate::scoring::{reasons_line, Assessment};
use crate::store::{LeadSnapshot, ScoringInput};

/// PutEvents accepts at most 10 entries per request.
const EVENTS_PER_REQUEST: usize = 10;

pub const LEAD_CREATED: &str = "lead.created";
pub const TEMPERATURE_CHANGED: &str = "lead.temperature_changed";
pub const STAGE_CHANGED: &str = "lead.stage_changed";

/// One event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub detail_type: &'static str,
    pub detail: Value,
}

impl ChangeEvent {
    pub fn lead_id(&self) -> Option<&str> {
        self.detail["lead_id"].as_str()
    }
}

/// The events a written assessment announces (`version`: the lead's version after the write).
/// A never-scored lead that turns out cold is no news; every other temperature change is. Both
/// carry the prediction (null without a model).
pub fn change_events(
    old: &ScoringInput,
    a: &Assessment,
    prediction: Option<&Prediction>,
    version: u64,
) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    let reasons = serde_json::to_value(&a.reasons).unwrap_or(Value::Null);
    let predicted = prediction.map(|p| p.predicted_conversion);
    let top_features = prediction.map(|p| &p.top_features);
    let temp_changed = old.temperature != Some(a.temperature)
        && !(old.temperature.is_none() && a.temperature == Temperature::Cold);
    if temp_changed {
        out.push(ChangeEvent {
            detail_type: TEMPERATURE_CHANGED,
            detail: json!({
                "lead_id": old.lead_id,
                "version": version,
                "old": old.temperature.map(Temperature::as_str),
                "new": a.temperature.as_str(),
                // The same value as `new`, under the name `lead.created` uses: one rule
                // (`detail.temperature: ["hot"]`) routes hot leads whichever way they got hot.
                "temperature": a.temperature.as_str(),
                "score": a.score,
                "old_score": old.score,
                "stage": a.stage.as_str(),
                "reasons": reasons,
                "is_test": old.is_test,
                "config_version": a.config_version,
                "predicted_conversion": predicted,
                "top_features": top_features,
            }),
        });
    }
    if old.stage != a.stage {
        out.push(ChangeEvent {
            detail_type: STAGE_CHANGED,
            detail: json!({
                "lead_id": old.lead_id,
                "version": version,
                "old": old.stage.as_str(),
                "new": a.stage.as_str(),
                "score": a.score,
                "temperature": a.temperature.as_str(),
                "reasons": reasons,
                "is_test": old.is_test,
                "config_version": a.config_version,
                "predicted_conversion": predicted,
                "top_features": top_features,
            }),
        });
    }
    if !out.is_empty() {
        tracing::info!(
            lead_id = old.lead_id,
            version,
            score = a.score,
            temperature = a.temperature.as_str(),
            stage = a.stage.as_str(),
            reasons = reasons_line(&a.reasons),
            "lead changed tier"
        );
    }
    out
}

/// The non-personal facts every stream-side event carries.
fn facts(lead: &LeadSnapshot) -> Value {
    json!({
        "lead_id": lead.lead_id,
        "version": lead.version,
        "score": lead.score,
        "temperature": lead.temperature.map(Temperature::as_str),
        "stage": lead.stage.as_str(),
        "source": lead.source,
        "channel": lead.channel,
        "campaign": lead.campaign,
        "is_test": lead.is_test,
    })
}

/// A change also says why the lead scores what it does (rule names and points).
fn with_reasons(mut detail: Value, lead: &LeadSnapshot) -> Value {
    detail["reasons"] = serde_json::to_value(&lead.reasons).unwrap_or(Value::Null);
    detail
}

/// `lead.created`: a new lead, with its temperature and stage as ingest scored them.
pub fn lead_created(lead: &LeadSnapshot) -> ChangeEvent {
    let mut detail = facts(lead);
    detail["created_at"] = json!(lead.created_at);
    ChangeEvent {
        detail_type: LEAD_CREATED,
        detail,
    }
}

/// The temperature and stage changes between two images of a lead (a write other than a score
/// write: a merge, a sales event). Same rule as `change_events`: unscored to cold is no news.
pub fn image_changes(old: &LeadSnapshot, new: &LeadSnapshot) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    let temp_changed = old.temperature != new.temperature
        && new.temperature.is_some()
        && !(old.temperature.is_none() && new.temperature == Some(Temperature::Cold));
    if temp_changed {
        let mut detail = with_reasons(facts(new), new);
        detail["old"] = json!(old.temperature.map(Temperature::as_str));
        detail["new"] = json!(new.temperature.map(Temperature::as_str));
        detail["old_score"] = json!(old.score);
        out.push(ChangeEvent {
            detail_type: TEMPERATURE_CHANGED,
            detail,
        });
    }
    if old.stage != new.stage {
        let mut detail = with_reasons(facts(new), new);
        detail["old"] = json!(old.stage.as_str());
        detail["new"] = json!(new.stage.as_str());
        out.push(ChangeEvent {
            detail_type: STAGE_CHANGED,
            detail,
        });
    }
    out
}

/// Where events go: the stack's bus.
#[derive(Clone)]
pub struct Publisher {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
}

/// What one `publish` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    /// Entries EventBridge accepted.
    pub accepted: u64,
    /// Entries it refused or that were never sent (the request failed).
    pub failed: u64,
    /// The first error, for the log.
    pub error: Option<String>,
}

impl Publisher {
    /// The publisher for `EVENT_BUS_NAME` (unset: the account's `default` bus; empty: `None`,
    /// changes are recorded but not published).
    pub fn from_env(sdk_config: &aws_types::SdkConfig) -> Option<Publisher> {
        let bus = std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| "default".to_string());
        (!bus.trim().is_empty()).then(|| Publisher {
            client: aws_sdk_eventbridge::Client::new(sdk_config),
            bus: bus.trim().to_string(),
        })
    }

    /// Publishes `events` from `source`, 10 per PutEvents. Never fails as a whole: a refused
    /// entry or a failed request is counted in `failed` (with the lead ids logged) so the caller
    /// decides what a failure means (rescore counts it; lead-events retries the record).
    pub async fn publish(&self, source: &str, events: &[ChangeEvent]) -> Published {
        let mut out = Published::default();
        for chunk in events.chunks(EVENTS_PER_REQUEST) {
            let entries: Vec<_> = chunk
                .iter()
                .map(|e| {
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(source)
                        .detail_type(e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let sent = chunk.len() as u64;
            match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(res) => {
                    let failed = (res.failed_entry_count().max(0) as u64).min(sent);
                    out.accepted += sent - failed;
                    if failed > 0 {
                        out.failed += failed;
                        let code = res
                            .entries()
                            .iter()
                            .find_map(|e| e.error_code())
                            .unwrap_or("unknown")
                            .to_string();
                        tracing::error!(failed, code, "some events were not published");
                        out.error.get_or_insert(code);
                    }
                }
                Err(e) => {
                    out.failed += sent;
                    let ids: Vec<&str> = chunk.iter().filter_map(ChangeEvent::lead_id).collect();
                    let message = aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string();
                    tracing::error!(error = %message, lead_ids = ?ids, "publishing events failed");
                    out.error.get_or_insert(message);
                }
            }
        }
        out
    }
}
