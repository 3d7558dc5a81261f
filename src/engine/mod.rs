//! The rule engine: given the flow, a customer's session and one input, decide the effects.
//!
//! [`step`] is a pure function. It reads no clock (the time is an argument),
//! touches no database and sends nothing; the adapters carry out its
//! [`Effect`]s and store the new [`Session`].

mod effect;
mod input;
mod render;
mod run;
mod session;

pub use effect::Effect;
pub use input::{Input, MediaKind};
pub use run::{Outcome, step};
pub use session::{BonusEntry, Customer, HeldMessage, Session};

#[cfg(test)]
mod tests;
