//! Lambda entry point: configuration, the DynamoDB and EventBridge clients are built once per
//! cold start; every invocation then runs `rescore::handler`.

#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use leadflow::config::{load_sdk_config, table_name};
use leadflow::store::Store;
use rescore::{handler, Publisher, RescoreState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow::telemetry::init_tracing();
    let sdk_config = load_sdk_config().await;
    let store = Store::new(&sdk_config, table_name()?);
    // `EVENT_BUS_NAME` empty: changes are recorded on the leads but not published.
    let publisher = Publisher::from_env(&sdk_config);
    let state = RescoreState::from_lookup(store, publisher, |k| std::env::var(k).ok())?;
    state.store.warm_up().await;
    let state = &state;
    run(service_fn(move |event: LambdaEvent<_>| {
        handler(state, event)
    }))
    .await
}
