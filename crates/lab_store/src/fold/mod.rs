//! Folding journals into the index.
//!
//! A fold reads a run's journal from the offset the index has reached, sums up
//! what it finds (parameters replace, metric summaries merge), and writes it in
//! one transaction that first checks nobody else folded the same bytes
//! meanwhile. Whether the writer is still alive is told by its `flock` on the
//! journal: a run whose journal is unlocked and has no end record crashed.
//!
//! Damage is read past once the writer is gone (see `lab_journal`'s reader):
//! a flipped bit costs the record it is in. A run never disappears for it: a
//! journal whose Start record is lost is still listed, with status `damaged`,
//! and so is one whose damage may have held its End record. A damaged tail is
//! cut off into a numbered `journal.lab.damaged.N` beside the journal (never
//! overwriting an earlier piece); nothing is ever cut, moved or rewritten
//! while a journal's lock is held, whatever the writer's process id says.

//!
//! This module is the journal's side of folding and knows no SQL: it asks an
//! index what it has folded and hands it what to write, through
//! [`FoldIndex`](crate::index::FoldIndex).

use std::collections::HashMap;
use std::fs::TryLockError;
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lab_journal::{Damage, Mode, Scan, WRITER_ATTR, WriterIdentity, read_journal_as};
use lab_types::RunId;

use crate::pieces;

use crate::delta::Delta;
use crate::fold_index::{FoldIndex, FoldWrite, Folded, Indexed, Written};
use crate::{Error, Project};

/// The experiment a run is listed under when its Start record is lost.
pub const UNKNOWN_EXPERIMENT: &str = "(unknown)";

/// A journal that could not be folded in whole.
#[derive(Debug, Clone)]
pub enum Issue {
    /// Its writer is gone and part of it is torn or corrupt: the records
    /// around the damage are indexed.
    Damaged {
        /// The run's short id.
        run: String,
        /// Where and why.
        damage: Damage,
        /// Where the damaged bytes were kept, when they were cut off the end
        /// of the journal.
        kept: Option<PathBuf>,
    },
    /// It could not be read at all (a newer format, an I/O error).
    Unreadable {
        /// The run's short id.
        run: String,
        /// Why.
        reason: String,
    },
}

impl Issue {
    /// The short id of the run whose journal it is.
    #[must_use]
    pub fn run(&self) -> &str {
        match self {
            Issue::Damaged { run, .. } | Issue::Unreadable { run, .. } => run,
        }
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Issue::Damaged { run, damage, kept } => {
                write!(
                    f,
                    "the journal of run `{run}` is damaged at byte {}: {}; ",
                    damage.offset, damage.reason
                )?;
                match kept {
                    Some(path) => write!(
                        f,
                        "the {} bytes from there to the end were moved to `{}`",
                        damage.dropped_bytes,
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    None if damage.tail => write!(
                        f,
                        "the {} bytes from there to the end were skipped",
                        damage.dropped_bytes
                    ),
                    None => write!(
                        f,
                        "{} bytes were skipped and the records after them read",
                        damage.dropped_bytes
                    ),
                }
            }
            Issue::Unreadable { run, reason } => {
                write!(f, "the journal of run `{run}` cannot be read: {reason}")
            }
        }
    }
}

/// Folds every run whose journal may hold records the index lacks. A journal
/// that cannot be read is reported and skipped; the others are still folded.
/// Runs whose folder is gone leave the index.
pub(crate) fn refresh(project: &Project, index: &mut dyn FoldIndex) -> Result<Vec<Issue>, Error> {
    // When no run folder came or went since every run was complete, there is
    // nothing to fold: skip reading a folder of perhaps ten thousand entries.
    let runs_dir_mtime = dir_mtime_nanos(&project.runs_dir());
    let recorded = index.settled_dir_mtime()?;
    if runs_dir_mtime.is_some() && recorded == runs_dir_mtime && !index.any_incomplete()? {
        return Ok(Vec::new());
    }
    let complete = index.complete_runs()?;
    let mut issues = Vec::new();
    let entries = match fs_err::read_dir(project.runs_dir()) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            index.forget_vanished(project, true, &[])?;
            return Ok(issues);
        }
        Err(e) => return Err(e.into()),
    };
    let mut pending = Vec::new();
    let mut complete_listed = 0;
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_short_id(name) {
            if complete.contains(name) {
                complete_listed += 1;
            } else {
                pending.push(name.to_owned());
            }
        }
    }
    pending.sort();
    // Run folders that went away since the index saw them take their rows along.
    let complete_vanished = complete_listed < complete.len();
    index.forget_vanished(project, complete_vanished, &pending)?;
    let mut all_complete = true;
    index.begin_batch()?;
    let folded = fold_pending(project, index, &pending, &mut issues, &mut all_complete);
    index.end_batch(folded.is_ok())?;
    folded?;
    // Remember the folder's time only once it has stood still for a second:
    // a folder made in the same clock tick as the last change would not move
    // it, and would be missed.
    let settled = runs_dir_mtime.is_some_and(|m| lab_types::now_nanos() - m > 1_000_000_000);
    if all_complete && settled {
        index.set_settled_dir_mtime(runs_dir_mtime)?;
    }
    Ok(issues)
}

