//! `api-gateway PORT`: the stack's HTTP API on 127.0.0.1:PORT, for the API contract run
//! (`scripts/api-contract`: schemathesis against docs/openapi.yaml). Routes come from
//! template.yaml's `HttpApi` events and each request becomes the payload 2.0 event API Gateway
//! sends (`integration_tests::api_gateway`); form-webhook, lead-api and referral-review answer it
//! with their own handlers, each state built from the environment as its `main.rs` does
//! (`TABLE_NAME`, `LEAD_API_KEYS`, the provider secrets...). The table is created from the
//! template when it does not exist, on the DynamoDB of `AWS_ENDPOINT_URL_DYNAMODB`.
//!
//! A function error or panic is answered as API Gateway answers one: 500
//! `{"message":"Internal Server Error"}`. Logs (the functions' JSON lines) go to stdout.

use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};

use integration_tests::api_gateway::{answer, event, http_routes, select, HttpRoute};
use lambda_runtime::{Context, LambdaEvent};
use leadflow::store::Store;

const TEMPLATE: &str = include_str!("../../template.yaml");

struct Functions {
    form: form_webhook::AppState,
    api: lead_api::ApiState,
    referral: referral_review::AppState,
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn message(status: u16, text: &str) -> Answer {
    (
        status,
        vec![("content-type".into(), "application/json".into())],
        serde_json::json!({ "message": text })
            .to_string()
            .into_bytes(),
    )
}

async fn build() -> Result<Functions, String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoint = var("AWS_ENDPOINT_URL_DYNAMODB").ok_or("set AWS_ENDPOINT_URL_DYNAMODB")?;
    let table = leadflow::config::table_name()?;
    // The tests' SDK configuration (stretched attempt budgets for a loaded local server): a
    // slow DynamoDB Local must not read as a 503 of the contract run.
    let sdk = integration_tests::sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    if !leadflow_tools::schema::table_exists(&client, &table).await? {
        let spec = leadflow_tools::schema::table_specs(TEMPLATE)?
            .into_iter()
            .find(|s| s.logical_id == "LeadsTable")
            .ok_or("template.yaml defines no LeadsTable")?;
        leadflow_tools::schema::create_table(&client, &spec, &table).await?;
    }
    let store = Store::new(&sdk, table);
    Ok(Functions {
        form: form_webhook::AppState::from_lookup(store.clone(), var)?,
        api: lead_api::ApiState::from_lookup(store.clone(), var)?,
        referral: referral_review::AppState::from_lookup(store, var)?,
    })
}

async fn invoke(
    functions: &'static Functions,
    function: &str,
    req: aws_lambda_events::apigw::ApiGatewayV2httpRequest,
) -> Answer {
    let event = LambdaEvent::new(req, Context::default());
    let run = match function {
        "form-webhook" => tokio::spawn(form_webhook::handler(&functions.form, event)),
        "lead-api" => tokio::spawn(lead_api::handler(&functions.api, event)),
        "referral-review" => tokio::spawn(referral_review::handler(&functions.referral, event)),
        other => return message(502, &format!("no local function {other}")),
    };
    match run.await {
        Ok(Ok(resp)) => answer(resp),
        Ok(Err(e)) => {
            eprintln!("{function}: function error: {e}");
            message(500, "Internal Server Error")
        }
        Err(e) => {
            eprintln!("{function}: function panicked: {e}");
            message(500, "Internal Server Error")
        }
    }
}

fn serve(
    stream: TcpStream,
    routes: &'static [HttpRoute],
    functions: &'static Functions,
    rt: tokio::runtime::Handle,
) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    while let Ok(Some(req)) = http_stub::http1::read_request(&mut reader) {
        let keep_alive = req.keep_alive();
        let raw_path = req.target.split('?').next().unwrap_or_default();
        let (status, headers, body) = match select(routes, &req.method, raw_path) {
            None => message(404, "Not Found"),
            Some((route, params)) => {
                let host = req.header("host").unwrap_or("127.0.0.1").to_string();
                let apigw = event(route, params, &req, &host);
                rt.block_on(invoke(functions, &route.function, apigw))
            }
        };
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if http_stub::http1::write_response(&mut writer, status, &headers, &body, keep_alive)
            .is_err()
            || !keep_alive
        {
            return;
        }
    }
}

fn main() -> Result<(), String> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("usage: api-gateway PORT")?;
    leadflow::telemetry::init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let routes: &'static [HttpRoute] = Vec::leak(http_routes(TEMPLATE)?);
    let functions: &'static Functions = Box::leak(Box::new(rt.block_on(build())?));
    let listener =
        TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("port {port}: {e}"))?;
    eprintln!(
        "api-gateway: http://127.0.0.1:{port}, {} routes of template.yaml",
        routes.len()
    );
    for stream in listener.incoming().flatten() {
        let handle = rt.handle().clone();
        std::thread::spawn(move || serve(stream, routes, functions, handle));
    }
    Ok(())
}
