//! An index written by the previous schema (version 11: every attribute
//! value in its run's row, the metric numbering of every run kept), opened
//! by this build: migration 12 empties it and the next refresh folds every
//! journal again, after which every query answers as before.

use lab_store::{Detail, Project, Selection, Store};
use lab_types::Value;

use super::{SECOND, begin, build_mixed_project, open};

/// A package list as long as a real one: kept once in `attr_values`.
fn packages() -> Value {
    Value::List(
        (0..40)
            .map(|i| Value::Str(format!("package-{i}==1.{i}.0")))
            .collect(),
    )
}

fn project_with_runs(project: &Project) {
    build_mixed_project(project);
    let t0 = lab_types::now_nanos();
    for i in 0..3 {
        let mut w = begin(project, "big", t0 + (10 + i) * SECOND);
        w.attr("packages", packages());
        w.attr("note", Value::Str(format!("run {i}")));
        w.param("lr", Value::Float(0.1 * (i + 1) as f64));
        w.key(0, "loss");
        w.metric(0, 0, 1.0 / (i + 1) as f64);
        w.end(t0 + (11 + i) * SECOND, lab_types::Status::Finished, None);
        w.close();
    }
}

/// What a set of queries answers, as text.
fn answers(store: &mut Store) -> Vec<String> {
    store.refresh().unwrap();
    let selections = [
        Selection::default(),
        Selection {
            filter: Some("loss < 0.8".into()),
            sort: vec!["-loss".into()],
            ..Selection::default()
        },
        Selection {
            filter: Some("lr > 0.05 and status = finished".into()),
            sort: vec!["lr".into()],
            limit: Some(2),
            ..Selection::default()
        },
        Selection {
            filter: Some("run".into()),
            detail: Detail::Listing,
            ..Selection::default()
        },
        Selection {
            experiment: Some("iris".into()),
            sort: vec!["stage".into()],
            ..Selection::default()
        },
    ];
    let mut out: Vec<String> = selections
        .iter()
        .map(|s| format!("{:?}", store.select(s).unwrap()))
        .collect();
    out.push(format!("{:?}", store.catalog().unwrap()));
    out
}

/// Rewrites the index this build made into the shape of schema 11, as the
/// previous release wrote it.
fn downgrade_to_11(project: &Project) {
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    conn.execute_batch(
        "
        BEGIN;
        CREATE TABLE attrs_11 (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID;
        INSERT INTO attrs_11 SELECT run_id, key,
            coalesce(value, (SELECT v.value FROM attr_values v WHERE v.id = shared)) FROM attrs;
        DROP TABLE attrs;
        DROP TABLE attr_values;
        ALTER TABLE attrs_11 RENAME TO attrs;
        PRAGMA user_version = 11;
        COMMIT;
        ",
    )
    .unwrap();
}

fn version_and_shared(project: &Project) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    let version = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let shared = conn
        .query_row(
            "SELECT count(*) FROM attrs WHERE shared IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let values = conn
        .query_row("SELECT count(*) FROM attr_values", [], |r| r.get(0))
        .unwrap();
    (version, shared, values)
}

#[test]
fn an_index_of_schema_11_answers_every_query_as_before_once_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    project_with_runs(&project);
    let before = answers(&mut open(&project));
    assert_eq!(
        version_and_shared(&project),
        (12, 3, 1),
        "one package list for three runs"
    );
    downgrade_to_11(&project);
    let after = answers(&mut open(&project));
    assert_eq!(before, after);
    assert_eq!(version_and_shared(&project), (12, 3, 1));
}

#[test]
fn processes_opening_an_index_of_schema_11_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    project_with_runs(&project);
    let before = answers(&mut open(&project));
    downgrade_to_11(&project);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let project = project.clone();
            std::thread::Builder::new()
                .name(format!("opener-{i}"))
                .spawn(move || answers(&mut Store::open(project).unwrap()))
                .unwrap()
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), before);
    }
    assert_eq!(version_and_shared(&project), (12, 3, 1));
}
