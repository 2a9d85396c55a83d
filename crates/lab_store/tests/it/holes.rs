//! A journal with holes: the pages of an ended run's points given back once
//! its series file is checked to hold them. Every reader, the fold and
//! `lab reindex` give back what the whole journal gave; damage costs what it
//! touches and is told.

use std::os::unix::fs::MetadataExt;

use lab_journal::JournalWriter;
use lab_store::series::{self, Compacted, Written};
use lab_store::{Project, RunPaths, Store};
use lab_types::{ConsoleLine, MetricPoint, Record, Status, Stream, Value};

fn project() -> (tempfile::TempDir, Project) {
    // Not /dev/shm: tmpfs may not punch holes, the file systems of projects do.
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    (dir, project)
}

/// An ended run of two metrics, `n` points each, with a parameter and
/// console lines among them (so the points come in several stretches).
fn run(project: &Project, n: i64) -> (RunPaths, String) {
    let (id, paths) = project.claim_run(lab_types::now_nanos()).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    w.append(&Record::Start {
        run: id,
        time_nanos: 1,
        experiment: "holes".into(),
    })
    .unwrap();
    for (key, name) in [(0, "loss"), (1, "acc")] {
        w.append(&Record::MetricKey {
            key,
            name: name.into(),
        })
        .unwrap();
    }
    for i in 0..n {
        let t = 1_764_547_200_000_000_000 + i * 1000;
        w.append_metric(
            t,
            &MetricPoint {
                key: 0,
                step: i,
                value: 1.0 / (1.0 + i as f64),
            },
        )
        .unwrap();
        w.append(&Record::Metrics {
            time_nanos: t + 1,
            points: vec![MetricPoint {
                key: 1,
                step: i,
                value: (i as f64).sin(),
            }],
        })
        .unwrap();
        if i % 20_000 == 0 {
            w.append(&Record::Console {
                stream: Stream::Stdout,
                lines: vec![ConsoleLine {
                    time_nanos: t,
                    text: format!("epoch {i}"),
                }],
            })
            .unwrap();
            w.append(&Record::Param {
                time_nanos: t,
                key: format!("p{i}"),
                value: Value::Int(i),
            })
            .unwrap();
        }
    }
    w.append(&Record::End {
        time_nanos: 2,
        status: Status::Finished,
        error: None,
    })
    .unwrap();
    w.close().unwrap();
    (paths, id.short())
}

type Points = Vec<(i64, i64, u64)>;

/// What every reader gives of the run: each metric's points, the values of
/// the whole series, the index's view of the run, and the console.
fn read(store: &Store, short: &str) -> (Vec<Points>, Vec<Points>, String, String) {
    let run = store.run(short).unwrap();
    let mut history = Vec::new();
    let mut journal = Vec::new();
    for name in ["loss", "acc"] {
        history.push(
            store
                .metric_history(&run, name)
                .unwrap()
                .into_iter()
                .map(|(s, t, v)| (s, t, v.to_bits()))
                .collect(),
        );
        let mut j = Vec::new();
        store
            .visit_metric_in_journal(&run, name, |s, t, v| j.push((s, t, v.to_bits())))
            .unwrap();
        journal.push(j);
    }
    let values = format!("{:?}", store.metric_series(&run).unwrap());
    let mut console = Vec::new();
    store
        .read_console(short, 0, |e| console.push(format!("{e:?}")))
        .unwrap();
    let console = console.join("\n");
    (history, journal, format!("{run:?} {values}"), console)
}

fn on_disk(paths: &RunPaths) -> u64 {
    std::fs::metadata(&paths.journal).unwrap().blocks() * 512
}

fn compacted(project: &Project, n: i64) -> (Store, RunPaths, String) {
    let mut store = Store::open(project.clone()).unwrap();
    let (paths, short) = run(project, n);
    store.fold_run(&short).unwrap();
    assert!(matches!(
        series::write(&paths).unwrap(),
        Written::File { .. }
    ));
    (store, paths, short)
}

