//! The bot under measurement as a child process: started with a clean
//! environment and its output in a log file, stopped with SIGTERM (a clean
//! exit is checked), killed if dropped while running. Shared by the
//! end-to-end and webhook benches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BotProcess {
    child: Child,
    pub pid: u32,
    log: PathBuf,
}

impl BotProcess {
    /// Starts `command` in `dir` with exactly `env`, its output going to
    /// `dir/log_name`.
    pub fn spawn(
        mut command: Command,
        env: &HashMap<String, String>,
        dir: &Path,
        log_name: &str,
    ) -> Result<BotProcess, String> {
        let log = dir.join(log_name);
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let stdout = stderr.try_clone().map_err(|e| e.to_string())?;
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .env_clear()
            .envs(env)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let pid = child.id();
        Ok(BotProcess { child, pid, log })
    }

    /// An error if the bot has exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the bot exited early ({status}); its log:\n{}",
                self.log_tail()
            )),
            Err(e) => Err(format!("cannot check the bot process: {e}")),
        }
    }

    /// SIGTERM, then waits (at most `timeout`) for a clean exit.
    pub async fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {} failed: {sent}", self.pid));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "the bot stopped with {status}; its log:\n{}",
                        self.log_tail()
                    ));
                }
                Ok(None) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the bot did not stop within {timeout:?} of SIGTERM"
                    ));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(format!("cannot wait for the bot: {e}")),
            }
        }
    }

    /// The last 40 lines of its output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        if tail.is_empty() {
            "(empty)".to_owned()
        } else {
            tail
        }
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
