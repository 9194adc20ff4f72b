//! Operator and developer commands behind the `leadflow` binary.

pub mod schema;
