//! The fold's side of the index in PostgreSQL: what it asks
//! ([`FoldIndex`]'s questions), its transactions, and the removal of runs
//! (`records` writes what one fold read). What is decided the same way in
//! any database (the damage note, the settled status, how a parameter is
//! kept) comes from `lab_store::index`.
//!
//! Each fold is one transaction holding an advisory lock on its run, so two
//! servers folding one run take turns, and the second finds the first's
//! progress and starts again from there: a stretch of journal is never
//! counted twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use lab_store::index::{
    FoldIndex, FoldWrite, Indexed, UNKNOWN_EXPERIMENT, Written, lost_start_id, slot_nanos, vanished,
};
use lab_store::{Error, Project};
use lab_types::{Status, Value};
use postgres::{Client, GenericClient, Transaction};

use crate::records::{Fold, Prepared, prepare};
use crate::{Pg as _, PgIndex, text};

/// Which column [`indexed`] finds a run by.
#[derive(Clone, Copy)]
enum By {
    /// Its short id: a project on disk, where a short id is one folder.
    Short,
    /// Its full id: runs received from many machines may share a short id.
    Id,
}

/// What the index holds of the run of project `project` whose short id or
/// full id (`by`) is `key`.
fn indexed(
    c: &mut impl GenericClient,
    prepared: &mut Prepared,
    project: i32,
    by: By,
    key: &str,
) -> Result<Option<Indexed>, Error> {
    let stmt = prepare(
        prepared,
        c,
        match by {
            By::Short => {
                "SELECT id, journal_offset, complete, meta_len FROM lab.runs WHERE project_id = $1 AND short_id = $2 ORDER BY id LIMIT 1"
            }
            By::Id => {
                "SELECT id, journal_offset, complete, meta_len FROM lab.runs WHERE project_id = $1 AND id = $2"
            }
        },
    )?;
    Ok(c.query_opt(&stmt, &[&project, &key])
        .pg()?
        .map(|r| Indexed {
            id: r.get(0),
            offset: r.get::<_, i64>(1) as u64,
            complete: r.get(2),
            meta_len: r.get::<_, i64>(3) as u64,
        }))
}

/// Takes the lock of short id `short_id` of project `project` until the
/// end of the transaction: folds of one run take turns.
fn lock_run(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    project: i32,
    short_id: &str,
) -> Result<(), Error> {
    let stmt = prepare(
        prepared,
        tx,
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
    )?;
    tx.execute(&stmt, &[&project, &short_id]).pg()?;
    Ok(())
}

/// Moves the project's generation on; inside the transaction that changes
/// its runs.
fn bump_generation(
    tx: &mut Transaction<'_>,
    prepared: &mut Prepared,
    project: i32,
) -> Result<(), Error> {
    let stmt = prepare(
        prepared,
        tx,
        "UPDATE lab.projects SET generation = generation + 1 WHERE id = $1",
    )?;
    tx.execute(&stmt, &[&project]).pg()?;
    Ok(())
}

impl FoldIndex for PgIndex {
    fn indexed(&self, short_id: &str) -> Result<Option<Indexed>, Error> {
        indexed(
            &mut *self.client.borrow_mut(),
            &mut self.prepared.borrow_mut(),
            self.project,
            By::Short,
            short_id,
        )
    }

    fn indexed_id(&self, id: &str) -> Result<Option<Indexed>, Error> {
        indexed(
            &mut *self.client.borrow_mut(),
            &mut self.prepared.borrow_mut(),
            self.project,
            By::Id,
            id,
        )
    }

    fn keys_by_id(&self) -> bool {
        true
    }

