//! Helpers shared by the integration tests.
//!
//! Each test file that needs them declares `mod support;`. Every test binary
//! uses only a subset, so unused items are allowed here.

#![allow(dead_code)]

pub mod bot;
pub mod bridge;
pub mod http;
pub mod logs;
pub mod process;
pub mod telegram;
pub mod wahelp;
pub mod wait;
