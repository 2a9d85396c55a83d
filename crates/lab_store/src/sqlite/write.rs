//! Writing a fold into the SQLite index: one function per family of records
//! (the run itself, attributes, parameters, metrics, tags, artifacts, models,
//! the end), then the run's listing summary, its status verdict and its
//! progress. All inside the transaction the caller holds.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use lab_types::fields::attr;
use lab_types::{Status, Value};
use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;
use crate::delta::Delta;
use crate::facts::{encode_value as blob, number_in_text, param_columns, real};
use crate::fold::{UNKNOWN_EXPERIMENT, lost_start_id, slot_nanos};
use crate::fold_index::{FoldWrite, Folded};
use crate::schema::rid_of;
use crate::summary::{self, Mirror};

/// Writes everything one fold read about a run.
pub(super) fn fold(
    tx: &Connection,
    w: &FoldWrite<'_>,
    kept: Option<&Path>,
    names: &mut Names<'_>,
) -> Result<(), Error> {
    let (id, d) = (w.id, w.delta);
    // A run whose row this fold makes has no rows in the other tables but
    // those it writes: its summary is made from them as they are written.
    let made = run_row(tx, id, w.short_id, d)?;
    let mut mirror = made.then(Mirror::default);
    let m = &mut mirror;
    // A run whose Start record was never read has no row to write to.
    let Some(rid) = rid_of(tx, id)? else {
        return Ok(());
    };
    // The attributes this fold gave an `attrs` row, for the edits after.
    let mut written = Vec::new();
    attrs(tx, rid, &d.attrs, names, m, &mut written)?;
    if let Some(features) = &d.features {
        tx.prepare_cached("UPDATE runs SET features = ?2 WHERE rid = ?1")?
            .execute(params![rid, blob(&Value::List(features.clone()))])?;
    }
    params_of(tx, rid, d, names, m)?;
    metrics(tx, rid, d, w.folded.settled, names, m)?;
    untags(tx, rid, &d.untags, m)?;
    tags(tx, rid, &d.tags, names, m)?;
    artifacts(tx, rid, d)?;
    models(tx, rid, d)?;
    media(tx, rid, d)?;
    end(tx, rid, d)?;
    if let Some((edits, meta_len)) = w.edits {
        // The meta journal's edits keep the last word over the run's own
        // records (its name at start, a tag it set).
        apply_edits(tx, rid, edits, meta_len, names, m, &mut written)?;
    }
    let earlier = if made { None } else { earlier_damage(tx, rid)? };
    match mirror {
        Some(mirror) => summary::put(tx, rid, mirror.encode().as_deref())?,
        None => summary::write(tx, rid)?,
    }
    let note = crate::facts::damage_note(earlier, &w.folded, kept, &w.paths.journal)?;
    if w.folded.settled {
        verdict(tx, rid, d, &w.folded, note.is_some())?;
    }
    tx.prepare_cached(
        "UPDATE runs SET journal_offset = ?2, complete = ?3, damage = ?4 WHERE rid = ?1",
    )?
    .execute(params![
        rid,
        w.folded.end_offset as i64,
        w.folded.settled,
        note
    ])?;
    Ok(())
}

/// Applies every edit of a run's meta journal (read from its start: they
/// are few, and applying them again gives the same result) and remembers
/// how far the journal was read.
fn apply_edits(
    tx: &Connection,
    rid: i64,
    edits: &Delta,
    meta_len: u64,
    names: &mut Names<'_>,
    m: &mut Option<Mirror>,
    written: &mut Vec<i64>,
) -> Result<(), Error> {
    attrs(tx, rid, &edits.attrs, names, m, written)?;
    untags(tx, rid, &edits.untags, m)?;
    tags(tx, rid, &edits.tags, names, m)?;
    tx.prepare_cached("UPDATE runs SET meta_len = ?2 WHERE rid = ?1")?
        .execute(params![rid, meta_len as i64])?;
    Ok(())
}

