//! Test support: AWS's DynamoDB Local on loopback (a real DynamoDB engine, started by
//! `scripts/dynamodb-local`), a fresh table per test created from template.yaml's definition,
//! moto's server for EventBridge and SQS (what DynamoDB Local does not serve), and helpers to
//! build API Gateway events.
//!
//! Each server is started once per test binary, unless the SDK's standard variable already
//! points at one (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_EVENTBRIDGE`): `scripts/test` starts
//! one of each for every test binary of the run. A server started here is tied to this process
//! through a pipe: when the test binary exits, the pipe closes and the wrapper shell stops it.

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
/// port) and tied to this process; `var` is then set so everything in the process uses it.
fn reuse_or_start(var: &str, what: &str, command: impl Fn(u16) -> String) -> Server {
    // Dummy credentials and a fixed region: the SDK signs requests even for a local server.
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
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
    let endpoint = format!("http://127.0.0.1:{port}");
    std::env::set_var(var, &endpoint);
    Server {
        endpoint,
        _child: Some(child),
    }
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

/// The endpoint serving EventBridge and SQS (moto's server; starting it on first use). Also
/// sets `AWS_ENDPOINT_URL_SQS` to it.
pub fn events_endpoint() -> String {
    let endpoint = events_server().endpoint.clone();
    std::env::set_var("AWS_ENDPOINT_URL_SQS", &endpoint);
    endpoint
}

/// DynamoDB Local's endpoint (starting it on first use).
pub fn endpoint() -> String {
    server().endpoint.clone()
}

/// A fresh, empty lead table with the production schema; returns a store on it. The SDK is
/// configured exactly as in production (`load_sdk_config`), reaching DynamoDB Local through
/// `AWS_ENDPOINT_URL_DYNAMODB`.
pub async fn fresh_store() -> Store {
    server();
    let sdk = leadflow::config::load_sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let spec = leadflow_tools::schema::table_specs(TEMPLATE)
        .expect("template.yaml parses")
        .into_iter()
        .find(|s| s.logical_id == "LeadsTable")
        .expect("template.yaml defines LeadsTable");
    let name = format!("test-{}", leadflow::store::keys::new_id());
    leadflow_tools::schema::create_table(&client, &spec, &name)
        .await
        .expect("create table");
    Store::new(&sdk, name)
}

/// A store whose DynamoDB endpoint refuses connections: storage "down".
pub async fn unreachable_store() -> Store {
    let port = free_port();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
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
                    "requestId": leadflow::store::keys::new_id(),
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

/// Loads an `events/` sample.
pub fn sample_event(name: &str) -> ApiGatewayV2httpRequest {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn lambda_event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
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
        let text = leadflow::http::body_text(&resp);
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

/// What a stand-in platform API answers for a request path.
pub enum StandInReply {
    Json(u16, String),
    /// The same after a pause, so concurrent requests overlap.
    Delayed(u64, u16, String),
    /// Never answers (the client's timeout must fire).
    Hang,
}

/// A small HTTP/1.1 server on loopback standing in for a third-party API (Meta's Graph API,
/// LinkedIn's): the real client code runs against it. Counts the requests it served.
pub struct StandIn {
    pub base_url: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// (requests being answered now, most at once so far)
    in_flight: std::sync::Arc<std::sync::Mutex<(usize, usize)>>,
}

impl StandIn {
    pub async fn start(reply: impl Fn(&str) -> StandInReply + Send + Sync + 'static) -> StandIn {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        let in_flight = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        let flight = in_flight.clone();
        let reply = std::sync::Arc::new(reply);
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let reply = reply.clone();
                let counter = counter.clone();
                let flight = flight.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&buf);
                    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    {
                        let mut f = flight.lock().unwrap();
                        f.0 += 1;
                        f.1 = f.1.max(f.0);
                    }
                    let answer = match reply(&target) {
                        StandInReply::Delayed(ms, status, body) => {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            StandInReply::Json(status, body)
                        }
                        other => other,
                    };
                    match answer {
                        StandInReply::Hang | StandInReply::Delayed(..) => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        StandInReply::Json(status, body) => {
                            flight.lock().unwrap().0 -= 1;
                            let resp = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = sock.write_all(resp.as_bytes()).await;
                        }
                    }
                });
            }
        });
        StandIn {
            base_url,
            requests,
            in_flight,
        }
    }

    pub fn served(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most requests the stand-in was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }
}

async fn sdk() -> aws_config::SdkConfig {
    let endpoint = events_endpoint();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await
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
        let sdk = sdk().await;
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let id = leadflow::store::keys::new_id();
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
    use leadflow::store::keys;
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            keys::PK,
            aws_sdk_dynamodb::types::AttributeValue::S(keys::lead_pk(lead_id)),
        )
        .key(
            keys::SK,
            aws_sdk_dynamodb::types::AttributeValue::S(keys::LEAD_SK.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item()
        .cloned()
        .unwrap_or_else(|| panic!("no lead item {lead_id}"))
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
