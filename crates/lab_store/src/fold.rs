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

use std::collections::{HashMap, HashSet};
use std::fs::TryLockError;
use std::path::{Path, PathBuf};

use lab_journal::{Damage, Mode, Scan, WRITER_ATTR, WriterIdentity, codec, read_journal_as};
use lab_types::{ErrorInfo, MetricPoint, Record, RunId, Status, Value};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::metrics::{MetricEvent, metric_events};
use crate::{Error, Project};

/// The experiment a run is listed under when its Start record is lost.
pub const UNKNOWN_EXPERIMENT: &str = "(unknown)";

/// How many damaged stretches a run's damage note spells out.
const NOTED_DAMAGE: usize = 5;

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
pub fn refresh(project: &Project, conn: &mut Connection) -> Result<Vec<Issue>, Error> {
    // When no run folder came or went since every run was complete, there is
    // nothing to fold: skip reading a folder of perhaps ten thousand entries.
    let runs_dir_mtime = dir_mtime_nanos(&project.runs_dir());
    let recorded: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'runs_dir_mtime'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let incomplete: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE complete = 0)",
        [],
        |r| r.get(0),
    )?;
    if runs_dir_mtime.is_some() && recorded == runs_dir_mtime && !incomplete {
        return Ok(Vec::new());
    }
    let complete: HashSet<String> = conn
        .prepare("SELECT short_id FROM runs WHERE complete = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut issues = Vec::new();
    let entries = match fs_err::read_dir(project.runs_dir()) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::remove::forget_vanished(project, conn, true, &[])?;
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
    crate::remove::forget_vanished(project, conn, complete_vanished, &pending)?;
    let mut all_complete = true;
    for short in pending {
        match fold_run(project, conn, &short) {
            Ok(found) => {
                issues.extend(found);
                all_complete &= indexed(conn, &short)?.is_some_and(|i| i.complete);
            }
            Err(e @ (Error::Journal(_) | Error::Io(_))) => {
                all_complete = false;
                issues.push(Issue::Unreadable {
                    run: short,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    // Remember the folder's time only once it has stood still for a second:
    // a folder made in the same clock tick as the last change would not move
    // it, and would be missed.
    let settled = runs_dir_mtime.is_some_and(|m| lab_types::now_nanos() - m > 1_000_000_000);
    if all_complete && settled {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('runs_dir_mtime', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [runs_dir_mtime],
        )?;
    }
    Ok(issues)
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

/// What the index knows of a run before a fold.
struct Indexed {
    id: String,
    offset: u64,
    complete: bool,
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

/// Folds one run. Returns the damage found in a journal whose writer is gone.
pub fn fold_run(
    project: &Project,
    conn: &mut Connection,
    short: &str,
) -> Result<Vec<Issue>, Error> {
    let paths = project.run_paths(short);
    loop {
        let before = indexed(conn, short)?;
        if before.as_ref().is_some_and(|b| b.complete) {
            return Ok(Vec::new());
        }
        let file = match std::fs::File::open(&paths.journal) {
            Ok(f) => f,
            // A run folder whose journal is not created yet, or was removed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        // Held until the fold is written: once we have it, the writer is gone
        // for good and the file will not change.
        let mut writer = match file.try_lock_shared() {
            Ok(()) => Writer::Gone,
            Err(TryLockError::WouldBlock) => Writer::Live,
            Err(TryLockError::Error(e)) => return Err(e.into()),
        };
        let mut keys: HashMap<u32, String> = match &before {
            Some(b) => conn
                .prepare_cached("SELECT key_id, name FROM metric_keys WHERE run_id = ?1")?
                .query_map([&b.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?,
            None => HashMap::new(),
        };
        let offset = before.as_ref().map_or(0, |b| b.offset);
        let mut delta = Delta::default();
        let mode = if writer == Writer::Gone {
            Mode::Settled
        } else {
            Mode::Live
        };
        let mut scan = match read_journal_as(&paths.journal, offset, mode, |at, record| {
            delta.add(at, record, &mut keys);
        }) {
            Ok(scan) => scan,
            Err(e @ lab_journal::JournalError::BadHeader { .. }) if writer == Writer::Gone => {
                // Nothing in it can be read, yet the run must not vanish.
                return unreadable_run(conn, short, &e.to_string());
            }
            Err(e) => return Err(e.into()),
        };
        // A held lock may belong to a child the writer forked; if the writer
        // itself is certainly dead the run is over all the same.
        if writer == Writer::Live
            && writer_identity(conn, before.as_ref(), &delta)?.and_then(|w| w.is_dead())
                == Some(true)
        {
            writer = Writer::DeadButLocked;
            // It can write no more: read what it wrote between our scan and
            // its end, past any damage.
            let rest = read_journal_as(&paths.journal, scan.end, Mode::Settled, |at, record| {
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
        let start = match (&before, &delta.start) {
            (Some(b), _) => b.id.clone(),
            (None, Some((id, _, _))) => filed_id(short, *id),
            // Nothing but a header (or nothing at all): the run is starting,
            // or its process died before it said anything.
            (None, None) if scan.records == 0 && scan.damage.is_empty() => {
                return Ok(Vec::new());
            }
            // Its Start record is lost, or still to come.
            (None, None) if writer == Writer::Live => return Ok(Vec::new()),
            (None, None) => {
                let id = lost_start_id(short);
                delta.lost_start = Some((
                    id.clone(),
                    delta.first_nanos.unwrap_or_else(|| slot_nanos(short)),
                ));
                id
            }
        };
        let settled = writer != Writer::Live;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = indexed(&tx, short)?;
        let progress = |i: &Option<Indexed>| i.as_ref().map(|i| (i.offset, i.complete));
        if progress(&now) != progress(&before) {
            // Someone else folded these bytes meanwhile (or, finding no new
            // record, settled the run and cut its tail); start again from theirs.
            drop(tx);
            continue;
        }
        // A damaged tail is cut off only by a fold that holds the lock, and
        // only where the piece can be kept (not on a full disk or a
        // read-only project: a later fold, or `lab reindex`, cuts it).
        let kept = match scan.tail_damage() {
            Some(d) if writer == Writer::Gone => cut_damaged_tail(&paths.journal, d).ok(),
            _ => None,
        };
        write_delta(
            &tx,
            &start,
            short,
            &delta,
            &Folded {
                end_offset: scan.end,
                settled,
                damage: &scan.damage,
                kept: kept.as_deref(),
                misfiled: delta
                    .start
                    .as_ref()
                    .map(|(id, _, _)| id)
                    .filter(|id| id.short() != short),
            },
            &paths,
        )?;
        crate::schema::bump_generation(&tx)?;
        tx.commit()?;
        if writer == Writer::Gone && scan.tail_damage().is_none() {
            // Only space is at stake: a read-only project keeps it.
            let _ = trim_reserved_space(&paths.journal, scan.end);
        }
        drop(file);
        let issues = scan
            .damage
            .iter()
            .map(|d| Issue::Damaged {
                run: short.to_owned(),
                damage: d.clone(),
                kept: if d.tail { kept.clone() } else { None },
            })
            .collect();
        return Ok(issues);
    }
}

/// What a fold found out about the journal as a whole.
struct Folded<'a> {
    /// Just past the last good frame.
    end_offset: u64,
    /// Whether the writer is gone: nothing more will be written.
    settled: bool,
    /// The damaged stretches read past.
    damage: &'a [Damage],
    /// Where a damaged tail was kept, if it was cut off.
    kept: Option<&'a Path>,
    /// The id the Start record names, when it is not this folder's run (a
    /// copied folder).
    misfiled: Option<&'a RunId>,
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
fn lost_start_id(short: &str) -> String {
    format!("{short}{}", "0".repeat(24))
}

/// The start of a run's time slot, from its short id: when its Start record
/// is lost and no other record has a time.
fn slot_nanos(short: &str) -> i64 {
    u32::from_str_radix(short, 16).map_or(0, RunId::slot_start_nanos)
}

/// Lists a run whose journal has nothing readable in it, as damaged.
fn unreadable_run(conn: &mut Connection, short: &str, reason: &str) -> Result<Vec<Issue>, Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if indexed(&tx, short)?.is_none() {
        tx.prepare_cached(
            "INSERT INTO runs (id, short_id, experiment, status, start_nanos, journal_offset, complete, damage)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, ?6)",
        )?
        .execute(params![
            lost_start_id(short),
            short,
            UNKNOWN_EXPERIMENT,
            Status::Damaged.as_str(),
            slot_nanos(short),
            format!("nothing in the journal can be read: {reason}")
        ])?;
        crate::summary::write(&tx, &lost_start_id(short))?;
        crate::schema::bump_generation(&tx)?;
    }
    tx.commit()?;
    Ok(vec![Issue::Unreadable {
        run: short.to_owned(),
        reason: reason.to_owned(),
    }])
}

/// Who writes the journal, from what this fold read or what the index holds.
fn writer_identity(
    conn: &Connection,
    before: Option<&Indexed>,
    delta: &Delta,
) -> Result<Option<WriterIdentity>, Error> {
    if let Some((_, v)) = delta.attrs.iter().find(|(k, _)| k == WRITER_ATTR) {
        return Ok(WriterIdentity::from_value(v));
    }
    let Some(b) = before else { return Ok(None) };
    let blob: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM attrs WHERE run_id = ?1 AND key = ?2")?
        .query_row(params![b.id, WRITER_ATTR], |r| r.get(0))
        .optional()?;
    Ok(blob
        .and_then(|b| codec::decode_value(&b).ok())
        .and_then(|v| WriterIdentity::from_value(&v)))
}

fn indexed(conn: &Connection, short: &str) -> Result<Option<Indexed>, Error> {
    Ok(conn
        .prepare_cached("SELECT id, journal_offset, complete FROM runs WHERE short_id = ?1")?
        .query_row([short], |r| {
            Ok(Indexed {
                id: r.get(0)?,
                offset: r.get::<_, i64>(1)? as u64,
                complete: r.get(2)?,
            })
        })
        .optional()?)
}

#[derive(Clone, Copy)]
struct Summary {
    first_offset: u64,
    last: f64,
    last_step: i64,
    last_nanos: i64,
    min: Option<f64>,
    max: Option<f64>,
    count: i64,
}

/// What a stretch of journal says, summed up.
#[derive(Default)]
struct Delta {
    start: Option<(RunId, i64, String)>,
    attrs: Vec<(String, Value)>,
    features: Option<Vec<Value>>,
    params: Vec<(u64, String, Value)>,
    new_keys: Vec<(u32, String)>,
    metrics: HashMap<u32, Summary>,
    tags: Vec<(String, String)>,
    artifacts: Vec<(u64, String, String)>,
    stored: Vec<(String, String, u64, u64)>,
    models: Vec<(u64, Record)>,
    end: Option<(i64, Status, Option<ErrorInfo>)>,
    /// A Close record was read: the journal was closed by its writer.
    closed: bool,
    /// The earliest time any record carries.
    first_nanos: Option<i64>,
    /// The id and start time a run whose Start record is lost is listed with.
    lost_start: Option<(String, i64)>,
}

impl Delta {
    fn add(&mut self, at: u64, record: Record, keys: &mut HashMap<u32, String>) {
        if let Some(t) = record_time(&record) {
            self.first_nanos = Some(self.first_nanos.map_or(t, |f| f.min(t)));
        }
        match record {
            Record::Start {
                run,
                time_nanos,
                experiment,
            } => self.start = Some((run, time_nanos, experiment)),
            Record::Attr { key, value, .. } => self.attrs.push((key, value)),
            Record::Features { names, .. } => self.features = Some(names),
            Record::Param { key, value, .. } => self.params.push((at, key, value)),
            record
            @ (Record::MetricKey { .. } | Record::Metric { .. } | Record::Metrics { .. }) => {
                // `seq` orders metrics by first appearance: the record's
                // offset, then the point's place in it (records are far
                // below 2^47 bytes).
                let mut place = 0u64;
                metric_events(record, &mut |event| match event {
                    MetricEvent::Declared { key, name } => {
                        keys.insert(key, name.clone());
                        self.new_keys.push((key, name));
                    }
                    MetricEvent::Point { time_nanos, point } => {
                        self.point((at << 16) | place.min(0xffff), time_nanos, point);
                        place += 1;
                    }
                    MetricEvent::Ended(_) => {}
                });
            }
            Record::Tag { key, value, .. } => self.tags.push((key, value)),
            Record::Artifact { name, source, .. } => self.artifacts.push((at, name, source)),
            Record::ArtifactStored {
                name,
                path,
                files,
                bytes,
                ..
            } => self.stored.push((name, path, files, bytes)),
            model @ Record::Model { .. } => self.models.push((at, model)),
            Record::End {
                time_nanos,
                status,
                error,
            } => self.end = Some((time_nanos, status, error)),
            Record::Close { .. } => self.closed = true,
        }
    }

    fn point(&mut self, seq: u64, time_nanos: i64, p: MetricPoint) {
        let finite = (!p.value.is_nan()).then_some(p.value);
        let s = self.metrics.entry(p.key).or_insert(Summary {
            first_offset: seq,
            last: p.value,
            last_step: p.step,
            last_nanos: time_nanos,
            min: None,
            max: None,
            count: 0,
        });
        s.last = p.value;
        s.last_step = p.step;
        s.last_nanos = time_nanos;
        s.count += 1;
        if let Some(v) = finite {
            s.min = Some(s.min.map_or(v, |m| m.min(v)));
            s.max = Some(s.max.map_or(v, |m| m.max(v)));
        }
    }
}

/// The time a record carries, if it carries one.
fn record_time(record: &Record) -> Option<i64> {
    match record {
        Record::Start { time_nanos, .. }
        | Record::Attr { time_nanos, .. }
        | Record::Features { time_nanos, .. }
        | Record::Param { time_nanos, .. }
        | Record::Metric { time_nanos, .. }
        | Record::Metrics { time_nanos, .. }
        | Record::Tag { time_nanos, .. }
        | Record::Artifact { time_nanos, .. }
        | Record::ArtifactStored { time_nanos, .. }
        | Record::Model { time_nanos, .. }
        | Record::End { time_nanos, .. }
        | Record::Close { time_nanos } => Some(*time_nanos),
        Record::MetricKey { .. } => None,
    }
}

/// The longest text of a list or dict parameter kept for queries to compare
/// and match; a longer one is kept only in its encoded form.
const MAX_COMPOUND_TEXT: usize = 4096;

/// A parameter's `value` and `text` columns, holding it once: a string is
/// its text, with an empty `value`; anything else is its encoding, with its
/// text for queries (and none for a list or dict too long to compare).
fn param_columns(value: &Value) -> (Vec<u8>, Option<String>) {
    match value {
        Value::Str(s) => (Vec::new(), Some(s.clone())),
        Value::List(_) | Value::Dict(_) => {
            let text = value.to_string();
            (
                blob(value),
                (text.len() <= MAX_COMPOUND_TEXT).then_some(text),
            )
        }
        other => (blob(other), Some(other.to_string())),
    }
}

fn blob(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_value(v, &mut out);
    out
}

/// SQLite has no NaN: it would store NULL. Keep finite and infinite values as
/// REAL and NaN as NULL; exact bits live in `last_bits`.
fn real(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn write_delta(
    tx: &Connection,
    id: &str,
    short: &str,
    d: &Delta,
    folded: &Folded<'_>,
    paths: &crate::RunPaths,
) -> Result<(), Error> {
    if let Some((_, time, experiment)) = &d.start {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO runs (id, short_id, experiment, status, start_nanos, journal_offset)
             VALUES (?1, ?2, ?3, 'running', ?4, 0)",
        )?
        .execute(params![id, short, experiment, time])?;
    } else if let Some((lost, time)) = &d.lost_start {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO runs (id, short_id, experiment, status, start_nanos, journal_offset)
             VALUES (?1, ?2, ?3, 'running', ?4, 0)",
        )?
        .execute(params![lost, short, UNKNOWN_EXPERIMENT, time])?;
    }
    for (key, value) in &d.attrs {
        tx.prepare_cached("INSERT OR REPLACE INTO attrs (run_id, key, value) VALUES (?1, ?2, ?3)")?
            .execute(params![id, key, blob(value)])?;
        let Some((_, column)) = crate::fields::attr_columns().find(|(a, _)| a == key) else {
            continue;
        };
        let sql = format!("UPDATE runs SET {column} = ?2 WHERE id = ?1");
        match value {
            Value::Bool(b) => tx.prepare_cached(&sql)?.execute(params![id, b])?,
            Value::Null => tx
                .prepare_cached(&sql)?
                .execute(params![id, rusqlite::types::Null])?,
            other => tx
                .prepare_cached(&sql)?
                .execute(params![id, other.to_string()])?,
        };
    }
    if let Some(features) = &d.features {
        tx.prepare_cached("UPDATE runs SET features = ?2 WHERE id = ?1")?
            .execute(params![id, blob(&Value::List(features.clone()))])?;
    }
    for (at, key, value) in &d.params {
        let (stored, text) = param_columns(value);
        tx.prepare_cached(
            "INSERT INTO params (run_id, key, seq, value, text, num) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, text = excluded.text, num = excluded.num",
        )?
        .execute(params![id, key, *at as i64, stored, text, value.as_f64().and_then(real)])?;
        remember_name(tx, "params", key)?;
    }
    for (key_id, name) in &d.new_keys {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO metric_keys (run_id, key_id, name) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, key_id, name])?;
        remember_name(tx, "metrics", name)?;
    }
    if !d.metrics.is_empty() {
        let names: HashMap<u32, String> = tx
            .prepare_cached("SELECT key_id, name FROM metric_keys WHERE run_id = ?1")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut stmt = tx.prepare_cached(
            "INSERT INTO metrics (run_id, key, seq, last, last_bits, last_step, last_nanos, min, max, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (run_id, key) DO UPDATE SET
               last = excluded.last, last_bits = excluded.last_bits, last_step = excluded.last_step,
               last_nanos = excluded.last_nanos,
               min = CASE WHEN excluded.min IS NULL THEN min WHEN min IS NULL THEN excluded.min ELSE min(min, excluded.min) END,
               max = CASE WHEN excluded.max IS NULL THEN max WHEN max IS NULL THEN excluded.max ELSE max(max, excluded.max) END,
               count = count + excluded.count",
        )?;
        for (key_id, s) in &d.metrics {
            // A point whose key was never declared cannot be named; the writer
            // always declares first, so this is only reachable in a damaged journal.
            let Some(name) = names.get(key_id) else {
                continue;
            };
            stmt.execute(params![
                id,
                name,
                s.first_offset as i64,
                real(s.last),
                s.last.to_bits() as i64,
                s.last_step,
                s.last_nanos,
                s.min,
                s.max,
                s.count
            ])?;
        }
    }
    for (key, value) in &d.tags {
        tx.prepare_cached("INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?1, ?2, ?3)")?
            .execute(params![id, key, value])?;
        remember_name(tx, "tags", key)?;
    }
    for (at, name, source) in &d.artifacts {
        tx.prepare_cached(
            "INSERT INTO artifacts (run_id, name, seq, source) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (run_id, name) DO UPDATE SET source = excluded.source",
        )?
        .execute(params![id, name, *at as i64, source])?;
    }
    for (name, path, files, bytes) in &d.stored {
        tx.prepare_cached("UPDATE artifacts SET path = ?3, files = ?4, bytes = ?5 WHERE run_id = ?1 AND name = ?2")?
            .execute(params![id, name, path, *files as i64, *bytes as i64])?;
    }
    for (at, model) in &d.models {
        if let Record::Model {
            time_nanos,
            name,
            path,
            format,
            class,
            library,
            library_version,
            size,
            sha256,
        } = model
        {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO models (run_id, name, seq, path, format, class, library, library_version, size, sha256, logged_nanos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![id, name, *at as i64, path, format, class, library, library_version, *size as i64, sha256, time_nanos])?;
        }
    }
    if let Some((time, status, error)) = &d.end {
        tx.prepare_cached(
            "UPDATE runs SET status = ?2, end_nanos = ?3, error_type = ?4, error_message = ?5, traceback = ?6 WHERE id = ?1",
        )?
        .execute(params![
            id,
            status.as_str(),
            time,
            error.as_ref().map(|e| &e.kind),
            error.as_ref().map(|e| &e.message),
            error.as_ref().map(|e| &e.traceback)
        ])?;
    }
    crate::summary::write(tx, id)?;
    let note = damage_note(tx, id, folded, paths)?;
    if folded.settled {
        // The writer is gone: a run it never ended crashed, unless the
        // journal is damaged where it would have said so.
        let lost_end =
            d.lost_start.is_some() || d.closed || !folded.damage.is_empty() || note.is_some();
        let verdict = if lost_end {
            Status::Damaged
        } else {
            Status::Crashed
        };
        tx.prepare_cached("UPDATE runs SET status = ?2 WHERE id = ?1 AND status = 'running'")?
            .execute(params![id, verdict.as_str()])?;
    }
    tx.prepare_cached(
        "UPDATE runs SET journal_offset = ?2, complete = ?3, damage = ?4 WHERE id = ?1",
    )?
    .execute(params![id, folded.end_offset as i64, folded.settled, note])?;
    Ok(())
}

/// The run's damage note: what this fold read past, what an earlier fold
/// noted, and the pieces cut off its journal.
fn damage_note(
    tx: &Connection,
    id: &str,
    folded: &Folded<'_>,
    paths: &crate::RunPaths,
) -> Result<Option<String>, Error> {
    let earlier: Option<String> = tx
        .prepare_cached("SELECT damage FROM runs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten();
    let mut parts: Vec<String> = earlier.into_iter().collect();
    if let Some(other) = folded.misfiled {
        parts.push(format!(
            "the journal's Start record names run {other}, not one of this folder (a copy?)"
        ));
    }
    for d in folded.damage.iter().take(NOTED_DAMAGE) {
        parts.push(format!(
            "{} bytes skipped at offset {}: {}",
            d.dropped_bytes, d.offset, d.reason
        ));
    }
    if folded.damage.len() > NOTED_DAMAGE {
        parts.push(format!(
            "and {} more damaged stretches",
            folded.damage.len() - NOTED_DAMAGE
        ));
    }
    if let Some(kept) = folded.kept {
        parts.push(format!("the damaged tail is kept in {}", kept.display()));
    } else if parts.is_empty() && folded.settled {
        // Rebuilding the index of a journal an earlier fold cut: say where
        // the pieces are.
        let kept = pieces(&paths.journal)?;
        if !kept.is_empty() {
            let names: Vec<String> = kept.iter().map(|p| p.path.display().to_string()).collect();
            let salvaged = if kept.iter().all(|p| p.salvaged) {
                " (their good records were put back)"
            } else {
                ""
            };
            parts.push(format!(
                "damaged bytes cut off the journal are kept in {}{salvaged}",
                names.join(", ")
            ));
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("; ")))
}

/// Records that some run has a metric, parameter or tag of this name, for
/// resolving names in queries without scanning the big tables.
fn remember_name(tx: &Connection, scope: &str, key: &str) -> Result<(), Error> {
    tx.prepare_cached("INSERT OR IGNORE INTO names (scope, key) VALUES (?1, ?2)")?
        .execute(params![scope, key])?;
    Ok(())
}

/// The prefix of the pieces cut off a journal: `journal.lab.damaged.1`, `.2`, ...
/// (an older Lab wrote one, unnumbered `journal.lab.damaged`).
const DAMAGED_SUFFIX: &str = ".damaged";

/// A piece cut off a journal, as its file name tells.
pub(crate) struct PieceName {
    /// Its number (0 for the unnumbered piece of an older Lab).
    pub number: u64,
    /// Its file.
    pub path: PathBuf,
    /// Whether its records were put back (`….salvaged`).
    pub salvaged: bool,
}

/// Every piece cut off `journal` so far, oldest first.
pub(crate) fn pieces(journal: &Path) -> Result<Vec<PieceName>, Error> {
    let Some(dir) = journal.parent() else {
        return Ok(Vec::new());
    };
    let base = format!(
        "{}{DAMAGED_SUFFIX}",
        journal.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut found = Vec::new();
    let entries = match fs_err::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&base) else {
            continue;
        };
        let (rest, salvaged) = match rest.strip_suffix(".salvaged") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let number = if rest.is_empty() {
            Some(0)
        } else {
            rest.strip_prefix('.').and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(number) = number {
            found.push(PieceName {
                number,
                path: entry.path(),
                salvaged,
            });
        }
    }
    found.sort_by_key(|p| p.number);
    Ok(found)
}

/// The pieces cut off `journal` whose records are not put back yet, oldest
/// first.
pub(crate) fn damaged_pieces(journal: &Path) -> Result<Vec<PathBuf>, Error> {
    Ok(pieces(journal)?
        .into_iter()
        .filter(|p| !p.salvaged)
        .map(|p| p.path)
        .collect())
}

/// Moves the unreadable tail of a settled journal into the next numbered
/// piece beside it and cuts it off, so the journal ends at its last good
/// frame. Only the bytes that held data are kept, not the zeros reserved
/// after them. An earlier piece is never overwritten. Returns the piece.
fn cut_damaged_tail(journal: &Path, d: &Damage) -> Result<PathBuf, Error> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut tail = Vec::new();
    {
        let mut f = fs_err::File::open(journal)?;
        f.seek(SeekFrom::Start(d.offset))?;
        f.take(d.dropped_bytes).read_to_end(&mut tail)?;
    }
    let mut number = pieces(journal)?.iter().map(|p| p.number).max().unwrap_or(0);
    let kept = loop {
        number += 1;
        let path = journal.with_file_name(format!(
            "{}{DAMAGED_SUFFIX}.{number}",
            journal.file_name().unwrap_or_default().to_string_lossy()
        ));
        match fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                if let Err(e) = f.write_all(&tail).and_then(|()| f.sync_all()) {
                    drop(f);
                    let _ = fs_err::remove_file(&path);
                    return Err(e.into());
                }
                break path;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    };
    let f = fs_err::OpenOptions::new().write(true).open(journal)?;
    f.set_len(d.offset)?;
    f.sync_all()?;
    Ok(kept)
}

/// Gives back the space a crashed writer reserved past its last record: the
/// journal then ends at its last frame, as a closed one does. Only called by
/// a fold that holds the journal's lock.
fn trim_reserved_space(journal: &Path, end: u64) -> Result<(), Error> {
    let f = fs_err::OpenOptions::new().write(true).open(journal)?;
    if end > 0 && f.metadata()?.len() > end {
        f.set_len(end)?;
    }
    Ok(())
}
