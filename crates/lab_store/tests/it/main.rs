//! Store tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use lab_journal::{Damage, JournalWriter, WRITER_ATTR, WriterIdentity, read_journal};
use lab_store::{
    ArtifactInfo, ConsoleEvent, Error, Issue, MetricSummary, ModelInfo, Project, RunInfo, RunPaths,
    Store,
};
use lab_types::{
    ConsoleLine, ErrorInfo, MetricPoint, Record, RunId, Status, Stream, Value, now_nanos,
};

mod edit;
mod holes;
mod media;
mod model;
mod rebuild;
mod series;

const SECOND: i64 = 1_000_000_000;

mod paging;
mod query;

fn new_project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let (project, created) = Project::create(dir.path()).unwrap();
    assert!(created);
    (dir, project)
}

fn open(project: &Project) -> Store {
    match Store::open(project.clone()) {
        Ok(s) => s,
        Err(e) => panic!("opening the index failed: {e}"),
    }
}

fn open_err(project: &Project) -> Error {
    match Store::open(project.clone()) {
        Ok(_) => panic!("opening the index should have failed"),
        Err(e) => e,
    }
}

/// A run being written straight into its journal, as a client would.
struct Writer {
    id: RunId,
    paths: RunPaths,
    w: JournalWriter,
}

fn begin(project: &Project, experiment: &str, start: i64) -> Writer {
    let (id, paths) = project.claim_run(start).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    w.append(&Record::Start {
        run: id,
        time_nanos: start,
        experiment: experiment.into(),
    })
    .unwrap();
    Writer { id, paths, w }
}

impl Writer {
    fn short(&self) -> String {
        self.id.short()
    }

    fn rec(&mut self, r: &Record) {
        self.w.append(r).unwrap();
    }

    fn attr(&mut self, key: &str, value: Value) {
        self.rec(&Record::Attr {
            time_nanos: now_nanos(),
            key: key.into(),
            value,
        });
    }

    fn tag(&mut self, key: &str, value: &str) {
        self.rec(&Record::Tag {
            time_nanos: now_nanos(),
            key: key.into(),
            value: value.into(),
        });
    }

    fn param(&mut self, key: &str, value: Value) {
        self.rec(&Record::Param {
            time_nanos: now_nanos(),
            key: key.into(),
            value,
        });
    }

    fn key(&mut self, key: u32, name: &str) {
        self.rec(&Record::MetricKey {
            key,
            name: name.into(),
        });
    }

    fn metric(&mut self, key: u32, step: i64, value: f64) {
        self.w
            .append_metric(now_nanos(), &MetricPoint { key, step, value })
            .unwrap();
    }

    fn metrics(&mut self, points: &[(u32, i64, f64)]) {
        self.rec(&Record::Metrics {
            time_nanos: now_nanos(),
            points: points
                .iter()
                .map(|&(key, step, value)| MetricPoint { key, step, value })
                .collect(),
        });
    }

    fn end(&mut self, time_nanos: i64, status: Status, error: Option<ErrorInfo>) {
        self.rec(&Record::End {
            time_nanos,
            status,
            error,
        });
    }

    fn close(self) {
        self.w.close().unwrap();
    }
}

fn summary(run: &RunInfo, name: &str) -> MetricSummary {
    run.metric(name)
        .unwrap_or_else(|| panic!("run {} has no metric {name}", run.short_id))
        .clone()
}

fn metric_names(run: &RunInfo) -> Vec<&str> {
    run.metrics.iter().map(|m| m.name.as_str()).collect()
}

/// `(journal_offset, complete)` as the index holds them.
fn index_row(project: &Project, short: &str) -> (i64, bool) {
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    conn.query_row(
        "SELECT journal_offset, complete FROM runs WHERE short_id = ?1",
        [short],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn assert_index_sound(project: &Project) {
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(check, ["ok"], "integrity_check of the index");
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// The `n`th piece cut off a run's journal.
fn damaged_piece(paths: &RunPaths, n: u32) -> std::path::PathBuf {
    paths.dir.join(format!("journal.lab.damaged.{n}"))
}

/// Compares two views of the same run field by field.
fn assert_same_run(a: &RunInfo, b: &RunInfo) {
    let who = &a.short_id;
    assert_eq!(a.id, b.id, "{who}: id");
    assert_eq!(a.short_id, b.short_id, "{who}: short_id");
    assert_eq!(a.experiment, b.experiment, "{who}: experiment");
    assert_eq!(a.status, b.status, "{who}: status");
    assert_eq!(a.start_nanos, b.start_nanos, "{who}: start_nanos");
    assert_eq!(a.end_nanos, b.end_nanos, "{who}: end_nanos");
    assert_eq!(a.attrs, b.attrs, "{who}: attrs");
    assert_eq!(a.features, b.features, "{who}: features");
    assert_eq!(a.params, b.params, "{who}: params");
    assert_eq!(a.metrics, b.metrics, "{who}: metrics");
    assert_eq!(a.tags, b.tags, "{who}: tags");
    assert_eq!(a.artifacts, b.artifacts, "{who}: artifacts");
    assert_eq!(a.models, b.models, "{who}: models");
    assert_eq!(a.error, b.error, "{who}: error");
    assert_eq!(a.damage, b.damage, "{who}: damage");
}

fn assert_same_runs(a: &[RunInfo], b: &[RunInfo]) {
    assert_eq!(
        a.iter().map(|r| &r.short_id).collect::<Vec<_>>(),
        b.iter().map(|r| &r.short_id).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(b) {
        assert_same_run(x, y);
    }
}

fn model_record(time_nanos: i64) -> Record {
    Record::Model {
        time_nanos,
        name: "clf".into(),
        path: "models/clf.joblib".into(),
        format: "joblib".into(),
        class: "sklearn.ensemble.RandomForestClassifier".into(),
        library: "sklearn".into(),
        library_version: "1.9.1".into(),
        size: 19_400,
        sha256: "d6ea9e0cdceb".repeat(5) + "abcd",
    }
}

/// A finished run that logged one of everything.
fn write_full_run(project: &Project, experiment: &str, start: i64) -> Writer {
    let mut w = begin(project, experiment, start);
    w.attr("source", Value::Str("/src/train.py".into()));
    w.attr("user", Value::Str("alice".into()));
    w.attr("host", Value::Str("box".into()));
    w.attr("git_dirty", Value::Bool(true));
    w.rec(&Record::Features {
        time_nanos: start,
        names: vec![Value::Str("sepal".into()), Value::Str("petal".into())],
    });
    w.param("lr", Value::Float(0.1));
    w.param("epochs", Value::Int(10));
    w.param("lr", Value::Float(0.01));
    w.key(0, "loss");
    w.key(1, "acc");
    w.metric(0, 0, 1.0);
    w.metric(0, 1, f64::NAN);
    w.metric(0, 2, 0.25);
    w.metric(0, 3, 0.5);
    w.metrics(&[(1, 0, 0.9)]);
    w.rec(&Record::Tag {
        time_nanos: start,
        key: "stage".into(),
        value: "dev".into(),
    });
    w.rec(&Record::Artifact {
        time_nanos: start,
        name: "cm".into(),
        source: "/data/cm.csv".into(),
    });
    w.rec(&Record::Artifact {
        time_nanos: start,
        name: "notes".into(),
        source: "/data/notes".into(),
    });
    w.rec(&Record::ArtifactStored {
        time_nanos: start,
        name: "cm".into(),
        path: "artifacts/cm/cm.csv".into(),
        files: 1,
        bytes: 21,
    });
    w.rec(&model_record(start + 1));
    w.rec(&console(Stream::Stdout, start + 2, &["epoch 1", ""]));
    w.rec(&Record::ConsoleCut {
        time_nanos: start + 3,
        lines: 2,
        bytes: 9,
    });
    w.end(start + 5 * SECOND, Status::Finished, None);
    w
}

#[test]
fn a_finished_run_is_indexed_with_everything_it_logged() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let w = write_full_run(&project, "iris", t0);
    let (id, short, journal) = (w.id, w.short(), w.paths.journal.clone());
    w.close();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&id.to_string()).unwrap();
    assert_eq!(run.id, id);
    assert_eq!(run.short_id, short);
    assert_eq!(run.experiment, "iris");
    assert_eq!(run.status, Status::Finished);
    assert_eq!(run.start_nanos, t0);
    assert_eq!(run.end_nanos, Some(t0 + 5 * SECOND));
    assert_eq!(run.error, None);
    assert_eq!(run.damage, None);
    assert_eq!(run.attr_str("source"), Some("/src/train.py"));
    assert_eq!(run.attr_str("user"), Some("alice"));
    assert_eq!(run.attr("git_dirty"), Some(&Value::Bool(true)));
    assert_eq!(
        run.features,
        [Value::Str("sepal".into()), Value::Str("petal".into())]
    );
    // First-logged order, latest value.
    assert_eq!(
        run.params,
        [
            ("lr".to_owned(), Value::Float(0.01)),
            ("epochs".to_owned(), Value::Int(10))
        ]
    );
    assert_eq!(metric_names(&run), ["loss", "acc"]);
    assert_eq!(
        summary(&run, "loss"),
        MetricSummary {
            name: "loss".into(),
            last: 0.5,
            last_step: 3,
            min: Some(0.25),
            max: Some(1.0),
            count: 4,
        }
    );
    assert_eq!(
        summary(&run, "acc"),
        MetricSummary {
            name: "acc".into(),
            last: 0.9,
            last_step: 0,
            min: Some(0.9),
            max: Some(0.9),
            count: 1,
        }
    );
    assert_eq!(run.tags, [("stage".to_owned(), "dev".to_owned())]);
    assert_eq!(
        run.artifacts,
        [
            ArtifactInfo {
                name: "cm".into(),
                source: "/data/cm.csv".into(),
                path: Some("artifacts/cm/cm.csv".into()),
                files: Some(1),
                bytes: Some(21),
            },
            ArtifactInfo {
                name: "notes".into(),
                source: "/data/notes".into(),
                path: None,
                files: None,
                bytes: None,
            }
        ]
    );
    let Record::Model { sha256, .. } = model_record(0) else {
        unreachable!()
    };
    assert_eq!(
        run.models,
        [ModelInfo {
            name: "clf".into(),
            path: "models/clf.joblib".into(),
            format: "joblib".into(),
            class: "sklearn.ensemble.RandomForestClassifier".into(),
            library: "sklearn".into(),
            library_version: "1.9.1".into(),
            size: 19_400,
            sha256,
            logged_nanos: t0 + 1,
        }]
    );
    // The run is done: folded to the end and never read again.
    assert_eq!(
        index_row(&project, &short),
        (file_len(&journal) as i64, true)
    );
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    let columns: (String, String, String, i64) = conn
        .query_row(
            "SELECT source, user, host, git_dirty FROM runs WHERE id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        columns,
        ("/src/train.py".into(), "alice".into(), "box".into(), 1)
    );
    assert_eq!(store.status_counts().unwrap().get("finished"), Some(&1));
    assert_eq!(
        store.metric_history(&run, "loss").unwrap().len(),
        4,
        "every point is read back from the journal"
    );
    assert!(store.refresh().unwrap().is_empty());
    assert_index_sound(&project);
}

#[test]
fn runs_list_newest_first_and_prefixes_resolve() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut ids = Vec::new();
    for (i, experiment) in ["a", "b", "a"].into_iter().enumerate() {
        let mut w = begin(&project, experiment, t0 + i as i64 * SECOND);
        w.end(t0 + i as i64 * SECOND + 1, Status::Finished, None);
        ids.push(w.id);
        w.close();
    }
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());

    let all: Vec<RunId> = store.runs(None).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(all, [ids[2], ids[1], ids[0]]);
    let of_a: Vec<RunId> = store
        .runs(Some("a"))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_a, [ids[2], ids[0]]);
    assert!(store.runs(Some("nope")).unwrap().is_empty());

    let full = ids[1].to_string();
    for prefix in [
        full.clone(),
        full[..8].to_owned(),
        full[..12].to_owned(),
        full[..10].to_ascii_uppercase(),
        format!("  {}  ", &full[..9]),
    ] {
        assert_eq!(store.run(&prefix).unwrap().id, ids[1], "prefix {prefix:?}");
        assert_eq!(store.resolve(&prefix).unwrap(), full);
    }

    match store.run("ffff") {
        Err(Error::UnknownRun { prefix }) => assert_eq!(prefix, "ffff"),
        other => panic!("expected UnknownRun, got {:?}", other.map(|r| r.id)),
    }
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let common = texts[0]
        .chars()
        .zip(texts[1].chars())
        .zip(texts[2].chars())
        .take_while(|((a, b), c)| a == b && b == c)
        .count();
    assert!(common >= 1, "time-ordered ids share their first digit");
    let prefix = &texts[0][..common];
    match store.run(prefix) {
        Err(e @ Error::AmbiguousRun { .. }) => {
            let message = e.to_string();
            let Error::AmbiguousRun {
                prefix: p,
                candidates,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(p, prefix);
            let mut sorted = texts.clone();
            sorted.sort();
            assert_eq!(candidates, sorted);
            for t in &texts {
                assert!(message.contains(t.as_str()), "{message}");
            }
        }
        other => panic!("expected AmbiguousRun, got {:?}", other.map(|r| r.id)),
    }
    for bad in ["", "   "] {
        match store.run(bad) {
            Err(Error::BadRunId { prefix }) => assert_eq!(prefix, bad),
            other => panic!("{bad:?}: expected BadRunId, got {:?}", other.map(|r| r.id)),
        }
    }
    // What cannot be an id prefix may be a name.
    for bad in ["xyz", "0e5-1", &"0".repeat(33)] {
        match store.run(bad) {
            Err(Error::UnknownRunName { name }) => assert_eq!(name, bad),
            other => panic!(
                "{bad:?}: expected UnknownRunName, got {:?}",
                other.map(|r| r.id)
            ),
        }
    }
}

