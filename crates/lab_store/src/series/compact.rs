//! Giving back the journal's pages that its series file makes redundant.
//!
//! Once an ended run's series file is written, every point in it is checked
//! against its journal, point by point. If all match, the stretches of the
//! journal that hold points alone are listed beside it (`journal.lab.holes`,
//! see [`lab_journal::holes`]) and their whole pages punched out: the
//! journal keeps its length and every other frame where it was, and the
//! series file becomes where those points are kept. A crash at any step
//! leaves either the whole journal, or a list of stretches whose points the
//! series file holds, punched or not yet.

use std::collections::HashMap;
use std::fs::TryLockError;
use std::os::unix::fs::MetadataExt;

use lab_journal::holes::{self, Holes};
use lab_types::Record;

use super::codec::{Columns, Decoded};
use super::file::{JOURNAL_TAIL, MetricEntry, SeriesFile};
use crate::{Error, RunPaths};

/// Pages are punched whole.
const PAGE: u64 = 4096;

/// The file a team upload keeps its progress in: its journal is read from
/// offsets, so a run being sent keeps every byte.
const UPLOAD_STATE: &str = "upload.json";

/// What [`compact`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compacted {
    /// It punched `stretches` stretches, giving back `freed` bytes.
    Punched {
        /// Stretches of point frames listed.
        stretches: usize,
        /// Bytes the journal takes on disk less than before.
        freed: u64,
    },
    /// The journal's holes were made already.
    Current,
    /// It made none, for the reason given (the journal stays whole).
    Skipped(&'static str),
}

