//! The conversation test file format (`flows/tests/*.yaml`).
//!
//! ```yaml
//! name: Главное меню
//! tests:
//!   - name: Прайс отвечает кнопкой и текстом
//!     steps:
//!       - customer: /start
//!       - customer: прайс
//!         expect:
//!           reply: { contains: "Цены" }
//! ```

use serde::Deserialize;

use crate::flow::node::Located;

/// One test file: a few conversations against one flow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// A title for the report.
    #[serde(default)]
    pub name: Option<String>,
    /// The flow under test, relative to this file. Default: `../default.yaml`.
    #[serde(default)]
    pub flow: Option<String>,
    /// Who talks to the bot. Default: Анна Смирнова, @anna_smirnova, id 5213874096.
    #[serde(default)]
    pub customer: Option<CustomerSpec>,
    /// When the conversations start, in the flow's time zone. Default: Monday 2026-11-23 12:00.
    #[serde(default)]
    pub start_time: Option<String>,
    pub tests: Vec<Located<TestCase>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSpec {
    pub id: i64,
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// One conversation from a fresh customer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub steps: Vec<Located<Step>>,
}

/// What happens in one step (exactly one of the input fields) and what must follow.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The customer writes this (commands too: `/start`).
    #[serde(default)]
    pub customer: Option<String>,
    /// The customer shares their own contact with this number.
    #[serde(default)]
    pub contact: Option<String>,
    /// The customer shares someone else's contact.
    #[serde(default)]
    pub contact_other: Option<String>,
    /// The customer shares a phone-book card without a Telegram id.
    #[serde(default)]
    pub contact_no_id: Option<String>,
    /// The customer sends a file of this kind (photo, video, document, sticker, voice, location…).
    #[serde(default)]
    pub media: Option<String>,
    /// The caption of that file.
    #[serde(default)]
    pub caption: Option<String>,
    /// A manager replies from the CRM.
    #[serde(default)]
    pub manager: Option<String>,
    /// The customer blocks (true) or unblocks (false) the bot.
    #[serde(default)]
    pub blocked: Option<bool>,
    /// The clock jumps to this local time (`2026-11-23T21:00`).
    #[serde(default)]
    pub time: Option<String>,
    /// The clock moves forward (`31m`, `2h`, `1d`).
    #[serde(default)]
    pub wait: Option<String>,
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// A text expectation: the exact text, or a part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextCheck {
    Exact(String),
    Contains(String),
}

impl TextCheck {
    pub fn matches(&self, text: &str) -> bool {
        match self {
            TextCheck::Exact(t) => text == t,
            TextCheck::Contains(t) => text.contains(t.as_str()),
        }
    }
}

impl std::fmt::Display for TextCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            TextCheck::Exact(t) => write!(f, "«{t}»"),
            TextCheck::Contains(t) => write!(f, "текст, содержащий «{t}»"),
        }
    }
}

impl<'de> Deserialize<'de> for TextCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Contains {
            contains: String,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TextCheck;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("текст или { contains: часть текста }")
            }
            fn visit_str<E>(self, v: &str) -> Result<TextCheck, E> {
                Ok(TextCheck::Exact(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TextCheck, A::Error> {
                let c = Contains::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(TextCheck::Contains(c.contains))
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks after a step. Every field is optional; only what is written is checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Some reply of this step matches.
    #[serde(default)]
    pub reply: Option<TextCheck>,
    /// Every reply of this step, in order.
    #[serde(default)]
    pub replies: Option<Vec<TextCheck>>,
    /// The bot says nothing in this step.
    #[serde(default)]
    pub no_reply: Option<bool>,
    /// The last keyboard shown in this step, row by row; `none` — the keyboard was removed.
    #[serde(default)]
    pub keyboard: Option<KeyboardCheck>,
    /// Some message to the CRM (manager) matches.
    #[serde(default)]
    pub forward: Option<TextCheck>,
    /// Every message to the CRM in this step, in order.
    #[serde(default)]
    pub forwards: Option<Vec<TextCheck>>,
    /// Nothing went to the CRM in this step.
    #[serde(default)]
    pub no_forward: Option<bool>,
    /// Some notice to the admins matches.
    #[serde(default)]
    pub notice: Option<TextCheck>,
    /// Nothing went to the admins.
    #[serde(default)]
    pub no_notice: Option<bool>,
    /// A file was copied to the admins (true) or not (false).
    #[serde(default)]
    pub media_copied: Option<bool>,
    /// The state after the step.
    #[serde(default)]
    pub state: Option<String>,
    /// How many messages are held after the step.
    #[serde(default)]
    pub held: Option<usize>,
    /// The saved phone after the step; `none` — no phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// The bonus balance after the step.
    #[serde(default)]
    pub bonus: Option<i64>,
    /// Whether the customer is talking with a manager after the step.
    #[serde(default)]
    pub with_manager: Option<bool>,
}

/// `none`, or rows of labels.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KeyboardCheck {
    Rows(Vec<Vec<String>>),
    Word(String),
}
