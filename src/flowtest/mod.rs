//! Conversation tests written in YAML beside the flow, and their runner.
//!
//! A flow editor writes what a customer does and what the bot must answer;
//! `flowbot test` (and `cargo test`) plays it against the real engine.

mod check;
mod runner;
pub mod spec;

pub use runner::{Failure, FileResult, FlowCache, local_time, run_file, run_paths};
