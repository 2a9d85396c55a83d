//! The checks of the `query` fuzz target (`fuzz/`), here so that the tests
//! replay its corpus through the very same checks on a stable compiler.
//!
//! Any text either fails to parse with a clean [`QueryError`], or parses to a
//! tree that prints back to text parsing to the same tree and that compiles
//! (or fails cleanly) against a small fixed index, where its SQL runs without
//! an error from SQLite. The same text is tried as a sort key too.

use rusqlite::Connection;

use super::{Input, QueryError, compile_sort, compile_where, parse, parse_sort};
use crate::{Error, Selection};

thread_local! {
    static INDEX: Connection = index().unwrap_or_else(|e| panic!("the fixed index: {e}"));
}

/// Checks `text` as a filter and as a sort key; panics on anything but a
/// right answer or a clean query error.
pub fn check(text: &str) {
    INDEX.with(|conn| {
        check_filter(conn, text);
        check_sort(conn, text);
    });
}

fn check_filter(conn: &Connection, text: &str) {
    let expr = match parse(text) {
        Ok(expr) => expr,
        Err(e) => return assert_clean(&e, text, Input::Filter),
    };
    let printed = expr.to_string();
    match parse(&printed) {
        Ok(back) => assert_eq!(back, expr, "`{text}` printed as `{printed}`"),
        Err(e) => panic!("`{text}` printed as `{printed}`, which does not parse: {e}"),
    }
    let catalog = crate::select::catalog(conn).unwrap_or_else(|e| panic!("{e}"));
    let compiled = compile_where(&expr, &catalog, text);
    if let Err(e) = &compiled {
        assert_clean(e, text, Input::Filter);
    }
    let selection = Selection {
        filter: Some(text.to_owned()),
        ..Selection::default()
    };
    match crate::select::select_ids(conn, &selection) {
        Ok(ids) => {
            assert!(compiled.is_ok(), "`{text}` failed to compile but ran");
            assert_same_runs_both_ways(conn, &selection, &ids);
        }
        Err(Error::Query(e)) => {
            assert!(compiled.is_err(), "`{text}` compiled but was refused: {e}");
            assert_clean(&e, text, Input::Filter);
        }
        Err(e) => panic!("`{text}` failed in the index: {e}"),
    }
}

/// The runs of `selection` (`ids`, every one, its tests reading the keys'
/// indexes of values) are those a page as long as the index gives (its
/// tests looking the keys up run by run), in the same order, and as many
/// as its count.
fn assert_same_runs_both_ways(conn: &Connection, selection: &Selection, ids: &[i64]) {
    let text = selection.filter.as_deref().unwrap_or_default();
    let page = Selection {
        limit: Some(RUNS.len()),
        ..selection.clone()
    };
    let paged = crate::select::page_ids(conn, &page)
        .unwrap_or_else(|e| panic!("`{text}` failed as a page: {e}"));
    assert_eq!(paged, ids, "`{text}`: a page and the whole list differ");
    let counted = crate::select::count(conn, selection)
        .unwrap_or_else(|e| panic!("`{text}` failed to count: {e}"));
    assert_eq!(
        counted,
        ids.len(),
        "`{text}`: the count and the list differ"
    );
}

fn check_sort(conn: &Connection, text: &str) {
    let key = match parse_sort(text) {
        Ok(key) => key,
        Err(e) => return assert_clean(&e, text, Input::SortKey),
    };
    let printed = key.to_string();
    match parse_sort(&printed) {
        Ok(back) => assert_eq!(back, key, "`{text}` printed as `{printed}`"),
        Err(e) => panic!("`{text}` printed as `{printed}`, which does not parse: {e}"),
    }
    let catalog = crate::select::catalog(conn).unwrap_or_else(|e| panic!("{e}"));
    let compiled = compile_sort(&key, &catalog, text);
    if let Err(e) = &compiled {
        assert_clean(e, text, Input::SortKey);
    }
    let selection = Selection {
        sort: vec![text.to_owned()],
        ..Selection::default()
    };
    match crate::select::select_ids(conn, &selection) {
        Ok(ids) => {
            assert!(compiled.is_ok(), "`{text}` failed to compile but ran");
            assert_eq!(ids.len(), RUNS.len(), "sorting `{text}` lost runs");
        }
        Err(Error::Query(e)) => {
            assert!(compiled.is_err(), "`{text}` compiled but was refused: {e}");
            assert_clean(&e, text, Input::SortKey);
        }
        Err(e) => panic!("sorting by `{text}` failed in the index: {e}"),
    }
}

/// A clean error: about `text` as `input`, pointing inside it, and shown
/// with its caret.
fn assert_clean(e: &QueryError, text: &str, input: Input) {
    assert_eq!(e.query, text);
    assert_eq!(e.input, input, "{e}");
    assert!(e.offset <= text.len(), "{e:?}");
    assert!(text.is_char_boundary(e.offset), "{e:?}");
    assert!(!e.message.is_empty());
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("bad {}: ", input.noun())),
        "{shown}"
    );
    assert!(shown.contains('^'), "{shown}");
}

/// id, experiment, status, depth, optimizer, acc (`None`: NaN, kept as missing).
type Run = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    Option<f64>,
);

