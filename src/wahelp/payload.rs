//! Reading Wahelp webhook bodies: which events a body holds and, for each,
//! what it is and what the app should do with it ([`read`]).
//!
//! No real Wahelp payload has ever been captured in public (see
//! `tests/fixtures/wahelp/SOURCE.md`), so every place a field is looked for
//! is a list of [`FieldPath`]s in [`Paths`], which the app lets the owner
//! override. Each [`Event`] records what was found and where, so the first
//! real request shows what to set.
//!
//! Pure: no I/O. Echoes of our own messages and repeated ids are the app's
//! business (it knows what it sent), not this module's.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::phone::Phone;

#[cfg(test)]
mod tests;

/// The most segments a [`FieldPath`] may have.
pub const MAX_SEGMENTS: usize = 16;

/// The keys of an envelope that name its event, in the order tried.
const NAME_KEYS: [&str; 3] = ["event", "action", "event_type"];

/// The keys of an envelope that hold its event(s), in the order tried.
const INNER_KEYS: [&str; 2] = ["data", "payload"];

/// One place in an event's inner object (the envelope's `data` or
/// `payload`).
///
/// Syntax: keys separated by dots, relative to the inner object:
/// `destination`, `message.text`, `receiver.profile.phone`. A segment made
/// of digits indexes an array (`attachments.0.url`); on an object it is an
/// ordinary key. Segments may not be empty or contain whitespace or control
/// characters, so a key with a dot or a space in it cannot be named. At most
/// [`MAX_SEGMENTS`] segments.
///
/// A leading `data.` or `payload.` (as the places are written in Wahelp's
/// notes: `data.user.phone`) is skipped when the inner object has no such
/// key, so both spellings work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

/// Why a path, or a list of them, cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the list of paths is empty")]
    EmptyList,
    #[error("path number {position} in the list is empty (two commas, or one at an end)")]
    EmptyItem { position: usize },
    #[error("path `{path}` has an empty segment (two dots, or a dot at an end)")]
    EmptySegment { path: String },
    #[error("path `{path}` contains whitespace or a control character")]
    BadCharacter { path: String },
    #[error("path `{path}` has more than {MAX_SEGMENTS} segments")]
    TooDeep { path: String },
}

impl FieldPath {
    /// Reads one path (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<FieldPath, PathError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        let path = || text.to_owned();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PathError::BadCharacter { path: path() });
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(PathError::EmptySegment { path: path() });
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(PathError::TooDeep { path: path() });
        }
        Ok(FieldPath {
            text: path(),
            segments,
        })
    }

    /// The path as written: `message.text`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path in `inner`, if there is one.
    pub fn lookup<'a>(&self, inner: &'a Value) -> Option<&'a Value> {
        if let Some(found) = walk(inner, &self.segments) {
            return Some(found);
        }
        let (first, rest) = self.segments.split_first()?;
        let envelope_prefix = INNER_KEYS.contains(&first.as_str());
        if envelope_prefix && !rest.is_empty() && inner.get(first).is_none() {
            return walk(inner, rest);
        }
        None
    }
}

/// Follows `segments` down from `value`, without recursion.
fn walk<'a>(value: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments
        .iter()
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for FieldPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<FieldPath, PathError> {
        FieldPath::parse(s)
    }
}

