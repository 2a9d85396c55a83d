//! The index in SQLite: how a project on disk keeps what the fold reads from
//! its journals (docs/storage.md describes the tables).
//!
//! [`SqliteIndex`] implements the fold's [`FoldIndex`](crate::index::FoldIndex)
//! over one connection; `write` splits a fold's delta into the tables, one
//! function per record family.

mod write;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use lab_journal::codec;
use lab_types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::fold_index::{FoldIndex, FoldWrite, Indexed, Written};
use crate::{Error, Project};

/// A project's SQLite index, seen through one connection.
pub(crate) struct SqliteIndex<'c> {
    conn: &'c mut Connection,
    /// Whether a batch was begun: each fold is then a savepoint in its
    /// transaction, which the first write opens (so that reading journals
    /// before it holds no lock).
    batch: bool,
    /// Whether the batch's transaction is open.
    open: bool,
    /// What the open batch recorded (see [`write::Names`]).
    named: write::Remembered,
}

/// How many prepared statements a connection keeps: a fold runs some forty
/// different ones a run, and rusqlite's default of 16 would prepare most of
/// them again for every run.
const STATEMENTS: usize = 128;

impl<'c> SqliteIndex<'c> {
    pub(crate) fn new(conn: &'c mut Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Self {
            conn,
            batch: false,
            open: false,
            named: write::Remembered::default(),
        }
    }
}

impl SqliteIndex<'_> {
    /// Opens the begun batch's transaction, if it is not open yet.
    fn open_batch(&mut self) -> Result<(), Error> {
        if !self.open {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.open = true;
        }
        Ok(())
    }
}

/// Writes one fold inside `tx`, unless the run's progress is no longer
/// `expected`.
fn write_fold_in(
    tx: &Connection,
    expected: Option<&Indexed>,
    write: &FoldWrite<'_>,
    cut_tail: &mut dyn FnMut() -> Option<PathBuf>,
    names: &mut write::Names<'_>,
) -> Result<Written, Error> {
    let now = indexed(tx, write.short_id)?;
    let progress = |i: Option<&Indexed>| i.map(|i| (i.offset, i.complete));
    if progress(now.as_ref()) != progress(expected) {
        // Someone else folded these bytes meanwhile (or, finding no new
        // record, settled the run and cut its tail).
        return Ok(Written::Raced);
    }
    let kept = cut_tail();
    write::fold(tx, write, kept.as_deref(), names)?;
    crate::schema::bump_generation(tx)?;
    Ok(Written::Done { kept })
}

/// Lists a run whose journal holds nothing readable, inside `tx`.
fn write_unreadable_in(tx: &Connection, short_id: &str, reason: &str) -> Result<(), Error> {
    if indexed(tx, short_id)?.is_none() {
        write::unreadable(tx, short_id, reason)?;
        crate::schema::bump_generation(tx)?;
    }
    Ok(())
}

/// What the index holds of run `short_id`: the `runs` row's progress.
pub(crate) fn indexed(conn: &Connection, short_id: &str) -> Result<Option<Indexed>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT id, journal_offset, complete, meta_len FROM runs WHERE short_id = :short_id",
        )?
        .query_row(&[(":short_id", short_id)], |r| {
            Ok(Indexed {
                id: r.get("id")?,
                offset: r.get::<_, i64>("journal_offset")? as u64,
                complete: r.get("complete")?,
                meta_len: r.get::<_, i64>("meta_len")? as u64,
            })
        })
        .optional()?)
}

/// Folds the meta journals edited since the last look: when the project's
/// edit stamp moved, each run whose meta journal's length differs from what
/// the index folded.
pub(crate) fn fold_edited(project: &Project, conn: &mut Connection) -> Result<(), Error> {
    let Some(stamp) = mtime_nanos(&project.edits_stamp()) else {
        // Never edited.
        return Ok(());
    };
    let seen: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'edits_seen'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if seen == Some(stamp) {
        return Ok(());
    }
    let runs: Vec<(String, String, i64)> = conn
        .prepare_cached("SELECT short_id, id, meta_len FROM runs")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (short, id, meta_len) in runs {
        let len = std::fs::metadata(project.run_paths(&short).meta).map_or(0, |m| m.len());
        if len != u64::try_from(meta_len).unwrap_or(0) {
            fold_edits(project, conn, &short, &id)?;
        }
    }
    // Remembered once it has stood still for a second: an edit in the same
    // clock tick would not move it, and would be missed.
    if lab_types::now_nanos() - stamp > 1_000_000_000 {
        conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('edits_seen', ?1)")?
            .execute([stamp])?;
    }
    Ok(())
}

