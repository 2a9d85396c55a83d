//! Reading a run's journal for sending: only whole frames, from an offset.
//!
//! A live journal's acknowledged records end where [`lab_journal`]'s reader
//! stops in [`Mode::Live`]: at the first zero length (the writer has not
//! stored the next frame's length yet) or the first frame that is not whole
//! and sound. Reading settled journals the same way sends the sound prefix
//! of a damaged one and nothing the server would refuse.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use lab_journal::{FRAME_HEADER_LEN, HEADER_LEN, JournalError, Mode};
use lab_types::{Record, RunId};

use super::Error;
use super::http::MAX_FRAME_REQUEST;

/// What a scan of whole frames found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frames {
    /// Where the whole frames end.
    pub end: u64,
    /// The offset of an End record among them, if one was read.
    pub end_record: Option<u64>,
}

/// Scans the journal at `path` from `from` (0, or the end of a frame) to
/// the end of its whole frames.
pub fn whole_frames(path: &Path, from: u64) -> Result<Frames, JournalError> {
    let mut end_record = None;
    let scan = lab_journal::read_journal_as(path, from, Mode::Live, |at, record| {
        if matches!(record, Record::End { .. }) {
            end_record = Some(at);
        }
    })?;
    Ok(Frames {
        end: scan.end.max(from),
        end_record,
    })
}

/// Where the whole frames of the meta journal (`meta.lab`, a run's edits)
/// at `path` end: 0 when there is none, or nothing past its header. It is
/// read under the file's shared lock, so an edit being appended is waited
/// for (an editor holds the lock only while it writes and syncs); a torn
/// tail an editor left when it was killed is not read.
pub fn meta_end(path: &Path) -> Result<u64, Error> {
    let file = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    file.file().lock_shared()?;
    let scan = lab_journal::read_journal_as(path, 0, Mode::Live, |_, _| {})
        .map_err(|e| Error::Invalid(format!("its edits cannot be read: {e}")))?;
    Ok(if scan.end > HEADER_LEN as u64 {
        scan.end
    } else {
        0
    })
}

/// The run id in the Start record that opens the journal at `path`.
pub fn run_id(path: &Path) -> Result<Option<RunId>, JournalError> {
    let mut file = fs_err::File::open(path)?;
    let mut head = [0u8; HEADER_LEN];
    if file.read(&mut head)? < HEADER_LEN {
        return Ok(None);
    }
    // The Start record is a few hundred bytes at most: an id, a time and
    // an experiment's name.
    let mut id = None;
    lab_journal::scan_from_as(
        file.take(64 << 10),
        HEADER_LEN as u64,
        Mode::Live,
        |_, r| {
            if let (None, Record::Start { run, .. }) = (id, r) {
                id = Some(run);
            }
        },
    )?;
    Ok(id)
}

