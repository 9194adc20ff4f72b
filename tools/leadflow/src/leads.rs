//! `leadflow list-leads`: the leads of a table, one line each, for the local run and operators.
//! Contact data is masked unless `--full` is given: terminals end up in screenshots and logs.

use leadflow::model::Lead;
use leadflow::store::Store;
use leadflow::telemetry::{mask_email, mask_phone};

pub fn format_lead(lead: &Lead, full: bool) -> String {
    let email = lead
        .contact
        .email
        .as_deref()
        .map(|e| if full { e.to_string() } else { mask_email(e) })
        .unwrap_or_else(|| "-".into());
    let phone = lead
        .contact
        .phone
        .as_deref()
        .map(|p| if full { p.to_string() } else { mask_phone(p) })
        .unwrap_or_else(|| "-".into());
    format!(
        "{}  {:<28} {:<14} {:<14} {:<16} {:<10} touches={:<3} stage={}{}",
        lead.lead_id,
        email,
        phone,
        lead.channel.as_str(),
        lead.source,
        lead.campaign,
        lead.touch_count,
        lead.stage.as_str(),
        lead.score
            .map(|s| format!(" score={s}"))
            .unwrap_or_default()
    )
}

pub async fn list_leads(store: &Store, full: bool) -> Result<(), String> {
    let leads = store.scan_leads().await.map_err(|e| e.to_string())?;
    println!("{} lead(s) in {}", leads.len(), store.table());
    for lead in &leads {
        println!("{}", format_lead(lead, full));
    }
    Ok(())
}

/// `leadflow list-lead-gone`: leads a platform announced but no longer has (deleted before we
/// fetched them, or the Meta dashboard's test ids), newest last. Ids and the platform's answer
/// only: these records hold no personal data.
pub async fn list_lead_gone(store: &Store, limit: usize) -> Result<(), String> {
    let gone = store
        .list_lead_gone(limit)
        .await
        .map_err(|e| e.to_string())?;
    println!("{} lead_gone record(s) in {}", gone.len(), store.table());
    for g in &gone {
        let ids: Vec<String> = g.ids.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{}  {:<9} {:<20} HTTP {} x{}  {}  {}",
            leadflow::store::ts(g.received_at),
            g.provider,
            g.platform_lead_id,
            g.http_status,
            g.deliveries,
            ids.join(" "),
            g.reason
        );
    }
    Ok(())
}