#[test]
fn a_live_run_is_running_and_folds_incrementally() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut w = begin(&project, "live", t0);
    w.attr(WRITER_ATTR, WriterIdentity::current().unwrap().to_value());
    w.param("lr", Value::Float(0.1));
    w.key(0, "loss");
    w.metric(0, 0, 3.0);
    w.metric(0, 1, f64::NAN);
    let short = w.short();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Running);
    assert_eq!(run.end_nanos, None);
    assert_eq!(run.params, [("lr".to_owned(), Value::Float(0.1))]);
    let loss = summary(&run, "loss");
    assert!(loss.last.is_nan());
    assert_eq!(
        (loss.last_step, loss.min, loss.max, loss.count),
        (1, Some(3.0), Some(3.0), 2)
    );
    assert_eq!(index_row(&project, &short), (w.w.len() as i64, false));

    // More records: the next refresh reads on from where the index stopped.
    w.param("lr", Value::Float(0.2));
    w.param("batch", Value::Int(32));
    w.key(1, "acc");
    w.metric(0, 2, 1.0);
    w.metric(0, 3, 5.0);
    w.metrics(&[(1, 0, 0.5), (0, 4, 2.0)]);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Running);
    assert_eq!(
        run.params,
        [
            ("lr".to_owned(), Value::Float(0.2)),
            ("batch".to_owned(), Value::Int(32))
        ]
    );
    assert_eq!(metric_names(&run), ["loss", "acc"]);
    assert_eq!(
        summary(&run, "loss"),
        MetricSummary {
            name: "loss".into(),
            last: 2.0,
            last_step: 4,
            min: Some(1.0),
            max: Some(5.0),
            count: 5,
        }
    );
    assert_eq!(summary(&run, "acc").count, 1);
    assert_eq!(index_row(&project, &short), (w.w.len() as i64, false));

    // Nothing new: nothing is counted twice.
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(summary(&store.run(&short).unwrap(), "loss").count, 5);
    // Rebuilding while the run logs: the same, still running.
    assert!(store.reindex().unwrap().is_empty());
    let rebuilt = store.run(&short).unwrap();
    assert_eq!(rebuilt.status, Status::Running);
    assert_eq!(summary(&rebuilt, "loss").count, 5);
    assert_eq!(rebuilt.params, run.params);

    let journal = w.paths.journal.clone();
    w.end(t0 + 7, Status::Finished, None);
    w.close();
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Finished);
    assert_eq!(run.end_nanos, Some(t0 + 7));
    assert_eq!(summary(&run, "loss").count, 5);
    assert_eq!(
        index_row(&project, &short),
        (file_len(&journal) as i64, true)
    );
    assert_index_sound(&project);
}

#[test]
fn a_writer_dropped_without_end_is_crashed_with_what_it_logged() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut w = begin(&project, "crash", t0);
    w.attr(WRITER_ATTR, WriterIdentity::current().unwrap().to_value());
    w.attr("source", Value::Str("/src/crash.py".into()));
    w.param("seed", Value::Int(7));
    w.key(0, "loss");
    for step in 0..10 {
        w.metric(0, step, 10.0 - step as f64);
    }
    let (short, journal, written) = (w.short(), w.paths.journal.clone(), w.w.len());
    // Dropping closes the file (releasing the lock) but writes no Close record.
    drop(w);
    assert!(
        file_len(&journal) > written,
        "the reserved space is still there"
    );

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Crashed);
    assert_eq!(run.end_nanos, None);
    assert_eq!(run.damage, None);
    assert_eq!(run.attr_str("source"), Some("/src/crash.py"));
    assert_eq!(run.params, [("seed".to_owned(), Value::Int(7))]);
    assert_eq!(
        summary(&run, "loss"),
        MetricSummary {
            name: "loss".into(),
            last: 1.0,
            last_step: 9,
            min: Some(1.0),
            max: Some(10.0),
            count: 10,
        }
    );
    assert_eq!(index_row(&project, &short), (written as i64, true));
    // Reserved zeros are not damage: they are given back, and the journal
    // ends at its last record as a closed one does.
    assert_eq!(file_len(&journal), written);
    assert!(!damaged_piece(&project.run_paths(&short), 1).exists());
    let again = read_journal(&journal, 0, |_, _| {}).unwrap();
    assert_eq!((again.end, again.damage), (written, vec![]));
    assert!(store.refresh().unwrap().is_empty());
    assert_index_sound(&project);
}

