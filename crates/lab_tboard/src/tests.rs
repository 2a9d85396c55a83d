// Values are decoded bits, never computed: they must come back exactly.
#![allow(clippy::float_cmp)]

use prost::Message as _;

use super::*;
use crate::proto::{
    DT_DOUBLE, DT_FLOAT, Event, PluginData, Summary, SummaryMetadata, SummaryValue, TensorProto,
};

/// One TFRecord: length, its masked CRC, data, the data's masked CRC.
fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = len.to_vec();
    out.extend(masked_crc(&len).to_le_bytes());
    out.extend(data);
    out.extend(masked_crc(data).to_le_bytes());
    out
}

fn header() -> Vec<u8> {
    frame(
        &Event {
            wall_time: 1.0,
            file_version: Some("brain.Event:2".into()),
            ..Event::default()
        }
        .encode_to_vec(),
    )
}

fn simple(tag: &str, step: i64, value: f32) -> Vec<u8> {
    frame(
        &Event {
            wall_time: 100.0 + step as f64,
            step,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: tag.into(),
                    simple_value: Some(value),
                    ..SummaryValue::default()
                }],
            }),
            ..Event::default()
        }
        .encode_to_vec(),
    )
}

fn tensor(tag: &str, step: i64, plugin: Option<&str>, t: TensorProto) -> Vec<u8> {
    frame(
        &Event {
            wall_time: 200.0 + step as f64,
            step,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: tag.into(),
                    tensor: Some(t),
                    metadata: plugin.map(|p| SummaryMetadata {
                        plugin_data: Some(PluginData {
                            plugin_name: p.into(),
                        }),
                        data_class: 0,
                    }),
                    ..SummaryValue::default()
                }],
            }),
            ..Event::default()
        }
        .encode_to_vec(),
    )
}

fn float(x: f32) -> TensorProto {
    TensorProto {
        dtype: DT_FLOAT,
        float_val: vec![x],
        ..TensorProto::default()
    }
}

fn read(bytes: &[u8]) -> EventFile {
    read_stream(bytes).unwrap()
}

fn points(f: &EventFile) -> Vec<(&str, i64, f64)> {
    f.scalars
        .iter()
        .map(|s| (s.tag.as_str(), s.step, s.value))
        .collect()
}

#[test]
fn the_checksum_is_tensorflows_masked_crc32c() {
    // As TensorBoard's own `masked_crc32c(b"foo")` computes it.
    assert_eq!(masked_crc(b"foo"), 0xfebe_8a61);
}

/// A file of the fuzz corpus, written by TensorBoard's `EventFileWriter`.
fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/tfevents")
            .join(name),
    )
    .unwrap()
}

#[test]
fn files_written_by_tensorboards_own_writer_are_read() {
    let f = read(&corpus("seed-simple"));
    assert_eq!(
        points(&f),
        vec![
            ("loss", 0, 1.0),
            ("loss", 1, 0.5),
            ("loss", 2, f64::from(1.0f32 / 3.0)),
            ("loss", 3, 0.25),
            ("loss", 4, 0.2f32.into())
        ]
    );
    assert_eq!(f.scalars[1].wall_time, 1_700_000_001.0);
    assert!(f.damage.is_empty());
    let f = read(&corpus("seed-tensor"));
    assert_eq!(
        points(&f),
        vec![
            ("epoch_loss", 0, 0.0),
            ("epoch_loss", 1, 0.5),
            ("epoch_loss", 2, 1.0),
            ("epoch_loss", 3, 1.5),
            ("lr", 0, 0.1),
            ("lr", 1, 0.1)
        ]
    );
    // A text summary between them is skipped.
    assert_eq!(
        points(&read(&corpus("seed-mixed"))),
        vec![("x", 0, 2.0), ("y", 2, 3.0)]
    );
    assert_eq!(read(&corpus("seed-truncated")).scalars.len(), 4);
}

