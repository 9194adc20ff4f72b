//! Lambda entry point: tracing, configuration and the DynamoDB client are set up once per cold
//! start; every invocation then runs `referral_review::handler`.

#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::store::Store;
use referral_review::{handler, AppState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let store = Store::new(&sdk_config, table_name()?);
    let state = AppState::from_env(store)?;
    // Cold start work moved out of the first request: phone metadata, TLS to DynamoDB.
    leadflow::normalize::warm_up(&state.normalize);
    state.store.warm_up().await;
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
