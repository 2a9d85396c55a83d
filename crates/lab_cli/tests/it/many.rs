//! A run with a hundred thousand metrics and as many parameters: listing and
//! showing it is linear work. Looking each name up by a scan made it
//! quadratic (minutes even in release); the bound here is generous for a
//! debug build, so only that kind of slowness trips it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_journal::JournalWriter;
use lab_types::{MetricPoint, Record, Status, Value, now_nanos};

use crate::{lab_command, new_project};

const N: u32 = 100_000;
const BOUND: Duration = Duration::from_mins(1);

/// Runs `lab ARGS` and returns how many bytes it printed, failing when it
/// does not end within [`BOUND`].
fn bounded(root: &std::path::Path, args: &[&str]) -> usize {
    // No width: every column of the table is drawn.
    let mut child = lab_command(root, Some(root), args)
        .env_remove("COLUMNS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::Builder::new()
        .name("stdout".into())
        .spawn(move || {
            let mut stdout = stdout;
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut stdout, &mut all).unwrap();
            all.len()
        })
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "lab {args:?} failed");
            return reader.join().unwrap();
        }
        if started.elapsed() > BOUND {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("lab {args:?} took over {BOUND:?} for {N} metrics: quadratic again?");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_hundred_thousand_metrics_and_parameters_are_listed_and_shown() {
    let (_dir, project) = new_project();
    let start = now_nanos();
    let (id, paths) = project.claim_run(start).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    w.append(&Record::Start {
        run: id,
        time_nanos: start,
        experiment: "wide".into(),
    })
    .unwrap();
    for i in 0..N {
        w.append(&Record::Param {
            time_nanos: start,
            key: format!("p{i}"),
            value: Value::Int(i.into()),
        })
        .unwrap();
        w.append(&Record::MetricKey {
            key: i,
            name: format!("m{i}"),
        })
        .unwrap();
    }
    w.append(&Record::Metrics {
        time_nanos: start,
        points: (0..N)
            .map(|key| MetricPoint {
                key,
                step: 0,
                value: f64::from(key),
            })
            .collect(),
    })
    .unwrap();
    w.append(&Record::End {
        time_nanos: start + 1,
        status: Status::Finished,
        error: None,
    })
    .unwrap();
    w.close().unwrap();

    let root = project.root();
    // The first command also indexes the run.
    assert!(bounded(root, &["ls", "--format", "json"]) > 0);
    for args in [
        &["ls"][..],
        &["ls", "--params"],
        &["ls", "--format", "csv"],
        &["show", &id.short()],
        &["compare", &id.short(), &id.short()],
    ] {
        // Every name is printed: at least a few bytes each.
        assert!(bounded(root, args) > N as usize * 4, "lab {args:?}");
    }
}
