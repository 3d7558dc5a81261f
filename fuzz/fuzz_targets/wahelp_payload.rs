//! Any bytes as a Wahelp webhook body: read into events (a forwarded one
//! always has a phone and something to send), and masked for the log and
//! the store, never a panic.
#![no_main]

use flowbot::wahelp::payload::{Decision, Paths, read};
use flowbot::wahelp::secret::{mask_phones, mask_query_token, strip_token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(data) {
        for event in read(&body, &Paths::default()) {
            let _ = event.summary();
            if event.decision == Decision::Forward {
                assert!(event.phone.is_some());
                assert!(event.has_text() || event.media.is_some());
            }
        }
        strip_token(&mut body, "s3cret");
        assert!(!body.to_string().contains("s3cret"));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mask_phones(text);
        assert!(!mask_query_token(text).contains("?token=s3cret&"));
    }
});
