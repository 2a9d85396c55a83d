//! The index schema. Migrations are an append-only list; the schema version
//! is `PRAGMA user_version`. Never edit a shipped migration: add one.

use rusqlite::{Connection, OptionalExtension};

use crate::Error;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        short_id TEXT NOT NULL UNIQUE,
        experiment TEXT NOT NULL,
        status TEXT NOT NULL,
        start_nanos INTEGER NOT NULL,
        end_nanos INTEGER,
        source TEXT,
        user TEXT,
        host TEXT,
        python_version TEXT,
        git_commit TEXT,
        git_dirty INTEGER,
        error_type TEXT,
        error_message TEXT,
        traceback TEXT,
        features BLOB,
        journal_offset INTEGER NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0,
        damage TEXT
    );
    CREATE INDEX runs_start ON runs(start_nanos);
    CREATE INDEX runs_experiment ON runs(experiment);
    CREATE TABLE attrs (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE params (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        value BLOB NOT NULL,
        text TEXT NOT NULL,
        num REAL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE metric_keys (
        run_id TEXT NOT NULL,
        key_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (run_id, key_id)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        last REAL,
        last_bits INTEGER NOT NULL,
        last_step INTEGER NOT NULL,
        last_nanos INTEGER NOT NULL,
        min REAL,
        max REAL,
        count INTEGER NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE tags (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        source TEXT NOT NULL,
        path TEXT,
        files INTEGER,
        bytes INTEGER,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE models (
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        path TEXT NOT NULL,
        format TEXT NOT NULL,
        class TEXT NOT NULL,
        library TEXT NOT NULL,
        library_version TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        logged_nanos INTEGER NOT NULL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;
    ",
    // 2: the names runs have, so queries resolve names without scanning.
    "
    CREATE TABLE names (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO names SELECT DISTINCT 'metrics', key FROM metrics;
    INSERT OR IGNORE INTO names SELECT DISTINCT 'params', key FROM params;
    INSERT OR IGNORE INTO names SELECT DISTINCT 'tags', key FROM tags;
    ",
    // 3: each run's listing summary in its own row (see summary.rs).
    "ALTER TABLE runs ADD COLUMN summary BLOB;",
    // 4: small facts about the index itself (when the runs folder last changed).
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;",
    // 5: newest first with the id as tie-breaker straight from the index, so
    // an unsorted listing needs no temporary sort of whole rows.
    "DROP INDEX runs_start; CREATE INDEX runs_start ON runs(start_nanos, id);",
    // 6: the runs still to fold, so that every refresh asking "is any run
    // incomplete?" reads a tiny index instead of the whole runs table.
    "CREATE INDEX runs_incomplete ON runs(complete) WHERE complete = 0;",
    // 7: a list or dict parameter whose text is too long to keep twice has
    // no `text` (its value is in `value`): the column may be NULL.
    "
    CREATE TABLE params_7 (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        value BLOB NOT NULL,
        text TEXT,
        num REAL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    INSERT INTO params_7 SELECT run_id, key, seq, value, text, num FROM params;
    DROP TABLE params;
    ALTER TABLE params_7 RENAME TO params;
    ",
    // 8: a run's group and parent run (attributes a client records at
    // start), as columns that queries compare and the listing reads; no
    // client recorded them before this version, so there is nothing to copy.
    "
    ALTER TABLE runs ADD COLUMN run_group TEXT;
    ALTER TABLE runs ADD COLUMN parent TEXT;
    CREATE INDEX runs_group ON runs(run_group) WHERE run_group IS NOT NULL;
    ",
    // 9: each run's readable name, a column that queries compare (runs
    // indexed before names existed get the name generated from their short
    // id: `migrate` fills it in), and how far its meta journal is folded.
    "
    ALTER TABLE runs ADD COLUMN name TEXT;
    ALTER TABLE runs ADD COLUMN meta_len INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX runs_name ON runs(name);
    ",
    // 10: the media files of runs (images, tables): one row per key and step,
    // `seq` the offset of the first record of that key and step.
    "
    CREATE TABLE media (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        step INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (run_id, key, step)
    ) WITHOUT ROWID;
    ",
    // 11: each run's note, so that a plain word in a query finds it, copied
    // from its `note` attribute (a text value: tag 5, a u32 length, UTF-8).
    "
    ALTER TABLE runs ADD COLUMN note TEXT;
    UPDATE runs SET note = (
        SELECT CAST(substr(value, 6) AS TEXT) FROM attrs
        WHERE attrs.run_id = runs.id AND attrs.key = 'note' AND substr(value, 1, 1) = x'05'
    );
    ",
    // 12: every per-run table keyed by the run's number (`runs.rid`), not
    // its 32-character id, which was most of each of their rows; an
    // attribute value of [`SHARED_VALUE`] bytes or more (the package list,
    // the writer: the same for every run of a process) kept once, in
    // `attr_values`, which `attrs.shared` points to; a metric's last value
    // kept once (`last_bits` only when `last` cannot hold it exactly), and
    // no time of its last point, which nothing read. The index is made anew,
    // empty, to be folded again from the journals (see docs/storage.md),
    // keeping its generation, moved on.
    "
    DROP TABLE runs;
    DROP TABLE attrs;
    DROP TABLE params;
    DROP TABLE metric_keys;
    DROP TABLE metrics;
    DROP TABLE tags;
    DROP TABLE artifacts;
    DROP TABLE models;
    DROP TABLE media;
    DELETE FROM names;
    DELETE FROM meta WHERE key != 'generation';
    UPDATE meta SET value = value + 1 WHERE key = 'generation';
    CREATE TABLE runs (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        short_id TEXT NOT NULL UNIQUE,
        experiment TEXT NOT NULL,
        status TEXT NOT NULL,
        start_nanos INTEGER NOT NULL,
        end_nanos INTEGER,
        source TEXT,
        user TEXT,
        host TEXT,
        python_version TEXT,
        git_commit TEXT,
        git_dirty INTEGER,
        error_type TEXT,
        error_message TEXT,
        traceback TEXT,
        features BLOB,
        journal_offset INTEGER NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0,
        damage TEXT,
        summary BLOB,
        run_group TEXT,
        parent TEXT,
        name TEXT,
        meta_len INTEGER NOT NULL DEFAULT 0,
        note TEXT
    );
    CREATE INDEX runs_start ON runs(start_nanos, id);
    CREATE INDEX runs_experiment ON runs(experiment);
    CREATE INDEX runs_incomplete ON runs(complete) WHERE complete = 0;
    CREATE INDEX runs_group ON runs(run_group) WHERE run_group IS NOT NULL;
    CREATE INDEX runs_name ON runs(name);
    CREATE TABLE attrs (
        run INTEGER NOT NULL,
        key TEXT NOT NULL,
        value BLOB,
        shared INTEGER,
        PRIMARY KEY (run, key)
    ) WITHOUT ROWID;
    CREATE INDEX attrs_shared ON attrs(shared) WHERE shared IS NOT NULL;
    CREATE TABLE attr_values (
        id INTEGER PRIMARY KEY,
        hash INTEGER NOT NULL,
        value BLOB NOT NULL
    );
    CREATE INDEX attr_values_hash ON attr_values(hash);
    CREATE TABLE params (
        run INTEGER NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        value BLOB NOT NULL,
        text TEXT,
        num REAL,
        PRIMARY KEY (run, key)
    ) WITHOUT ROWID;
    CREATE TABLE metric_keys (
        run INTEGER NOT NULL,
        key_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (run, key_id)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run INTEGER NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        last REAL,
        last_bits INTEGER,
        last_step INTEGER NOT NULL,
        min REAL,
        max REAL,
        count INTEGER NOT NULL,
        PRIMARY KEY (run, key)
    ) WITHOUT ROWID;
    CREATE TABLE tags (
        run INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run, key)
    ) WITHOUT ROWID;
    CREATE TABLE artifacts (
        run INTEGER NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        source TEXT NOT NULL,
        path TEXT,
        files INTEGER,
        bytes INTEGER,
        PRIMARY KEY (run, name)
    ) WITHOUT ROWID;
    CREATE TABLE models (
        run INTEGER NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        path TEXT NOT NULL,
        format TEXT NOT NULL,
        class TEXT NOT NULL,
        library TEXT NOT NULL,
        library_version TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        logged_nanos INTEGER NOT NULL,
        PRIMARY KEY (run, name)
    ) WITHOUT ROWID;
    CREATE TABLE media (
        run INTEGER NOT NULL,
        key TEXT NOT NULL,
        step INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (run, key, step)
    ) WITHOUT ROWID;
    ",
    // 13: each metric's last values and each parameter's numbers in order,
    // so that a listing sorted by one finds its page's runs without looking
    // up the key of every run (see `select::narrowing`).
    "
    CREATE INDEX metrics_key_last ON metrics(key, last);
    CREATE INDEX params_key_num ON params(key, num);
    ",
    // 14: the index emptied, as 12 did, to be folded again from the
    // journals into rows that hold less twice (only `attrs` and `params`
    // change shape, and `attr_keys` is new): a parameter's `value` is
    // NULL when its text gives the number back exactly, a metric's `min` and
    // `max` NULL when they are its last value, an attribute value of
    // [`SHARED_VALUE`] bytes or more (now the writer too) kept once, and
    // attribute names numbered (`attr_keys`): a dozen names, in every run.
    "
    DELETE FROM media;
    DELETE FROM models;
    DELETE FROM artifacts;
    DELETE FROM tags;
    DELETE FROM metrics;
    DELETE FROM metric_keys;
    DELETE FROM attr_values;
    DELETE FROM runs;
    DROP TABLE attrs;
    DROP TABLE params;
    DELETE FROM names;
    DELETE FROM meta WHERE key != 'generation';
    UPDATE meta SET value = value + 1 WHERE key = 'generation';
    CREATE TABLE attr_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE attrs (
        run INTEGER NOT NULL,
        key INTEGER NOT NULL,
        value BLOB,
        shared INTEGER,
        PRIMARY KEY (run, key)
    ) WITHOUT ROWID;
    CREATE INDEX attrs_shared ON attrs(shared) WHERE shared IS NOT NULL;
    CREATE TABLE params (
        run INTEGER NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        value BLOB,
        text TEXT,
        num REAL,
        PRIMARY KEY (run, key)
    ) WITHOUT ROWID;
    CREATE INDEX params_key_num ON params(key, num);
    ",
    // 15: the index emptied, as 14 did, to be folded again into rows that
    // keep an attribute its `runs` column gives back exactly (the source,
    // user, host, Python version, git commit and state, group, parent, and a
    // name given) in that column alone: no `attrs` row and no copy in the
    // listing summary (see `fields::held_by_column`).
    "
    DELETE FROM media;
    DELETE FROM models;
    DELETE FROM artifacts;
    DELETE FROM tags;
    DELETE FROM metrics;
    DELETE FROM metric_keys;
    DELETE FROM params;
    DELETE FROM attrs;
    DELETE FROM attr_values;
    DELETE FROM attr_keys;
    DELETE FROM runs;
    DELETE FROM names;
    DELETE FROM meta WHERE key NOT IN ('generation', 'deferred_indexes');
    UPDATE meta SET value = value + 1 WHERE key = 'generation';
    ",
];

/// The number the per-run tables know run `id` (a full id) by.
pub(crate) fn rid_of(tx: &Connection, id: &str) -> Result<Option<i64>, Error> {
    Ok(tx
        .prepare_cached("SELECT rid FROM runs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// The shortest encoded attribute value kept once in `attr_values` rather
/// than in each run's `attrs` row.
pub(crate) const SHARED_VALUE: usize = 96;

/// The migration that added `runs.name`, which [`migrate`] fills in.
const NAMES_MIGRATION: i64 = 9;

const TABLES: &[&str] = &[
    "runs",
    "attrs",
    "attr_keys",
    "attr_values",
    "params",
    "metric_keys",
    "metrics",
    "tags",
    "artifacts",
    "models",
    "media",
    "names",
    "meta",
];

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)]
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`VERSION`].
pub fn migrate(conn: &Connection) -> Result<(), Error> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        return Err(Error::NewerSchema {
            path: conn.path().unwrap_or_default().into(),
            found: current,
            known: VERSION,
        });
    }
    if current == VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // Another process may have migrated while we waited for the lock.
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let result = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", i as i64 + 1)?;
            if i as i64 + 1 == NAMES_MIGRATION {
                fill_generated_names(conn)?;
            }
        }
        Ok::<(), rusqlite::Error>(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            conn.execute_batch("ROLLBACK")?;
            return Err(e.into());
        }
    }
    Ok(())
}

/// Gives each run without a name the one generated from its short id.
fn fill_generated_names(conn: &Connection) -> rusqlite::Result<()> {
    let shorts: Vec<String> = conn
        .prepare("SELECT short_id FROM runs WHERE name IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE runs SET name = ?2 WHERE short_id = ?1")?;
    for short in shorts {
        if let Some(name) = lab_types::names::generated_name(&short) {
            update.execute(rusqlite::params![short, name])?;
        }
    }
    Ok(())
}

/// Deletes every indexed row (the journals are untouched). The generation
/// goes on counting from where it was, so it never repeats.
pub fn clear(conn: &Connection) -> Result<(), Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let generation = generation(conn)?;
    for t in TABLES {
        if *t == "meta" {
            // What an interrupted rebuild left to make again stays, for
            // the next rebuild to make (see `defer_indexes`).
            conn.execute("DELETE FROM meta WHERE key != ?1", [DEFERRED_KEY])?;
        } else {
            conn.execute(&format!("DELETE FROM {t}"), [])?;
        }
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', ?1)",
        [generation + 1],
    )?;
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// Indexes a rebuild drops before it folds every journal, and makes again
/// after: their entries are in an order of their own (a metric's value, a
/// parameter's number, a name), so filling them run by run wrote a page
/// somewhere in each for nearly every row, and at a million runs most of a
/// rebuild's time went into writing those pages again and again. Made at
/// the end, each is one sort.
pub(crate) const DEFERRED_INDEXES: [&str; 3] = ["metrics_key_last", "params_key_num", "runs_name"];

/// The `meta` key under which the SQL of the indexes a rebuild dropped is
/// kept until they are made again.
const DEFERRED_KEY: &str = "deferred_indexes";

/// Drops [`DEFERRED_INDEXES`], keeping their SQL in `meta` in the same
/// transaction, so that [`restore_indexes`] makes them again even after the
/// rebuild was interrupted. Queries meanwhile give the same answers,
/// reading the tables instead.
pub fn defer_indexes(conn: &Connection) -> Result<(), Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut sql: Vec<String> = deferred_sql(conn)?.into_iter().collect();
        for name in DEFERRED_INDEXES {
            let made: Option<String> = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(made) = made {
                sql.push(made);
                conn.execute_batch(&format!("DROP INDEX {name}"))?;
            }
        }
        if !sql.is_empty() {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                rusqlite::params![DEFERRED_KEY, sql.join(";\n")],
            )?;
        }
        Ok::<(), Error>(())
    })();
    finish(conn, result)
}

