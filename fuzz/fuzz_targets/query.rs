//! Any text is a query that parses, prints back to the same tree, compiles
//! and runs on a small index, or a clean query error with a caret; and the
//! same as a sort key. Never a panic, a stack overflow or SQLite's own error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        lab_store::query::fuzzing::check(text);
    }
});
