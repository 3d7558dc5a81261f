//! The flow file as written: types that mirror the YAML one to one.
//!
//! Nothing here is checked beyond its shape; `flow::compile` turns these into
//! the validated [`crate::flow::model::Flow`]. The doc comments are in Russian
//! on purpose: they become the JSON Schema's descriptions, which the shop
//! owner's editor shows on hover.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::hours::DayWords;
use super::media::MediaKind;
use super::node::{Lenient, Located, OrderedMap};

/// Список действий, выполняемых по порядку.
pub type Actions = Vec<Lenient<Located<Action>>>;

/// Сценарий бота: тексты, клавиатуры, кнопки, команды, состояния и правила.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Сценарий flowbot")]
pub struct RawFlow {
    /// Версия языка сценария. Сейчас всегда 1.
    #[serde(default)]
    pub version: Option<Lenient<Located<u32>>>,
    /// Состояние, в котором клиент находится в главном меню. По умолчанию «main».
    #[serde(default)]
    pub start_state: Option<Located<String>>,
    /// Сведения о бизнесе: название, часовой пояс, часы работы, приветственный бонус.
    #[serde(default)]
    pub business: Lenient<Business>,
    /// Как сравнивать то, что написал клиент, с надписями на кнопках.
    #[serde(default)]
    pub normalize: Lenient<Normalize>,
    /// Тексты бота по именам. В действиях на них ссылаются по имени: `reply: greeting`.
    #[serde(default)]
    pub texts: OrderedMap<Located<String>, Lenient<Located<String>>>,
    /// Клавиатуры по именам: список рядов, в каждом ряду — кнопки.
    #[serde(default)]
    pub keyboards: OrderedMap<Located<String>, Lenient<Keyboard>>,
    /// Куда можно переслать сообщение: менеджеру в CRM (Wahelp) или в чат администраторов.
    #[serde(default)]
    pub targets: OrderedMap<Located<String>, Lenient<Target>>,
    /// Именованные списки действий, которые можно вызвать из разных мест: `run: имя`.
    #[serde(default)]
    pub scenarios: OrderedMap<Located<String>, Actions>,
    /// Кнопки и команды, которые работают всегда, даже посреди шага (например, «Отмена»).
    #[serde(default)]
    pub anytime: Vec<Located<String>>,
    /// Команды (/start, /info…) и что бот делает в ответ.
    #[serde(default)]
    pub commands: OrderedMap<Located<String>, Actions>,
    /// Кнопки главного меню (надпись → действия). Работают во всех состояниях, где кнопки разрешены.
    #[serde(default)]
    pub buttons: OrderedMap<Located<String>, Actions>,
    /// Состояния разговора (например, «ждём текст заказа») и их правила.
    #[serde(default)]
    pub states: OrderedMap<Located<String>, Lenient<State>>,
    /// Что делать, если ничего выше не подошло (обычно — переслать менеджеру).
    #[serde(default)]
    pub fallback: Actions,
    /// Ответ менеджера из CRM: что отправить клиенту и сколько длится разговор с менеджером.
    #[serde(default)]
    pub manager: Lenient<Manager>,
    /// Клиент заблокировал бота: что сделать (уведомить администраторов, написать менеджеру).
    #[serde(default)]
    pub blocked: Actions,
}

impl<T: Default> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(Some(T::default()))
    }
}

/// Сведения о бизнесе.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// Название, доступно в текстах как {business}.
    #[serde(default)]
    pub name: String,
    /// Часовой пояс для часов работы, например Europe/Moscow.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    /// Часы работы по дням: `mon-fri: "09:00-20:00"`, `sat: "10:00-16:00"`, `sun: выходной`.
    #[serde(default)]
    pub hours: OrderedMap<Located<String>, Located<String>>,
    /// Слова для рассказа о часах работы («сегодня», «завтра», названия дней).
    #[serde(default)]
    pub words: Option<DayWords>,
    /// Приветственный бонус, который начисляется один раз, когда клиент сообщил номер.
    #[serde(default)]
    pub welcome_bonus: Option<Located<WelcomeBonus>>,
}

/// Приветственный бонус.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WelcomeBonus {
    /// Сколько бонусов начислить.
    pub amount: u32,
    /// Сколько дней бонусы действуют.
    pub days: u32,
}

/// Правила сравнения текста с надписями кнопок. Невидимые символы (U+FE0F и т.п.) убираются всегда.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Normalize {
    /// Не различать большие и маленькие буквы.
    pub ignore_case: bool,
    /// Считать «ё» и «е» одной буквой.
    pub yo_as_ye: bool,
    /// Не обращать внимания на эмодзи в начале и в конце («прайс» = «💰 Прайс»).
    pub strip_emoji: bool,
    /// Не обращать внимания на точку, «!» и «?» в конце.
    pub trailing_punctuation: bool,
    /// Пока клиент говорит с менеджером, кнопкой считается только точная надпись (с эмодзи);
    /// «прайс», набранный руками, уходит менеджеру.
    pub exact_with_manager: bool,
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize {
            ignore_case: true,
            yo_as_ye: true,
            strip_emoji: true,
            trailing_punctuation: true,
            exact_with_manager: true,
        }
    }
}