#[test]
fn a_held_lock_whose_writer_process_is_dead_is_crashed() {
    let (_dir, project) = new_project();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = i64::from(child.id());
    child.wait().unwrap();
    let ghost = WriterIdentity {
        pid,
        start_ticks: 12_345,
        ..WriterIdentity::current().unwrap()
    };

    let mut w = begin(&project, "ghost", now_nanos());
    w.attr(WRITER_ATTR, ghost.to_value());
    w.param("seed", Value::Int(1));
    w.key(0, "loss");
    w.metric(0, 0, 0.5);
    w.metric(0, 1, 0.25);
    let short = w.short();

    // The lock is held (by this process, through `w`).
    let f = std::fs::File::open(&w.paths.journal).unwrap();
    assert!(matches!(
        f.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    ));
    drop(f);

    let written = w.w.len();
    let reserved = file_len(&w.paths.journal);
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Crashed);
    assert_eq!(run.params, [("seed".to_owned(), Value::Int(1))]);
    let loss = summary(&run, "loss");
    assert_eq!((loss.last, loss.count), (0.25, 2));
    assert!(index_row(&project, &short).1, "the run is complete");
    // A journal whose lock is held is never cut, whatever the verdict.
    assert_eq!(file_len(&w.paths.journal), reserved);
    assert!(reserved > written);

    // The same dead pid in another PID namespace (a writer in a container),
    // or from a Lab that did not record its namespace: the pid means nothing
    // here, so the held lock says the writer lives.
    for pid_ns in [ghost.pid_ns.map(|ns| ns + 1), None] {
        let contained = WriterIdentity {
            pid_ns,
            ..ghost.clone()
        };
        let mut boxed = begin(&project, "contained", now_nanos() + 2 * SECOND);
        boxed.attr(WRITER_ATTR, contained.to_value());
        boxed.key(0, "loss");
        boxed.metric(0, 0, 1.0);
        // Stray bytes past the end, as a frame on its way may look.
        let end = boxed.w.len();
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&boxed.paths.journal)
                .unwrap();
            f.seek(SeekFrom::Start(end + 8)).unwrap();
            f.write_all(b"in flight").unwrap();
        }
        let len = file_len(&boxed.paths.journal);
        assert!(store.refresh().unwrap().is_empty());
        assert!(store.reindex().unwrap().is_empty());
        let run = store.run(&boxed.short()).unwrap();
        assert_eq!(run.status, Status::Running, "{pid_ns:?}");
        assert!(!index_row(&project, &boxed.short()).1);
        assert_eq!(file_len(&boxed.paths.journal), len, "nothing was cut");
        assert!(!damaged_piece(&boxed.paths, 1).exists());
        // The writer goes on as if nothing happened.
        let boxed_short = boxed.short();
        boxed.metric(0, 1, 0.5);
        boxed.end(now_nanos(), Status::Finished, None);
        boxed.close();
        assert!(store.refresh().unwrap().is_empty());
        let run = store.run(&boxed_short).unwrap();
        assert_eq!(run.status, Status::Finished);
        assert_eq!(summary(&run, "loss").count, 2);
        assert_eq!(run.damage, None);
        store.delete_run(&run).unwrap();
    }

    // The same dead pid on another host: this machine cannot tell, so the
    // held lock says the writer lives.
    let elsewhere = WriterIdentity {
        host: format!("{}-elsewhere", ghost.host),
        ..ghost
    };
    let mut other = begin(&project, "ghost", now_nanos() + SECOND);
    other.attr(WRITER_ATTR, elsewhere.to_value());
    other.key(0, "loss");
    other.metric(0, 0, 1.0);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&other.short()).unwrap();
    assert_eq!(run.status, Status::Running);
    assert!(!index_row(&project, &other.short()).1);
    drop(w);
    drop(other);
    // Both writers are gone now; the first run was already settled.
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(store.status_counts().unwrap().get("crashed"), Some(&2));
}

#[test]
fn damage_behind_a_live_writer_is_ignored_until_the_writer_is_gone() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "live", now_nanos());
    w.param("seed", Value::Int(5));
    w.key(0, "loss");
    w.metric(0, 0, 0.5);
    let (short, paths, end) = (w.short(), w.paths.clone(), w.w.len());
    // A frame whose payload does not match its CRC where the next frame
    // goes (as a frame half written back before a power cut looks), and
    // stray bytes after it.
    let mut garbage = Vec::new();
    garbage.extend_from_slice(&20u32.to_le_bytes());
    garbage.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
    garbage.extend_from_slice(b"stray bytes");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&paths.journal)
            .unwrap();
        f.seek(SeekFrom::Start(end)).unwrap();
        f.write_all(&garbage).unwrap();
    }
    let len = file_len(&paths.journal);

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty(), "the writer is alive");
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Running);
    assert_eq!(run.damage, None);
    assert_eq!(summary(&run, "loss").count, 1);
    assert_eq!(file_len(&paths.journal), len, "a live journal is not cut");
    assert!(!damaged_piece(&paths, 1).exists());

    drop(w);
    let issues = store.refresh().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    let Issue::Damaged { run, damage, kept } = &issues[0] else {
        panic!("expected Damaged, got {issues:?}")
    };
    assert_eq!(run, &short);
    assert_eq!(
        damage,
        &Damage {
            offset: end,
            dropped_bytes: garbage.len() as u64,
            reason: "CRC mismatch".into(),
            tail: true,
        }
    );
    assert_eq!(kept.as_deref(), Some(damaged_piece(&paths, 1).as_path()));
    let run = store.run(&short).unwrap();
    // Whether an End record was among the stray bytes cannot be told.
    assert_eq!(run.status, Status::Damaged);
    assert_eq!(run.params, [("seed".to_owned(), Value::Int(5))]);
    assert_eq!(summary(&run, "loss").count, 1);
    assert_eq!(file_len(&paths.journal), end);
    assert_eq!(std::fs::read(damaged_piece(&paths, 1)).unwrap(), garbage);
    assert!(store.refresh().unwrap().is_empty());
}

#[test]
fn special_floats_are_summarised_as_documented() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "floats", now_nanos());
    w.key(0, "wild");
    w.key(1, "all_nan");
    w.key(2, "negative_nan_last");
    w.metric(0, 0, f64::INFINITY);
    w.metric(0, 1, f64::NEG_INFINITY);
    w.metric(0, 2, 0.0);
    w.metric(1, 0, f64::NAN);
    w.metric(1, 1, f64::NAN);
    let neg_nan = f64::from_bits(f64::NAN.to_bits() | (1 << 63));
    w.metric(2, 0, 1.0);
    w.metric(2, 1, neg_nan);
    w.param("nan_param", Value::Float(f64::NAN));
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    w.close();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    let wild = summary(&run, "wild");
    assert_eq!(
        (wild.last, wild.min, wild.max, wild.count),
        (0.0, Some(f64::NEG_INFINITY), Some(f64::INFINITY), 3)
    );
    let all_nan = summary(&run, "all_nan");
    assert!(all_nan.last.is_nan());
    assert_eq!(
        (all_nan.min, all_nan.max, all_nan.count, all_nan.last_step),
        (None, None, 2, 1)
    );
    // The exact bits of the last value survive, sign of NaN included.
    let last = summary(&run, "negative_nan_last").last;
    assert_eq!(last.to_bits(), neg_nan.to_bits());
    match &run.params[..] {
        [(k, Value::Float(v))] => assert!(k == "nan_param" && v.is_nan()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fold_run_indexes_one_run() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut shorts = Vec::new();
    for i in 0..2 {
        let mut w = begin(&project, "one", t0 + i * SECOND);
        w.end(t0 + i * SECOND + 1, Status::Finished, None);
        shorts.push(w.short());
        w.close();
    }
    let mut store = open(&project);
    assert!(store.fold_run(&shorts[1]).unwrap().is_empty());
    let listed: Vec<String> = store
        .runs(None)
        .unwrap()
        .into_iter()
        .map(|r| r.short_id)
        .collect();
    assert_eq!(listed, [shorts[1].clone()]);
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(store.runs(None).unwrap().len(), 2);
}

/// A finished, closed run with ten loss points; returns the writer's id,
/// paths and every frame's offset and record.
fn closed_run_with_ten_points(project: &Project) -> (RunId, RunPaths, Vec<(u64, Record)>) {
    let mut w = begin(project, "damage", now_nanos());
    w.param("seed", Value::Int(3));
    w.key(0, "loss");
    for step in 0..10 {
        w.metric(0, step, f64::from(step as u32) + 1.0);
    }
    w.end(now_nanos(), Status::Finished, None);
    let (id, paths) = (w.id, w.paths.clone());
    w.close();
    let mut frames = Vec::new();
    let scan = read_journal(&paths.journal, 0, |at, r| frames.push((at, r))).unwrap();
    assert_eq!(scan.damage, []);
    (id, paths, frames)
}

/// The offset of the sixth Metric frame.
fn sixth_metric(frames: &[(u64, Record)]) -> u64 {
    frames
        .iter()
        .filter(|(_, r)| matches!(r, Record::Metric { .. }))
        .nth(5)
        .unwrap()
        .0
}

#[test]
fn a_journal_cut_mid_frame_keeps_the_records_before_the_cut() {
    let (_dir, project) = new_project();
    let (id, paths, frames) = closed_run_with_ten_points(&project);
    let offset = sixth_metric(&frames);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&paths.journal)
        .unwrap();
    // Inside the payload: the frame header is whole, the payload is not.
    f.set_len(offset + 8 + 10).unwrap();
    drop(f);
    let bytes = std::fs::read(&paths.journal).unwrap();
    let dropped = bytes[offset as usize..]
        .iter()
        .rposition(|b| *b != 0)
        .unwrap() as u64
        + 1;
    let tail = bytes[offset as usize..(offset + dropped) as usize].to_vec();
    let reason = "the file ends inside a frame (a torn write)";

    let mut store = open(&project);
    let issues = store.refresh().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    match &issues[0] {
        Issue::Damaged { run, damage, kept } => {
            assert_eq!(run, &id.short());
            assert_eq!(
                damage,
                &Damage {
                    offset,
                    dropped_bytes: dropped,
                    reason: reason.into(),
                    tail: true,
                }
            );
            assert_eq!(kept.as_deref(), Some(damaged_piece(&paths, 1).as_path()));
        }
        other @ Issue::Unreadable { .. } => panic!("expected Damaged, got {other:?}"),
    }
    let message = issues[0].to_string();
    assert!(
        message.contains(&format!("damaged at byte {offset}"))
            && message.contains("journal.lab.damaged.1"),
        "{message}"
    );

    // Everything before the damage; the End record was lost with the tail,
    // so how the run went cannot be told.
    let run = store.run(&id.to_string()).unwrap();
    assert_eq!(run.status, Status::Damaged);
    assert_eq!(run.params, [("seed".to_owned(), Value::Int(3))]);
    assert_eq!(
        summary(&run, "loss"),
        MetricSummary {
            name: "loss".into(),
            last: 5.0,
            last_step: 4,
            min: Some(1.0),
            max: Some(5.0),
            count: 5,
        }
    );
    let note = run.damage.clone().unwrap();
    assert!(
        note.contains(&format!(
            "{dropped} bytes skipped at offset {offset}: {reason}"
        )) && note.contains("journal.lab.damaged.1"),
        "{note}"
    );
    // The tail was moved aside and cut off.
    assert_eq!(file_len(&paths.journal), offset);
    assert_eq!(std::fs::read(damaged_piece(&paths, 1)).unwrap(), tail);
    let clean = read_journal(&paths.journal, 0, |_, _| {}).unwrap();
    assert_eq!((clean.end, clean.damage), (offset, vec![]));
    assert_eq!(index_row(&project, &id.short()), (offset as i64, true));

    // Nothing new the second time.
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(summary(&store.run(&id.short()).unwrap(), "loss").count, 5);

    // Rebuilt from the cut journal: the same records, and a note on the cut.
    // The journal now ends cleanly, without an End record: crashed, as far
    // as it alone can tell, and the note says what was cut.
    assert!(store.reindex().unwrap().is_empty());
    let again = store.run(&id.short()).unwrap();
    assert_eq!(again.metrics, run.metrics);
    assert_eq!(again.status, Status::Damaged);
    let note = again.damage.expect("the cut is remembered");
    assert!(note.contains("journal.lab.damaged.1"), "{note}");
    assert_eq!(std::fs::read(damaged_piece(&paths, 1)).unwrap(), tail);
    assert_index_sound(&project);
}

