//! Journal writer and reader against real files: round trips, windows, torn tails, flipped bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use lab_journal::{JournalWriter, read_journal};
use lab_types::{MetricPoint, Record, RunId, Status};

fn start() -> Record {
    Record::Start {
        run: RunId::new(lab_types::now_nanos(), 0),
        time_nanos: 1,
        experiment: "e".into(),
    }
}

fn collect(path: &std::path::Path) -> (Vec<Record>, lab_journal::Scan) {
    let mut out = Vec::new();
    let scan = read_journal(path, 0, |_, r| out.push(r)).unwrap();
    (out, scan)
}

#[test]
fn written_records_read_back_across_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let mut w = JournalWriter::create(&path).unwrap();
    w.append(&start()).unwrap();
    w.append(&Record::MetricKey {
        key: 0,
        name: "loss".into(),
    })
    .unwrap();
    // 37 bytes a frame: 600k frames cross the 8 MiB window twice.
    for step in 0..600_000 {
        w.append_metric(
            step,
            &MetricPoint {
                key: 0,
                step,
                value: step as f64,
            },
        )
        .unwrap();
    }
    // A frame larger than a window.
    let big = Record::Attr {
        time_nanos: 0,
        key: "big".into(),
        value: lab_types::Value::Str("x".repeat(9 << 20)),
    };
    w.append(&big).unwrap();
    w.append(&Record::End {
        time_nanos: 2,
        status: Status::Finished,
        error: None,
    })
    .unwrap();
    let len = w.len();
    w.close().unwrap();

    let (records, scan) = collect(&path);
    assert_eq!(scan.damage, None);
    assert_eq!(records.len(), 2 + 600_000 + 1 + 1 + 1);
    assert!(matches!(records.last(), Some(Record::Close { .. })));
    assert_eq!(
        records[600_001],
        Record::Metric {
            time_nanos: 599_999,
            point: MetricPoint {
                key: 0,
                step: 599_999,
                value: 599_999.0
            }
        }
    );
    assert_eq!(records[600_002], big);
    // close() cut the reserved space: the file is exactly the frames.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), scan.end);
    assert!(scan.end > len);
}

#[test]
fn a_writer_that_vanishes_leaves_a_readable_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let mut w = JournalWriter::create(&path).unwrap();
    w.append(&start()).unwrap();
    w.append(&Record::MetricKey {
        key: 0,
        name: "loss".into(),
    })
    .unwrap();
    for step in 0..1000 {
        w.append_metric(
            0,
            &MetricPoint {
                key: 0,
                step,
                value: 0.5,
            },
        )
        .unwrap();
    }
    // Simulate the process dying: no close, no sync, reserved zeros left behind.
    std::mem::forget(w);
    let (records, scan) = collect(&path);
    assert_eq!(scan.damage, None, "reserved zeros are not damage");
    assert_eq!(records.len(), 1002);
    assert!(std::fs::metadata(&path).unwrap().len() > scan.end);
}

fn write_sample(path: &std::path::Path, n: i64) -> Vec<u64> {
    let mut w = JournalWriter::create(path).unwrap();
    let mut ends = vec![];
    w.append(&start()).unwrap();
    ends.push(w.len());
    for step in 0..n {
        w.append(&Record::Param {
            time_nanos: step,
            key: format!("p{step}"),
            value: lab_types::Value::Int(step),
        })
        .unwrap();
        ends.push(w.len());
    }
    w.close().unwrap();
    ends
}

#[test]
fn a_journal_cut_mid_frame_keeps_everything_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 10);
    // Cut in the middle of the 7th param frame.
    let cut = ends[6] + 5;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(cut).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), 7, "start + 6 params survive");
    let damage = scan.damage.unwrap();
    assert_eq!(damage.offset, ends[6]);
    assert_eq!(damage.dropped_bytes, 5);
    assert_eq!(scan.end, ends[6]);
}

#[test]
fn a_flipped_byte_stops_the_scan_at_the_bad_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 10);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = ends[3] as usize + 12; // inside the payload of the 4th param
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), 4);
    let damage = scan.damage.unwrap();
    assert_eq!(damage.offset, ends[3]);
    assert_eq!(damage.reason, "CRC mismatch");
    assert_eq!(damage.dropped_bytes, bytes.len() as u64 - ends[3]);
}

#[test]
fn a_zeroed_length_with_data_after_it_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 5);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = ends[2] as usize;
    bytes[at..at + 4].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), 3);
    assert!(scan.damage.is_some());
}

#[test]
fn reading_from_an_offset_sees_only_later_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 5);
    let mut seen = vec![];
    read_journal(&path, ends[3], |off, _| seen.push(off)).unwrap();
    assert_eq!(seen[0], ends[3]);
    assert_eq!(seen.len(), 3, "params 4, 5 and the close record");
}

#[test]
fn a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    std::fs::write(&path, b"hello, this is not a journal").unwrap();
    let err = read_journal(&path, 0, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("not a Lab journal"), "{err}");
}
