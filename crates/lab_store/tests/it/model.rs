//! A model-based test of the fold: random record sequences are written as a
//! journal, damaged at a random byte (cut there, or one bit flipped), folded,
//! and the run the index holds is compared with what an in-memory model says
//! must survive: every record whose frame the damage did not touch. Each
//! run's series file is written from the damaged journal and damaged in turn:
//! every metric read back is the journal's, point for point, and the
//! model's where the journal was left whole.

use std::collections::HashMap;

use lab_journal::JournalWriter;
use lab_store::{Project, RunInfo, Store};
use lab_types::{MetricPoint, Record, RunId, Status, Value};
use proptest::prelude::*;

/// One step of a run, as generated.
#[derive(Clone, Debug)]
enum Step {
    Param(u8, i64),
    Tag(u8, u8),
    /// A point of metric `n`, declared first if it is new.
    Point(u8, i64, f64),
    /// Points of several metrics in one record.
    Batch(Vec<(u8, f64)>),
}

#[derive(Clone, Debug)]
enum Damage {
    None,
    /// Cut the file at this fraction of its written length.
    Cut(f64),
    /// Flip this bit of the byte at this fraction of the written length.
    Flip(f64, u8),
}

#[derive(Clone, Debug)]
struct Case {
    steps: Vec<Step>,
    end: Option<Status>,
    close: bool,
    damage: Damage,
    /// What happens to the series file once written.
    series_damage: Damage,
}

fn case() -> impl Strategy<Value = Case> {
    let step = prop_oneof![
        (0u8..4, -5i64..5).prop_map(|(k, v)| Step::Param(k, v)),
        (0u8..3, 0u8..3).prop_map(|(k, v)| Step::Tag(k, v)),
        (0u8..4, 0i64..50, -10.0f64..10.0).prop_map(|(k, s, v)| Step::Point(k, s, v)),
        prop::collection::vec((0u8..4, -10.0f64..10.0), 1..4).prop_map(Step::Batch),
    ];
    (
        prop::collection::vec(step, 0..24),
        prop_oneof![
            Just(None),
            Just(Some(Status::Finished)),
            Just(Some(Status::Failed)),
            Just(Some(Status::Interrupted)),
        ],
        any::<bool>(),
        damage(),
        damage(),
    )
        .prop_map(|(steps, end, close, damage, series_damage)| Case {
            steps,
            end,
            // A writer that never ended the run may still have closed it (a
            // process that exits normally, say).
            close,
            damage,
            series_damage,
        })
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        (0.0f64..1.0).prop_map(Damage::Cut),
        (0.0f64..1.0, 0u8..8).prop_map(|(at, bit)| Damage::Flip(at, bit)),
    ]
}

/// A frame as written: where it is and what it holds.
struct Frame {
    start: u64,
    end: u64,
    record: Record,
}

/// Writes the case's journal into a new run folder; returns the run's id,
/// short id and frames, and the written length.
fn write(project: &Project, case: &Case, number: i64) -> (RunId, String, Vec<Frame>) {
    // Each case a time slot of its own (a quarter of a second).
    let (id, paths) = project.claim_run(1_000 + number * 250_000_000).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    let mut frames = Vec::new();
    let mut push = |w: &mut JournalWriter, record: Record| {
        let start = w.len();
        w.append(&record).unwrap();
        frames.push(Frame {
            start,
            end: w.len(),
            record,
        });
    };
    push(
        &mut w,
        Record::Start {
            run: id,
            time_nanos: 1_000,
            experiment: "model".into(),
        },
    );
    let mut declared: HashMap<u8, u32> = HashMap::new();
    let mut declare =
        |w: &mut JournalWriter, push: &mut dyn FnMut(&mut JournalWriter, Record), k: u8| -> u32 {
            let n = declared.len() as u32;
            *declared.entry(k).or_insert_with(|| {
                push(
                    w,
                    Record::MetricKey {
                        key: n,
                        name: format!("m{k}"),
                    },
                );
                n
            })
        };
    for (i, step) in case.steps.iter().enumerate() {
        let t = 2_000 + i as i64;
        match step {
            Step::Param(k, v) => push(
                &mut w,
                Record::Param {
                    time_nanos: t,
                    key: format!("p{k}"),
                    value: Value::Int(*v),
                },
            ),
            Step::Tag(k, v) => push(
                &mut w,
                Record::Tag {
                    time_nanos: t,
                    key: format!("t{k}"),
                    value: format!("v{v}"),
                },
            ),
            Step::Point(k, step, value) => {
                let key = declare(&mut w, &mut push, *k);
                push(
                    &mut w,
                    Record::Metric {
                        time_nanos: t,
                        point: MetricPoint {
                            key,
                            step: *step,
                            value: *value,
                        },
                    },
                );
            }
            Step::Batch(points) => {
                let mut batch = Vec::new();
                for (k, value) in points {
                    let key = declare(&mut w, &mut push, *k);
                    batch.push(MetricPoint {
                        key,
                        step: i as i64,
                        value: *value,
                    });
                }
                push(
                    &mut w,
                    Record::Metrics {
                        time_nanos: t,
                        points: batch,
                    },
                );
            }
        }
    }
    if let Some(status) = case.end {
        push(
            &mut w,
            Record::End {
                time_nanos: 9_000,
                status,
                error: None,
            },
        );
    }
    if case.close {
        let start = w.len();
        w.close().unwrap();
        let end = std::fs::metadata(&paths.journal).unwrap().len();
        frames.push(Frame {
            start,
            end,
            record: Record::Close { time_nanos: 0 },
        });
    } else {
        // The process dies: the lock goes, the reserved space stays.
        drop(w);
    }
    (id, id.short(), frames)
}

