//! The `flowbot` command line: the flow editor's tools and (later) the bot itself.

use std::process::ExitCode;

fn main() -> ExitCode {
    flowbot::cli::main()
}
