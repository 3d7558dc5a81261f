//! Operations beside the running bot: `flowbot backup` (an online copy of
//! the database) and `flowbot stats` (what `/stats` shows in the admins'
//! chat).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::settings;
use crate::app::admin;
use crate::outbox::Destination;
use crate::store::{Store, backup};

/// `flowbot backup PATH [--db DB]`.
pub(super) fn backup(target: &Path, db: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    settings::load_env()?;
    let source = db.unwrap_or_else(settings::database_path);
    match backup::backup(&source, target) {
        Ok(report) => {
            println!(
                "Копия {} → {}: {} страниц, {} байт, проверка целостности пройдена.",
                source.display(),
                target.display(),
                report.pages,
                report.bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("flowbot backup: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `flowbot stats [--db DB] [--flow FLOW]`: "today" is the flow's local day.
pub(super) fn stats(db: Option<PathBuf>, flow: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    settings::load_env()?;
    let flow = flow
        .or_else(|| settings::raw(settings::FLOW_PATH).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_FLOW));
    let path = db.unwrap_or_else(settings::database_path);
    if !path.is_file() {
        eprintln!("flowbot stats: there is no database at {}", path.display());
        return Ok(ExitCode::FAILURE);
    }
    let Some(flow) = super::load_flow(&flow)? else {
        return Ok(ExitCode::FAILURE);
    };
    let store = Store::open(&path)?;
    let stats = store.stats(admin::start_of_today(&flow))?;
    let crm = store.outbox_depth(Destination::Crm)?;
    println!("{}", admin::stats_text(&stats, crm));
    Ok(ExitCode::SUCCESS)
}
