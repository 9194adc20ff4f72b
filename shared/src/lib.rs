//! leadflow's shared crate: the lead model and its rules (no AWS types: `model`, `normalize`,
//! `classify`, `fields`), and the adapters every function uses (`store` for DynamoDB, `events` for
//! what is announced on EventBridge, `http` for API Gateway events, `telemetry` for logs and metrics).

pub mod auth;
pub mod classify;
pub mod config;
pub mod consent;
pub mod error;
pub mod events;
pub mod fields;
pub mod http;
pub mod ingest;
pub mod lambda_time;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod multipart;
pub mod normalize;
pub mod predict;
pub mod rescoring;
pub mod sales;
pub mod scoring;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod warm;

pub use error::AppError;
