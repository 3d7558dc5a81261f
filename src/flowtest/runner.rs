//! Plays test conversations against the engine and collects failures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::check::check_step;
use super::spec::{CustomerSpec, Step, TestCase, TestFile};
use crate::engine::{Customer, Input, MediaKind, Session, step};
use crate::flow::compile;
use crate::flow::model::Flow;
use crate::flow::node::{NodeDe, Sink};

/// One failed expectation.
#[derive(Debug, Clone)]
pub struct Failure {
    pub test: String,
    /// 1-based step number and its line in the test file.
    pub step: usize,
    pub line: u32,
    pub step_text: String,
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// The outcome of one test file.
#[derive(Debug, Default)]
pub struct FileResult {
    pub file: PathBuf,
    pub passed: usize,
    pub failures: Vec<Failure>,
    /// The file (or its flow) could not be read: nothing ran.
    pub broken: Option<String>,
}

impl FileResult {
    pub fn failed_tests(&self) -> usize {
        let mut names: Vec<&str> = self.failures.iter().map(|f| f.test.as_str()).collect();
        names.dedup();
        names.len()
    }
}

/// Runs every `*.yaml` under the given files and folders.
pub fn run_paths(paths: &[PathBuf]) -> Vec<FileResult> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files);
    }
    files.sort();
    let mut flows = FlowCache::default();
    files.iter().map(|f| run_file(f, &mut flows)).collect()
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                collect(&entry.path(), out);
            }
        }
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        out.push(path.to_owned());
    }
}

/// Flows already loaded, by path, so many test files share one load.
#[derive(Default)]
pub struct FlowCache(HashMap<PathBuf, Result<Arc<Flow>, String>>);

impl FlowCache {
    fn get(&mut self, path: &Path) -> Result<Arc<Flow>, String> {
        self.0
            .entry(path.to_owned())
            .or_insert_with(|| {
                let source = std::fs::read_to_string(path)
                    .map_err(|e| format!("не читается сценарий {}: {e}", path.display()))?;
                compile::load(&source)
                    .map(|l| Arc::new(l.flow))
                    .map_err(|r| r.render(&path.display().to_string(), &source))
            })
            .clone()
    }
}

/// Runs one test file.
pub fn run_file(path: &Path, flows: &mut FlowCache) -> FileResult {
    let mut result = FileResult {
        file: path.to_owned(),
        ..FileResult::default()
    };
    let file = match read_test_file(path) {
        Ok(f) => f,
        Err(e) => {
            result.broken = Some(e);
            return result;
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let flow_path = dir.join(file.flow.as_deref().unwrap_or("../default.yaml"));
    let flow = match flows.get(&flow_path) {
        Ok(f) => f,
        Err(e) => {
            result.broken = Some(e);
            return result;
        }
    };
    let start = match start_time(&file, &flow) {
        Ok(t) => t,
        Err(e) => {
            result.broken = Some(e);
            return result;
        }
    };
    let customer = customer(file.customer.as_ref());
    for case in &file.tests {
        let failures = run_case(&flow, &case.value, &customer, start);
        if failures.is_empty() {
            result.passed += 1;
        }
        result.failures.extend(failures);
    }
    result
}

fn read_test_file(path: &Path) -> Result<TestFile, String> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| format!("{name}: не читается: {e}"))?;
    let root = compile::parse_yaml(&source).map_err(|r| r.render(&name, &source))?;
    let sink = Sink::default();
    let file = TestFile::deserialize(NodeDe::new(&root, &sink));
    match file {
        Ok(f) => Ok(f),
        Err(e) => Err(format!(
            "{name}:{}:{}: {}",
            e.pos.line, e.pos.column, e.message
        )),
    }
}

fn customer(spec: Option<&CustomerSpec>) -> Customer {
    match spec {
        Some(c) => Customer {
            telegram_id: c.id,
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            username: c.username.clone(),
        },
        None => Customer {
            telegram_id: 5_213_874_096,
            first_name: "Анна".to_owned(),
            last_name: Some("Смирнова".to_owned()),
            username: Some("anna_smirnova".to_owned()),
        },
    }
}

fn start_time(file: &TestFile, flow: &Flow) -> Result<DateTime<Utc>, String> {
    local_time(
        file.start_time.as_deref().unwrap_or("2026-11-23T12:00"),
        flow,
    )
}

