//! Journal bytes that arrive from elsewhere (a team's server, sent by the
//! machine that ran the run): checking a stretch before it is kept, and
//! folding it into any index with the same [`Delta`] and the same
//! [`FoldIndex`] writes as a journal on disk.
//!
//! A received journal has no writer here: no lock, no process to ask after.
//! Its bytes come in order, whole frames only, each checked (length, CRC, a
//! record this Lab decodes) by `lab_journal`'s reader before it is kept; so
//! the fold reads them as a live journal and never finds damage in them. A
//! run stays `running` until its End record arrives, or until whoever
//! receives it says it crashed ([`fold_received`] with `settled`).
//!
//! A run's meta journal (`meta.lab`: its edits, made after it started) is
//! received the same way ([`check_received_meta`]) and folded after the
//! run's journal ([`fold_received_meta`]): its edits are applied over what
//! the journal says, and again after any later stretch of the journal that
//! sets what they set, so that an edit keeps the last word as it does in a
//! project on disk.

use std::collections::HashMap;
use std::path::PathBuf;

use lab_journal::{FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, MAGIC, MAX_PAYLOAD, Mode};
use lab_types::{Record, RunId};

use crate::delta::Delta;
use crate::fold_index::{FoldIndex, FoldWrite, Folded, Written};
use crate::{Error, RunPaths};

