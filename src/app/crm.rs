//! Delivering CRM rows: a customer's words to the manager through Wahelp
//! (finding or creating the customer there once, then remembering their
//! Wahelp id), and webhook calls we did not consume to the relay URL.

use std::time::Duration;

use reqwest::Url;

use crate::liveness::Liveness;
use crate::outbox::{Delivered, DeliveryError, Payload, Transport};
use crate::store::{CrmContact, Db};
use crate::wahelp::client::{Client, Error as WahelpError, UserId};

/// How long a relay call may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(15);

pub struct CrmTransport {
    db: Db,
    wahelp: Client,
    relay: Option<Relay>,
    /// Whether Wahelp works, as the sends find it.
    liveness: Liveness,
}

struct Relay {
    http: reqwest::Client,
    url: Url,
}

impl CrmTransport {
    pub fn new(
        db: Db,
        wahelp: Client,
        relay_url: Option<Url>,
        liveness: Liveness,
    ) -> anyhow::Result<CrmTransport> {
        let relay = match relay_url {
            Some(url) => Some(Relay {
                http: reqwest::Client::builder()
                    .timeout(RELAY_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?,
                url,
            }),
            None => None,
        };
        Ok(CrmTransport {
            db,
            wahelp,
            relay,
            liveness,
        })
    }

    async fn send(&self, customer_id: i64, text: &str) -> Result<Delivered, DeliveryError> {
        let contact = self
            .db
            .run(move |s| s.crm_contact(customer_id))
            .await
            .map_err(|e| DeliveryError::Transient(format!("database: {e}")))?
            .ok_or_else(|| DeliveryError::Permanent(format!("no customer {customer_id}")))?;
        let user = self.user(&contact, false).await?;
        let sent = match self.observe(self.wahelp.send_text(&user, text).await) {
            // A remembered id the CRM no longer knows: look the customer up again, once.
            Err(WahelpError::Rejected { .. }) if contact.crm_user_id.is_some() => {
                tracing::warn!(
                    customer = customer_id,
                    "CRM refused the remembered user id; looking it up again"
                );
                let user = self.user(&contact, true).await?;
                self.observe(self.wahelp.send_text(&user, text).await)
            }
            other => other,
        }
        .map_err(|e| e.to_delivery_error())?;
        metrics::counter!("flowbot_forwards_total", "direction" => "to_crm").increment(1);
        if sent.message_id.is_none() {
            tracing::warn!(
                customer = customer_id,
                "CRM accepted a message without telling its id; its echo cannot be recognised"
            );
        }
        Ok(Delivered {
            remote_id: sent.message_id,
        })
    }

    /// The customer's Wahelp id: remembered, or found (created) and remembered.
    async fn user(&self, contact: &CrmContact, fresh: bool) -> Result<UserId, DeliveryError> {
        if let (Some(id), false) = (&contact.crm_user_id, fresh) {
            return Ok(UserId::new(id.clone()));
        }
        let phone = contact.phone.as_ref().ok_or_else(|| {
            DeliveryError::Permanent(format!("customer {} has no phone", contact.customer_id))
        })?;
        let user = self
            .observe(self.wahelp.find_or_create_user(phone, &contact.name).await)
            .map_err(|e| e.to_delivery_error())?;
        let (customer, id) = (contact.customer_id, user.as_str().to_owned());
        let saved = self
            .db
            .run(move |s| s.set_crm_user(customer, &id, chrono::Utc::now()))
            .await;
        if let Err(e) = saved {
            // Not fatal: the next send looks the customer up again.
            tracing::warn!(customer, error = %e, "cannot remember the CRM user id");
        }
        Ok(user)
    }

    /// Notes what a Wahelp answer says about Wahelp itself: any answer but
    /// an outage, a rate limit or refused credentials means it works (a
    /// refusal of one message is about that message).
    fn observe<T>(&self, result: Result<T, WahelpError>) -> Result<T, WahelpError> {
        match &result {
            Err(
                e @ (WahelpError::Transient { .. }
                | WahelpError::RateLimited { .. }
                | WahelpError::Auth { .. }),
            ) => self.liveness.failed(&e.to_string()),
            _ => self.liveness.ok(),
        }
        result
    }

    async fn relay(&self, body: &str) -> Result<Delivered, DeliveryError> {
        let Some(relay) = &self.relay else {
            return Err(DeliveryError::Permanent(
                "WAHELP_RELAY_URL is no longer set".into(),
            ));
        };
        let answer = relay
            .http
            .post(relay.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(format!("relay: {}", e.without_url())))?;
        let status = answer.status();
        if status.is_success() {
            Ok(Delivered::default())
        } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(DeliveryError::Transient(format!("relay answered {status}")))
        } else {
            Err(DeliveryError::Permanent(format!("relay answered {status}")))
        }
    }
}

impl Transport for CrmTransport {
    async fn deliver(&self, payload: &Payload) -> Result<Delivered, DeliveryError> {
        match payload {
            Payload::CrmText {
                customer_id, text, ..
            } => self.send(*customer_id, text).await,
            Payload::WebhookRelay { body } => self.relay(body).await,
            _ => Err(DeliveryError::Permanent(
                "a Telegram payload reached the CRM transport".into(),
            )),
        }
    }
}
