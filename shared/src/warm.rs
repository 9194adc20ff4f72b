//! Cold-start work, off the critical path.
//!
//! Loading the phone metadata (libphonenumber's tables and regexes) costs 100-200 ms of CPU, and
//! the first DynamoDB request pays the TLS handshake. Done before the runtime's first poll they
//! lengthen every cold start (measured: ~120 ms to first poll instead of ~5 ms); done lazily they
//! land on the first request. So both start in the background at init and overlap the runtime's
//! start and the first invocation's own I/O. A request that needs the metadata before it is ready
//! waits for the one load in progress (a lazy static): it is never loaded twice.

use crate::normalize::{warm_up, NormalizeConfig};
use crate::store::Store;

/// Starts the phone-metadata load on its own thread and a cheap DynamoDB request on the
/// runtime; returns at once. Call from `main` after building the state, before `run`.
pub fn start_background_warm_up(store: &Store, normalize: &NormalizeConfig) {
    let cfg = normalize.clone();
    std::thread::spawn(move || warm_up(&cfg));
    let store = store.clone();
    tokio::spawn(async move { store.warm_up().await });
}
