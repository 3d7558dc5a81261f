//! Splitting long texts into parts Telegram accepts.
//!
//! Telegram limits a message to 4096 characters and a caption to 1024. It
//! counts in UTF-16 code units, so that is what we count too: a text that
//! fits here always fits there. [`split`] cuts a text into parts that fit,
//! preferring line breaks, then spaces, and never breaking a grapheme
//! cluster (an emoji with a skin tone, a letter with an accent) unless that
//! cluster alone is longer than the limit.

use unicode_segmentation::UnicodeSegmentation;

/// The most UTF-16 code units Telegram accepts in a message text.
pub const MESSAGE_LIMIT: usize = 4096;

/// The most UTF-16 code units Telegram accepts in a media caption.
pub const CAPTION_LIMIT: usize = 1024;

/// The length of `s` in UTF-16 code units, the way Telegram counts it.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `text` into parts of at most `limit` UTF-16 code units, in order.
///
/// - A text that fits is returned whole; a blank text gives no parts at all
///   (Telegram rejects empty messages).
/// - A cut goes after the last line break in the window if that lies in the
///   window's second half, else after the last whitespace in the second half,
///   else at the last grapheme-cluster boundary that fits. A single cluster
///   longer than the limit is cut between its chars.
/// - The separator stays at the end of the earlier part, and parts that are
///   only whitespace are dropped, so the parts joined together equal `text`
///   except for whitespace in dropped parts.
/// - A `limit` of 0 is treated as 1. The one part that can exceed the limit
///   is a single char that cannot fit on its own (a surrogate pair with a
///   limit of 1): it is sent alone rather than lost.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(cut) = find_cut(rest, limit) {
        let (head, tail) = rest.split_at(cut);
        push_unless_blank(&mut parts, head);
        rest = tail;
    }
    push_unless_blank(&mut parts, rest);
    parts
}

fn push_unless_blank(parts: &mut Vec<String>, part: &str) {
    if !is_blank(part) {
        parts.push(part.to_owned());
    }
}

fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// Where to end the next part of `rest`: a byte offset inside `rest` that
/// is greater than zero, or `None` when all of `rest` fits.
fn find_cut(rest: &str, limit: usize) -> Option<usize> {
    let window = scan_window(rest, limit)?;
    let cut = window
        .newline_cut
        .or(window.space_cut)
        .unwrap_or(window.grapheme_cut);
    if cut > 0 {
        Some(cut)
    } else {
        Some(char_cut(rest, limit))
    }
}

/// The cut candidates within the first `limit` units of a text, as byte
/// offsets just after the separator.
#[derive(Debug, Default)]
struct Window {
    /// After the last grapheme cluster that fits (0 if even the first does not).
    grapheme_cut: usize,
    /// After the last line break that starts in the window's second half.
    newline_cut: Option<usize>,
    /// After the last whitespace that starts in the window's second half.
    space_cut: Option<usize>,
}

/// Walks the grapheme clusters of `rest` that fit in `limit` units; `None`
/// when the whole of `rest` fits.
fn scan_window(rest: &str, limit: usize) -> Option<Window> {
    let mut window = Window::default();
    let mut units = 0;
    for (start, grapheme) in rest.grapheme_indices(true) {
        let start_units = units;
        units += utf16_len(grapheme);
        if units > limit {
            return Some(window);
        }
        let end = start + grapheme.len();
        window.grapheme_cut = end;
        if in_second_half(start_units, limit) {
            if grapheme.contains('\n') {
                window.newline_cut = Some(end);
            }
            if is_blank(grapheme) {
                window.space_cut = Some(end);
            }
        }
    }
    None
}

/// Whether a separator starting `offset` units into the window lies in the
/// window's second half, so cutting after it leaves a part at least half full.
fn in_second_half(offset: usize, limit: usize) -> bool {
    offset.saturating_mul(2) >= limit
}

