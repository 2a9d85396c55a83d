//! Removing runs from the index: runs `lab rm` deletes, and runs whose
//! folder is gone.

use rusqlite::{Connection, TransactionBehavior};

use crate::{Error, Project, RunInfo, Store};

/// The tables holding one row or more per run, keyed by `run` (`runs.rid`).
const RUN_TABLES: &[&str] = &[
    "attrs",
    "params",
    "metric_keys",
    "metrics",
    "tags",
    "artifacts",
    "models",
    "media",
];

impl Store {
    /// Deletes every indexed row of the run with full id `id`, in one
    /// transaction: its row in `runs` and its rows in every per-run table.
    /// Names (of metrics, parameters and tags) that no remaining run has are
    /// dropped too, so queries and suggestions no longer offer them.
    ///
    /// Only the index changes: the run's folder is the caller's to remove.
    /// While the folder exists, [`Store::refresh`] indexes the run again from
    /// its journal. Removing an id the index does not hold does nothing.
    pub fn remove_run(&mut self, id: &str) -> Result<(), Error> {
        self.keep_rebuilt();
        remove_rows(&mut self.conn, &[id.to_owned()])
    }
}

/// Deletes every indexed row of the runs with these full ids, in one
/// transaction (see [`Store::remove_run`]).
fn remove_rows(conn: &mut Connection, ids: &[String]) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut shared = Vec::new();
    for id in ids {
        let Some(rid) = crate::schema::rid_of(&tx, id)? else {
            continue;
        };
        let mut stmt =
            tx.prepare_cached("SELECT shared FROM attrs WHERE run = ?1 AND shared IS NOT NULL")?;
        for s in stmt.query_map([rid], |r| r.get::<_, i64>(0))? {
            shared.push(s?);
        }
        drop(stmt);
        for table in RUN_TABLES {
            tx.execute(&format!("DELETE FROM {table} WHERE run = ?1"), [rid])?;
        }
        tx.execute("DELETE FROM runs WHERE rid = ?1", [rid])?;
    }
    for (scope, table) in [
        ("metrics", "metrics"),
        ("params", "params"),
        ("tags", "tags"),
    ] {
        tx.execute(
            &format!(
                "DELETE FROM names WHERE scope = ?1 AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.key = names.key)"
            ),
            [scope],
        )?;
    }
    // A long attribute value no other run has goes with the last run that had it.
    for id in shared {
        tx.prepare_cached(
            "DELETE FROM attr_values WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM attrs WHERE shared = ?1)",
        )?
        .execute([id])?;
    }
    crate::schema::bump_generation(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Deletes the index rows of runs whose folder is gone: deleted by hand, or
/// with the whole runs folder. The index is derived from the folders, and
/// must not list runs they no longer hold.
///
/// `refresh` has just listed the runs folder: `complete_vanished` says
/// whether it missed a folder of a complete run (only then are the folders
/// of all runs looked for, which is rare), and `listed_pending` holds the
/// folders it saw that the index does not hold complete, sorted. A run is
/// looked for once more on disk before its rows go, so a run whose folder
/// was made after that listing keeps them.
pub(crate) fn forget_vanished(
    project: &Project,
    conn: &mut Connection,
    complete_vanished: bool,
    listed_pending: &[String],
) -> Result<(), Error> {
    let sql = if complete_vanished {
        "SELECT id, short_id FROM runs"
    } else {
        "SELECT id, short_id FROM runs WHERE complete = 0"
    };
    let mut gone: Vec<String> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let short: String = row.get(1)?;
            if vanished(project, &short, listed_pending) {
                gone.push(row.get(0)?);
            }
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    remove_rows(conn, &gone)
}

impl Store {
    /// Deletes a run for good: its index rows first, then its folder, which is
    /// moved to `.lab/trash` with one rename and deleted there. A crash leaves
    /// the run whole (its folder is indexed again) or a trash folder that
    /// `lab gc` deletes. An error after the rename leaves only that trash.
    pub fn delete_run(&mut self, run: &RunInfo) -> Result<(), Error> {
        let dir = self.project.run_paths(&run.short_id).dir;
        let trash_dir = self.project.store_dir().join("trash");
        let trash = trash_dir.join(&run.short_id);
        self.remove_run(&run.id.to_string())?;
        if !dir.exists() {
            return Ok(());
        }
        fs_err::create_dir_all(&trash_dir)?;
        if fs_err::symlink_metadata(&trash).is_ok() {
            // Left by an earlier removal that stopped halfway.
            fs_err::remove_dir_all(&trash)?;
        }
        fs_err::rename(&dir, &trash)?;
        fs_err::remove_dir_all(&trash)?;
        Ok(())
    }
}

/// Whether run `short_id`, indexed but not seen in the runs folder's listing
/// (`listed_pending`, sorted: what `FoldIndex::forget_vanished` is given), is
/// gone from disk: its rows are then to go.
#[must_use]
pub fn vanished(project: &Project, short_id: &str, listed_pending: &[String]) -> bool {
    listed_pending
        .binary_search_by(|s| s.as_str().cmp(short_id))
        .is_err()
        && !project.run_paths(short_id).dir.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
    }

    #[test]
    fn removes_every_row_of_one_run_and_only_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let mut store = Store::open(project).unwrap();
        store
            .conn
            .execute_batch(
                "
                INSERT INTO runs (rid, id, short_id, experiment, status, start_nanos, journal_offset)
                    VALUES (1, 'aa', 'aa', 'e', 'finished', 1, 0), (2, 'bb', 'bb', 'e', 'finished', 2, 0);
                INSERT INTO attrs VALUES (1, 'user', x'', NULL), (2, 'user', x'', NULL),
                    (1, 'packages', NULL, 1), (2, 'packages', NULL, 1), (1, 'writer', NULL, 2);
                INSERT INTO attr_values VALUES (1, 0, x'01'), (2, 0, x'02');
                INSERT INTO params VALUES (1, 'lr', 0, x'', '0.1', 0.1), (2, 'seed', 0, x'', '1', 1);
                INSERT INTO metric_keys VALUES (1, 0, 'acc'), (2, 0, 'acc');
                INSERT INTO metrics VALUES (1, 'acc', 0, 1, NULL, 0, 1, 1, 1), (1, 'only_a', 1, 1, NULL, 0, 1, 1, 1),
                    (2, 'acc', 0, 1, NULL, 0, 1, 1, 1);
                INSERT INTO tags VALUES (1, 'stage', 'x');
                INSERT INTO artifacts VALUES (1, 'cm', 0, 'cm.csv', NULL, NULL, NULL);
                INSERT INTO models VALUES (1, 'clf', 0, 'models/clf.joblib', 'joblib', 'C', 'l', '1', 1, 'h', 1);
                INSERT INTO names VALUES ('metrics', 'acc'), ('metrics', 'only_a'), ('params', 'lr'), ('params', 'seed'), ('tags', 'stage');
                ",
            )
            .unwrap();
        store.remove_run("aa").unwrap();
        for table in RUN_TABLES.iter().chain(&["runs"]) {
            let column = if *table == "runs" { "rid" } else { "run" };
            assert_eq!(
                count(
                    &store,
                    &format!("SELECT count(*) FROM {table} WHERE {column} = 1")
                ),
                0,
                "{table}"
            );
        }
        assert_eq!(count(&store, "SELECT count(*) FROM runs"), 1);
        assert_eq!(count(&store, "SELECT count(*) FROM metrics"), 1);
        // A count read from the index of a metric's values alone no longer
        // sees the run either.
        let acc = crate::Selection {
            filter: Some("acc > 0".into()),
            ..crate::Selection::default()
        };
        assert_eq!(store.count(&acc).unwrap(), 1);
        assert_eq!(
            count(&store, "SELECT count(*) * 10 + sum(id) FROM attr_values"),
            11,
            "a long value goes with the last run that had it"
        );
        let catalog = store.catalog().unwrap();
        assert!(catalog.metrics.contains("acc"));
        assert!(!catalog.metrics.contains("only_a"));
        assert!(catalog.params.contains("seed") && !catalog.params.contains("lr"));
        assert!(catalog.tags.is_empty());
        // A second removal is a no-op.
        store.remove_run("aa").unwrap();
    }
}
