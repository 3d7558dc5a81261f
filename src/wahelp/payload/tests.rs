//! Tests of the webhook reader: every sample of `tests/fixtures/wahelp` does
//! what `cases.json` says, paths are really configurable, and nothing a
//! sender can put in a body makes the reader panic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wahelp")
}

fn load(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn read_default(body: &Value) -> Vec<Event> {
    read(body, &Paths::default())
}

/// The one event of a sample.
fn only_event(name: &str) -> Event {
    let mut events = read_default(&load(name));
    assert_eq!(events.len(), 1, "{name}: {events:?}");
    events.remove(0)
}

fn phone(text: &str) -> Phone {
    Phone::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn list(text: &str) -> Vec<FieldPath> {
    Paths::parse_list(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn str_field<'a>(case: &'a Value, key: &str) -> Option<&'a str> {
    case.get(key).and_then(Value::as_str)
}

/// What `cases.json` cannot say precisely: which kind of "ignore" each is.
fn expected_ignore(file: &str) -> Decision {
    match file {
        "05-client-message-not-for-us.json" => Decision::IgnoreNotOperator,
        "06-status-update.json" => Decision::IgnoreNotMessage,
        "08-operator-no-phone.json" => Decision::NoPhone,
        "09-operator-empty-text.json" => Decision::IgnoreEmpty,
        other => panic!("{other}: an ignored sample without an expected decision"),
    }
}

fn check_forward(file: &str, event: &Event, case: &Value) {
    assert_eq!(event.decision, Decision::Forward, "{file}: {event:?}");
    assert_eq!(event.direction, Direction::Operator, "{file}");
    let expected_phone = str_field(case, "phone").map(phone);
    assert_eq!(event.phone, expected_phone, "{file}");
    if let Some(text) = str_field(case, "text") {
        assert_eq!(event.text.as_deref(), Some(text), "{file}");
    }
    if let Some(id) = str_field(case, "message_id") {
        assert_eq!(event.message_id.as_deref(), Some(id), "{file}");
    }
}

#[test]
fn every_sample_does_what_cases_json_says() {
    let cases = load("cases.json");
    let cases = cases["cases"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let file = str_field(case, "file").unwrap_or_else(|| panic!("no file in {case}"));
        let events = read_default(&load(file));
        match str_field(case, "expect") {
            Some("forward") => {
                assert_eq!(events.len(), 1, "{file}: {events:?}");
                check_forward(file, &events[0], case);
            }
            Some("forward-each") => {
                let texts: Vec<&str> = case["texts"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                assert_eq!(events.len(), texts.len(), "{file}: {events:?}");
                for (event, text) in events.iter().zip(&texts) {
                    check_forward(file, event, case);
                    assert_eq!(event.text.as_deref(), Some(*text), "{file}");
                }
            }
            Some("ignore") => {
                assert_eq!(events.len(), 1, "{file}: {events:?}");
                assert_eq!(
                    events[0].decision,
                    expected_ignore(file),
                    "{file}: {events:?}"
                );
            }
            other => panic!("{file}: unknown expectation {other:?}"),
        }
    }
}

#[test]
fn every_sample_file_is_in_cases_json() {
    let cases = load("cases.json");
    let listed: Vec<&str> = cases["cases"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| str_field(c, "file")).collect())
        .unwrap_or_default();
    let entries = std::fs::read_dir(fixtures_dir()).unwrap_or_else(|e| panic!("{e}"));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && name != "cases.json" {
            assert!(
                listed.contains(&name.as_str()),
                "{name} is not in cases.json"
            );
        }
    }
}

#[test]
fn samples_are_read_from_the_places_named_in_source_md() {
    let e = only_event("01-event-data-operator.json");
    assert_eq!(e.name.as_deref(), Some("channel.message.created"));
    assert_eq!(e.direction_raw.as_deref(), Some("from_operator"));
    assert_eq!(e.channel.as_deref(), Some("clients_tg"));
    assert_eq!(e.sources.phone.as_deref(), Some("user.phone"));
    assert_eq!(e.sources.message_id.as_deref(), Some("id"));
    assert_eq!(e.sources.text.as_deref(), Some("message.text"));
    assert_eq!(e.sources.channel.as_deref(), Some("channel.alias"));

    let e = only_event("02-action-payload-operator-string-message.json");
    assert_eq!(e.name.as_deref(), Some("message"));
    assert_eq!(e.sources.text.as_deref(), Some("message"));
    assert_eq!(e.phone_raw.as_deref(), Some("+7 (999) 123-45-67"));
    assert_eq!(e.sources.phone.as_deref(), Some("user.uid2"));
    assert_eq!(e.channel.as_deref(), Some("clients_tg"));

    let e = only_event("03-contact-phone-8-format.json");
    assert_eq!(e.direction_raw.as_deref(), Some("FROM_OPERATOR"));
    assert_eq!(e.sources.text.as_deref(), Some("message.message"));
    assert_eq!(e.sources.message_id.as_deref(), Some("wahelp_id"));
    assert_eq!(e.sources.phone.as_deref(), Some("contact.phone"));

    let e = only_event("04-event-type-amojo-like.json");
    assert_eq!(e.name.as_deref(), Some("new_message"));
    assert_eq!(e.sources.phone.as_deref(), Some("receiver.profile.phone"));
    assert_eq!(e.sources.message_id.as_deref(), Some("msgid"));
    assert_eq!(e.media, None, "a text message has no file");

    let e = only_event("05-client-message-not-for-us.json");
    assert_eq!(e.direction, Direction::Customer);
    assert_eq!(e.phone, Some(phone("+79991234567")));

    let e = only_event("06-status-update.json");
    assert_eq!(e.direction, Direction::Empty);
    assert_eq!(e.status.as_deref(), Some("delivered"));
    assert_eq!(e.message_id.as_deref(), Some("90000001"));

    let e = only_event("08-operator-no-phone.json");
    assert_eq!(e.phone_raw, None);
    assert_eq!(e.text.as_deref(), Some("Ответ без телефона"));

    let e = only_event("09-operator-empty-text.json");
    assert_eq!(e.text.as_deref(), Some("   "), "kept as written");
    assert!(!e.has_text());
}

#[test]
fn list_of_events_keeps_its_order() {
    let events = read_default(&load("07-list-of-events.json"));
    let ids: Vec<_> = events.iter().map(|e| e.message_id.as_deref()).collect();
    assert_eq!(ids, [Some("90000010"), Some("90000011")]);
}

#[test]
fn media_message_carries_its_file() {
    let e = only_event("10-operator-media.json");
    let media = e.media.unwrap_or_else(|| panic!("a file"));
    assert_eq!(media.url, "https://files.example.invalid/p/abc.jpg");
    assert_eq!(media.name.as_deref(), Some("abc.jpg"));
    assert_eq!(media.declared_type.as_deref(), Some("image"));
    assert_eq!(media.kind, MediaKind::Photo);
    assert_eq!(e.sources.media_url.as_deref(), Some("message.file.url"));
}

#[test]
fn a_file_without_text_is_forwarded() {
    let body = json!({"event": "channel.message.created", "data": {
        "destination": "from_operator", "user": {"phone": "79991234567"},
        "message": {"type": "file", "text": "", "file": {"url": "https://f.example/a/report.PDF?x=1"}}}});
    let events = read_default(&body);
    assert_eq!(events[0].decision, Decision::Forward);
    assert_eq!(events[0].text.as_deref(), Some(""));
    let kind = events[0].media.as_ref().map(|m| m.kind);
    assert_eq!(kind, Some(MediaKind::Document));
}

#[test]
fn a_file_url_must_be_a_web_url() {
    for url in [
        "/files/a.jpg",
        "ftp://f.example/a.jpg",
        "https://",
        "",
        "javascript:alert(1)",
    ] {
        let body = json!({"data": {"destination": "operator", "user": {"phone": "79991234567"},
            "message": {"text": " ", "file": {"url": url}}}});
        let events = read_default(&body);
        assert_eq!(events[0].media, None, "{url}");
        assert_eq!(events[0].decision, Decision::IgnoreEmpty, "{url}");
    }
}

#[test]
fn media_kind_comes_from_the_declared_type_then_the_extension() {
    let url = "https://f.example/x";
    assert_eq!(media_kind(Some("image"), None, url), MediaKind::Photo);
    assert_eq!(media_kind(Some("PHOTO"), None, url), MediaKind::Photo);
    assert_eq!(media_kind(Some("image/jpeg"), None, url), MediaKind::Photo);
    assert_eq!(media_kind(Some("document"), None, url), MediaKind::Document);
    assert_eq!(media_kind(None, Some("a.JPEG"), url), MediaKind::Photo);
    assert_eq!(
        media_kind(None, Some("a.pdf"), "https://f.example/a.png"),
        MediaKind::Document
    );
    assert_eq!(
        media_kind(None, Some("a"), "https://f.example/a.webp"),
        MediaKind::Photo
    );
    assert_eq!(
        media_kind(None, None, "https://f.example/p/a.png?s=1#f"),
        MediaKind::Photo
    );
    assert_eq!(
        media_kind(None, None, "https://f.example/p.png/a"),
        MediaKind::Document
    );
    assert_eq!(
        media_kind(None, None, "https://f.example/.png"),
        MediaKind::Document
    );
    assert_eq!(
        media_kind(Some("video"), None, "https://f.example/a.mp4"),
        MediaKind::Document
    );
}

#[test]
fn html_like_text_is_kept_literally() {
    let e = only_event("11-html-like-text.json");
    assert_eq!(
        e.text.as_deref(),
        Some("Цена <b>2500</b> & скидка 10% <script>alert(1)</script>")
    );
}

#[test]
fn long_text_is_kept_whole() {
    let body = load("12-long-text.json");
    let written = body["data"]["message"]["text"].as_str().unwrap_or_default();
    assert!(written.chars().count() > 4096);
    let e = only_event("12-long-text.json");
    assert_eq!(e.text.as_deref(), Some(written));
    assert_eq!(e.decision, Decision::Forward);
}

#[test]
fn overriding_a_path_changes_the_reading() {
    let body = json!({"event": "channel.message.created", "data": {
        "destination": "from_operator", "client": {"tel": "8 999 123 45 67"},
        "message": {"text": "Готово"}}});
    let before = read_default(&body);
    assert_eq!(before[0].decision, Decision::NoPhone);

    let paths = Paths {
        phone: list("user.phone, client.tel"),
        ..Paths::default()
    };
    let after = read(&body, &paths);
    assert_eq!(after[0].decision, Decision::Forward);
    assert_eq!(after[0].phone, Some(phone("+79991234567")));
    assert_eq!(after[0].sources.phone.as_deref(), Some("client.tel"));
}

#[test]
fn overriding_direction_and_text_paths() {
    let body = json!({"data": {"who": "operator", "body": ["x", {"t": "Привет"}],
        "user": {"phone": "79991234567"}}});
    assert_eq!(read_default(&body)[0].decision, Decision::IgnoreNotMessage);
    let paths = Paths {
        direction: list("who"),
        text: list("body.1.t"),
        ..Paths::default()
    };
    let e = &read(&body, &paths)[0];
    assert_eq!(e.decision, Decision::Forward);
    assert_eq!(e.text.as_deref(), Some("Привет"));
}

#[test]
fn paths_may_be_written_with_the_envelope_prefix() {
    let body = load("01-event-data-operator.json");
    let paths = Paths {
        phone: list("data.user.phone"),
        text: list("payload.message.text"),
        ..Paths::default()
    };
    let e = &read(&body, &paths)[0];
    assert_eq!(e.decision, Decision::Forward);
    assert_eq!(e.sources.phone.as_deref(), Some("data.user.phone"));

    // An inner object that really has a `data` key is read literally.
    let inner = json!({"data": {"x": 1}, "user": {"phone": "1"}});
    let path = FieldPath::parse("data.user.phone").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(path.lookup(&inner), None);
}

#[test]
fn numbers_are_accepted_as_strings() {
    let body = json!({"event": "channel.message.created", "data": {
        "message_id": 90000001, "destination": "from_operator",
        "user": {"phone": 79991234567_u64}, "message": {"text": 42}}});
    let e = &read_default(&body)[0];
    assert_eq!(e.message_id.as_deref(), Some("90000001"));
    assert_eq!(e.phone, Some(phone("+79991234567")));
    assert_eq!(e.text.as_deref(), Some("42"));
    assert_eq!(e.decision, Decision::Forward);
}

#[test]
fn the_first_value_that_is_a_phone_wins() {
    let body = json!({"data": {"destination": "operator", "message": "Да",
        "user": {"phone": "", "uid2": "tg:5213874096", "uid": "+7 999 123-45-67"}}});
    let e = &read_default(&body)[0];
    assert_eq!(e.phone, Some(phone("+79991234567")));
    assert_eq!(e.sources.phone.as_deref(), Some("user.uid"));

    let body = json!({"data": {"destination": "operator", "message": "Да",
        "user": {"uid2": "tg:5213874096"}}});
    let e = &read_default(&body)[0];
    assert_eq!(e.phone, None);
    assert_eq!(e.phone_raw.as_deref(), Some("tg:5213874096"));
    assert_eq!(e.decision, Decision::NoPhone);
}

#[test]
fn the_first_non_blank_value_wins() {
    let body = json!({"data": {"destination": "", "direction": "operator",
        "message": {"text": "  ", "message": "Текст"}, "user": {"phone": "79991234567"}}});
    let e = &read_default(&body)[0];
    assert_eq!(e.direction, Direction::Operator);
    assert_eq!(e.text.as_deref(), Some("Текст"));
    assert_eq!(e.decision, Decision::Forward);
}

#[test]
fn the_senders_phone_is_the_customers_only_in_the_customers_message() {
    let amojo = |destination: &str| {
        json!({"event_type": "new_message", "payload": {"destination": destination,
            "sender": {"profile": {"phone": "+79990000001"}},
            "message": {"text": "Текст"}}})
    };
    let operator = &read_default(&amojo("from_operator"))[0];
    assert_eq!(
        operator.phone, None,
        "the sender of an outgoing message is the business"
    );
    assert_eq!(operator.decision, Decision::NoPhone);
    let customer = &read_default(&amojo("from_user"))[0];
    assert_eq!(customer.phone, Some(phone("+79990000001")));
    assert_eq!(customer.decision, Decision::IgnoreNotOperator);
}

#[test]
fn every_envelope_shape_is_read() {
    let inner =
        json!({"destination": "operator", "user": {"phone": "79991234567"}, "message": "Да"});
    let bodies = [
        json!({"event": "e", "data": inner}),
        json!({"action": "e", "payload": inner}),
        json!({"event_type": "e", "payload": inner}),
        json!([{"event": "e", "data": inner}]),
        json!({"event": "e", "data": [inner]}),
        json!({"event": "e", "data": inner.to_string()}),
    ];
    for body in &bodies {
        let events = read_default(body);
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0].decision, Decision::Forward, "{body}");
        assert_eq!(events[0].name.as_deref(), Some("e"), "{body}");
    }
    let flat =
        json!({"destination": "operator", "user": {"phone": "79991234567"}, "message": "Да"});
    let events = read_default(&flat);
    assert_eq!(events[0].decision, Decision::Forward);
    assert_eq!(events[0].name, None);
}

