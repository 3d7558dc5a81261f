//! Opening hours: a weekly schedule in a time zone, whether the business is
//! open at a moment, when it next opens or closes, and how to say so.
//!
//! Pure: the current time is always an argument.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

/// Minutes since midnight; `24 * 60` is the end of the day.
type Minute = u32;
const DAY_END: Minute = 24 * 60;

/// One day's hours: intervals `[open, close)`, sorted, not overlapping; empty = closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayHours {
    intervals: Vec<(Minute, Minute)>,
}

/// Seven days, Monday first. The default is closed every day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeeklySchedule {
    days: [DayHours; 7],
}

/// A problem in the hours, for the flow's editor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error(
        "не понимаю часы «{0}»: пишите так: «09:00-18:00», «10:00-14:00, 15:00-19:00», «выходной» или «круглосуточно»"
    )]
    BadHours(String),
    #[error(
        "интервал «{0}» заканчивается не позже, чем начинается: работу через полночь разбейте на два дня"
    )]
    Backwards(String),
    #[error("интервалы «{0}» пересекаются")]
    Overlap(String),
    #[error(
        "день «{0}» не известен: пишите mon, tue, wed, thu, fri, sat, sun (или пн, вт, ср, чт, пт, сб, вс), можно диапазон: mon-fri"
    )]
    BadDay(String),
    #[error("день «{0}» указан дважды")]
    Twice(String),
}

/// What the schedule says about a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenStatus {
    /// Open now; closes at this local time.
    OpenUntil(DateTime<Tz>),
    /// Closed now; opens at this local time.
    ClosedUntil(DateTime<Tz>),
    /// Open around the clock, every day.
    AlwaysOpen,
    /// No open hours at all.
    NeverOpen,
}

/// Words for talking about hours; the flow may override each of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DayWords {
    /// «сегодня»
    pub today: String,
    /// «завтра»
    pub tomorrow: String,
    /// «в понедельник», «во вторник», … — с понедельника по воскресенье.
    pub on_weekday: [String; 7],
    /// Короткие названия дней для расписания: «Пн», «Вт», … «Вс».
    pub short: [String; 7],
    /// Как назвать выходной день в расписании: «выходной».
    pub closed: String,
    /// Предлог перед временем: «в» (как в «завтра в 09:00»).
    pub at: String,
}

impl Default for DayWords {
    fn default() -> Self {
        let owned = |words: [&str; 7]| words.map(str::to_owned);
        DayWords {
            today: "сегодня".to_owned(),
            tomorrow: "завтра".to_owned(),
            on_weekday: owned([
                "в понедельник",
                "во вторник",
                "в среду",
                "в четверг",
                "в пятницу",
                "в субботу",
                "в воскресенье",
            ]),
            short: owned(["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"]),
            closed: "выходной".to_owned(),
            at: "в".to_owned(),
        }
    }
}

fn parse_minute(text: &str) -> Option<Minute> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    let valid = m < 60 && (h < 24 || (h == 24 && m == 0)) && text.trim().len() <= 5;
    valid.then_some(h * 60 + m)
}

/// `"09:00-20:00"`, `"10:00-14:00, 15:00-19:00"`, `"выходной"`, `"круглосуточно"`.
pub fn parse_day_hours(text: &str) -> Result<DayHours, HoursError> {
    let lower = text.trim().to_lowercase();
    match lower.as_str() {
        "closed" | "выходной" | "закрыто" | "нет" => {
            return Ok(DayHours::default());
        }
        "24h" | "круглосуточно" => {
            return Ok(DayHours {
                intervals: vec![(0, DAY_END)],
            });
        }
        _ => {}
    }
    let mut intervals = Vec::new();
    for part in lower.split(',') {
        let (open, close) = part
            .split_once(['-', '–', '—'])
            .ok_or_else(|| HoursError::BadHours(text.to_owned()))?;
        let (Some(open), Some(close)) = (parse_minute(open), parse_minute(close)) else {
            return Err(HoursError::BadHours(text.to_owned()));
        };
        if close <= open {
            return Err(HoursError::Backwards(part.trim().to_owned()));
        }
        intervals.push((open, close));
    }
    intervals.sort_unstable();
    if intervals.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(HoursError::Overlap(text.to_owned()));
    }
    Ok(DayHours { intervals })
}

