//! Many at once, and interrupted: processes migrating one database
//! together, folds of one project racing each other, a fold whose
//! connection is cut in the middle and run again, and one stretch of
//! journal written twice. Nothing is applied or counted twice.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;

use lab_pg::PgIndex;
use lab_store::index::{
    Delta, FoldIndex, FoldWrite, Folded, Indexed, MetricDelta, MetricKey, Start, Written,
};
use lab_store::{Error, Project, Store};
use lab_types::{RunId, Value};

use super::journals::{self, Rng};
use super::same::{check_same, copy_runs};
use super::{Cluster, connect, new_project};

/// Set in a child process of the migration test: the database to migrate.
const CHILD_URL: &str = "LAB_PG_TEST_MIGRATE_URL";
/// Set with it: a file whose appearance starts the child.
const CHILD_GO: &str = "LAB_PG_TEST_MIGRATE_GO";

#[test]
fn processes_migrating_one_database_at_once_apply_each_migration_once() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        // A child: wait for the start, then migrate.
        let go = PathBuf::from(std::env::var(CHILD_GO).unwrap());
        while !go.exists() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        PgIndex::connect(&url, "shared").unwrap();
        return;
    }
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "concurrent::processes_migrating_one_database_at_once_apply_each_migration_once",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, cluster.lab())
                .env(CHILD_GO, &go)
                .output_async()
        })
        .collect();
    // And threads of this process beside them.
    let url = cluster.lab();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            let go = go.clone();
            std::thread::Builder::new()
                .name("migrate".into())
                .spawn(move || {
                    while !go.exists() {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    PgIndex::connect(&url, "shared").map(|_| ())
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(&go, b"").unwrap();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child failed to migrate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
    for t in threads {
        if let Err(e) = t.join().unwrap() {
            panic!("a thread failed to migrate: {e}");
        }
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM lab.schema_version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [lab_pg::VERSION]);
    let projects: i64 = client
        .query_one(
            "SELECT count(*) FROM lab.projects WHERE name = 'shared'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(projects, 1);
}

/// Spawning without waiting, so that the children run together.
trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn folds_of_one_project_racing_each_other_count_every_record_once() {
    let cluster = Cluster::start();
    let mut rng = Rng::new(21);
    let (a_dir, a) = new_project();
    let (b_dir, b) = new_project();
    journals::runs(&a, &mut rng, 40, false);
    copy_runs(&a, &b);
    let mut store = Store::open(a.clone()).unwrap();
    store.refresh().unwrap();
    // Four folds of the same project at once, each with a connection of its
    // own, as four servers would.
    let folds: Vec<_> = (0..4)
        .map(|_| {
            let mut index = connect(&cluster, "raced");
            let b = b.clone();
            std::thread::Builder::new()
                .name("fold".into())
                .spawn(move || index.fold(&b).map(|_| ()))
                .unwrap()
        })
        .collect();
    for f in folds {
        if let Err(e) = f.join().unwrap() {
            panic!("a fold failed: {e}");
        }
    }
    let pg = connect(&cluster, "raced");
    check_same(
        &store,
        a_dir.path(),
        &pg,
        b_dir.path(),
        "after racing folds",
    );
}

/// An index that cuts its own connection in the middle of its `n`-th
/// fold's transaction, as a server killed there, or a network cut, would.
struct CutMidFold<'a> {
    inner: &'a mut PgIndex,
    folds_left: usize,
    url: String,
}

impl FoldIndex for CutMidFold<'_> {
    fn indexed(&self, short_id: &str) -> Result<Option<Indexed>, Error> {
        self.inner.indexed(short_id)
    }
    fn indexed_id(&self, id: &str) -> Result<Option<Indexed>, Error> {
        self.inner.indexed_id(id)
    }
    fn keys_by_id(&self) -> bool {
        self.inner.keys_by_id()
    }
    fn metric_names(&self, id: &str) -> Result<HashMap<u32, String>, Error> {
        self.inner.metric_names(id)
    }
    fn attr(&self, id: &str, key: &str) -> Result<Option<Value>, Error> {
        self.inner.attr(id, key)
    }
    fn write_fold(
        &mut self,
        expected: Option<&Indexed>,
        write: &FoldWrite<'_>,
        cut_tail: &mut dyn FnMut() -> Option<PathBuf>,
    ) -> Result<Written, Error> {
        if self.folds_left > 0 {
            self.folds_left -= 1;
            return self.inner.write_fold(expected, write, cut_tail);
        }
        let url = self.url.clone();
        self.inner.write_fold(expected, write, &mut || {
            // Inside the transaction, its lock held: every other session of
            // the database (ours) is ended.
            let mut killer = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            killer
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'lab' AND pid <> pg_backend_pid()",
                    &[],
                )
                .unwrap();
            cut_tail()
        })
    }
    fn write_unreadable(&mut self, short_id: &str, reason: &str) -> Result<(), Error> {
        self.inner.write_unreadable(short_id, reason)
    }
    fn complete_runs(&self) -> Result<HashSet<String>, Error> {
        self.inner.complete_runs()
    }
    fn any_incomplete(&self) -> Result<bool, Error> {
        self.inner.any_incomplete()
    }
    fn settled_dir_mtime(&self) -> Result<Option<i64>, Error> {
        self.inner.settled_dir_mtime()
    }
    fn set_settled_dir_mtime(&mut self, mtime: Option<i64>) -> Result<(), Error> {
        self.inner.set_settled_dir_mtime(mtime)
    }
    fn forget_vanished(
        &mut self,
        project: &Project,
        complete_vanished: bool,
        listed_pending: &[String],
    ) -> Result<(), Error> {
        self.inner
            .forget_vanished(project, complete_vanished, listed_pending)
    }
}