#[test]
fn lists_are_read_in_order_with_bad_items_in_place() {
    let body = json!([
        {"event": "a", "data": [
            {"destination": "operator", "user": {"phone": "79990000001"}, "message": "1"},
            7,
            {"destination": "operator", "user": {"phone": "79990000002"}, "message": "2"}
        ]},
        "garbage",
        {"event": "b", "payload": {"destination": "operator", "user": {"phone": "79990000003"}, "message": "3"}}
    ]);
    let events = read_default(&body);
    let decisions: Vec<Decision> = events.iter().map(|e| e.decision).collect();
    assert_eq!(
        decisions,
        [
            Decision::Forward,
            Decision::Unreadable,
            Decision::Forward,
            Decision::Unreadable,
            Decision::Forward
        ]
    );
    let texts: Vec<_> = events.iter().map(|e| e.text.as_deref()).collect();
    assert_eq!(texts, [Some("1"), None, Some("2"), None, Some("3")]);
    assert_eq!(events[1].name.as_deref(), Some("a"));
    assert!(events[3].problem.is_some());
}

#[test]
fn garbage_is_unreadable_or_ignored_never_a_panic() {
    for body in [
        json!(null),
        json!(42),
        json!(-1.5),
        json!(true),
        json!("text"),
        json!([[1, 2], null]),
        json!({"event": "x", "data": null}),
        json!({"event": "x", "data": 5}),
        json!({"event": "x", "payload": "not json"}),
        json!({"event": "x", "payload": "\"a json string\""}),
    ] {
        let events = read_default(&body);
        assert!(!events.is_empty(), "{body}");
        assert!(
            events
                .iter()
                .all(|e| e.decision == Decision::Unreadable && e.problem.is_some()),
            "{body}: {events:?}"
        );
    }
    assert!(read_default(&json!([])).is_empty());
    assert!(read_default(&json!({"event": "x", "data": []})).is_empty());
    let empty = read_default(&json!({}));
    assert_eq!(empty[0].decision, Decision::IgnoreNotMessage);
    let wrong_types = json!({"data": {"destination": ["operator"], "user": {"phone": {"n": 1}},
        "message": {"text": null}, "id": true}});
    let e = &read_default(&wrong_types)[0];
    assert_eq!(e.direction, Direction::Absent);
    assert_eq!(
        (&e.phone_raw, &e.text, &e.message_id),
        (&None, &None, &None)
    );
}

