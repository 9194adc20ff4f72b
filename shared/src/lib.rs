//! leadflow's shared crate: the lead model and its rules (no AWS types: `model`, `normalize`,
//! `classify`, `fields`, `scoring`, `sales`, each with its own error type), and the adapters
//! every function uses (`store` for DynamoDB, `edge` for API Gateway requests and answers,
//! `events` for what is announced on EventBridge, `rescoring` for scoring a stored lead,
//! `telemetry` for logs and metrics). docs/architecture.md maps the whole workspace.

pub mod classify;
pub mod config;
pub mod consent;
pub mod edge;
pub mod events;
pub mod fields;
pub mod import;
pub mod ingest;
pub mod lambda_time;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod multipart;
pub mod names;
pub mod normalize;
pub mod predict;
pub mod privacy;
pub mod report_zone;
pub mod rescoring;
pub mod sales;
pub mod scoring;
pub mod secrets;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod warm;