/// Where each field of an event is looked for: for every field, paths
/// tried in order (see [`FieldPath`] for the syntax and [`read`] for which
/// found value wins).
///
/// [`Paths::default`] holds every place known from Wahelp's notes and the
/// production code that used it; [`Paths::parse_list`] reads an override
/// such as `user.phone, client.tel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Who wrote the message. Default: `destination`, `direction`.
    pub direction: Vec<FieldPath>,
    /// The message text. Default: `message` (when a string), `message.text`,
    /// `message.message`.
    pub text: Vec<FieldPath>,
    /// The customer's phone in an operator's (outgoing) message, or any
    /// event not from the customer. Default: `user.phone`, `user.uid2`,
    /// `user.uid`, `contact.phone`, `receiver.profile.phone`. Not
    /// `sender.profile.phone`: in an outgoing message the sender is the
    /// business.
    pub phone: Vec<FieldPath>,
    /// The customer's phone in the customer's own message (only shown, such
    /// messages are not forwarded). Default: `user.phone`, `user.uid2`,
    /// `user.uid`, `contact.phone`, `sender.profile.phone`.
    pub customer_phone: Vec<FieldPath>,
    /// Wahelp's id of the message. Default: `message_id`, `id`, `wahelp_id`,
    /// `message.message_id`, `message.id`, `message.wahelp_id`, `msgid`.
    pub message_id: Vec<FieldPath>,
    /// The URL of an attached file (only `http://` and `https://` count).
    /// Default: `message.file.url`, `message.file.link`, `message.media.url`,
    /// `message.attachment.url`, `message.attachments.0.url`, `file.url`,
    /// `media.url`, `attachment.url`.
    pub media_url: Vec<FieldPath>,
    /// The attached file's name. Default: `message.file.name`,
    /// `message.file.filename`, `message.media.name`,
    /// `message.attachment.name`, `message.attachments.0.name`, `file.name`,
    /// `media.name`, `attachment.name`.
    pub media_name: Vec<FieldPath>,
    /// The declared kind of the message or file (`image`, `photo`,
    /// `image/jpeg`, `document`…). Default: `message.type`,
    /// `message.file.type`, `message.file.mime_type`, `message.media.type`,
    /// `message.attachment.type`, `file.type`, `media.type`.
    pub media_type: Vec<FieldPath>,
    /// The Wahelp channel. Default: `channel.alias`, `channel.name`,
    /// `channel.uuid`, `channel.id`, `channel` (when a string).
    pub channel: Vec<FieldPath>,
    /// A delivery status (`sent`, `delivered`, `read`, `failed`). Default:
    /// `status`, `state`, `message.status`.
    pub status: Vec<FieldPath>,
    /// Direction values that mean "written by the business" (compared
    /// without case). Default: `from_operator`, `operator`.
    pub operator_values: Vec<String>,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            direction: constant(&["destination", "direction"]),
            text: constant(&["message", "message.text", "message.message"]),
            phone: constant(&[
                "user.phone",
                "user.uid2",
                "user.uid",
                "contact.phone",
                "receiver.profile.phone",
            ]),
            customer_phone: constant(&[
                "user.phone",
                "user.uid2",
                "user.uid",
                "contact.phone",
                "sender.profile.phone",
            ]),
            message_id: constant(&[
                "message_id",
                "id",
                "wahelp_id",
                "message.message_id",
                "message.id",
                "message.wahelp_id",
                "msgid",
            ]),
            media_url: constant(&[
                "message.file.url",
                "message.file.link",
                "message.media.url",
                "message.attachment.url",
                "message.attachments.0.url",
                "file.url",
                "media.url",
                "attachment.url",
            ]),
            media_name: constant(&[
                "message.file.name",
                "message.file.filename",
                "message.media.name",
                "message.attachment.name",
                "message.attachments.0.name",
                "file.name",
                "media.name",
                "attachment.name",
            ]),
            media_type: constant(&[
                "message.type",
                "message.file.type",
                "message.file.mime_type",
                "message.media.type",
                "message.attachment.type",
                "file.type",
                "media.type",
            ]),
            channel: constant(&[
                "channel.alias",
                "channel.name",
                "channel.uuid",
                "channel.id",
                "channel",
            ]),
            status: constant(&["status", "state", "message.status"]),
            operator_values: vec!["from_operator".to_owned(), "operator".to_owned()],
        }
    }
}

/// The built-in paths (all valid: a test checks that none is dropped).
fn constant(paths: &[&str]) -> Vec<FieldPath> {
    paths
        .iter()
        .filter_map(|path| FieldPath::parse(path).ok())
        .collect()
}