/// Клавиатура: список рядов кнопок.
pub type Keyboard = Located<Vec<Located<Vec<Located<KeyboardButton>>>>>;

/// Кнопка клавиатуры: просто надпись, или надпись с особым свойством.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum KeyboardButton {
    /// Обычная кнопка: её надпись приходит боту как текст.
    Label(String),
    /// Кнопка с настройками.
    Special(SpecialButton),
}

/// Кнопка «поделиться номером» или кнопка-ссылка.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecialButton {
    /// Надпись на кнопке.
    pub text: String,
    /// true — кнопка отправляет номер телефона клиента (только в обычной клавиатуре).
    #[serde(default)]
    pub share_contact: bool,
    /// Ссылка: такая кнопка появляется под сообщением и открывает сайт.
    #[serde(default)]
    pub url: Option<String>,
}

/// Получатель пересылки.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Вид получателя: `wahelp` — менеджер в CRM через Wahelp, `admins` — чат администраторов.
    pub kind: Located<TargetKind>,
    /// Канал Wahelp (для `wahelp`), например clients_tg.
    #[serde(default)]
    pub channel: Option<String>,
    /// Шаблон текста, который получит получатель. По умолчанию — слова клиента как есть: "{text}".
    #[serde(default)]
    pub text: Option<Located<String>>,
}

/// Вид получателя.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Менеджер в amoCRM через Wahelp.
    Wahelp,
    /// Чат (чаты) администраторов в Telegram.
    Admins,
}

/// Состояние разговора.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Что делать с кнопками и командами меню в этом состоянии: `block` — попросить закончить шаг
    /// (кроме кнопок из `anytime`), `allow` — выполнить их как обычно.
    #[serde(default)]
    pub buttons: Option<Located<ButtonPolicy>>,
    /// Текст, которым бот просит закончить шаг (при `buttons: block`). По умолчанию текст `finish_step`.
    #[serde(default)]
    pub busy_reply: Option<Located<String>>,
    /// Правила состояния: проверяются по порядку, срабатывает первое подошедшее.
    #[serde(default)]
    pub rules: Vec<Lenient<Located<Rule>>>,
}

/// Что делать с кнопками меню посреди шага.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ButtonPolicy {
    /// Просить закончить шаг или нажать «Отмена».
    Block,
    /// Выполнять кнопки как в главном меню.
    Allow,
}

/// Правило: «когда пришло вот это (и выполнено условие) — сделай вот это».
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Текст совпадает с надписью кнопки (с учётом правил `normalize`).
    #[serde(default)]
    pub button: Option<Located<String>>,
    /// Текст в точности равен надписи (эмодзи тоже должны совпасть).
    #[serde(default)]
    pub exact: Option<Located<String>>,
    /// Команда, например /start.
    #[serde(default)]
    pub command: Option<Located<String>>,
    /// Текст подходит под регулярное выражение.
    #[serde(default)]
    pub regex: Option<Located<String>>,
    /// Любой текст (`any`) или текст, похожий на номер телефона (`phone`).
    #[serde(default)]
    pub text: Option<Located<TextMatch>>,
    /// Клиент поделился контактом: своим (`own`), чужим (`other`) или любым (`any`).
    #[serde(default)]
    pub contact: Option<Located<ContactMatch>>,
    /// Файл: `any` или вид (photo, video, document, voice, audio, sticker, animation, video_note, location).
    #[serde(default)]
    pub media: Option<Located<MediaMatch>>,
    /// `true` — что угодно.
    #[serde(default)]
    pub any: Option<Located<bool>>,
    /// Дополнительное условие: has_phone, no_phone, with_manager, has_bonus, open_now.
    #[serde(default, rename = "if")]
    pub condition: Option<Located<Condition>>,
    /// Что сделать.
    #[serde(default, rename = "do")]
    pub actions: Actions,
}

/// Какой текст подходит.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextMatch {
    /// Любой текст (не команда).
    Any,
    /// Текст, похожий на номер телефона.
    Phone,
}

/// Чей контакт.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactMatch {
    /// Контакт самого клиента (кнопка «Поделиться номером»).
    Own,
    /// Чужой контакт или карточка из телефонной книги.
    Other,
    /// Любой контакт.
    Any,
}

/// Какие файлы подходят: `any`, один вид или список видов.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaMatch {
    /// Любой файл.
    Any,
    /// Эти виды.
    Kinds(Vec<MediaKind>),
}

/// Условие.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Номер телефона клиента известен.
    HasPhone,
    /// Номер телефона ещё не известен.
    NoPhone,
    /// Клиент сейчас в разговоре с менеджером.
    WithManager,
    /// У клиента есть действующие бонусы.
    HasBonus,
    /// Бизнес сейчас открыт (по часам работы из `business.hours`).
    OpenNow,
}

