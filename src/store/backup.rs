//! An online, consistent copy of the database while the bot runs, through
//! SQLite's backup API: the copy is written beside the target under a
//! temporary name, checked with `PRAGMA integrity_check`, and only then
//! renamed into place, so a failed backup never leaves a half file under
//! the name asked for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Result, StoreError};

/// What a finished backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    pub pages: i64,
    pub bytes: u64,
}

/// Copies the database at `source` to `target` (which must not exist).
pub fn backup(source: &Path, target: &Path) -> Result<BackupReport> {
    if !source.is_file() {
        return Err(StoreError::Backup(format!(
            "there is no database at {}",
            source.display()
        )));
    }
    if target.exists() {
        return Err(StoreError::Backup(format!(
            "{} exists already; give a new file name",
            target.display()
        )));
    }
    let partial = partial_name(target);
    let _ = std::fs::remove_file(&partial);
    let result = copy(source, &partial);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
        return result;
    }
    std::fs::rename(&partial, target)
        .map_err(|e| StoreError::Backup(format!("cannot rename the copy: {e}")))?;
    result
}

fn copy(source: &Path, partial: &Path) -> Result<BackupReport> {
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(10))?;
    let mut dst = Connection::open(partial)?;
    {
        // All pages in one step, under one read transaction: in WAL mode
        // the bot keeps writing meanwhile, and the copy is the database as
        // of that moment. (Copying in small steps would start over at every
        // write of the bot, and a busy bot would never let it finish.)
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                _ if std::time::Instant::now() >= deadline => {
                    return Err(StoreError::Backup(
                        "the database stayed busy for a minute; try again".into(),
                    ));
                }
                // More, Busy or Locked: try again shortly.
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    let check: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Backup(format!(
            "the copy failed its integrity check: {check}"
        )));
    }
    let pages: i64 = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    // Out of WAL mode: the copy is one self-contained file.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    drop(dst);
    let file = std::fs::File::open(partial)
        .map_err(|e| StoreError::Backup(format!("cannot reopen the copy: {e}")))?;
    file.sync_all()
        .map_err(|e| StoreError::Backup(format!("cannot flush the copy: {e}")))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport { pages, bytes })
}

fn partial_name(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_copy_opens_and_a_second_one_never_overwrites_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("bot.db");
        drop(Store::open(&db).unwrap_or_else(|e| panic!("{e}")));
        let copy = dir.path().join("copy.db");
        let report = backup(&db, &copy).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.pages > 0 && report.bytes > 0);
        let opened = Store::open(&copy).unwrap_or_else(|e| panic!("{e}"));
        drop(opened);
        assert!(matches!(backup(&db, &copy), Err(StoreError::Backup(_))));
        let missing = dir.path().join("none.db");
        assert!(matches!(
            backup(&missing, &dir.path().join("c2.db")),
            Err(StoreError::Backup(_))
        ));
        assert!(!partial_name(&copy).exists());
    }
}