/// What the index must hold of a run whose surviving records are `kept`.
#[derive(Debug, PartialEq)]
struct Expected {
    id: String,
    experiment: String,
    status: Status,
    params: Vec<(String, Value)>,
    tags: Vec<(String, String)>,
    /// Per metric name: count, last, min, max.
    metrics: Vec<(String, i64, f64, f64, f64)>,
}

fn model(short: &str, kept: &[&Record], damaged: bool) -> Expected {
    let mut id = format!("{short}{}", "0".repeat(24));
    let mut experiment = "(unknown)".to_owned();
    let mut start = false;
    let mut params: Vec<(String, Value)> = Vec::new();
    let mut tags: HashMap<String, String> = HashMap::new();
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut metrics: Vec<(String, i64, f64, f64, f64)> = Vec::new();
    let mut end = None;
    let mut closed = false;
    let mut point = |names: &HashMap<u32, String>, p: &MetricPoint| {
        let Some(name) = names.get(&p.key) else {
            return;
        };
        match metrics.iter_mut().find(|m| &m.0 == name) {
            Some(m) => {
                m.1 += 1;
                m.2 = p.value;
                m.3 = m.3.min(p.value);
                m.4 = m.4.max(p.value);
            }
            None => metrics.push((name.clone(), 1, p.value, p.value, p.value)),
        }
    };
    for record in kept {
        match record {
            Record::Start {
                run, experiment: e, ..
            } => {
                id = run.to_string();
                experiment.clone_from(e);
                start = true;
            }
            Record::Param { key, value, .. } => match params.iter_mut().find(|p| &p.0 == key) {
                Some(p) => p.1 = value.clone(),
                None => params.push((key.clone(), value.clone())),
            },
            Record::Tag { key, value, .. } => {
                tags.insert(key.clone(), value.clone());
            }
            Record::MetricKey { key, name } => {
                names.insert(*key, name.clone());
            }
            Record::Metric { point: p, .. } => point(&names, p),
            Record::Metrics { points, .. } => {
                for p in points {
                    point(&names, p);
                }
            }
            Record::End { status, .. } => end = Some(*status),
            Record::Close { .. } => closed = true,
            _ => {}
        }
    }
    let status = end.unwrap_or(if damaged || closed || !start {
        Status::Damaged
    } else {
        Status::Crashed
    });
    let mut tags: Vec<(String, String)> = tags.into_iter().collect();
    tags.sort();
    Expected {
        id,
        experiment,
        status,
        params,
        tags,
        metrics,
    }
}

fn observed(run: &RunInfo) -> Expected {
    Expected {
        id: run.id.to_string(),
        experiment: run.experiment.clone(),
        status: run.status,
        params: run.params.clone(),
        tags: run.tags.clone(),
        metrics: run
            .metrics
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.count,
                    m.last,
                    m.min.unwrap_or(f64::NAN),
                    m.max.unwrap_or(f64::NAN),
                )
            })
            .collect(),
    }
}

