//! Operator and developer commands behind the `leadflow` binary.

pub mod leads;
pub mod replay;
pub mod schema;