/// `2026-11-23T21:00` in the flow's time zone.
pub fn local_time(text: &str, flow: &Flow) -> Result<DateTime<Utc>, String> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .map_err(|_| format!("не понимаю время «{text}»: пишите как 2026-11-23T21:00"))?;
    flow.business
        .timezone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("времени «{text}» нет в часовом поясе сценария"))
}

fn run_case(
    flow: &Flow,
    case: &TestCase,
    customer: &Customer,
    start: DateTime<Utc>,
) -> Vec<Failure> {
    let mut session = Session::new(customer.clone(), &flow.start_state().name);
    let mut now = start;
    let mut failures = Vec::new();
    for (index, located) in case.steps.iter().enumerate() {
        let fail = |what: &str, expected: String, actual: String| Failure {
            test: case.name.clone(),
            step: index + 1,
            line: located.pos.line,
            step_text: describe_step(&located.value),
            what: what.to_owned(),
            expected,
            actual,
        };
        let input = match step_input(&located.value, flow, customer.telegram_id, &mut now) {
            Ok(input) => input,
            Err(e) => {
                failures.push(fail("шаг", "понятный шаг".to_owned(), e));
                break;
            }
        };
        let effects = match input {
            Some(input) => {
                let outcome = step(flow, &session, &input, now);
                session = outcome.session;
                outcome.effects
            }
            None => Vec::new(),
        };
        if let Some(expect) = &located.value.expect {
            for (what, expected, actual) in check_step(expect, &effects, &session, now) {
                failures.push(fail(what, expected, actual));
            }
        }
        now += chrono::Duration::seconds(1);
    }
    failures
}

/// The engine input of a step; time steps move the clock and give none.
fn step_input(
    s: &Step,
    flow: &Flow,
    own: i64,
    now: &mut DateTime<Utc>,
) -> Result<Option<Input>, String> {
    let inputs = [
        s.customer.as_ref().map(|t| Input::text(t.clone())),
        s.contact.as_ref().map(|p| Input::Contact {
            phone: p.clone(),
            user_id: Some(own),
        }),
        s.contact_other.as_ref().map(|p| Input::Contact {
            phone: p.clone(),
            user_id: Some(OTHER),
        }),
        s.contact_no_id.as_ref().map(|p| Input::Contact {
            phone: p.clone(),
            user_id: None,
        }),
        s.manager.as_ref().map(Input::manager),
        s.blocked
            .map(|b| if b { Input::Blocked } else { Input::Unblocked }),
    ];
    let media = s
        .media
        .as_ref()
        .map(|m| media_input(m, s.caption.clone()))
        .transpose()?;
    let clock = [s.time.is_some(), s.wait.is_some()];
    let given = inputs.iter().filter(|i| i.is_some()).count()
        + usize::from(media.is_some())
        + clock.iter().filter(|c| **c).count();
    if given != 1 {
        return Err("в шаге должно быть ровно одно из: customer, contact, contact_other, contact_no_id, media, manager, blocked, time, wait".to_owned());
    }
    if let Some(t) = &s.time {
        *now = local_time(t, flow)?;
        return Ok(None);
    }
    if let Some(w) = &s.wait {
        *now += crate::flow::duration::parse(w)
            .ok_or_else(|| format!("не понимаю срок «{w}»: пишите 30m, 2h или 1d"))?;
        return Ok(None);
    }
    Ok(inputs.into_iter().flatten().next().or(media))
}

/// The Telegram id of the stranger whose contact `contact_other` shares.
const OTHER: i64 = 6_029_384_751;

fn media_input(kind: &str, caption: Option<String>) -> Result<Input, String> {
    let media = MediaKind::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(kind))
        .map_err(|_| format!("неизвестный вид файла «{kind}»: photo, video, document, voice, audio, sticker, animation, video_note, location"))?;
    Ok(Input::Media { media, caption })
}

fn describe_step(s: &Step) -> String {
    let pairs = [
        ("customer", s.customer.clone()),
        ("contact", s.contact.clone()),
        ("contact_other", s.contact_other.clone()),
        ("contact_no_id", s.contact_no_id.clone()),
        ("media", s.media.clone()),
        ("manager", s.manager.clone()),
        ("blocked", s.blocked.map(|b| b.to_string())),
        ("time", s.time.clone()),
        ("wait", s.wait.clone()),
    ];
    pairs
        .into_iter()
        .find_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .unwrap_or_default()
}