impl Paths {
    /// Reads a comma-separated list of paths: `data.user.phone, user.uid`.
    /// Every item must be a valid path; an empty list is an error.
    pub fn parse_list(list: &str) -> Result<Vec<FieldPath>, PathError> {
        if list.trim().is_empty() {
            return Err(PathError::EmptyList);
        }
        list.split(',')
            .enumerate()
            .map(|(i, item)| match FieldPath::parse(item) {
                Err(PathError::Empty) => Err(PathError::EmptyItem { position: i + 1 }),
                other => other,
            })
            .collect()
    }

    /// A list written back as [`Paths::parse_list`] reads it (for logs).
    pub fn join(list: &[FieldPath]) -> String {
        let texts: Vec<&str> = list.iter().map(FieldPath::as_str).collect();
        texts.join(", ")
    }
}

/// Who wrote a message, as its direction field says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// `from_operator` or `operator` (any case): written by the business, a
    /// manager in amoCRM or an API send such as ours.
    Operator,
    /// `from_user`, `user`, `from_client`, `client`, `from_customer`,
    /// `customer`, `from_contact`, `contact`, `incoming`, `inbound`, `in`
    /// (guesses: Wahelp's value is unknown).
    Customer,
    /// The field is there but blank: a status update, not a message.
    Empty,
    /// No direction field at all: not a message either.
    Absent,
    /// Any other value, as written (trimmed).
    Other(String),
}

impl Direction {
    /// Classifies a raw direction value with the default operator values.
    pub fn classify(raw: Option<&str>) -> Direction {
        Direction::classify_with(raw, &Paths::default().operator_values)
    }

    /// Classifies a raw direction value; `operator` lists the values that
    /// mean "written by the business".
    pub fn classify_with(raw: Option<&str>, operator: &[String]) -> Direction {
        let Some(raw) = raw else {
            return Direction::Absent;
        };
        let value = raw.trim();
        let lower = value.to_lowercase();
        if !lower.is_empty() && operator.iter().any(|o| o.trim().to_lowercase() == lower) {
            return Direction::Operator;
        }
        match lower.as_str() {
            "" => Direction::Empty,
            "from_user" | "user" | "from_client" | "client" | "from_customer" | "customer"
            | "from_contact" | "contact" | "incoming" | "inbound" | "in" => Direction::Customer,
            _ => Direction::Other(value.to_owned()),
        }
    }
}

/// What the app should do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// An operator's message with a phone and a text or a file: send it to
    /// the customer with that phone.
    Forward,
    /// An operator's message with a text or a file but no usable phone: log
    /// it and tell the admins (the customer cannot be found).
    NoPhone,
    /// An operator's message with neither text (after trimming) nor file.
    IgnoreEmpty,
    /// A message from the customer, or of an unknown direction.
    IgnoreNotOperator,
    /// No direction, or a blank one: a status update or another event that
    /// is not a message.
    IgnoreNotMessage,
    /// Not an event at all: not a JSON object, or its `data`/`payload` is
    /// neither an object nor a list.
    Unreadable,
}

impl Decision {
    /// Every decision, in declaration order.
    pub const ALL: [Decision; 6] = [
        Decision::Forward,
        Decision::NoPhone,
        Decision::IgnoreEmpty,
        Decision::IgnoreNotOperator,
        Decision::IgnoreNotMessage,
        Decision::Unreadable,
    ];

    /// A short stable name, for storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Forward => "forward",
            Decision::NoPhone => "no_phone",
            Decision::IgnoreEmpty => "ignore_empty",
            Decision::IgnoreNotOperator => "ignore_not_operator",
            Decision::IgnoreNotMessage => "ignore_not_message",
            Decision::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How Telegram should be asked to show a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `sendPhoto`: declared `image`/`photo`/`image/*`, or a
    /// `.jpg`/`.jpeg`/`.png`/`.webp` file.
    Photo,
    /// `sendDocument`: anything else.
    Document,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// An `http://` or `https://` URL, trimmed.
    pub url: String,
    pub name: Option<String>,
    /// The declared type, as written.
    pub declared_type: Option<String>,
    pub kind: MediaKind,
}

