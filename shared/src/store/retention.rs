//! Retention (`RETENTION_DAYS`): which leads have been inactive that long. Erasing them goes
//! through `erasure`, the same path as a person's own request.

use chrono::{DateTime, Utc};

use super::codec::{get_s, s};
use super::keys::ts;
use super::{Store, StoreError};

impl Store {
    /// Ids of the leads not erased whose last touch is before `cutoff` (a paged, filtered Scan
    /// of the table: a daily job's read, not a request path).
    pub async fn inactive_leads(&self, cutoff: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let items = self
            .scan_lead_items(
                "last_touch_at < :cutoff AND attribute_not_exists(erased)",
                "lead_id",
                &[(":cutoff", s(ts(cutoff)))],
            )
            .await?;
        let mut ids: Vec<String> = items.iter().filter_map(|i| get_s(i, "lead_id")).collect();
        ids.sort();
        Ok(ids)
    }
}
