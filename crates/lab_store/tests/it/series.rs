//! The series file: written from a journal, read back point for point as the
//! journal reads, and never used when it does not match the journal or is
//! damaged.

use lab_journal::JournalWriter;
use lab_store::series::{self, Written};
use lab_store::{Project, RunPaths, Store};
use lab_types::{MetricPoint, Record, RunId};
use proptest::prelude::*;

/// A journal of `metrics` metrics whose points are `points`
/// (`(metric, step, time_nanos, value bits, batched with the one before)`),
/// closed; returns the run's paths and short id.
fn journal(
    project: &Project,
    metrics: u32,
    points: &[(u32, i64, i64, u64, bool)],
) -> (RunPaths, String) {
    let (id, paths) = project.claim_run(lab_types::now_nanos()).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    w.append(&Record::Start {
        run: id,
        time_nanos: 1,
        experiment: "series".into(),
    })
    .unwrap();
    for k in 0..metrics {
        w.append(&Record::MetricKey {
            key: k,
            name: format!("m{k}"),
        })
        .unwrap();
    }
    let mut i = 0;
    while i < points.len() {
        let (key, step, time, bits, _) = points[i];
        let mut batch = vec![MetricPoint {
            key,
            step,
            value: f64::from_bits(bits),
        }];
        while i + 1 < points.len() && points[i + 1].4 {
            i += 1;
            let (key, step, _, bits, _) = points[i];
            batch.push(MetricPoint {
                key,
                step,
                value: f64::from_bits(bits),
            });
        }
        if batch.len() == 1 {
            w.append_metric(time, &batch[0]).unwrap();
        } else {
            w.append(&Record::Metrics {
                time_nanos: time,
                points: batch,
            })
            .unwrap();
        }
        i += 1;
    }
    w.append(&Record::End {
        time_nanos: 2,
        status: lab_types::Status::Finished,
        error: None,
    })
    .unwrap();
    w.close().unwrap();
    let short = id.short();
    (paths, short)
}

type Points = Vec<(i64, i64, u64)>;

/// A point as logged: `(metric, step, time_nanos, value bits, batched with
/// the one before)`.
type Logged = (u32, i64, i64, u64, bool);

/// Every metric's points as the journal gives them, and as the store's
/// readers do; each as `(step, time, value bits)`.
fn both(store: &Store, short: &str, metrics: u32) -> (Vec<Points>, Vec<Points>) {
    let run = store.run(short).unwrap();
    let mut journal = Vec::new();
    let mut read = Vec::new();
    for k in 0..metrics {
        let name = format!("m{k}");
        let mut j = Vec::new();
        store
            .visit_metric_in_journal(&run, &name, |s, t, v| j.push((s, t, v.to_bits())))
            .unwrap();
        journal.push(j);
        let r: Points = store
            .metric_history(&run, &name)
            .unwrap()
            .into_iter()
            .map(|(s, t, v)| (s, t, v.to_bits()))
            .collect();
        read.push(r);
    }
    let bits = |series: Vec<(String, Vec<f64>)>| -> Vec<(String, Vec<u64>)> {
        series
            .into_iter()
            .map(|(n, v)| (n, v.into_iter().map(f64::to_bits).collect()))
            .collect()
    };
    assert_eq!(
        bits(store.metric_series(&run).unwrap()),
        bits(store.metric_series_in_journal(&run).unwrap()),
        "the values of every metric"
    );
    (journal, read)
}

fn value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(f64::NAN.to_bits()),
        Just(0x7ff8_0000_dead_beef),
        Just(0xfff4_0000_0000_0001),
        Just((-0.0f64).to_bits()),
        Just(0),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        (-1e6f64..1e6).prop_map(f64::to_bits),
        (0i32..100).prop_map(|i| f64::from(i).to_bits()),
    ]
}

