//! Command-line entry: parses arguments and runs the bot or one tool.

mod chat;
mod check;
mod logging;
mod ops;
mod run;
mod serve;
mod settings;
mod test;
mod wahelp;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The default flow, relative to the working directory.
pub const DEFAULT_FLOW: &str = "flows/default.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "flowbot",
    version,
    about = "Telegram bot driven by a YAML flow; tools for the flow's editor"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a flow file: every problem with its line (exit 0 clean, 1 errors, 2 warnings with --strict).
    Check {
        /// The flow file.
        #[arg(default_value = DEFAULT_FLOW)]
        flow: PathBuf,
        /// Fail on warnings too.
        #[arg(long)]
        strict: bool,
    },
    /// Talk to the flow in the terminal, with the real engine and a real SQLite store.
    Chat {
        #[arg(long, default_value = DEFAULT_FLOW)]
        flow: PathBuf,
        /// Keep the conversation in this database (default: a temporary file).
        #[arg(long)]
        db: Option<PathBuf>,
        /// One JSON object per effect, one per line.
        #[arg(long)]
        json: bool,
        /// Also run the webhook server, so a Wahelp call (e.g. a curl of a sample) reaches this conversation.
        #[arg(long)]
        serve: bool,
        /// Where the webhook server listens (default: HTTP_LISTEN, else 127.0.0.1:8080).
        #[arg(long, requires = "serve")]
        listen: Option<std::net::SocketAddr>,
    },
    /// The Wahelp bridge: inspect webhook calls, register the webhook.
    Wahelp {
        #[command(subcommand)]
        command: wahelp::Command,
    },
    /// Run the bot in Telegram (configuration from the environment and .env; see .env.example).
    Run,
    /// Run conversation tests written in YAML (default: flows/tests).
    Test { paths: Vec<PathBuf> },
    /// Print the flow as a Mermaid diagram.
    Graph {
        #[arg(default_value = DEFAULT_FLOW)]
        flow: PathBuf,
    },
    /// Print the flow file's JSON Schema.
    Schema,
    /// Copy the database while the bot runs (consistent, checked); PATH must not exist.
    Backup {
        path: PathBuf,
        /// The database (default: DATABASE_PATH, or flowbot.db).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Print what /stats shows in the admins' chat.
    Stats {
        /// The database (default: DATABASE_PATH, or flowbot.db).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The flow, for its time zone (what "today" means) (default: FLOW_PATH, or flows/default.yaml).
        #[arg(long)]
        flow: Option<PathBuf>,
    },
}

/// Runs the command line; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        if run::token_given() {
            Command::Run
        } else {
            eprintln!(
                "flowbot: TELEGRAM_BOT_TOKEN is not set, so this is the terminal conversation \
                 with the flow; set it (or put it in .env) to run the bot in Telegram."
            );
            Command::Chat {
                flow: PathBuf::from(DEFAULT_FLOW),
                db: None,
                json: false,
                serve: false,
                listen: None,
            }
        }
    });
    let result = match command {
        Command::Check { flow, strict } => check::run(&flow, strict),
        Command::Chat {
            flow,
            db,
            json,
            serve,
            listen,
        } => chat::run(
            &flow,
            db.as_deref(),
            json,
            serve.then_some(chat::ServeOptions { listen }),
        ),
        Command::Wahelp { command } => wahelp::run(command),
        Command::Run => run::run(),
        Command::Test { paths } => test::run(paths),
        Command::Graph { flow } => graph(&flow),
        Command::Backup { path, db } => ops::backup(&path, db),
        Command::Stats { db, flow } => ops::stats(db, flow),
        Command::Schema => {
            print!("{}", crate::flow::schema::generate());
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("flowbot: {e:#}");
        ExitCode::FAILURE
    })
}

/// Reads and loads a flow, printing its problems; `None` when it has errors.
pub(crate) fn load_flow(
    path: &std::path::Path,
) -> anyhow::Result<Option<crate::flow::model::Flow>> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    match crate::flow::compile::load_rendered(&path.display().to_string(), &source) {
        Ok((flow, warnings)) => {
            if let Some(warnings) = warnings {
                eprint!("{warnings}");
            }
            Ok(Some(flow))
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            Ok(None)
        }
    }
}

fn graph(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    match load_flow(path)? {
        Some(flow) => {
            print!("{}", crate::flow::graph::mermaid(&flow));
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::FAILURE),
    }
}
