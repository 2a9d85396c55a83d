//! Hostile `where` and `sort` values: each is a 400 `bad_query` pointing at
//! the bad token, or a right answer; never a crash or an internal error.
//! A request's URI holds at most 64 KiB, so these are the largest of each
//! kind that fit in one; the store's tests try larger ones.

use std::fmt::Write as _;

use axum::http::StatusCode;

use super::{get, project, state};

/// `s` as a query-string value, as short as it can be.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b == b' ' {
            out.push('+');
        } else if b.is_ascii_alphanumeric() || b"-_.~()',*!".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

async fn runs(s: &lab_server::AppState, params: &str) -> (StatusCode, serde_json::Value) {
    let reply = get(s, &format!("/api/v1/runs?{params}")).await;
    (reply.status, reply.json())
}

async fn bad_where(s: &lab_server::AppState, filter: &str) -> serde_json::Value {
    let (status, body) = runs(s, &format!("where={}", encode(filter))).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        &filter[..filter.len().min(80)]
    );
    assert_eq!(body["error"]["code"], "bad_query", "{body}");
    assert_eq!(body["error"]["param"], "where", "{body}");
    body["error"].clone()
}

#[tokio::test]
async fn deep_nesting_is_a_bad_query_not_a_crash() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    for levels in [1_500, 10_000] {
        let filter = format!("{}accuracy > 0.1{}", "(".repeat(levels), ")".repeat(levels));
        let error = bad_where(&s, &filter).await;
        assert_eq!(
            (error["offset"].as_u64(), error["length"].as_u64()),
            (Some(100), Some(1))
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("deeper than 100 levels"), "{message}");
    }
    let error = bad_where(&s, &format!("{}accuracy > 0.1", "not ".repeat(10_000))).await;
    assert_eq!(error["offset"], 400);
}

#[tokio::test]
async fn long_chains_are_a_bad_query_naming_the_limit() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    // 2500 terms: SQLite would refuse `a AND b AND ...` past 1000.
    for (op, term) in [("and", "accuracy>0.1"), ("or", "not accuracy>0.1")] {
        let filter = vec![term; 2500].join(&format!(" {op} "));
        let error = bad_where(&s, &filter).await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("more than 1000 comparisons"), "{message}");
        assert!(message.contains("name in (1, 2, 3)"), "the hint: {message}");
    }
    let filter = vec!["accuracy > 0.1"; 1000].join(" or ");
    let (status, body) = runs(&s, &format!("where={}", encode(&filter))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2);
}

#[tokio::test]
async fn a_long_in_list_answers_right() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let list = format!("{}10", "1,".repeat(30_000));
    let (status, body) = runs(
        &s,
        &format!("where={}", encode(&format!("n_estimators in ({list})"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    let filter = format!("n_estimators not in ({list})");
    let (_, body) = runs(&s, &format!("where={}", encode(&filter))).await;
    assert_eq!(body["total"], 2);
}

#[tokio::test]
async fn a_huge_glob_is_a_bad_query_naming_the_limit() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    // Over SQLite's own limit of 50,000 bytes.
    let error = bad_where(&s, &format!("experiment ~ '{}*'", "x".repeat(60_000))).await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("at most 1000 bytes"), "{message}");
    assert_eq!(error["offset"], 13);
}

#[tokio::test]
async fn bare_words_on_the_right_are_strings() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    // The runs page's placeholder, and the example in docs/http-api.md.
    for (filter, total) in [
        ("accuracy > 0.9 and status = finished", 0),
        ("accuracy > 0.1 and status = finished", 2),
        ("experiment = other", 1),
        ("status in (failed, crashed)", 1),
    ] {
        let (status, body) = runs(&s, &format!("where={}", encode(filter))).await;
        assert_eq!(status, StatusCode::OK, "{filter}: {body}");
        assert_eq!(body["total"], total, "{filter}");
    }
    // A word that names a metric is the metric, and a text field with it fails.
    let error = bad_where(&s, "experiment = accuracy").await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.ends_with("; strings take quotes ('accuracy')"),
        "{message}"
    );
    assert_eq!(error["offset"], 13);
}

#[tokio::test]
async fn bad_sort_keys_say_so() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let (status, body) = runs(&s, "sort=accuracy,-acurracy").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error = &body["error"];
    assert_eq!(error["code"], "bad_query");
    assert_eq!(error["param"], "sort");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("bad sort key: no run has"), "{message}");
    assert_eq!(
        (error["offset"].as_u64(), error["length"].as_u64()),
        (Some(1), Some(8))
    );
    let keys = vec!["accuracy"; 5000].join(",");
    let (status, body) = runs(&s, &format!("sort={keys}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("more than 100 sort keys"), "{message}");
    // The same text as filter and as sort key: the filter is the bad one
    // (a word alone is a search, so the text has a sign).
    let (_, body) = runs(&s, "where=-accuracy&sort=-accuracy").await;
    assert_eq!(body["error"]["param"], "where", "{body}");
}
