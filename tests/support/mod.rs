//! Test support: AWS's DynamoDB Local on loopback (a real DynamoDB engine, started by
//! `scripts/dynamodb-local`), a fresh table per test created from template.yaml's definition,
//! moto's server for EventBridge and SQS (what DynamoDB Local does not serve), and helpers to
//! build API Gateway events.
//!
//! Each server is started once per test binary, unless the SDK's standard variable already
//! points at one (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_EVENTBRIDGE`): `scripts/test` starts
//! one of each for every test binary of the run. A server started here is tied to this process
//! through a pipe: when the test binary exits, the pipe closes and the wrapper shell stops it.
//!
//! The SDK is configured in code ([`sdk_config`]: endpoint, region, dummy credentials), never by
//! setting environment variables: a test binary runs its tests on many threads, and changing the
//! environment while another thread reads it is a data race.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::Engine;
use lambda_runtime::{Context, LambdaEvent};
use leadflow::store::Store;

pub use leadflow;

pub mod api_gateway;

const TEMPLATE: &str = include_str!("../../template.yaml");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

struct Server {
    endpoint: String,
    // Kept so the pipe to the wrapper stays open for the life of the process.
    _child: Option<Child>,
}

static DYNAMODB: OnceLock<Server> = OnceLock::new();
static EVENTS: OnceLock<Server> = OnceLock::new();

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_until_serving(port: u16, what: &str) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 16];
            if s.read(&mut buf).map(|n| n > 0).unwrap_or(false) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not start on port {port} within 60 s (run scripts/bootstrap)");
}

/// The endpoint named by `var` when set, else a server started with `command` (given a free
/// port) and tied to this process.
fn reuse_or_start(var: &str, what: &str, command: impl Fn(u16) -> String) -> Server {
    if let Ok(endpoint) = std::env::var(var) {
        if !endpoint.is_empty() {
            return Server {
                endpoint,
                _child: None,
            };
        }
    }
    let port = free_port();
    let script = format!(
        "{} >/dev/null 2>&1 & pid=$!; read _; kill $pid",
        command(port)
    );
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("bash to start {what}: {e}"));
    wait_until_serving(port, what);
    Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Some(child),
    }
}

/// An SDK configuration pointed at a local server, with a fixed region and dummy credentials
/// (the SDK signs requests even for a local server). Callers may change more (a bench's longer
/// timeouts) before loading it.
///
/// The production connect timeout (`leadflow::config::sdk_timeouts`), but the attempt and
/// operation budgets stretched to 15 s / 60 s: DynamoDB Local on a loaded 2-core CI machine,
/// serving every test binary's parallel tests, can take seconds where DynamoDB takes
/// milliseconds (20 concurrent transactions on one person, 10,000-item seeds), and a test is
/// about what is stored, not how fast. Timeouts and retries as faults are tested with
/// `aws-smithy-mocks` and [`unreachable_store`]. (The functions' own environment-based
/// configuration, `leadflow::config::load_sdk_config`, is unit-tested in shared/src/config.rs
/// and runs in scripts/run-local against the local servers.)
pub fn sdk_loader(endpoint: &str) -> aws_config::ConfigLoader {
    let production = leadflow::config::sdk_timeouts();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(
            production
                .connect_timeout()
                .unwrap_or(Duration::from_secs(2)),
        )
        .operation_attempt_timeout(Duration::from_secs(15))
        .operation_timeout(Duration::from_secs(60))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
}

/// [`sdk_loader`], loaded.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_loader(endpoint).load().await
}

fn server() -> &'static Server {
    DYNAMODB.get_or_init(|| {
        reuse_or_start("AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB Local", |port| {
            format!("{ROOT}/scripts/dynamodb-local {port}")
        })
    })
}

/// moto's server, for EventBridge and SQS only (rescore's published events). Run from the
/// project's virtualenv when there is one (scripts/bootstrap), else from PATH.
fn events_server() -> &'static Server {
    EVENTS.get_or_init(|| {
        reuse_or_start("AWS_ENDPOINT_URL_EVENTBRIDGE", "moto_server", |port| {
            let venv = format!("{ROOT}/.venv/bin/moto_server");
            let moto = if std::path::Path::new(&venv).exists() {
                venv
            } else {
                "moto_server".to_string()
            };
            format!("{moto} -H 127.0.0.1 -p {port}")
        })
    })
}