/// Writes the edits of run `id`'s meta journal alone, and its summary.
pub(super) fn edits(tx: &Connection, id: &str, edits: &Delta, meta_len: u64) -> Result<(), Error> {
    let Some(rid) = rid_of(tx, id)? else {
        return Ok(());
    };
    apply_edits(
        tx,
        rid,
        edits,
        meta_len,
        &mut Names::default(),
        &mut None,
        &mut Vec::new(),
    )?;
    summary::write(tx, rid)
}

/// Lists a run whose journal has nothing readable in it, as damaged.
pub(super) fn unreadable(tx: &Connection, short_id: &str, reason: &str) -> Result<(), Error> {
    let id = lost_start_id(short_id);
    tx.prepare_cached(
        "INSERT INTO runs (id, short_id, experiment, status, start_nanos, journal_offset, complete, damage)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, ?6)",
    )?
    .execute(params![
        id,
        short_id,
        UNKNOWN_EXPERIMENT,
        Status::Damaged.as_str(),
        slot_nanos(short_id),
        format!("nothing in the journal can be read: {reason}")
    ])?;
    summary::write(tx, tx.last_insert_rowid())?;
    Ok(())
}

/// The metric numbering of run `id`'s journal, as folded so far.
pub(super) fn metric_names(conn: &Connection, id: &str) -> Result<HashMap<u32, String>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT key_id, name FROM metric_keys WHERE run = (SELECT rid FROM runs WHERE id = ?1)",
        )?
        .query_map([id], |r| Ok((r.get("key_id")?, r.get("name")?)))?
        .collect::<Result<_, _>>()?)
}

/// The metric numbering of run `rid`'s journal, as folded so far.
fn numbering(tx: &Connection, rid: i64) -> Result<HashMap<u32, String>, Error> {
    Ok(tx
        .prepare_cached("SELECT key_id, name FROM metric_keys WHERE run = ?1")?
        .query_map([rid], |r| Ok((r.get("key_id")?, r.get("name")?)))?
        .collect::<Result<_, _>>()?)
}

/// The run's row, made when its Start record (or, lost, its folder) is read.
/// Returns whether it made it (rather than finding it made).
fn run_row(tx: &Connection, id: &str, short_id: &str, d: &Delta) -> Result<bool, Error> {
    let (experiment, time) = match (&d.start, &d.lost_start) {
        (Some(start), _) => (start.experiment.as_str(), start.time_nanos),
        (None, Some((_, time))) => (UNKNOWN_EXPERIMENT, *time),
        (None, None) => return Ok(false),
    };
    let made = tx.prepare_cached(
        "INSERT OR IGNORE INTO runs (id, short_id, experiment, status, start_nanos, journal_offset, name)
         VALUES (?1, ?2, ?3, 'running', ?4, 0, ?5)",
    )?
    .execute(params![
        id,
        short_id,
        experiment,
        time,
        // Until its journal (or meta journal) names it.
        lab_types::names::generated_name(short_id)
    ])?;
    Ok(made == 1)
}

