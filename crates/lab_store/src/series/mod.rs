//! A run's metric series at rest: `series.lab` in the run's folder, every
//! point of every metric in compact columns (delta-of-delta steps and times,
//! values XOR-ed with the one before), block by block, with a per-metric index, so that reading
//! one metric decodes that metric alone.
//!
//! The journal stays the truth. The file is written once the run has ended
//! (by the `lab-finish` thread, or `lab gc` for runs that ended before),
//! under a temporary name, synced and renamed; it records the journal's
//! length and a checksum of its last bytes. A reader uses it only when it
//! matches the journal as it is and every checksum holds; anything else, and
//! the journal is read as before. The layout is in docs/storage.md ("The
//! series file").

mod codec;
mod file;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use codec::{BLOCK_POINTS, BlockSummary, Columns, Decoded};
pub use file::{BlockEntry, MetricEntry, SeriesFile, Unusable};

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

/// The run's series file, when there is one that matches its journal.
#[must_use]
pub fn open(paths: &RunPaths) -> Option<SeriesFile> {
    SeriesFile::open(&path(paths), &paths.journal)
        .ok()
        .flatten()
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
    if matches!(SeriesFile::open(&path(paths), &paths.journal), Ok(Some(_))) {
        return Ok(Written::Current);
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
