//! Lambda entry point: the DynamoDB and EventBridge clients are built once per cold start;
//! every batch of stream records then runs `lead_events::handler`.

#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lead_events::{handler, LeadEventsState};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::events::Publisher;
use leadflow::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let state = LeadEventsState {
        store: Store::new(&sdk_config, table_name()?),
        // `EVENT_BUS_NAME` empty: records are read and nothing is published.
        publisher: Publisher::from_env(&sdk_config),
    };
    state.store.warm_up().await;
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