#[test]
fn a_fold_cut_off_mid_transaction_and_run_again_gives_the_same_runs() {
    let cluster = Cluster::start();
    let mut rng = Rng::new(31);
    let (a_dir, a) = new_project();
    let (b_dir, b) = new_project();
    journals::runs(&a, &mut rng, 30, false);
    copy_runs(&a, &b);
    let mut store = Store::open(a.clone()).unwrap();
    store.refresh().unwrap();
    let mut index = connect(&cluster, "cut");
    let mut cutting = CutMidFold {
        inner: &mut index,
        folds_left: 12,
        url: cluster.lab(),
    };
    let Err(e) = lab_store::index::fold_project(&b, &mut cutting) else {
        panic!("the fold went through its cut connection");
    };
    assert_eq!(e.kind(), lab_store::ErrorKind::Storage, "{e}");
    drop(index);
    // What was committed is whole runs: the twelve folded first.
    let mut again = connect(&cluster, "cut");
    let folded = again
        .select(&lab_store::Selection::default())
        .unwrap()
        .len();
    assert_eq!(folded, 12);
    again.fold(&b).unwrap();
    check_same(
        &store,
        a_dir.path(),
        &again,
        b_dir.path(),
        "after a cut fold, folded again",
    );
}

#[test]
fn a_stretch_of_journal_written_twice_is_counted_once() {
    let cluster = Cluster::start();
    let (_dir, project) = new_project();
    let mut index = connect(&cluster, "twice");
    let run = RunId::new(1_000, 0);
    let short = run.short();
    let id = run.to_string();
    let mut delta = Delta {
        start: Some(Start {
            run,
            time_nanos: 1_000,
            experiment: "e".into(),
        }),
        new_keys: vec![MetricKey {
            key: 0,
            name: "loss".into(),
        }],
        ..Delta::default()
    };
    delta.metrics.insert(
        0,
        MetricDelta {
            first_seq: 40 << 16,
            last: 0.5,
            last_step: 2,
            last_nanos: 1_003,
            min: Some(0.5),
            max: Some(0.9),
            count: 3,
        },
    );
    let paths = project.run_paths(&short);
    let write = FoldWrite {
        short_id: &short,
        id: &id,
        delta: &delta,
        folded: Folded {
            end_offset: 200,
            settled: false,
            damage: &[],
            misfiled: None,
        },
        paths: &paths,
        edits: None,
    };
    let first = index.write_fold(None, &write, &mut || None).unwrap();
    assert_eq!(first, Written::Done { kept: None });
    // The same stretch again, from the same progress: another fold got there.
    let second = index.write_fold(None, &write, &mut || None).unwrap();
    assert_eq!(second, Written::Raced);
    let run = index.run(&short).unwrap();
    assert_eq!(run.metrics.len(), 1);
    assert_eq!(run.metrics[0].count, 3);
    // The next stretch, from the progress the first reached, adds to it.
    let now = index.indexed(&short).unwrap();
    assert_eq!(now.as_ref().map(|i| i.offset), Some(200));
    let next = FoldWrite {
        folded: Folded {
            end_offset: 300,
            settled: false,
            damage: &[],
            misfiled: None,
        },
        ..write
    };
    index.write_fold(now.as_ref(), &next, &mut || None).unwrap();
    assert_eq!(index.run(&short).unwrap().metrics[0].count, 6);
}

