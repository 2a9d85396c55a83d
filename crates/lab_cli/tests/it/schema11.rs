//! An index written by the previous schema (version 11), with real runs,
//! opened by this build: the listings, queries and `lab show` answer what
//! the previous release answered on it (`fixtures/schema11/expected`, made
//! by that release), once the migration has emptied the index and the
//! journals are folded again.

use std::path::{Path, PathBuf};

use crate::lab_ok;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/schema11")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The fixture's project, copied: a test never changes the fixture.
fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    copy_dir(&fixture().join("project"), &root);
    (dir, root)
}

fn user_version(root: &Path) -> i64 {
    rusqlite::Connection::open(root.join(".lab/index.sqlite"))
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

const CASES: &[(&str, &[&str])] = &[
    ("ls.txt", &["ls"]),
    ("ls.json", &["ls", "--format", "json"]),
    ("ls.csv", &["ls", "--format", "csv", "--params"]),
    (
        "where_sort.json",
        &[
            "ls",
            "--where",
            "loss < 0.19",
            "--sort",
            "-acc",
            "--params",
            "--format",
            "json",
        ],
    ),
    (
        "where_or.json",
        &[
            "ls",
            "--where",
            "optimizer = \"sgd\" or stage = \"dev\"",
            "--sort",
            "lr",
            "--format",
            "json",
        ],
    ),
    ("word.json", &["ls", "--where", "best", "--format", "json"]),
    ("show.txt", &["show", "0e665321"]),
];

/// `lab show` names the run's folder, which is where the copy is.
fn without_folder(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("folder "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_index_of_schema_11_answers_as_the_previous_release_did() {
    let (_dir, root) = project();
    assert_eq!(user_version(&root), 11);
    for (file, args) in CASES {
        let expected = std::fs::read_to_string(fixture().join("expected").join(file)).unwrap();
        let got = lab_ok(&root, args);
        assert_eq!(
            without_folder(&got),
            without_folder(&expected),
            "lab {args:?}"
        );
    }
    assert!(user_version(&root) > 11);
    let conn = rusqlite::Connection::open(root.join(".lab/index.sqlite")).unwrap();
    let (shared, values): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM attrs WHERE shared IS NOT NULL), (SELECT count(*) FROM attr_values)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(values >= 1 && shared >= 5 * values, "{shared} {values}");
}

#[test]
fn processes_opening_an_index_of_schema_11_at_once_each_answer_as_before() {
    let (_dir, root) = project();
    let expected = std::fs::read_to_string(fixture().join("expected/ls.json")).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let root = root.clone();
            std::thread::Builder::new()
                .name(format!("lab-{i}"))
                .spawn(move || lab_ok(&root, &["ls", "--format", "json"]))
                .unwrap()
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), expected);
    }
    assert_eq!(lab_ok(&root, &["ls", "--format", "json"]), expected);
}
