//! Scanning arbitrary bytes as a journal never panics, reports an end offset
//! inside the input, and hands out only records whose frames it checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut last = 0u64;
    let scan = lab_journal::scan_from(data, 16, |offset, _record| {
        assert!(offset >= last);
        last = offset;
    })
    .expect("reading from memory cannot fail");
    assert!(scan.end >= 16 && scan.end <= 16 + data.len() as u64);
    if let Some(d) = scan.damage {
        assert_eq!(d.offset, scan.end);
        assert!(d.dropped_bytes <= data.len() as u64);
    }
});