#[test]
fn points_given_back_come_back_from_every_reader_and_a_rebuild() {
    let (_dir, project) = project();
    let (mut store, paths, short) = compacted(&project, 100_000);
    let truth = read(&store, &short);
    assert_eq!(truth.0[0].len(), 100_000);
    assert_eq!(truth.0, truth.1, "the series file and the journal agree");
    let len = std::fs::metadata(&paths.journal).unwrap().len();
    let before = on_disk(&paths);

    let Compacted::Punched { stretches, freed } = series::compact(&paths).unwrap() else {
        panic!("nothing given back");
    };
    assert_eq!(stretches, 5, "the points between the console lines");
    assert!(series::has_holes(&paths));
    assert_eq!(
        std::fs::metadata(&paths.journal).unwrap().len(),
        len,
        "same length"
    );
    let after = on_disk(&paths);
    assert!(
        after * 20 < before && freed > 0,
        "{before} bytes on disk before, {after} after"
    );
    assert_eq!(read(&store, &short), truth, "every reader, as before");

    // The index made again from the journal and the series file.
    store.reindex().unwrap();
    assert_eq!(read(&store, &short), truth, "after lab reindex");
    let health = store.examine().unwrap();
    assert!(health.iter().all(|h| h.damage.is_empty()), "{health:?}");

    // Every record but the points is read from the journal as before.
    let mut kinds = Vec::new();
    lab_journal::read_journal(&paths.journal, 0, |_, r| {
        if !matches!(r, Record::Metric { .. } | Record::Metrics { .. }) {
            kinds.push(format!("{r:?}"));
        }
    })
    .unwrap();
    // Start, two MetricKey, five Console and Param, End and Close.
    assert_eq!(kinds.len(), 1 + 2 + 5 * 2 + 2, "{kinds:?}");

    assert_eq!(series::compact(&paths).unwrap(), Compacted::Current);
    assert!(!series::compaction_due(&paths).unwrap());
    assert_eq!(
        series::write(&paths).unwrap(),
        Written::Current,
        "the series file is kept"
    );
}

#[test]
fn a_damaged_series_file_costs_the_points_of_its_damaged_block_and_is_told() {
    let (_dir, project) = project();
    let (mut store, paths, short) = compacted(&project, 60_000);
    let truth = read(&store, &short);
    series::compact(&paths).unwrap();
    let file = series::path(&paths);
    let good = std::fs::read(&file).unwrap();
    let sf = series::open(&paths).unwrap();
    let block = sf.metric("acc").unwrap().blocks[3];
    let lost = usize::from(block.summary.count);
    drop(sf);
    let mut bad = good.clone();
    bad[block.offset as usize + 50] ^= 4;
    std::fs::write(&file, &bad).unwrap();
    let (history, _, _, _) = read(&store, &short);
    assert_eq!(history[0], truth.0[0], "the other metric is whole");
    assert_eq!(history[1].len(), truth.0[1].len() - lost);
    let block_start = 3 * lab_store::series::BLOCK_POINTS;
    assert_eq!(history[1][..block_start], truth.0[1][..block_start]);
    assert_eq!(history[1][block_start..], truth.0[1][block_start + lost..]);
    store.reindex().unwrap();
    let health = store.examine().unwrap();
    let said: Vec<_> = health.iter().flat_map(|h| &h.damage).collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0]
            .reason
            .contains(&format!("{lost} points of metric `acc` are lost")),
        "{}",
        said[0].reason
    );
    // The file gone: the points outside the holes are what is left, and
    // the loss is told. Nothing writes the series file again from a journal
    // with holes.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        series::write(&paths).unwrap(),
        Written::Skipped("a journal whose points were given back")
    );
    assert!(!file.exists());
    let run = store.run(&short).unwrap();
    let left = store.metric_history(&run, "loss").unwrap();
    assert!(
        left.len() < 1_000,
        "{} points outside the holes",
        left.len()
    );
    let health = store.examine().unwrap();
    assert!(
        health[0].damage[0].reason.contains("which is missing"),
        "{health:?}"
    );
    std::fs::write(&file, &good).unwrap();
    assert_eq!(read(&store, &short).0, truth.0, "put back");
}

