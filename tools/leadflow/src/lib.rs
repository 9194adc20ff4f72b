//! Operator and developer commands behind the `leadflow` binary (`src/main.rs` only parses
//! arguments and dispatches here).
//!
//! - `backfill`: `backfill` (the day keys: sharded, then in the reporting zone).
//! - `schema`: the tables of `template.yaml`, and creating them (local runs and tests).
//! - `commands`: `create-tables`.
//! - `leads`: `list-leads`.
//! - `replay`: `replay-quarantine`.
//! - `phones`: `renormalize-phones`.
//! - `providers`: `providers` (the registry's platforms and their variables).

pub mod backfill;
pub mod commands;
pub mod leads;
pub mod phones;
pub mod providers;
pub mod replay;
pub mod schema;

#[cfg(test)]
mod sample_events;