const RUNS: [Run; 3] = [
    (
        "0123456789abcdef0123456789abcdef",
        "iris",
        "finished",
        1,
        "adam",
        Some(0.5),
    ),
    (
        "1123456789abcdef0123456789abcdef",
        "iris",
        "failed",
        2,
        "sgd",
        Some(0.9),
    ),
    (
        "2123456789abcdef0123456789abcdef",
        "mnist",
        "running",
        3,
        "[64, 32]",
        None,
    ),
];

/// An index in memory with the real schema and three small runs. Some names
/// are in two scopes (`score`), some are also words a query might mean as
/// strings (`adam`, `finished`), some need backticks (`val loss`).
fn index() -> Result<Connection, Error> {
    let conn = Connection::open_in_memory()?;
    crate::schema::migrate(&conn)?;
    for (i, (id, experiment, status, depth, optimizer, acc)) in RUNS.into_iter().enumerate() {
        let start = 1_800_000_000_000_000_000 + i as i64 * 1_000_000_000;
        let end = (status != "running").then_some(start + 60_000_000_000);
        conn.execute(
            "INSERT INTO runs (id, short_id, experiment, status, start_nanos, end_nanos, source,
             user, host, python_version, git_commit, journal_offset, complete)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'train.py', 'ada', 'node-1', '3.12.1', 'abc123', 0, 1)",
            rusqlite::params![id, &id[..8], experiment, status, start, end],
        )?;
        let rid = conn.last_insert_rowid();
        let params: [(&str, String, Option<f64>); 5] = [
            ("depth", depth.to_string(), Some(depth as f64)),
            ("optimizer", optimizer.to_owned(), None),
            ("score", "1".to_owned(), Some(1.0)),
            ("a.b", "x".repeat(2000), None),
            (
                "flag",
                (i == 0).to_string(),
                Some(f64::from(u8::from(i == 0))),
            ),
        ];
        for (key, text, num) in params {
            if i == 2 && key == "depth" {
                // A key a run does not have at all.
                continue;
            }
            conn.execute(
                "INSERT INTO params (run, key, seq, value, text, num) VALUES (?1, ?2, 0, x'', ?3, ?4)",
                rusqlite::params![rid, key, text, num],
            )?;
        }
        let metrics = [
            ("acc", acc),
            ("val loss", Some(1.0 / (i as f64 + 1.0))),
            ("adam", Some(i as f64)),
            ("finished", Some(0.0)),
            ("score", Some(f64::INFINITY)),
        ];
        for (key, last) in metrics {
            conn.execute(
                "INSERT INTO metrics (run, key, seq, last, last_bits, last_step, min, max, count)
                 VALUES (?1, ?2, 0, ?3, NULL, 0, ?3, ?3, 1)",
                rusqlite::params![rid, key, last],
            )?;
        }
        conn.execute(
            "INSERT INTO tags (run, key, value) VALUES (?1, 'team', ?2)",
            rusqlite::params![rid, if i == 2 { "vision" } else { "tabular" }],
        )?;
    }
    conn.execute_batch(
        "INSERT OR IGNORE INTO names SELECT DISTINCT 'metrics', key FROM metrics;
         INSERT OR IGNORE INTO names SELECT DISTINCT 'params', key FROM params;
         INSERT OR IGNORE INTO names SELECT DISTINCT 'tags', key FROM tags;",
    )?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the fuzz target's corpus, through the fuzz target's checks.
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/query");
        let mut files = 0;
        for entry in fs_err::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = fs_err::read(&path).unwrap();
            // The target tries only UTF-8, as every caller's query is text.
            if let Ok(text) = std::str::from_utf8(&data) {
                check(text);
            }
            files += 1;
        }
        assert!(files >= 20, "only {files} files in {}", dir.display());
    }

    #[test]
    fn the_fixed_index_answers_plain_queries() {
        INDEX.with(|conn| {
            let ids = |filter: &str| {
                crate::select::select_ids(
                    conn,
                    &Selection {
                        filter: Some(filter.to_owned()),
                        ..Selection::default()
                    },
                )
                .unwrap()
                .len()
            };
            assert_eq!(ids("acc > 0.6"), 1);
            assert_eq!(ids("status = failed"), 1);
            // `finished` is also a metric here: quotes make it the string.
            assert_eq!(ids("status = 'finished'"), 1);
            assert_eq!(ids("optimizer in (adam, sgd)"), 2);
            assert_eq!(ids("metrics.score = 1e999 and params.score = 1"), 3);
        });
        // Numeric tests of metrics and params, whichever way they are read
        // (`acc` is NaN in one run, a row without a value; `depth` has no
        // row at all in that run; `flag` is a bool).
        for filter in [
            "acc > 0.6",
            "acc <= 0.5",
            "acc != 0.5",
            "not acc > 0.6",
            "not (acc != 0.5)",
            "acc > 0.6 or depth >= 3",
            "not (acc < 1 and depth != 2)",
            "depth = 2",
            "params.score < 2 and metrics.score > 1",
            "flag = true",
            "not flag = false",
            "optimizer = 'adam' or acc = 0.9",
            "acc = null or acc < 0.6",
        ] {
            check(filter);
        }
        check("experiment = adam");
        check("((a");
    }
}