#[test]
fn an_event_written_byte_by_byte_is_read() {
    // Event { wall_time: 1.5, step: 3, summary { value { tag: "loss",
    // simple_value: 0.25 } } }, field by field.
    let mut value = vec![0x0a, 4];
    value.extend(b"loss");
    value.push(0x15);
    value.extend(0.25f32.to_le_bytes());
    let mut summary = vec![0x0a, value.len() as u8];
    summary.extend(&value);
    let mut event = vec![0x09];
    event.extend(1.5f64.to_le_bytes());
    event.extend([0x10, 3, 0x2a, summary.len() as u8]);
    event.extend(&summary);
    let mut bytes = header();
    bytes.extend(frame(&event));
    let f = read(&bytes);
    assert_eq!(
        f.scalars,
        vec![Scalar {
            tag: "loss".into(),
            step: 3,
            wall_time: 1.5,
            value: 0.25
        }]
    );
    assert_eq!(f.records, 2);
    assert!(f.damage.is_empty());
}

#[test]
fn simple_values_and_scalar_tensors_are_read_the_rest_skipped() {
    let mut bytes = header();
    bytes.extend(simple("loss", 0, 1.0));
    bytes.extend(simple("loss", 1, 0.5));
    // TF2: the plugin is named with the first value of a tag only.
    bytes.extend(tensor("epoch_acc", 0, Some("scalars"), float(0.25)));
    bytes.extend(tensor("epoch_acc", 1, None, float(0.75)));
    let double = TensorProto {
        dtype: DT_DOUBLE,
        tensor_content: 2.5f64.to_le_bytes().to_vec(),
        ..TensorProto::default()
    };
    bytes.extend(tensor("lr", 7, Some("scalars"), double));
    // Text, and a tensor of no known plugin: not scalars.
    bytes.extend(tensor("note", 0, Some("text"), float(9.0)));
    bytes.extend(tensor("note", 1, None, float(9.0)));
    bytes.extend(tensor("anon", 0, None, float(9.0)));
    let f = read(&bytes);
    assert_eq!(
        points(&f),
        vec![
            ("loss", 0, 1.0),
            ("loss", 1, 0.5),
            ("epoch_acc", 0, 0.25),
            ("epoch_acc", 1, 0.75),
            ("lr", 7, 2.5),
        ]
    );
    assert_eq!(f.scalars[2].wall_time, 200.0);
    assert!(f.damage.is_empty());
}

#[test]
fn a_record_failing_its_checksum_is_skipped_and_said() {
    let mut bytes = header();
    bytes.extend(simple("loss", 0, 1.0));
    let bad_at = bytes.len() as u64;
    let mut bad = simple("loss", 1, 0.5);
    let n = bad.len();
    bad[n - 6] ^= 0x40; // inside the data
    bytes.extend(bad);
    bytes.extend(simple("loss", 2, 0.25));
    let f = read(&bytes);
    assert_eq!(points(&f), vec![("loss", 0, 1.0), ("loss", 2, 0.25)]);
    assert_eq!(f.damage, vec![Damage::BadData { offset: bad_at }]);
    assert_eq!(f.skipped_records, 1);
    assert_eq!(
        f.damage[0].to_string(),
        format!("the record at byte {bad_at} fails its checksum and was skipped")
    );
}

#[test]
fn a_length_failing_its_checksum_ends_the_reading() {
    let mut bytes = header();
    bytes.extend(simple("loss", 0, 1.0));
    let bad_at = bytes.len();
    bytes.extend(simple("loss", 1, 0.5));
    bytes[bad_at + 9] ^= 1;
    bytes.extend(simple("loss", 2, 0.25));
    let f = read(&bytes);
    assert_eq!(points(&f), vec![("loss", 0, 1.0)]);
    assert_eq!(
        f.damage,
        vec![Damage::BadLength {
            offset: bad_at as u64
        }]
    );
}

#[test]
fn a_file_cut_anywhere_keeps_the_records_before_the_cut() {
    let mut bytes = header();
    bytes.extend(simple("loss", 0, 1.0));
    let last_at = bytes.len();
    bytes.extend(simple("loss", 1, 0.5));
    for cut in last_at + 1..bytes.len() {
        let f = read(&bytes[..cut]);
        assert_eq!(points(&f), vec![("loss", 0, 1.0)], "cut at {cut}");
        assert_eq!(
            f.damage,
            vec![Damage::Truncated {
                offset: last_at as u64
            }],
            "cut at {cut}"
        );
    }
    assert_eq!(read(&bytes[..last_at]).damage, vec![]);
}

