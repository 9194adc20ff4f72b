//! Lambda entry point: configuration and the DynamoDB, S3 and SQS clients are built once per
//! cold start; every batch of queue messages then runs `lead_import::handler`.

#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lead_import::{handler, s3_client, ImportState};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let state = ImportState::from_lookup(
        Store::new(&sdk_config, table_name()?),
        s3_client(&sdk_config, |k| std::env::var(k).ok()),
        aws_sdk_sqs::Client::new(&sdk_config),
        |k| std::env::var(k).ok(),
    )?;
    state.store.warm_up().await;
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
