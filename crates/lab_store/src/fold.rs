//! Folding journals into the index.
//!
//! A fold reads a run's journal from the offset the index has reached, sums up
//! what it finds (parameters replace, metric summaries merge), and writes it in
//! one transaction that first checks nobody else folded the same bytes
//! meanwhile. Whether the writer is still alive is told by its `flock` on the
//! journal: a run whose journal is unlocked and has no end record crashed.

use std::collections::{HashMap, HashSet};
use std::fs::TryLockError;

use lab_journal::{Damage, WRITER_ATTR, WriterIdentity, codec, read_journal};
use lab_types::{ErrorInfo, MetricPoint, Record, RunId, Status, Value};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{Error, Project};

/// A journal that could not be folded in whole.
#[derive(Debug, Clone)]
pub enum Issue {
    /// Its writer is gone and it ends in a torn or corrupt frame: what came
    /// before is indexed, the rest was moved aside.
    Damaged {
        /// The run's short id.
        run: String,
        /// Where and why.
        damage: Damage,
    },
    /// It could not be read at all (not a journal, a newer format, an I/O error).
    Unreadable {
        /// The run's short id.
        run: String,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Issue::Damaged { run, damage } => write!(
                f,
                "the journal of run `{run}` is damaged at byte {}: {}; the {} bytes from there on were moved to `journal.lab.damaged`",
                damage.offset, damage.reason, damage.dropped_bytes
            ),
            Issue::Unreadable { run, reason } => write!(
                f,
                "the journal of run `{run}` cannot be read, so the run is left out: {reason}"
            ),
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
    let mut damages = Vec::new();
    let entries = match fs_err::read_dir(project.runs_dir()) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::remove::forget_vanished(project, conn, true, &[])?;
            return Ok(damages);
        }
        Err(e) => return Err(e.into()),
    };
    let mut pending = Vec::new();
    let mut complete_listed = 0;
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
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
            Ok(Some(damage)) => damages.push(Issue::Damaged { run: short, damage }),
            Ok(None) => all_complete &= indexed(conn, &short)?.is_some_and(|i| i.complete),
            Err(e @ (Error::Journal(_) | Error::Io(_))) => {
                all_complete = false;
                damages.push(Issue::Unreadable {
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
    Ok(damages)
}

fn dir_mtime_nanos(dir: &std::path::Path) -> Option<i64> {
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

/// Folds one run. Returns the damage of a journal whose writer is gone.
pub fn fold_run(
    project: &Project,
    conn: &mut Connection,
    short: &str,
) -> Result<Option<Damage>, Error> {
    let paths = project.run_paths(short);
    loop {
        let before = indexed(conn, short)?;
        if before.as_ref().is_some_and(|b| b.complete) {
            return Ok(None);
        }
        let file = match std::fs::File::open(&paths.journal) {
            Ok(f) => f,
            // A run folder whose journal is not created yet, or was removed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Held until the fold is written: once we have it, the writer is gone
        // for good and the file will not change.
        let writer_gone = match file.try_lock_shared() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
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
        let mut scan = read_journal(&paths.journal, offset, |at, record| {
            delta.add(at, record, &mut keys);
        })?;
        // A held lock may belong to a child the writer forked; if the writer
        // itself is dead the run is over all the same.
        let writer_dead = !writer_gone
            && writer_identity(conn, before.as_ref(), &delta)?.and_then(|w| w.is_dead())
                == Some(true);
        if writer_dead && scan.end > 0 {
            // It can write no more: read what it wrote between our scan and its end.
            let more = read_journal(&paths.journal, scan.end, |at, record| {
                delta.add(at, record, &mut keys);
            })?;
            scan = lab_journal::Scan {
                end: more.end,
                records: scan.records + more.records,
                damage: more.damage,
            };
        }
        let writer_gone = writer_gone || writer_dead;
        let start = match (&before, &delta.start) {
            (Some(b), _) => b.id.clone(),
            (None, Some((id, _, _))) => id.to_string(),
            // Nothing but a header (or nothing at all): the run is starting,
            // or its process died before it said anything.
            (None, None) => return Ok(None),
        };
        let damage = if writer_gone {
            scan.damage.clone()
        } else {
            None
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = indexed(&tx, short)?;
        if now.as_ref().map(|n| n.offset) != before.as_ref().map(|b| b.offset) {
            // Someone else folded these bytes meanwhile; start again from theirs.
            drop(tx);
            continue;
        }
        write_delta(
            &tx,
            &start,
            short,
            &delta,
            scan.end,
            writer_gone,
            damage.as_ref(),
            &paths,
        )?;
        crate::schema::bump_generation(&tx)?;
        tx.commit()?;
        if let Some(d) = &damage {
            cut_damaged_tail(&paths.journal, d)?;
        }
        drop(file);
        return Ok(damage);
    }
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
}

impl Delta {
    fn add(&mut self, at: u64, record: Record, keys: &mut HashMap<u32, String>) {
        match record {
            Record::Start {
                run,
                time_nanos,
                experiment,
            } => self.start = Some((run, time_nanos, experiment)),
            Record::Attr { key, value, .. } => self.attrs.push((key, value)),
            Record::Features { names, .. } => self.features = Some(names),
            Record::Param { key, value, .. } => self.params.push((at, key, value)),
            Record::MetricKey { key, name } => {
                keys.insert(key, name.clone());
                self.new_keys.push((key, name));
            }
            // `seq` orders metrics by first appearance: the record's offset,
            // then the point's place in it (records are far below 2^47 bytes).
            Record::Metric { time_nanos, point } => self.point(at << 16, time_nanos, point),
            Record::Metrics { time_nanos, points } => {
                for (i, p) in points.into_iter().enumerate() {
                    self.point((at << 16) | (i as u64).min(0xffff), time_nanos, p);
                }
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
            Record::Close { .. } => {}
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

#[allow(clippy::too_many_arguments)]
fn write_delta(
    tx: &Connection,
    id: &str,
    short: &str,
    d: &Delta,
    end_offset: u64,
    writer_gone: bool,
    damage: Option<&Damage>,
    paths: &crate::RunPaths,
) -> Result<(), Error> {
    if let Some((run, time, experiment)) = &d.start {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO runs (id, short_id, experiment, status, start_nanos, journal_offset)
             VALUES (?1, ?2, ?3, 'running', ?4, 0)",
        )?
        .execute(params![run.to_string(), short, experiment, time])?;
    }
    for (key, value) in &d.attrs {
        tx.prepare_cached("INSERT OR REPLACE INTO attrs (run_id, key, value) VALUES (?1, ?2, ?3)")?
            .execute(params![id, key, blob(value)])?;
        let column = match key.as_str() {
            "source" => "source",
            "user" => "user",
            "host" => "host",
            "python_version" => "python_version",
            "git_commit" => "git_commit",
            "git_dirty" => "git_dirty",
            _ => continue,
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
        tx.prepare_cached(
            "INSERT INTO params (run_id, key, seq, value, text, num) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, text = excluded.text, num = excluded.num",
        )?
        .execute(params![id, key, *at as i64, blob(value), value.to_string(), value.as_f64().and_then(real)])?;
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
    if writer_gone {
        // The writer is gone; a run it never ended crashed.
        tx.prepare_cached("UPDATE runs SET status = ?2 WHERE id = ?1 AND status = 'running'")?
            .execute(params![id, Status::Crashed.as_str()])?;
    }
    let damage_note = damage
        .map(|d| {
            format!(
                "{} bytes dropped at offset {}: {}",
                d.dropped_bytes, d.offset, d.reason
            )
        })
        .or_else(|| {
            let kept = damaged_copy(&paths.journal);
            kept.exists().then(|| {
                format!(
                    "a damaged journal tail was cut off and kept in {}",
                    kept.display()
                )
            })
        });
    tx.prepare_cached(
        "UPDATE runs SET journal_offset = ?2, complete = ?3, damage = coalesce(?4, damage) WHERE id = ?1",
    )?
    .execute(params![id, end_offset as i64, writer_gone, damage_note])?;
    Ok(())
}

/// Records that some run has a metric, parameter or tag of this name, for
/// resolving names in queries without scanning the big tables.
fn remember_name(tx: &Connection, scope: &str, key: &str) -> Result<(), Error> {
    tx.prepare_cached("INSERT OR IGNORE INTO names (scope, key) VALUES (?1, ?2)")?
        .execute(params![scope, key])?;
    Ok(())
}

fn damaged_copy(journal: &std::path::Path) -> std::path::PathBuf {
    journal.with_extension("lab.damaged")
}

/// Moves the unreadable tail of a finished journal aside and cuts it off, so
/// the journal ends at its last good frame. Only the bytes that held data are
/// kept aside, not the zeros reserved after them.
fn cut_damaged_tail(journal: &std::path::Path, d: &Damage) -> Result<(), Error> {
    use std::io::{Read, Seek, SeekFrom};
    let kept = damaged_copy(journal);
    if !kept.exists() {
        let mut f = fs_err::File::open(journal)?;
        f.seek(SeekFrom::Start(d.offset))?;
        let mut tail = Vec::new();
        f.take(d.dropped_bytes).read_to_end(&mut tail)?;
        fs_err::write(&kept, &tail)?;
    }
    let f = fs_err::OpenOptions::new().write(true).open(journal)?;
    f.set_len(d.offset)?;
    f.sync_all()?;
    Ok(())
}