/// Attributes, and the `runs` columns the field table copies some into
/// (set in one `UPDATE`, each to the last value the fold read for it).
/// `written` lists the attributes this fold has given an `attrs` row so
/// far, the run's own and then its edits'.
fn attrs(
    tx: &Connection,
    rid: i64,
    attrs: &[(String, Value)],
    names: &mut Names<'_>,
    m: &mut Option<Mirror>,
    written: &mut Vec<i64>,
) -> Result<(), Error> {
    // A run whose row this fold made has no `attrs` rows to take back but
    // those this fold wrote (an attribute set again, as another kind).
    let made = m.is_some();
    let mut columns: Vec<(&'static str, rusqlite::types::Value)> = Vec::new();
    for (key, value) in attrs {
        let key_id = names.attr_key(tx, key)?;
        let short_id = if key == attr::NAME {
            short_id_of(tx, rid)?
        } else {
            String::new()
        };
        if crate::fields::held_by_column(key, value, &short_id) {
            // Kept in its `runs` column alone (copied there below).
            if let Some(m) = m {
                m.attr(key, None);
            }
            if !made || written.contains(&key_id) {
                let held = take_back(tx, rid, key_id)?;
                forget_unless_named(tx, held)?;
            }
        } else {
            let encoded = blob(value);
            if let Some(m) = m {
                m.attr(key, Some(&encoded));
            }
            let (inline, shared) = if encoded.len() >= crate::schema::SHARED_VALUE {
                (None, Some(shared_value(tx, &encoded)?))
            } else {
                (Some(encoded), None)
            };
            let held = if !made || written.contains(&key_id) {
                take_back(tx, rid, key_id)?
            } else {
                None
            };
            tx.prepare_cached(
                "INSERT OR REPLACE INTO attrs (run, key, value, shared) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![rid, key_id, inline, shared])?;
            forget_unless_named(tx, held)?;
            if made {
                written.push(key_id);
            }
        }
        if key == attr::NOTE {
            // For the plain-word search (see `fields`: no field of queries).
            tx.prepare_cached("UPDATE runs SET note = ?2 WHERE rid = ?1")?
                .execute(params![
                    rid,
                    match value {
                        Value::Str(text) => Some(text.as_str()),
                        _ => None,
                    }
                ])?;
        }
        let Some((_, column)) = crate::fields::attr_columns().find(|(a, _)| a == key) else {
            continue;
        };
        let stored = match value {
            Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
            Value::Null => rusqlite::types::Value::Null,
            other => rusqlite::types::Value::Text(other.to_string()),
        };
        match columns.iter_mut().find(|(c, _)| *c == column) {
            Some(set) => set.1 = stored,
            None => columns.push((column, stored)),
        }
    }
    if !columns.is_empty() {
        let sets: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (column, _))| format!("{column} = ?{}", i + 2))
            .collect();
        // The same attributes, in the same order, run after run: one
        // statement, prepared once.
        let sql = format!("UPDATE runs SET {} WHERE rid = ?1", sets.join(", "));
        let mut stmt = tx.prepare_cached(&sql)?;
        stmt.raw_bind_parameter(1, rid)?;
        for (i, (_, stored)) in columns.iter().enumerate() {
            stmt.raw_bind_parameter(i + 2, stored)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

/// Removes run `rid`'s `attrs` row for attribute `key_id`, if it has one;
/// gives the long value the row named (kept once, in `attr_values`).
fn take_back(tx: &Connection, rid: i64, key_id: i64) -> Result<Option<i64>, Error> {
    let shared: Option<Option<i64>> = tx
        .prepare_cached("DELETE FROM attrs WHERE run = ?1 AND key = ?2 RETURNING shared")?
        .query_row(params![rid, key_id], |r| r.get(0))
        .optional()?;
    Ok(shared.flatten())
}

/// Removes the long value `shared` (from [`take_back`]) when no row names
/// it any more.
fn forget_unless_named(tx: &Connection, shared: Option<i64>) -> Result<(), Error> {
    if let Some(shared) = shared {
        tx.prepare_cached(
            "DELETE FROM attr_values WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM attrs WHERE shared = ?1)",
        )?
        .execute([shared])?;
    }
    Ok(())
}

/// The short id of run `rid`.
fn short_id_of(tx: &Connection, rid: i64) -> Result<String, Error> {
    Ok(tx
        .prepare_cached("SELECT short_id FROM runs WHERE rid = ?1")?
        .query_row([rid], |r| r.get(0))?)
}

/// The id of `encoded` in `attr_values`, where it is added unless there
/// already: a long attribute value is mostly one every run of a process has.
fn shared_value(tx: &Connection, encoded: &[u8]) -> Result<i64, Error> {
    let hash = fnv1a(encoded);
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM attr_values WHERE hash = ?1 AND value = ?2")?
        .query_row(params![hash, encoded], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO attr_values (hash, value) VALUES (?1, ?2)")?
        .execute(params![hash, encoded])?;
    Ok(tx.last_insert_rowid())
}

/// FNV-1a: a hash that is the same in every build, for finding a value
/// among `attr_values` (equal hashes are then compared in full).
fn fnv1a(bytes: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.cast_signed()
}

/// Parameters: the latest value of each, stored once.
fn params_of(
    tx: &Connection,
    rid: i64,
    d: &Delta,
    names: &mut Names<'_>,
    m: &mut Option<Mirror>,
) -> Result<(), Error> {
    for p in &d.params {
        let (stored, text) = param_columns(&p.value);
        if let Some(m) = m {
            m.param(&p.key, &stored, text.as_deref());
        }
        // A number or bool its text gives back exactly is kept as that text
        // (and `num`) alone, with a NULL `value`.
        let kept = match text.as_deref() {
            Some(t) if number_in_text(&p.value, t) => None,
            _ => Some(stored),
        };
        tx.prepare_cached(
            "INSERT INTO params (run, key, seq, value, text, num) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run, key) DO UPDATE SET value = excluded.value, text = excluded.text, num = excluded.num",
        )?
        .execute(params![rid, p.key, p.offset as i64, kept, text, p.value.as_f64().and_then(real)])?;
        names.remember(tx, "params", &p.key)?;
    }
    Ok(())
}

/// Metric names and summaries (merged with what was folded before). The
/// journal's metric numbering is kept only while more of it may be folded:
/// a settled run's is dropped.
fn metrics(
    tx: &Connection,
    rid: i64,
    d: &Delta,
    settled: bool,
    names: &mut Names<'_>,
    m: &mut Option<Mirror>,
) -> Result<(), Error> {
    // The numbers this stretch declares, then those of earlier folds, read
    // only when a point needs one.
    let mut numbered: HashMap<u32, String> =
        d.new_keys.iter().map(|k| (k.key, k.name.clone())).collect();
    if d.metrics.keys().any(|k| !numbered.contains_key(k)) {
        for (key, name) in numbering(tx, rid)? {
            numbered.entry(key).or_insert(name);
        }
    }
    for k in &d.new_keys {
        if !settled {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO metric_keys (run, key_id, name) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![rid, k.key, k.name])?;
        }
        names.remember(tx, "metrics", &k.name)?;
    }
    // A run whose row this fold made has no numbering kept yet.
    if settled && m.is_none() {
        tx.prepare_cached("DELETE FROM metric_keys WHERE run = ?1")?
            .execute([rid])?;
    }
    if d.metrics.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO metrics (run, key, seq, last, last_bits, last_step, min, max, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (run, key) DO UPDATE SET
           last = excluded.last, last_bits = excluded.last_bits, last_step = excluded.last_step,
           min = nullif(coalesce(min(coalesce(min, last), coalesce(excluded.min, excluded.last)),
                                 coalesce(min, last), coalesce(excluded.min, excluded.last)), excluded.last),
           max = nullif(coalesce(max(coalesce(max, last), coalesce(excluded.max, excluded.last)),
                                 coalesce(max, last), coalesce(excluded.max, excluded.last)), excluded.last),
           count = count + excluded.count",
    )?;
    for (key_id, s) in &d.metrics {
        // A point whose key was never declared cannot be named; the writer
        // always declares first, so this is only reachable in a damaged journal.
        let Some(name) = numbered.get(key_id) else {
            continue;
        };
        if let Some(m) = m {
            let row = (
                name.clone(),
                s.last.to_bits() as i64,
                s.last_step,
                s.min,
                s.max,
                s.count,
            );
            m.metric(s.first_seq, row);
        }
        stmt.execute(params![
            rid,
            name,
            s.first_seq as i64,
            real(s.last),
            last_bits(s.last),
            s.last_step,
            unless_last(s.min, s.last),
            unless_last(s.max, s.last),
            s.count
        ])?;
    }
    Ok(())
}

/// A metric's smallest or largest value for its column: NULL when it is the
/// last value (a metric logged once, or ending on its best), which readers
/// take from `last` instead. NULL in a row whose `last` is NULL (NaN) means
/// that every value was NaN.
fn unless_last(extreme: Option<f64>, last: f64) -> Option<f64> {
    // Exactly equal, as REAL columns compare them: -0.0 equals 0.
    #[allow(clippy::float_cmp)]
    extreme.filter(|v| last.is_nan() || *v != last)
}

/// A metric's last value's bits, for the `last_bits` column: only when its
/// REAL column cannot hold it exactly (NaN, which it keeps as NULL, and
/// -0.0, which SQLite keeps as 0).
fn last_bits(last: f64) -> Option<i64> {
    (last.is_nan() || (last == 0.0 && last.is_sign_negative())).then_some(last.to_bits() as i64)
}

fn untags(tx: &Connection, rid: i64, keys: &[String], m: &mut Option<Mirror>) -> Result<(), Error> {
    for key in keys {
        if let Some(m) = m {
            m.untag(key);
        }
        tx.prepare_cached("DELETE FROM tags WHERE run = ?1 AND key = ?2")?
            .execute(params![rid, key])?;
    }
    Ok(())
}

fn tags(
    tx: &Connection,
    rid: i64,
    tags: &[(String, String)],
    names: &mut Names<'_>,
    m: &mut Option<Mirror>,
) -> Result<(), Error> {
    for (key, value) in tags {
        if let Some(m) = m {
            m.tag(key, value);
        }
        tx.prepare_cached("INSERT OR REPLACE INTO tags (run, key, value) VALUES (?1, ?2, ?3)")?
            .execute(params![rid, key, value])?;
        names.remember(tx, "tags", key)?;
    }
    Ok(())
}

/// Artifacts as logged, then as copied into the run.
fn artifacts(tx: &Connection, rid: i64, d: &Delta) -> Result<(), Error> {
    for a in &d.artifacts {
        tx.prepare_cached(
            "INSERT INTO artifacts (run, name, seq, source) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (run, name) DO UPDATE SET source = excluded.source",
        )?
        .execute(params![rid, a.name, a.offset as i64, a.source])?;
    }
    for s in &d.stored {
        tx.prepare_cached(
            "UPDATE artifacts SET path = ?3, files = ?4, bytes = ?5 WHERE run = ?1 AND name = ?2",
        )?
        .execute(params![rid, s.name, s.path, s.files as i64, s.bytes as i64])?;
    }
    Ok(())
}

fn models(tx: &Connection, rid: i64, d: &Delta) -> Result<(), Error> {
    for m in &d.models {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO models (run, name, seq, path, format, class, library, library_version, size, sha256, logged_nanos)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            rid,
            m.name,
            m.offset as i64,
            m.path,
            m.format,
            m.class,
            m.library,
            m.library_version,
            m.size as i64,
            m.sha256,
            m.time_nanos
        ])?;
    }
    Ok(())
}

/// Media files: a later record of the same key and step replaces the row
/// (its file was replaced before the record was written), but keeps its
/// `seq`, so that keys stay in the order first logged.
fn media(tx: &Connection, rid: i64, d: &Delta) -> Result<(), Error> {
    for m in &d.media {
        tx.prepare_cached(
            "INSERT INTO media (run, key, step, seq, kind, path, width, height, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (run, key, step) DO UPDATE SET kind = excluded.kind, path = excluded.path,
                 width = excluded.width, height = excluded.height, bytes = excluded.bytes",
        )?
        .execute(params![
            rid,
            m.key,
            m.step,
            m.offset as i64,
            m.kind.as_str(),
            m.path,
            m.width,
            m.height,
            m.bytes as i64
        ])?;
    }
    Ok(())
}

/// The End record: status, end time and the exception of a failed run.
fn end(tx: &Connection, rid: i64, d: &Delta) -> Result<(), Error> {
    let Some(end) = &d.end else {
        return Ok(());
    };
    let error = end.error.as_ref();
    tx.prepare_cached(
        "UPDATE runs SET status = ?2, end_nanos = ?3, error_type = ?4, error_message = ?5, traceback = ?6 WHERE rid = ?1",
    )?
    .execute(params![
        rid,
        end.status.as_str(),
        end.time_nanos,
        error.map(|e| &e.kind),
        error.map(|e| &e.message),
        error.map(|e| &e.traceback)
    ])?;
    Ok(())
}

/// The writer is gone: a run it never ended crashed, or is damaged (see
/// [`crate::facts::settled_status`]).
fn verdict(
    tx: &Connection,
    rid: i64,
    d: &Delta,
    folded: &Folded<'_>,
    noted: bool,
) -> Result<(), Error> {
    let verdict = crate::facts::settled_status(d, folded, noted);
    tx.prepare_cached("UPDATE runs SET status = ?2 WHERE rid = ?1 AND status = 'running'")?
        .execute(params![rid, verdict.as_str()])?;
    Ok(())
}

/// The damage an earlier fold noted, to which this one adds (see
/// [`crate::facts::damage_note`]).
fn earlier_damage(tx: &Connection, rid: i64) -> Result<Option<String>, Error> {
    Ok(tx
        .prepare_cached("SELECT damage FROM runs WHERE rid = ?1")?
        .query_row([rid], |r| r.get("damage"))
        .optional()?
        .flatten())
}

/// What the transaction under way recorded: the names (scope and key) in
/// the `names` table, so that each is inserted once, not once a run, and the
/// numbers of attribute names in `attr_keys`, so that each is looked up once.
#[derive(Default)]
pub(super) struct Remembered {
    names: HashSet<(&'static str, String)>,
    attr_keys: HashMap<String, i64>,
}

impl Remembered {
    /// Forgets everything: the transaction that recorded it rolled back.
    pub(super) fn clear(&mut self) {
        self.names.clear();
        self.attr_keys.clear();
    }
}

/// What the transaction under way recorded ([`Remembered`]); `None`
/// remembers nothing (each name is inserted, and ignored when there).
#[derive(Default)]
pub(super) struct Names<'a>(pub(super) Option<&'a mut Remembered>);

impl Names<'_> {
    /// Records that some run has a metric, parameter or tag of this name,
    /// for resolving names in queries without scanning the big tables.
    fn remember(&mut self, tx: &Connection, scope: &'static str, key: &str) -> Result<(), Error> {
        if let Some(seen) = &mut self.0 {
            if seen.names.contains(&(scope, key.to_owned())) {
                return Ok(());
            }
            remember_name(tx, scope, key)?;
            seen.names.insert((scope, key.to_owned()));
            return Ok(());
        }
        remember_name(tx, scope, key)
    }

    /// The number of attribute name `key` in `attr_keys`, where it is added
    /// unless there already.
    fn attr_key(&mut self, tx: &Connection, key: &str) -> Result<i64, Error> {
        if let Some(id) = self.0.as_ref().and_then(|seen| seen.attr_keys.get(key)) {
            return Ok(*id);
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM attr_keys WHERE name = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let id = if let Some(id) = found {
            id
        } else {
            tx.prepare_cached("INSERT INTO attr_keys (name) VALUES (?1)")?
                .execute([key])?;
            tx.last_insert_rowid()
        };
        if let Some(seen) = &mut self.0 {
            seen.attr_keys.insert(key.to_owned(), id);
        }
        Ok(id)
    }
}

/// Records that some run has a metric, parameter or tag of this name, for
/// resolving names in queries without scanning the big tables.
fn remember_name(tx: &Connection, scope: &str, key: &str) -> Result<(), Error> {
    tx.prepare_cached("INSERT OR IGNORE INTO names (scope, key) VALUES (?1, ?2)")?
        .execute(params![scope, key])?;
    Ok(())
}
