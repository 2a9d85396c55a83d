//! Any payload decodes to a record or an error, never a panic; and a record
//! that decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = lab_journal::codec::decode(data) {
        let mut again = Vec::new();
        lab_journal::codec::encode(&record, &mut again);
        assert_eq!(again, data, "decode then encode changed the bytes");
    }
});
