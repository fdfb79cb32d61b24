//! STIX 2.0 / 2.1 ATT&CK bundles: the streaming scanner, the per-object parse and the catalog
//! builder, as `hindsight catalog import` runs them.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hindsight::attack::stix::import_bytes(data, Path::new("fuzz.json"), Some("enterprise-attack-18.1.json"));
});
