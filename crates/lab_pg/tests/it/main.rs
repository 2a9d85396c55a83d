//! The PostgreSQL index against a real PostgreSQL: each test starts a
//! cluster of its own (`cluster`) and stops it after.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::must_use_candidate)] // Tests fail loudly by design.

mod cluster;
mod concurrent;
mod edits;
mod globs;
mod journals;
mod notify;
mod same;
mod short_ids;

use lab_pg::PgIndex;
use lab_store::Project;

pub use cluster::Cluster;

/// A new project in a temporary folder.
pub fn new_project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    (dir, project)
}

/// Opens project `name` in the cluster's database `lab`.
pub fn connect(cluster: &Cluster, name: &str) -> PgIndex {
    match PgIndex::connect(&cluster.lab(), name) {
        Ok(index) => index,
        Err(e) => panic!("connecting failed: {e}"),
    }
}

#[test]
fn a_new_database_gets_the_schema_and_a_second_connection_keeps_it() {
    let cluster = Cluster::start();
    let _first = connect(&cluster, "one");
    let _second = connect(&cluster, "two");
    let mut client = postgres::Client::connect(&cluster.lab(), postgres::NoTls).unwrap();
    let version: i32 = client
        .query_one("SELECT version FROM lab.schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, lab_pg::VERSION);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM lab.schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    let mut tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'lab' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        [
            "artifacts",
            "attrs",
            "media",
            "metric_keys",
            "metrics",
            "models",
            "names",
            "params",
            "projects",
            "runs",
            "schema_version",
            "tags"
        ]
    );
    let projects: Vec<String> = client
        .query("SELECT name FROM lab.projects ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(projects, ["one", "two"]);
}

#[test]
fn a_schema_newer_than_this_lab_is_refused() {
    let cluster = Cluster::start();
    drop(connect(&cluster, "p"));
    cluster.sql(
        "lab",
        &format!(
            "UPDATE lab.schema_version SET version = {}",
            lab_pg::VERSION + 1
        ),
    );
    let Err(e) = PgIndex::connect(&cluster.lab(), "p") else {
        panic!("a newer schema was used");
    };
    assert!(e.to_string().contains("newer than this Lab knows"), "{e}");
    assert_eq!(e.kind(), lab_store::ErrorKind::Storage);
}

