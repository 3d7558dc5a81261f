//! Filling a text's placeholders from the session, the input and the clock.

use chrono::{DateTime, Utc};

use super::session::Session;
use crate::flow::hours::{OpenStatus, describe_moment};
use crate::flow::model::Flow;
use crate::flow::template::{Placeholder, Template};

/// Everything a placeholder may read.
pub(super) struct Context<'a> {
    pub flow: &'a Flow,
    pub session: &'a Session,
    pub now: DateTime<Utc>,
    /// `{text}`: the customer's words, the caption, or the manager's reply.
    pub text: &'a str,
    /// `{media_kind}`, in words.
    pub media_kind: &'a str,
}

impl Context<'_> {
    pub fn render(&self, template: &Template) -> String {
        template.render(&|p| self.value(p))
    }

    fn value(&self, p: Placeholder) -> String {
        let customer = &self.session.customer;
        let business = &self.flow.business;
        match p {
            Placeholder::Name => customer.full_name(),
            Placeholder::FirstName => customer.first_name.clone(),
            Placeholder::Username => customer
                .username
                .as_ref()
                .map_or_else(|| "—".to_owned(), |u| format!("@{u}")),
            Placeholder::UserId => customer.telegram_id.to_string(),
            Placeholder::Phone => self
                .session
                .phone
                .as_ref()
                .map_or_else(|| "—".to_owned(), ToString::to_string),
            Placeholder::Bonus => self.session.bonus_balance(self.now).to_string(),
            Placeholder::BonusExpires => self.session.bonus_expires(self.now).map_or_else(
                || "—".to_owned(),
                |at| {
                    at.with_timezone(&business.timezone)
                        .format("%d.%m.%Y")
                        .to_string()
                },
            ),
            Placeholder::Text => self.text.to_owned(),
            Placeholder::MediaKind => self.media_kind.to_owned(),
            Placeholder::OpensAt | Placeholder::ClosesAt => self.next_change(p),
            Placeholder::Schedule => business.schedule.render(&business.words),
            Placeholder::WelcomeBonus => business.welcome_bonus.map_or(0, |w| w.amount).to_string(),
            Placeholder::WelcomeDays => business.welcome_bonus.map_or(0, |w| w.days).to_string(),
            Placeholder::Business => business.name.clone(),
        }
    }

    /// `{opens_at}` / `{closes_at}`: the next moment the business opens or closes.
    fn next_change(&self, p: Placeholder) -> String {
        let business = &self.flow.business;
        let local_now = self.now.with_timezone(&business.timezone);
        let moment = match (business.schedule.status(self.now, business.timezone), p) {
            (OpenStatus::OpenUntil(at), Placeholder::ClosesAt) => Some(at),
            (OpenStatus::ClosedUntil(at), Placeholder::OpensAt) => Some(at),
            _ => None,
        };
        moment.map_or_else(
            || "—".to_owned(),
            |at| describe_moment(at, local_now, &business.words),
        )
    }

    pub fn open_now(&self) -> bool {
        let business = &self.flow.business;
        matches!(
            business.schedule.status(self.now, business.timezone),
            OpenStatus::OpenUntil(_) | OpenStatus::AlwaysOpen
        )
    }
}