/// Punches the stretches of point frames out of the journal of the ended
/// run at `paths`, once its series file is checked to hold every one of
/// its points; see the module's documentation.
pub fn compact(paths: &RunPaths) -> Result<Compacted, Error> {
    let journal = match std::fs::File::open(&paths.journal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Compacted::Skipped("no journal"));
        }
        Err(e) => return Err(e.into()),
    };
    let len = journal.metadata()?.len();
    if len < holes::MIN_JOURNAL_BYTES {
        return Ok(Compacted::Skipped("a short journal"));
    }
    // Held while it is read, so that nothing changes it meanwhile.
    match journal.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Compacted::Skipped("a run still logging")),
        Err(TryLockError::Error(e)) => return Err(e.into()),
    }
    if paths.dir.join(UPLOAD_STATE).exists() {
        return Ok(Compacted::Skipped("a run sent to a team server"));
    }
    if crate::pieces::pieces(&paths.journal)?
        .iter()
        .any(|p| !p.salvaged)
    {
        return Ok(Compacted::Skipped("pieces cut off its journal, to salvage"));
    }
    let Some(series) = super::open(paths) else {
        return Ok(Compacted::Skipped(
            "no series file that matches the journal",
        ));
    };
    let Ok(listed) = holes::read_holes(&paths.journal, len) else {
        return Ok(Compacted::Skipped("a damaged list of holes"));
    };
    let (holes, made_now) = match listed {
        Some(h) if h.covered == len && h.journal_crc == series.journal_crc() => (h, false),
        Some(_) => {
            return Ok(Compacted::Skipped(
                "a journal changed since its holes were made",
            ));
        }
        None => match point_stretches(paths, &series, len)? {
            Ok(h) => (h, true),
            Err(why) => return Ok(Compacted::Skipped(why)),
        },
    };
    if made_now {
        // Written even when empty (no stretch spans a page): the journal
        // is then known to have nothing to give back, and is not read
        // through again by each `lab gc`.
        match holes::write_holes(&paths.journal, &holes) {
            // Only space is at stake, as for the series file: `lab gc` tries
            // again once there is room.
            Err(e) if super::is_full(&e) => return Ok(Compacted::Skipped("a full disk")),
            other => other?,
        }
    }
    if holes.stretches.is_empty() {
        return Ok(Compacted::Skipped("no stretch of points a page long"));
    }
    // Readers that opened the journal before the list was there hold their
    // lock: its pages are punched only once none does. A reader that comes
    // later finds the list.
    drop(journal);
    let journal = std::fs::OpenOptions::new()
        .write(true)
        .open(&paths.journal)?;
    match journal.try_lock() {
        Ok(()) => {}
        // The list stands (its stretches are read from the series file);
        // the pages are punched by the next `lab gc`.
        Err(TryLockError::WouldBlock) => return Ok(Compacted::Skipped("a reader of the journal")),
        Err(TryLockError::Error(e)) => return Err(e.into()),
    }
    let before = journal.metadata()?.blocks() * 512;
    for (i, &(start, end)) in holes.stretches.iter().enumerate() {
        let (from, to) = pages(start, end, len);
        match holes::punch(&journal, from, to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported && i == 0 => {
                // Nothing is punched: the list is not needed.
                holes::remove_holes(&paths.journal)?;
                return Ok(Compacted::Skipped("a file system that cannot punch holes"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    journal.sync_all()?;
    let freed = before.saturating_sub(journal.metadata()?.blocks() * 512);
    if made_now || freed > 0 {
        Ok(Compacted::Punched {
            stretches: holes.stretches.len(),
            freed,
        })
    } else {
        Ok(Compacted::Current)
    }
}

/// Whether [`compact`] has work to do on the journal of the ended run at
/// `paths`, from a look at the files alone: a long journal not sent to a
/// team server, without a list of holes, or with one whose pages still take
/// room (punching stopped halfway).
pub fn compaction_due(paths: &RunPaths) -> Result<bool, Error> {
    let meta = match std::fs::metadata(&paths.journal) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let len = meta.len();
    if len < holes::MIN_JOURNAL_BYTES || paths.dir.join(UPLOAD_STATE).exists() {
        return Ok(false);
    }
    Ok(match holes::read_holes(&paths.journal, len) {
        Ok(None) => true,
        Ok(Some(h)) if h.covered == len => {
            let punched: u64 = h
                .stretches
                .iter()
                .map(|&(start, end)| {
                    let (from, to) = pages(start, end, len);
                    to - from
                })
                .sum();
            meta.blocks() * 512 > (len - punched).next_multiple_of(PAGE) + 16 * PAGE
        }
        Ok(Some(_)) | Err(_) => false,
    })
}

/// The whole pages of `[start, end)` that may be punched: none of the last
/// [`JOURNAL_TAIL`] bytes of a journal `len` long, whose checksum ties the
/// series file to it.
fn pages(start: u64, end: u64, len: u64) -> (u64, u64) {
    let from = start.next_multiple_of(PAGE);
    let to = (end.min(len.saturating_sub(JOURNAL_TAIL)) / PAGE) * PAGE;
    (from, to.max(from))
}

/// Reads the journal (`len` bytes, settled), checking each of its points
/// against the series file, and lists the stretches of frames holding
/// points alone that span a whole page. `Ok(Err(why))` when a point does not
/// match, or the journal is damaged or not what the series file was made of.
fn point_stretches(
    paths: &RunPaths,
    series: &SeriesFile,
    len: u64,
) -> Result<Result<Holes, &'static str>, Error> {
    let mut check = Check {
        series,
        by_key: HashMap::new(),
        cursors: series.metrics().iter().map(Cursor::new).collect(),
        mismatch: None,
    };
    let mut stretches = Vec::new();
    let mut open: Option<(u64, u64)> = None;
    let scan = lab_journal::read_frames(&paths.journal, |start, end, record| {
        let points_alone = matches!(record, Some(Record::Metric { .. } | Record::Metrics { .. }));
        if let Some(record) = record {
            check.record(record);
        }
        match (&mut open, points_alone) {
            (Some((_, e)), true) if *e == start => *e = end,
            (_, true) => {
                close(open.take(), len, &mut stretches);
                open = Some((start, end));
            }
            (_, false) => close(open.take(), len, &mut stretches),
        }
    })?;
    close(open.take(), len, &mut stretches);
    // Zeros after the last frame (space a killed writer reserved) are
    // neither damage nor points.
    if !scan.damage.is_empty() {
        return Ok(Err("a damaged journal"));
    }
    if let Some(why) = check.mismatch {
        return Ok(Err(why));
    }
    if check.cursors.iter().any(|c| !c.done()) {
        return Ok(Err("a series file with points the journal does not have"));
    }
    Ok(Ok(Holes {
        covered: len,
        journal_crc: series.journal_crc(),
        stretches,
    }))
}

/// Lists `stretch`, if it spans a whole page that may be punched.
fn close(stretch: Option<(u64, u64)>, len: u64, into: &mut Vec<(u64, u64)>) {
    if let Some((start, end)) = stretch {
        let (from, to) = pages(start, end, len);
        if to > from {
            into.push((start, end));
        }
    }
}

/// Checks the journal's points, in order, against the series file.
struct Check<'a> {
    series: &'a SeriesFile,
    /// A journal key's metric, by its place in the series file.
    by_key: HashMap<u32, usize>,
    cursors: Vec<Cursor<'a>>,
    mismatch: Option<&'static str>,
}

impl Check<'_> {
    fn record(&mut self, record: Record) {
        if self.mismatch.is_some() {
            return;
        }
        crate::metric_events(record, &mut |event| match event {
            crate::MetricEvent::Declared { key, name } => {
                match self.series.metrics().iter().position(|m| m.name == name) {
                    Some(m) => {
                        self.by_key.insert(key, m);
                    }
                    None => self.mismatch = Some("a metric the series file does not have"),
                }
            }
            crate::MetricEvent::Point { time_nanos, point } => {
                let Some(&m) = self.by_key.get(&point.key) else {
                    self.mismatch = Some("a point of a metric never declared");
                    return;
                };
                let got = (point.step, time_nanos, point.value.to_bits());
                match self.cursors[m].next(self.series) {
                    Some(p) if p == got => {}
                    Some(_) => self.mismatch = Some("a point that the series file holds otherwise"),
                    None => self.mismatch = Some("a point missing from the series file"),
                }
            }
            crate::MetricEvent::Ended(_) => {}
        });
    }
}

/// One metric's points in the series file, decoded a block at a time.
struct Cursor<'a> {
    metric: &'a MetricEntry,
    block: usize,
    at: usize,
    decoded: Decoded,
    buf: Vec<u8>,
}