/// Why a stretch of received journal cannot be kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad journal bytes at offset {offset}: {reason}")]
pub struct BadFrame {
    /// The journal offset where the bad bytes start.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// Checks `bytes`, the journal of run `run` from offset `from` on (a frame
/// boundary: 0, or the end of what was kept before), and returns the offset
/// just past the last whole frame in them: what may be kept. A trailing
/// partial frame is left out (its sender sends it again, whole); a frame
/// with a bad length, a bad CRC or a record that does not decode is refused.
/// From offset 0 the bytes must start with a journal header and the run's
/// Start record.
pub fn check_received(run: &RunId, from: u64, bytes: &[u8]) -> Result<u64, BadFrame> {
    let (frames_at, frames) = past_header(from, bytes)?;
    let mut first: Option<Record> = None;
    let end = whole_frames(frames_at, frames, |_, record| {
        if first.is_none() {
            first = Some(record);
        }
    })?;
    if from == 0 {
        match first {
            Some(Record::Start { run: named, .. }) if named == *run => {}
            Some(Record::Start { run: named, .. }) => {
                return Err(bad(
                    HEADER_LEN as u64,
                    format!("the Start record names run `{named}`, not `{run}`"),
                ));
            }
            Some(_) => {
                return Err(bad(
                    HEADER_LEN as u64,
                    "the first record of a journal must be its Start record".into(),
                ));
            }
            None => {
                return Err(bad(
                    HEADER_LEN as u64,
                    "the first stretch of a journal must hold its whole Start record".into(),
                ));
            }
        }
    }
    Ok(end)
}

/// Checks `bytes`, a run's meta journal (`meta.lab`: its edits) from offset
/// `from` on, as [`check_received`] checks a journal, and returns the
/// offset just past the last whole frame in them. From offset 0 the bytes
/// start with a journal header (a header cut short is a meta journal being
/// made: nothing to keep yet); every record must be an edit (a new name, a
/// tag set or removed, a note, a group).
pub fn check_received_meta(from: u64, bytes: &[u8]) -> Result<u64, BadFrame> {
    if from == 0 && bytes.len() < HEADER_LEN && lab_journal::header().starts_with(bytes) {
        return Ok(0);
    }
    let (frames_at, frames) = past_header(from, bytes)?;
    let mut not_an_edit: Option<u64> = None;
    let end = whole_frames(frames_at, frames, |at, record| {
        if not_an_edit.is_none() && !is_edit(&record) {
            not_an_edit = Some(at);
        }
    })?;
    if let Some(at) = not_an_edit {
        return Err(bad(
            at,
            "a meta journal holds only edits (a name, tags set or removed, a note, a group); this record is none of them".into(),
        ));
    }
    Ok(end)
}

/// Whether `record` is one a meta journal holds (see `Edit::records`).
fn is_edit(record: &Record) -> bool {
    matches!(
        record,
        Record::Rename { .. }
            | Record::Tag { .. }
            | Record::Untag { .. }
            | Record::Note { .. }
            | Record::SetGroup { .. }
    )
}

fn bad(offset: u64, reason: String) -> BadFrame {
    BadFrame { offset, reason }
}

/// Where the frames of `bytes` (a journal from offset `from` on) start, and
/// they: past the journal's header, checked, when `from` is 0.
fn past_header(from: u64, bytes: &[u8]) -> Result<(u64, &[u8]), BadFrame> {
    if from == 0 {
        if bytes.len() < HEADER_LEN {
            return Err(bad(
                0,
                format!(
                    "a journal starts with its {HEADER_LEN}-byte header; got {} bytes",
                    bytes.len()
                ),
            ));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if &bytes[..8] != MAGIC {
            return Err(bad(
                0,
                "the journal header's magic bytes are missing".into(),
            ));
        }
        if version != FORMAT_VERSION {
            return Err(bad(
                0,
                format!(
                    "journal format version {version}; this Lab reads version {FORMAT_VERSION}"
                ),
            ));
        }
        Ok((HEADER_LEN as u64, &bytes[HEADER_LEN..]))
    } else if from < HEADER_LEN as u64 {
        Err(bad(from, "an offset inside the journal header".into()))
    } else {
        Ok((from, bytes))
    }
}

/// Reads the whole frames of `frames` (whose first byte is at offset
/// `frames_at`) with the journal's reader, calling `visit` with each record,
/// and returns the offset just past the last of them; a bad frame is
/// refused, a trailing partial one left out.
fn whole_frames(
    frames_at: u64,
    frames: &[u8],
    visit: impl FnMut(u64, Record),
) -> Result<u64, BadFrame> {
    let scan = lab_journal::scan_from_as(frames, frames_at, Mode::Live, visit)
        .map_err(|e| bad(frames_at, e.to_string()))?;
    // Where the whole frames stop: the rest is a frame on its way, or bad.
    let rest = &frames[(scan.end - frames_at) as usize..];
    if let Some(reason) = refused_rest(rest, scan.damage.first().map(|d| d.reason.as_str())) {
        return Err(bad(scan.end, reason));
    }
    Ok(scan.end)
}

/// Why the bytes after the last whole frame are refused, if they are: they
/// may only be the start of a frame whose end is still to come.
fn refused_rest(rest: &[u8], reason: Option<&str>) -> Option<String> {
    if rest.is_empty() || rest.len() < 4 {
        return None;
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if len == 0 {
        return Some("a frame length of zero (reserved space is never sent)".into());
    }
    if len > MAX_PAYLOAD {
        return Some(format!("frame length {len} is over the limit"));
    }
    if rest.len() < FRAME_HEADER_LEN + len {
        return None;
    }
    Some(reason.unwrap_or("a bad frame").to_owned())
}

/// What [`fold_received`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldedReceived {
    /// The bytes were folded.
    Folded,
    /// The index held them already (folded before, and acknowledged late).
    AlreadyFolded,
}

/// Folds `bytes`, whole frames that [`check_received`] passed, of the
/// journal of run `run` from offset `from` on, into `index`. `settled` says
/// no more will come (the run crashed, as its sender found): a run without
/// an End record is then no longer `running`. The index must hold the run's
/// journal up to `from` exactly (or already up to the end of `bytes`).
///
/// A stretch that sets what the run's edits also set (its name, tags, note,
/// group: [`Delta::touches_edited`]) has the edits received before it
/// applied again after it, so that an edit keeps the last word whichever
/// arrives first: `held_meta(n)` gives them, the first `n` bytes of the
/// run's meta journal (all the index has folded), and is asked only then.
pub fn fold_received(
    index: &mut dyn FoldIndex,
    run: &RunId,
    from: u64,
    bytes: &[u8],
    settled: bool,
    held_meta: &mut dyn FnMut(u64) -> Result<Vec<u8>, Error>,
) -> Result<FoldedReceived, Error> {
    let short = run.short();
    let end = from + bytes.len() as u64;
    let paths = received_paths(&short);
    let id = run.to_string();
    loop {
        let before = index.indexed_id(&id)?;
        let offset = before.as_ref().map_or(0, |b| b.offset);
        if before.is_none()
            && !index.keys_by_id()
            && let Some(b) = index.indexed(&short)?
        {
            return Err(Error::OtherIndex {
                database: "index",
                message: format!(
                    "run `{run}` shares its short id `{short}` with run `{}`, indexed first",
                    b.id
                ),
                kind: crate::ErrorKind::InvalidInput,
            });
        }
        if offset >= end && !(settled && bytes.is_empty()) {
            return Ok(FoldedReceived::AlreadyFolded);
        }
        if offset != from {
            return Err(Error::OtherIndex {
                database: "index",
                message: format!(
                    "the index holds run `{run}` up to offset {offset}, not {from} where the bytes to fold start"
                ),
                kind: crate::ErrorKind::Internal,
            });
        }
        let mut keys: HashMap<u32, String> = match &before {
            Some(b) => index.metric_names(&b.id)?,
            None => HashMap::new(),
        };
        let mut delta = Delta::default();
        let (at, frames) = if from == 0 && bytes.len() >= HEADER_LEN {
            (HEADER_LEN as u64, &bytes[HEADER_LEN..])
        } else {
            (from, bytes)
        };
        lab_journal::scan_from_as(frames, at, Mode::Live, |at, record| {
            delta.add(at, record, &mut keys);
        })?;
        if before.is_none() && delta.start.is_none() {
            return Err(Error::OtherIndex {
                database: "index",
                message: format!("the journal of run `{run}` is folded before its Start record"),
                kind: crate::ErrorKind::InvalidInput,
            });
        }
        let edits = match &before {
            Some(b) if b.meta_len > 0 && delta.touches_edited() => {
                received_edits(&held_meta(b.meta_len)?)?
            }
            _ => None,
        };
        let write = FoldWrite {
            short_id: &short,
            id: &id,
            delta: &delta,
            folded: Folded {
                end_offset: end,
                settled,
                damage: &[],
                misfiled: None,
            },
            paths: &paths,
            edits: edits.as_ref().map(|(d, len)| (d, *len)),
        };
        match index.write_fold(before.as_ref(), &write, &mut || None)? {
            Written::Done { .. } => return Ok(FoldedReceived::Folded),
            Written::Raced => {}
        }
    }
}

/// Folds `meta`, the whole meta journal of run `run` as received so far
/// (from its header on, whole frames that [`check_received_meta`] passed),
/// into `index`: its edits applied over what the run's journal says, as a
/// local fold applies a run's `meta.lab`, and its length kept. The run must
/// be indexed (its Start record folded): before, its edits have nothing to
/// apply to.
pub fn fold_received_meta(
    index: &mut dyn FoldIndex,
    run: &RunId,
    meta: &[u8],
) -> Result<FoldedReceived, Error> {
    let Some((edits, len)) = received_edits(meta)? else {
        return Ok(FoldedReceived::AlreadyFolded);
    };
    let short = run.short();
    let paths = received_paths(&short);
    let id = run.to_string();
    let delta = Delta::default();
    loop {
        let Some(before) = index.indexed_id(&id)? else {
            return Err(Error::OtherIndex {
                database: "index",
                message: format!(
                    "the edits of run `{run}` are folded before its journal's Start record"
                ),
                kind: crate::ErrorKind::InvalidInput,
            });
        };
        if before.meta_len >= len {
            return Ok(FoldedReceived::AlreadyFolded);
        }
        // No journal bytes: the run's progress is written back as it was.
        let write = FoldWrite {
            short_id: &short,
            id: &id,
            delta: &delta,
            folded: Folded {
                end_offset: before.offset,
                settled: before.complete,
                damage: &[],
                misfiled: None,
            },
            paths: &paths,
            edits: Some((&edits, len)),
        };
        match index.write_fold(Some(&before), &write, &mut || None)? {
            Written::Done { .. } => return Ok(FoldedReceived::Folded),
            Written::Raced => {}
        }
    }
}

/// The edits of `meta`, a received meta journal from its header on (whole
/// frames), summed up, and its length; `None` when it is empty.
fn received_edits(meta: &[u8]) -> Result<Option<(Delta, u64)>, Error> {
    let mut records = Vec::new();
    received_records(0, meta, |record| records.push(record))?;
    Ok(crate::fold::sum_edits(records, meta.len() as u64))
}

/// The files of a received run: not a folder on disk. Nothing is ever cut
/// off a received journal, and no piece of one is looked for there.
fn received_paths(short: &str) -> RunPaths {
    RunPaths::new(PathBuf::from(format!("/nonexistent/lab-received/{short}")))
}

/// Calls `f` with each metric event of `bytes`, whole frames of a received
/// journal from offset `from` on (0: the header first): reading a metric's
/// points back from a journal kept elsewhere, one stretch at a time.
pub fn received_metric_events(
    from: u64,
    bytes: &[u8],
    mut f: impl FnMut(crate::MetricEvent),
) -> Result<(), Error> {
    received_records(from, bytes, |record| crate::metric_events(record, &mut f))
}

/// Calls `f` with each console event of `bytes`, whole frames of a received
/// journal from offset `from` on (0: the header first), as
/// [`received_metric_events`] does for metrics.
pub fn received_console_events(
    from: u64,
    bytes: &[u8],
    mut f: impl FnMut(crate::ConsoleEvent),
) -> Result<(), Error> {
    received_records(from, bytes, |record| crate::console_events(record, &mut f))
}

/// Calls `f` with each record of `bytes`, whole frames of a received
/// journal from offset `from` on (0: the header first).
fn received_records(from: u64, bytes: &[u8], mut f: impl FnMut(Record)) -> Result<(), Error> {
    let (at, frames) = if from == 0 && bytes.len() >= HEADER_LEN {
        (HEADER_LEN as u64, &bytes[HEADER_LEN..])
    } else {
        (from, bytes)
    };
    lab_journal::scan_from_as(frames, at, Mode::Live, |_, record| f(record))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as the journal format lays it out (`docs/journal-format.md`).
    fn frame(record: &Record) -> Vec<u8> {
        let mut payload = Vec::new();
        lab_journal::codec::encode(record, &mut payload);
        let mut out = Vec::new();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn journal(run: RunId) -> (Vec<u8>, usize) {
        let mut bytes = lab_journal::header().to_vec();
        bytes.extend(frame(&Record::Start {
            run,
            time_nanos: 1,
            experiment: "e".into(),
        }));
        let start_end = bytes.len();
        bytes.extend(frame(&Record::Tag {
            time_nanos: 2,
            key: "k".into(),
            value: "v".into(),
        }));
        (bytes, start_end)
    }

    #[test]
    fn whole_frames_are_kept_and_a_trailing_partial_frame_is_left_out() {
        let run = RunId::new(1_800_000_000_000_000_000, 7);
        let (bytes, start_end) = journal(run);
        assert_eq!(check_received(&run, 0, &bytes), Ok(bytes.len() as u64));
        assert_eq!(
            check_received(&run, 0, &bytes[..bytes.len() - 1]),
            Ok(start_end as u64)
        );
        assert_eq!(
            check_received(&run, start_end as u64, &bytes[start_end..start_end + 3]),
            Ok(start_end as u64)
        );
    }

    #[test]
    fn console_records_are_taken_like_any_other() {
        let run = RunId::new(1_800_000_000_000_000_000, 7);
        let (mut bytes, _) = journal(run);
        bytes.extend(frame(&Record::Console {
            stream: lab_types::Stream::Stderr,
            lines: vec![lab_types::ConsoleLine {
                time_nanos: 3,
                text: "\u{1b}[31mred\u{1b}[0m".into(),
            }],
        }));
        bytes.extend(frame(&Record::ConsoleCut {
            time_nanos: 4,
            lines: 5,
            bytes: 6,
        }));
        assert_eq!(check_received(&run, 0, &bytes), Ok(bytes.len() as u64));
    }

    #[test]
    fn bad_frames_and_wrong_starts_are_refused() {
        let run = RunId::new(1_800_000_000_000_000_000, 7);
        let (bytes, start_end) = journal(run);
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let e = check_received(&run, 0, &flipped).unwrap_err();
        assert_eq!(e.offset, start_end as u64);
        assert!(e.reason.contains("CRC"), "{e}");
        let other = RunId::new(1_800_000_000_000_000_000, 8);
        assert!(
            check_received(&other, 0, &bytes)
                .unwrap_err()
                .reason
                .contains("names run")
        );
        assert!(check_received(&run, 0, &bytes[..20]).is_err());
        assert!(check_received(&run, 0, &bytes[start_end..]).is_err());
        // A frame length past the largest frame: not a frame on its way.
        let mut huge = bytes.clone();
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend([1u8; 8]);
        let e = check_received(&run, 0, &huge).unwrap_err();
        assert_eq!(e.offset, bytes.len() as u64);
        assert!(e.reason.contains("over the limit"), "{e}");
        let mut zeros = bytes.clone();
        zeros.extend([0u8; 16]);
        assert!(
            check_received(&run, 0, &zeros)
                .unwrap_err()
                .reason
                .contains("zero")
        );
    }

    /// A meta journal as `lab_journal::append_edits` writes it, after each
    /// of `edits` (one append each): its bytes and where each append ended.
    fn meta(edits: &[Vec<Record>]) -> (Vec<u8>, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.lab");
        let ends = edits
            .iter()
            .map(|e| lab_journal::append_edits(&path, e).unwrap())
            .collect();
        (std::fs::read(&path).unwrap(), ends)
    }

    #[test]
    fn a_meta_journal_is_kept_in_whole_frames_of_edits_only() {
        let (bytes, ends) = meta(&[
            vec![
                Record::Rename {
                    time_nanos: 5,
                    name: "a".into(),
                },
                Record::Untag {
                    time_nanos: 5,
                    key: "k".into(),
                },
            ],
            vec![Record::Note {
                time_nanos: 6,
                text: "why".into(),
            }],
        ]);
        let all = bytes.len() as u64;
        assert_eq!(check_received_meta(0, &bytes), Ok(all));
        // A trailing partial frame, or a header cut short, is left out.
        assert_eq!(
            check_received_meta(0, &bytes[..bytes.len() - 2]),
            Ok(ends[0])
        );
        assert_eq!(check_received_meta(0, &bytes[..9]), Ok(0));
        assert_eq!(
            check_received_meta(0, &bytes[..HEADER_LEN]),
            Ok(HEADER_LEN as u64)
        );
        let from = usize::try_from(ends[0]).unwrap();
        assert_eq!(check_received_meta(ends[0], &bytes[from..]), Ok(all));
        // Damage, and what is not a meta journal, is refused.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let e = check_received_meta(0, &flipped).unwrap_err();
        assert_eq!(e.offset, ends[0]);
        assert!(e.reason.contains("CRC"), "{e}");
        assert!(check_received_meta(0, b"not a journal at all").is_err());
        assert!(check_received_meta(3, &bytes[3..]).is_err());
        let run = RunId::new(1_800_000_000_000_000_000, 7);
        let (journal, _) = journal(run);
        let e = check_received_meta(0, &journal).unwrap_err();
        assert_eq!(e.offset, HEADER_LEN as u64);
        assert!(e.reason.contains("only edits"), "{e}");
        // Its edits, summed up as a local fold sums up the file's.
        let (edits, len) = received_edits(&bytes).unwrap().unwrap();
        assert_eq!(len, all);
        assert_eq!(edits.untags, vec!["k".to_owned()]);
        assert_eq!(edits.attrs.len(), 2);
        assert!(received_edits(&[]).unwrap().is_none());
    }
}
