//! Storage faults injected with aws-smithy-mocks (throttling, cancelled transactions): the
//! sender must get a 5xx so it retries, never a 2xx for data that was not written. Everything
//! else in the suite runs against the real local server.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::{
    ProvisionedThroughputExceededException, TransactionCanceledException,
};
use aws_sdk_dynamodb::types::CancellationReason;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use form_webhook::{handler, AppState};
use integration_tests::{lambda_event, sample_event, Answer, EventBuilder};
use leadflow::store::Store;
use serde_json::json;

fn mocked_store(rule: &Rule) -> Store {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .http_client(create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(rule),
        )
        .build();
    Store::from_client(Client::from_conf(conf), "mocked")
}

async fn post(store: Store) -> Answer {
    let state = AppState::from_lookup(store, |_| None).unwrap();
    let event = EventBuilder::new("POST", "/webhooks/form")
        .header("accept", "application/json")
        .json(&json!({"email": "fault@example.com"}))
        .build();
    handler(&state, lambda_event(event)).await.unwrap().into()
}

#[tokio::test]
async fn throttling_is_a_503() {
    let rule = mock!(Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    });
    let a = post(mocked_store(&rule)).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "storage_unavailable");
}

#[tokio::test]
async fn a_transaction_cancelled_by_throttling_every_time_is_a_503() {
    let rule = mock!(Client::transact_write_items).then_error(|| {
        let throttled = CancellationReason::builder()
            .code("ThrottlingError")
            .build();
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .message("cancelled")
                .set_cancellation_reasons(Some(vec![throttled; 4]))
                .build(),
        )
    });
    let a = post(mocked_store(&rule)).await;
    assert_eq!(a.status, 503, "{}", a.text);
    // Retried inside the store before giving up (the delivery is safe to retry later).
    assert!(rule.num_calls() > 1, "calls: {}", rule.num_calls());
}

/// What DynamoDB answers for an item over 400 KB or a key over its size limit: permanent.
fn validation_error() -> TransactWriteItemsError {
    TransactWriteItemsError::generic(
        ErrorMetadata::builder()
            .code("ValidationException")
            .message("Item size has exceeded the maximum allowed size")
            .build(),
    )
}

#[tokio::test]
async fn a_permanent_storage_error_of_a_web_form_is_a_422_not_a_503() {
    let rule = mock!(Client::transact_write_items).then_error(validation_error);
    let a = post(mocked_store(&rule)).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "unstorable_submission");
    assert!(!a.headers.contains_key("retry-after"));
    assert_eq!(rule.num_calls(), 1, "a permanent error is not retried");
}

#[tokio::test]
async fn a_permanent_storage_error_of_a_platform_delivery_is_quarantined_and_2xx() {
    let txn = mock!(Client::transact_write_items).then_error(validation_error);
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    // The quarantine files the delivery under the address it contains first.
    let filed =
        mock!(Client::batch_write_item).then_output(|| BatchWriteItemOutput::builder().build());
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .http_client(create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&txn)
                .with_rule(&filed)
                .with_rule(&put),
        )
        .build();
    let store = Store::from_client(Client::from_conf(conf), "mocked");
    let state = AppState::from_lookup(store, |k| {
        (k == "TYPEFORM_SECRET").then(|| "test-typeform-secret".to_string())
    })
    .unwrap();
    let a: Answer = handler(&state, lambda_event(sample_event("typeform-response.json")))
        .await
        .unwrap()
        .into();
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["results"][0]["status"], "quarantined", "{}", a.text);
    assert_eq!(put.num_calls(), 1, "the delivery is kept for replay");
    assert_eq!(
        filed.num_calls(),
        1,
        "filed under laura.diaz@example.com and her phone"
    );
}