#[test]
fn deep_nesting_is_harmless() {
    let mut deep = json!("from_operator");
    for i in 0..1_000 {
        deep = if i % 2 == 0 {
            json!({"destination": deep, "message": "x"})
        } else {
            json!([deep, {"message": "y"}])
        };
    }
    let body = json!({"event": "x", "data": deep});
    let events = read_default(&body);
    assert_eq!(events[0].direction, Direction::Absent);

    let text = format!("{}1{}", "[".repeat(120), "]".repeat(120));
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        assert_eq!(read_default(&value).len(), 1);
    }
}

#[test]
fn directions_are_classified() {
    for raw in ["from_operator", "operator", "FROM_OPERATOR", " Operator "] {
        assert_eq!(Direction::classify(Some(raw)), Direction::Operator, "{raw}");
    }
    for raw in [
        "from_user",
        "user",
        "from_client",
        "client",
        "incoming",
        "INCOMING",
    ] {
        assert_eq!(Direction::classify(Some(raw)), Direction::Customer, "{raw}");
    }
    assert_eq!(Direction::classify(Some("")), Direction::Empty);
    assert_eq!(Direction::classify(Some("  ")), Direction::Empty);
    assert_eq!(Direction::classify(None), Direction::Absent);
    assert_eq!(
        Direction::classify(Some(" outgoing ")),
        Direction::Other("outgoing".to_owned())
    );
    let other = json!({"data": {"destination": "outgoing", "user": {"phone": "79991234567"}, "message": "Да"}});
    assert_eq!(
        read_default(&other)[0].decision,
        Decision::IgnoreNotOperator
    );
}

