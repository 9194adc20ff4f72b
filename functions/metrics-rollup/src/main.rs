//! Lambda entry point: configuration and the DynamoDB client are built once per cold start.

#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::store::Store;
use metrics_rollup::{handler, RollupState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let state = RollupState::from_lookup(Store::new(&sdk_config, table_name()?), |k| {
        std::env::var(k).ok()
    })?;
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
