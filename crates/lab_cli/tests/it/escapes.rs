//! Text a run recorded never reaches the terminal raw: escape sequences,
//! carriage returns, newlines and bidirectional overrides are shown as
//! escapes, and tables stay aligned. CSV and JSON keep the exact text.

use std::path::Path;

use lab_journal::JournalWriter;
use lab_store::Project;
use lab_types::{ErrorInfo, MetricPoint, Record, RunId, Status, Value, now_nanos};

use crate::{lab, lab_ok, new_project, snapshot};

const CLEAR: &str = "\x1b[2J";
const LINK: &str = "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07";
const RLO: &str = "\u{202e}";

/// A run written straight into its journal, as any writer could: names and
/// values hold a screen clear, an OSC 8 hyperlink, a carriage return, a
/// newline and a right-to-left override.
fn hostile_run(project: &Project) -> RunId {
    let start = now_nanos();
    let (id, paths) = project.claim_run(start).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    let mut rec = |r: Record| w.append(&r).unwrap();
    rec(Record::Start {
        run: id,
        time_nanos: start,
        experiment: format!("exp{CLEAR}"),
    });
    for (key, value) in [
        ("source", format!("/home/eve/{CLEAR}tr\rain.py")),
        ("user", format!("eve{CLEAR}")),
        ("host", format!("box{RLO}kcatta")),
        ("dataset", "data\nFAKE ROW".to_owned()),
        ("name", format!("na{CLEAR}me")),
    ] {
        rec(Record::Attr {
            time_nanos: start,
            key: key.into(),
            value: Value::Str(value),
        });
    }
    rec(Record::Features {
        time_nanos: start,
        names: vec![Value::Str(format!("f{CLEAR}")), Value::Str("plain".into())],
    });
    for (key, value) in [
        (format!("p{CLEAR}"), Value::Str("v\nfake row".into())),
        (format!("lr{RLO}"), Value::Float(0.1)),
        ("note".to_owned(), Value::Str(format!("see {LINK}"))),
    ] {
        rec(Record::Param {
            time_nanos: start,
            key,
            value,
        });
    }
    for (key, name) in [(0, "acc\r".to_owned()), (1, format!("m{RLO}x"))] {
        rec(Record::MetricKey { key, name });
        rec(Record::Metric {
            time_nanos: start,
            point: MetricPoint {
                key,
                step: 0,
                value: 0.5,
            },
        });
    }
    rec(Record::Tag {
        time_nanos: start,
        key: format!("t{CLEAR}"),
        value: "two\nlines".into(),
    });
    rec(Record::End {
        time_nanos: start + 1_000_000,
        status: Status::Failed,
        error: Some(ErrorInfo {
            kind: format!("Boom{CLEAR}"),
            message: "bad\rworse".into(),
            traceback: format!("Traceback (most recent call last):\n  {LINK}\nBoom: bad\rworse\n"),
        }),
    });
    rec(Record::Close {
        time_nanos: start + 1_000_000,
    });
    id
}

/// A well-behaved run beside it, to see the columns line up.
fn plain_run(project: &Project) -> RunId {
    let start = now_nanos();
    let (id, paths) = project.claim_run(start).unwrap();
    let mut w = JournalWriter::create(&paths.journal).unwrap();
    w.append(&Record::Start {
        run: id,
        time_nanos: start,
        experiment: "plain".into(),
    })
    .unwrap();
    w.append(&Record::Attr {
        time_nanos: start,
        key: "name".into(),
        value: Value::Str("plain".into()),
    })
    .unwrap();
    w.append(&Record::Param {
        time_nanos: start,
        key: format!("p{CLEAR}"),
        value: Value::Str("x".into()),
    })
    .unwrap();
    w.append(&Record::End {
        time_nanos: start + 1,
        status: Status::Finished,
        error: None,
    })
    .unwrap();
    id
}

/// No control character but newlines, and no bidirectional override.
fn assert_safe(text: &str) {
    for (i, c) in text.chars().enumerate() {
        assert!(
            !(c.is_control() && c != '\n') && c != '\u{202e}',
            "raw {c:?} at character {i} in:\n{text}"
        );
    }
}

/// The character positions where each of `words` starts in `line`.
fn starts(line: &str, words: &[&str]) -> Vec<usize> {
    words
        .iter()
        .map(|w| line[..line.find(w).unwrap()].chars().count())
        .collect()
}