/// The endpoint serving EventBridge and SQS (moto's server; starting it on first use).
pub fn events_endpoint() -> String {
    events_server().endpoint.clone()
}

/// DynamoDB Local's endpoint (starting it on first use).
pub fn endpoint() -> String {
    server().endpoint.clone()
}

/// A fresh, empty lead table with the production schema; returns a store on it, reaching
/// DynamoDB Local with the production SDK configuration ([`sdk_config`]).
pub async fn fresh_store() -> Store {
    let sdk = sdk_config(&endpoint()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let spec = leadflow_tools::schema::table_specs(TEMPLATE)
        .expect("template.yaml parses")
        .into_iter()
        .find(|s| s.logical_id == "LeadsTable")
        .expect("template.yaml defines LeadsTable");
    let name = format!("test-{}", leadflow::store::new_id());
    leadflow_tools::schema::create_table(&client, &spec, &name)
        .await
        .expect("create table");
    Store::new(&sdk, name)
}

/// A store whose DynamoDB endpoint refuses connections: storage "down".
pub async fn unreachable_store() -> Store {
    let port = free_port();
    let sdk = sdk_loader(&format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    Store::new(&sdk, "unreachable")
}

/// Builds an API Gateway HTTP API (payload 2.0) event, the shape Function URLs send too.
pub struct EventBuilder {
    value: serde_json::Value,
}

impl EventBuilder {
    pub fn new(method: &str, path: &str) -> EventBuilder {
        let provider = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let now = chrono::Utc::now();
        EventBuilder {
            value: serde_json::json!({
                "version": "2.0",
                "routeKey": format!("{method} /webhooks/{{provider}}"),
                "rawPath": path,
                "rawQueryString": "",
                "headers": {},
                "pathParameters": {"provider": provider},
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "api",
                    "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                    "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                             "sourceIp": "203.0.113.7", "userAgent": "test"},
                    "requestId": leadflow::store::new_id(),
                    "routeKey": format!("{method} /webhooks/{{provider}}"),
                    "stage": "$default",
                    "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                    "timeEpoch": now.timestamp_millis(),
                },
                "isBase64Encoded": false,
            }),
        }
    }

    /// Wraps an event given as JSON.
    pub fn from_value(value: serde_json::Value) -> EventBuilder {
        EventBuilder { value }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.value["headers"][name.to_ascii_lowercase()] = value.into();
        self
    }

    pub fn query(mut self, raw: &str) -> Self {
        self.value["rawQueryString"] = raw.into();
        self
    }

    /// A JSON body, sent as plain text like API Gateway does.
    pub fn json(self, body: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .text_body(&body.to_string())
    }

    pub fn text_body(mut self, body: &str) -> Self {
        self.value["body"] = body.into();
        self.value["isBase64Encoded"] = false.into();
        self
    }

    /// A body API Gateway base64-encodes (forms, multipart, binary).
    pub fn base64_body(mut self, body: &[u8]) -> Self {
        self.value["body"] = base64::engine::general_purpose::STANDARD
            .encode(body)
            .into();
        self.value["isBase64Encoded"] = true.into();
        self
    }

    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let body = pairs
            .iter()
            .fold(
                form_urlencoded_serializer(),
                |mut s: form_urlencoded::Serializer<String>, (k, v)| {
                    s.append_pair(k, v);
                    s
                },
            )
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .base64_body(body.as_bytes())
    }

    pub fn build(self) -> ApiGatewayV2httpRequest {
        serde_json::from_value(self.value).expect("a valid API Gateway v2 event")
    }
}

fn form_urlencoded_serializer() -> form_urlencoded::Serializer<'static, String> {
    form_urlencoded::Serializer::new(String::new())
}

/// The local test values of events/local.env (`NAME=value` lines): the one file that holds
/// them; the signed samples of events/ were made with these.
pub fn local_env() -> HashMap<String, String> {
    let path = format!("{ROOT}/events/local.env");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Loads an `events/` sample.
pub fn sample_event(name: &str) -> ApiGatewayV2httpRequest {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn lambda_event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

/// A Lambda event given as JSON, read into the handler's input type as the runtime reads it
/// (the scheduled functions take typed inputs).
pub fn json_event<T: serde::de::DeserializeOwned>(payload: serde_json::Value) -> LambdaEvent<T> {
    lambda_event(serde_json::from_value(payload).expect("an event the handler's input type reads"))
}

/// Status, JSON body (or `null`) and headers of a response.
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub headers: HashMap<String, String>,
    pub text: String,
}

impl From<ApiGatewayV2httpResponse> for Answer {
    fn from(resp: ApiGatewayV2httpResponse) -> Answer {
        let text = leadflow::edge::body_text(&resp);
        Answer {
            status: resp.status_code as u16,
            json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            headers: resp
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            text,
        }
    }
}

/// Debian's Chromium for browser tests (scripts/bootstrap installs it).
pub fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("chromium")
}