/// Folds every edit of run `short`'s meta journal (indexed as `id`), in one
/// transaction.
pub(crate) fn fold_edits(
    project: &Project,
    conn: &mut Connection,
    short: &str,
    id: &str,
) -> Result<(), Error> {
    let Some((edits, len)) = crate::fold::read_edits(&project.run_paths(short).meta)? else {
        return Ok(());
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    write::edits(&tx, id, &edits, len)?;
    crate::schema::bump_generation(&tx)?;
    tx.commit()?;
    Ok(())
}

fn mtime_nanos(path: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

impl FoldIndex for SqliteIndex<'_> {
    fn indexed(&self, short_id: &str) -> Result<Option<Indexed>, Error> {
        indexed(self.conn, short_id)
    }

    fn indexed_id(&self, id: &str) -> Result<Option<Indexed>, Error> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, journal_offset, complete, meta_len FROM runs WHERE id = :id",
            )?
            .query_row(&[(":id", id)], |r| {
                Ok(Indexed {
                    id: r.get("id")?,
                    offset: r.get::<_, i64>("journal_offset")? as u64,
                    complete: r.get("complete")?,
                    meta_len: r.get::<_, i64>("meta_len")? as u64,
                })
            })
            .optional()?)
    }

    fn metric_names(&self, id: &str) -> Result<HashMap<u32, String>, Error> {
        write::metric_names(self.conn, id)
    }

    fn attr(&self, id: &str, key: &str) -> Result<Option<Value>, Error> {
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT coalesce(value, (SELECT value FROM attr_values WHERE id = shared)) FROM attrs WHERE run = (SELECT rid FROM runs WHERE id = ?1) AND key = (SELECT id FROM attr_keys WHERE name = ?2)")?
            .query_row(params![id, key], |r| r.get(0))
            .optional()?;
        if let Some(blob) = blob {
            return Ok(codec::decode_value(&blob).ok());
        }
        // An attribute its `runs` column holds alone.
        if !crate::fields::attr_columns().any(|(a, _)| a == key) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT short_id, {} FROM runs WHERE id = ?1",
            crate::fields::ATTR_COLUMNS_SQL
        );
        let columns = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| {
                let short_id: String = r.get(0)?;
                crate::fields::column_attrs(r, 1, &short_id)
            })
            .optional()?
            .unwrap_or_default();
        Ok(columns.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
    }

    fn begin_batch(&mut self) -> Result<(), Error> {
        self.batch = true;
        Ok(())
    }

    fn end_batch(&mut self, commit: bool) -> Result<(), Error> {
        self.batch = false;
        self.named.clear();
        if !std::mem::take(&mut self.open) {
            return Ok(());
        }
        if commit {
            self.conn.execute_batch("COMMIT")?;
        } else if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    fn write_fold(
        &mut self,
        expected: Option<&Indexed>,
        write: &FoldWrite<'_>,
        cut_tail: &mut dyn FnMut() -> Option<PathBuf>,
    ) -> Result<Written, Error> {
        if self.batch {
            self.open_batch()?;
            let sp = self.conn.savepoint()?;
            let mut names = write::Names(Some(&mut self.named));
            let written = write_fold_in(&sp, expected, write, cut_tail, &mut names);
            let written = written.and_then(|w| Ok(sp.commit().map(|()| w)?));
            if written.is_err() {
                // Rolled back: what it recorded is gone.
                self.named.clear();
            }
            return written;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let written = write_fold_in(&tx, expected, write, cut_tail, &mut write::Names(None))?;
        tx.commit()?;
        Ok(written)
    }

    fn write_unreadable(&mut self, short_id: &str, reason: &str) -> Result<(), Error> {
        if self.batch {
            self.open_batch()?;
            let sp = self.conn.savepoint()?;
            write_unreadable_in(&sp, short_id, reason)?;
            sp.commit()?;
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_unreadable_in(&tx, short_id, reason)?;
        tx.commit()?;
        Ok(())
    }

    fn complete_runs(&self) -> Result<HashSet<String>, Error> {
        Ok(self
            .conn
            .prepare("SELECT short_id FROM runs WHERE complete = 1")?
            .query_map([], |r| r.get("short_id"))?
            .collect::<Result<_, _>>()?)
    }

    fn any_incomplete(&self) -> Result<bool, Error> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE complete = 0)",
            [],
            |r| r.get(0),
        )?)
    }

    fn settled_dir_mtime(&self) -> Result<Option<i64>, Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'runs_dir_mtime'",
                [],
                |r| r.get("value"),
            )
            .optional()?)
    }

    fn set_settled_dir_mtime(&mut self, mtime: Option<i64>) -> Result<(), Error> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('runs_dir_mtime', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [mtime],
        )?;
        Ok(())
    }

    fn forget_vanished(
        &mut self,
        project: &Project,
        complete_vanished: bool,
        listed_pending: &[String],
    ) -> Result<(), Error> {
        crate::remove::forget_vanished(project, self.conn, complete_vanished, listed_pending)
    }
}
