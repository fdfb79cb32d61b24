//! ATT&CK Navigator layers (one layer or an array), as the detection inventory reads `.json`
//! files. The inventory reads files as UTF-8 text, so other bytes never reach the reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hindsight::fuzzing::navigator_layer(text, "inventory/fuzz.layer.json");
    }
});
