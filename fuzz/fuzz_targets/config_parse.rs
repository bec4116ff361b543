//! Any bytes as an ldirectord.cf: reading never panics, the hand-written line splitter agrees
//! with the grammar, and whatever reads cleanly renders to a file that reads back to the same
//! model.
#![no_main]

use std::path::Path;

use ldirectord::config::{self, FakeHost};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let host = FakeHost::default();
    let file = Path::new("fuzz.cf");
    assert!(config::structure_matches_grammar(&String::from_utf8_lossy(data)));
    if let Ok(loaded) = config::parse_bytes(data, file, &host) {
        let text = config::render(&loaded.config);
        let again = config::parse_str(&text, file, &host)
            .unwrap_or_else(|e| panic!("rendering does not read back:\n{text}\n{e}"));
        assert_eq!(loaded.config, again.config, "{text}");
    }
});