/// The SQL of the indexes a rebuild dropped and did not make again yet.
fn deferred_sql(conn: &Connection) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [DEFERRED_KEY],
            |r| r.get(0),
        )
        .optional()?)
}

/// Whether a rebuild dropped indexes that are not made again yet.
pub fn indexes_deferred(conn: &Connection) -> Result<bool, Error> {
    Ok(deferred_sql(conn)?.is_some())
}

/// Makes the indexes [`defer_indexes`] dropped, in one transaction. Their
/// sorts go to temporary files rather than memory: at a million runs one
/// holds ten million entries.
pub fn restore_indexes(conn: &Connection) -> Result<(), Error> {
    if deferred_sql(conn)?.is_none() {
        return Ok(());
    }
    // Not within a transaction: SQLite refuses to change it there.
    conn.pragma_update(None, "temp_store", "FILE")?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        // Another process may have made them while this one waited.
        if let Some(sql) = deferred_sql(conn)? {
            conn.execute_batch(&sql)?;
            conn.execute("DELETE FROM meta WHERE key = ?1", [DEFERRED_KEY])?;
        }
        Ok::<(), Error>(())
    })();
    let done = finish(conn, result);
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    done
}

/// Commits the transaction begun when `result` is Ok, else rolls it back.
fn finish(conn: &Connection, result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(Error::from),
        Err(e) => {
            conn.execute_batch("ROLLBACK")?;
            Err(e)
        }
    }
}