#[test]
fn a_huge_length_allocates_nothing_and_is_a_truncation() {
    let mut bytes = header();
    let at = bytes.len() as u64;
    for len in [u64::MAX, 1 << 40, MAX_EVENT_BYTES + 1, MAX_EVENT_BYTES] {
        let mut b = bytes.clone();
        let l = len.to_le_bytes();
        b.extend(l);
        b.extend(masked_crc(&l).to_le_bytes());
        b.extend([0u8; 100]);
        let f = read(&b);
        assert_eq!(f.damage, vec![Damage::Truncated { offset: at }], "{len}");
        assert_eq!(f.records, 1);
    }
    bytes.extend(simple("x", 1, 1.0));
    assert_eq!(read(&bytes).scalars.len(), 1);
}

#[test]
fn a_record_longer_than_any_event_is_checked_and_skipped() {
    let mut bytes = header();
    let big = vec![7u8; MAX_EVENT_BYTES as usize + 10];
    bytes.extend(frame(&big));
    bytes.extend(simple("loss", 4, 2.0));
    let f = read(&bytes);
    assert_eq!(points(&f), vec![("loss", 4, 2.0)]);
    assert_eq!(f.records, 3);
    assert!(f.damage.is_empty());
    // Its checksum is still checked, and offsets still count it.
    let n = bytes.len();
    let tail = simple("loss", 4, 2.0).len();
    let mut bad = bytes.clone();
    bad[n - tail - 5] ^= 1;
    let f = read(&bad);
    assert_eq!(points(&f), vec![("loss", 4, 2.0)]);
    assert_eq!(
        f.damage,
        vec![Damage::BadData {
            offset: header().len() as u64
        }]
    );
}

#[test]
fn damage_is_reported_at_most_max_damage_times() {
    let mut bytes = header();
    for step in 0..100 {
        let mut r = simple("loss", step, 1.0);
        let n = r.len();
        r[n - 1] ^= 1;
        bytes.extend(r);
    }
    let f = read(&bytes);
    assert_eq!(f.damage.len(), MAX_DAMAGE);
    assert_eq!(f.skipped_records, 100);
    assert!(f.scalars.is_empty());
}

#[test]
fn an_empty_file_has_no_scalars_and_no_damage() {
    assert_eq!(read(b""), EventFile::default());
}

#[test]
fn a_file_that_is_not_an_event_file_says_so_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.out.tfevents.1.host");
    std::fs::write(&path, "print('hello, world')\n".repeat(10)).unwrap();
    let e = read_file(&path).unwrap_err();
    assert!(matches!(e, ReadError::NotEventFile { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "it is not a TensorBoard event file (its first bytes are not a TFRecord length and checksum): {}",
            path.display()
        )
    );
    // Framed well, but not an event inside.
    std::fs::write(&path, frame(&[0xff; 20])).unwrap();
    let e = read_file(&path).unwrap_err();
    assert!(
        e.to_string().contains("its first record is not an event"),
        "{e}"
    );
    let e = read_file(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(e, ReadError::Io { .. }), "{e:?}");
}

#[test]
fn a_folder_tree_is_read_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("run1/train");
    let val = dir.path().join("run1/validation");
    std::fs::create_dir_all(&train).unwrap();
    std::fs::create_dir_all(&val).unwrap();
    let mut a = header();
    a.extend(simple("epoch_loss", 0, 1.0));
    std::fs::write(train.join("events.out.tfevents.2.h.1.v2"), &a).unwrap();
    let mut b = header();
    b.extend(simple("epoch_loss", 1, 0.5));
    std::fs::write(train.join("events.out.tfevents.1.h.1.v2"), &b).unwrap();
    std::fs::write(
        val.join("events.out.tfevents.1.h.1.v2"),
        b"junk junk junk junk",
    )
    .unwrap();
    std::fs::write(val.join("notes.txt"), b"not an event file").unwrap();
    let files = read_folder(dir.path()).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| (f.folder.display().to_string(), f.read.is_ok()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("run1/train".into(), true),
            ("run1/train".into(), true),
            ("run1/validation".into(), false)
        ]
    );
    // Oldest file first.
    assert_eq!(files[0].read.as_ref().unwrap().scalars[0].step, 1);
    assert!(read_folder(&dir.path().join("nope")).is_err());
}
