//! A webhook call from Wahelp, after the HTTP layer authenticated it and
//! parsed its JSON: read every event, store the call and each manager
//! message as an input in one transaction, then apply the inputs behind
//! each customer's earlier ones. The HTTP answer waits only for the store.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use super::core::Core;
use super::route;
use crate::engine::{FileKind, FileLink};
use crate::outbox::{NewMessage, Payload};
use crate::phone::Phone;
use crate::store::{Fate, ManagerMessage, StoreError, WebhookCall};
use crate::wahelp::payload::{self, Decision, Event, MediaKind, Paths};
use crate::wahelp::secret;

/// What the bridge needs to read calls.
#[derive(Debug, Clone)]
pub struct Reader {
    pub paths: Paths,
    pub secret: String,
    /// Whether calls we do not consume are passed on.
    pub relay: bool,
}

/// Stores a call and applies the manager messages in it. Returns once the
/// call is durable (the HTTP layer then answers 200).
pub async fn accept(core: &Core, reader: &Reader, mut body: Value) -> Result<(), StoreError> {
    let events = payload::read(&body, &reader.paths);
    for e in &events {
        tracing::info!(event = %e.summary(), "webhook event");
    }
    secret::strip_token(&mut body, &reader.secret);
    let raw = body.to_string();
    let call = call(&events, raw, reader.relay, &core.admins);
    let relayed = call
        .extra
        .iter()
        .any(|m| matches!(m.payload, Payload::WebhookRelay { .. }));
    let admins = Arc::clone(&core.admins);
    let fates = core
        .db
        .run(move |s| s.accept_webhook(call, Utc::now(), &|phone| unknown_phone(phone, &admins)))
        .await?;
    let mut notices =
        !core.admins.is_empty() && events.iter().any(|e| e.decision == Decision::NoPhone);
    for fate in fates {
        match fate {
            Fate::Forwarded(input) => {
                metrics::counter!("flowbot_forwards_total", "direction" => "from_crm").increment(1);
                core.inject(input).await;
            }
            Fate::UnknownPhone(phone) => {
                tracing::warn!(phone = %phone.masked(), "manager wrote to a phone no customer has");
                notices |= !core.admins.is_empty();
            }
            Fate::Echo => tracing::debug!("webhook echo of our own message ignored"),
            Fate::Duplicate => tracing::info!("webhook message seen before; ignored"),
        }
    }
    if notices {
        core.wake_telegram.wake();
    }
    if relayed {
        core.wake_crm.wake();
    }
    Ok(())
}

/// The call as the store keeps it: each event's reading, each manager
/// message to forward, the admin notices and the relay (none of those
/// without `admins` and `relay`).
pub fn call(events: &[Event], body: String, relay: bool, admins: &[i64]) -> WebhookCall {
    let mut messages = Vec::new();
    let mut extra = Vec::new();
    for (i, e) in events.iter().enumerate() {
        match (&e.decision, &e.phone) {
            (Decision::Forward, Some(phone)) => messages.push(ManagerMessage {
                event: i,
                message_id: e.message_id.clone(),
                phone: phone.clone(),
                text: e.text.clone().unwrap_or_default(),
                file: e.media.as_ref().map(|m| FileLink {
                    url: m.url.clone(),
                    kind: match m.kind {
                        MediaKind::Photo => FileKind::Photo,
                        MediaKind::Document => FileKind::Document,
                    },
                }),
            }),
            (Decision::NoPhone, _) => {
                tracing::warn!(event = %e.summary(), "manager message without a usable phone");
                for &admin in admins {
                    extra.extend(route::admin_text(admin, &no_phone_text(e)));
                }
            }
            _ => {}
        }
    }
    let consumed = |e: &Event| {
        matches!(
            e.decision,
            Decision::Forward | Decision::NoPhone | Decision::IgnoreEmpty
        )
    };
    if relay && (events.is_empty() || !events.iter().all(consumed)) {
        extra.push(NewMessage {
            payload: Payload::WebhookRelay { body: body.clone() },
            customer_id: None,
            is_admin_notice: false,
        });
    }
    WebhookCall {
        body,
        reading: events.iter().map(reading).collect(),
        messages,
        extra,
    }
}

/// How one event was read, for `flowbot wahelp inspect` (phone masked).
pub fn reading(e: &Event) -> Value {
    json!({
        "event": e.name,
        "direction": e.direction_raw,
        "phone": e.phone.as_ref().map(Phone::masked).or_else(|| e.phone_raw.as_deref().map(secret::mask_phones)),
        "text": e.text,
        "message_id": e.message_id,
        "media": e.media.as_ref().map(|m| m.url.clone()),
        "status": e.status,
        "decision": e.decision.as_str(),
        "problem": e.problem,
        "from": {
            "direction": e.sources.direction,
            "text": e.sources.text,
            "phone": e.sources.phone,
            "message_id": e.sources.message_id,
            "media": e.sources.media_url,
        },
    })
}

fn no_phone_text(e: &Event) -> String {
    let shown = e
        .phone_raw
        .as_deref()
        .map_or_else(|| "нет".to_owned(), |raw| format!("«{raw}»"));
    format!(
        "⚠️ Менеджер написал ответ, но в уведомлении Wahelp не найден телефон клиента (найдено: {shown}), поэтому ответ не доставлен. \
         Проверьте WAHELP_PATH_PHONE: `flowbot wahelp inspect` покажет, что прислал Wahelp."
    )
}

fn unknown_phone(phone: &Phone, admins: &[i64]) -> Vec<NewMessage> {
    let text = format!(
        "⚠️ Менеджер ответил клиенту с номером {phone}, но такого клиента в боте нет. Ответ не доставлен."
    );
    admins
        .iter()
        .flat_map(|&admin| route::admin_text(admin, &text))
        .collect()
}
