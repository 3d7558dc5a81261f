//! Normalisation of typed text and button labels, so both compare the same way.
//!
//! Labels are normalised once, when the flow loads; incoming text on every
//! message, with the same rules. Invisible characters are always dropped
//! (Telegram clients send the same emoji with or without U+FE0F).

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;

/// Normalisation rules, as configured in the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub ignore_case: bool,
    pub yo_as_ye: bool,
    pub strip_emoji: bool,
    pub strip_trailing_punctuation: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            ignore_case: true,
            yo_as_ye: true,
            strip_emoji: true,
            strip_trailing_punctuation: true,
        }
    }
}

/// Characters that change nothing a person sees.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}'
            | '\u{FE0F}'
            | '\u{200B}'
            | '\u{200C}'
            | '\u{200D}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{00AD}'
    )
}

/// Drops variation selectors, zero-width joiners and spaces, BOM and soft hyphens.
pub fn strip_invisible(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_invisible) {
        Cow::Owned(s.chars().filter(|c| !is_invisible(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// The form used for exact label comparison (while talking to a manager).
pub fn exact_key(s: &str) -> String {
    strip_invisible(s).trim().to_owned()
}

const TRAILING_PUNCTUATION: &[char] = &['.', ',', '!', '?', ';', ':', '…'];

impl Rules {
    /// The comparison form of a text under these rules.
    ///
    /// Case, `ё` and whitespace are folded first; then emoji and trailing
    /// punctuation are trimmed from the edges. A text that would trim to
    /// nothing (a label that is only «👍») keeps its folded form.
    pub fn normalize(&self, s: &str) -> String {
        let folded = self.fold(&strip_invisible(s));
        let core = self.trim_edges(&folded);
        if core.is_empty() || core.len() == folded.len() {
            folded
        } else {
            core.to_owned()
        }
    }

    /// Case and `ё` folding, whitespace runs to one space, trimmed.
    fn fold(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pending_space = false;
        for c in text.chars() {
            if c.is_whitespace() {
                pending_space = !out.is_empty();
                continue;
            }
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            let c = match c {
                'ё' if self.yo_as_ye => 'е',
                'Ё' if self.yo_as_ye => 'Е',
                other => other,
            };
            if self.ignore_case && !c.is_lowercase() {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Drops emoji from both edges and punctuation from the end, as the rules say.
    fn trim_edges<'t>(&self, text: &'t str) -> &'t str {
        let (Some(first), Some(last)) = (text.chars().next(), text.chars().next_back()) else {
            return text;
        };
        let punct_end = self.strip_trailing_punctuation && TRAILING_PUNCTUATION.contains(&last);
        if !punct_end && (!self.strip_emoji || (is_plain(first) && is_plain(last))) {
            return text;
        }
        let clusters: Vec<(usize, &str)> = text.grapheme_indices(true).collect();
        let blank = |g: &str| g.chars().all(char::is_whitespace);
        let emoji = |g: &str| self.strip_emoji && is_emoji_cluster(g);
        let punct = |g: &str| {
            self.strip_trailing_punctuation && g.chars().all(|c| TRAILING_PUNCTUATION.contains(&c))
        };
        let start = clusters.iter().position(|(_, g)| !emoji(g) && !blank(g));
        let end = clusters
            .iter()
            .rposition(|(_, g)| !emoji(g) && !blank(g) && !punct(g));
        match (start, end) {
            (Some(a), Some(b)) if a <= b => {
                &text[clusters[a].0..clusters[b].0 + clusters[b].1.len()]
            }
            _ => "",
        }
    }
}

/// A letter or a plain sign: certainly not part of an emoji.
fn is_plain(c: char) -> bool {
    (c.is_alphabetic() && (c as u32) < 0x2000)
        || (c.is_ascii_punctuation() && !matches!(c, '#' | '*'))
}

/// Whether a grapheme cluster is an emoji: a pictograph, a flag, a keycap or a skin tone.
fn is_emoji_cluster(cluster: &str) -> bool {
    cluster.chars().any(|c| {
        is_extended_pictographic(c)
            || ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
            || c == '\u{20E3}'
            || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
    })
}

/// Unicode's Extended_Pictographic property (Unicode 15), as sorted ranges.
const PICTOGRAPHIC: &[(u32, u32)] = &[
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x2605),
    (0x2607, 0x2612),
    (0x2614, 0x2685),
    (0x2690, 0x2705),
    (0x2708, 0x2712),
    (0x2714, 0x2714),
    (0x2716, 0x2716),
    (0x271D, 0x271D),
    (0x2721, 0x2721),
    (0x2728, 0x2728),
    (0x2733, 0x2734),
    (0x2744, 0x2744),
    (0x2747, 0x2747),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2763, 0x2767),
    (0x2795, 0x2797),
    (0x27A1, 0x27A1),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
];

fn is_extended_pictographic(c: char) -> bool {
    let c = c as u32;
    if c < 0xA9 {
        return false;
    }
    PICTOGRAPHIC
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> String {
        Rules::default().normalize(s)
    }

    #[test]
    fn the_same_button_however_it_is_typed() {
        for typed in [
            "💰 Прайс",
            "💰\u{FE0F} Прайс",
            "Прайс",
            "прайс",
            "ПРАЙС!",
            " прайс  ",
            "Прайс 💰",
            "прайс?",
        ] {
            assert_eq!(n(typed), "прайс", "{typed:?}");
        }
        assert_eq!(n("🕐 Режим работы"), n("Режим работы"));
        assert_eq!(n("Ёлка"), n("елка"));
        assert_eq!(n("Отправить  фото/видео"), "отправить фото/видео");
    }

    #[test]
    fn emoji_of_every_shape_are_stripped_at_the_edges_only() {
        assert_eq!(n("👨\u{200D}👩\u{200D}👧 Семья"), "семья");
        assert_eq!(n("🇷🇺 Россия"), "россия");
        assert_eq!(n("👍🏽 Спасибо"), "спасибо");
        assert_eq!(n("1\u{FE0F}\u{20E3} Первый"), "первый");
        assert_eq!(n("Чистка 🛋 дивана"), "чистка 🛋 дивана");
        assert_eq!(n("👍"), "👍");
        assert_eq!(n("👍\u{FE0F}"), "👍");
    }

    #[test]
    fn digits_and_hashes_are_not_emoji() {
        assert_eq!(n("9991234567"), "9991234567");
        assert_eq!(n("#1 заказ"), "#1 заказ");
    }

    #[test]
    fn each_rule_can_be_switched_off() {
        let none = Rules {
            ignore_case: false,
            yo_as_ye: false,
            strip_emoji: false,
            strip_trailing_punctuation: false,
        };
        assert_eq!(none.normalize("💰\u{FE0F}  Ёлка!"), "💰 Ёлка!");
        assert_eq!(
            Rules {
                ignore_case: false,
                ..Rules::default()
            }
            .normalize("Прайс"),
            "Прайс"
        );
        assert_eq!(
            Rules {
                yo_as_ye: false,
                ..Rules::default()
            }
            .normalize("Ёлка"),
            "ёлка"
        );
        assert_eq!(
            Rules {
                strip_trailing_punctuation: false,
                ..Rules::default()
            }
            .normalize("Да!"),
            "да!"
        );
        assert_eq!(n("?!"), "?!");
    }

    #[test]
    fn exact_keys_ignore_only_invisible_characters() {
        assert_eq!(exact_key("💰\u{FE0F} Прайс"), exact_key("💰 Прайс"));
        assert_ne!(exact_key("💰 Прайс"), exact_key("Прайс"));
        assert_ne!(exact_key("прайс"), exact_key("Прайс"));
        assert!(matches!(strip_invisible("обычный текст"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_pictographic_table_is_sorted() {
        assert!(PICTOGRAPHIC.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(PICTOGRAPHIC.iter().all(|(lo, hi)| lo <= hi));
    }

    fn any_rules() -> impl Strategy<Value = Rules> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d)| {
            Rules {
                ignore_case: a,
                yo_as_ye: b,
                strip_emoji: c,
                strip_trailing_punctuation: d,
            }
        })
    }

    fn tricky_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "💰",
            "🕐",
            "\u{FE0F}",
            "\u{FE0E}",
            "\u{200D}",
            "👍",
            "🏽",
            "🇷",
            "🇺",
            "1",
            "\u{20E3}",
            "Прайс",
            "ёлка",
            "Ё",
            " ",
            "  ",
            "\t",
            "\n",
            "!",
            "?",
            ".",
            "…",
            "a",
            "Z",
            "\u{FEFF}",
            "\u{00A0}",
            "ß",
            "İ",
            "#",
            "*",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn normalising_twice_changes_nothing(s in "\\PC*", rules in any_rules()) {
            let once = rules.normalize(&s);
            prop_assert_eq!(rules.normalize(&once), once);
        }

        #[test]
        fn tricky_mixes_never_panic_and_stay_idempotent(s in tricky_text(), rules in any_rules()) {
            let once = rules.normalize(&s);
            prop_assert_eq!(rules.normalize(&once), once);
            let exact = exact_key(&s);
            prop_assert_eq!(exact_key(&exact), exact);
        }

        #[test]
        fn a_variation_selector_after_an_emoji_changes_nothing(label in tricky_text(), rules in any_rules()) {
            let with_vs: String = label
                .chars()
                .flat_map(|c| if is_extended_pictographic(c) { vec![c, '\u{FE0F}'] } else { vec![c] })
                .collect();
            prop_assert_eq!(rules.normalize(&with_vs), rules.normalize(&label));
            prop_assert_eq!(exact_key(&with_vs), exact_key(&label));
        }
    }
}
