//! Journal writer and reader against real files: round trips, windows, torn tails, flipped bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use lab_journal::{JournalWriter, Mode, read_journal, read_journal_as};
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
    assert_eq!(scan.damage, []);
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
    assert_eq!(scan.damage, [], "reserved zeros are not damage");
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
    let damage = scan.tail_damage().unwrap();
    assert_eq!(damage.offset, ends[6]);
    assert_eq!(damage.dropped_bytes, 5);
    assert_eq!(scan.damage.len(), 1);
    assert_eq!(scan.end, ends[6]);
}

#[test]
fn a_flipped_byte_costs_only_its_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 10);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = ends[3] as usize + 12; // inside the payload of the 4th param
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    // start, params 1-3, params 5-10, close: only the 4th param is lost.
    assert_eq!(records.len(), 1 + 9 + 1);
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Param { key, .. } if key == "p3"))
    );
    assert_eq!(scan.damage.len(), 1);
    let damage = &scan.damage[0];
    assert_eq!(damage.offset, ends[3]);
    assert_eq!(damage.reason, "CRC mismatch");
    assert_eq!(damage.dropped_bytes, ends[4] - ends[3]);
    assert!(!damage.tail);
    assert_eq!(scan.end, bytes.len() as u64);
}

#[test]
fn behind_a_live_writer_the_scan_stops_at_the_first_bad_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 10);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[ends[3] as usize + 12] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let mut n = 0;
    let scan = read_journal_as(&path, 0, Mode::Live, |_, _| n += 1).unwrap();
    assert_eq!(n, 4);
    assert_eq!(scan.end, ends[3]);
    assert_eq!(scan.damage.len(), 1);
    assert!(scan.damage[0].tail);
}

#[test]
fn every_flipped_bit_of_a_journal_costs_at_most_the_records_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 6);
    let clean = std::fs::read(&path).unwrap();
    let frames: Vec<(u64, u64)> = std::iter::once(16)
        .chain(ends.iter().copied())
        .zip(ends.iter().copied())
        .collect();
    let total = frames.len() + 1; // and the close record
    for byte in 16..clean.len() {
        for bit in 0..8 {
            let mut bytes = clean.clone();
            bytes[byte] ^= 1 << bit;
            std::fs::write(&path, &bytes).unwrap();
            let (records, scan) = collect(&path);
            // The frame holding the flipped bit is lost; every other one is read.
            let hit = frames
                .iter()
                .position(|(a, b)| (*a..*b).contains(&(byte as u64)));
            let expected = total - 1;
            assert_eq!(
                records.len(),
                expected,
                "bit {bit} of byte {byte} (frame {hit:?}): {scan:?}"
            );
            assert_eq!(scan.damage.len(), 1, "byte {byte}: {scan:?}");
        }
    }
}

#[test]
fn a_damaged_header_is_read_past_in_a_settled_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    write_sample(&path, 3);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[2] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), 1 + 3 + 1);
    assert_eq!(scan.damage[0].offset, 0);
    assert!(scan.damage[0].reason.contains("header"), "{scan:?}");
    let live = read_journal_as(&path, 0, Mode::Live, |_, _| {}).unwrap_err();
    assert!(live.to_string().contains("not a Lab journal"), "{live}");
}

#[test]
fn a_zeroed_length_with_frames_after_it_is_damage_that_is_read_past() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 5);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = ends[2] as usize;
    bytes[at..at + 4].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), 1 + 4 + 1, "only the third param is lost");
    assert_eq!(scan.damage.len(), 1);
    assert_eq!(scan.damage[0].offset, ends[2]);
}

#[test]
fn a_zeroed_tail_of_a_closed_journal_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 5);
    let mut bytes = std::fs::read(&path).unwrap();
    assert_ne!(
        bytes.len() % 4096,
        0,
        "a closed journal is cut to its frames"
    );
    let at = ends[4] as usize;
    let len = bytes.len();
    bytes[at..].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), 5, "start and four params");
    let tail = scan.tail_damage().expect("a zeroed tail is reported");
    assert_eq!(tail.offset, ends[4]);
    assert_eq!(tail.dropped_bytes, (len - at) as u64);
    assert!(tail.reason.contains("zero bytes"), "{}", tail.reason);
}

