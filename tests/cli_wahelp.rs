//! The `flowbot` binary's Wahelp tools: `wahelp inspect` on a database with
//! and without logged calls, `wahelp register-webhook` against the fake
//! Wahelp server, and `chat --serve` end to end (a webhook call posted to
//! the running conversation shows the manager's reply in it).

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use flowbot::store::Store;
use flowbot::wahelp::payload::{self, Paths};
use serde_json::{Value, json};
use support::wahelp::{CHANNEL_UUID, Endpoint, FakeWahelp, HookGet, LOGIN, PASSWORD, PROJECT_ID};

/// Bound on anything that should be quick.
const PROMPT: Duration = Duration::from_secs(20);

const SECRET: &str = "test-secret-0123456789abcdef";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/wahelp").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The binary in `dir` with exactly `env` (nothing inherited, so no
/// `.env` or variable of the machine running the tests leaks in), `stdin`
/// piped in whole; killed if it runs longer than [`PROMPT`].
fn flowbot(dir: &Path, env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowbot"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("flowbot does not start: {e}"));
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let deadline = Instant::now() + PROMPT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output();
                panic!("flowbot {args:?} did not finish within {PROMPT:?}: {out:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot wait for flowbot: {e}"),
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("flowbot did not finish: {e}"))
}

// ----- inspect -------------------------------------------------------------

/// Logs the fixture as a received call, through the store's own API.
fn log_call(store: &mut Store, name: &str) {
    let body = fixture(name);
    let events = payload::read(&body, &Paths::default());
    // Built exactly as the live bot builds it (no admins, no relay).
    let call = flowbot::app::webhook::call(&events, body.to_string(), false, &[]);
    store
        .accept_webhook(call, Utc::now(), &|_| Vec::new())
        .unwrap_or_else(|e| panic!("cannot log {name}: {e}"));
}

fn database_with_calls(dir: &Path, names: &[&str]) -> PathBuf {
    let path = dir.join("bot.db");
    let mut store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
    for name in names {
        log_call(&mut store, name);
    }
    path
}

#[test]
fn inspect_prints_the_last_calls_newest_first_with_paths_decisions_and_hints() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = database_with_calls(
        dir.path(),
        &[
            "01-event-data-operator.json",
            "05-client-message-not-for-us.json",
            "08-operator-no-phone.json",
        ],
    );
    let db = db.display().to_string();
    let out = flowbot(dir.path(), &[], &["wahelp", "inspect", "--db", &db], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    for expected in [
        "3 из 3",
        "── вызов 3 ",
        "no_phone — ",
        "→ телефон не найден: задайте WAHELP_PATH_PHONE",
        "user.phone, user.uid2",
        "ignore_not_operator — ",
        "\"from_user\"   (из destination)",
        "forward — ",
        "итог          unknown_phone",
        "+7999***4567   (из user.phone)",
        "\"Здравствуйте! Да, завтра в 10:00 мастер сможет приехать.\" (символов: 56)   (из message.text)",
        "90000001   (из id)",
        "тело вызова (токен убран):",
        "\"destination\": \"from_operator\",",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle} in:\n{stdout}"))
    };
    assert!(at("── вызов 3 ") < at("── вызов 2 ") && at("── вызов 2 ") < at("── вызов 1 "));

    let last = flowbot(
        dir.path(),
        &[],
        &["wahelp", "inspect", "--db", &db, "--last", "1"],
        "",
    );
    let stdout = text(&last.stdout);
    assert!(
        stdout.contains("── вызов 3 ") && !stdout.contains("── вызов 2 "),
        "{stdout}"
    );

    let json = flowbot(
        dir.path(),
        &[],
        &["wahelp", "inspect", "--db", &db, "--json", "--last", "2"],
        "",
    );
    let calls: Vec<Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["id"], 3);
    assert_eq!(calls[0]["events"][0]["decision"], "no_phone");
    assert_eq!(calls[1]["events"][0]["from"]["direction"], "destination");
    assert_eq!(calls[1]["body"]["data"]["destination"], "from_user");
}

#[test]
fn inspect_finds_the_database_from_dotenv_and_cuts_long_texts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    database_with_calls(dir.path(), &["12-long-text.json"]);
    std::fs::write(dir.path().join(".env"), "DATABASE_PATH=bot.db\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = flowbot(dir.path(), &[], &["wahelp", "inspect"], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("показано 200)"), "{stdout}");
    assert!(stdout.contains("… обрезано: показано"), "{stdout}");
}