#[test]
fn decisions_have_stable_names() {
    let names: Vec<&str> = Decision::ALL.iter().map(|d| d.as_str()).collect();
    assert_eq!(
        names,
        [
            "forward",
            "no_phone",
            "ignore_empty",
            "ignore_not_operator",
            "ignore_not_message",
            "unreadable"
        ]
    );
    assert_eq!(Decision::NoPhone.to_string(), "no_phone");
}

#[test]
fn default_paths_are_every_place_known() {
    let paths = Paths::default();
    let joined = |list: &[FieldPath]| Paths::join(list);
    assert_eq!(joined(&paths.direction), "destination, direction");
    assert_eq!(
        joined(&paths.text),
        "message, message.text, message.message"
    );
    assert_eq!(
        joined(&paths.phone),
        "user.phone, user.uid2, user.uid, contact.phone, receiver.profile.phone"
    );
    assert_eq!(
        joined(&paths.customer_phone),
        "user.phone, user.uid2, user.uid, contact.phone, sender.profile.phone"
    );
    assert_eq!(
        joined(&paths.message_id),
        "message_id, id, wahelp_id, message.message_id, message.id, message.wahelp_id, msgid"
    );
    assert_eq!(
        joined(&paths.channel),
        "channel.alias, channel.name, channel.uuid, channel.id, channel"
    );
    assert_eq!(joined(&paths.status), "status, state, message.status");
    assert_eq!(paths.media_url.len(), 8);
    assert_eq!(paths.media_name.len(), 8);
    assert_eq!(paths.media_type.len(), 7);
    assert_eq!(
        Paths::parse_list(&joined(&paths.phone)),
        Ok(paths.phone.clone())
    );
}