#[test]
fn a_flipped_byte_costs_one_record_and_the_run_ends_as_it_did() {
    let (_dir, project) = new_project();
    let (id, paths, frames) = closed_run_with_ten_points(&project);
    let offset = sixth_metric(&frames);
    let mut bytes = std::fs::read(&paths.journal).unwrap();
    bytes[offset as usize + 8 + 12] ^= 0x40;
    std::fs::write(&paths.journal, &bytes).unwrap();

    let mut store = open(&project);
    let issues = store.refresh().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    let Issue::Damaged { damage, kept, .. } = &issues[0] else {
        panic!("{issues:?}")
    };
    assert_eq!((damage.offset, damage.tail, kept), (offset, false, &None));
    assert_eq!(damage.reason, "CRC mismatch");
    let run = store.run(&id.short()).unwrap();
    assert_eq!(run.status, Status::Finished, "the End record was read");
    let loss = summary(&run, "loss");
    assert_eq!((loss.count, loss.last, loss.last_step), (9, 10.0, 9));
    assert!(run.damage.unwrap().contains("CRC mismatch"));
    // Damage in the middle is read past, not cut: the journal is untouched.
    assert_eq!(std::fs::read(&paths.journal).unwrap(), bytes);
    assert!(!damaged_piece(&paths, 1).exists());
}

#[test]
fn a_run_whose_start_record_is_lost_is_still_listed() {
    let (_dir, project) = new_project();
    let (id, paths, frames) = closed_run_with_ten_points(&project);
    let start = frames[0].0;
    let mut bytes = std::fs::read(&paths.journal).unwrap();
    bytes[start as usize + 8 + 3] ^= 0x01; // inside the run id
    std::fs::write(&paths.journal, &bytes).unwrap();

    let mut store = open(&project);
    for rebuild in [false, true] {
        let issues = if rebuild {
            store.reindex().unwrap()
        } else {
            store.refresh().unwrap()
        };
        assert_eq!(issues.len(), 1, "{issues:?}");
        let runs = store.runs(None).unwrap();
        assert_eq!(runs.len(), 1, "the run does not vanish");
        let run = &runs[0];
        assert_eq!(run.short_id, id.short());
        assert_eq!(run.status, Status::Finished, "its End record says so");
        assert_eq!(run.experiment, "(unknown)");
        assert_eq!(run.params, [("seed".to_owned(), Value::Int(3))]);
        assert_eq!(summary(run, "loss").count, 10);
        assert!(run.damage.as_deref().unwrap().contains("CRC mismatch"));
        // Any unique prefix still finds it.
        assert_eq!(store.run(&id.short()[..6]).unwrap().short_id, id.short());
    }

    // Without an End record either, it is listed as damaged.
    let (_dir, project) = new_project();
    let mut w = begin(&project, "lost", now_nanos());
    w.param("lr", Value::Float(0.1));
    let short = w.short();
    let journal = w.paths.journal.clone();
    drop(w);
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[16 + 8] ^= 0xff; // the Start record's tag
    std::fs::write(&journal, &bytes).unwrap();
    let mut store = open(&project);
    assert_eq!(store.refresh().unwrap().len(), 1);
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Damaged);
    assert_eq!(run.params, [("lr".to_owned(), Value::Float(0.1))]);
}

#[test]
fn a_copied_run_folder_is_a_run_of_its_own_and_leaves_the_original_alone() {
    // A run folder copied under another name: its journal's Start record
    // names the original run.
    let (_dir, project) = new_project();
    let (id, paths, _) = closed_run_with_ten_points(&project);
    let copy = project.run_paths("0fffffff");
    std::fs::create_dir(&copy.dir).unwrap();
    std::fs::copy(&paths.journal, &copy.journal).unwrap();

    let mut store = open(&project);
    for _ in 0..3 {
        store.refresh().unwrap();
        let runs = store.runs(None).unwrap();
        assert_eq!(runs.len(), 2, "the copy does not vanish");
        let original = store.run(&id.to_string()).unwrap();
        assert_eq!(original.short_id, id.short());
        assert_eq!(summary(&original, "loss").count, 10, "counted once");
        let copied = store.run("0fffffff").unwrap();
        assert_eq!(copied.short_id, "0fffffff");
        assert!(copied.id.to_string().starts_with("0fffffff"));
        assert_eq!(copied.status, Status::Finished);
        assert_eq!(summary(&copied, "loss").count, 10);
        let note = copied.damage.unwrap();
        assert!(note.contains(&id.to_string()), "{note}");
    }
    assert!(index_row(&project, &id.short()).1, "complete");
    assert!(index_row(&project, "0fffffff").1, "complete");
}

#[test]
fn salvaging_a_piece_whose_records_are_back_already_puts_nothing_back_twice() {
    let (_dir, project) = new_project();
    let (id, paths, frames) = closed_run_with_ten_points(&project);
    // An older Lab cut everything from the corrupt sixth point into one
    // unnumbered piece.
    let cut = sixth_metric(&frames) as usize;
    let mut bytes = std::fs::read(&paths.journal).unwrap();
    bytes[cut + 12] ^= 0x10;
    let piece = paths.dir.join("journal.lab.damaged");
    std::fs::write(&piece, &bytes[cut..]).unwrap();
    std::fs::write(&paths.journal, &bytes[..cut]).unwrap();
    let mut store = open(&project);
    store.refresh().unwrap();
    assert_eq!(summary(&store.run(&id.short()).unwrap(), "loss").count, 5);

    // Four points, End and Close come back.
    assert_eq!(store.salvage(&id.short()).unwrap(), 6);
    let salvaged = paths.dir.join("journal.lab.damaged.salvaged");
    let run = store.run(&id.short()).unwrap();
    assert_eq!(
        (run.status, summary(&run, "loss").count),
        (Status::Finished, 9)
    );
    let journal = std::fs::read(&paths.journal).unwrap();

    // A salvage stopped between putting the records back and renaming the
    // piece; and the same tail cut twice (the first cut stopped before the
    // journal was shortened): neither puts the records back again.
    std::fs::rename(&salvaged, &piece).unwrap();
    std::fs::copy(&piece, paths.dir.join("journal.lab.damaged.1")).unwrap();
    assert_eq!(store.salvage(&id.short()).unwrap(), 0);
    assert_eq!(std::fs::read(&paths.journal).unwrap(), journal);
    let run = store.run(&id.short()).unwrap();
    assert_eq!(
        (run.status, summary(&run, "loss").count),
        (Status::Finished, 9)
    );
    assert!(salvaged.exists());
    assert!(paths.dir.join("journal.lab.damaged.1.salvaged").exists());
}

#[test]
fn a_second_damage_never_overwrites_the_first_piece() {
    let (_dir, project) = new_project();
    let (id, paths, frames) = closed_run_with_ten_points(&project);
    let offset = sixth_metric(&frames);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&paths.journal)
        .unwrap()
        .set_len(offset + 20)
        .unwrap();
    let mut store = open(&project);
    assert_eq!(store.refresh().unwrap().len(), 1);
    let first = std::fs::read(damaged_piece(&paths, 1)).unwrap();
    // The journal is damaged again (its new last frame torn), and rebuilt.
    let fourth = frames
        .iter()
        .filter(|(_, r)| matches!(r, Record::Metric { .. }))
        .nth(3)
        .unwrap()
        .0;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&paths.journal)
        .unwrap()
        .set_len(fourth + 12)
        .unwrap();
    let issues = store.reindex().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].to_string().contains("journal.lab.damaged.2"));
    assert_eq!(std::fs::read(damaged_piece(&paths, 1)).unwrap(), first);
    assert_eq!(std::fs::read(damaged_piece(&paths, 2)).unwrap().len(), 12);
    assert_eq!(summary(&store.run(&id.short()).unwrap(), "loss").count, 3);
}

