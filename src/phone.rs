//! Russian phone numbers, always kept in one normal form: `+79991234567`.
//!
//! `Phone` can only be built by parsing, so a value that exists is normal.
//! Its `Debug` prints a masked number, so an accidental `{:?}` in a log
//! never leaks one; `Display` prints it whole (the CRM needs it).

use std::fmt;
use std::str::FromStr;

/// A Russian phone number in the form `+7XXXXXXXXXX`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

/// Why a text is not a phone number (shown to flow editors and in logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("номер пустой")]
    Empty,
    #[error(
        "в номере есть лишние знаки («{0}»): можно только цифры, пробелы, скобки, дефисы и «+» в начале"
    )]
    ForbiddenCharacter(char),
    #[error("«+» может стоять только в начале номера")]
    MisplacedPlus,
    #[error("в номере {0} цифр, а нужно 10 или 11")]
    WrongLength(usize),
    #[error("это не российский номер: он должен начинаться с +7 или 8")]
    NotRussian,
}

/// Separators people put between digits.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '-' | '.' | '\u{2010}'..='\u{2015}')
}

impl Phone {
    /// Reads every usual Russian form: `+7 999 123-45-67`, `8 (999) 1234567`,
    /// `79991234567`, `9991234567`.
    ///
    /// ```
    /// use flowbot::phone::Phone;
    /// let phone = Phone::parse("8 (999) 123-45-67")?;
    /// assert_eq!(phone.as_str(), "+79991234567");
    /// assert_eq!(phone.masked(), "+7999***4567");
    /// assert!(Phone::parse("позвоните мне").is_err());
    /// # Ok::<(), flowbot::phone::PhoneError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(PhoneError::Empty);
        }
        let (plus, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut digits = String::with_capacity(11);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                '+' => return Err(PhoneError::MisplacedPlus),
                c if is_separator(c) => {}
                c => return Err(PhoneError::ForbiddenCharacter(c)),
            }
        }
        let national = match (plus, digits.len(), digits.as_bytes().first()) {
            (_, 0, _) => return Err(PhoneError::Empty),
            (true, 11, Some(b'7')) => &digits[1..],
            (true, _, Some(b'7')) => return Err(PhoneError::WrongLength(digits.len())),
            (true, _, _) => return Err(PhoneError::NotRussian),
            (false, 11, Some(b'7' | b'8')) => &digits[1..],
            (false, 11, _) => return Err(PhoneError::NotRussian),
            (false, 10, Some(b'3' | b'4' | b'8' | b'9')) => &digits[..],
            (false, 10, _) => return Err(PhoneError::NotRussian),
            (false, n, _) => return Err(PhoneError::WrongLength(n)),
        };
        Ok(Phone(format!("+7{national}")))
    }

    /// `+79991234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+7999***4567`: enough to recognise, not enough to call. Use in logs.
    pub fn masked(&self) -> String {
        format!("{}***{}", &self.0[..5], &self.0[self.0.len() - 4..])
    }

    /// Whether a typed message is meant as a phone number: only digits and
    /// separators, with 10 or 11 digits.
    pub fn looks_like_phone(text: &str) -> bool {
        let text = text.trim();
        let body = text.strip_prefix('+').unwrap_or(text);
        let digits = body.chars().filter(char::is_ascii_digit).count();
        (10..=11).contains(&digits) && body.chars().all(|c| c.is_ascii_digit() || is_separator(c))
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    /// The whole number. Logs must use [`Phone::masked`].
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Phone {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Phone, PhoneError> {
        Phone::parse(s)
    }
}

impl serde::Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Phone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Phone, D::Error> {
        let text = String::deserialize(d)?;
        Phone::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(s: &str) -> Result<String, PhoneError> {
        Phone::parse(s).map(|p| p.0)
    }

    #[test]
    fn every_usual_form_gives_one_normal_form() {
        for input in [
            "+7 999 123-45-67",
            "8 (999) 1234567",
            "79991234567",
            "9991234567",
            "+7(999)123-45-67",
            "8-999-123-45-67",
            "7 999 123 45 67",
            "  +7 999 123 45 67 ",
            "8\u{00A0}999\u{00A0}123\u{00A0}45\u{00A0}67",
            "8.999.123.45.67",
        ] {
            assert_eq!(parsed(input), Ok("+79991234567".to_owned()), "{input:?}");
        }
        assert_eq!(parsed("8 (495) 123-45-67"), Ok("+74951234567".to_owned()));
    }

    #[test]
    fn other_texts_are_refused_with_a_reason() {
        assert_eq!(parsed(""), Err(PhoneError::Empty));
        assert_eq!(parsed("12345"), Err(PhoneError::WrongLength(5)));
        assert_eq!(
            parsed("8 999 123 45 67 8"),
            Err(PhoneError::WrongLength(12))
        );
        assert_eq!(
            parsed("позвоните мне"),
            Err(PhoneError::ForbiddenCharacter('п'))
        );
        assert_eq!(parsed("+44 20 7946 0958"), Err(PhoneError::NotRussian));
        assert_eq!(parsed("+8 999 123 45 67"), Err(PhoneError::NotRussian));
        assert_eq!(parsed("8 999 +123 45 67"), Err(PhoneError::MisplacedPlus));
        assert_eq!(parsed("1234567890"), Err(PhoneError::NotRussian));
    }

    #[test]
    fn logs_see_a_masked_number() {
        let phone = Phone::parse("+79991234567").map_err(|e| e.to_string());
        let phone = phone.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(phone.masked(), "+7999***4567");
        assert_eq!(format!("{phone:?}"), "Phone(+7999***4567)");
        assert_eq!(phone.to_string(), "+79991234567");
    }

    #[test]
    fn what_looks_like_a_phone() {
        assert!(Phone::looks_like_phone("8 999 123 45 67"));
        assert!(Phone::looks_like_phone("+7 (999) 123-45-67"));
        assert!(!Phone::looks_like_phone("12345"));
        assert!(!Phone::looks_like_phone("мой номер 89991234567"));
    }

    proptest! {
        #[test]
        fn any_formatting_of_a_mobile_number_parses_the_same(
            national in "9[0-9]{9}",
            prefix in prop::sample::select(vec!["+7", "8", "7", ""]),
            separators in prop::collection::vec(prop::sample::select(vec!["", " ", "-", "(", ")", "."]), 10),
        ) {
            let mut text = prefix.to_owned();
            for (digit, sep) in national.chars().zip(&separators) {
                text.push_str(sep);
                text.push(digit);
            }
            let phone = Phone::parse(&text);
            prop_assert_eq!(phone.map(|p| p.0), Ok(format!("+7{national}")));
        }

        #[test]
        fn parsing_never_panics_and_is_idempotent(text in "\\PC{0,30}") {
            if let Ok(phone) = Phone::parse(&text) {
                prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
                prop_assert_eq!(phone.as_str().len(), 12);
                prop_assert_eq!(&phone.masked()[5..8], "***");
            }
        }
    }
}