fn points() -> impl Strategy<Value = (u32, Vec<Logged>)> {
    (1u32..4).prop_flat_map(|metrics| {
        let step = prop_oneof![any::<i64>(), -3i64..3, Just(i64::MIN), Just(i64::MAX)];
        let time = prop_oneof![any::<i64>(), 0i64..3, Just(i64::MAX)];
        let one = (0..metrics, step, time, value_bits(), any::<bool>());
        // Runs of regular points (step i, time growing by about a
        // microsecond) among the random ones, long enough to fill blocks.
        let regular =
            (0..metrics, 0usize..9000, any::<i64>(), value_bits()).prop_map(|(k, n, t0, bits)| {
                (0..n)
                    .map(|i| {
                        (
                            k,
                            i as i64,
                            t0.wrapping_add(i as i64 * 1000 + (i as i64 * 7919) % 13),
                            bits ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20,
                            false,
                        )
                    })
                    .collect::<Vec<_>>()
            });
        let chunk = prop_oneof![3 => one.prop_map(|p| vec![p]), 1 => regular];
        (Just(metrics), prop::collection::vec(chunk, 1..6))
            .prop_map(|(m, chunks)| (m, chunks.into_iter().flatten().collect()))
    })
}

fn project() -> (tempfile::TempDir, Project) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let (project, _) = Project::create(dir.path()).unwrap();
    (dir, project)
}