/// What a stand-in platform API answers for a request path (`http-stub`).
pub use http_stub::Reply as StandInReply;

/// A small HTTP/1.1 server on loopback standing in for a third-party API (Meta's Graph API,
/// LinkedIn's): the real client code runs against it. It counts the requests it served and
/// the most it answered at once (`http_stub::Stub`, shared with the provider unit tests and
/// the Lambda Runtime API stand-in of bench/runtime-stub).
pub struct StandIn(http_stub::Stub);

impl StandIn {
    pub async fn start(reply: impl Fn(&str) -> StandInReply + Send + Sync + 'static) -> StandIn {
        StandIn(http_stub::Stub::start(reply))
    }

    /// One answering by the whole request (path, query and headers: a bearer token).
    pub async fn start_with_headers(
        reply: impl Fn(&http_stub::Recorded) -> StandInReply + Send + Sync + 'static,
    ) -> StandIn {
        StandIn(http_stub::Stub::start_with_headers(reply))
    }
}

impl std::ops::Deref for StandIn {
    type Target = http_stub::Stub;

    fn deref(&self) -> &http_stub::Stub {
        &self.0
    }
}

/// A local EventBridge bus of its own (moto) with a rule sending every event leadflow publishes
/// to a fresh SQS queue the test reads back.
pub struct Events {
    pub bus: String,
    queue_url: String,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Events {
    pub async fn new() -> Events {
        let sdk = sdk_config(&events_endpoint()).await;
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let id = leadflow::store::new_id();
        let bus = format!("bus-{id}");
        events.create_event_bus().name(&bus).send().await.unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("q-{id}"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        events
            .put_rule()
            .name(format!("r-{id}"))
            .event_bus_name(&bus)
            .event_pattern(
                serde_json::json!({"source": [rescore::EVENT_SOURCE, lead_events::EVENT_SOURCE]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(format!("r-{id}"))
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        Events {
            bus,
            queue_url,
            events,
            sqs,
        }
    }

    pub fn publisher(&self) -> leadflow::events::Publisher {
        leadflow::events::Publisher {
            client: self.events.clone(),
            bus: self.bus.clone(),
        }
    }

    /// Every event delivered so far (the queue is emptied).
    pub async fn drain(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let msgs = got.messages();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// A lead item exactly as DynamoDB Local stores it (consistent read): what a stream record's
/// image carries.
pub async fn lead_item(store: &Store, lead_id: &str) -> leadflow::store::Item {
    store
        .raw_lead_item(lead_id)
        .await
        .unwrap()
        .unwrap_or_default()
}

/// One DynamoDB stream record of a lead item, as Lambda delivers it (NEW_AND_OLD_IMAGES): the
/// images are real items, in the stream's AttributeValue JSON shape.
pub fn stream_record(
    event_name: &str,
    old: Option<&leadflow::store::Item>,
    new: Option<&leadflow::store::Item>,
    sequence_number: u64,
) -> serde_json::Value {
    use leadflow::store::item_to_stream_json;
    let image = new.or(old).expect("an image");
    let keys: leadflow::store::Item = ["pk", "sk"]
        .into_iter()
        .map(|k| (k.to_string(), image[k].clone()))
        .collect();
    let mut dynamodb = serde_json::json!({
        "ApproximateCreationDateTime": chrono::Utc::now().timestamp(),
        "Keys": item_to_stream_json(&keys),
        "SequenceNumber": format!("{sequence_number:021}"),
        "SizeBytes": 512,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(new) = new {
        dynamodb["NewImage"] = item_to_stream_json(new);
    }
    if let Some(old) = old {
        dynamodb["OldImage"] = item_to_stream_json(old);
    }
    serde_json::json!({
        "eventID": format!("{sequence_number:x}"),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/leadflow/stream/2026-11-30T00:00:00.000",
    })
}