fn parse_day(name: &str) -> Option<usize> {
    const NAMES: [[&str; 2]; 7] = [
        ["mon", "пн"],
        ["tue", "вт"],
        ["wed", "ср"],
        ["thu", "чт"],
        ["fri", "пт"],
        ["sat", "сб"],
        ["sun", "вс"],
    ];
    let name = name.trim().to_lowercase();
    NAMES.iter().position(|pair| pair.contains(&name.as_str()))
}

/// `"mon"`, `"mon-fri"`, `"fri-mon"` (wraps round the week), `"пн-пт"`.
pub fn parse_days_key(key: &str) -> Result<Vec<Weekday>, HoursError> {
    let bad = || HoursError::BadDay(key.to_owned());
    let (from, to) = match key.split_once(['-', '–', '—']) {
        Some((a, b)) => (parse_day(a).ok_or_else(bad)?, parse_day(b).ok_or_else(bad)?),
        None => {
            let day = parse_day(key).ok_or_else(bad)?;
            (day, day)
        }
    };
    let count = (to + 7 - from) % 7 + 1;
    Ok((0..count).map(|i| weekday((from + i) % 7)).collect())
}

fn weekday(index: usize) -> Weekday {
    (0..index).fold(Weekday::Mon, |day, _| day.succ())
}

impl WeeklySchedule {
    /// Builds the week from `(days, hours)` pairs as written in the flow. A day
    /// not mentioned is closed. Every problem is returned with its pair's index.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<WeeklySchedule, Vec<(usize, HoursError)>> {
        let mut schedule = WeeklySchedule::default();
        let mut seen = [false; 7];
        let mut errors = Vec::new();
        for (index, (key, hours)) in pairs.into_iter().enumerate() {
            let parsed = parse_days_key(key).and_then(|days| Ok((days, parse_day_hours(hours)?)));
            let (days, hours) = match parsed {
                Ok(ok) => ok,
                Err(e) => {
                    errors.push((index, e));
                    continue;
                }
            };
            for day in days {
                let i = day.num_days_from_monday() as usize;
                if std::mem::replace(&mut seen[i], true) {
                    errors.push((index, HoursError::Twice(key.to_owned())));
                }
                schedule.days[i] = hours.clone();
            }
        }
        if errors.is_empty() {
            Ok(schedule)
        } else {
            Err(errors)
        }
    }

    pub fn is_always_closed(&self) -> bool {
        self.days.iter().all(|d| d.intervals.is_empty())
    }

    fn is_always_open(&self) -> bool {
        self.days.iter().all(|d| d.intervals == [(0, DAY_END)])
    }

    /// Open or closed at `now`, and until when.
    pub fn status(&self, now: DateTime<Utc>, tz: Tz) -> OpenStatus {
        if self.is_always_closed() {
            return OpenStatus::NeverOpen;
        }
        if self.is_always_open() {
            return OpenStatus::AlwaysOpen;
        }
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        let minute = local
            .time()
            .signed_duration_since(NaiveTime::MIN)
            .num_minutes();
        let minute = Minute::try_from(minute).unwrap_or(0);
        let hours = &self.days[local.weekday().num_days_from_monday() as usize];
        if let Some(&(_, close)) = hours
            .intervals
            .iter()
            .find(|(o, c)| *o <= minute && minute < *c)
        {
            let close_at = self.closing(today, close, tz);
            return OpenStatus::OpenUntil(close_at.filter(|t| *t > local).unwrap_or(local));
        }
        self.next_opening(today, minute, tz, local)
            .map_or(OpenStatus::NeverOpen, OpenStatus::ClosedUntil)
    }

    /// When an interval ending at `close` on `date` really closes, following
    /// midnight into the next day's `00:00-…` interval.
    fn closing(&self, mut date: NaiveDate, mut close: Minute, tz: Tz) -> Option<DateTime<Tz>> {
        for _ in 0..7 {
            if close < DAY_END {
                break;
            }
            let next = date.succ_opt()?;
            let next_hours = &self.days[next.weekday().num_days_from_monday() as usize];
            match next_hours.intervals.first() {
                Some(&(0, c)) => {
                    date = next;
                    close = c;
                }
                _ => break,
            }
        }
        at(date, close, tz)
    }

    /// The first opening after `minute` on `today`, looking a week ahead.
    fn next_opening(
        &self,
        today: NaiveDate,
        minute: Minute,
        tz: Tz,
        local: DateTime<Tz>,
    ) -> Option<DateTime<Tz>> {
        (0..8).find_map(|offset| {
            let date = today.checked_add_signed(Duration::days(offset))?;
            let hours = &self.days[date.weekday().num_days_from_monday() as usize];
            hours
                .intervals
                .iter()
                .filter(|(open, _)| offset > 0 || *open > minute)
                .find_map(|(open, _)| at(date, *open, tz).filter(|t| *t > local))
        })
    }

    /// The week as lines, equal neighbouring days grouped: «Пн–Пт: 09:00–20:00».
    pub fn render(&self, words: &DayWords) -> String {
        let mut lines = Vec::new();
        let mut start = 0;
        while start < 7 {
            let mut end = start;
            while end + 1 < 7 && self.days[end + 1] == self.days[start] {
                end += 1;
            }
            let days = if start == end {
                words.short[start].clone()
            } else {
                format!("{}–{}", words.short[start], words.short[end])
            };
            lines.push(format!("{days}: {}", self.days[start].render(words)));
            start = end + 1;
        }
        lines.join("\n")
    }
}