#[test]
fn inspect_says_when_there_is_no_database_or_no_call_yet() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = flowbot(
        dir.path(),
        &[("DATABASE_PATH", "nowhere.db")],
        &["wahelp", "inspect"],
        "",
    );
    let err = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nowhere.db") && err.contains("DATABASE_PATH") && err.contains("--db"),
        "{err}"
    );
    assert!(
        !dir.path().join("nowhere.db").exists(),
        "inspect created the database"
    );

    let empty = database_with_calls(dir.path(), &[]);
    let out = flowbot(
        dir.path(),
        &[],
        &["wahelp", "inspect", "--db", &empty.display().to_string()],
        "",
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("вызовов вебхука пока нет"), "{err}");
    assert!(text(&out.stdout).is_empty());
}

// ----- register-webhook ----------------------------------------------------

fn wahelp_env(fake: &FakeWahelp) -> HashMap<&'static str, String> {
    HashMap::from([
        ("WAHELP_API_URL", fake.url()),
        ("WAHELP_PROJECT_ID", PROJECT_ID.to_owned()),
        ("WAHELP_CHANNEL_UUID", CHANNEL_UUID.to_owned()),
        ("WAHELP_LOGIN", LOGIN.to_owned()),
        ("WAHELP_PASSWORD", PASSWORD.to_owned()),
        ("WAHELP_WEBHOOK_SECRET", SECRET.to_owned()),
        ("WAHELP_TIMEOUT_SECS", "5".to_owned()),
    ])
}

/// `flowbot wahelp register-webhook` on a blocking thread (the fake serves
/// on the test's runtime meanwhile).
async fn register(
    env: &HashMap<&'static str, String>,
    extra: &[&str],
    stdin: &str,
) -> (Option<i32>, String) {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut args = vec!["wahelp", "register-webhook"];
        args.extend(extra.iter().map(String::as_str));
        let out = flowbot(dir.path(), &env, &args, &stdin);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        (out.status.code(), all)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_webhook_sets_the_hook_and_never_shows_the_secret() {
    let fake = FakeWahelp::start().await;
    let env = wahelp_env(&fake);
    let url = format!("https://bot.example.com/wahelp/webhook?token={SECRET}");
    let (code, out) = register(&env, &["--url", &url], "").await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(fake.hook().as_deref(), Some(url.as_str()));
    assert!(out.contains("token=***") && out.contains("Готово"), "{out}");
    assert!(out.contains("Проверено"), "{out}");
    assert!(!out.contains(SECRET), "the secret leaked: {out}");

    let (code, out) = register(&env, &["--url", &url], "").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ничего не изменено"), "{out}");
    assert_eq!(fake.count(Endpoint::SetHook), 1, "set again: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_webhook_refuses_to_replace_a_different_hook_unless_told() {
    let fake = FakeWahelp::start().await;
    let env = wahelp_env(&fake);
    let old = format!("https://old.example.com/wahelp/webhook?token={SECRET}");
    let new = format!("https://bot.example.com/wahelp/webhook?token={SECRET}");
    let (code, out) = register(&env, &["--url", &old], "").await;
    assert_eq!(code, Some(0), "{out}");

    // No terminal to ask on: refused, even with a "y" piped in.
    let (code, out) = register(&env, &["--url", &new], "y\n").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("https://old.example.com/wahelp/webhook?token=***"),
        "the existing address is not shown: {out}"
    );
    assert!(out.contains("--yes"), "{out}");
    assert!(!out.contains(SECRET), "the secret leaked: {out}");
    assert_eq!(fake.hook().as_deref(), Some(old.as_str()));
    assert_eq!(fake.count(Endpoint::SetHook), 1);

    let (code, out) = register(&env, &["--url", &new, "--yes"], "").await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(fake.hook().as_deref(), Some(new.as_str()));
    assert!(!out.contains(SECRET), "the secret leaked: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_webhook_checks_the_url_and_the_configuration_first() {
    let fake = FakeWahelp::start().await;
    let env = wahelp_env(&fake);
    let cases = [
        "https://bot.example.com/wahelp/webhook?token=not-the-secret-000",
        "https://bot.example.com/wahelp/webhook",
        &format!("http://bot.example.com/wahelp/webhook?token={SECRET}"),
        "no url at all",
    ];
    for url in cases {
        let (code, out) = register(&env, &["--url", url], "").await;
        assert_eq!(code, Some(2), "{url}: {out}");
        assert!(!out.contains(SECRET), "the secret leaked: {out}");
    }
    assert_eq!(fake.count(Endpoint::SetHook), 0);

    let mut bare = env.clone();
    bare.remove("WAHELP_PROJECT_ID");
    let url = format!("https://bot.example.com/wahelp/webhook?token={SECRET}");
    let (code, out) = register(&bare, &["--url", &url], "").await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("WAHELP_PROJECT_ID"), "{out}");

    // A local address over http is fine (for trying); without a secret
    // only a warning; when the API cannot tell the current hook, it is set.
    fake.set_hook_get(HookGet::NotFound);
    let mut open = env.clone();
    open.remove("WAHELP_WEBHOOK_SECRET");
    let local = "http://127.0.0.1:8080/wahelp/webhook";
    let (code, out) = register(&open, &["--url", local], "").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("WAHELP_WEBHOOK_SECRET не задан"), "{out}");
    assert_eq!(fake.hook().as_deref(), Some(local));
}

