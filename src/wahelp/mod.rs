//! The Wahelp adapter: the REST client that sends customers' words to the
//! CRM ([`client`]), and the reader of the webhook payloads in which Wahelp
//! tells us what a manager wrote ([`payload`]).
//!
//! It knows nothing of the store or of Telegram: the app wires it.

pub mod client;
pub mod payload;
pub mod secret;
