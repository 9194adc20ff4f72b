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
