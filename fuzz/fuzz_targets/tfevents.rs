//! Any bytes read as a TensorBoard event file give scalars and damage
//! reports, never a panic or an allocation sized by a length in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lab_tboard::fuzzing::check_read(data));