#[test]
fn two_numbers_declared_for_one_metric_merge_into_one_summary() {
    // Only a journal written by hand has this; SQLite merges the two too.
    let cluster = Cluster::start();
    let (_dir, project) = new_project();
    let mut index = connect(&cluster, "merge");
    let run = RunId::new(1_000, 0);
    let (short, id) = (run.short(), run.to_string());
    let mut delta = Delta {
        start: Some(Start {
            run,
            time_nanos: 1_000,
            experiment: "e".into(),
        }),
        new_keys: vec![
            MetricKey {
                key: 0,
                name: "loss".into(),
            },
            MetricKey {
                key: 1,
                name: "loss".into(),
            },
        ],
        ..Delta::default()
    };
    for (key, count, min) in [(0, 3, 0.5), (1, 2, 0.25)] {
        delta.metrics.insert(
            key,
            MetricDelta {
                first_seq: u64::from(key) << 16,
                last: min,
                last_step: 1,
                last_nanos: 1_001,
                min: Some(min),
                max: Some(0.9),
                count,
            },
        );
    }
    let paths = project.run_paths(&short);
    let write = FoldWrite {
        short_id: &short,
        id: &id,
        delta: &delta,
        folded: Folded {
            end_offset: 100,
            settled: false,
            damage: &[],
            misfiled: None,
        },
        paths: &paths,
        edits: None,
    };
    index.write_fold(None, &write, &mut || None).unwrap();
    let run = index.run(&short).unwrap();
    assert_eq!(run.metrics.len(), 1);
    assert_eq!(run.metrics[0].count, 5);
    assert_eq!(run.metrics[0].min, Some(0.25));
}

/// Set in a child process of the kill test: the database to fold into.
const FOLD_URL: &str = "LAB_PG_TEST_FOLD_URL";
/// Set with it: the project to fold.
const FOLD_PROJECT: &str = "LAB_PG_TEST_FOLD_PROJECT";

#[test]
fn a_folding_process_killed_midway_leaves_whole_runs_and_a_fold_again_completes_them() {
    if let Ok(url) = std::env::var(FOLD_URL) {
        // The child: fold until killed.
        let dir = std::path::PathBuf::from(std::env::var(FOLD_PROJECT).unwrap());
        let (project, _) = Project::create(&dir).unwrap();
        let mut index = PgIndex::connect(&url, "killed").unwrap();
        index.fold(&project).unwrap();
        return;
    }
    let cluster = Cluster::start();
    let mut rng = Rng::new(61);
    let (a_dir, a) = new_project();
    let (b_dir, b) = new_project();
    journals::runs(&a, &mut rng, 150, false);
    copy_runs(&a, &b);
    let mut store = Store::open(a.clone()).unwrap();
    store.refresh().unwrap();
    // The schema, made before the child starts, for counting its runs.
    drop(connect(&cluster, "killed"));
    let mut client = postgres::Client::connect(&cluster.lab(), postgres::NoTls).unwrap();
    let count = |client: &mut postgres::Client| -> i64 {
        client
            .query_one("SELECT count(*) FROM lab.runs", &[])
            .unwrap()
            .get(0)
    };
    // PostgreSQL says so when a client vanishes inside a transaction: kill
    // folding children until one was killed there.
    let cut_open = |cluster: &Cluster| cluster.log().matches("open transaction").count();
    let mut killed_inside = false;
    for _ in 0..10 {
        let before = (count(&mut client), cut_open(&cluster));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "concurrent::a_folding_process_killed_midway_leaves_whole_runs_and_a_fold_again_completes_them",
                "--nocapture",
            ])
            .env(FOLD_URL, cluster.lab())
            .env(FOLD_PROJECT, b.root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
        while count(&mut client) < before.0 + 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "the child folds nothing"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            count(&mut client) < 150,
            "a child finished before it was killed"
        );
        // The server notices the vanished client a moment later.
        std::thread::sleep(std::time::Duration::from_millis(200));
        if cut_open(&cluster) > before.1 {
            killed_inside = true;
            break;
        }
    }
    assert!(killed_inside, "no child was killed inside a transaction");
    let mut again = connect(&cluster, "killed");
    again.fold(&b).unwrap();
    check_same(
        &store,
        a_dir.path(),
        &again,
        b_dir.path(),
        "after a kill -9 mid-fold",
    );
}
