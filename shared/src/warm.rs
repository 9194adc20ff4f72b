//! Cold-start work, off the critical path.
//!
//! Loading the phone metadata (libphonenumber's tables and regexes) costs 30-45 ms of CPU with
//! `rlibphonenumber` (the normalize bench prints it; 280-370 ms with `phonenumber` 0.3 on the
//! same machine). Done before the runtime's first poll it lengthens every cold start (measured
//! with `phonenumber`: ~120 ms to the first poll instead of ~5 ms); done lazily it lands on the
//! first request. So it starts on its
//! own thread at init and overlaps the runtime's start and the first invocation's I/O. A request
//! that needs the metadata before it is ready waits for the one load in progress (a lazy static):
//! it is never loaded twice.
//!
//! A DynamoDB warm-up request (TLS handshake and credentials before the first invocation) is
//! opt-in with `WARM_UP_DYNAMODB=true`: on a single-threaded runtime it runs before the first
//! poll and measured ~10 ms more to it (bench/cold-start.sh), which the cold-start target does not
//! allow; the first request pays the handshake instead.

use crate::normalize::{warm_up, NormalizeConfig};
use crate::store::Store;

/// Starts the phone-metadata load on its own thread (and, when `WARM_UP_DYNAMODB=true`, a cheap
/// DynamoDB request on the runtime); returns at once. Call from `main` before `run`.
pub fn start_background_warm_up(store: &Store, normalize: &NormalizeConfig) {
    let cfg = normalize.clone();
    std::thread::spawn(move || warm_up(&cfg));
    if std::env::var("WARM_UP_DYNAMODB").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        let store = store.clone();
        tokio::spawn(async move { store.warm_up().await });
    }
}
