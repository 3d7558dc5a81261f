//! Any text typed as a phone number: parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(phone) = flowbot::phone::Phone::parse(text) {
        assert_eq!(flowbot::phone::Phone::parse(phone.as_str()).ok(), Some(phone));
    }
});
