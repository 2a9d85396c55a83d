//! A rebuild (`lab reindex`) reads the journals on several threads and
//! writes them in batches: the index it makes must be the one folding each
//! run by itself makes, whatever the runs hold.

use lab_store::{Edit, Project, Store};
use lab_types::{MediaKind, Record, Status, Value, now_nanos};

use super::{SECOND, begin, build_mixed_project, closed_run_with_ten_points, open, write_full_run};

/// Every row of every table of the index but `meta` (whose generation
/// counts the transactions), each table's rows sorted.
fn dump(project: &Project) -> Vec<(String, Vec<String>)> {
    let conn = rusqlite::Connection::open(project.index_path()).unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'meta' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
            let columns = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok((0..columns)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join(" | "))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.sort();
            (t, rows)
        })
        .collect()
}

fn remove_index(project: &Project) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = project.index_path().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn short_ids(project: &Project) -> Vec<String> {
    let mut shorts: Vec<String> = std::fs::read_dir(project.runs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 8)
        .collect();
    shorts.sort();
    shorts
}

fn media(key: &str, step: i64) -> Record {
    Record::Media {
        time_nanos: now_nanos(),
        key: key.into(),
        step,
        kind: MediaKind::Image,
        path: format!("media/{key}/{step}.png"),
        width: 4,
        height: 2,
        bytes: 104,
    }
}

#[test]
fn a_rebuild_makes_the_index_that_folding_each_run_by_itself_makes() {
    let (_dir, project) = super::new_project();
    let t0 = now_nanos() - 3600 * SECOND;
    // Finished, failed, crashed and interrupted runs.
    build_mixed_project(&project);
    // Enough plain runs for several chunks of reads and batches of writes.
    for i in 0..700 {
        let mut w = begin(
            &project,
            if i % 3 == 0 { "a" } else { "b" },
            t0 + i * SECOND,
        );
        w.param("seed", Value::Int(i));
        w.param("lr", Value::Float(0.5 / (1.0 + i as f64)));
        w.key(0, "loss");
        w.key(1, &format!("only{}", i % 7));
        w.metrics(&[(0, 0, 1.0), (1, 0, i as f64)]);
        w.metric(0, 1, 0.5);
        w.tag("batch", &format!("{}", i % 5));
        w.end(t0 + i * SECOND + 1, Status::Finished, None);
        w.close();
    }
    for i in 0..3 {
        write_full_run(&project, "full", t0 - (i + 1) * SECOND).close();
    }
    // Media.
    let mut w = begin(&project, "media", t0 - 10 * SECOND);
    w.rec(&media("samples", 0));
    w.rec(&media("samples", 1));
    w.rec(&media("samples", 0));
    w.end(t0, Status::Finished, None);
    w.close();
    // Damage: a flipped byte inside, a torn tail, a lost Start record, a
    // journal with nothing readable.
    let (_, flipped, frames) = closed_run_with_ten_points(&project);
    let mut bytes = std::fs::read(&flipped.journal).unwrap();
    bytes[frames[4].0 as usize + 10] ^= 0x40;
    std::fs::write(&flipped.journal, &bytes).unwrap();
    let (_, torn, _) = closed_run_with_ten_points(&project);
    let mut bytes = std::fs::read(&torn.journal).unwrap();
    bytes.extend_from_slice(&[0x55; 37]);
    std::fs::write(&torn.journal, &bytes).unwrap();
    let (_, lost, frames) = closed_run_with_ten_points(&project);
    let mut bytes = std::fs::read(&lost.journal).unwrap();
    bytes[frames[0].0 as usize + 8 + 3] ^= 0x01;
    std::fs::write(&lost.journal, &bytes).unwrap();
    let (_, unreadable, _) = closed_run_with_ten_points(&project);
    std::fs::write(&unreadable.journal, b"not a journal at all").unwrap();
    // A live run, its writer holding the journal's lock throughout.
    let mut live = begin(&project, "live", t0 + 9000 * SECOND);
    live.param("lr", Value::Float(0.3));
    live.key(0, "loss");
    live.metric(0, 0, 2.0);

    // Edits and groups, in each run's meta journal.
    let mut store = open(&project);
    store.refresh().unwrap();
    let shorts = short_ids(&project);
    for (i, short) in shorts.iter().enumerate().step_by(50) {
        store
            .edit(
                short,
                &Edit {
                    name: Some(format!("edited-{i}")),
                    tags: vec![("owner".into(), "ana".into())],
                    untag: vec!["batch".into()],
                    note: Some(format!("note {i}")),
                    group: Some(Some(format!("group-{}", i % 3))),
                },
            )
            .unwrap();
    }
    drop(store);

    // Each run folded by itself into a new index, one transaction each...
    remove_index(&project);
    let mut store = Store::open(project.clone()).unwrap();
    let mut issues = Vec::new();
    for short in &shorts {
        issues.extend(store.fold_run(short).unwrap());
    }
    let by_run = dump(&project);
    let listed = store.runs(None).unwrap();
    // ...and the rebuild.
    let rebuilt_issues = store.reindex().unwrap();
    let rebuilt = dump(&project);
    assert_eq!(
        listed.len(),
        shorts.len(),
        "every run is listed, the unreadable one too"
    );
    assert_eq!(store.runs(None).unwrap().len(), shorts.len());
    let runs = by_run.iter().find(|(t, _)| t == "runs").unwrap();
    assert_eq!(runs.1.len(), shorts.len());
    for ((table, a), (again, b)) in by_run.iter().zip(&rebuilt) {
        assert_eq!(table, again);
        assert_eq!(a.len(), b.len(), "rows of table `{table}`");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "a row of table `{table}`");
        }
    }
    assert_eq!(by_run.len(), rebuilt.len());
    assert_eq!(
        issues.iter().map(ToString::to_string).collect::<Vec<_>>(),
        rebuilt_issues
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert!(rebuilt_issues.len() >= 2, "{rebuilt_issues:?}");
    let running = store.runs(None).unwrap();
    assert_eq!(
        running
            .iter()
            .filter(|r| r.status == Status::Running)
            .count(),
        1
    );
    live.end(now_nanos(), Status::Finished, None);
    live.close();
}