#[test]
fn path_lists_are_checked() {
    assert_eq!(
        list(" data.user.phone ,user.uid "),
        vec![
            FieldPath::parse("data.user.phone").unwrap_or_else(|e| panic!("{e}")),
            FieldPath::parse("user.uid").unwrap_or_else(|e| panic!("{e}")),
        ]
    );
    assert_eq!(Paths::parse_list(""), Err(PathError::EmptyList));
    assert_eq!(Paths::parse_list("  "), Err(PathError::EmptyList));
    assert_eq!(
        Paths::parse_list("a,,b"),
        Err(PathError::EmptyItem { position: 2 })
    );
    assert_eq!(
        Paths::parse_list("a, b,"),
        Err(PathError::EmptyItem { position: 3 })
    );
    let path = |p: &str| p.to_owned();
    assert_eq!(
        Paths::parse_list("a, user..phone"),
        Err(PathError::EmptySegment {
            path: path("user..phone")
        })
    );
    assert_eq!(
        FieldPath::parse(".a"),
        Err(PathError::EmptySegment { path: path(".a") })
    );
    assert_eq!(
        FieldPath::parse("a."),
        Err(PathError::EmptySegment { path: path("a.") })
    );
    assert_eq!(
        FieldPath::parse("user. phone"),
        Err(PathError::BadCharacter {
            path: path("user. phone")
        })
    );
    let long = vec!["a"; MAX_SEGMENTS + 1].join(".");
    assert_eq!(
        FieldPath::parse(&long),
        Err(PathError::TooDeep { path: long.clone() })
    );
    assert!(FieldPath::parse(&vec!["a"; MAX_SEGMENTS].join(".")).is_ok());
    assert_eq!(FieldPath::parse(""), Err(PathError::Empty));
    let error = Paths::parse_list("a,,b").err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("path number 2 in the list is empty (two commas, or one at an end)")
    );
}

