//! "Did you mean …?" for names a flow editor mistyped.

/// The closest candidate to `wrong`, if one is close enough to be a typo.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let limit = (wrong.chars().count() / 3).clamp(1, 4);
    candidates
        .into_iter()
        .map(|c| (distance(&wrong_lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" — может быть, «x»?"` when a close candidate exists, else an empty string.
pub fn hint<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(wrong, candidates)
        .map(|c| format!(" — может быть, «{c}»?"))
        .unwrap_or_default()
}

/// Like [`hint`], but always ends a sentence: the hint, or a full stop.
pub fn hint_sentence<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let hint = hint(wrong, candidates);
    if hint.is_empty() {
        ".".to_owned()
    } else {
        hint
    }
}

/// Levenshtein distance over characters, with adjacent swaps counted as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        let states = ["main", "waiting_order", "waiting_question"];
        assert_eq!(closest("waitng_order", states), Some("waiting_order"));
        assert_eq!(closest("mian", states), Some("main"));
        assert_eq!(closest("something_else", states), None);
        assert_eq!(
            hint("waitng_order", states),
            " — может быть, «waiting_order»?"
        );
    }
}
