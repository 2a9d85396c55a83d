//! A run's meta journal, `meta.lab`: the edits made to a run after it
//! started (a new name, tags set or removed, its note, its group), from any
//! process and at any time, the run's writer alive or not.
//!
//! It has the framing and codec of the training journal, but no single
//! writer and no memory map: each edit opens the file, takes its exclusive
//! `flock` for the moment it appends, cuts off a torn tail left by an editor
//! that was killed mid-write (nothing that was acknowledged: an edit is
//! acknowledged once its frames are synced), writes its frames in one
//! `write(2)` and syncs the file before returning. Readers read it like a
//! settled training journal, or stop at a torn frame while an edit is on its
//! way.

use std::os::unix::fs::FileExt as _;
use std::path::Path;

use lab_types::Record;

use crate::reader::{Mode, Scan, read_journal};
use crate::{HEADER_LEN, JournalError, header};

/// Appends `records` to the meta journal at `path`, creating it (with its
/// header) when it does not exist, and syncs it. Returns the journal's length
/// after the append.
pub fn append_edits(path: &Path, records: &[Record]) -> Result<u64, JournalError> {
    let frames = crate::writer::frames_of(records)?;
    let existed = path.exists();
    let file = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // Held until the frames are synced: edits from two processes never
    // interleave, and a reader that finds the lock free knows no edit is
    // half written.
    file.file().lock()?;
    let len = file.metadata()?.len();
    let end = if len < HEADER_LEN as u64 {
        // New, or its creation was cut short before the header was whole.
        file.set_len(0)?;
        file.file().write_all_at(&header(), 0)?;
        HEADER_LEN as u64
    } else {
        let scan = crate::read_journal_as(path, 0, Mode::Settled, |_, _| {})?;
        // A torn tail is an edit that was never acknowledged: it goes.
        if scan.end < len {
            file.set_len(scan.end.max(HEADER_LEN as u64))?;
        }
        scan.end.max(HEADER_LEN as u64)
    };
    file.file().write_all_at(&frames, end)?;
    file.file().sync_all()?;
    if !existed && let Some(dir) = path.parent() {
        // The file's name must survive a power cut too.
        fs_err::File::open(dir)?.sync_all()?;
    }
    Ok(end + frames.len() as u64)
}

/// Reads every edit of the meta journal at `path`, in the order made. A
/// missing journal has none. Returns the edits and the scan (its `end` is
/// how far the good frames reach).
pub fn read_edits(path: &Path) -> Result<(Vec<Record>, Scan), JournalError> {
    let mut records = Vec::new();
    match read_journal(path, 0, |_, r| records.push(r)) {
        Ok(scan) => Ok((records, scan)),
        Err(JournalError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            records,
            Scan {
                end: 0,
                records: 0,
                damage: Vec::new(),
            },
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn rename(name: &str) -> Record {
        Record::Rename {
            time_nanos: 1,
            name: name.into(),
        }
    }

    #[test]
    fn edits_are_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.lab");
        assert!(read_edits(&path).unwrap().0.is_empty());
        append_edits(&path, &[rename("a")]).unwrap();
        let len = append_edits(
            &path,
            &[
                rename("b"),
                Record::Untag {
                    time_nanos: 2,
                    key: "k".into(),
                },
            ],
        )
        .unwrap();
        assert_eq!(len, std::fs::metadata(&path).unwrap().len());
        let (records, scan) = read_edits(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], rename("a"));
        assert_eq!(records[1], rename("b"));
        assert_eq!(scan.end, len);
    }

    #[test]
    fn a_torn_tail_is_ignored_then_cut_by_the_next_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.lab");
        let good = append_edits(&path, &[rename("kept")]).unwrap();
        // An editor killed inside its write: half a frame.
        let mut frame = Vec::new();
        codec::encode(&rename("torn"), &mut frame);
        let mut torn = (frame.len() as u32).to_le_bytes().to_vec();
        torn.extend_from_slice(&crc32c::crc32c(&frame).to_le_bytes());
        torn.extend_from_slice(&frame[..frame.len() / 2]);
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all_at(&torn, good).unwrap();
        let (records, scan) = read_edits(&path).unwrap();
        assert_eq!(records, vec![rename("kept")]);
        assert_eq!(scan.end, good);
        append_edits(&path, &[rename("next")]).unwrap();
        let (records, scan) = read_edits(&path).unwrap();
        assert_eq!(records, vec![rename("kept"), rename("next")]);
        assert!(scan.damage.is_empty(), "{:?}", scan.damage);
    }

    #[test]
    fn a_header_cut_short_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.lab");
        std::fs::write(&path, &header()[..5]).unwrap();
        append_edits(&path, &[rename("a")]).unwrap();
        assert_eq!(read_edits(&path).unwrap().0, vec![rename("a")]);
    }
}
