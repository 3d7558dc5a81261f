//! The rule engine: given the flow, a customer's session and one input, decide the effects.
//!
//! [`step`] is a pure function. It reads no clock (the time is an argument),
//! touches no database and sends nothing; the adapters carry out its
//! [`Effect`]s and store the new [`Session`].
//!
//! ```
//! use chrono::Utc;
//! use flowbot::engine::{Customer, Effect, Input, Session, step};
//!
//! let source = std::fs::read_to_string("flows/default.yaml")?;
//! let flow = flowbot::flow::compile::load(&source).map_err(|r| r.render("flow", &source))?.flow;
//! let anna = Customer { telegram_id: 1, first_name: "Анна".into(), last_name: None, username: None };
//! let session = Session::new(anna, "main");
//!
//! let outcome = step(&flow, &session, &Input::text("Сколько стоит диван?"), Utc::now());
//! // No phone yet: the question is held, not lost, and the customer is asked for the phone.
//! assert!(outcome.effects.contains(&Effect::HoldMessage { text: "Сколько стоит диван?".into() }));
//! assert_eq!(outcome.session.held.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod effect;
mod input;
mod render;
mod run;
mod session;

pub use effect::Effect;
pub use input::{FileKind, FileLink, Input, MediaKind};
pub use run::{Outcome, step};
pub use session::{BonusEntry, Customer, HeldMessage, Session};

#[cfg(test)]
mod tests;