/// The bytes `[from, end)` of the journal at `path`, or fewer: at most
/// `max` bytes, cut after the last whole frame that fits. `from` and `end`
/// must be frame boundaries of whole frames (as [`whole_frames`] found
/// them; 0 counts as one). A frame longer than `max` alone is an error.
pub fn read_frames(path: &Path, from: u64, end: u64, max: usize) -> Result<Vec<u8>, Error> {
    let want = (end.saturating_sub(from)).min(max as u64) as usize;
    let mut file = fs_err::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = vec![0u8; want];
    file.read_exact(&mut bytes)?;
    if (end - from) as usize <= max {
        return Ok(bytes);
    }
    // Cut after the last frame that fits whole.
    let first = if from == 0 { HEADER_LEN } else { 0 };
    let mut pos = first;
    while let Some(head) = bytes.get(pos..pos + 4) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if pos + FRAME_HEADER_LEN + len > bytes.len() {
            break;
        }
        pos += FRAME_HEADER_LEN + len;
    }
    if pos == first {
        // One frame larger than a request: it goes alone, if the server
        // takes a request that large.
        let len = bytes
            .get(first..first + 4)
            .map_or(0, |h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        let alone = first + FRAME_HEADER_LEN + len;
        if alone > MAX_FRAME_REQUEST || (alone as u64) > end - from {
            return Err(Error::Invalid(format!(
                "a journal frame at offset {} is {alone} bytes, larger than the {MAX_FRAME_REQUEST} bytes a request may carry",
                from + first as u64
            )));
        }
        let mut whole = vec![0u8; alone];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut whole)?;
        return Ok(whole);
    }
    bytes.truncate(pos);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use lab_journal::JournalWriter;
    use lab_types::{MetricPoint, Status};

    use super::*;

    fn point(step: i64) -> MetricPoint {
        MetricPoint {
            key: 0,
            step,
            value: 0.5,
        }
    }

    fn start(w: &mut JournalWriter) -> RunId {
        let run = RunId::new(1_700_000_000_000_000_000, 0);
        w.append(&Record::Start {
            run,
            time_nanos: 1,
            experiment: "e".into(),
        })
        .unwrap();
        w.append(&Record::MetricKey {
            key: 0,
            name: "loss".into(),
        })
        .unwrap();
        run
    }

    #[test]
    fn a_live_journal_is_read_to_its_last_whole_frame_from_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.lab");
        let mut w = JournalWriter::create(&path).unwrap();
        let run = start(&mut w);
        // The file is megabytes of reserved space; the frames end early.
        let first = whole_frames(&path, 0).unwrap();
        assert!(first.end > HEADER_LEN as u64);
        assert!(std::fs::metadata(&path).unwrap().len() > first.end + 1000);
        assert_eq!(run_id(&path).unwrap(), Some(run));
        for step in 0..10 {
            w.append_metric(2, &point(step)).unwrap();
        }
        let more = whole_frames(&path, first.end).unwrap();
        assert_eq!(more.end, first.end + 10 * 37);
        assert_eq!(more.end_record, None);
        // From the start again: the same end.
        assert_eq!(whole_frames(&path, 0).unwrap().end, more.end);
        // Nothing new: the same end, from the end.
        assert_eq!(whole_frames(&path, more.end).unwrap().end, more.end);
        // A frame being written (its payload stored, not yet its length)
        // is not read: only what `append` acknowledged.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = more.end as usize;
        bytes[at + 4..at + 12].copy_from_slice(&[1, 2, 3, 4, 6, 0, 0, 0]);
        let copy = dir.path().join("copy.lab");
        std::fs::write(&copy, &bytes).unwrap();
        let _hold = std::fs::File::open(&copy).unwrap();
        assert_eq!(whole_frames(&copy, first.end).unwrap().end, more.end);
        w.append_final(&Record::End {
            time_nanos: 3,
            status: Status::Finished,
            error: None,
        })
        .unwrap();
        let ended = whole_frames(&path, more.end).unwrap();
        assert_eq!(ended.end_record, Some(more.end));
        w.close().unwrap();
        let closed = whole_frames(&path, 0).unwrap();
        assert_eq!(closed.end, std::fs::metadata(&path).unwrap().len());
    }

    fn rename(name: &str) -> Record {
        Record::Rename {
            time_nanos: 1,
            name: name.into(),
        }
    }

    #[test]
    fn a_meta_journal_is_read_to_its_last_whole_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.lab");
        // None yet, or only a header: nothing to send.
        assert_eq!(meta_end(&path).unwrap(), 0);
        std::fs::write(&path, lab_journal::header()).unwrap();
        assert_eq!(meta_end(&path).unwrap(), 0);
        std::fs::remove_file(&path).unwrap();
        let one = lab_journal::append_edits(&path, &[rename("a")]).unwrap();
        assert_eq!(meta_end(&path).unwrap(), one);
        let two = lab_journal::append_edits(&path, &[rename("b")]).unwrap();
        assert_eq!(meta_end(&path).unwrap(), two);
        // An editor killed inside its write leaves half a frame: not read.
        let mut torn = std::fs::read(&path).unwrap()[one as usize..two as usize].to_vec();
        torn.truncate(torn.len() - 3);
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &torn, two).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > two);
        assert_eq!(meta_end(&path).unwrap(), two);
        // The bytes up to there are whole frames, header first.
        let bytes = read_frames(&path, 0, two, 1 << 20).unwrap();
        assert_eq!(bytes.len() as u64, two);
        assert_eq!(&bytes[..8], lab_journal::MAGIC);
        // A file that is not a journal is said, naming it.
        std::fs::write(&path, b"not a journal at all, not at all").unwrap();
        let e = meta_end(&path).unwrap_err().to_string();
        assert!(
            e.contains("its edits cannot be read") && e.contains("meta.lab"),
            "{e}"
        );
    }

    #[test]
    fn bytes_are_cut_after_the_last_whole_frame_that_fits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.lab");
        let mut w = JournalWriter::create(&path).unwrap();
        start(&mut w);
        let head = whole_frames(&path, 0).unwrap().end;
        for step in 0..100 {
            w.append_metric(2, &point(step)).unwrap();
        }
        let end = whole_frames(&path, 0).unwrap().end;
        let all = read_frames(&path, 0, end, 1 << 20).unwrap();
        assert_eq!(all.len() as u64, end);
        assert_eq!(&all[..8], lab_journal::MAGIC);
        // 10 frames and a part of the 11th fit: the part stays behind.
        let some = read_frames(&path, head, end, 37 * 10 + 20).unwrap();
        assert_eq!(some.len(), 370);
        assert_eq!(some, all[head as usize..head as usize + 370]);
        // Nothing whole fits: the first frame goes alone.
        let alone = read_frames(&path, head, end, 20).unwrap();
        assert_eq!(alone, all[head as usize..head as usize + 37]);
        // From the start, the header and the frames that fit.
        let first = read_frames(&path, 0, end, head as usize + 40).unwrap();
        assert_eq!(first.len() as u64, head + 37);
    }

    #[test]
    fn a_frame_larger_than_a_request_goes_alone_up_to_the_servers_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.lab");
        let mut w = JournalWriter::create(&path).unwrap();
        start(&mut w);
        let head = whole_frames(&path, 0).unwrap().end;
        let big = |mb: usize| Record::Param {
            time_nanos: 2,
            key: "notes".into(),
            value: lab_types::Value::Str("x".repeat(mb << 20)),
        };
        w.append(&big(20)).unwrap();
        w.append_metric(2, &point(1)).unwrap();
        let end = whole_frames(&path, 0).unwrap().end;
        let first = read_frames(&path, head, end, 8 << 20).unwrap();
        assert!(first.len() > 20 << 20 && (first.len() as u64) < end - head - 30);
        // The rest, after it, goes as usual.
        let rest = read_frames(&path, head + first.len() as u64, end, 8 << 20).unwrap();
        assert_eq!(rest.len(), 37);
        // Past the server's limit, it is said.
        w.append(&big(70)).unwrap();
        let end2 = whole_frames(&path, 0).unwrap().end;
        let e = read_frames(&path, end, end2, 8 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bytes a request may carry"), "{e}");
    }
}
