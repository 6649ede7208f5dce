//! The Hotmart payload parser on arbitrary bytes: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((value, _)) = entity::hotmart::payload::parse_body(data) {
        let _ = entity::hotmart::payload::payload(&value);
        let _ = entity::deliveries::redacted_payload(&value.to_string());
    }
});