#[test]
fn numeric_segments_index_arrays_and_name_object_keys() {
    let inner = json!({"a": [{"b": "x"}, {"b": "y"}], "o": {"0": "zero"}});
    let at = |p: &str| {
        FieldPath::parse(p)
            .unwrap_or_else(|e| panic!("{e}"))
            .lookup(&inner)
            .cloned()
    };
    assert_eq!(at("a.1.b"), Some(json!("y")));
    assert_eq!(at("a.2.b"), None);
    assert_eq!(at("a.-1.b"), None);
    assert_eq!(at("a.99999999999999999999999.b"), None);
    assert_eq!(at("o.0"), Some(json!("zero")));
    assert_eq!(at("a.b"), None);
}

#[test]
fn logs_see_masked_phones_and_no_text() {
    let e = only_event("02-action-payload-operator-string-message.json");
    let debug = format!("{e:?}");
    assert!(!debug.contains("123-45-67"), "{debug}");
    assert!(!debug.contains("+79991234567"), "{debug}");
    let summary = e.summary();
    assert!(summary.starts_with("decision=forward"), "{summary}");
    assert!(summary.contains("+7999***4567"), "{summary}");
    assert!(summary.contains("text_chars="), "{summary}");
    assert!(!summary.contains("химчистки"), "{summary}");
}

/// A value built by placing `leaf` at `path` (objects all the way down).
fn place(path: &FieldPath, leaf: Value) -> Value {
    path.segments
        .iter()
        .rev()
        .fold(leaf, |inner, key| json!({ key.as_str(): inner }))
}