/// How many runs' journals are read at a time, ahead of their writes.
const CHUNK: usize = 256;

/// How long one batch of folds holds the index's write lock, at most about.
const BATCH: Duration = Duration::from_millis(200);

/// Folds the runs `pending`, in their order. The journals of runs the index
/// does not hold yet (all of them in a rebuild) are read on several threads,
/// a chunk ahead of the writes; the others are folded on from where the
/// index got, one by one. The writes go in batches (see
/// [`FoldIndex::begin_batch`]).
fn fold_pending(
    project: &Project,
    index: &mut dyn FoldIndex,
    pending: &[String],
    issues: &mut Vec<Issue>,
    all_complete: &mut bool,
) -> Result<(), Error> {
    let threads = std::thread::available_parallelism().map_or(1, NonZero::get);
    let mut chunks = pending.chunks(CHUNK);
    let Some(first) = chunks.next() else {
        return Ok(());
    };
    let mut ahead = read_fresh(project, first, &fresh(index, first)?, threads);
    let mut current = first;
    let mut batch_start = Instant::now();
    loop {
        let next = chunks.next();
        let next_fresh = match next {
            Some(c) => fresh(index, c)?,
            None => Vec::new(),
        };
        let read = std::thread::scope(|s| {
            let reader = next.map(|c| s.spawn(|| read_fresh(project, c, &next_fresh, threads)));
            for (short, read) in current.iter().zip(ahead) {
                fold_one(project, index, short, read, issues, all_complete)?;
                if batch_start.elapsed() > BATCH {
                    index.end_batch(true)?;
                    index.begin_batch()?;
                    batch_start = Instant::now();
                }
            }
            let Some(reader) = reader else {
                return Ok(None);
            };
            if !reader.is_finished() {
                // Hold no lock while waiting for the reads.
                index.end_batch(true)?;
                index.begin_batch()?;
                batch_start = Instant::now();
            }
            Ok::<_, Error>(Some(
                reader
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            ))
        })?;
        match (next, read) {
            (Some(c), Some(r)) => {
                current = c;
                ahead = r;
            }
            _ => return Ok(()),
        }
    }
}

/// Which of `shorts` the index does not hold yet.
fn fresh(index: &dyn FoldIndex, shorts: &[String]) -> Result<Vec<bool>, Error> {
    shorts
        .iter()
        .map(|s| Ok(index.indexed(s)?.is_none()))
        .collect()
}

