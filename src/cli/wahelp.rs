//! `flowbot wahelp …`: the CRM bridge's tools for the owner.
//!
//! - `inspect` prints the last webhook calls the bot logged (secret
//!   removed) with how each event was read: what was found, at which JSON
//!   path, what the bot decided, and which `WAHELP_PATH_*` variable to set
//!   when a field was not found.
//! - `register-webhook` tells Wahelp where to send its calls, asking before
//!   it replaces a different address.
//!
//! Also the reading of a call as the live bot stores it, shared with
//! `flowbot chat --serve`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Local;
use clap::Subcommand;
use reqwest::Url;
use serde_json::{Value, json};

use super::settings;

use crate::store::{LoggedCall, Store, WebhookCall};
use crate::wahelp::client::{Client, Hook};
use crate::wahelp::payload::{Direction, Event, Paths};
use crate::wahelp::secret::{self, mask_query_token};

pub(super) const PATH_DIRECTION: &str = "WAHELP_PATH_DIRECTION";
pub(super) const PATH_TEXT: &str = "WAHELP_PATH_TEXT";
pub(super) const PATH_PHONE: &str = "WAHELP_PATH_PHONE";
pub(super) const PATH_MESSAGE_ID: &str = "WAHELP_PATH_MESSAGE_ID";
pub(super) const PATH_MEDIA_URL: &str = "WAHELP_PATH_MEDIA_URL";

/// The calls shown when `--last` is not given.
pub(super) const DEFAULT_LAST: u64 = 5;
/// A message text longer than this many characters is shortened.
const TEXT_CHARS: usize = 200;
/// A body longer than this many bytes (pretty-printed) is cut.
const BODY_BYTES: usize = 4096;
/// The route the bot serves the webhook on.
const WEBHOOK_ROUTE: &str = "/wahelp/webhook";

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Show the last webhook calls from Wahelp and how the bot read each one.
    Inspect {
        /// How many calls, newest first.
        #[arg(long, default_value_t = DEFAULT_LAST, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        last: u64,
        /// The bot's database (default: DATABASE_PATH from the environment or .env, else flowbot.db).
        #[arg(long)]
        db: Option<PathBuf>,
        /// One JSON object per call, one per line, the body whole.
        #[arg(long)]
        json: bool,
    },
    /// Tell Wahelp to send its webhook calls to this URL (…/wahelp/webhook?token=WAHELP_WEBHOOK_SECRET).
    RegisterWebhook {
        /// The bot's public webhook address, like https://bot.example.com/wahelp/webhook?token=…
        #[arg(long)]
        url: String,
        /// Replace a different registered address without asking.
        #[arg(long)]
        yes: bool,
    },
}

pub(super) fn run(command: Command) -> anyhow::Result<ExitCode> {
    if let Err(e) = settings::load_env() {
        eprintln!("flowbot: {e}");
        return Ok(ExitCode::from(2));
    }
    match command {
        Command::Inspect { last, db, json } => {
            inspect(usize::try_from(last).unwrap_or(usize::MAX), db, json)
        }
        Command::RegisterWebhook { url, yes } => register_webhook(&url, yes),
    }
}

// ----- inspect ---------------------------------------------------------------

