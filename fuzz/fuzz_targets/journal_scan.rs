//! Scanning arbitrary bytes as a journal never panics, reports an end offset
//! inside the input, hands out only records whose frames it checked, and
//! accounts for every damaged stretch inside the input, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut last = 0u64;
    let scan = lab_journal::scan_from(data, 16, |offset, _record| {
        assert!(offset >= last);
        last = offset;
    })
    .expect("reading from memory cannot fail");
    let input_end = 16 + data.len() as u64;
    assert!(scan.end >= 16 && scan.end <= input_end);
    let mut prev_end = 16;
    for d in &scan.damage {
        assert!(d.offset >= prev_end && d.offset + d.dropped_bytes <= input_end);
        prev_end = d.offset + d.dropped_bytes;
    }
    if let Some(tail) = scan.tail_damage() {
        assert_eq!(tail.offset, scan.end);
    }
});