/// A number that changes whenever the index's runs change (a fold, a
/// removal, a rebuild): equal numbers mean equal answers to any query.
pub fn generation(conn: &Connection) -> Result<i64, Error> {
    let value: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value.unwrap_or(0))
}

/// Moves the generation on; call inside the transaction that changes runs.
pub fn bump_generation(conn: &Connection) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rebuild after one that was killed with the indexes dropped makes
    /// them again: emptying the index keeps what is left to make.
    #[test]
    fn a_rebuild_after_an_interrupted_one_makes_its_indexes_again() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = crate::Project::create(dir.path()).unwrap();
        let mut store = crate::Store::open(project).unwrap();
        store.refresh().unwrap();
        let indexes = |conn: &Connection| -> Vec<String> {
            conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name IN ('metrics_key_last', 'params_key_num', 'runs_name') ORDER BY name")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(indexes(&store.conn).len(), 3);
        // As a rebuild killed while it folds leaves the index.
        defer_indexes(&store.conn).unwrap();
        assert!(indexes(&store.conn).is_empty());
        store.reindex().unwrap();
        assert_eq!(
            indexes(&store.conn),
            ["metrics_key_last", "params_key_num", "runs_name"]
        );
        assert_eq!(deferred_sql(&store.conn).unwrap(), None);
    }

    #[test]
    fn migrations_apply_to_an_empty_database_and_are_idempotent() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, VERSION);
        let mut names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        names.sort();
        let mut expected: Vec<String> = TABLES.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("; ")
    }

    #[test]
    fn the_hot_queries_use_their_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let incomplete = plan(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM runs WHERE complete = 0)",
        );
        assert!(incomplete.contains("runs_incomplete"), "{incomplete}");
        let newest = plan(
            &conn,
            "SELECT id FROM runs ORDER BY start_nanos DESC, id DESC",
        );
        assert!(
            newest.contains("runs_start") && !newest.contains("TEMP B-TREE"),
            "{newest}"
        );
    }

    #[test]
    fn generations_move_on_and_survive_a_rebuild() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        assert_eq!(generation(&conn).unwrap(), 0);
        bump_generation(&conn).unwrap();
        bump_generation(&conn).unwrap();
        assert_eq!(generation(&conn).unwrap(), 2);
        clear(&conn).unwrap();
        assert_eq!(
            generation(&conn).unwrap(),
            3,
            "a rebuild never repeats a generation"
        );
    }

    #[test]
    fn notes_indexed_before_their_column_are_copied_into_it() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..10] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 10).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, short_id, experiment, status, start_nanos, journal_offset)
             VALUES ('a', 'aaaaaaaa', 'e', 'finished', 0, 0), ('b', 'bbbbbbbb', 'e', 'finished', 0, 0)",
        )
        .unwrap();
        let mut note = Vec::new();
        lab_journal::codec::encode_value(&lab_types::Value::Str("# Why ü".into()), &mut note);
        conn.execute(
            "INSERT INTO attrs (run_id, key, value) VALUES ('a', 'note', ?1)",
            [note],
        )
        .unwrap();
        // Migration 11 alone: 12 empties the index to fold it again.
        conn.execute_batch(MIGRATIONS[10]).unwrap();
        let notes: Vec<Option<String>> = conn
            .prepare("SELECT note FROM runs ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(notes, [Some("# Why ü".to_owned()), None]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(migrate(&conn), Err(Error::NewerSchema { .. })));
    }
}
