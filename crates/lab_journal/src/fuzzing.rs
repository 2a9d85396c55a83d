//! The checks of the journal fuzz targets (`fuzz/`), here so that the tests
//! replay their corpora through the very same checks on a stable compiler.

/// `journal_decode`: any payload decodes to a record or an error, never a
/// panic; a record that decodes encodes back to the same bytes; and the
/// record at the start of any bytes is the one its length decodes to.
pub fn check_decode(data: &[u8]) {
    if let Ok(record) = crate::codec::decode(data) {
        let mut again = Vec::new();
        crate::codec::encode(&record, &mut again);
        assert_eq!(again, data, "decode then encode changed the bytes");
    }
    if let Ok((_, used)) = crate::codec::decode_prefix(data) {
        let record = crate::codec::decode(&data[..used]);
        assert!(record.is_ok(), "a prefix decoded alone fails: {record:?}");
    }
}

/// `journal_scan`: scanning any bytes as frames never panics, reports an end
/// offset inside the input, hands out records in order, and accounts for
/// every damaged stretch inside the input, in order, the tail last.
pub fn check_scan(data: &[u8]) {
    let start = crate::HEADER_LEN as u64;
    let mut last = 0u64;
    let scan = crate::scan_from(data, start, |offset, _record| {
        assert!(offset >= last, "records out of order");
        last = offset;
    })
    .unwrap_or_else(|e| panic!("reading from memory cannot fail: {e}"));
    let input_end = start + data.len() as u64;
    assert!(scan.end >= start && scan.end <= input_end);
    let mut previous_end = start;
    for d in &scan.damage {
        assert!(d.offset >= previous_end, "damage out of order");
        assert!(
            d.offset + d.dropped_bytes <= input_end,
            "damage past the input"
        );
        previous_end = d.offset + d.dropped_bytes;
    }
    if let Some(tail) = scan.tail_damage() {
        assert_eq!(
            tail.offset, scan.end,
            "the tail starts where good data ends"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of a fuzz target's corpus, through the target's check.
    fn replay(target: &str, check: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut files = 0;
        for entry in fs_err::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            check(&fs_err::read(&path).unwrap());
            files += 1;
        }
        assert!(files >= 10, "only {files} files in {}", dir.display());
    }

    #[test]
    fn the_journal_decode_corpus_replays_cleanly() {
        replay("journal_decode", super::check_decode);
    }

    #[test]
    fn the_journal_scan_corpus_replays_cleanly() {
        replay("journal_scan", super::check_scan);
    }
}
