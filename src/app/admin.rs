//! Admin commands (`/stats`, `/bonus`, `/reload`), accepted only in the
//! chats listed in `ADMIN_CHAT_IDS`: parsing and the texts of the answers.
//! Pure; the app runs them.

use crate::phone::Phone;
use crate::store::{BonusChange, Stats};

/// What an admin asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Stats,
    Bonus {
        phone: Phone,
        delta: i64,
        reason: String,
    },
    Reload,
    Help,
    /// A command we know, written wrong: the text says how to write it.
    Invalid(String),
}

pub const HELP: &str = "Команды администратора:\n\
/stats — клиенты, сообщения за сегодня, очередь отправки\n\
/bonus <телефон> <+N|-N> [причина] — начислить или списать бонусы, например: /bonus +79991234567 +500 отзыв\n\
/reload — перечитать сценарий сейчас";

const BONUS_USAGE: &str =
    "Формат: /bonus <телефон> <+N|-N> [причина], например: /bonus +79991234567 +500 отзыв";

/// Reads an admin's message (with `@botname` already removed); `None` for a plain text.
pub fn parse(text: &str) -> Option<Command> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    Some(match name.to_lowercase().as_str() {
        "stats" => Command::Stats,
        "reload" => Command::Reload,
        "bonus" => parse_bonus(args.trim()),
        _ => Command::Help,
    })
}

/// `<phone> <+N|-N> [reason]`; the phone may contain spaces (`+7 999 123-45-67`),
/// so the amount is the first word that starts with `+` or `-` after it.
fn parse_bonus(args: &str) -> Command {
    let words: Vec<&str> = args.split_whitespace().collect();
    let amount_at = words
        .iter()
        .enumerate()
        .skip(1)
        .find(|(i, w)| {
            (w.starts_with('+') || w.starts_with('-'))
                && w.len() > 1
                && w[1..].chars().all(|c| c.is_ascii_digit())
                && Phone::parse(&words[..*i].join(" ")).is_ok()
        })
        .map(|(i, _)| i);
    let Some(i) = amount_at else {
        return Command::Invalid(BONUS_USAGE.to_owned());
    };
    let Ok(phone) = Phone::parse(&words[..i].join(" ")) else {
        return Command::Invalid(BONUS_USAGE.to_owned());
    };
    let delta = match words[i].parse::<i64>() {
        Ok(d) if d != 0 && d.abs() <= 1_000_000 => d,
        _ => {
            return Command::Invalid(
                "Сумма должна быть от 1 до 1 000 000 со знаком, например +500 или -200".to_owned(),
            );
        }
    };
    let reason = words[i + 1..].join(" ");
    Command::Bonus {
        phone,
        delta,
        reason: if reason.is_empty() {
            "admin".to_owned()
        } else {
            reason
        },
    }
}

/// The `/stats` answer.
pub fn stats_text(s: &Stats, crm_pending: i64) -> String {
    format!(
        "📊 Статистика\n\
         Клиентов: {} (новых сегодня: {}, заблокировали бота: {})\n\
         Сообщений сегодня: от клиентов {}, от бота {}\n\
         Очередь отправки: {} (из них в CRM: {})\n\
         Не доставлено: отказ получателя {}, сдались после попыток {}",
        s.customers,
        s.registered_today,
        s.blocked,
        s.messages_in_today,
        s.messages_out_today,
        s.outbox_pending,
        crm_pending,
        s.outbox_failed,
        s.outbox_dead,
    )
}

/// The `/bonus` answer.
pub fn bonus_text(change: &BonusChange, phone: &Phone, delta: i64) -> String {
    match change {
        BonusChange::Done { customer, balance } => format!(
            "✅ {} {} бонусов: {} ({}). Баланс: {}",
            if delta > 0 {
                "Начислено"
            } else {
                "Списано"
            },
            delta.abs(),
            customer.full_name(),
            phone,
            balance
        ),
        BonusChange::NoSuchCustomer => format!("Клиента с номером {phone} нет в базе."),
        BonusChange::NotEnough { customer, balance } => format!(
            "Нельзя списать {}: у клиента {} ({}) только {} бонусов.",
            delta.abs(),
            customer.full_name(),
            phone,
            balance
        ),
    }
}

/// Midnight of the flow's local day, in UTC ("today" of `/stats`).
pub fn start_of_today(flow: &crate::flow::model::Flow) -> chrono::DateTime<chrono::Utc> {
    let tz = flow.business.timezone;
    let local = chrono::Utc::now().with_timezone(&tz).date_naive();
    local
        .and_hms_opt(0, 0, 0)
        .and_then(|m| m.and_local_timezone(tz).earliest())
        .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> Phone {
        Phone::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn commands() {
        assert_eq!(parse("/stats"), Some(Command::Stats));
        assert_eq!(parse("/reload"), Some(Command::Reload));
        assert_eq!(parse("/start"), Some(Command::Help));
        assert_eq!(parse("привет"), None);
    }

    #[test]
    fn bonus_with_a_phone_written_any_way() {
        assert_eq!(
            parse("/bonus +79991234567 +500 отзыв на сайте"),
            Some(Command::Bonus {
                phone: phone("+79991234567"),
                delta: 500,
                reason: "отзыв на сайте".into()
            })
        );
        assert_eq!(
            parse("/bonus 8 (999) 123-45-67 -200"),
            Some(Command::Bonus {
                phone: phone("+79991234567"),
                delta: -200,
                reason: "admin".into()
            })
        );
    }

    #[test]
    fn bonus_written_wrong_says_how() {
        for bad in [
            "/bonus",
            "/bonus +79991234567",
            "/bonus 123 +5",
            "/bonus +79991234567 500",
            "/bonus +79991234567 +0",
        ] {
            assert!(matches!(parse(bad), Some(Command::Invalid(_))), "{bad}");
        }
    }
}
