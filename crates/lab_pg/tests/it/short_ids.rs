//! Runs of two machines with the same short id (started in the same quarter
//! second): a team's index keeps both, keyed by their full ids, and a short
//! id that names both is ambiguous, as a prefix is locally.

use lab_journal::JournalWriter;
use lab_store::index::{FoldIndex as _, check_received, fold_received};
use lab_store::{Error, Selection};
use lab_types::{MetricPoint, Record, RunId, Status, Value};

use crate::{Cluster, connect};

/// A whole journal of run `run`: a parameter `machine`, `count` points of
/// metric `loss`, and an End record.
pub fn journal(run: RunId, machine: &str, count: i64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let mut w = JournalWriter::create(&path).unwrap();
    let t = 1_700_000_000_000_000_000;
    w.append(&Record::Start {
        run,
        time_nanos: t,
        experiment: "iris".into(),
    })
    .unwrap();
    w.append(&Record::Param {
        time_nanos: t,
        key: "machine".into(),
        value: Value::Str(machine.into()),
    })
    .unwrap();
    w.append(&Record::MetricKey {
        key: 0,
        name: "loss".into(),
    })
    .unwrap();
    for step in 0..count {
        w.append(&Record::Metric {
            time_nanos: t + step,
            point: MetricPoint {
                key: 0,
                step,
                value: 1.0 / (step + 1) as f64,
            },
        })
        .unwrap();
    }
    w.append_final(&Record::End {
        time_nanos: t + count,
        status: Status::Finished,
        error: None,
    })
    .unwrap();
    let len = usize::try_from(w.len()).unwrap();
    drop(w);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(len);
    bytes
}

/// Two ids with the same short id (the same time slot) and different rest.
pub fn twins() -> (RunId, RunId) {
    let a: RunId = "6a1b2c3d00000000000000000000aaaa".parse().unwrap();
    let b: RunId = "6a1b2c3d11111111111111111111bbbb".parse().unwrap();
    assert_eq!(a.short(), b.short());
    (a, b)
}

#[test]
fn two_runs_with_one_short_id_are_both_kept_and_the_short_id_is_ambiguous() {
    let cluster = Cluster::start();
    let (a, b) = twins();
    // Each machine's server connection folds its own run.
    let mut first = connect(&cluster, "team");
    let mut second = connect(&cluster, "team");
    let (ja, jb) = (journal(a, "ada", 5), journal(b, "bob", 7));
    // The first in two stretches, the second between them.
    let half = usize::try_from(check_received(&a, 0, &ja[..ja.len() / 2]).unwrap()).unwrap();
    fold_received(&mut first, &a, 0, &ja[..half], false, &mut |_| {
        Ok(Vec::new())
    })
    .unwrap();
    fold_received(&mut second, &b, 0, &jb, false, &mut |_| Ok(Vec::new())).unwrap();
    fold_received(&mut first, &a, half as u64, &ja[half..], false, &mut |_| {
        Ok(Vec::new())
    })
    .unwrap();
    // Folding again is a retry, not a conflict.
    fold_received(&mut first, &a, 0, &ja, false, &mut |_| Ok(Vec::new())).unwrap();

    let reader = connect(&cluster, "team");
    let runs = reader.select(&Selection::default()).unwrap();
    let mut ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, [a.to_string(), b.to_string()]);
    assert!(runs.iter().all(|r| r.short_id == a.short()));
    for (id, machine, count) in [(a, "ada", 5), (b, "bob", 7)] {
        let run = reader.run(&id.to_string()).unwrap();
        assert_eq!(run.id, id);
        assert_eq!(run.status, Status::Finished);
        assert_eq!(
            run.params,
            [("machine".to_owned(), Value::Str(machine.into()))]
        );
        assert_eq!(run.metric("loss").unwrap().last_step, count - 1);
        assert_eq!(
            reader.indexed_id(&id.to_string()).unwrap().unwrap().offset,
            if machine == "ada" { ja.len() } else { jb.len() } as u64
        );
    }
    // The short id, and any shorter prefix, names both: ambiguous.
    for prefix in [a.short(), a.short()[..5].to_owned()] {
        match reader.run(&prefix) {
            Err(Error::AmbiguousRun { candidates, .. }) => {
                assert_eq!(candidates, ids, "{prefix}");
            }
            other => panic!("`{prefix}` should be ambiguous: {other:?}"),
        }
    }
    // A longer prefix names one.
    assert_eq!(reader.run(&b.to_string()[..10]).unwrap().id, b);
}