#[test]
fn a_database_that_cannot_be_reached_is_a_clear_error() {
    let cluster = Cluster::start();
    let url = cluster
        .url("no_such_database")
        .replace("postgres@", "postgres:secret@");
    let Err(e) = PgIndex::connect(&url, "p") else {
        panic!("connected to a missing database");
    };
    let shown = e.to_string();
    assert!(
        shown.contains("cannot connect to `postgresql://postgres:***@127.0.0.1:"),
        "{shown}"
    );
    assert!(shown.contains("no_such_database"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn projects_in_one_database_keep_their_runs_apart() {
    let cluster = Cluster::start();
    let mut rng = journals::Rng::new(7);
    let (_a_dir, a) = new_project();
    let (_b_dir, b) = new_project();
    journals::settled_runs(&a, &mut rng, 5);
    // The same journals in two projects: the same run ids in both.
    let copy = |from: &Project, to: &Project| {
        for e in std::fs::read_dir(from.runs_dir()).unwrap() {
            let e = e.unwrap();
            let target = to.runs_dir().join(e.file_name());
            std::fs::create_dir_all(&target).unwrap();
            std::fs::copy(
                e.path().join(lab_store::JOURNAL_FILE),
                target.join(lab_store::JOURNAL_FILE),
            )
            .unwrap();
        }
    };
    copy(&a, &b);
    journals::settled_runs(&b, &mut rng, 3);
    let mut in_a = connect(&cluster, "a");
    let mut in_b = connect(&cluster, "b");
    in_a.fold(&a).unwrap();
    in_b.fold(&b).unwrap();
    let all = lab_store::Selection::default();
    let ids = |index: &PgIndex| -> Vec<String> {
        index
            .select(&all)
            .unwrap()
            .iter()
            .map(|r| r.id.to_string())
            .collect()
    };
    assert_eq!(ids(&in_a).len(), 5);
    assert_eq!(ids(&in_b).len(), 8);
    for id in ids(&in_a) {
        assert!(ids(&in_b).contains(&id));
        // Each reads its own copy, whose details are whole.
        assert_eq!(in_a.run(&id).unwrap().id.to_string(), id);
        assert_eq!(in_b.run(&id).unwrap().id.to_string(), id);
    }
    // Clearing one project leaves the other.
    in_a.clear().unwrap();
    assert!(ids(&in_a).is_empty());
    assert_eq!(ids(&in_b).len(), 8);
    in_a.fold(&a).unwrap();
    assert_eq!(ids(&in_a).len(), 5);
}

#[test]
fn text_holding_nul_characters_is_folded_and_queried() {
    // PostgreSQL's text has no NUL: the index keeps U+FFFD instead, and a
    // parameter its exact value.
    let cluster = Cluster::start();
    let (_dir, project) = new_project();
    let (id, paths) = project.claim_run(1_000_000_000).unwrap();
    let mut w = lab_journal::JournalWriter::create(&paths.journal).unwrap();
    for record in [
        lab_types::Record::Start {
            run: id,
            time_nanos: 1,
            experiment: "a\0b".into(),
        },
        lab_types::Record::Param {
            time_nanos: 2,
            key: "p".into(),
            value: lab_types::Value::Str("x\0y".into()),
        },
        lab_types::Record::Tag {
            time_nanos: 3,
            key: "t".into(),
            value: "\0".into(),
        },
    ] {
        w.append(&record).unwrap();
    }
    w.close().unwrap();
    let mut index = connect(&cluster, "nul");
    index.fold(&project).unwrap();
    let run = index.run(&id.short()).unwrap();
    assert_eq!(run.experiment, "a\u{fffd}b");
    assert_eq!(
        run.params,
        [("p".to_owned(), lab_types::Value::Str("x\0y".into()))]
    );
    assert_eq!(run.tags, [("t".to_owned(), "\u{fffd}".to_owned())]);
    for (filter, found) in [
        ("p ~ 'x*'", 1),
        ("p = 'x\0y'", 1),
        ("experiment ~ 'a?b'", 1),
        ("t in ('\0', 'z')", 1),
        ("t ~ '\0'", 1),
        ("p ~ 'q'", 0),
    ] {
        let selection = lab_store::Selection {
            filter: Some(filter.to_owned()),
            ..lab_store::Selection::default()
        };
        match index.select(&selection) {
            Ok(runs) => assert_eq!(runs.len(), found, "{}", filter.escape_debug()),
            Err(e) => panic!("{}: {e}", filter.escape_debug()),
        }
    }
}

/// Set in the child of the test below: start a cluster, say where, and wait.
const LEAKY_CHILD: &str = "LAB_PG_TEST_LEAKY_CHILD";

#[test]
fn a_cluster_whose_test_process_is_killed_is_stopped_and_removed() {
    if std::env::var_os(LEAKY_CHILD).is_some() {
        let cluster = Cluster::start();
        let (port, data) = cluster.place();
        println!("cluster {port} {}", data.display());
        std::thread::sleep(std::time::Duration::from_mins(5));
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_cluster_whose_test_process_is_killed_is_stopped_and_removed",
            "--nocapture",
        ])
        .env(LEAKY_CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    while !line.starts_with("cluster ") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the child started no cluster"
        );
    }
    let mut words = line.split_whitespace().skip(1);
    let port: u16 = words.next().unwrap().parse().unwrap();
    let data = std::path::PathBuf::from(words.next().unwrap());
    let url = format!("postgresql://postgres@127.0.0.1:{port}/lab");
    assert!(postgres::Client::connect(&url, postgres::NoTls).is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while data.exists() || postgres::Client::connect(&url, postgres::NoTls).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster outlived its test process: {}",
            data.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