#[test]
fn two_folds_that_find_the_same_damaged_tail_cut_it_once() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "race", now_nanos());
    w.key(0, "loss");
    w.metric(0, 0, 0.5);
    let (short, paths, end) = (w.short(), w.paths.clone(), w.w.len());
    // Folded while the writer lives: the index reaches `end`.
    assert!(open(&project).refresh().unwrap().is_empty());
    assert_eq!(index_row(&project, &short), (end as i64, false));
    // The writer dies leaving a torn frame where the next one goes: no new
    // record, only a tail to cut.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&paths.journal)
            .unwrap();
        f.seek(SeekFrom::Start(end)).unwrap();
        f.write_all(&20u32.to_le_bytes()).unwrap();
        f.write_all(b"\xde\xad\xbe\xefstray bytes").unwrap();
    }
    drop(w);
    // Two readers read the journal and find the same tail while a third
    // holds the index, then both write what they found, one after the other.
    let holder = rusqlite::Connection::open(project.index_path()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let folds: Vec<_> = (0..2)
        .map(|_| {
            let project = project.clone();
            let short = short.clone();
            std::thread::Builder::new()
                .name("fold".into())
                .spawn(move || open(&project).fold_run(&short).unwrap())
                .unwrap()
        })
        .collect();
    // Long enough for both to have read the journal and to wait on the index.
    std::thread::sleep(std::time::Duration::from_millis(500));
    holder.execute_batch("COMMIT").unwrap();
    let issues: Vec<Vec<Issue>> = folds.into_iter().map(|f| f.join().unwrap()).collect();
    assert_eq!(
        issues.iter().map(Vec::len).sum::<usize>(),
        1,
        "one fold cut the tail, the other found the run done: {issues:?}"
    );
    assert_eq!(file_len(&paths.journal), end);
    assert!(damaged_piece(&paths, 1).exists());
    assert!(!damaged_piece(&paths, 2).exists(), "no second, empty piece");
    let run = open(&project).run(&short).unwrap();
    assert_eq!(run.status, Status::Damaged);
    let note = run.damage.unwrap();
    assert_eq!(note.matches("journal.lab.damaged").count(), 1, "{note}");
}

#[test]
fn an_unreadable_journal_is_reported_and_the_other_runs_are_listed() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut good = Vec::new();
    for i in 0..2 {
        let mut w = begin(&project, "ok", t0 + i * SECOND);
        w.end(t0 + i * SECOND + 1, Status::Finished, None);
        good.push(w.short());
        w.close();
    }
    let garbage = project.run_paths("deadbeef");
    std::fs::create_dir_all(&garbage.dir).unwrap();
    std::fs::write(&garbage.journal, b"this is not a journal, just some text\n").unwrap();
    let newer = project.run_paths("0badf00d");
    std::fs::create_dir_all(&newer.dir).unwrap();
    let mut header = lab_journal::header();
    header[8] = 2;
    std::fs::write(&newer.journal, header).unwrap();

    let mut store = open(&project);
    let mut issues: Vec<(String, String)> = store
        .refresh()
        .unwrap()
        .into_iter()
        .map(|i| match i {
            Issue::Unreadable { run, reason } => (run, reason),
            other @ Issue::Damaged { .. } => panic!("expected Unreadable, got {other:?}"),
        })
        .collect();
    issues.sort();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].0, "0badf00d");
    assert!(issues[0].1.contains("format version 2"), "{}", issues[0].1);
    assert_eq!(issues[1].0, "deadbeef");
    assert!(issues[1].1.contains("not a Lab journal"), "{}", issues[1].1);

    // They are listed all the same, as damaged, with what is wrong: a run
    // never vanishes from the listing.
    for _ in 0..2 {
        let listed: Vec<(String, Status)> = store
            .runs(None)
            .unwrap()
            .into_iter()
            .map(|r| (r.short_id, r.status))
            .collect();
        assert_eq!(listed.len(), 4, "{listed:?}");
        for (short, status) in &listed {
            let expected = if good.contains(short) {
                Status::Finished
            } else {
                Status::Damaged
            };
            assert_eq!(*status, expected, "{short}");
        }
        assert!(store.refresh().unwrap().is_empty(), "reported once");
    }
    let garbage_run = store.run("deadbeef").unwrap();
    assert!(
        garbage_run
            .damage
            .unwrap()
            .contains("nothing in the journal can be read"),
    );
    // The bad files are left as they were.
    assert_eq!(
        std::fs::read(&garbage.journal).unwrap(),
        b"this is not a journal, just some text\n"
    );
}

fn build_mixed_project(project: &Project) {
    let t0 = now_nanos();
    write_full_run(project, "iris", t0).close();

    let mut failed = begin(project, "iris", t0 + SECOND);
    failed.param("seed", Value::Int(2));
    failed.key(0, "loss");
    failed.metrics(&[(0, 0, 0.75)]);
    failed.end(
        t0 + 2 * SECOND,
        Status::Failed,
        Some(ErrorInfo {
            kind: "ValueError".into(),
            message: "bad input".into(),
            traceback: "Traceback (most recent call last):\nValueError: bad input\n".into(),
        }),
    );
    failed.close();

    let mut crashed = begin(project, "other", t0 + 3 * SECOND);
    crashed.attr("source", Value::Str("/src/other.py".into()));
    crashed.param(
        "tags",
        Value::List(vec![Value::Int(1), Value::Str("x".into())]),
    );
    crashed.key(0, "x");
    crashed.metric(0, 0, -1.0);
    drop(crashed);

    let mut interrupted = begin(project, "other", t0 + 4 * SECOND);
    interrupted.end(t0 + 5 * SECOND, Status::Interrupted, None);
    interrupted.close();
}

#[test]
fn reindex_rebuilds_the_same_runs() {
    let (_dir, project) = new_project();
    build_mixed_project(&project);
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let before = store.runs(None).unwrap();
    assert_eq!(before.len(), 4);
    assert_eq!(
        before.iter().map(|r| r.status).collect::<Vec<_>>(),
        [
            Status::Interrupted,
            Status::Crashed,
            Status::Failed,
            Status::Finished
        ]
    );
    assert_eq!(
        before[2].error.as_ref().map(|e| e.kind.as_str()),
        Some("ValueError")
    );

    // Emptied and rebuilt in place.
    assert!(store.reindex().unwrap().is_empty());
    assert_same_runs(&before, &store.runs(None).unwrap());
    drop(store);

    // The index deleted outright.
    for suffix in ["", "-wal", "-shm"] {
        let mut p = project.index_path().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{e}"),
        }
    }
    let mut store = open(&project);
    assert!(store.runs(None).unwrap().is_empty());
    assert!(store.reindex().unwrap().is_empty());
    assert_same_runs(&before, &store.runs(None).unwrap());
    assert_index_sound(&project);

    // A plain refresh of a fresh index gives the same too.
    drop(store);
    std::fs::remove_file(project.index_path()).unwrap();
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    assert_same_runs(&before, &store.runs(None).unwrap());
}

#[test]
fn the_index_is_a_sound_wal_database() {
    let (_dir, project) = new_project();
    build_mixed_project(&project);
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(store.runs(None).unwrap().len(), 4);
    assert_index_sound(&project);
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert!(version >= 1);
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 4);
}

#[test]
fn concurrent_refreshes_while_runs_are_written_lose_and_double_nothing() {
    const RUNS: usize = 4;
    const POINTS: i64 = 3_000;
    const READERS: usize = 4;
    let (_dir, project) = new_project();
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(READERS + 1));

    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let (project, done, barrier) =
                (project.clone(), Arc::clone(&done), Arc::clone(&barrier));
            std::thread::Builder::new()
                .name(format!("reader-{i}"))
                .spawn(move || -> Result<usize, String> {
                    barrier.wait();
                    // Every thread opens (and so migrates) the fresh index at once.
                    let mut store = Store::open(project).map_err(|e| format!("open: {e}"))?;
                    let mut seen: HashMap<(String, String), i64> = HashMap::new();
                    let mut refreshes = 0;
                    loop {
                        let last = done.load(Ordering::SeqCst);
                        let issues = store.refresh().map_err(|e| format!("refresh: {e}"))?;
                        if !issues.is_empty() {
                            return Err(format!("issues: {issues:?}"));
                        }
                        refreshes += 1;
                        for run in store.runs(None).map_err(|e| format!("runs: {e}"))? {
                            for m in &run.metrics {
                                let key = (run.short_id.clone(), m.name.clone());
                                let before = seen.insert(key, m.count).unwrap_or(0);
                                if m.count < before || m.count > POINTS {
                                    return Err(format!(
                                        "run {} metric {}: count went from {before} to {}",
                                        run.short_id, m.name, m.count
                                    ));
                                }
                            }
                        }
                        if last {
                            return Ok(refreshes);
                        }
                    }
                })
                .unwrap()
        })
        .collect();

    let writer = {
        let project = project.clone();
        let barrier = Arc::clone(&barrier);
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                barrier.wait();
                let mut shorts = Vec::new();
                for i in 0..RUNS {
                    let mut w = begin(&project, "busy", now_nanos() + i as i64);
                    w.attr(WRITER_ATTR, WriterIdentity::current().unwrap().to_value());
                    w.key(0, "x");
                    w.key(1, "y");
                    for step in 0..POINTS {
                        w.metric(0, step, step as f64);
                        if step % 50 == 0 {
                            w.metrics(&[(1, step, -(step as f64))]);
                        }
                        if step % 500 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    w.end(now_nanos(), Status::Finished, None);
                    shorts.push(w.short());
                    w.close();
                }
                shorts
            })
            .unwrap()
    };
    let shorts = writer.join().unwrap();
    done.store(true, Ordering::SeqCst);
    for r in readers {
        let refreshes = r
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("a reader failed: {e}"));
        assert!(refreshes >= 1);
    }

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let runs = store.runs(None).unwrap();
    assert_eq!(runs.len(), RUNS);
    for run in &runs {
        assert!(shorts.contains(&run.short_id));
        assert_eq!(run.status, Status::Finished, "{}", run.short_id);
        assert_eq!(
            summary(run, "x"),
            MetricSummary {
                name: "x".into(),
                last: (POINTS - 1) as f64,
                last_step: POINTS - 1,
                min: Some(0.0),
                max: Some((POINTS - 1) as f64),
                count: POINTS,
            },
            "{}",
            run.short_id
        );
        assert_eq!(summary(run, "y").count, POINTS / 50, "{}", run.short_id);
    }
    assert_index_sound(&project);
}

