//! The schema of the index in PostgreSQL, in its own schema `lab`.
//! Migrations are an append-only list; the version is the one row of
//! `lab.schema_version`. Never edit a shipped migration: add one.
//!
//! Every table holds many projects: `lab.projects` names them, and every
//! other table's key starts with `project_id`. Text that queries compare or
//! sort is `COLLATE "C"`, so it orders by bytes, as SQLite's text does.
//! Numbers are `float8` with NaN kept as NULL (PostgreSQL sorts NaN above
//! every number; SQLite has none), exact bits beside them.

use lab_store::{Error, ErrorKind};
use postgres::Client;

use crate::Pg as _;

/// The advisory lock that migrations are applied under: one server
/// migrates, the others wait and find the schema up to date. (A fold's
/// locks take two keys, which never meet one-key locks.)
const MIGRATION_LOCK: i64 = 0x4c61_625f_5067_0001;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE lab.projects (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text COLLATE "C" NOT NULL UNIQUE,
        generation bigint NOT NULL DEFAULT 0,
        runs_dir_mtime bigint
    );
    CREATE TABLE lab.runs (
        project_id integer NOT NULL REFERENCES lab.projects (id) ON DELETE CASCADE,
        id text COLLATE "C" NOT NULL,
        short_id text COLLATE "C" NOT NULL,
        experiment text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        start_nanos bigint NOT NULL,
        end_nanos bigint,
        source text COLLATE "C",
        "user" text COLLATE "C",
        host text COLLATE "C",
        python_version text COLLATE "C",
        git_commit text COLLATE "C",
        -- Not compared by queries: as the attribute's text.
        git_dirty text COLLATE "C",
        error_type text,
        error_message text,
        traceback text,
        features bytea,
        journal_offset bigint NOT NULL,
        complete boolean NOT NULL DEFAULT false,
        damage text,
        PRIMARY KEY (project_id, id),
        UNIQUE (project_id, short_id)
    );
    CREATE INDEX runs_start ON lab.runs (project_id, start_nanos, id);
    CREATE INDEX runs_incomplete ON lab.runs (project_id) WHERE NOT complete;
    CREATE TABLE lab.attrs (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (project_id, run_id, key),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.params (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        value bytea NOT NULL,
        text text COLLATE "C",
        num float8,
        PRIMARY KEY (project_id, run_id, key),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.metric_keys (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        key_id bigint NOT NULL,
        name text COLLATE "C" NOT NULL,
        PRIMARY KEY (project_id, run_id, key_id),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.metrics (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        last float8,
        last_bits bigint NOT NULL,
        last_step bigint NOT NULL,
        last_nanos bigint NOT NULL,
        min float8,
        max float8,
        count bigint NOT NULL,
        PRIMARY KEY (project_id, run_id, key),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.tags (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value text COLLATE "C" NOT NULL,
        PRIMARY KEY (project_id, run_id, key),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.artifacts (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        source text NOT NULL,
        path text,
        files bigint,
        bytes bigint,
        PRIMARY KEY (project_id, run_id, name),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.models (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        path text NOT NULL,
        format text NOT NULL,
        class text NOT NULL,
        library text NOT NULL,
        library_version text NOT NULL,
        size bigint NOT NULL,
        sha256 text NOT NULL,
        logged_nanos bigint NOT NULL,
        PRIMARY KEY (project_id, run_id, name),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    CREATE TABLE lab.names (
        project_id integer NOT NULL REFERENCES lab.projects (id) ON DELETE CASCADE,
        scope text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        PRIMARY KEY (project_id, scope, key)
    );
    "#,
    // 2: runs are keyed by their full id alone: two machines of a team may
    // start runs with the same short id (a quarter second of the same
    // clock), and both are kept. A short id (or a prefix of one) is still
    // looked up through the id, which begins with it.
    r"
    ALTER TABLE lab.runs DROP CONSTRAINT runs_project_id_short_id_key;
    CREATE INDEX runs_short ON lab.runs (project_id, short_id);
    ",
    // 3: a change of a project's runs (its generation moving on) is
    // announced on channel `lab_runs` when its transaction commits (NOTIFY
    // waits for the commit, and a rolled-back change says nothing), so
    // every process listening on the database learns of it, whoever made
    // it. The payload names the project and its new generation; a name too
    // long for a notification (8000 bytes) is left out (`null`: listeners
    // look at every project), so that no name can make a fold fail.
    r"
    CREATE FUNCTION lab.announce() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        payload text := json_build_object('project', NEW.name, 'generation', NEW.generation)::text;
    BEGIN
        IF octet_length(payload) > 7000 THEN
            payload := json_build_object('project', NULL, 'generation', NEW.generation)::text;
        END IF;
        PERFORM pg_notify('lab_runs', payload);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER projects_announce AFTER UPDATE OF generation ON lab.projects
        FOR EACH ROW WHEN (NEW.generation IS DISTINCT FROM OLD.generation)
        EXECUTE FUNCTION lab.announce();
    ",
    // 4: a run's group and parent run, as the local index keeps them
    // (attributes copied into columns by the field table).
    r#"
    ALTER TABLE lab.runs ADD COLUMN run_group text COLLATE "C";
    ALTER TABLE lab.runs ADD COLUMN parent text COLLATE "C";
    CREATE INDEX runs_group ON lab.runs (project_id, run_group) WHERE run_group IS NOT NULL;
    "#,
    // 5: each run's readable name, a column that queries compare, as the
    // local index keeps it. Runs folded before it have none until
    // `lab server reindex`; their listings show the name generated from
    // their short id meanwhile, which is the name the fold gives them.
    r#"
    ALTER TABLE lab.runs ADD COLUMN name text COLLATE "C";
    CREATE INDEX runs_name ON lab.runs (project_id, name);
    "#,
    // 6: the media files of runs (images, tables), as the local index keeps
    // them: one row per key and step, `seq` the offset of the first record
    // of that key and step.
    r#"
    CREATE TABLE lab.media (
        project_id integer NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        step bigint NOT NULL,
        seq bigint NOT NULL,
        kind text NOT NULL,
        path text NOT NULL,
        width bigint NOT NULL,
        height bigint NOT NULL,
        bytes bigint NOT NULL,
        PRIMARY KEY (project_id, run_id, key, step),
        FOREIGN KEY (project_id, run_id) REFERENCES lab.runs (project_id, id) ON DELETE CASCADE
    );
    "#,
    // 7: each run's note, for the plain-word search, as the local index
    // keeps it: copied from its `note` attribute (a text value: tag 5, a
    // u32 length, UTF-8).
    "
    ALTER TABLE lab.runs ADD COLUMN note text;
    UPDATE lab.runs r SET note = convert_from(substring(a.value from 6), 'UTF8')
    FROM lab.attrs a
    WHERE a.project_id = r.project_id AND a.run_id = r.id AND a.key = 'note'
      AND get_byte(a.value, 0) = 5;
    ",
    // 8: how many bytes of each run's meta journal (`meta.lab`: its edits,
    // received after its journal) are folded, as the local index keeps it:
    // the length the server holds, and what a watcher compares to see an
    // edit.
    "
    ALTER TABLE lab.runs ADD COLUMN meta_len bigint NOT NULL DEFAULT 0;
    ",
];

/// The channel on which a change of a project's runs is announced, once
/// committed: the payload is JSON, `{"project": NAME, "generation": N}`
/// (`project` is `null` for a name whose payload would not fit).
pub const CHANNEL: &str = "lab_runs";

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)]
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the database's `lab` schema up to [`VERSION`], in one transaction
/// under an advisory lock: servers starting together apply each migration
/// once, and one that finds the schema newer than it knows refuses to go on.
pub(crate) fn migrate(client: &mut Client) -> Result<(), Error> {
    migrate_schema(client, "lab", MIGRATION_LOCK, MIGRATIONS, "Lab's index")
}

/// Brings schema `schema` (a name of letters and `_`) up to date with
/// `steps`, an append-only list of migrations whose count is its version
/// (kept in `{schema}.schema_version`): in one transaction under advisory
/// lock `lock`, so processes starting together apply each step once; a
/// schema newer than `steps` knows is refused, naming it as `what`. The
/// team server's own schema is kept this way too.
pub fn migrate_schema(
    client: &mut Client,
    schema: &str,
    lock: i64,
    steps: &[&str],
    what: &str,
) -> Result<(), Error> {
    debug_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let mut tx = client.transaction().pg()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .pg()?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer NOT NULL);"
    ))
    .pg()?;
    let current: Option<i32> = tx
        .query_opt(&format!("SELECT version FROM {schema}.schema_version"), &[])
        .pg()?
        .map(|r| r.get(0));
    let current = if let Some(v) = current {
        v
    } else {
        tx.execute(
            &format!("INSERT INTO {schema}.schema_version (version) VALUES (0)"),
            &[],
        )
        .pg()?;
        0
    };
    let known = i32::try_from(steps.len()).unwrap_or(i32::MAX);
    if current > known {
        return Err(Error::OtherIndex {
            database: "PostgreSQL",
            message: format!(
                "the database holds the schema of {what} at version {current}, newer than this Lab knows ({known})\n\nhint: upgrade Lab to use this database"
            ),
            kind: ErrorKind::Storage,
        });
    }
    for (i, sql) in steps
        .iter()
        .enumerate()
        .skip(current.max(0).cast_unsigned() as usize)
    {
        tx.batch_execute(sql).pg()?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            &format!("UPDATE {schema}.schema_version SET version = $1"),
            &[&version],
        )
        .pg()?;
    }
    tx.commit().pg()
}

/// The id of project `name`, made if new.
pub(crate) fn project_id(client: &mut Client, name: &str) -> Result<i32, Error> {
    let name = crate::text(name);
    client
        .execute(
            "INSERT INTO lab.projects (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[&name.as_ref()],
        )
        .pg()?;
    let row = client
        .query_one(
            "SELECT id FROM lab.projects WHERE name = $1",
            &[&name.as_ref()],
        )
        .pg()?;
    Ok(row.get(0))
}
