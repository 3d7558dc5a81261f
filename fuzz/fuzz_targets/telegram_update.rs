//! Any bytes as a Telegram update (the inbox's raw JSON): classified or
//! ignored, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = serde_json::from_slice::<teloxide::types::Update>(data) {
        let _ = flowbot::telegram::update::classify(&update, "cleaning_bot");
        let _ = flowbot::telegram::update::chat_message(&update, "cleaning_bot");
    }
});