#[test]
fn metrics_of_one_record_list_in_the_order_given() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "order", now_nanos());
    // Key numbers and names both disagree with the logging order.
    w.key(0, "p[10]");
    w.key(1, "p[2]");
    w.key(2, "z");
    w.key(3, "a");
    w.metric(2, 0, 1.0);
    w.metrics(&[(1, 0, 0.2), (0, 0, 0.1)]);
    w.metric(3, 0, 3.0);
    w.metrics(&[(0, 1, 0.11), (1, 1, 0.22)]);
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    w.close();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(metric_names(&run), ["z", "p[2]", "p[10]", "a"]);
    assert_eq!(summary(&run, "p[2]").last.to_bits(), 0.22_f64.to_bits());
    assert_eq!(summary(&run, "p[10]").count, 2);
    assert!(store.reindex().unwrap().is_empty());
    assert_eq!(
        metric_names(&store.run(&short).unwrap()),
        ["z", "p[2]", "p[10]", "a"]
    );
    assert_eq!(
        metric_names(&store.runs(None).unwrap()[0]),
        ["z", "p[2]", "p[10]", "a"]
    );
}

#[test]
fn an_index_from_a_newer_lab_is_refused() {
    let (_dir, project) = new_project();
    drop(open(&project));
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let e = open_err(&project);
    let message = e.to_string();
    match e {
        Error::NewerSchema { path, found, known } => {
            assert_eq!(path, project.index_path());
            assert_eq!(found, 999);
            assert!((1..999).contains(&known));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(message.contains("hint: upgrade Lab"), "{message}");
    // Refused, not rewritten.
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 999);
}

#[test]
fn projects_are_made_once_and_found_from_below() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Project::at(dir.path()),
        Err(Error::NotAProject {
            from_env: false,
            ..
        })
    ));
    let (p, created) = Project::create(dir.path()).unwrap();
    assert!(created);
    let (again, created) = Project::create(dir.path()).unwrap();
    assert!(!created);
    assert_eq!(p, again);
    assert_eq!(Project::at(dir.path()).unwrap(), p);
    assert!(p.store_dir().join("project.json").is_file());
    // Two claims in one time slot get different folders.
    let t = now_nanos();
    let (a, pa) = p.claim_run(t).unwrap();
    let (b, pb) = p.claim_run(t).unwrap();
    assert_ne!(a.short(), b.short());
    assert!(pa.dir.is_dir() && pb.dir.is_dir());
    assert_eq!(pa.dir, p.run_paths(&a.short()).dir);
    // A run folder without a journal yet is skipped quietly.
    let mut store = open(&p);
    assert!(store.refresh().unwrap().is_empty());
    assert!(store.runs(None).unwrap().is_empty());
}

fn close_run(w: Writer) {
    let mut w = w;
    w.rec(&Record::End {
        time_nanos: now_nanos(),
        status: Status::Finished,
        error: None,
    });
    w.w.close().unwrap();
}

#[test]
fn a_run_made_after_the_runs_folder_settled_is_still_found() {
    let (_dir, project) = new_project();
    close_run(begin(&project, "e", now_nanos()));
    // Age the runs folder, so refresh may remember it and skip the next scan.
    let runs = std::fs::File::open(project.runs_dir()).unwrap();
    runs.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10))
        .unwrap();
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(store.runs(None).unwrap().len(), 1);
    // Nothing changed: the next refresh has nothing to do and finds the same.
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(store.runs(None).unwrap().len(), 1);
    // A new run folder moves the folder's time on, and is folded in.
    let second = begin(&project, "e", now_nanos());
    let short = second.short();
    close_run(second);
    store.refresh().unwrap();
    let listed: Vec<String> = store
        .runs(None)
        .unwrap()
        .into_iter()
        .map(|r| r.short_id)
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&short));
}

#[test]
fn runs_whose_folder_is_gone_leave_the_index() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut shorts = Vec::new();
    for i in 0..3 {
        let mut w = begin(&project, "e", t0 + i * SECOND);
        w.param(&format!("only_{i}"), Value::Int(i));
        shorts.push(w.short());
        close_run(w);
    }
    // Age the runs folder, so refresh remembers it and skips the next scan.
    let runs = std::fs::File::open(project.runs_dir()).unwrap();
    runs.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10))
        .unwrap();
    let mut store = open(&project);
    store.refresh().unwrap();
    assert_eq!(store.runs(None).unwrap().len(), 3);
    let generation = store.generation().unwrap();
    store.refresh().unwrap();
    assert_eq!(store.generation().unwrap(), generation, "nothing changed");

    // One folder deleted by hand: its rows and the names only it had go.
    std::fs::remove_dir_all(project.run_paths(&shorts[1]).dir).unwrap();
    store.refresh().unwrap();
    let listed: Vec<String> = store
        .runs(None)
        .unwrap()
        .into_iter()
        .map(|r| r.short_id)
        .collect();
    assert_eq!(listed, [shorts[2].clone(), shorts[0].clone()]);
    assert!(store.generation().unwrap() > generation);
    let params = store.catalog().unwrap().params;
    assert!(params.contains("only_0") && !params.contains("only_1"));
    assert!(matches!(
        store.run(&shorts[1]),
        Err(Error::UnknownRun { .. })
    ));

    // The whole runs folder deleted: nothing is left to list, and a new run
    // makes the folder again and is listed alone.
    std::fs::remove_dir_all(project.runs_dir()).unwrap();
    store.refresh().unwrap();
    assert!(store.runs(None).unwrap().is_empty());
    assert!(store.catalog().unwrap().params.is_empty());
    let w = begin(&project, "e", now_nanos());
    let new = w.short();
    close_run(w);
    store.refresh().unwrap();
    let listed: Vec<String> = store
        .runs(None)
        .unwrap()
        .into_iter()
        .map(|r| r.short_id)
        .collect();
    assert_eq!(listed, [new]);
}

#[test]
fn select_filters_sorts_and_limits_with_the_query_language() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    for (i, acc) in [0.5, 0.9, 0.7].into_iter().enumerate() {
        let mut w = begin(&project, if i == 2 { "b" } else { "a" }, t0 + i as i64);
        w.param("depth", Value::Int(i as i64 + 1));
        w.rec(&Record::MetricKey {
            key: 0,
            name: "acc".into(),
        });
        w.rec(&Record::Metric {
            time_nanos: t0,
            point: MetricPoint {
                key: 0,
                step: 0,
                value: acc,
            },
        });
        close_run(w);
    }
    let mut store = open(&project);
    store.refresh().unwrap();
    let pick = |s: &Store, sel: lab_store::Selection| -> Vec<i64> {
        s.select(&sel)
            .unwrap()
            .iter()
            .map(|r| match r.params[0].1 {
                Value::Int(d) => d,
                _ => -1,
            })
            .collect()
    };
    let sel =
        |filter: Option<&str>, sort: &[&str], limit: Option<usize>, detail| lab_store::Selection {
            filter: filter.map(str::to_owned),
            sort: sort.iter().map(|s| (*s).to_owned()).collect(),
            limit,
            detail,
            ..Default::default()
        };
    for detail in [lab_store::Detail::Full, lab_store::Detail::Listing] {
        assert_eq!(
            pick(&store, sel(Some("acc > 0.6"), &["-acc"], None, detail)),
            [2, 3]
        );
        assert_eq!(pick(&store, sel(None, &["acc"], Some(2), detail)), [1, 3]);
        assert_eq!(
            pick(&store, sel(Some("experiment = 'a'"), &[], None, detail)),
            [2, 1]
        );
    }
    let listed = store
        .select(&sel(None, &["-acc"], Some(1), lab_store::Detail::Listing))
        .unwrap();
    assert_eq!(listed[0].metrics[0].last.to_bits(), 0.9_f64.to_bits());
    assert!(listed[0].models.is_empty() && listed[0].artifacts.is_empty());
    let err = store
        .select(&sel(Some("ac > 1"), &[], None, lab_store::Detail::Full))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no run has a metric, parameter, tag or run field named `ac`"),
        "{text}"
    );
    assert!(text.contains("did you mean `acc`?"), "{text}");
}

#[test]
fn a_long_value_is_stored_once_and_the_wal_is_given_back() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "big", now_nanos());
    let megabyte = |i: usize| Value::Str(format!("{i}").repeat(1 << 20));
    for i in 0..16 {
        w.param(&format!("doc{i}"), megabyte(i));
    }
    w.attr("dataset", megabyte(99));
    w.rec(&Record::Tag {
        time_nanos: now_nanos(),
        key: "note".into(),
        value: "n".repeat(1 << 20),
    });
    w.param("lr", Value::Float(0.1));
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    w.close();
    let journal = file_len(&project.run_paths(&short).journal);

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    drop(store);
    let index = file_len(&project.index_path());
    let wal = project.index_path().with_file_name("index.sqlite-wal");
    let wal = if wal.exists() { file_len(&wal) } else { 0 };
    // Each value once in the index, next to the journal: not three times.
    assert!(
        index < journal + journal / 4,
        "index {index} bytes for a {journal}-byte journal"
    );
    assert!(wal <= 4 << 20, "the WAL keeps {wal} bytes");

    // Listed and shown with every value intact.
    let store = open(&project);
    for run in [
        store.run(&short).unwrap(),
        store
            .select(&lab_store::Selection {
                detail: lab_store::Detail::Listing,
                ..Default::default()
            })
            .unwrap()
            .remove(0),
    ] {
        assert_eq!(run.params.len(), 17);
        assert_eq!(run.params[3], ("doc3".to_owned(), megabyte(3)));
        assert_eq!(run.params[16], ("lr".to_owned(), Value::Float(0.1)));
        assert_eq!(run.attr("dataset"), Some(&megabyte(99)));
        assert_eq!(run.tags[0].1.len(), 1 << 20);
    }
}

