//! Delivery receipts: an append-only file where the worker notes each row
//! the moment its delivery succeeds, before the database hears of it.
//!
//! Marking a row delivered in SQLite waits for the database thread (a batch
//! and its fsync may be in progress): milliseconds during which a crash
//! would make us send the message again. One `write` to this file takes
//! microseconds and survives a killed process (the kernel holds it), so a
//! restart first marks every row noted here delivered, then delivers the
//! rest. The file is cut back to empty whenever every row noted in it is
//! also marked in the database. Losing the file (a power cut before the
//! kernel wrote it) only brings back the duplicate it was there to avoid.
//!
//! A line is `<row id>` or `<row id>\t<remote message id>` (the CRM's id of
//! a message we sent, needed to recognise its echo). A line without its
//! newline was cut by a crash and is ignored.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file is cut back only when it is at least this long (and fully confirmed).
const CUT_AT: u64 = 64 * 1024;

/// One successful delivery noted in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub row_id: i64,
    pub remote_id: Option<String>,
}

/// The open receipts file, shared by the delivery workers.
#[derive(Debug)]
pub struct Receipts {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    len: u64,
    /// Receipts written but not yet marked in the database.
    unconfirmed: usize,
}

impl Receipts {
    /// Opens (creating) the file and returns the receipts a previous run
    /// left, which the caller must mark in the database before delivering
    /// anything, then call [`Receipts::clear`].
    pub fn open(path: &Path) -> io::Result<(Receipts, Vec<Receipt>)> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let left = parse(&text);
        let receipts = Receipts {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                len: text.len() as u64,
                file,
                unconfirmed: 0,
            }),
        };
        Ok((receipts, left))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes a successful delivery (one `write`, no fsync).
    pub fn record(&self, receipt: &Receipt) -> io::Result<()> {
        let line = match &receipt.remote_id {
            Some(remote) => format!("{}\t{}\n", receipt.row_id, clean(remote)),
            None => format!("{}\n", receipt.row_id),
        };
        let mut inner = self.lock();
        inner.file.write_all(line.as_bytes())?;
        inner.len += line.len() as u64;
        inner.unconfirmed += 1;
        Ok(())
    }

    /// The database now holds a receipt written earlier (call once per
    /// successful [`Receipts::record`], after the database commit; never
    /// when the commit failed, so that the receipt stays).
    pub fn confirmed(&self) {
        let mut inner = self.lock();
        inner.unconfirmed = inner.unconfirmed.saturating_sub(1);
        if inner.unconfirmed == 0 && inner.len >= CUT_AT {
            match inner.file.set_len(0) {
                Ok(()) => inner.len = 0,
                Err(e) => tracing::warn!(error = %e, "cannot cut the delivery receipts file back"),
            }
        }
    }

    /// Empties the file: everything in it is in the database.
    pub fn clear(&self) -> io::Result<()> {
        let mut inner = self.lock();
        inner.file.set_len(0)?;
        inner.file.sync_all()?;
        inner.len = 0;
        inner.unconfirmed = 0;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the file half-updated
        // in a way that matters (a cut line is ignored), so go on.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Remote ids are kept on one line.
fn clean(remote: &str) -> String {
    remote
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// Every complete, well-formed line.
fn parse(text: &str) -> Vec<Receipt> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => return Vec::new(),
    };
    complete
        .lines()
        .filter_map(|line| {
            let (id, remote) = match line.split_once('\t') {
                Some((id, remote)) => (id, Some(remote.to_owned())),
                None => (line, None),
            };
            let row_id = id.trim().parse().ok()?;
            Some(Receipt {
                row_id,
                remote_id: remote.filter(|r| !r.is_empty()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(row_id: i64, remote: Option<&str>) -> Receipt {
        Receipt {
            row_id,
            remote_id: remote.map(str::to_owned),
        }
    }

    #[test]
    fn receipts_left_by_a_previous_run_are_read_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("r");
        {
            let (r, left) = Receipts::open(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(left.is_empty());
            r.record(&receipt(7, None))
                .unwrap_or_else(|e| panic!("{e}"));
            r.record(&receipt(9, Some("m-42\tx")))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let (r, left) = Receipts::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(left, [receipt(7, None), receipt(9, Some("m-42x"))]);
        r.clear().unwrap_or_else(|e| panic!("{e}"));
        let (_, left) = Receipts::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(left.is_empty());
    }

    #[test]
    fn a_line_cut_by_a_crash_is_ignored() {
        assert_eq!(
            parse("1\n2\t77\n3"),
            [receipt(1, None), receipt(2, Some("77"))]
        );
        assert_eq!(parse("12"), []);
        assert_eq!(parse("x\n\n5\t\n"), [receipt(5, None)]);
    }

    #[test]
    fn the_file_is_cut_back_only_when_everything_in_it_is_confirmed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("r");
        let (r, _) = Receipts::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut id = 1_000_000_000;
        while size() < CUT_AT {
            r.record(&receipt(id, None))
                .unwrap_or_else(|e| panic!("{e}"));
            id += 1;
        }
        let written = id - 1_000_000_000;
        for _ in 1..written {
            r.confirmed();
        }
        assert!(size() >= CUT_AT, "one receipt is still unconfirmed");
        r.confirmed();
        assert_eq!(size(), 0);
        r.record(&receipt(1, None))
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, left) = Receipts::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(left, [receipt(1, None)]);
    }
}
