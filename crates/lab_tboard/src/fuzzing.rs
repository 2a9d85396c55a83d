//! The check of the `tfevents` fuzz target (`fuzz/`), here so that the tests
//! replay its corpus through the very same check on a stable compiler.

/// `tfevents`: reading any bytes as an event file never panics, never
/// allocates from a length it was given, and reports damage in order, inside
/// the input, at most [`MAX_DAMAGE`](crate::MAX_DAMAGE) of it, reading ending
/// at the first damage that ends it.
pub fn check_read(data: &[u8]) {
    let Ok(file) = crate::read_stream(data) else {
        return;
    };
    assert!(file.damage.len() <= crate::MAX_DAMAGE);
    let mut last = None;
    for (i, d) in file.damage.iter().enumerate() {
        assert!(d.offset() < data.len() as u64, "damage past the input: {d}");
        assert!(last.is_none_or(|l| d.offset() > l), "damage out of order");
        last = Some(d.offset());
        if d.ends_reading() {
            assert_eq!(i + 1, file.damage.len(), "damage after the end of reading");
        }
    }
    // Each record takes at least 16 bytes.
    assert!((file.records + file.skipped_records) * 16 <= data.len() as u64);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_tfevents_corpus_replays_cleanly() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tfevents");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            super::check_read(&std::fs::read(&path).unwrap());
            files += 1;
        }
        assert!(files >= 5, "only {files} files in {}", dir.display());
    }
}
