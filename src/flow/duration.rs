//! Short durations as flow editors write them: `30m`, `2h`, `1d`.

/// `30m`, `2h`, `1d`, `45s` (also `30 мин`, `2 ч`, `1 д`).
pub fn parse(text: &str) -> Option<chrono::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let amount: i64 = text[..split].parse().ok()?;
    let seconds = match text[split..].trim() {
        "s" | "с" | "сек" => 1,
        "m" | "min" | "м" | "мин" => 60,
        "h" | "ч" => 3600,
        "d" | "д" | "дн" => 86_400,
        _ => return None,
    };
    chrono::Duration::try_seconds(amount.checked_mul(seconds)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units() {
        assert_eq!(parse("30m"), chrono::Duration::try_minutes(30));
        assert_eq!(parse("2h"), chrono::Duration::try_hours(2));
        assert_eq!(parse("1 д"), chrono::Duration::try_days(1));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("99999999999999999d"), None);
    }
}