#[test]
fn a_damaged_index_is_read_around_and_rebuilt_by_reindex() {
    let (_dir, project) = new_project();
    build_mixed_project(&project);
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let before = store.runs(None).unwrap();
    drop(store);
    let index = project.index_path();
    let garbage = b"this used to be an index, until a disk ate it".repeat(100);
    std::fs::write(&index, &garbage).unwrap();
    for side in ["index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(index.with_file_name(side));
    }

    // Reading goes on, from the journals, in memory.
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    assert!(
        store.in_memory().unwrap().contains("the index is damaged"),
        "{:?}",
        store.in_memory()
    );
    let read = store.runs(None).unwrap();
    assert_eq!(read.len(), before.len());
    for (a, b) in read.iter().zip(&before) {
        assert_same_run(a, b);
    }
    assert_eq!(std::fs::read(&index).unwrap(), garbage, "left as it was");
    drop(store);

    // `lab reindex` moves it aside and builds a new one.
    let (mut store, moved) = Store::open_to_rebuild(project.clone()).unwrap();
    let moved = moved.expect("the damaged index was moved aside");
    assert_eq!(moved, index.with_file_name("index.sqlite.damaged.1"));
    assert_eq!(std::fs::read(&moved).unwrap(), garbage);
    assert!(store.reindex().unwrap().is_empty());
    assert!(store.in_memory().is_none());
    let rebuilt = store.runs(None).unwrap();
    assert_eq!(rebuilt.len(), before.len());
    assert_index_sound(&project);
}

#[test]
fn a_damaged_page_found_only_when_read_is_read_around_and_rebuilt_by_reindex() {
    // SQLite opens an index whose pages past the first are damaged, and
    // finds out only when a query reaches one: a lost write, a bad sector.
    let (_dir, project) = new_project();
    build_mixed_project(&project);
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let before = store.runs(None).unwrap();
    drop(store);
    let index = project.index_path();
    {
        let conn = rusqlite::Connection::open(&index).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let sound = std::fs::read(&index).unwrap();
    let pages = sound.len() / 4096;
    assert!(pages > 10, "{pages} pages");
    let listing = lab_store::Selection {
        detail: lab_store::Detail::Listing,
        ..Default::default()
    };
    for page in 1..pages {
        let mut bytes = sound.clone();
        bytes[page * 4096..(page + 1) * 4096].fill(0);
        std::fs::write(&index, &bytes).unwrap();
        for side in ["index.sqlite-wal", "index.sqlite-shm"] {
            let _ = std::fs::remove_file(index.with_file_name(side));
        }
        let mut store = open(&project);
        store
            .refresh()
            .unwrap_or_else(|e| panic!("page {page}: refresh: {e}"));
        let read = store
            .runs(None)
            .unwrap_or_else(|e| panic!("page {page}: runs: {e}"));
        assert_same_runs(&read, &before);
        let listed = store
            .select(&listing)
            .unwrap_or_else(|e| panic!("page {page}: select: {e}"));
        assert_eq!(listed.len(), before.len(), "page {page}");
        drop(store);

        let (mut store, _) = Store::open_to_rebuild(project.clone())
            .unwrap_or_else(|e| panic!("page {page}: opening to rebuild: {e}"));
        store
            .reindex()
            .unwrap_or_else(|e| panic!("page {page}: reindex: {e}"));
        assert!(store.in_memory().is_none(), "page {page}");
        assert_same_runs(&store.runs(None).unwrap(), &before);
        drop(store);
        assert_index_sound(&project);
        for entry in std::fs::read_dir(project.store_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains(".damaged.") {
                std::fs::remove_file(path).unwrap();
            }
        }
    }

    // A flipped bit SQLite cannot see, in a status: no status Lab writes.
    rusqlite::Connection::open(&index)
        .unwrap()
        .execute(
            "UPDATE runs SET status = 'finishec' WHERE short_id = ?1",
            [&before[0].short_id],
        )
        .unwrap();
    let mut store = open(&project);
    store.refresh().unwrap();
    assert_same_runs(&store.runs(None).unwrap(), &before);
    assert!(store.in_memory().is_some());
}

/// A tmpfs of a fixed size, mounted for one test and removed after it.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the tests run as root)"
        );
        Self { dir }
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Fills what is left of the disk with one file; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![1u8; 16 << 10];
        while f.write_all(&block).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_run_folded_by_itself_on_a_full_disk_is_folded_in_memory() {
    // What a run's own finisher does when it ends on a full disk.
    let disk = SmallDisk::new(64 << 20);
    let (project, _) = Project::create(&disk.dir.path().join("p")).unwrap();
    let t0 = now_nanos();
    let mut first = begin(&project, "disk", t0);
    first.end(t0 + 1, Status::Finished, None);
    first.close();
    assert!(open(&project).refresh().unwrap().is_empty());
    let mut second = begin(&project, "disk", t0 + SECOND);
    second.param("doc", Value::Str("d".repeat(2 << 20)));
    second.end(t0 + SECOND + 1, Status::Finished, None);
    let short = second.short();
    second.close();
    let mut store = open(&project);
    disk.fill();

    assert!(store.fold_run(&short).unwrap().is_empty());
    assert!(store.in_memory().is_some(), "the full disk was noticed");
    assert_eq!(store.run(&short).unwrap().status, Status::Finished);
    assert_eq!(store.runs(None).unwrap().len(), 2);
}

#[test]
fn reads_work_on_a_full_disk_and_on_a_read_only_project() {
    let disk = SmallDisk::new(64 << 20);
    let (project, _) = Project::create(&disk.dir.path().join("p")).unwrap();
    let t0 = now_nanos();
    let mut first = begin(&project, "disk", t0);
    first.param("seed", Value::Int(1));
    first.end(t0 + 1, Status::Finished, None);
    first.close();
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    drop(store);
    // A second run is written, then the disk fills before anyone indexes it.
    let mut second = begin(&project, "disk", t0 + SECOND);
    second.param("seed", Value::Int(2));
    second.param("doc", Value::Str("d".repeat(2 << 20)));
    second.end(t0 + SECOND + 1, Status::Finished, None);
    let short = second.short();
    second.close();
    let filler = disk.fill();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    assert!(store.in_memory().is_some(), "the full disk was noticed");
    let runs = store.runs(None).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].short_id, short);
    assert_eq!(runs[0].params[0], ("seed".to_owned(), Value::Int(2)));
    drop(store);

    // Read-only (a mounted snapshot, a shared read-only folder).
    std::fs::remove_file(&filler).unwrap();
    disk.remount("ro");
    let mut store = open(&project);
    let issues = store.refresh().unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(store.runs(None).unwrap().len(), 2);
    assert!(store.in_memory().is_some());
    drop(store);

    // With room again, the index catches up on disk.
    disk.remount("rw");
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    assert!(store.in_memory().is_none());
    assert_eq!(store.runs(None).unwrap().len(), 2);
    drop(store);
    assert_index_sound(&project);
}

#[test]
fn a_damaged_or_newer_marker_is_refused_by_every_way_in() {
    let (dir, project) = new_project();
    let marker = project.store_dir().join("project.json");
    let below = dir.path().join("a").join("b");
    std::fs::create_dir_all(&below).unwrap();
    let cases: &[(&[u8], &str)] = &[
        (b"", "not JSON: it is empty"),
        (b"  \n", "not JSON: it is empty"),
        (b"\x00\xffgarbage", "not JSON"),
        (b"{\"format\": 1", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b"{}", "`format`"),
        (b"{\"format\": \"1\"}", "`format`"),
        (b"{\"format\": 0}", "`format`"),
        (b"{\"format\": -1}", "`format`"),
        (b"{\"format\": 1.5}", "`format`"),
    ];
    for (body, problem) in cases {
        std::fs::write(&marker, body).unwrap();
        let shown = String::from_utf8_lossy(body);
        for result in [
            Project::at(dir.path()),
            Project::discover(&below),
            Project::create(dir.path()).map(|(p, _)| p),
        ] {
            let e = result.unwrap_err();
            let message = e.to_string();
            assert!(matches!(e, Error::BadMarker { .. }), "{shown:?}: {e:?}");
            assert!(message.contains(problem), "{shown:?}: {message}");
            assert!(message.contains(&marker.display().to_string()), "{message}");
        }
        // Refused, not rewritten.
        assert_eq!(std::fs::read(&marker).unwrap(), *body);
    }
    std::fs::write(&marker, vec![b' '; 1 << 20]).unwrap();
    assert!(matches!(
        Project::at(dir.path()),
        Err(Error::BadMarker { .. })
    ));

    std::fs::write(&marker, b"{\"format\": 2}").unwrap();
    let e = Project::discover(&below).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NewerProject {
                found: 2,
                known: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("hint: upgrade Lab"), "{e}");

    std::fs::write(&marker, b"{\"format\": 1, \"note\": \"by hand\"}").unwrap();
    assert_eq!(Project::at(dir.path()).unwrap(), project);
    assert_eq!(Project::discover(&below).unwrap(), project);
}

#[test]
fn a_short_id_is_never_given_twice_even_after_its_folder_is_deleted_by_hand() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut w = begin(&project, "first", t0);
    w.end(t0 + 1, Status::Finished, None);
    let first = w.short();
    let first_dir = w.paths.dir.clone();
    w.close();
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    // The folder goes by hand, and a run starts in the same time slot before
    // any reader looked: it must not take the old run's name, under which
    // the index still holds the old run.
    std::fs::remove_dir_all(&first_dir).unwrap();
    let mut again = begin(&project, "second", t0);
    again.end(t0 + 2, Status::Finished, None);
    let second = again.short();
    again.close();
    assert_ne!(second, first);
    assert!(second > first, "{second} after {first}");
    assert!(store.refresh().unwrap().is_empty());
    let runs = store.runs(None).unwrap();
    assert_eq!(runs.len(), 1, "the old run is gone, the new one listed");
    assert_eq!(runs[0].short_id, second);
    assert_eq!(runs[0].experiment, "second");
}

