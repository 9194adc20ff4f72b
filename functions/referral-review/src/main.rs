//! Lambda entry point: the shared edge builds the state once per cold start and serves
//! [`referral_review::AppState`]'s routes.

#![recursion_limit = "256"]

use referral_review::AppState;

// One event at a time: a single-threaded runtime avoids cross-thread wake-ups, measured at a
// third of the CPU per invocation (1.67 -> 1.11 ms, bench/cold-start.sh).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    leadflow::edge::run(|store, secrets| {
        AppState::from_lookup(store, secrets.lookup()).map(|s| s.rotating(secrets.secrets.clone()))
    })
    .await
}