#[test]
fn every_series_comes_back_point_for_point() {
    let (_dir, project) = project();
    let store = std::cell::RefCell::new(Store::open(project.clone()).unwrap());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let result = runner.run(&points(), |(metrics, points)| {
        let (paths, short) = journal(&project, metrics, &points);
        store.borrow_mut().fold_run(&short).unwrap();
        let written = series::write_at_least(&paths, 0).unwrap();
        prop_assert!(
            matches!(written, Written::File { points: p, .. } if p == points.len() as u64),
            "{:?}",
            written
        );
        prop_assert!(
            series::open(&paths).is_some(),
            "the file matches its journal"
        );
        let (journal, read) = both(&store.borrow(), &short, metrics);
        prop_assert_eq!(journal, read);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn one_point_and_no_point() {
    let (_dir, project) = project();
    let mut store = Store::open(project.clone()).unwrap();
    let (paths, short) = journal(&project, 2, &[(1, -7, 5, (-0.0f64).to_bits(), false)]);
    store.fold_run(&short).unwrap();
    assert!(matches!(
        series::write_at_least(&paths, 0).unwrap(),
        Written::File { points: 1, .. }
    ));
    let (journal, read) = both(&store, &short, 2);
    assert_eq!(journal, read);
    assert_eq!(read[1], vec![(-7, 5, (-0.0f64).to_bits())]);
    assert!(read[0].is_empty());
    assert_eq!(
        series::write_at_least(&paths, 0).unwrap(),
        Written::Current,
        "a file that matches is kept"
    );
}

/// A run of two metrics, a million points each, logged in turns.
fn big(project: &Project) -> (RunPaths, String, Vec<Logged>) {
    let n = 1_000_000;
    let mut points = Vec::with_capacity(2 * n);
    let t0 = 1_764_547_200_000_000_000i64;
    for i in 0..n as i64 {
        let v = 1.0 / (1.0 + i as f64 * 1e-4) + 0.01 * (i as f64).sin();
        let t = t0 + i * 210 + (i * 7919) % 97;
        points.push((0, i, t, v.to_bits(), false));
        points.push((1, i / 10, t + 40, (i as f64 / 3.0).to_bits(), false));
    }
    let (paths, short) = journal(project, 2, &points);
    (paths, short, points)
}

#[test]
fn millions_of_points_come_back_in_under_ten_bytes_each() {
    let (_dir, project) = project();
    let mut store = Store::open(project.clone()).unwrap();
    let (paths, short, points) = big(&project);
    store.fold_run(&short).unwrap();
    let Written::File { bytes, points: n } = series::write(&paths).unwrap() else {
        panic!("no series file written");
    };
    assert_eq!(n, points.len() as u64);
    let per_point = bytes as f64 / n as f64;
    assert!(per_point < 10.0, "{per_point} bytes per point");
    let (journal, read) = both(&store, &short, 2);
    assert_eq!(journal[0].len(), 1_000_000);
    assert!(journal == read, "the readers differ from the journal's");
}

#[test]
fn a_damaged_or_stale_file_is_not_used() {
    let (_dir, project) = project();
    let mut store = Store::open(project.clone()).unwrap();
    let points: Vec<_> = (0..20_000i64)
        .map(|i| {
            (
                (i % 2) as u32,
                i,
                i * 1000,
                (i as f64).sqrt().to_bits(),
                false,
            )
        })
        .collect();
    let (paths, short) = journal(&project, 2, &points);
    store.fold_run(&short).unwrap();
    series::write_at_least(&paths, 0).unwrap();
    let file = series::path(&paths);
    let good = std::fs::read(&file).unwrap();
    let (truth, _) = both(&store, &short, 2);
    // Damage anywhere: a flipped bit at many places, the file cut short.
    let step = (good.len() / 97).max(1);
    for at in (0..good.len()).step_by(step).chain([good.len() - 1]) {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&file, &bad).unwrap();
        let (_, read) = both(&store, &short, 2);
        assert_eq!(read, truth, "flip at {at}");
        std::fs::write(&file, &good[..at]).unwrap();
        assert!(series::open(&paths).is_none(), "cut at {at}");
        let (_, read) = both(&store, &short, 2);
        assert_eq!(read, truth, "cut at {at}");
    }
    // A block damaged: caught by its checksum, though the index is good.
    std::fs::write(&file, &good).unwrap();
    let sf = series::open(&paths).unwrap();
    let block = sf.metric("m1").unwrap().blocks[2];
    let mut bad = good.clone();
    bad[block.offset as usize + 100] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    assert!(series::open(&paths).is_some(), "the index is intact");
    let (_, read) = both(&store, &short, 2);
    assert_eq!(read, truth);
    // The journal grown after the file was made: the file is stale.
    std::fs::write(&file, &good).unwrap();
    lab_journal::append_to_settled(
        &paths.journal,
        &[Record::Metric {
            time_nanos: 3,
            point: MetricPoint {
                key: 0,
                step: 99,
                value: 9.0,
            },
        }],
    )
    .unwrap();
    assert!(series::open(&paths).is_none(), "a stale file");
    let run = store.run(&short).unwrap();
    let history = store.metric_history(&run, "m0").unwrap();
    assert_eq!(
        history.last(),
        Some(&(99, 3, 9.0)),
        "the journal's new point"
    );
    assert_eq!(history.len(), truth[0].len() + 1);
}

#[test]
fn a_live_short_or_irregular_journal_gets_no_file() {
    let (_dir, project) = project();
    let (paths, _) = journal(&project, 1, &[(0, 1, 1, 0, false)]);
    assert_eq!(
        series::write(&paths).unwrap(),
        Written::Skipped("a short journal")
    );
    // A metric name declared twice: the file would not say which points
    // the journal's readers take.
    let (id, paths) = project.claim_run(lab_types::now_nanos()).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    let id: RunId = id;
    w.append(&Record::Start {
        run: id,
        time_nanos: 1,
        experiment: "series".into(),
    })
    .unwrap();
    for key in [0, 1] {
        w.append(&Record::MetricKey {
            key,
            name: "loss".into(),
        })
        .unwrap();
    }
    assert_eq!(
        series::write_at_least(&paths, 0).unwrap(),
        Written::Skipped("a run still logging")
    );
    w.close().unwrap();
    assert_eq!(
        series::write_at_least(&paths, 0).unwrap(),
        Written::Skipped("metrics declared twice")
    );
    assert!(!series::path(&paths).exists());
}
