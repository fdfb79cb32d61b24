//! Incident JSON as Microsoft Graph returns it, through both ways it comes in: one JSON value
//! read by `Incident::from_graph` (the Graph source), and a whole file read by the directory
//! source's `parse_file` (an incident, a Graph list, an array, or NDJSON).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = hindsight::model::Incident::from_graph(&v);
    }
    let _ = hindsight::source::directory::parse_file(data);
});
