//! `leadflow replay-quarantine`: re-ingests authentic deliveries that were quarantined because
//! they could not be parsed, once the parser has learned (deploy the fix, then replay). Delivery
//! ids keep a replay from creating anything twice; an item is deleted only after it is stored.

use leadflow::normalize::NormalizeConfig;
use leadflow::store::Store;
use leadflow_providers::{replay, Intake, Providers, ProvidersConfig, ReplayResult};

pub async fn replay_quarantine(store: &Store, limit: usize, dry_run: bool) -> Result<(), String> {
    let items = store
        .list_quarantine(limit)
        .await
        .map_err(|e| e.to_string())?;
    println!("{} quarantined deliveries", items.len());
    // The functions' own settings: the same normalization, the same platform secrets.
    let normalize = NormalizeConfig::from_lookup(|k| std::env::var(k).ok())?;
    let providers = Providers::new(ProvidersConfig::from_env());
    let intake = Intake {
        store,
        normalize: &normalize,
        providers: &providers,
    };
    let (mut stored, mut still_bad) = (0, 0);
    for item in &items {
        print!("{} {} {} ... ", item.id, item.provider, item.received_at);
        if dry_run {
            println!("reason: {}", item.reason);
            continue;
        }
        match replay(intake, item).await {
            Ok(ReplayResult::Stored(outcomes)) => {
                store
                    .delete_quarantine(&item.id)
                    .await
                    .map_err(|e| e.to_string())?;
                stored += 1;
                let summary: Vec<String> = outcomes
                    .iter()
                    .map(|o| format!("{} {}", o.status.as_str(), o.lead_id))
                    .collect();
                println!("stored: {}", summary.join(", "));
            }
            Ok(ReplayResult::StillUnusable(reason)) => {
                still_bad += 1;
                println!("still unusable: {reason}");
            }
            Err(e) => return Err(format!("replay stopped at {}: {e}", item.id)),
        }
    }
    println!("replayed {stored}, still quarantined {still_bad}");
    Ok(())
}