#[test]
fn garbage_after_the_last_frame_is_tail_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let ends = write_sample(&path, 3);
    let mut bytes = std::fs::read(&path).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(b"\x07\x00\x00\x00garbage that is no frame");
    bytes.extend_from_slice(&[0u8; 5000]);
    std::fs::write(&path, &bytes).unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(records.len(), ends.len() + 1);
    let tail = scan.tail_damage().unwrap();
    assert_eq!(tail.offset, good as u64);
    assert_eq!(tail.dropped_bytes, 4 + 24);
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

/// A tmpfs of a fixed size (or an ext4 file system in an image file),
/// mounted for one test and removed after it.
struct SmallDisk {
    dir: tempfile::TempDir,
    /// The folder of the ext4 image, if it is one.
    _image: Option<tempfile::TempDir>,
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
        Self { dir, _image: None }
    }

    /// An ext4 file system of 1 KiB blocks (what `mkfs.ext4` makes of small
    /// disks), on a loop device.
    fn ext4(bytes: u64) -> Self {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(bytes)
            .unwrap();
        let status = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "1024"])
            .arg(&image)
            .status()
            .expect("mkfs.ext4 runs");
        assert!(status.success());
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting an image needs root and a loop device (the tests run as root)"
        );
        Self {
            dir,
            _image: Some(image_dir),
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills what is left of the disk with one file.
    fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![1u8; 64 << 10];
        loop {
            if f.write_all(&block).is_err() {
                break;
            }
        }
        let _ = f.flush();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // A test that forgets a writer keeps its file open, and a busy file
        // system cannot be unmounted: detach it then (`--lazy`), so that it
        // goes when the test process exits instead of staying mounted.
        let unmounted = std::process::Command::new("umount")
            .arg(self.dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = std::process::Command::new("umount")
                .arg("--lazy")
                .arg(self.dir.path())
                .status();
        }
    }
}

#[test]
fn a_writer_killed_on_a_full_ext4_disk_leaves_reserved_space_only() {
    // ext4 keeps what it could allocate of a window it ran out of room for,
    // and lengthens the file to match, to a multiple of its 1 KiB blocks.
    let disk = SmallDisk::ext4(48 << 20);
    let path = disk.path().join("journal.lab");
    let mut w = JournalWriter::create(&path).unwrap();
    w.append(&start()).unwrap();
    disk.fill();
    let mut logged = 0;
    while w
        .append_metric(
            1,
            &MetricPoint {
                key: 0,
                step: logged,
                value: 0.5,
            },
        )
        .is_ok()
    {
        logged += 1;
    }
    assert!(logged > 0);
    std::mem::forget(w);
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        len % 4096,
        0,
        "the file ends where reserved space ends: {len}"
    );
    let mut records = 0;
    let scan = read_journal_as(&path, 0, Mode::Settled, |_, _| records += 1).unwrap();
    assert_eq!(scan.damage, [], "reserved zeros are not damage");
    assert_eq!(records, 1 + logged);
}

#[test]
fn a_full_disk_fails_logging_but_leaves_room_to_end_the_run() {
    let disk = SmallDisk::new(12 << 20);
    let path = disk.path().join("journal.lab");
    let mut w = JournalWriter::create(&path).unwrap();
    w.append(&start()).unwrap();
    disk.fill();
    let big = |i: usize| Record::Tag {
        time_nanos: 0,
        key: format!("t{i}"),
        value: "x".repeat(64 << 10),
    };
    let mut logged = 0;
    let err = loop {
        match w.append(&big(logged)) {
            Ok(()) => logged += 1,
            Err(e) => break e,
        }
        assert!(logged < 1000, "the disk never filled");
    };
    assert!(
        err.to_string().contains("No space left"),
        "a full disk is an error at the call: {err}"
    );
    // What is held in reserve still takes the records that end the run.
    let message = "m".repeat(64 << 10);
    let traceback = "t".repeat(256 << 10);
    w.append_final(&Record::End {
        time_nanos: 2,
        status: Status::Failed,
        error: Some(lab_types::ErrorInfo {
            kind: "OSError".into(),
            message,
            traceback,
        }),
    })
    .unwrap();
    w.close().unwrap();
    let (records, scan) = collect(&path);
    assert_eq!(scan.damage, []);
    assert_eq!(records.len(), 1 + logged + 2);
    assert!(matches!(
        records[records.len() - 2],
        Record::End {
            status: Status::Failed,
            ..
        }
    ));
}

