//! Store tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use lab_journal::{Damage, JournalWriter, WRITER_ATTR, WriterIdentity, read_journal};
use lab_store::{
    ArtifactInfo, Error, Issue, MetricSummary, ModelInfo, Project, RunInfo, RunPaths, Store,
};
use lab_types::{ErrorInfo, MetricPoint, Record, RunId, Status, Value, now_nanos};

const SECOND: i64 = 1_000_000_000;

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

fn damaged_copy(paths: &RunPaths) -> std::path::PathBuf {
    paths.dir.join("journal.lab.damaged")
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
    for bad in ["xyz", "", "   ", "0e5-1", &"0".repeat(33)] {
        match store.run(bad) {
            Err(Error::BadRunId { prefix }) => assert_eq!(prefix, bad),
            other => panic!("{bad:?}: expected BadRunId, got {:?}", other.map(|r| r.id)),
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
    // Reserved zeros are not damage: the journal is left as it was.
    assert!(file_len(&journal) > written);
    assert!(!damaged_copy(&project.run_paths(&short)).exists());
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

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty());
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Crashed);
    assert_eq!(run.params, [("seed".to_owned(), Value::Int(1))]);
    let loss = summary(&run, "loss");
    assert_eq!((loss.last, loss.count), (0.25, 2));
    assert!(index_row(&project, &short).1, "the run is complete");

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
    // Stray bytes after the zero length that ends the written data.
    let garbage = b"stray bytes";
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&paths.journal)
            .unwrap();
        f.seek(SeekFrom::Start(end + 100)).unwrap();
        f.write_all(garbage).unwrap();
    }
    let len = file_len(&paths.journal);

    let mut store = open(&project);
    assert!(store.refresh().unwrap().is_empty(), "the writer is alive");
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Running);
    assert_eq!(run.damage, None);
    assert_eq!(summary(&run, "loss").count, 1);
    assert_eq!(file_len(&paths.journal), len, "a live journal is not cut");
    assert!(!damaged_copy(&paths).exists());

    drop(w);
    let issues = store.refresh().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    let Issue::Damaged { run, damage } = &issues[0] else {
        panic!("expected Damaged, got {issues:?}")
    };
    assert_eq!(run, &short);
    assert_eq!(
        damage,
        &Damage {
            offset: end,
            dropped_bytes: 100 + garbage.len() as u64,
            reason: "a zero frame length with data after it".into(),
        }
    );
    let run = store.run(&short).unwrap();
    assert_eq!(run.status, Status::Crashed);
    assert_eq!(run.params, [("seed".to_owned(), Value::Int(5))]);
    assert_eq!(summary(&run, "loss").count, 1);
    assert_eq!(file_len(&paths.journal), end);
    let mut kept = vec![0u8; 100];
    kept.extend_from_slice(garbage);
    assert_eq!(std::fs::read(damaged_copy(&paths)).unwrap(), kept);
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
    assert_eq!(store.fold_run(&shorts[1]).unwrap(), None);
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
    assert_eq!(scan.damage, None);
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

/// Checks what a refresh makes of a journal damaged at `offset`.
fn check_damage_recovery(
    project: &Project,
    id: RunId,
    paths: &RunPaths,
    offset: u64,
    reason: &str,
) {
    let bytes = std::fs::read(&paths.journal).unwrap();
    let dropped = bytes[offset as usize..]
        .iter()
        .rposition(|b| *b != 0)
        .unwrap() as u64
        + 1;
    let tail = bytes[offset as usize..(offset + dropped) as usize].to_vec();

    let mut store = open(project);
    let issues = store.refresh().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    match &issues[0] {
        Issue::Damaged { run, damage } => {
            assert_eq!(run, &id.short());
            assert_eq!(
                damage,
                &Damage {
                    offset,
                    dropped_bytes: dropped,
                    reason: reason.into(),
                }
            );
        }
        other @ Issue::Unreadable { .. } => panic!("expected Damaged, got {other:?}"),
    }
    let message = issues[0].to_string();
    assert!(
        message.contains(&format!("damaged at byte {offset}")),
        "{message}"
    );

    // Everything before the damage, nothing after; the End record was lost.
    let run = store.run(&id.to_string()).unwrap();
    assert_eq!(run.status, Status::Crashed);
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
    assert_eq!(
        run.damage.as_deref(),
        Some(format!("{dropped} bytes dropped at offset {offset}: {reason}").as_str())
    );
    // The tail was moved aside and cut off.
    assert_eq!(file_len(&paths.journal), offset);
    assert_eq!(std::fs::read(damaged_copy(paths)).unwrap(), tail);
    let clean = read_journal(&paths.journal, 0, |_, _| {}).unwrap();
    assert_eq!((clean.end, clean.damage), (offset, None));
    assert_eq!(index_row(project, &id.short()), (offset as i64, true));

    // Nothing new the second time.
    assert!(store.refresh().unwrap().is_empty());
    assert_eq!(summary(&store.run(&id.short()).unwrap(), "loss").count, 5);

    // Rebuilt from the cut journal: the same records, and a note on the cut.
    assert!(store.reindex().unwrap().is_empty());
    let again = store.run(&id.short()).unwrap();
    assert_eq!(again.status, Status::Crashed);
    assert_eq!(again.metrics, run.metrics);
    let note = again.damage.expect("the cut is remembered");
    assert!(note.contains("journal.lab.damaged"), "{note}");
    assert_eq!(std::fs::read(damaged_copy(paths)).unwrap(), tail);
    assert_index_sound(project);
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
    check_damage_recovery(
        &project,
        id,
        &paths,
        offset,
        "the file ends inside a frame (a torn write)",
    );
}

#[test]
fn a_flipped_byte_keeps_the_records_before_the_bad_frame() {
    let (_dir, project) = new_project();
    let (id, paths, frames) = closed_run_with_ten_points(&project);
    let offset = sixth_metric(&frames);
    let mut bytes = std::fs::read(&paths.journal).unwrap();
    let at = offset as usize + 8 + 12;
    bytes[at] ^= 0x40;
    std::fs::write(&paths.journal, &bytes).unwrap();
    check_damage_recovery(&project, id, &paths, offset, "CRC mismatch");
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
    for _ in 0..2 {
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

        let listed: Vec<String> = store
            .runs(None)
            .unwrap()
            .into_iter()
            .map(|r| r.short_id)
            .collect();
        assert_eq!(listed, [good[1].clone(), good[0].clone()]);
    }
    assert!(matches!(
        store.run("deadbeef"),
        Err(Error::UnknownRun { .. })
    ));
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
