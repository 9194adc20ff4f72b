//! `leadflow renormalize-phones`: a one-off repair after the phone parser learned international
//! notations (issue 14). Leads whose number was refused when stored (kept as `phone_raw` because
//! an email identified the person) are re-parsed with today's rules; a number that parses now
//! is set on the lead and its identity marker claimed in the same transaction, so later
//! phone-only submissions find the lead. When another lead already owns the number, nothing is
//! written and both lead ids are reported: whether they are one person is for a person to say.
//! Idempotent: a lead that has its phone is no longer selected, and every write is conditioned
//! on the lead being as it was read.

use std::collections::HashMap;

use chrono::Utc;
use leadflow::model::IdentityKey;
use leadflow::normalize::{parse_phone, phone_region, NormalizeConfig};
use leadflow::store::{PhoneAdoption, RefusedPhone, Store};
use leadflow::telemetry::mask_phone;

/// What happened to one lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The number parses now and was set, its marker claimed (with `--dry-run`: would be).
    Adopted { e164: String },
    /// The number parses, but another lead owns it: reported, not merged, nothing written.
    HeldBy { e164: String, other_lead_id: String },
    /// Still not a valid number (or a junk/blocked one): left as it is.
    StillRefused,
    /// The lead changed between the scan and the write: left as it is (run again).
    LeadChanged { e164: String },
}

/// One line of the report per lead with a refused phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub lead_id: String,
    pub outcome: Outcome,
}

/// Re-parses every refused phone; writes unless `dry_run`. Prints a line per lead (numbers
/// masked unless `full`) and a summary; returns the lines for callers that check them.
pub async fn renormalize_phones(
    store: &Store,
    cfg: &NormalizeConfig,
    dry_run: bool,
    full: bool,
) -> Result<Vec<Report>, String> {
    let leads = store
        .leads_with_refused_phone()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{} lead(s) with a refused phone in {}{}",
        leads.len(),
        store.table(),
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    let mut reports = Vec::with_capacity(leads.len());
    // A dry run writes no marker, so two refused leads with one number would both "adopt" it:
    // the numbers it would claim are remembered to report the second as held by the first.
    let mut would_claim: HashMap<String, String> = HashMap::new();
    for lead in &leads {
        let mut outcome = renormalize_one(store, cfg, lead, dry_run).await?;
        if let Outcome::Adopted { e164 } = &outcome {
            if let Some(first) = would_claim.get(e164) {
                outcome = Outcome::HeldBy {
                    e164: e164.clone(),
                    other_lead_id: first.clone(),
                };
            } else if dry_run {
                would_claim.insert(e164.clone(), lead.lead_id.clone());
            }
        }
        let show = |p: &str| {
            // `phone_raw` is whatever a form sent: no control characters reach the terminal.
            let p: String = p
                .chars()
                .take(40)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            if full {
                p
            } else {
                mask_phone(&p)
            }
        };
        let line = match &outcome {
            Outcome::Adopted { e164 } if dry_run => format!("would set {}", show(e164)),
            Outcome::Adopted { e164 } => format!("set {}, identity claimed", show(e164)),
            Outcome::HeldBy {
                e164,
                other_lead_id,
            } => format!(
                "not changed: {} belongs to lead {other_lead_id} (not merged; check by hand)",
                show(e164)
            ),
            Outcome::StillRefused => "not changed: still not a valid number".to_string(),
            Outcome::LeadChanged { e164 } => format!(
                "not changed: the lead changed while {} was being set; run again",
                show(e164)
            ),
        };
        println!("{}  {:<22} {line}", lead.lead_id, show(&lead.phone_raw));
        reports.push(Report {
            lead_id: lead.lead_id.clone(),
            outcome,
        });
    }
    let count = |f: fn(&Outcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
    println!(
        "{} {}, {} held by another lead, {} still refused, {} changed meanwhile",
        count(|o| matches!(o, Outcome::Adopted { .. })),
        if dry_run { "would be set" } else { "set" },
        count(|o| matches!(o, Outcome::HeldBy { .. })),
        count(|o| matches!(o, Outcome::StillRefused)),
        count(|o| matches!(o, Outcome::LeadChanged { .. })),
    );
    Ok(reports)
}

async fn renormalize_one(
    store: &Store,
    cfg: &NormalizeConfig,
    lead: &RefusedPhone,
    dry_run: bool,
) -> Result<Outcome, String> {
    let region = phone_region(lead.country.as_deref(), cfg);
    let Ok(phone) = parse_phone(&lead.phone_raw, region, &cfg.blocked) else {
        return Ok(Outcome::StillRefused);
    };
    let e164 = phone.e164.clone();
    if dry_run {
        let owner = store
            .lead_id_for(&IdentityKey::Phone(e164.clone()))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(match owner {
            Some(other) if other != lead.lead_id => Outcome::HeldBy {
                e164,
                other_lead_id: other,
            },
            _ => Outcome::Adopted { e164 },
        });
    }
    let adoption = store
        .adopt_phone(lead, &phone, Utc::now())
        .await
        .map_err(|e| format!("lead {}: {e}", lead.lead_id))?;
    Ok(match adoption {
        PhoneAdoption::Adopted => Outcome::Adopted { e164 },
        PhoneAdoption::HeldBy(other_lead_id) => Outcome::HeldBy {
            e164,
            other_lead_id,
        },
        PhoneAdoption::LeadChanged => Outcome::LeadChanged { e164 },
    })
}