#[test]
fn a_journal_changed_at_its_end_or_a_damaged_list_keeps_its_points() {
    let (_dir, project) = project();
    let (store, paths, short) = compacted(&project, 60_000);
    let truth = read(&store, &short);
    series::compact(&paths).unwrap();

    // A record put back by `lab doctor --salvage` after the holes: the
    // series file no longer holds every point, the readers read both.
    lab_journal::append_to_settled(
        &paths.journal,
        &[Record::Metric {
            time_nanos: 3,
            point: MetricPoint {
                key: 0,
                step: 1_000_000,
                value: 9.0,
            },
        }],
    )
    .unwrap();
    assert!(series::open(&paths).is_none(), "not every point");
    let run = store.run(&short).unwrap();
    let history = store.metric_history(&run, "loss").unwrap();
    assert_eq!(history.len(), truth.0[0].len() + 1);
    assert_eq!(history.last(), Some(&(1_000_000, 3, 9.0)));
    assert!(matches!(
        series::compact(&paths).unwrap(),
        Compacted::Skipped(_)
    ));

    // A flipped bit in the list of holes, on a fresh project: the holes are
    // read as zeros, but the series file still holds every point.
    let (_dir, project) = self::project();
    let (store, paths, short) = compacted(&project, 60_000);
    series::compact(&paths).unwrap();
    let list = lab_journal::holes::holes_path(&paths.journal);
    let mut bytes = std::fs::read(&list).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&list, &bytes).unwrap();
    assert_eq!(read(&store, &short).0, truth.0);
    assert!(
        series::has_holes(&paths),
        "a damaged list is not lost holes"
    );
    assert!(!series::compaction_due(&paths).unwrap());
}

#[test]
fn a_journal_damaged_before_its_holes_are_made_is_kept_whole() {
    let (_dir, project) = project();
    let (_store, paths, _short) = compacted(&project, 60_000);
    // A byte flipped in the middle, after the series file was made (the
    // file's check of the journal covers only its end).
    let mut bytes = std::fs::read(&paths.journal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&paths.journal, &bytes).unwrap();
    assert_eq!(
        series::compact(&paths).unwrap(),
        Compacted::Skipped("a damaged journal")
    );
    assert!(!series::has_holes(&paths));
    assert_eq!(std::fs::read(&paths.journal).unwrap(), bytes);
}

#[test]
fn a_short_journal_or_one_being_read_keeps_its_pages() {
    let (_dir, project) = project();
    let (paths, _) = run(&project, 2_000);
    assert!(std::fs::metadata(&paths.journal).unwrap().len() < 256 * 1024);
    assert_eq!(
        series::compact(&paths).unwrap(),
        Compacted::Skipped("a short journal")
    );
    let (_dir, project) = self::project();
    let (_store, paths, short) = compacted(&project, 60_000);
    let before = on_disk(&paths);
    // A reader holds the journal while the holes are listed: the list
    // stands and the pages wait for the next try.
    let reader = std::fs::File::open(&paths.journal).unwrap();
    reader.lock_shared().unwrap();
    let s = Store::open(project.clone()).unwrap();
    assert_eq!(
        series::compact(&paths).unwrap(),
        Compacted::Skipped("a reader of the journal")
    );
    assert!(series::has_holes(&paths) && series::compaction_due(&paths).unwrap());
    assert_eq!(on_disk(&paths), before);
    let history = s.metric_history(&s.run(&short).unwrap(), "loss").unwrap();
    assert_eq!(history.len(), 60_000);
    drop(reader);
    assert!(matches!(
        series::compact(&paths).unwrap(),
        Compacted::Punched { .. }
    ));
    assert!(on_disk(&paths) * 10 < before);
    assert!(!series::compaction_due(&paths).unwrap());
}