/// Reads the journals of the runs of `shorts` marked `fresh` (not indexed
/// yet) on up to `threads` threads. Each slot holds its run's reading, or
/// `None` for a run to fold on from where the index got.
fn read_fresh(
    project: &Project,
    shorts: &[String],
    fresh: &[bool],
    threads: usize,
) -> Vec<Option<Result<Prepared, Error>>> {
    let read_one = |i: usize| {
        let short = &shorts[i];
        prepare(
            &project.run_paths(short),
            short,
            None,
            HashMap::new(),
            &mut || Ok(None),
        )
    };
    let threads = threads.min(fresh.iter().filter(|f| **f).count());
    if threads <= 1 {
        return (0..shorts.len())
            .map(|i| fresh[i].then(|| read_one(i)))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Prepared, Error>>>> =
        shorts.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= shorts.len() {
                        break;
                    }
                    if fresh[i] {
                        let read = read_one(i);
                        *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(read);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// Folds run `short`, from `read` when its journal was read ahead, and
/// notes what came of it.
fn fold_one(
    project: &Project,
    index: &mut dyn FoldIndex,
    short: &str,
    read: Option<Result<Prepared, Error>>,
    issues: &mut Vec<Issue>,
    all_complete: &mut bool,
) -> Result<(), Error> {
    // A fold on from where the index got reads its journal (perhaps a
    // large one) after the batch so far is committed: no lock is held
    // while it reads.
    let fold_on = |index: &mut dyn FoldIndex| {
        index.end_batch(true)?;
        index.begin_batch()?;
        fold_run(project, index, short)
    };
    let folded = match read {
        Some(Ok(prepared)) => {
            match write_prepared(index, &project.run_paths(short), short, None, prepared) {
                Ok(Some(found)) => Ok(found),
                // Another fold got there first: go on from where it got.
                Ok(None) => fold_on(index),
                Err(e) => Err(e),
            }
        }
        Some(Err(e)) => Err(e),
        None => fold_on(index),
    };
    match folded {
        Ok(found) => {
            issues.extend(found);
            *all_complete &= index.indexed(short)?.is_some_and(|i| i.complete);
        }
        Err(e @ (Error::Journal(_) | Error::Io(_))) => {
            *all_complete = false;
            issues.push(Issue::Unreadable {
                run: short.to_owned(),
                reason: e.to_string(),
            });
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Whether a folder name is a run's short id (8 lower-case hex digits).
fn is_short_id(name: &str) -> bool {
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn dir_mtime_nanos(dir: &Path) -> Option<i64> {
    let modified = std::fs::metadata(dir).ok()?.modified().ok()?;
    let d = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// Who may still write a journal, as a fold finds it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Its lock is held and nothing says the holder is dead.
    Live,
    /// Its lock is held, but by a process other than the writer, which is
    /// dead (a child it forked keeps the lock): the journal will not grow,
    /// but it is not ours to change.
    DeadButLocked,
    /// This fold holds the lock: nobody writes, and the journal may be
    /// repaired.
    Gone,
}

/// What one read of a journal gave.
struct Read {
    delta: Delta,
    scan: Scan,
    writer: Writer,
}

/// Folds one run. Returns the damage found in a journal whose writer is gone.
pub(crate) fn fold_run(
    project: &Project,
    index: &mut dyn FoldIndex,
    short: &str,
) -> Result<Vec<Issue>, Error> {
    let paths = project.run_paths(short);
    loop {
        let before = index.indexed(short)?;
        if before.as_ref().is_some_and(|b| b.complete) {
            return Ok(Vec::new());
        }
        let keys = match &before {
            Some(b) => index.metric_names(&b.id)?,
            None => HashMap::new(),
        };
        let prepared = prepare(&paths, short, before.as_ref(), keys, &mut || {
            index_writer(index, before.as_ref())
        })?;
        if let Some(issues) = write_prepared(index, &paths, short, before.as_ref(), prepared)? {
            return Ok(issues);
        }
        // Someone else folded these bytes meanwhile; start again from theirs.
    }
}

/// A journal read for a fold and not yet written. A journal read holds its
/// file open, and with it the lock the fold took, until it is written.
pub(crate) enum Prepared {
    /// There is no run to index yet (see [`indexed_id`]), or no journal.
    Nothing,
    /// Nothing in the journal can be read, yet the run must not vanish.
    Unreadable,
    /// What to write.
    Fold(Box<Ready>),
}

/// A journal read, summed up, with its edits.
pub(crate) struct Ready {
    /// Held until the fold is written: once this fold has the lock, the
    /// writer is gone for good and the file will not change.
    file: std::fs::File,
    id: String,
    delta: Delta,
    scan: Scan,
    writer: Writer,
    edits: Option<(Delta, u64)>,
    misfiled: Option<RunId>,
}

/// Reads run `short`'s journal from where `before` got (`keys`, its metric
/// numbering so far) and its edits, writing nothing. `index_writer` gives
/// the writer's identity the index holds, asked only for a live journal
/// that does not name its writer.
pub(crate) fn prepare(
    paths: &crate::RunPaths,
    short: &str,
    before: Option<&Indexed>,
    keys: HashMap<u32, String>,
    index_writer: &mut dyn FnMut() -> Result<Option<WriterIdentity>, Error>,
) -> Result<Prepared, Error> {
    let file = match std::fs::File::open(&paths.journal) {
        Ok(f) => f,
        // A run folder whose journal is not created yet, or was removed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Prepared::Nothing),
        Err(e) => return Err(e.into()),
    };
    let writer = match file.try_lock_shared() {
        Ok(()) => Writer::Gone,
        Err(TryLockError::WouldBlock) => Writer::Live,
        Err(TryLockError::Error(e)) => return Err(e.into()),
    };
    let Some(Read {
        mut delta,
        scan,
        writer,
    }) = read(&paths.journal, before, keys, writer, index_writer)?
    else {
        return Ok(Prepared::Unreadable);
    };
    let Some(id) = indexed_id(short, before, &mut delta, &scan, writer) else {
        return Ok(Prepared::Nothing);
    };
    let misfiled = delta
        .start
        .as_ref()
        .map(|s| s.run)
        .filter(|run| run.short() != short);
    // The meta journal's edits are applied after a stretch that set what
    // they edit, or made the run's row: they keep the last word.
    let edits = if delta.start.is_some() || delta.lost_start.is_some() || delta.touches_edited() {
        read_edits(&paths.meta)?
    } else {
        None
    };
    Ok(Prepared::Fold(Box::new(Ready {
        file,
        id,
        delta,
        scan,
        writer,
        edits,
        misfiled,
    })))
}

/// Writes what [`prepare`] read of run `short`, whose progress was `before`.
/// Returns the damage found in a journal whose writer is gone, or `None`
/// when another fold moved the run on first (nothing was written).
pub(crate) fn write_prepared(
    index: &mut dyn FoldIndex,
    paths: &crate::RunPaths,
    short: &str,
    before: Option<&Indexed>,
    prepared: Prepared,
) -> Result<Option<Vec<Issue>>, Error> {
    let ready = match prepared {
        Prepared::Nothing => return Ok(Some(Vec::new())),
        Prepared::Unreadable => return unreadable_run(index, short, &paths.journal).map(Some),
        Prepared::Fold(ready) => *ready,
    };
    let Ready {
        file,
        id,
        delta,
        scan,
        writer,
        edits,
        misfiled,
    } = ready;
    let write = FoldWrite {
        short_id: short,
        id: &id,
        delta: &delta,
        edits: edits.as_ref().map(|(d, len)| (d, *len)),
        folded: Folded {
            end_offset: scan.end,
            settled: writer != Writer::Live,
            damage: &scan.damage,
            misfiled: misfiled.as_ref(),
        },
        paths,
    };
    // A damaged tail is cut off only by a fold that holds the lock, and
    // only where the piece can be kept (not on a full disk or a
    // read-only project: a later fold, or `lab reindex`, cuts it).
    let mut cut_tail = || match scan.tail_damage() {
        Some(d) if writer == Writer::Gone => pieces::cut_damaged_tail(&paths.journal, d).ok(),
        _ => None,
    };
    let kept = match index.write_fold(before, &write, &mut cut_tail)? {
        Written::Done { kept } => kept,
        Written::Raced => return Ok(None),
    };
    if writer == Writer::Gone && scan.tail_damage().is_none() {
        // Only space is at stake: a read-only project keeps it.
        let _ = pieces::trim_reserved_space(&paths.journal, scan.end);
    }
    drop(file);
    Ok(Some(issues_of(short, &scan, kept.as_ref())))
}

/// Every edit of the meta journal at `path`, summed up, and how far its good
/// frames reach; `None` when the run has no meta journal.
pub(crate) fn read_edits(path: &Path) -> Result<Option<(Delta, u64)>, Error> {
    let (records, scan) = lab_journal::read_edits(path)?;
    Ok(sum_edits(records, scan.end))
}

/// `records`, a meta journal's edits in the order made, summed up, with
/// `end`, how far its good frames reach; `None` when there is no meta
/// journal (`end` 0).
pub(crate) fn sum_edits(
    records: impl IntoIterator<Item = lab_types::Record>,
    end: u64,
) -> Option<(Delta, u64)> {
    if end == 0 {
        return None;
    }
    let mut delta = Delta::default();
    let mut keys = HashMap::new();
    for record in records {
        delta.add(0, record, &mut keys);
    }
    Some((delta, end))
}

/// Reads a journal from where the index got (`keys`, its metric numbering
/// so far), past damage when the writer is gone; learns whether a held
/// lock's writer is dead. `None` when a settled journal has nothing
/// readable at all.
fn read(
    journal: &Path,
    before: Option<&Indexed>,
    mut keys: HashMap<u32, String>,
    mut writer: Writer,
    index_writer: &mut dyn FnMut() -> Result<Option<WriterIdentity>, Error>,
) -> Result<Option<Read>, Error> {
    let offset = before.map_or(0, |b| b.offset);
    let mut delta = Delta::default();
    let mode = if writer == Writer::Gone {
        Mode::Settled
    } else {
        Mode::Live
    };
    let mut scan = match crate::series::read_records(
        journal,
        offset,
        |stretches, visit| {
            lab_journal::read_journal_skipping(journal, offset, Some(mode), stretches, visit)
        },
        |at, record| delta.add(at, record, &mut keys),
    ) {
        Ok(scan) => scan,
        Err(Error::Journal(lab_journal::JournalError::BadHeader { .. }))
            if writer == Writer::Gone =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // A held lock may belong to a child the writer forked; if the writer
    // itself is certainly dead the run is over all the same.
    if writer == Writer::Live
        && writer_identity(&delta, index_writer)?.and_then(|w| w.is_dead()) == Some(true)
    {
        writer = Writer::DeadButLocked;
        // It can write no more: read what it wrote between our scan and
        // its end, past any damage.
        let rest = read_journal_as(journal, scan.end, Mode::Settled, |at, record| {
            delta.add(at, record, &mut keys);
        })?;
        scan = Scan {
            end: rest.end,
            records: scan.records + rest.records,
            damage: rest.damage,
        };
    }
    if writer == Writer::Live {
        // What looks damaged may be a frame on its way.
        scan.damage.clear();
    }
    Ok(Some(Read {
        delta,
        scan,
        writer,
    }))
}

/// The id run `short` is indexed under, or `None` when there is no run to
/// index yet: a journal holding only its header (a run starting, or one
/// that died before it said anything), or a live one whose Start record is
/// still to come. A settled journal whose Start record is lost is indexed
/// under its short id and zeros.
fn indexed_id(
    short: &str,
    before: Option<&Indexed>,
    delta: &mut Delta,
    scan: &Scan,
    writer: Writer,
) -> Option<String> {
    match (before, &delta.start) {
        (Some(b), _) => Some(b.id.clone()),
        (None, Some(start)) => Some(filed_id(short, start.run)),
        (None, None) if scan.records == 0 && scan.damage.is_empty() => None,
        (None, None) if writer == Writer::Live => None,
        (None, None) => {
            let id = lost_start_id(short);
            let time = delta.first_nanos.unwrap_or_else(|| slot_nanos(short));
            delta.lost_start = Some((id.clone(), time));
            Some(id)
        }
    }
}

/// The issues a fold reports: each damaged stretch, and where a cut tail went.
fn issues_of(short: &str, scan: &Scan, kept: Option<&PathBuf>) -> Vec<Issue> {
    scan.damage
        .iter()
        .map(|d| Issue::Damaged {
            run: short.to_owned(),
            damage: d.clone(),
            kept: if d.tail { kept.cloned() } else { None },
        })
        .collect()
}

/// The id a run is indexed under: its Start record's, unless that names
/// another folder's run (the folder is a copy), whose short id then gives way
/// to this folder's name. A short id is one folder, so two folders never
/// share a row.
fn filed_id(short: &str, id: RunId) -> String {
    let text = id.to_string();
    if id.short() == short {
        text
    } else {
        format!("{short}{}", &text[short.len()..])
    }
}

/// The id a run is listed under when its Start record (which holds its id)
/// is lost: its short id, then zeros.
#[must_use]
pub fn lost_start_id(short: &str) -> String {
    format!("{short}{}", "0".repeat(24))
}

/// The start of a run's time slot, from its short id: when its Start record
/// is lost and no other record has a time.
#[must_use]
pub fn slot_nanos(short: &str) -> i64 {
    u32::from_str_radix(short, 16).map_or(0, RunId::slot_start_nanos)
}

/// Lists a run whose journal has nothing readable in it, as damaged.
fn unreadable_run(
    index: &mut dyn FoldIndex,
    short: &str,
    journal: &Path,
) -> Result<Vec<Issue>, Error> {
    // Read once more for the reason, to say it.
    let reason = match read_journal_as(journal, 0, Mode::Settled, |_, _| {}) {
        Err(e) => e.to_string(),
        Ok(_) => "the journal cannot be read".to_owned(),
    };
    index.write_unreadable(short, &reason)?;
    Ok(vec![Issue::Unreadable {
        run: short.to_owned(),
        reason,
    }])
}

/// Who writes the journal, from what this fold read or else what the index
/// holds (`index_writer`).
fn writer_identity(
    delta: &Delta,
    index_writer: &mut dyn FnMut() -> Result<Option<WriterIdentity>, Error>,
) -> Result<Option<WriterIdentity>, Error> {
    if let Some((_, v)) = delta.attrs.iter().find(|(k, _)| k == WRITER_ATTR) {
        return Ok(WriterIdentity::from_value(v));
    }
    index_writer()
}

/// Who writes run `before`'s journal, as the index holds it.
fn index_writer(
    index: &dyn FoldIndex,
    before: Option<&Indexed>,
) -> Result<Option<WriterIdentity>, Error> {
    let Some(b) = before else { return Ok(None) };
    Ok(index
        .attr(&b.id, WRITER_ATTR)?
        .and_then(|v| WriterIdentity::from_value(&v)))
}