impl<'a> Cursor<'a> {
    fn new(metric: &'a MetricEntry) -> Self {
        Self {
            metric,
            block: 0,
            at: 0,
            decoded: Decoded::default(),
            buf: Vec::new(),
        }
    }

    /// The next point: step, time, value's bits; `None` past the last, or
    /// at a block that does not read.
    fn next(&mut self, series: &SeriesFile) -> Option<(i64, i64, u64)> {
        while self.at == self.decoded.bits.len() {
            if self.block == self.metric.blocks.len() {
                return None;
            }
            series
                .read_block(
                    &mut self.buf,
                    self.metric,
                    self.block,
                    Columns::All,
                    &mut self.decoded,
                )
                .ok()?;
            self.block += 1;
            self.at = 0;
        }
        let i = self.at;
        self.at += 1;
        Some((
            self.decoded.steps[i],
            self.decoded.times[i],
            self.decoded.bits[i],
        ))
    }

    fn done(&self) -> bool {
        self.block == self.metric.blocks.len() && self.at == self.decoded.bits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_pages_before_the_checked_tail_are_punched() {
        let len = 100 * PAGE + 10;
        assert_eq!(pages(16, 5000, len), (PAGE, PAGE));
        assert_eq!(pages(16, 3 * PAGE + 1, len), (PAGE, 3 * PAGE));
        // The last JOURNAL_TAIL bytes stay.
        assert_eq!(pages(PAGE, len, len), (PAGE, 99 * PAGE));
        assert_eq!(pages(99 * PAGE + 5, len, len), (100 * PAGE, 100 * PAGE));
    }
}