/// Which path each field was read from (for inspection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub direction: Option<String>,
    pub text: Option<String>,
    pub phone: Option<String>,
    pub message_id: Option<String>,
    pub media_url: Option<String>,
    pub channel: Option<String>,
    pub status: Option<String>,
}

/// One event of a webhook body, as read.
///
/// Its `Debug` masks the raw phone; [`Event::summary`] is the line for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    /// The envelope's `event`, `action` or `event_type`.
    pub name: Option<String>,
    /// The direction field as written.
    pub direction_raw: Option<String>,
    pub direction: Direction,
    /// The phone field as written (the first that parses, else the first
    /// found).
    pub phone_raw: Option<String>,
    pub phone: Option<Phone>,
    /// The text as written, not trimmed (emptiness is judged trimmed).
    pub text: Option<String>,
    pub message_id: Option<String>,
    pub media: Option<Media>,
    pub channel: Option<String>,
    pub status: Option<String>,
    pub decision: Decision,
    /// Why the event is [`Decision::Unreadable`].
    pub problem: Option<&'static str>,
    pub sources: Sources,
}

impl Event {
    fn unreadable(name: Option<String>, problem: &'static str) -> Event {
        Event {
            name,
            direction_raw: None,
            direction: Direction::Absent,
            phone_raw: None,
            phone: None,
            text: None,
            message_id: None,
            media: None,
            channel: None,
            status: None,
            decision: Decision::Unreadable,
            problem: Some(problem),
            sources: Sources::default(),
        }
    }

    /// Whether the text has something besides whitespace.
    pub fn has_text(&self) -> bool {
        self.text.as_deref().is_some_and(|t| !t.trim().is_empty())
    }

    /// One line for logs: the decision and what was found, with the phone
    /// masked and the text only counted.
    pub fn summary(&self) -> String {
        let mut line = format!("decision={}", self.decision);
        let mut add = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                line.push_str(&format!(" {key}={value:?}"));
            }
        };
        add("problem", self.problem.map(str::to_owned));
        add("event", self.name.clone());
        add("direction", self.direction_raw.clone());
        add("phone", self.masked_phone());
        add("id", self.message_id.clone());
        add("channel", self.channel.clone());
        add("status", self.status.clone());
        add(
            "text_chars",
            self.text.as_ref().map(|t| t.chars().count().to_string()),
        );
        add(
            "media",
            self.media.as_ref().map(|m| format!("{:?}", m.kind)),
        );
        line
    }

    /// The phone for logs: the parsed one masked, else the raw one masked.
    fn masked_phone(&self) -> Option<String> {
        match (&self.phone, &self.phone_raw) {
            (Some(phone), _) => Some(phone.masked()),
            (None, Some(raw)) => Some(super::secret::mask_phones(raw)),
            (None, None) => None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let phone_raw = self.phone_raw.as_deref().map(super::secret::mask_phones);
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("direction_raw", &self.direction_raw)
            .field("direction", &self.direction)
            .field("phone_raw", &phone_raw)
            .field("phone", &self.phone)
            .field("text", &self.text)
            .field("message_id", &self.message_id)
            .field("media", &self.media)
            .field("channel", &self.channel)
            .field("status", &self.status)
            .field("decision", &self.decision)
            .field("problem", &self.problem)
            .field("sources", &self.sources)
            .finish()
    }
}

