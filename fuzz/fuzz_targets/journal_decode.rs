//! Any payload decodes to a record or an error, never a panic; and a record
//! that decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lab_journal::fuzzing::check_decode(data));