#[test]
fn a_frame_whose_length_was_never_stored_is_read_once_the_writer_is_gone() {
    // A writer killed between storing a frame and storing its length.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let mut w = JournalWriter::create(&path).unwrap();
    w.append(&start()).unwrap();
    w.append(&Record::MetricKey {
        key: 0,
        name: "loss".into(),
    })
    .unwrap();
    let at = w.len();
    let point = MetricPoint {
        key: 0,
        step: 0,
        value: 0.0,
    };
    w.append_metric(7, &point).unwrap();
    std::mem::forget(w);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at as usize..at as usize + 4].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    let mut records = Vec::new();
    let scan = read_journal_as(&path, 0, Mode::Settled, |_, r| records.push(r)).unwrap();
    assert_eq!(scan.damage, [], "{scan:?}");
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[2],
        Record::Metric {
            time_nanos: 7,
            point
        }
    );
    assert_eq!(scan.end, at + 8 + 29);
    // Behind a live writer it is not a frame yet.
    let mut live = 0;
    let scan = read_journal_as(&path, 0, Mode::Live, |_, _| live += 1).unwrap();
    assert_eq!((live, scan.end), (2, at));
}

#[test]
fn an_append_cut_short_by_a_kill_is_no_damage() {
    // Killed after storing part of a payload, before its CRC and length.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.lab");
    let mut w = JournalWriter::create(&path).unwrap();
    w.append(&start()).unwrap();
    let at = w.len() as usize;
    w.append(&Record::Tag {
        time_nanos: 3,
        key: "k".into(),
        value: "v".repeat(100),
    })
    .unwrap();
    std::mem::forget(w);
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.len() % 4096,
        0,
        "never closed: reserved space is left"
    );
    bytes[at..at + 8].fill(0);
    bytes[at + 40..at + 60].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let mut n = 0;
    let scan = read_journal_as(&path, 0, Mode::Settled, |_, _| n += 1).unwrap();
    assert_eq!((n, scan.end), (1, at as u64));
    assert_eq!(scan.damage, [], "nothing acknowledged was lost");
}

/// Scans `bytes` (a whole journal) as a settled journal on another thread,
/// and fails if that takes more than a minute. A scan is linear in the
/// journal and takes milliseconds here; the inputs of the tests below cost
/// hours (terabytes of CRC) to one that is not. This catches a hang, it does
/// not time the reader.
fn scan_within_a_minute(bytes: Vec<u8>) -> (Vec<Record>, lab_journal::Scan) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("scan".into())
        .spawn(move || {
            let mut records = Vec::new();
            let scan = lab_journal::scan_from(&bytes[16..], 16, |_, r| records.push(r)).unwrap();
            tx.send((records, scan)).unwrap();
        })
        .unwrap();
    rx.recv_timeout(std::time::Duration::from_mins(1))
        .expect("the scan finished within a minute")
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn encoded(record: &Record) -> Vec<u8> {
    let mut payload = Vec::new();
    lab_journal::codec::encode(record, &mut payload);
    payload
}

/// A good frame almost as long as the reader looks for after damage
/// ([`lab_journal::RESYNC_MAX_PAYLOAD`]): every offset before it has whole
/// would-be frames of up to some 16 million bytes after it.
fn long_tag() -> Vec<u8> {
    let len = lab_journal::RESYNC_MAX_PAYLOAD - 200_000;
    assert!(len > 16_000_000);
    frame(&encoded(&Record::Tag {
        time_nanos: 2,
        key: "long".into(),
        value: "x".repeat(len),
    }))
}