/// The fallback for a grapheme cluster longer than the limit: after the last
/// char that fits, or after the first char if not even that one fits.
fn char_cut(rest: &str, limit: usize) -> usize {
    let mut units = 0;
    let mut cut = 0;
    for (start, c) in rest.char_indices() {
        units += c.len_utf16();
        let end = start + c.len_utf8();
        if units > limit {
            return if cut == 0 { end } else { cut };
        }
        cut = end;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part fits, unless it is a single char too long for the limit.
    fn assert_parts_fit(parts: &[String], limit: usize) {
        for part in parts {
            assert!(
                utf16_len(part) <= limit.max(1) || part.chars().count() == 1,
                "part of {} units exceeds limit {limit}: {part:?}",
                utf16_len(part)
            );
        }
    }

    fn cyrillic_text(min_chars: usize) -> String {
        let line = "Съешь же ещё этих мягких французских булок, да выпей чаю.\n";
        let mut text = String::new();
        let mut number = 0;
        while text.chars().count() < min_chars {
            number += 1;
            text.push_str(&format!("{number}. {line}"));
        }
        text
    }

    #[test]
    fn utf16_len_counts_surrogate_pairs_as_two() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("привет"), 6);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_len("👍🏽"), 4);
    }

    #[test]
    fn a_text_that_fits_is_one_part_unchanged() {
        let text = "  Hello,\nworld!  ";
        assert_eq!(split(text, MESSAGE_LIMIT), vec![text.to_owned()]);
    }

    #[test]
    fn a_blank_text_gives_no_parts() {
        assert!(split("", MESSAGE_LIMIT).is_empty());
        assert!(split(" \n\t ", MESSAGE_LIMIT).is_empty());
        assert!(split(&" ".repeat(10_000), MESSAGE_LIMIT).is_empty());
    }

    #[test]
    fn a_text_of_exactly_the_limit_is_one_part() {
        let text = "я".repeat(MESSAGE_LIMIT);
        assert_eq!(split(&text, MESSAGE_LIMIT), vec![text.clone()]);
    }

    #[test]
    fn one_unit_over_the_limit_gives_two_parts() {
        let text = "x".repeat(MESSAGE_LIMIT + 1);
        let parts = split(&text, MESSAGE_LIMIT);
        assert_eq!(parts, vec!["x".repeat(MESSAGE_LIMIT), "x".to_owned()]);
    }

    #[test]
    fn a_long_cyrillic_text_is_cut_after_line_breaks() {
        let text = cyrillic_text(10_000);
        let parts = split(&text, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 3);
        assert_parts_fit(&parts, MESSAGE_LIMIT);
        assert_eq!(parts.concat(), text);
        for part in &parts {
            assert!(part.ends_with('\n'), "part does not end a line: {part:?}");
            assert!(utf16_len(part) > MESSAGE_LIMIT / 2 || part == &parts[2]);
        }
    }

    #[test]
    fn a_text_without_spaces_is_cut_at_the_limit() {
        let text = "ж".repeat(10_000);
        let parts = split(&text, MESSAGE_LIMIT);
        let lengths: Vec<usize> = parts.iter().map(|p| utf16_len(p)).collect();
        assert_eq!(lengths, vec![4096, 4096, 1808]);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn a_space_in_the_second_half_is_preferred_to_a_hard_cut() {
        let parts = split("aaaaaa bbbbbbbbbb", 10);
        assert_eq!(parts, vec!["aaaaaa ", "bbbbbbbbbb"]);
    }

    #[test]
    fn a_line_break_is_preferred_to_a_later_space() {
        let parts = split("aaaaa\nbb ccccccc", 10);
        assert_eq!(parts, vec!["aaaaa\n", "bb ccccccc"]);
    }

    #[test]
    fn separators_in_the_first_half_are_ignored() {
        let parts = split("a\nb cccccccccccccc", 10);
        assert_eq!(parts, vec!["a\nb cccccc", "cccccccc"]);
    }

    #[test]
    fn a_windows_line_break_is_never_split() {
        let parts = split("aaaa\r\nbbbbbbbbbbbb", 5);
        assert_eq!(parts, vec!["aaaa", "\r\nbbb", "bbbbb", "bbbb"]);
    }

    #[test]
    fn an_emoji_at_the_boundary_moves_to_the_next_part_whole() {
        let thumbs = "👍🏽";
        let text = format!("{}{thumbs}b", "a".repeat(MESSAGE_LIMIT - 1));
        let parts = split(&text, MESSAGE_LIMIT);
        assert_eq!(
            parts,
            vec!["a".repeat(MESSAGE_LIMIT - 1), format!("{thumbs}b")]
        );
    }

    #[test]
    fn a_surrogate_pair_is_never_split() {
        let text = format!("{}😀", "a".repeat(9));
        assert_eq!(split(&text, 10), vec!["a".repeat(9), "😀".to_owned()]);
    }

    #[test]
    fn a_family_emoji_stays_together() {
        let family = "👨‍👩‍👧‍👦";
        let text = format!("abc{family}{family}");
        let parts = split(&text, utf16_len(family) + 3);
        assert_eq!(parts, vec![format!("abc{family}"), family.to_owned()]);
    }

    #[test]
    fn a_grapheme_longer_than_the_limit_is_cut_between_chars() {
        let accented = format!("e{}", "\u{301}".repeat(9));
        let parts = split(&accented, 4);
        assert_eq!(parts.concat(), accented);
        assert_eq!(parts.len(), 3);
        assert_parts_fit(&parts, 4);
    }

    #[test]
    fn a_zero_limit_is_treated_as_one() {
        assert_eq!(split("abc", 0), vec!["a", "b", "c"]);
    }

    #[test]
    fn a_char_longer_than_the_limit_is_sent_alone() {
        assert_eq!(split("a😀b", 1), vec!["a", "😀", "b"]);
    }

    #[test]
    fn whitespace_only_parts_are_dropped() {
        let text = format!("aaaa{}bbbb", " ".repeat(20));
        let parts = split(&text, 5);
        assert_eq!(parts, vec!["aaaa ", "bbbb"]);
    }

    #[test]
    fn captions_use_their_own_limit() {
        let text = "слово ".repeat(400);
        let parts = split(&text, CAPTION_LIMIT);
        assert_parts_fit(&parts, CAPTION_LIMIT);
        assert_eq!(parts.concat(), text);
        assert!(parts.iter().all(|p| p.ends_with(' ')));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn without_whitespace(s: &str) -> String {
            s.chars().filter(|c| !c.is_whitespace()).collect()
        }

        /// Finds each part in `text` in order, with only whitespace between
        /// them; returns the byte offsets where the parts start and end.
        fn locate_parts(text: &str, parts: &[String]) -> Vec<(usize, usize)> {
            let mut spans = Vec::new();
            let mut pos = 0;
            for part in parts {
                while !text[pos..].starts_with(part.as_str()) {
                    let skipped = text[pos..].chars().next();
                    let skipped = skipped.unwrap_or_else(|| panic!("part {part:?} not found"));
                    assert!(skipped.is_whitespace(), "lost {skipped:?} before {part:?}");
                    pos += skipped.len_utf8();
                }
                spans.push((pos, pos + part.len()));
                pos += part.len();
            }
            assert!(is_blank(&text[pos..]), "lost the tail {:?}", &text[pos..]);
            spans
        }

        fn interesting_text() -> impl Strategy<Value = String> {
            let pieces = prop_oneof![
                Just("a"),
                Just("б"),
                Just("漢"),
                Just(" "),
                Just("\n"),
                Just("\r\n"),
                Just("\t"),
                Just("😀"),
                Just("👍🏽"),
                Just("👨‍👩‍👧"),
                Just("🇺🇦"),
                Just("\u{301}"),
                Just("\u{200d}"),
                Just("word "),
            ];
            proptest::collection::vec(pieces, 0..400).prop_map(|p| p.concat())
        }

        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![any::<String>(), interesting_text()]
        }

        proptest! {
            #[test]
            fn every_part_fits(text in any_text(), limit in 1usize..300) {
                assert_parts_fit(&split(&text, limit), limit);
            }

            #[test]
            fn nothing_is_lost(text in any_text(), limit in 1usize..300) {
                let parts = split(&text, limit);
                prop_assert_eq!(without_whitespace(&parts.concat()), without_whitespace(&text));
            }

            #[test]
            fn order_is_kept_and_only_whitespace_is_dropped(
                text in any_text(),
                limit in 1usize..300,
            ) {
                let parts = split(&text, limit);
                locate_parts(&text, &parts);
                prop_assert!(parts.iter().all(|p| !is_blank(p)));
            }

            #[test]
            fn without_whitespace_the_parts_rebuild_the_text(
                text in "[a-zа-я😀👍🏽\u{301}]{0,400}",
                limit in 1usize..300,
            ) {
                prop_assert_eq!(split(&text, limit).concat(), text);
            }

            #[test]
            fn grapheme_clusters_that_fit_are_never_split(
                text in interesting_text(),
                limit in 1usize..300,
            ) {
                let longest = text.graphemes(true).map(utf16_len).max().unwrap_or(0);
                prop_assume!(longest <= limit);
                let boundaries: Vec<usize> =
                    text.grapheme_indices(true).map(|(i, _)| i).chain([text.len()]).collect();
                for (start, end) in locate_parts(&text, &split(&text, limit)) {
                    prop_assert!(boundaries.contains(&start), "cut inside a cluster at {start}");
                    prop_assert!(boundaries.contains(&end), "cut inside a cluster at {end}");
                }
            }

            #[test]
            fn a_text_that_fits_comes_back_whole(text in any_text()) {
                prop_assume!(utf16_len(&text) <= 300 && !is_blank(&text));
                prop_assert_eq!(split(&text, 300), vec![text]);
            }
        }
    }
}
