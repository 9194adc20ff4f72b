//! Lambda entry point: configuration and the DynamoDB client are built once per cold start.

#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lead_api::{handler, ApiState};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::store::Store;

// One event at a time: a single-threaded runtime avoids cross-thread wake-ups, measured at a
// third of the CPU per invocation (1.67 -> 1.11 ms, bench/cold-start.sh).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let store = Store::new(&sdk_config, table_name()?);
    let state = ApiState::from_lookup(store, |k| std::env::var(k).ok())?;
    leadflow::warm::start_background_warm_up(&state.store, &state.normalize);
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
