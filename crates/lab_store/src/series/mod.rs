//! A run's metric series at rest: `series.lab` in the run's folder, every
//! point of every metric in compact columns (delta-of-delta steps and times,
//! values XOR-ed with the one before), block by block, with a per-metric index, so that reading
//! one metric decodes that metric alone.
//!
//! The file is written from the journal once the run has ended (by the
//! `lab-finish` thread, or `lab gc` for runs that ended before), under a
//! temporary name, synced and renamed; it records the journal's length and
//! a checksum of its last bytes. A reader uses it only when it matches the
//! journal as it is and every checksum holds; anything else, and the journal
//! is read as before. Once [`compact`] has checked it against the journal
//! point by point and given back the journal's pages of points, it is where
//! those points are kept: [`read_records`] hands them to readers of the
//! journal. The layout is in docs/storage.md ("The series file", "The
//! journal's holes").

mod codec;
mod compact;
mod file;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use codec::{BLOCK_POINTS, BlockSummary, Columns, Decoded};
pub use compact::{Compacted, compact, compaction_due};
pub use file::{BlockEntry, MetricEntry, SeriesFile, Unusable};

use lab_journal::Scan;
use lab_types::Record;

use crate::{Error, MetricEvent, RunPaths, metric_events};

/// The series file's name in a run's folder.
pub const SERIES_FILE: &str = "series.lab";

/// Journals shorter than this get no series file: they read in a
/// millisecond or two, and the file would cost a run more than it saves.
pub const MIN_JOURNAL_BYTES: u64 = 256 * 1024;

/// What [`write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// It wrote the file, of `bytes` bytes holding `points` points.
    File {
        /// The file's size.
        bytes: u64,
        /// Points in it.
        points: u64,
    },
    /// A file matching the journal was there already.
    Current,
    /// It wrote none, for the reason given (the journal is read instead).
    Skipped(&'static str),
}

/// Where the series file of the run at `paths` is.
#[must_use]
pub fn path(paths: &RunPaths) -> PathBuf {
    paths.dir.join(SERIES_FILE)
}

/// The run's series file, when there is one that holds every point of its
/// journal as it is.
#[must_use]
pub fn open(paths: &RunPaths) -> Option<SeriesFile> {
    SeriesFile::open(&path(paths), &paths.journal)
        .ok()
        .flatten()
        .filter(SeriesFile::is_whole)
}

/// Writes the series file of the run at `paths` from its journal, unless a
/// writer holds the journal, it is short ([`MIN_JOURNAL_BYTES`]), damaged,
/// or names its metrics in a way the file does not keep (a number or a name
/// declared twice), a matching file is there already, or the disk is full.
pub fn write(paths: &RunPaths) -> Result<Written, Error> {
    write_at_least(paths, MIN_JOURNAL_BYTES)
}

