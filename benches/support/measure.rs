//! What the benches read about processes and the machine (`/proc`), and
//! how they summarise latencies. Shared by the end-to-end, webhook and
//! reload benches.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

/// Fields of `/proc/<pid>/stat` after the command name (field 3 of stat(5)
/// is index 0); `pid` may be `self` or `<pid>/task/<tid>`.
pub fn stat_fields(pid: &str) -> Result<Vec<u64>, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name is in parentheses and may contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("{path}: unexpected format"))?;
    // The state letter becomes 0; only the numeric fields are read.
    Ok(after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect())
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let f = stat_fields(pid)?;
    match (f.get(11), f.get(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(format!("/proc/{pid}/stat: no utime/stime")),
    }
}

/// cutime + cstime of this process: the CPU of the children it waited for.
pub fn children_ticks() -> Result<u64, String> {
    let f = stat_fields("self")?;
    match (f.get(13), f.get(14)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err("/proc/self/stat: no cutime/cstime".to_owned()),
    }
}

/// Busy clock ticks of the whole machine (`/proc/stat`: user, nice, system,
/// irq, softirq, steal) and the number of CPUs.
pub fn machine_ticks() -> Option<(u64, usize)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let total = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = total
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum();
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some((busy, cpus.max(1)))
}

/// Clock ticks per second (`getconf CLK_TCK`), and whether it was asked
/// (`false`: 100 assumed).
pub fn clock_ticks() -> (f64, bool) {
    let asked = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0);
    match asked {
        Some(t) => (t, true),
        None => (100.0, false),
    }
}

/// `VmHWM` (peak resident set) and `VmRSS` (resident set now) of a
/// process, in kB.
pub fn rss_kb(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path}: no {name}"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// A set of latencies.
#[derive(Default, Clone)]
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `p`-quantile (0 < p ≤ 1, nearest rank); `None` when empty.
    pub fn at(&self, p: f64) -> Option<Duration> {
        let mut v = self.0.clone();
        v.sort();
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
        v.get(rank - 1).copied()
    }

    /// "p50 / p`middle` / p99 ms (max, n)", like "1.3 / 2.7 / 6.4 ms (max 9.0, n=3500)".
    pub fn summary(&self, middle: f64) -> String {
        let (Some(p50), Some(mid), Some(p99), Some(max)) =
            (self.at(0.50), self.at(middle), self.at(0.99), self.at(1.0))
        else {
            return "-".to_owned();
        };
        format!(
            "{} / {} / {} ms (max {}, n={})",
            ms(p50),
            ms(mid),
            ms(p99),
            ms(max),
            self.0.len()
        )
    }
}

/// Milliseconds, two decimals under 10 ms.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}