/// Reads every event of a webhook body, in the order listed.
///
/// Shapes: `{"event": E, "data": {…}}`, `{"action": E, "payload": {…}}`,
/// `{"event_type": E, "payload": {…}}`; `data`/`payload` may be a list (one
/// event each, sharing the name) or a string holding JSON; the body may be a
/// list of envelopes. An object with neither `data` nor `payload` is read as
/// its own inner object. An empty list gives no events; anything else that
/// is not an object gives one [`Decision::Unreadable`] event.
///
/// For each field the first path holding a non-blank string or number wins
/// (numbers become strings); when every value found is blank, the first
/// blank one is kept. For the phone, the first value that parses as a phone
/// wins.
pub fn read(body: &Value, paths: &Paths) -> Vec<Event> {
    let mut events = Vec::new();
    match body {
        Value::Array(envelopes) => {
            for envelope in envelopes {
                read_envelope(envelope, paths, &mut events);
            }
        }
        envelope => read_envelope(envelope, paths, &mut events),
    }
    events
}

fn read_envelope(envelope: &Value, paths: &Paths, events: &mut Vec<Event>) {
    let Value::Object(map) = envelope else {
        events.push(Event::unreadable(None, "the envelope is not a JSON object"));
        return;
    };
    let name = event_name(map);
    let Some(inner) = INNER_KEYS.iter().find_map(|key| map.get(*key)) else {
        events.push(read_inner(envelope, name, paths));
        return;
    };
    match inner {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed) => read_inner_value(&parsed, name, paths, events),
            Err(_) => events.push(Event::unreadable(
                name,
                "data/payload is a string that is not JSON",
            )),
        },
        inner => read_inner_value(inner, name, paths, events),
    }
}

/// `data`/`payload`: one inner object or a list of them.
fn read_inner_value(inner: &Value, name: Option<String>, paths: &Paths, events: &mut Vec<Event>) {
    match inner {
        Value::Object(_) => events.push(read_inner(inner, name, paths)),
        Value::Array(items) => {
            for item in items {
                if item.is_object() {
                    events.push(read_inner(item, name.clone(), paths));
                } else {
                    events.push(Event::unreadable(
                        name.clone(),
                        "an item of data/payload is not a JSON object",
                    ));
                }
            }
        }
        _ => events.push(Event::unreadable(
            name,
            "data/payload is neither an object nor a list",
        )),
    }
}

fn event_name(envelope: &Map<String, Value>) -> Option<String> {
    NAME_KEYS
        .iter()
        .filter_map(|key| envelope.get(*key).and_then(scalar))
        .find(|name| !name.trim().is_empty())
}

/// Reads one inner object.
fn read_inner(inner: &Value, name: Option<String>, paths: &Paths) -> Event {
    let (direction_raw, direction_path) = split(first(inner, &paths.direction));
    let direction = Direction::classify_with(direction_raw.as_deref(), &paths.operator_values);
    let phone_paths = match direction {
        Direction::Customer => &paths.customer_phone,
        _ => &paths.phone,
    };
    let (phone_raw, phone, phone_path) = match first_phone(inner, phone_paths) {
        Some((found, phone)) => (Some(found.value), phone, Some(found.path)),
        None => (None, None, None),
    };
    let (text, text_path) = split(first(inner, &paths.text));
    let (message_id, id_path) = split(first(inner, &paths.message_id));
    let (channel, channel_path) = split(first(inner, &paths.channel));
    let (status, status_path) = split(first(inner, &paths.status));
    let (media, media_path) = match read_media(inner, paths) {
        Some((media, path)) => (Some(media), Some(path)),
        None => (None, None),
    };
    let mut event = Event {
        name,
        direction_raw,
        direction,
        phone_raw,
        phone,
        text,
        message_id,
        media,
        channel,
        status,
        decision: Decision::Unreadable,
        problem: None,
        sources: Sources {
            direction: direction_path,
            text: text_path,
            phone: phone_path,
            message_id: id_path,
            media_url: media_path,
            channel: channel_path,
            status: status_path,
        },
    };
    event.decision = decide(&event);
    event
}

