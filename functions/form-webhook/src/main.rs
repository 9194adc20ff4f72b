//! Lambda entry point: tracing, configuration and the DynamoDB client are set up once per cold
//! start; every invocation then runs `form_webhook::handler`.

#![recursion_limit = "256"]

use form_webhook::{handler, AppState};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let store = Store::new(&sdk_config, table_name()?);
    let state = AppState::from_env(store)?;
    // Phone metadata and the DynamoDB connection warm up without delaying the first poll.
    leadflow::warm::start_background_warm_up(&state.store, &state.normalize);
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