#[test]
fn giving_back_stopped_at_any_step_loses_nothing() {
    let (_dir, project) = project();
    let (mut store, paths, short) = compacted(&project, 60_000);
    let truth = read(&store, &short);
    let whole = std::fs::read(&paths.journal).unwrap();
    assert!(matches!(
        series::compact(&paths).unwrap(),
        Compacted::Punched { stretches: 3, .. }
    ));
    let list = lab_journal::holes::holes_path(&paths.journal);
    let listed = lab_journal::holes::read_holes(&paths.journal, u64::MAX)
        .unwrap()
        .unwrap();
    // Each state a crash can leave: the list being written (a temporary
    // file beside a whole journal), then the list and the first `k`
    // stretches punched, for every `k`.
    for k in 0..=listed.stretches.len() + 1 {
        std::fs::write(&paths.journal, &whole).unwrap();
        if k == 0 {
            std::fs::remove_file(&list).unwrap();
            std::fs::write(
                list.with_file_name(".journal.lab.holes.999999-0.tmp"),
                &listed.encode()[..20],
            )
            .unwrap();
        } else {
            lab_journal::holes::write_holes(&paths.journal, &listed).unwrap();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&paths.journal)
                .unwrap();
            for &(start, end) in &listed.stretches[..k - 1] {
                let from = start.next_multiple_of(4096);
                // Never the journal's last 4 KiB, which tie the series file to it.
                let to = end.min(whole.len() as u64 - 4096) / 4096 * 4096;
                lab_journal::holes::punch(&file, from, to).unwrap();
            }
        }
        assert_eq!(read(&store, &short), truth, "stopped at step {k}");
        store.reindex().unwrap();
        assert_eq!(read(&store, &short), truth, "a rebuild after step {k}");
        assert!(
            store.examine().unwrap().iter().all(|h| h.damage.is_empty()),
            "step {k}"
        );
        // And the next try finishes the work.
        let done = series::compact(&paths).unwrap();
        assert!(
            matches!(done, Compacted::Punched { .. } | Compacted::Current),
            "step {k}: {done:?}"
        );
        assert!(!series::compaction_due(&paths).unwrap(), "step {k}");
        assert_eq!(read(&store, &short), truth, "finished after step {k}");
    }
}

#[test]
fn only_a_journal_the_index_holds_to_its_end_gives_its_pages_back() {
    let (_dir, project) = project();
    let mut store = Store::open(project.clone()).unwrap();
    let (paths, short) = run(&project, 60_000);
    assert!(matches!(
        series::write(&paths).unwrap(),
        Written::File { .. }
    ));
    assert_eq!(
        store.compact_run(&short).unwrap(),
        Compacted::Skipped("a journal not indexed to its end")
    );
    assert!(!series::has_holes(&paths));
    store.fold_run(&short).unwrap();
    let truth = read(&store, &short);
    assert!(matches!(
        store.compact_run(&short).unwrap(),
        Compacted::Punched { .. }
    ));
    // A reader that had read part of the journal before its points moved
    // is told to read again from the start.
    let len = std::fs::metadata(&paths.journal).unwrap().len();
    assert!(series::moved_after(&paths, len / 2));
    assert!(!series::moved_after(&paths, 16), "from the start is whole");
    assert!(!series::moved_after(&paths, len), "past the holes");
    assert_eq!(read(&store, &short), truth);
}

#[test]
fn a_journal_without_a_page_of_points_alone_is_looked_through_once() {
    let (_dir, project) = project();
    let mut store = Store::open(project.clone()).unwrap();
    let (id, paths) = project.claim_run(lab_types::now_nanos()).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    w.append(&Record::Start {
        run: id,
        time_nanos: 1,
        experiment: "holes".into(),
    })
    .unwrap();
    w.append(&Record::MetricKey {
        key: 0,
        name: "loss".into(),
    })
    .unwrap();
    // A console line after every point: no stretch of points spans a page.
    for i in 0..8_000i64 {
        w.append_metric(
            i,
            &MetricPoint {
                key: 0,
                step: i,
                value: 0.5,
            },
        )
        .unwrap();
        w.append(&Record::Console {
            stream: Stream::Stdout,
            lines: vec![ConsoleLine {
                time_nanos: i,
                text: format!("step {i}"),
            }],
        })
        .unwrap();
    }
    w.close().unwrap();
    let short = id.short();
    store.fold_run(&short).unwrap();
    assert!(matches!(
        series::write(&paths).unwrap(),
        Written::File { .. }
    ));
    let before = on_disk(&paths);
    assert_eq!(
        store.compact_run(&short).unwrap(),
        Compacted::Skipped("no stretch of points a page long")
    );
    assert!(series::has_holes(&paths), "an empty list says so");
    assert!(
        !series::compaction_due(&paths).unwrap(),
        "not looked through again"
    );
    assert_eq!(on_disk(&paths), before);
    let run = store.run(&short).unwrap();
    assert_eq!(store.metric_history(&run, "loss").unwrap().len(), 8_000);
    store.reindex().unwrap();
    assert_eq!(store.run(&short).unwrap().metrics[0].count, 8_000);
}
