//! flowbot: a Telegram bot whose behaviour lives in a YAML flow file.
//!
//! The crate is a pure core (`flow`, `engine`, `phone`) and thin adapters
//! around it. The core does no I/O; everything with a side effect lives in
//! the adapters and the CLI.

pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod flow;
pub mod flowtest;
pub mod http;
pub mod liveness;
pub mod outbox;
pub mod phone;
pub mod show;
pub mod store;
pub mod telegram;
pub mod wahelp;