/// Ответ менеджера из CRM.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manager {
    /// Сколько минут после ответа менеджера клиент считается «в разговоре с менеджером».
    #[serde(default = "default_conversation_minutes")]
    pub conversation_minutes: Located<u32>,
    /// Что сделать с ответом менеджера ({text} — его слова).
    #[serde(default, rename = "do")]
    pub actions: Actions,
}

impl Default for Manager {
    fn default() -> Self {
        Manager {
            conversation_minutes: default_conversation_minutes(),
            actions: Vec::new(),
        }
    }
}

fn default_conversation_minutes() -> Located<u32> {
    Located::new(30, super::node::Pos::UNKNOWN)
}

/// Одно действие. Либо слово (`register`, `save_phone`, `welcome_bonus`, `hold`,
/// `end_manager_chat`, `stop`), либо набор полей: `reply`, `goto`, `forward`, `copy_media`,
/// `release_held`, `run`, `if`/`then`/`else`.
#[derive(Debug, Clone)]
pub enum Action {
    /// Встроенное действие по имени.
    Builtin(String),
    /// Действие с полями.
    Step(Box<ActionFields>),
}

/// Поля действия. В одном действии — ровно одно главное поле.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionFields {
    /// Ответить клиенту: имя текста из `texts` или сам текст.
    #[serde(default)]
    pub reply: Option<Located<String>>,
    /// Какую клавиатуру показать вместе с ответом: имя из `keyboards` или `none`, чтобы убрать.
    #[serde(default)]
    pub keyboard: Option<Located<String>>,
    /// Не повторять это действие чаще, чем раз в столько времени: 30m, 2h, 1d.
    #[serde(default)]
    pub at_most_every: Option<Located<String>>,
    /// Перейти в состояние.
    #[serde(default)]
    pub goto: Option<Located<String>>,
    /// Переслать получателю из `targets`.
    #[serde(default)]
    pub forward: Option<Located<String>>,
    /// Переслать файл клиента получателю из `targets` (обычно admins).
    #[serde(default)]
    pub copy_media: Option<Located<String>>,
    /// Текст пересылки или подпись к файлу (для `forward` и `copy_media`); имя текста или сам текст.
    #[serde(default)]
    pub text: Option<Located<String>>,
    /// Переслать получателю отложенные сообщения клиента (написанные до того, как он дал номер).
    #[serde(default)]
    pub release_held: Option<Located<String>>,
    /// Выполнить сценарий из `scenarios`.
    #[serde(default)]
    pub run: Option<Located<String>>,
    /// Условие: has_phone, no_phone, with_manager, has_bonus, open_now.
    #[serde(default, rename = "if")]
    pub condition: Option<Located<Condition>>,
    /// Действия, если условие выполнено.
    #[serde(default)]
    pub then: Actions,
    /// Действия, если условие не выполнено.
    #[serde(default, rename = "else")]
    pub otherwise: Actions,
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Action;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "действие: слово (например, register) или набор полей (например, reply: …)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Action, E> {
                Ok(Action::Builtin(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Action, A::Error> {
                let fields = ActionFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Action::Step(Box::new(fields)))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Action {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Action".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let fields = generator.subschema_for::<ActionFields>();
        schemars::json_schema!({
            "description": "Действие: встроенное слово или набор полей.",
            "anyOf": [
                {
                    "type": "string",
                    "description": "Встроенное действие.",
                    "enum": super::builtins::NAMES,
                },
                fields
            ]
        })
    }
}

impl<'de> Deserialize<'de> for KeyboardButton {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyboardButton;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "кнопку: надпись или { text: …, share_contact: true } / { text: …, url: … }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyboardButton, E> {
                Ok(KeyboardButton::Label(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyboardButton, E> {
                Ok(KeyboardButton::Label(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeyboardButton, A::Error> {
                SpecialButton::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(KeyboardButton::Special)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for MediaMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MediaMatch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any, вид файла (photo, video…) или список видов")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MediaMatch, E> {
                if v == "any" {
                    return Ok(MediaMatch::Any);
                }
                MediaKind::deserialize(de::value::StrDeserializer::<E>::new(v))
                    .map(|k| MediaMatch::Kinds(vec![k]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<MediaMatch, A::Error> {
                Vec::<MediaKind>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(MediaMatch::Kinds)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for MediaMatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MediaMatch".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let kind = generator.subschema_for::<MediaKind>();
        schemars::json_schema!({
            "description": "Какие файлы подходят: any, один вид или список видов.",
            "anyOf": [{ "const": "any" }, kind, { "type": "array", "items": kind }]
        })
    }
}

/// The top-level keys of a flow file, for reporting unknown ones.
pub const ROOT_KEYS: &[&str] = &[
    "version",
    "start_state",
    "business",
    "normalize",
    "texts",
    "keyboards",
    "targets",
    "scenarios",
    "anytime",
    "commands",
    "buttons",
    "states",
    "fallback",
    "manager",
    "blocked",
];
