//! Scanning arbitrary bytes as a journal never panics, reports an end offset
//! inside the input, hands out only records whose frames it checked, and
//! accounts for every damaged stretch inside the input, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lab_journal::fuzzing::check_scan(data));
