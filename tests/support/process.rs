//! The real `flowbot` binary as a child process, for crash tests.
//!
//! [`BotProcess::start`] runs `flowbot run` with exactly the environment it
//! was given (plus `PATH`, and `RUST_LOG=warn` unless given), in a working
//! directory of the test's choosing (the binary reads `.env` from there),
//! with stdout and stderr appended to one log file. [`BotProcess::kill`]
//! sends SIGKILL (`Child::kill` on Unix) and reaps the child;
//! [`BotProcess::terminate`] sends SIGTERM (through `kill -TERM`) and waits
//! for a clean exit.
//!
//! Dropping a `BotProcess` kills its child; when the drop happens while the
//! thread panics (a failed check, a timeout), the tail of the log is printed
//! first, so every failure shows what the bot said.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_flowbot");

/// Lines of the log shown on failure.
pub const TAIL_LINES: usize = 60;

/// One bot that can be started, killed and started again on the same
/// database and log.
pub struct BotProcess {
    name: String,
    env: HashMap<String, String>,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
    kills: usize,
    created: Instant,
}

impl BotProcess {
    /// A bot named `name` (for messages) that runs in `dir` and logs to
    /// `dir/<name>.log`. Nothing is started yet.
    pub fn new(name: &str, env: HashMap<String, String>, dir: &Path) -> BotProcess {
        BotProcess {
            name: name.to_owned(),
            env,
            dir: dir.to_owned(),
            log: dir.join(format!("{name}.log")),
            child: None,
            starts: 0,
            kills: 0,
            created: Instant::now(),
        }
    }

    /// Starts the binary (killing a previous child first, if any).
    pub fn start(&mut self) -> Result<(), String> {
        self.kill()?;
        self.starts += 1;
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: cannot open {}: {e}", self.name, self.log.display()))?;
        writeln!(
            out,
            "----- {} start #{} at +{:.3}s -----",
            self.name,
            self.starts,
            self.created.elapsed().as_secs_f64()
        )
        .map_err(|e| format!("{}: cannot write the log: {e}", self.name))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: cannot share the log: {e}", self.name))?;
        let mut command = Command::new(BIN);
        command
            .arg("run")
            .current_dir(&self.dir)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if !self.env.contains_key("PATH")
            && let Some(path) = std::env::var_os("PATH")
        {
            command.env("PATH", path);
        }
        if !self.env.contains_key("RUST_LOG") {
            command.env("RUST_LOG", "warn");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("{}: cannot start {BIN}: {e}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILLs the running child and waits for it; `Ok(false)` if none was
    /// running (never started, or already exited).
    pub fn kill(&mut self) -> Result<bool, String> {
        let Some(mut child) = self.child.take() else {
            return Ok(false);
        };
        let was_running = matches!(child.try_wait(), Ok(None));
        if was_running {
            child
                .kill()
                .map_err(|e| format!("{}: cannot kill pid {}: {e}", self.name, child.id()))?;
            self.kills += 1;
        }
        child
            .wait()
            .map_err(|e| format!("{}: cannot reap pid {}: {e}", self.name, child.id()))?;
        Ok(was_running)
    }

    /// SIGTERMs the running child and waits (at most `timeout`) for it to
    /// exit; `Err` (with the log's tail) if it does not, or not with success.
    pub async fn terminate(&mut self, timeout: std::time::Duration) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Err(format!("{}: not running", self.name));
        };
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .map_err(|e| format!("{}: cannot run kill: {e}", self.name))?;
        if !sent.success() {
            self.child = Some(child);
            return Err(format!("{}: kill -TERM failed: {sent}", self.name));
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    self.child = Some(child);
                    return Err(format!(
                        "{}: did not stop within {timeout:?} of SIGTERM; last lines of {}:\n{}",
                        self.name,
                        self.log.display(),
                        self.log_tail(TAIL_LINES)
                    ));
                }
                Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(e) => return Err(format!("{}: cannot wait for the child: {e}", self.name)),
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}: stopped with {status}; last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(TAIL_LINES)
            ))
        }
    }

    /// Waits (at most `timeout`) for the child to exit on its own and
    /// returns its exit status.
    pub async fn wait_exit(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(format!("{}: not running", self.name));
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Ok(status);
                }
                Ok(None) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{}: still running after {timeout:?}; last lines of {}:\n{}",
                        self.name,
                        self.log.display(),
                        self.log_tail(TAIL_LINES)
                    ));
                }
                Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(e) => return Err(format!("{}: cannot wait for the child: {e}", self.name)),
            }
        }
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `Err` (with the log's tail) if the child was started and has exited
    /// on its own.
    pub fn check_running(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{}: not started", self.name));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                Err(format!(
                    "{}: the bot exited on its own ({status}); last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(TAIL_LINES)
                ))
            }
            Err(e) => Err(format!("{}: cannot check the child: {e}", self.name)),
        }
    }

    /// The running child's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How many times the binary was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// How many running children were killed.
    pub fn kills(&self) -> usize {
        self.kills
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        match std::fs::read(&self.log) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("(cannot read {}: {e})", self.log.display()),
        }
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- last {TAIL_LINES} lines of {} ({} starts, {} kills) -----\n{}\n-----",
                self.log.display(),
                self.starts,
                self.kills,
                self.log_tail(TAIL_LINES)
            );
        }
    }
}