/// Any JSON, biased towards the keys and values the reader looks at.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
        prop::sample::select(vec![
            "from_operator",
            "operator",
            "from_user",
            "",
            " ",
            "79991234567",
            "8 999 123 45 67",
            "https://f.example/a.jpg",
            "image",
            "{\"a\":1}",
            "[1]",
        ])
        .prop_map(Value::from),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "event",
            "action",
            "event_type",
            "data",
            "payload",
            "destination",
            "direction",
            "message",
            "text",
            "user",
            "phone",
            "uid2",
            "contact",
            "receiver",
            "sender",
            "profile",
            "id",
            "msgid",
            "file",
            "url",
            "name",
            "type",
            "channel",
            "status",
            "0",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,6}",
    ];
    leaf.prop_recursive(8, 128, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|map: BTreeMap<String, Value>| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every string in a payload, numbers as text, strings holding JSON opened too.
fn scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            out.push(s.clone());
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                scalars(&inner, out);
            }
        }
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| scalars(v, out)),
        Value::Object(map) => map.values().for_each(|v| scalars(v, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

proptest! {
    #[test]
    fn the_reader_never_invents_a_phone_a_text_or_an_id(body in arb_json()) {
        let mut found = Vec::new();
        scalars(&body, &mut found);
        for event in read_default(&body) {
            for value in [&event.text, &event.message_id, &event.phone_raw].into_iter().flatten() {
                prop_assert!(found.contains(value), "{value:?} is not in the payload");
            }
            if let Some(phone) = &event.phone {
                let raw = event.phone_raw.as_deref().map(digits).unwrap_or_default();
                let normal = digits(phone.as_str());
                prop_assert!(raw.ends_with(&normal[1..]), "{phone:?} is not {raw}");
            }
        }
    }

    #[test]
    fn any_json_is_read_without_panic(body in arb_json()) {
        for event in read_default(&body) {
            let _ = event.summary();
            let _ = format!("{event:?}");
            if event.decision == Decision::Forward {
                prop_assert!(event.phone.is_some());
                prop_assert!(event.has_text() || event.media.is_some());
                prop_assert_eq!(&event.direction, &Direction::Operator);
            }
            prop_assert_eq!(event.decision == Decision::Unreadable, event.problem.is_some());
        }
    }

    #[test]
    fn a_text_at_any_default_text_path_is_read_back_exactly(
        text in "\\PC{0,200}",
        which in 0usize..3,
        envelope in 0usize..4,
        id in any::<u64>(),
    ) {
        let paths = Paths::default();
        let path = &paths.text[which % paths.text.len()];
        let mut inner = place(path, json!(text));
        if let Value::Object(map) = &mut inner {
            map.insert("destination".into(), json!("from_operator"));
            map.insert("user".into(), json!({"phone": "79991234567"}));
            map.insert("message_id".into(), json!(id));
        }
        let body = match envelope {
            0 => json!({"event": "channel.message.created", "data": inner}),
            1 => json!({"action": "message", "payload": inner}),
            2 => json!({"event_type": "new_message", "payload": [inner]}),
            _ => json!([{"event": "channel.message.created", "data": inner}]),
        };
        let events = read_default(&body);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(events[0].text.as_deref(), Some(text.as_str()));
        prop_assert_eq!(events[0].sources.text.as_deref(), Some(path.as_str()));
        let id_text = id.to_string();
        prop_assert_eq!(events[0].message_id.as_deref(), Some(id_text.as_str()));
        let expected = if text.trim().is_empty() { Decision::IgnoreEmpty } else { Decision::Forward };
        prop_assert_eq!(events[0].decision, expected);
    }

    #[test]
    fn any_path_text_parses_or_is_refused(text in "\\PC{0,40}") {
        if let Ok(path) = FieldPath::parse(&text) {
            prop_assert_eq!(FieldPath::parse(path.as_str()), Ok(path.clone()));
            let _ = path.lookup(&json!({"a": [1, {"b": 2}]}));
        }
    }
}

#[test]
fn the_operator_values_are_configurable() {
    let body = json!({"event": "x", "data": {"direction": "Outgoing", "user": {"phone": "79991234567"}, "message": {"text": "Готово"}}});
    assert_eq!(read_default(&body)[0].decision, Decision::IgnoreNotOperator);
    let paths = Paths {
        operator_values: vec!["outgoing".into()],
        ..Paths::default()
    };
    let events = read(&body, &paths);
    assert_eq!(events[0].direction, Direction::Operator);
    assert_eq!(events[0].decision, Decision::Forward);
}