fn inspect(last: usize, db: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let (path, named_by) = match db {
        Some(path) => (path, "--db".to_owned()),
        None => (
            settings::database_path(),
            format!("{} или по умолчанию", settings::DATABASE_PATH),
        ),
    };
    if !path.exists() {
        eprintln!(
            "flowbot: базы {} нет (путь из {named_by}). Укажите базу бота: --db ПУТЬ или {} в окружении или .env, как для `flowbot run`.",
            path.display(),
            settings::DATABASE_PATH
        );
        return Ok(ExitCode::FAILURE);
    }
    let logged = match logged_calls(&path) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("flowbot: {}: {e}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let wahelp = settings::wahelp();
    if logged == 0 {
        let days = wahelp.as_ref().map_or(7, |c| c.webhook_log_days);
        eprintln!(
            "В базе {} вызовов вебхука пока нет.\n\
             Их записывает бот (`flowbot run` с {} или `flowbot chat --serve --db …`), когда Wahelp вызывает …{WEBHOOK_ROUTE}?token=…;\n\
             адрес регистрирует `flowbot wahelp register-webhook --url …`. Вызовы хранятся {days} дн. ({}).",
            path.display(),
            settings::WEBHOOK_SECRET,
            settings::WEBHOOK_LOG_DAYS
        );
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let calls = store.webhook_log(last)?;
    if json {
        for call in &calls {
            println!("{}", call_json(call));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let paths = match &wahelp {
        Ok(c) => c.paths.clone(),
        Err(e) => {
            eprintln!("flowbot: {e}\n(подсказки ниже — для путей по умолчанию)\n");
            Paths::default()
        }
    };
    println!(
        "{}: последние вызовы вебхука Wahelp — {} из {logged}, новые сверху.\n\
         Пути — от объекта data/payload вызова; «из …» — где найдено значение.\n",
        path.display(),
        calls.len()
    );
    for call in &calls {
        print!("{}", render_call(call, &paths));
    }
    if let Ok(c) = &wahelp {
        println!(
            "Вызовы хранятся {} дн. ({}).",
            c.webhook_log_days,
            settings::WEBHOOK_LOG_DAYS
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How many calls are logged, read without writing anything: 0 for a
/// database without the log table (older than the bridge).
fn logged_calls(path: &Path) -> Result<i64, String> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("не открывается как база SQLite: {e}"))?;
    let has_log: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_log')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("не читается как база SQLite: {e}"))?;
    if !has_log {
        return Ok(0);
    }
    conn.query_row("SELECT COUNT(*) FROM webhook_log", [], |r| r.get(0))
        .map_err(|e| format!("журнал вебхука не читается: {e}"))
}

fn call_json(call: &LoggedCall) -> Value {
    json!({
        "id": call.id,
        "received_at": call.received_at.to_rfc3339(),
        "outcome": call.outcome,
        "events": call.reading,
        "body": serde_json::from_str::<Value>(&call.body).unwrap_or_else(|_| Value::String(call.body.clone())),
    })
}

fn render_call(call: &LoggedCall, paths: &Paths) -> String {
    let mut out = format!(
        "── вызов {} · {} · {}\n",
        call.id,
        call.received_at
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S %:z"),
        call.outcome
    );
    let events = call.reading.as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        out.push_str("  событий нет (пустой список)\n");
    }
    for (i, event) in events.iter().enumerate() {
        out.push_str(&render_event(event, i + 1, events.len(), paths));
    }
    out.push_str("  тело вызова (токен убран):\n");
    for line in body_text(&call.body).lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

fn render_event(event: &Value, number: usize, of: usize, paths: &Paths) -> String {
    let text_of = |key: &str| event.get(key).and_then(scalar);
    let from = |key: &str| event.get("from").and_then(|f| f.get(key)).and_then(scalar);
    let decision = text_of("decision").unwrap_or_else(|| "?".to_owned());
    let mut out = format!(
        "  событие {number} из {of}: {}\n",
        text_of("event").unwrap_or_else(|| "(без имени)".to_owned())
    );
    let mut row = |label: &str, value: String| {
        out.push_str(&format!("    {label:<13} {value}\n"));
    };
    let explained = match text_of("problem") {
        Some(problem) => format!("{decision} — {} ({problem})", explain(&decision)),
        None => format!("{decision} — {}", explain(&decision)),
    };
    row("решение", explained);
    if let Some(fate) = text_of("fate") {
        row("итог", format!("{fate} — {}", explain_fate(&fate)));
    }
    let with_source = |value: Option<String>, source: Option<String>| match (value, source) {
        (Some(v), Some(s)) => format!("{v}   (из {s})"),
        (Some(v), None) => v,
        (None, _) => "—".to_owned(),
    };
    row(
        "направление",
        with_source(text_of("direction").map(quoted), from("direction")),
    );
    row("телефон", with_source(text_of("phone"), from("phone")));
    let text = text_of("text").map(|t| {
        let chars = t.chars().count();
        if chars > TEXT_CHARS {
            let cut: String = t.chars().take(TEXT_CHARS).collect();
            format!(
                "{}… (символов: {chars}, показано {TEXT_CHARS})",
                quoted(cut)
            )
        } else {
            format!("{} (символов: {chars})", quoted(t))
        }
    });
    row("текст", with_source(text, from("text")));
    row(
        "id сообщения",
        with_source(text_of("message_id"), from("message_id")),
    );
    row("файл", with_source(text_of("media"), from("media")));
    if let Some(status) = text_of("status") {
        row("статус", status);
    }
    for hint in hints(event, paths) {
        out.push_str(&format!("    → {hint}\n"));
    }
    out
}

/// A string or a number as text; anything else is no value.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A value in quotes, control characters escaped, so spaces and line
/// breaks show.
fn quoted(text: impl AsRef<str>) -> String {
    format!("{:?}", text.as_ref())
}

/// The body pretty-printed (or as stored, when it is not JSON), cut at
/// [`BODY_BYTES`].
fn body_text(body: &str) -> String {
    let pretty = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned());
    if pretty.len() <= BODY_BYTES {
        return pretty;
    }
    let mut end = BODY_BYTES;
    while !pretty.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n… обрезано: показано {end} байт из {}; целиком — `flowbot wahelp inspect --json`",
        &pretty[..end],
        pretty.len()
    )
}

/// What a decision means, for the owner.
pub(super) fn explain(decision: &str) -> &'static str {
    match decision {
        "forward" => "сообщение менеджера с телефоном клиента: передаётся этому клиенту",
        "no_phone" => {
            "сообщение менеджера, но телефон клиента не найден: не доставлено, администраторам сообщено"
        }
        "ignore_empty" => "сообщение менеджера без текста и файла: пропущено",
        "ignore_not_operator" => "написал не менеджер: пропущено",
        "ignore_not_message" => "нет направления: статус доставки или другое событие, пропущено",
        "unreadable" => "бот не понимает такое событие: пропущено",
        _ => "неизвестное решение",
    }
}

/// What became of a manager's message, for the owner.
pub(super) fn explain_fate(fate: &str) -> &'static str {
    match fate {
        "forwarded" => "передано клиенту",
        "echo" => "это наше же сообщение вернулось эхом: пропущено",
        "duplicate" => "сообщение с этим id уже приходило: пропущено",
        "unknown_phone" => "ни у одного клиента бота нет этого номера: не доставлено",
        _ => "неизвестный итог",
    }
}

/// Which variable to set when the reading says a field was not found.
pub(super) fn hints(event: &Value, paths: &Paths) -> Vec<String> {
    let decision = event.get("decision").and_then(Value::as_str).unwrap_or("");
    let found = |key: &str| event.get(key).and_then(scalar);
    let from = |key: &str| {
        event
            .get("from")
            .and_then(|f| f.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let now = |list: &[crate::wahelp::payload::FieldPath]| Paths::join(list);
    let mut hints = Vec::new();
    match decision {
        "no_phone" => match (found("phone"), from("phone")) {
            (Some(value), Some(at)) => hints.push(format!(
                "в {at} найдено {}, но это не номер телефона: задайте {PATH_PHONE} — путь, где лежит телефон клиента (сейчас ищется в: {})",
                quoted(value),
                now(&paths.phone)
            )),
            _ => hints.push(format!(
                "телефон не найден: задайте {PATH_PHONE} — путь, где лежит телефон клиента, например client.phone (сейчас ищется в: {})",
                now(&paths.phone)
            )),
        },
        "ignore_empty" => hints.push(format!(
            "ни текста, ни файла: если текст в теле есть, задайте {PATH_TEXT} (сейчас: {}); ссылку на файл — {PATH_MEDIA_URL} (сейчас: {})",
            now(&paths.text),
            now(&paths.media_url)
        )),
        "ignore_not_message" if from("direction").is_none() => hints.push(format!(
            "направление не найдено: если это сообщение менеджера, задайте {PATH_DIRECTION} — путь к полю со значением from_operator (сейчас: {})",
            now(&paths.direction)
        )),
        "ignore_not_operator" => {
            let raw = found("direction");
            if let Direction::Other(value) =
                Direction::classify_with(raw.as_deref(), &paths.operator_values)
            {
                hints.push(format!(
                    "направление {} боту неизвестно: ответы менеджеров пересылаются со значениями {} (WAHELP_OPERATOR_VALUES); если так Wahelp помечает ответы менеджеров, добавьте это значение туда; если направление лежит в другом поле — {PATH_DIRECTION} (сейчас: {})",
                    quoted(value),
                    paths.operator_values.join(", "),
                    now(&paths.direction)
                ));
            }
        }
        _ => {}
    }
    if matches!(decision, "forward" | "no_phone") && found("message_id").is_none() {
        hints.push(format!(
            "id сообщения не найден: повтор того же вызова дойдёт до клиента дважды, а эхо наших сообщений не распознать — задайте {PATH_MESSAGE_ID} (сейчас: {})",
            now(&paths.message_id)
        ));
    }
    hints
}

// ----- reading a call, as the live bot stores it ---------------------------

/// The call as the store keeps it, built as the live bot builds it, without
/// admin notices or a relay (the terminal has neither).
pub(super) fn webhook_call(events: &[Event], body: String) -> WebhookCall {
    crate::app::webhook::call(events, body, false, &[])
}

// ----- register-webhook ------------------------------------------------------

/// What is wrong with a webhook URL, or what to know about it.
#[derive(Debug, PartialEq, Eq)]
struct UrlCheck {
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Checks the URL Wahelp is to call: https (http only on this machine),
/// the bot's route, the token equal to the secret.
fn check_url(url: &str, secret: Option<&str>) -> UrlCheck {
    let mut check = UrlCheck {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let parsed = match Url::parse(url.trim()) {
        Ok(u) => u,
        Err(e) => {
            check.errors.push(format!(
                "это не URL ({e}): нужен адрес вида https://bot.example.com{WEBHOOK_ROUTE}?token=…"
            ));
            return check;
        }
    };
    let local = parsed.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match parsed.scheme() {
        "https" => {}
        "http" if local => check.warnings.push(
            "адрес на этой машине (http): Wahelp из интернета до него не достучится — годится только для проверки"
                .to_owned(),
        ),
        "http" => check.errors.push(
            "нужен https: по http секрет из адреса виден всем по дороге (http можно только для 127.0.0.1 и localhost)"
                .to_owned(),
        ),
        other => check
            .errors
            .push(format!("схема «{other}» не годится: нужен https")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        check.errors.push("в адресе нет хоста".to_owned());
    }
    let route = parsed.path().trim_end_matches('/');
    if !route.ends_with(WEBHOOK_ROUTE) {
        check.warnings.push(format!(
            "путь {} не оканчивается на {WEBHOOK_ROUTE}: бот принимает вызовы только там (если перед ботом нет прокси, который это переписывает)",
            parsed.path()
        ));
    }
    let token = parsed
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    match (secret, token) {
        (Some(secret), Some(token))
            if secret::constant_time_eq(secret.as_bytes(), token.as_bytes()) => {}
        (Some(_), Some(_)) => check.errors.push(format!(
            "token в адресе не совпадает с {}: бот отказал бы каждому вызову (401)",
            settings::WEBHOOK_SECRET
        )),
        (Some(_), None) => check.errors.push(format!(
            "в адресе нет ?token=…: допишите token={} (значение из .env), иначе бот отказывает каждому вызову (401)",
            settings::WEBHOOK_SECRET
        )),
        (None, token) => {
            check.warnings.push(format!(
                "{} не задан: пока его нет, бот отвечает на каждый вызов 503; задайте его (например, `openssl rand -hex 24`) и тот же токен в адресе",
                settings::WEBHOOK_SECRET
            ));
            if token.is_none() {
                check
                    .warnings
                    .push("в адресе нет ?token=…: любой, кто узнает адрес, сможет писать клиентам от имени менеджера".to_owned());
            }
        }
    }
    check
}

/// `text` with the URL's secret and any `token=` value hidden.
fn hide_secret(text: &str, url: &str) -> String {
    let mut text = text.to_owned();
    if let Ok(parsed) = Url::parse(url.trim()) {
        for (key, value) in parsed.query_pairs() {
            if key == "token" && !value.is_empty() {
                text = text.replace(value.as_ref(), "***");
            }
        }
    }
    mask_query_token(&text)
}

fn register_webhook(url: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let url = url.trim();
    let shown = hide_secret(url, url);
    let config = match settings::wahelp() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowbot: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(api) = config.api.clone() else {
        eprintln!(
            "flowbot: {} не задан: укажите проект Wahelp, канал и доступ (WAHELP_PROJECT_ID, WAHELP_CHANNEL_UUID, WAHELP_LOGIN и WAHELP_PASSWORD или WAHELP_TOKEN) в окружении или .env",
            settings::PROJECT_ID
        );
        return Ok(ExitCode::from(2));
    };
    let check = check_url(url, config.webhook_secret.as_deref());
    for warning in &check.warnings {
        eprintln!("внимание: {warning}");
    }
    if !check.errors.is_empty() {
        for error in &check.errors {
            eprintln!("flowbot: {shown}: {error}");
        }
        return Ok(ExitCode::from(2));
    }
    let project = api.project_id.clone();
    let client = match Client::new(api) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowbot: настройки Wahelp: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("flowbot: {what}: {}", hide_secret(&e.to_string(), url));
        Ok(ExitCode::FAILURE)
    };
    let current = match runtime.block_on(client.get_hook()) {
        Ok(hook) => hook,
        Err(e) => return fail("Wahelp не ответил, какой адрес сейчас зарегистрирован", &e),
    };
    match &current {
        Hook::Set(existing) if existing.trim() == url => {
            println!("Wahelp (проект {project}) уже вызывает {shown}: ничего не изменено.");
            return Ok(ExitCode::SUCCESS);
        }
        Hook::Set(existing) => {
            println!(
                "Сейчас Wahelp (проект {project}) вызывает другой адрес: {}",
                hide_secret(existing, existing)
            );
            if !yes && !confirm(&format!("Заменить его на {shown}?"))? {
                println!("Не заменено.");
                return Ok(ExitCode::FAILURE);
            }
        }
        Hook::NotSet => println!("Сейчас у проекта {project} вебхука нет."),
        Hook::Unknown => {
            println!("Wahelp не сообщает, какой адрес сейчас зарегистрирован: регистрирую новый.")
        }
    }
    if let Err(e) = runtime.block_on(client.set_hook(url)) {
        return fail("Wahelp не принял адрес", &e);
    }
    println!("Готово: Wahelp (проект {project}) будет вызывать {shown}");
    match runtime.block_on(client.get_hook()) {
        Ok(Hook::Set(now)) if now.trim() == url => {
            println!("Проверено: Wahelp показывает этот адрес.");
        }
        Ok(Hook::Set(now)) => println!(
            "внимание: Wahelp теперь показывает другой адрес: {}",
            hide_secret(&now, &now)
        ),
        Ok(Hook::NotSet) => println!("внимание: Wahelp показывает, что вебхука нет."),
        Ok(Hook::Unknown) | Err(_) => {}
    }
    println!(
        "Первый вызов покажет `flowbot wahelp inspect`: что прислал Wahelp и подошли ли пути."
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; without one, answers no and says how to agree.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("Спросить некого (ввод не с терминала): чтобы заменить, запустите с --yes.");
        return Ok(false);
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(agrees(&answer))
}

fn agrees(answer: &str) -> bool {
    matches!(
        answer.trim().to_lowercase().as_str(),
        "y" | "yes" | "д" | "да"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::webhook::reading;
    use crate::wahelp::payload::{self, Decision};

    const SECRET: &str = "0123456789abcdef0123";

    #[test]
    fn a_good_url_passes_and_the_secret_must_match() {
        let good = format!("https://bot.example.com/wahelp/webhook?token={SECRET}");
        assert_eq!(
            check_url(&good, Some(SECRET)),
            UrlCheck {
                errors: vec![],
                warnings: vec![]
            }
        );
        let wrong = check_url(
            "https://bot.example.com/wahelp/webhook?token=other-token-0000",
            Some(SECRET),
        );
        assert_eq!(wrong.errors.len(), 1, "{wrong:?}");
        let missing = check_url("https://bot.example.com/wahelp/webhook", Some(SECRET));
        assert_eq!(missing.errors.len(), 1, "{missing:?}");
        let no_secret = check_url("https://bot.example.com/wahelp/webhook", None);
        assert!(no_secret.errors.is_empty());
        assert_eq!(no_secret.warnings.len(), 2, "{no_secret:?}");
    }

    #[test]
    fn http_only_on_this_machine() {
        let url = |host: &str| format!("http://{host}/wahelp/webhook?token={SECRET}");
        for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
            let c = check_url(&url(host), Some(SECRET));
            assert!(c.errors.is_empty(), "{host}: {c:?}");
        }
        assert_eq!(
            check_url(&url("bot.example.com"), Some(SECRET))
                .errors
                .len(),
            1
        );
        assert!(!check_url("ftp://x/wahelp/webhook", None).errors.is_empty());
        assert!(!check_url("not a url", None).errors.is_empty());
        let other_route = check_url(
            &format!("https://b.example/hook?token={SECRET}"),
            Some(SECRET),
        );
        assert!(other_route.errors.is_empty());
        assert_eq!(other_route.warnings.len(), 1);
    }

    #[test]
    fn the_secret_is_hidden_everywhere() {
        let url = format!("https://bot.example.com/wahelp/webhook?token={SECRET}");
        let shown = hide_secret(&format!("refused {url} and {SECRET}"), &url);
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("token=***"), "{shown}");
    }

    #[test]
    fn answers() {
        for yes in ["y", "Y\n", " yes ", "да", "Д"] {
            assert!(agrees(yes), "{yes}");
        }
        for no in ["", "n", "нет", "yess", "\n"] {
            assert!(!agrees(no), "{no}");
        }
    }

    fn event_reading(body: Value) -> Value {
        let events = payload::read(&body, &Paths::default());
        reading(&events[0])
    }

    #[test]
    fn each_missing_field_names_its_variable() {
        let no_phone = event_reading(
            json!({"data": {"id": 1, "destination": "from_operator", "message": {"text": "x"}}}),
        );
        let hint = hints(&no_phone, &Paths::default()).join("\n");
        assert!(
            hint.contains(PATH_PHONE) && hint.contains("user.phone"),
            "{hint}"
        );

        let bad_phone = event_reading(
            json!({"data": {"id": 1, "destination": "from_operator", "user": {"phone": "abc"}, "message": {"text": "x"}}}),
        );
        let hint = hints(&bad_phone, &Paths::default()).join("\n");
        assert!(hint.contains("в user.phone найдено"), "{hint}");

        let empty = event_reading(
            json!({"data": {"id": 1, "destination": "from_operator", "user": {"phone": "79991234567"}}}),
        );
        let hint = hints(&empty, &Paths::default()).join("\n");
        assert!(
            hint.contains(PATH_TEXT) && hint.contains(PATH_MEDIA_URL),
            "{hint}"
        );

        let no_direction = event_reading(
            json!({"data": {"id": 1, "user": {"phone": "79991234567"}, "message": {"text": "x"}}}),
        );
        let hint = hints(&no_direction, &Paths::default()).join("\n");
        assert!(hint.contains(PATH_DIRECTION), "{hint}");

        let odd_direction = event_reading(
            json!({"data": {"id": 1, "destination": "outgoing", "user": {"phone": "79991234567"}, "message": {"text": "x"}}}),
        );
        let hint = hints(&odd_direction, &Paths::default()).join("\n");
        assert!(hint.contains("\"outgoing\""), "{hint}");

        let no_id = event_reading(
            json!({"data": {"destination": "from_operator", "user": {"phone": "79991234567"}, "message": {"text": "x"}}}),
        );
        let hint = hints(&no_id, &Paths::default()).join("\n");
        assert!(hint.contains(PATH_MESSAGE_ID), "{hint}");

        let fine = event_reading(
            json!({"data": {"id": 1, "destination": "from_operator", "user": {"phone": "79991234567"}, "message": {"text": "x"}}}),
        );
        assert!(hints(&fine, &Paths::default()).is_empty());
        let customer = event_reading(
            json!({"data": {"id": 1, "destination": "from_user", "user": {"phone": "79991234567"}, "message": {"text": "x"}}}),
        );
        assert!(hints(&customer, &Paths::default()).is_empty());
    }

    #[test]
    fn every_decision_is_explained() {
        for d in Decision::ALL {
            assert_ne!(explain(d.as_str()), explain("?"), "{d}");
        }
        for f in ["forwarded", "echo", "duplicate", "unknown_phone"] {
            assert_ne!(explain_fate(f), explain_fate("?"), "{f}");
        }
    }

    #[test]
    fn long_texts_and_bodies_are_cut() {
        let long = "я".repeat(500);
        let event = event_reading(
            json!({"data": {"id": 1, "destination": "from_operator", "user": {"phone": "79991234567"}, "message": {"text": long}}}),
        );
        let shown = render_event(&event, 1, 1, &Paths::default());
        assert!(shown.contains("символов: 500, показано 200"), "{shown}");
        assert!(!shown.contains(&"я".repeat(201)), "{shown}");
        let body = json!({"text": "ж".repeat(5000)}).to_string();
        let text = body_text(&body);
        assert!(text.len() < BODY_BYTES + 200, "{}", text.len());
        assert!(text.contains("обрезано"));
    }
}