/// [`write`] for a journal of at least `min_bytes` bytes.
pub fn write_at_least(paths: &RunPaths, min_bytes: u64) -> Result<Written, Error> {
    let len = match fs_err::metadata(&paths.journal) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Written::Skipped("no journal"));
        }
        Err(e) => return Err(e.into()),
    };
    if len < min_bytes {
        return Ok(Written::Skipped("a short journal"));
    }
    if paths.journal_is_locked()? {
        return Ok(Written::Skipped("a run still logging"));
    }
    if open(paths).is_some() {
        return Ok(Written::Current);
    }
    if has_holes(paths) {
        // Some of its points are in the file there is, and nowhere else.
        return Ok(Written::Skipped("a journal whose points were given back"));
    }
    let temp = temp_path(&paths.dir);
    let result = match write_to(paths, &temp, len) {
        // The file only saves reading the journal: a disk too full for it
        // costs the run nothing, and `lab gc` writes it once there is room.
        Err(Error::Io(e)) if is_full(&e) => Ok(Written::Skipped("a full disk")),
        other => other,
    };
    if !matches!(result, Ok(Written::File { .. })) {
        // One that cannot be removed now is `lab gc`'s, once this process
        // is gone.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// `.series.lab.<pid>-<n>.tmp`: `lab gc` removes those of dead processes.
fn temp_path(dir: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{SERIES_FILE}.{}-{n}.tmp", std::process::id()))
}

fn write_to(paths: &RunPaths, temp: &Path, len: u64) -> Result<Written, Error> {
    let mut out = file::FileWriter::create(temp)?;
    let mut by_key: HashMap<u32, usize> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut irregular = false;
    let mut failed: Option<std::io::Error> = None;
    let mut points = 0u64;
    let scan = lab_journal::read_journal(&paths.journal, 0, |_, record| {
        metric_events(record, &mut |event| match event {
            MetricEvent::Declared { key, name } => {
                if by_key.contains_key(&key) || names.contains(&name) {
                    irregular = true;
                } else {
                    names.insert(name.clone());
                    by_key.insert(key, out.add_metric(name));
                }
            }
            MetricEvent::Point { time_nanos, point } => match by_key.get(&point.key) {
                Some(&m) if failed.is_none() => {
                    points += 1;
                    if let Err(e) = out.push(m, point.step, time_nanos, point.value) {
                        failed = Some(e);
                    }
                }
                Some(_) => {}
                None => irregular = true,
            },
            MetricEvent::Ended(_) => {}
        });
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if irregular {
        return Ok(Written::Skipped("metrics declared twice"));
    }
    if !scan.damage.is_empty() {
        return Ok(Written::Skipped("a damaged journal"));
    }
    let mut journal = std::fs::File::open(&paths.journal)?;
    if journal.metadata()?.len() != len {
        return Ok(Written::Skipped("a journal that grew while read"));
    }
    let crc = file::journal_tail_crc(&mut journal, len)?;
    let bytes = out.finish(len, crc)?;
    fs_err::rename(temp, path(paths))?;
    fs_err::File::open(&paths.dir)?.sync_all()?;
    Ok(Written::File { bytes, points })
}

/// Hands `f` every point of metric `name` from the run's series file, if it
/// has a usable one: `Some(Ok)` once all went to `f`, `None` when nothing
/// did and the journal must be read instead.
/// With [`Columns::StepsAndValues`], `f` is given 0 for every time.
pub(crate) fn visit(
    paths: &RunPaths,
    name: &str,
    columns: Columns,
    mut f: impl FnMut(i64, i64, f64),
) -> Option<Result<(), Error>> {
    let series = open(paths)?;
    let Some(metric) = series.metric(name) else {
        return Some(Ok(()));
    };
    let mut started = false;
    let read = series.read(metric, columns, |d| {
        started = true;
        if d.times.is_empty() {
            for (&step, &bits) in d.steps.iter().zip(&d.bits) {
                f(step, 0, f64::from_bits(bits));
            }
        } else {
            for ((&step, &time), &bits) in d.steps.iter().zip(&d.times).zip(&d.bits) {
                f(step, time, f64::from_bits(bits));
            }
        }
    });
    match read {
        Ok(()) => Some(Ok(())),
        Err(_) if !started => None,
        // Checksums held but a block did not decode: a fault of the writer,
        // and some points are already out.
        Err(e) => Some(Err(Error::Io(std::io::Error::other(format!(
            "the series file of metric `{name}` does not decode ({e:?}): {}",
            path(paths).display()
        ))))),
    }
}

/// Every metric's values from the run's series file, in the order the
/// journal declared them, those without points left out; `None` when it has
/// no usable one.
pub(crate) fn values(paths: &RunPaths) -> Option<Vec<(String, Vec<f64>)>> {
    let series = open(paths)?;
    let mut out = Vec::new();
    for metric in series.metrics().iter().filter(|m| m.count > 0) {
        let mut values = Vec::with_capacity(usize::try_from(metric.count).unwrap_or(0));
        series
            .read(metric, Columns::Values, |d| {
                values.extend(d.bits.iter().map(|&b| f64::from_bits(b)));
            })
            .ok()?;
        out.push((metric.name.clone(), values));
    }
    Some(out)
}

/// Whether the journal of the run at `paths` has holes: pages of points
/// given back, those points kept in its series file alone (a list of holes
/// that cannot be read counts).
#[must_use]
pub fn has_holes(paths: &RunPaths) -> bool {
    !matches!(
        lab_journal::holes::read_holes(&paths.journal, u64::MAX),
        Ok(None)
    )
}

/// Whether the points after byte `from` of the journal of the run at
/// `paths` were moved to its series file after a reader read up to `from`
/// (`lab watch` following a run as it ended): that reader reads again from
/// the start, as the series file gives a metric's points whole.
#[must_use]
pub fn moved_after(paths: &RunPaths, from: u64) -> bool {
    from > lab_journal::HEADER_LEN as u64
        && matches!(
            lab_journal::holes::read_holes(&paths.journal, u64::MAX),
            Ok(Some(h)) if h.covered > from
        )
}

/// Reads the journal at `journal` from byte `from` as `read` does (a
/// `lab_journal` read, handed the stretches to step over and the visitor),
/// handing `visit` every record in order, where a journal with holes has its
/// points before the holes' covered length from the series file beside it:
/// each metric's points come, as `Metric` records, right after the record
/// that declared it. What cannot be read of them is told as damage in the
/// scan. The list of holes is read under the journal's lock (held to the
/// end), so that no page is punched between reading it and reading by it.
pub(crate) fn read_records(
    journal: &Path,
    from: u64,
    read: impl FnOnce(
        &[(u64, u64)],
        &mut dyn FnMut(u64, Record),
    ) -> Result<Scan, lab_journal::JournalError>,
    mut visit: impl FnMut(u64, Record),
) -> Result<Scan, Error> {
    let file = match std::fs::File::open(journal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(read(&[], &mut visit)?),
        Err(e) => return Err(e.into()),
    };
    // Held, a punch waits; refused, a writer or a punch holds it, and a
    // punch writes its list before it takes the lock.
    let _ = file.try_lock_shared();
    let meta = file.metadata()?;
    let series_path = journal.with_file_name(SERIES_FILE);
    let holes = match lab_journal::holes::read_holes(journal, meta.len()) {
        Ok(Some(h)) if h.covered > from => h,
        Ok(Some(_)) => return Ok(read(&[], &mut visit)?),
        // No list, or one that cannot be read, for a journal whose pages
        // were given back (fewer on disk than its length): its holes read as
        // zeros (and are told as damage), but a series file made from the
        // journal as it is still holds every point.
        Ok(None) | Err(_)
            if !(meta.len() >= lab_journal::holes::MIN_JOURNAL_BYTES
                && meta.blocks() * 512 + (64 << 10) < meta.len()) =>
        {
            return Ok(read(&[], &mut visit)?);
        }
        Ok(None) | Err(_) => match SeriesFile::open(&series_path, journal) {
            Ok(Some(s)) if s.is_whole() && meta.len() > from => lab_journal::holes::Holes {
                covered: meta.len(),
                journal_crc: s.journal_crc(),
                stretches: Vec::new(),
            },
            _ => return Ok(read(&[], &mut visit)?),
        },
    };
    let series = SeriesFile::open(&series_path, journal);
    let mut lost: Vec<String> = Vec::new();
    let first_hole = holes.stretches.first().map_or(holes.covered, |s| s.0);
    if from > lab_journal::HEADER_LEN as u64 && from < holes.covered {
        lost.push(format!(
            "the points kept in {} are read only with the whole journal: `lab reindex` reads them",
            series_path.display()
        ));
    }
    let series = match series {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            lost.push(format!(
                "the points of the journal's holes were kept in {}, which is missing",
                series_path.display()
            ));
            None
        }
        Err(e) => {
            lost.push(format!(
                "the points of the journal's holes are kept in {}, which cannot be read: {e:?}",
                series_path.display()
            ));
            None
        }
    };
    let mut scan = read(&holes.stretches, &mut |at, record| match record {
        Record::Metric { .. } | Record::Metrics { .. } if at < holes.covered => {
            // Kept in the series file; without one, those outside the holes
            // are all there is.
            if series.is_none() {
                visit(at, record);
            }
        }
        Record::MetricKey { key, ref name } if at < holes.covered && from <= at => {
            let metric = series.as_ref().and_then(|s| s.metric(name).map(|m| (s, m)));
            visit(at, record.clone());
            let Some((s, metric)) = metric else { return };
            let n = s.read_past_damage(metric, Columns::All, |d| {
                for ((&step, &time_nanos), &bits) in d.steps.iter().zip(&d.times).zip(&d.bits) {
                    let point = lab_types::MetricPoint {
                        key,
                        step,
                        value: f64::from_bits(bits),
                    };
                    visit(at, Record::Metric { time_nanos, point });
                }
            });
            if n > 0 {
                lost.push(format!(
                    "{n} points of metric `{}` are lost: a block of {} that holds them is damaged",
                    metric.name,
                    series_path.display()
                ));
            }
        }
        record => visit(at, record),
    })?;
    if !lost.is_empty() {
        let end = holes.stretches.last().map_or(first_hole, |s| s.1);
        let at = scan.damage.partition_point(|d| d.offset < first_hole);
        scan.damage.insert(
            at,
            lab_journal::Damage {
                offset: first_hole,
                dropped_bytes: end - first_hole,
                reason: lost.join("; "),
                tail: false,
            },
        );
    }
    Ok(scan)
}