#[test]
fn run_text_is_shown_with_escapes_and_tables_stay_aligned() {
    let (_dir, project) = new_project();
    let root = project.root();
    let plain = plain_run(&project);
    let hostile = hostile_run(&project);

    let ls = lab_ok(root, &["ls", "--params"]);
    assert_safe(&ls);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two rows:\n{ls}");
    // The cells after an escaped one start under their titles.
    let header = starts(lines[0], &["STATUS", "params.lr", "params.note"]);
    let row = lines
        .iter()
        .find(|l| l.starts_with(&hostile.short()))
        .unwrap();
    assert_eq!(starts(row, &["failed", "0.1", "see "]), header, "{ls}");
    let other = lines
        .iter()
        .find(|l| l.starts_with(&plain.short()))
        .unwrap();
    assert_eq!(starts(other, &["finished"])[0], header[0], "{ls}");
    snapshot("ls_escapes", root, &ls, &[]);

    let show = lab_ok(root, &["show", &hostile.short()]);
    assert_safe(&show);
    assert!(show.contains("  experiment  exp\\x1b[2J\n"), "{show}");
    assert!(
        show.contains("  status      failed ✗  Boom\\x1b[2J: bad\\rworse\n"),
        "{show}"
    );
    assert!(
        show.contains("  user        eve\\x1b[2J@box\\u202ekcatta\n"),
        "{show}"
    );
    assert!(show.contains("  dataset     data\\nFAKE ROW\n"), "{show}");
    snapshot("show_escapes", root, &show, &[]);

    let compare = lab_ok(root, &["compare", &hostile.short(), &plain.short()]);
    assert_safe(&compare);
    assert!(compare.contains("  acc\\r "), "{compare}");
    assert!(compare.contains("  m\\u202ex "), "{compare}");
    assert!(compare.contains("  f\\x1b[2J "), "{compare}");

    let watch = lab_ok(root, &["watch", &hostile.short()]);
    assert_safe(&watch);
    assert!(
        watch.contains("acc\\r 0.5 (step 0)  m\\u202ex 0.5 (step 0)"),
        "{watch}"
    );

    let svg = lab_ok(root, &["show", &hostile.short(), "--graph", "-"]);
    assert_safe(&svg);
    assert!(
        svg.contains("note = see \\x1b]8;;https://evil.example…"),
        "{svg}"
    );

    // Data formats keep the exact text; CSV quotes the newlines.
    let json: serde_json::Value =
        serde_json::from_str(&lab_ok(root, &["ls", "--format", "json"])).unwrap();
    let row = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == hostile.to_string())
        .unwrap();
    assert_eq!(row["experiment"], format!("exp{CLEAR}"));
    assert_eq!(row["params"][format!("p{CLEAR}")], "v\nfake row");
    assert_eq!(row["metrics"]["acc\r"], 0.5);
    assert_eq!(row["tags"][format!("t{CLEAR}")], "two\nlines");
    let csv = lab_ok(root, &["ls", "--format", "csv"]);
    assert!(csv.contains(&format!(",exp{CLEAR},")), "{csv:?}");
    assert!(csv.contains(",\"v\nfake row\","), "{csv:?}");
    assert!(csv.contains(",\"metrics.acc\r\","), "{csv:?}");

    // An error quoting a run's names shows them safe, keeping its hint.
    let sorted = lab(root, &["ls", "--sort", "ac"]);
    assert_eq!(sorted.code, 1);
    assert_safe(&sorted.stderr);

    // A leftover temporary model file whose name holds an escape sequence.
    let models = project.run_paths(&hostile.short()).dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join(format!(".clf{CLEAR}.999999999.tmp")), "x").unwrap();
    let gc = lab_ok(root, &["gc", "--dry-run"]);
    assert_safe(&gc);
    assert!(gc.contains("/models/.clf\\x1b[2J.999999999.tmp\n"), "{gc}");

    let rm = lab_ok(root, &["rm", &hostile.short(), "--yes"]);
    assert_safe(&rm);
    assert!(
        rm.starts_with(&format!(
            "Removed run `{}` (exp\\x1b[2J, \\x1b[2Jtr\\rain.py, failed): ",
            hostile.short()
        )),
        "{rm}"
    );
    assert!(Path::new(root).join(".lab").exists());
}

#[test]
fn a_project_path_with_an_escape_sequence_is_shown_safe() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(format!("p{CLEAR}{RLO}"));
    std::fs::create_dir(&folder).unwrap();
    Project::create(&folder).unwrap();
    let info = lab_ok(&folder, &["info"]);
    assert_safe(&info);
    assert!(info.contains("p\\x1b[2J\\u202e ("), "{info}");
}