impl DayHours {
    fn render(&self, words: &DayWords) -> String {
        if self.intervals.is_empty() {
            return words.closed.clone();
        }
        self.intervals
            .iter()
            .map(|(o, c)| format!("{}–{}", clock(*o), clock(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn clock(minute: Minute) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The local moment `minute` after midnight of `date`; a time skipped by a
/// DST change moves forward to the first valid minute.
fn at(date: NaiveDate, minute: Minute, tz: Tz) -> Option<DateTime<Tz>> {
    let midnight = date.and_time(NaiveTime::MIN);
    (0..=120).find_map(|shift| {
        let naive = midnight + Duration::minutes(i64::from(minute) + shift);
        tz.from_local_datetime(&naive).earliest()
    })
}

/// «сегодня в 20:00», «завтра в 09:00», «в понедельник в 09:00».
pub fn describe_moment(moment: DateTime<Tz>, now: DateTime<Tz>, words: &DayWords) -> String {
    let days = (moment.date_naive() - now.date_naive()).num_days();
    let day = match days {
        0 => words.today.clone(),
        1 => words.tomorrow.clone(),
        _ => words.on_weekday[moment.weekday().num_days_from_monday() as usize].clone(),
    };
    format!("{day} {} {}", words.at, moment.format("%H:%M"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shop() -> WeeklySchedule {
        WeeklySchedule::from_pairs([
            ("mon-fri", "09:00-20:00"),
            ("sat", "10:00-18:00"),
            ("sun", "выходной"),
        ])
        .unwrap_or_default()
    }

    fn moscow(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        let tz = chrono_tz::Europe::Moscow;
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn said(now: DateTime<Utc>) -> String {
        let tz = chrono_tz::Europe::Moscow;
        let words = DayWords::default();
        let local = now.with_timezone(&tz);
        match shop().status(now, tz) {
            OpenStatus::OpenUntil(t) => format!("open until {}", describe_moment(t, local, &words)),
            OpenStatus::ClosedUntil(t) => {
                format!("closed until {}", describe_moment(t, local, &words))
            }
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn open_and_closed_through_the_week() {
        assert_eq!(
            said(moscow(2026, 11, 25, 12, 0)),
            "open until сегодня в 20:00"
        );
        assert_eq!(
            said(moscow(2026, 11, 27, 21, 0)),
            "closed until завтра в 10:00"
        );
        assert_eq!(
            said(moscow(2026, 11, 28, 19, 0)),
            "closed until в понедельник в 09:00"
        );
        assert_eq!(
            said(moscow(2026, 11, 23, 8, 59)),
            "closed until сегодня в 09:00"
        );
        assert_eq!(
            said(moscow(2026, 11, 23, 20, 0)),
            "closed until завтра в 09:00"
        );
    }

    #[test]
    fn utc_instants_are_read_in_the_zone() {
        let utc = Utc
            .with_ymd_and_hms(2026, 11, 23, 6, 30, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(said(utc), "open until сегодня в 20:00");
    }

    #[test]
    fn a_lunch_break_splits_the_day() {
        let s = WeeklySchedule::from_pairs([("mon-sun", "10:00-14:00, 15:00-19:00")])
            .unwrap_or_default();
        let tz = chrono_tz::Europe::Moscow;
        let at_lunch = moscow(2026, 11, 25, 14, 30);
        let expected = tz.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).single();
        assert_eq!(
            Some(s.status(at_lunch, tz)),
            expected.map(OpenStatus::ClosedUntil)
        );
    }

    #[test]
    fn around_the_clock_and_never() {
        let tz = chrono_tz::Europe::Moscow;
        let always = WeeklySchedule::from_pairs([("mon-sun", "круглосуточно")]).unwrap_or_default();
        assert_eq!(
            always.status(moscow(2026, 11, 25, 3, 0), tz),
            OpenStatus::AlwaysOpen
        );
        assert_eq!(
            WeeklySchedule::default().status(moscow(2026, 11, 25, 3, 0), tz),
            OpenStatus::NeverOpen
        );
    }

    #[test]
    fn an_interval_to_midnight_continues_into_the_next_day() {
        let tz = chrono_tz::Europe::Moscow;
        let s = WeeklySchedule::from_pairs([("fri", "18:00-24:00"), ("sat", "00:00-02:00")])
            .unwrap_or_default();
        let expected = tz.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).single();
        assert_eq!(
            Some(s.status(moscow(2026, 11, 27, 23, 0), tz)),
            expected.map(OpenStatus::OpenUntil)
        );
    }

    #[test]
    fn the_week_is_rendered_in_groups() {
        assert_eq!(
            shop().render(&DayWords::default()),
            "Пн–Пт: 09:00–20:00\nСб: 10:00–18:00\nВс: выходной"
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(matches!(
            parse_day_hours("9-18"),
            Err(HoursError::BadHours(_))
        ));
        assert!(matches!(
            parse_day_hours("20:00-09:00"),
            Err(HoursError::Backwards(_))
        ));
        assert!(matches!(
            parse_day_hours("10:00-14:00, 13:00-19:00"),
            Err(HoursError::Overlap(_))
        ));
        assert!(matches!(
            parse_day_hours("25:00-26:00"),
            Err(HoursError::BadHours(_))
        ));
        assert!(matches!(parse_days_key("mnd"), Err(HoursError::BadDay(_))));
        assert_eq!(parse_days_key("fri-mon").map(|d| d.len()), Ok(4));
        assert_eq!(parse_days_key("пн-пт").map(|d| d.len()), Ok(5));
        let twice =
            WeeklySchedule::from_pairs([("mon-fri", "09:00-18:00"), ("fri", "10:00-12:00")]);
        assert_eq!(twice.err().map(|e| e[0].0), Some(1));
    }

    #[test]
    fn daylight_saving_gaps_do_not_panic() {
        let tz = chrono_tz::Europe::Berlin;
        let s = WeeklySchedule::from_pairs([("sun", "02:30-05:00")]).unwrap_or_default();
        let before = Utc
            .with_ymd_and_hms(2026, 3, 28, 23, 0, 0)
            .single()
            .unwrap_or_default();
        assert!(matches!(s.status(before, tz), OpenStatus::ClosedUntil(_)));
    }

    proptest! {
        #[test]
        fn next_changes_are_always_in_the_future(
            secs in 946_684_800i64..4_102_444_800,
            open in 0u32..23,
            len in 1u32..12,
            mask in 1u8..128,
        ) {
            let close = (open + len).min(24);
            let hours = format!("{open:02}:00-{close:02}:00");
            let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            let pairs: Vec<(&str, &str)> = days.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, d)| (*d, hours.as_str())).collect();
            let s = WeeklySchedule::from_pairs(pairs).unwrap_or_default();
            let now = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            for tz in [chrono_tz::Europe::Moscow, chrono_tz::Europe::Berlin, chrono_tz::America::New_York] {
                match s.status(now, tz) {
                    OpenStatus::OpenUntil(t) | OpenStatus::ClosedUntil(t) => prop_assert!(t > now.with_timezone(&tz)),
                    _ => {}
                }
            }
        }
    }
}