fn check(store: &mut Store, case: &Case, n: i64) -> Result<(), TestCaseError> {
    let project = store.project().clone();
    let (_, short, frames) = write(&project, case, n);
    let journal = project.run_paths(&short).journal;
    let written = frames.last().map_or(16, |f| f.end);
    let mut bytes = std::fs::read(&journal).unwrap();
    // Which frames the damage touches, and whether a reader can tell.
    let (touched, detectable): (Vec<usize>, bool) = match case.damage {
        Damage::None => (Vec::new(), false),
        Damage::Cut(at) => {
            let cut = 16 + ((written - 16) as f64 * at) as u64;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&journal)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let lost: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].end > cut).collect();
            // A cut at a frame boundary leaves a journal that ends cleanly.
            let mid_frame = frames.iter().any(|f| f.start < cut && cut < f.end);
            (lost, mid_frame)
        }
        Damage::Flip(at, bit) => {
            let byte = 16 + ((written - 16) as f64 * at) as u64;
            let byte = byte.min(written - 1);
            bytes[byte as usize] ^= 1 << bit;
            std::fs::write(&journal, &bytes).unwrap();
            let hit: Vec<usize> = (0..frames.len())
                .filter(|&i| (frames[i].start..frames[i].end).contains(&byte))
                .collect();
            (hit, true)
        }
    };
    store.fold_run(&short).unwrap();
    let runs: Vec<RunInfo> = store.run(&short).into_iter().collect();
    let kept: Vec<&Record> = (0..frames.len())
        .filter(|i| !touched.contains(i))
        .map(|i| &frames[i].record)
        .collect();
    if kept.is_empty() && !detectable {
        // Cut right after the header: a journal no reader can tell from one
        // whose process died before it said anything, which is not a run.
        prop_assert_eq!(runs.len(), 0);
        return Ok(());
    }
    prop_assert_eq!(runs.len(), 1, "the run vanished");
    check_series(store, &runs[0], case, &kept)?;
    let got = observed(&runs[0]);
    let expected = model(&short, &kept, detectable);
    // A flipped bit in the length of the last frame can leave that frame
    // whole but for its length, which a reader then reads after all.
    if got != expected && matches!(case.damage, Damage::Flip(..)) {
        let all: Vec<&Record> = frames.iter().map(|f| &f.record).collect();
        let recovered = model(&short, &all, false);
        prop_assert_eq!(
            &got,
            &recovered,
            "neither lost nor recovered: {:?}",
            expected
        );
        return Ok(());
    }
    prop_assert_eq!(got, expected);
    Ok(())
}

/// Every point of each metric the model knows, by name, as `(step, time,
/// value bits)`.
fn model_points(kept: &[&Record]) -> HashMap<String, Vec<(i64, i64, u64)>> {
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut points: HashMap<String, Vec<(i64, i64, u64)>> = HashMap::new();
    let mut add = |names: &HashMap<u32, String>, t: i64, p: &MetricPoint| {
        if let Some(name) = names.get(&p.key) {
            points
                .entry(name.clone())
                .or_default()
                .push((p.step, t, p.value.to_bits()));
        }
    };
    for record in kept {
        match record {
            Record::MetricKey { key, name } => {
                names.insert(*key, name.clone());
            }
            Record::Metric { time_nanos, point } => add(&names, *time_nanos, point),
            Record::Metrics { time_nanos, points } => {
                for p in points {
                    add(&names, *time_nanos, p);
                }
            }
            _ => {}
        }
    }
    points
}

/// Writes the run's series file, damages it as the case says, and reads
/// every metric back: the journal's points, and the model's when the
/// journal is whole.
fn check_series(
    store: &Store,
    run: &RunInfo,
    case: &Case,
    kept: &[&Record],
) -> Result<(), TestCaseError> {
    let paths = store.project().run_paths(&run.short_id);
    let written = lab_store::series::write_at_least(&paths, 0).unwrap();
    if matches!(case.damage, Damage::None) {
        prop_assert!(
            matches!(written, lab_store::series::Written::File { .. }),
            "{:?}",
            written
        );
    }
    let file = lab_store::series::path(&paths);
    if let Ok(mut bytes) = std::fs::read(&file) {
        match case.series_damage {
            Damage::None => {}
            Damage::Cut(at) => bytes.truncate((bytes.len() as f64 * at) as usize),
            Damage::Flip(at, bit) => {
                let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                bytes[i] ^= 1 << bit;
            }
        }
        std::fs::write(&file, &bytes).unwrap();
    }
    let expected = model_points(kept);
    for k in 0..4 {
        let name = format!("m{k}");
        let read: Vec<(i64, i64, u64)> = store
            .metric_history(run, &name)
            .unwrap()
            .into_iter()
            .map(|(s, t, v)| (s, t, v.to_bits()))
            .collect();
        let mut journal = Vec::new();
        store
            .visit_metric_in_journal(run, &name, |s, t, v| journal.push((s, t, v.to_bits())))
            .unwrap();
        prop_assert_eq!(&read, &journal, "metric {}", name);
        if matches!(case.damage, Damage::None) {
            let want = expected.get(&name).cloned().unwrap_or_default();
            prop_assert_eq!(&read, &want, "metric {}", name);
        }
    }
    Ok(())
}

#[test]
fn a_fold_keeps_every_record_the_damage_did_not_touch() {
    // One project for every case, each case a run of its own; in memory
    // where the machine has a tmpfs, as closing a journal syncs it.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let (project, _) = Project::create(dir.path()).unwrap();
    let store = std::cell::RefCell::new(Store::open(project).unwrap());
    let n = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    let result = runner.run(&case(), |case| {
        n.set(n.get() + 1);
        check(&mut store.borrow_mut(), &case, n.get())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