#[test]
fn a_damaged_frame_full_of_plausible_frame_lengths_is_read_past_in_one_pass() {
    // A parameter holding half a million integers of 16 million: at every
    // ninth byte, a frame length under the resynchronisation limit followed
    // by a known record tag (the next integer's value tag). Its CRC is
    // damaged, so the reader resynchronises through all of it.
    let mut bytes = lab_journal::header().to_vec();
    bytes.extend(frame(&encoded(&start())));
    let mut param = frame(&encoded(&Record::Param {
        time_nanos: 1,
        key: "seeds".into(),
        value: lab_types::Value::List(vec![lab_types::Value::Int(16_000_000); 500_000]),
    }));
    param[4] ^= 0x01;
    let damaged_at = bytes.len() as u64;
    let damaged_len = param.len() as u64;
    bytes.extend(param);
    bytes.extend(long_tag());
    bytes.extend(frame(&encoded(&Record::Close { time_nanos: 3 })));

    let (records, scan) = scan_within_a_minute(bytes);
    assert_eq!(records.len(), 3, "start, the long tag and close");
    assert_eq!(scan.damage.len(), 1, "{scan:?}");
    assert_eq!(
        (scan.damage[0].offset, scan.damage[0].dropped_bytes),
        (damaged_at, damaged_len)
    );
}

#[test]
fn many_zeroed_lengths_before_a_long_frame_are_read_past_in_one_pass() {
    // Fifty thousand times a good frame, then a frame whose length is zero
    // (with a known tag after it, as an unsealed frame would have), then a
    // long good frame: at each zero, the reader looks for a frame whose
    // length was never stored.
    let mut bytes = lab_journal::header().to_vec();
    bytes.extend(frame(&encoded(&start())));
    let good = frame(&encoded(&Record::Metric {
        time_nanos: 7,
        point: MetricPoint {
            key: 0,
            step: 1,
            value: 0.5,
        },
    }));
    let mut zeroed = good.clone();
    zeroed[..4].fill(0);
    zeroed[9] ^= 0x01;
    let blocks = 50_000;
    for _ in 0..blocks {
        bytes.extend_from_slice(&good);
        bytes.extend_from_slice(&zeroed);
    }
    bytes.extend(long_tag());

    let (records, scan) = scan_within_a_minute(bytes);
    assert_eq!(records.len(), 1 + blocks + 1);
    assert_eq!(scan.damage.len(), blocks);
    assert!(scan.damage.iter().all(|d| d.dropped_bytes == 37 && !d.tail));
}

#[test]
fn journals_closed_together_each_end_with_close_cut_and_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let mut writers = Vec::new();
    let mut paths = Vec::new();
    // More than the threads that close them, in shares of unequal lengths:
    // each result is still its own journal's, in order.
    for i in 0..19 {
        let path = dir.path().join(format!("journal-{i}.lab"));
        let mut w = JournalWriter::create(&path).unwrap();
        w.append(&start()).unwrap();
        w.append(&Record::MetricKey {
            key: 0,
            name: "loss".into(),
        })
        .unwrap();
        for step in 0..=i64::from(i) * 1000 {
            w.append_metric(
                step,
                &MetricPoint {
                    key: 0,
                    step,
                    value: 0.5,
                },
            )
            .unwrap();
        }
        // Reserved space beyond the data until the journal is closed.
        assert!(std::fs::metadata(&path).unwrap().len() > w.len());
        writers.push(w);
        paths.push(path);
    }
    let results = JournalWriter::close_all(writers);
    assert_eq!(results.len(), 19);
    for (i, (result, path)) in results.into_iter().zip(&paths).enumerate() {
        result.unwrap();
        let (records, scan) = collect(path);
        assert_eq!(scan.damage, []);
        assert_eq!(records.len(), 2 + i * 1000 + 1 + 1);
        assert!(matches!(records.last(), Some(Record::Close { .. })));
        // Cut to the last frame, and no longer locked by a writer.
        assert_eq!(std::fs::metadata(path).unwrap().len(), scan.end);
        std::fs::File::open(path).unwrap().try_lock().unwrap();
    }
}