// ----- chat --serve --------------------------------------------------------

/// A running `flowbot chat --serve`: its stdout and stderr read line by
/// line on their own threads; killed when dropped.
struct Served {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines,
    stderr: Lines,
}

struct Lines {
    name: &'static str,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Lines {
    fn read(name: &'static str, from: impl Read + Send + 'static) -> Lines {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            name,
            lines,
            seen: String::new(),
        }
    }

    /// Waits for a line containing `needle`, after the line the previous
    /// wait found; returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PROMPT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no `{needle}` on {} within {PROMPT:?}; it said:\n{}",
                    self.name, self.seen
                ),
            }
        }
    }
}

impl Served {
    fn start(dir: &Path, db: &Path) -> Served {
        let flow = root().join("flows/default.yaml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowbot"))
            .args(["chat", "--serve", "--listen", "127.0.0.1:0", "--flow"])
            .arg(&flow)
            .arg("--db")
            .arg(db)
            .current_dir(dir)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("flowbot does not start: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        Served {
            child,
            stdin,
            stdout: Lines::read("stdout", stdout),
            stderr: Lines::read("stderr", stderr),
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("stdin closed"));
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("cannot write to flowbot: {e}"));
        stdin.flush().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Closes stdin and waits (bounded) for a clean exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + PROMPT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "exit {status}; stderr:\n{}",
                        self.stderr.seen
                    );
                    return;
                }
                Ok(None) if Instant::now() >= deadline => {
                    panic!(
                        "flowbot chat --serve did not leave within {PROMPT:?} after end of input"
                    )
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// POSTs `body` to `url`; the HTTP status.
fn post(url: &str, body: &Value) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        reqwest::Client::new()
            .post(url)
            .json(body)
            .timeout(PROMPT)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
            .status()
            .as_u16()
    })
}

#[test]
fn chat_serve_brings_a_managers_reply_into_the_conversation() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("chat.db");
    let mut chat = Served::start(dir.path(), &db);
    let curl = chat.stderr.wait_for("curl -X POST '");
    let url = curl
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no URL in {curl}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/wahelp/webhook?token="),
        "{url}"
    );
    let sample = fixture("01-event-data-operator.json");

    chat.say("/start");
    chat.stdout.wait_for("бот: Здравствуйте, Анна!");

    // Before the customer gave a phone nobody has it: not delivered, and the
    // line says how to fix that.
    assert_eq!(post(&url, &sample), 200);
    chat.stdout
        .wait_for("не передано — unknown_phone: ни у одного клиента бота нет этого номера: не доставлено; сначала поделитесь номером: /contact +79991234567");

    chat.say("/contact +79991234567");
    chat.stdout.wait_for("· номер сохранён: +79991234567");
    assert_eq!(post(&url, &sample), 200);
    chat.stdout
        .wait_for("· Wahelp: ответ менеджера для +7999***4567 — forward, передано клиенту");
    chat.stdout
        .wait_for("бот: Здравствуйте! Да, завтра в 10:00 мастер сможет приехать.");

    // The same message again is a duplicate; a customer's own message is
    // not forwarded; both say why.
    assert_eq!(post(&url, &sample), 200);
    chat.stdout.wait_for("не передано — duplicate");
    assert_eq!(
        post(&url, &fixture("05-client-message-not-for-us.json")),
        200
    );
    chat.stdout.wait_for("не передано — ignore_not_operator");
    assert_eq!(post(&url, &fixture("08-operator-no-phone.json")), 200);
    chat.stdout
        .wait_for("→ телефон не найден: задайте WAHELP_PATH_PHONE");

    // The conversation goes on after the webhook.
    chat.say("Мои бонусы");
    chat.stdout.wait_for("300 бонусов");

    // A wrong token is refused before anything reaches the conversation.
    let (base, _) = url.split_once("?token=").unwrap_or_else(|| panic!("{url}"));
    assert_eq!(post(&format!("{base}?token=wrong"), &sample), 401);
    chat.finish();

    // Every call was logged in the conversation's database.
    let out = flowbot(
        dir.path(),
        &[],
        &[
            "wahelp",
            "inspect",
            "--db",
            &db.display().to_string(),
            "--json",
            "--last",
            "10",
        ],
        "",
    );
    let fates: Vec<Value> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|c| c["events"][0]["fate"].clone())
        .collect();
    assert_eq!(
        fates,
        [
            Value::Null,
            Value::Null,
            json!("duplicate"),
            json!("forwarded"),
            json!("unknown_phone")
        ],
        "{}",
        text(&out.stdout)
    );
}