#[test]
fn a_long_list_parameter_is_read_back_and_leaves_the_project_readable() {
    let param = |run: &lab_store::RunInfo, key: &str| {
        run.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let (_dir, project) = new_project();
    let long = Value::List((0..2000).map(Value::Int).collect());
    let mut w = begin(&project, "big", now_nanos());
    w.param("big", long.clone());
    w.param("lr", Value::Float(0.1));
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    w.close();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(param(&run, "big"), Some(long.clone()));
    let listed = store.select(&lab_store::Selection::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(param(&listed[0], "big"), Some(long.clone()));
    let count = |filter: &str| {
        store
            .select(&lab_store::Selection {
                filter: Some(filter.into()),
                ..Default::default()
            })
            .unwrap()
            .len()
    };
    // Not kept as text: text comparisons are false, but the run has it.
    assert_eq!(count("params.big != null"), 1);
    assert_eq!(count("params.big = null"), 0);
    assert_eq!(count("params.big ~ '1999'"), 0);
    assert_eq!(count("params.lr = 0.1"), 1);
}

fn console(stream: Stream, time_nanos: i64, texts: &[&str]) -> Record {
    Record::Console {
        stream,
        lines: texts
            .iter()
            .map(|t| ConsoleLine {
                time_nanos,
                text: (*t).to_owned(),
            })
            .collect(),
    }
}

#[test]
fn console_lines_are_read_from_the_journal_and_left_out_of_the_index() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut w = begin(&project, "printer", t0);
    w.attr(WRITER_ATTR, WriterIdentity::current().unwrap().to_value());
    w.rec(&console(Stream::Stdout, t0 + 1, &["epoch 1", "epoch 2"]));
    w.key(0, "loss");
    w.metric(0, 0, 1.0);
    w.rec(&console(
        Stream::Stderr,
        t0 + 2,
        &["warning: \u{1b}[33mslow\u{1b}[0m"],
    ));
    let short = w.short();

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let mut events = Vec::new();
    let first = store.read_console(&short, 0, |e| events.push(e)).unwrap();
    assert!(!first.done, "a live run can print more");
    assert_eq!(
        events,
        [
            ConsoleEvent::Line {
                stream: Stream::Stdout,
                time_nanos: t0 + 1,
                text: "epoch 1".into()
            },
            ConsoleEvent::Line {
                stream: Stream::Stdout,
                time_nanos: t0 + 1,
                text: "epoch 2".into()
            },
            ConsoleEvent::Line {
                stream: Stream::Stderr,
                time_nanos: t0 + 2,
                text: "warning: \u{1b}[33mslow\u{1b}[0m".into()
            },
        ]
    );
    // Reading on from where the last read stopped gives only what is new.
    w.rec(&Record::ConsoleCut {
        time_nanos: t0 + 3,
        lines: 10,
        bytes: 70,
    });
    w.rec(&console(Stream::Stdout, t0 + 4, &["done"]));
    w.end(t0 + 5, Status::Finished, None);
    let mut more = Vec::new();
    let second = store
        .read_console(&short, first.next, |e| more.push(e))
        .unwrap();
    assert_eq!(
        more,
        [
            ConsoleEvent::Cut {
                lines: 10,
                bytes: 70
            },
            ConsoleEvent::Line {
                stream: Stream::Stdout,
                time_nanos: t0 + 4,
                text: "done".into()
            },
            ConsoleEvent::Ended,
        ]
    );
    assert!(second.done, "the run ended");
    w.close();

    // The fold takes the journal whole; the index and the doctor find nothing wrong.
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Finished);
    assert_eq!(summary(&run, "loss").count, 1);
    assert!(
        store
            .examine()
            .unwrap()
            .iter()
            .all(lab_store::Health::is_sound)
    );
    assert_index_sound(&project);
}

#[test]
fn a_crashed_run_keeps_its_console_and_reading_it_is_done() {
    let (_dir, project) = new_project();
    let t0 = now_nanos();
    let mut w = begin(&project, "printer", t0);
    w.rec(&console(Stream::Stdout, t0 + 1, &["last words"]));
    let short = w.short();
    // The writer goes away without ending the run (its lock with it).
    drop(w);
    let store = open(&project);
    let mut events = Vec::new();
    let read = store.read_console(&short, 0, |e| events.push(e)).unwrap();
    assert!(
        read.done,
        "nobody can print into a journal whose writer is gone"
    );
    assert_eq!(
        events,
        [ConsoleEvent::Line {
            stream: Stream::Stdout,
            time_nanos: t0 + 1,
            text: "last words".into()
        }]
    );
}

/// Counts `sql`'s single number in the project's index.
fn index_count(project: &Project, sql: &str) -> i64 {
    rusqlite::Connection::open(project.index_path())
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn values_kept_once_read_back_exactly() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "once", now_nanos());
    w.attr("zeta", Value::Int(1));
    w.attr(WRITER_ATTR, WriterIdentity::current().unwrap().to_value());
    w.attr("alpha", Value::Str("a".into()));
    let neg_nan = f64::from_bits(f64::NAN.to_bits() | (1 << 63));
    let params = [
        ("int", Value::Int(8)),
        ("big", Value::Int(i64::MAX)),
        ("negative", Value::Int(-3)),
        ("float", Value::Float(0.1 + 0.2)),
        ("whole", Value::Float(2.0)),
        ("tiny", Value::Float(5e-324)),
        ("huge", Value::Float(1e300)),
        ("negative_zero", Value::Float(-0.0)),
        ("infinite", Value::Float(f64::NEG_INFINITY)),
        ("nan", Value::Float(neg_nan)),
        ("yes", Value::Bool(true)),
        ("no", Value::Bool(false)),
        ("none", Value::Null),
        ("number_text", Value::Str("10".into())),
        ("float_text", Value::Str("0.5".into())),
        ("bool_text", Value::Str("True".into())),
        ("list", Value::List(vec![Value::Int(1), Value::Float(2.5)])),
    ];
    for (key, value) in &params {
        w.param(key, value.clone());
    }
    w.key(0, "once");
    w.key(1, "falling");
    w.key(2, "rising");
    w.key(3, "ends_nan");
    w.key(4, "negative_zero");
    w.key(5, "all_nan");
    w.metrics(&[
        (0, 0, 0.25),
        (1, 0, 3.0),
        (2, 0, 1.0),
        (3, 0, 2.0),
        (4, 0, 1.0),
    ]);
    w.metric(5, 0, f64::NAN);
    let short = w.short();

    // Folded in two stretches: what the first keeps merges with the second.
    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    w.metrics(&[(1, 1, 2.0), (2, 1, 4.0), (3, 1, f64::NAN), (4, 1, -0.0)]);
    w.metric(1, 2, 1.0);
    w.metric(2, 2, 3.0);
    w.metric(5, 1, f64::NAN);
    w.end(now_nanos(), Status::Finished, None);
    w.close();
    assert!(store.refresh().unwrap().is_empty());

    let expected_metrics = [
        ("once", 0.25, Some(0.25), Some(0.25), 1),
        ("falling", 1.0, Some(1.0), Some(3.0), 3),
        ("rising", 3.0, Some(1.0), Some(4.0), 3),
        ("negative_zero", -0.0, Some(0.0), Some(1.0), 2),
    ];
    let listed = store
        .select(&lab_store::Selection::default())
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let shown = store.run(&short).unwrap();
    let attrs: Vec<&str> = shown.attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(attrs, ["alpha", WRITER_ATTR, "zeta"]);
    assert_eq!(shown.attrs[0].1, Value::Str("a".into()));
    for run in [shown, listed] {
        assert_eq!(run.params.len(), params.len());
        for ((key, value), (k, v)) in params.iter().zip(&run.params) {
            assert_eq!(key, k);
            match (value, v) {
                (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{key}"),
                _ => assert_eq!(value, v, "{key}"),
            }
        }
        for (name, last, min, max, count) in expected_metrics {
            let m = summary(&run, name);
            assert_eq!(m.last.to_bits(), f64::to_bits(last), "{name}");
            assert_eq!((m.min, m.max, m.count), (min, max, count), "{name}");
        }
        let ends_nan = summary(&run, "ends_nan");
        assert!(ends_nan.last.is_nan());
        assert_eq!((ends_nan.min, ends_nan.max), (Some(2.0), Some(2.0)));
        let all_nan = summary(&run, "all_nan");
        assert_eq!((all_nan.min, all_nan.max, all_nan.count), (None, None, 2));
    }

    // Each number once: kept as its text, a metric's extremes left out where
    // they are its last value, the writer's identity shared.
    assert_eq!(
        index_count(&project, "SELECT count(*) FROM params WHERE value IS NULL"),
        11
    );
    assert_eq!(
        index_count(
            &project,
            "SELECT count(*) FROM metrics WHERE min IS NULL AND last IS NOT NULL"
        ),
        3
    );
    assert_eq!(
        index_count(
            &project,
            "SELECT count(*) FROM metrics WHERE max IS NULL AND last IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        index_count(
            &project,
            "SELECT count(*) FROM attrs WHERE shared IS NOT NULL"
        ),
        1
    );
    // Attribute names numbered, each once.
    assert_eq!(
        index_count(
            &project,
            "SELECT count(*) FROM attrs WHERE typeof(key) = 'integer'"
        ),
        3
    );
    assert_eq!(index_count(&project, "SELECT count(*) FROM attr_keys"), 3);
}