    fn metric_names(&self, id: &str) -> Result<HashMap<u32, String>, Error> {
        let mut client = self.client.borrow_mut();
        let stmt = prepare(
            &mut self.prepared.borrow_mut(),
            &mut *client,
            "SELECT key_id, name FROM lab.metric_keys WHERE project_id = $1 AND run_id = $2",
        )?;
        Ok(client
            .query(&stmt, &[&self.project, &id])
            .pg()?
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u32, r.get(1)))
            .collect())
    }

    fn attr(&self, id: &str, key: &str) -> Result<Option<Value>, Error> {
        let row = self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT value FROM lab.attrs WHERE project_id = $1 AND run_id = $2 AND key = $3",
                &[&self.project, &id, &key],
            )
            .pg()?;
        Ok(row.map(|r| lab_store::index::decode_value(r.get(0))))
    }

    fn write_fold(
        &mut self,
        expected: Option<&Indexed>,
        write: &FoldWrite<'_>,
        cut_tail: &mut dyn FnMut() -> Option<PathBuf>,
    ) -> Result<Written, Error> {
        let project = self.project;
        let mut client = self.client.borrow_mut();
        let mut prepared = self.prepared.borrow_mut();
        let mut tx = client.transaction().pg()?;
        // Locked by short id, as `write_unreadable` is (runs sharing one
        // take turns); found by full id, which is one run whether its
        // journal is a folder's or was received.
        lock_run(&mut tx, &mut prepared, project, write.short_id)?;
        let now = indexed(&mut tx, &mut prepared, project, By::Id, write.id)?;
        let progress = |i: Option<&Indexed>| i.map(|i| (i.offset, i.complete));
        if progress(now.as_ref()) != progress(expected) {
            // Someone else folded these bytes meanwhile (or, finding no new
            // record, settled the run and cut its tail).
            return Ok(Written::Raced);
        }
        let kept = cut_tail();
        Fold {
            tx: &mut tx,
            prepared: &mut prepared,
            project,
            id: write.id,
            names: BTreeSet::new(),
        }
        .write(write, kept.as_deref())?;
        bump_generation(&mut tx, &mut prepared, project)?;
        tx.commit().pg()?;
        Ok(Written::Done { kept })
    }

    fn write_unreadable(&mut self, short_id: &str, reason: &str) -> Result<(), Error> {
        let project = self.project;
        let mut client = self.client.borrow_mut();
        let mut prepared = self.prepared.borrow_mut();
        let mut tx = client.transaction().pg()?;
        lock_run(&mut tx, &mut prepared, project, short_id)?;
        if indexed(&mut tx, &mut prepared, project, By::Short, short_id)?.is_none() {
            let reason = format!("nothing in the journal can be read: {reason}");
            tx.execute(
                "INSERT INTO lab.runs (project_id, id, short_id, experiment, status, start_nanos, journal_offset, complete, damage)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, true, $7)",
                &[
                    &project,
                    &lost_start_id(short_id),
                    &short_id,
                    &UNKNOWN_EXPERIMENT,
                    &Status::Damaged.as_str(),
                    &slot_nanos(short_id),
                    &text(&reason).as_ref(),
                ],
            )
            .pg()?;
            bump_generation(&mut tx, &mut prepared, project)?;
        }
        tx.commit().pg()
    }

    fn complete_runs(&self) -> Result<HashSet<String>, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query(
                "SELECT short_id FROM lab.runs WHERE project_id = $1 AND complete",
                &[&self.project],
            )
            .pg()?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn any_incomplete(&self) -> Result<bool, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM lab.runs WHERE project_id = $1 AND NOT complete)",
                &[&self.project],
            )
            .pg()?
            .get(0))
    }

    fn settled_dir_mtime(&self) -> Result<Option<i64>, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query_one(
                "SELECT runs_dir_mtime FROM lab.projects WHERE id = $1",
                &[&self.project],
            )
            .pg()?
            .get(0))
    }

    fn set_settled_dir_mtime(&mut self, mtime: Option<i64>) -> Result<(), Error> {
        self.client
            .borrow_mut()
            .execute(
                "UPDATE lab.projects SET runs_dir_mtime = $2 WHERE id = $1",
                &[&self.project, &mtime],
            )
            .pg()?;
        Ok(())
    }

    fn forget_vanished(
        &mut self,
        project: &Project,
        complete_vanished: bool,
        listed_pending: &[String],
    ) -> Result<(), Error> {
        let sql = if complete_vanished {
            "SELECT id, short_id FROM lab.runs WHERE project_id = $1"
        } else {
            "SELECT id, short_id FROM lab.runs WHERE project_id = $1 AND NOT complete"
        };
        let mut client = self.client.borrow_mut();
        let gone: Vec<String> = client
            .query(sql, &[&self.project])
            .pg()?
            .into_iter()
            .filter(|r| vanished(project, r.get(1), listed_pending))
            .map(|r| r.get(0))
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut tx = client.transaction().pg()?;
        // Every per-run row goes with its run (foreign keys cascade).
        tx.execute(
            "DELETE FROM lab.runs WHERE project_id = $1 AND id = ANY($2)",
            &[&self.project, &gone],
        )
        .pg()?;
        forget_unused_names(&mut tx, self.project)?;
        bump_generation(&mut tx, &mut self.prepared.borrow_mut(), self.project)?;
        tx.commit().pg()
    }
}

/// Drops the names (of metrics, parameters and tags) no run of the project
/// has any more, so that queries no longer offer them.
fn forget_unused_names(tx: &mut Transaction<'_>, project: i32) -> Result<(), Error> {
    for (scope, table) in [
        ("metrics", "metrics"),
        ("params", "params"),
        ("tags", "tags"),
    ] {
        tx.execute(
            &format!(
                "DELETE FROM lab.names n WHERE n.project_id = $1 AND n.scope = $2
                 AND NOT EXISTS (SELECT 1 FROM lab.{table} t WHERE t.project_id = $1 AND t.key = n.key)"
            ),
            &[&project, &scope],
        )
        .pg()?;
    }
    Ok(())
}

/// Deletes every run of project `project` (see [`PgIndex::clear`]).
pub(crate) fn clear(client: &mut Client, project: i32) -> Result<(), Error> {
    let mut tx = client.transaction().pg()?;
    tx.execute("DELETE FROM lab.runs WHERE project_id = $1", &[&project])
        .pg()?;
    tx.execute("DELETE FROM lab.names WHERE project_id = $1", &[&project])
        .pg()?;
    tx.execute(
        "UPDATE lab.projects SET runs_dir_mtime = NULL WHERE id = $1",
        &[&project],
    )
    .pg()?;
    bump_generation(&mut tx, &mut Prepared::new(), project)?;
    tx.commit().pg()
}
