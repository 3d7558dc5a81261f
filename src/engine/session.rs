//! What the engine knows about one customer between two inputs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::phone::Phone;

/// The customer's Telegram profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub telegram_id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

impl Customer {
    pub fn full_name(&self) -> String {
        match &self.last_name {
            Some(last) if !last.is_empty() => format!("{} {last}", self.first_name),
            _ => self.first_name.clone(),
        }
    }
}

/// One line of the bonus ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BonusEntry {
    pub delta: i64,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A text written before the phone was known, kept to be forwarded later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldMessage {
    pub text: String,
    pub received_at: DateTime<Utc>,
}

/// The customer as the engine sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub customer: Customer,
    pub registered_at: Option<DateTime<Utc>>,
    pub phone: Option<Phone>,
    /// The state's name (names survive a reload; indexes would not).
    pub state: String,
    /// Talking with a manager until then.
    pub manager_until: Option<DateTime<Utc>>,
    /// When each throttled action (`at_most_every`) last ran.
    pub throttle: BTreeMap<String, DateTime<Utc>>,
    pub bonuses: Vec<BonusEntry>,
    pub welcome_granted: bool,
    pub held: Vec<HeldMessage>,
    pub blocked_since: Option<DateTime<Utc>>,
}

impl Session {
    pub fn new(customer: Customer, start_state: &str) -> Session {
        Session {
            customer,
            registered_at: None,
            phone: None,
            state: start_state.to_owned(),
            manager_until: None,
            throttle: BTreeMap::new(),
            bonuses: Vec::new(),
            welcome_granted: false,
            held: Vec::new(),
            blocked_since: None,
        }
    }

    /// Whether the customer is talking with a manager at `now`.
    pub fn with_manager(&self, now: DateTime<Utc>) -> bool {
        self.manager_until.is_some_and(|until| until > now)
    }

    fn active(&self, now: DateTime<Utc>) -> impl Iterator<Item = &BonusEntry> {
        self.bonuses
            .iter()
            .filter(move |b| b.expires_at.is_none_or(|at| at > now))
    }

    /// The bonus balance at `now`: expired grants no longer count; never below zero.
    pub fn bonus_balance(&self, now: DateTime<Utc>) -> i64 {
        self.active(now).map(|b| b.delta).sum::<i64>().max(0)
    }

    /// When the earliest still-active expiring grant ends.
    pub fn bonus_expires(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.active(now)
            .filter(|b| b.delta > 0)
            .filter_map(|b| b.expires_at)
            .min()
    }
}