/// What to do with a read event.
fn decide(event: &Event) -> Decision {
    match event.direction {
        Direction::Operator => {}
        Direction::Customer | Direction::Other(_) => return Decision::IgnoreNotOperator,
        Direction::Empty | Direction::Absent => return Decision::IgnoreNotMessage,
    }
    if !event.has_text() && event.media.is_none() {
        return Decision::IgnoreEmpty;
    }
    if event.phone.is_none() {
        return Decision::NoPhone;
    }
    Decision::Forward
}

/// A value found at a path.
struct Found {
    value: String,
    path: String,
}

fn split(found: Option<Found>) -> (Option<String>, Option<String>) {
    match found {
        Some(found) => (Some(found.value), Some(found.path)),
        None => (None, None),
    }
}

/// A string as is, a number written out; anything else is no value.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Every scalar found along `paths`, in order.
fn candidates<'a>(inner: &'a Value, paths: &'a [FieldPath]) -> impl Iterator<Item = Found> + 'a {
    paths.iter().filter_map(|path| {
        let value = scalar(path.lookup(inner)?)?;
        Some(Found {
            value,
            path: path.as_str().to_owned(),
        })
    })
}

/// The first non-blank value along `paths`, else the first blank one.
fn first(inner: &Value, paths: &[FieldPath]) -> Option<Found> {
    let mut blank = None;
    for found in candidates(inner, paths) {
        if !found.value.trim().is_empty() {
            return Some(found);
        }
        blank.get_or_insert(found);
    }
    blank
}

/// The first value that parses as a phone, else the first non-blank one
/// (kept raw, unparsed, for the log).
fn first_phone(inner: &Value, paths: &[FieldPath]) -> Option<(Found, Option<Phone>)> {
    let mut unparsed = None;
    for found in candidates(inner, paths) {
        if found.value.trim().is_empty() {
            continue;
        }
        match Phone::parse(&found.value) {
            Ok(phone) => return Some((found, Some(phone))),
            Err(_) => {
                unparsed.get_or_insert(found);
            }
        }
    }
    unparsed.map(|found| (found, None))
}

/// The attached file, with the path of its URL.
fn read_media(inner: &Value, paths: &Paths) -> Option<(Media, String)> {
    let found = candidates(inner, &paths.media_url).find(|found| is_web_url(&found.value))?;
    let url = found.value.trim().to_owned();
    let name = first(inner, &paths.media_name)
        .map(|f| f.value)
        .filter(|n| !n.trim().is_empty());
    let declared_type = first(inner, &paths.media_type)
        .map(|f| f.value)
        .filter(|t| !t.trim().is_empty());
    let kind = media_kind(declared_type.as_deref(), name.as_deref(), &url);
    let media = Media {
        url,
        name,
        declared_type,
        kind,
    };
    Some((media, found.path))
}

/// An absolute `http://` or `https://` URL with something after the scheme.
fn is_web_url(text: &str) -> bool {
    let text = text.trim();
    ["https://", "http://"].iter().any(|scheme| {
        text.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            && text.len() > scheme.len()
    })
}

/// Photo when declared an image, else when the name or the URL ends in a
/// photo extension; a document otherwise.
pub fn media_kind(declared_type: Option<&str>, name: Option<&str>, url: &str) -> MediaKind {
    if let Some(declared) = declared_type {
        let declared = declared.trim().to_ascii_lowercase();
        if matches!(declared.as_str(), "image" | "photo" | "picture")
            || declared.starts_with("image/")
        {
            return MediaKind::Photo;
        }
    }
    let url_file = url
        .split(['?', '#'])
        .next()
        .and_then(|path| path.rsplit('/').next());
    let photo = [name, url_file]
        .into_iter()
        .flatten()
        .find_map(extension)
        .is_some_and(|ext| matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp"));
    if photo {
        MediaKind::Photo
    } else {
        MediaKind::Document
    }
}

/// The lowercase extension of a file name, if it has one.
fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.trim().rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}
