//! API tests: a store built with `lab_sdk`, requests through the router
//! without a socket, and one test over a real socket for live events.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lab_sdk::{EnvRequest, Run, StartOptions};
use lab_server::{AppState, Options, router};
use lab_store::Project;
use lab_types::{ErrorInfo, Status, Value};
use serde_json::Value as J;
use tower::ServiceExt;

mod media;
mod query;
mod views;

/// Runs end one test at a time (`wait_for_background` joins them all).
static SDK: Mutex<()> = Mutex::new(());

const XSS: &str = "<img src=x onerror=alert(1)>";

fn start(project: &Project, experiment: &str) -> Arc<Run> {
    Run::start(
        project,
        StartOptions {
            experiment: experiment.into(),
            attrs: vec![
                ("source".into(), Value::Str("train.py".into())),
                ("user".into(), Value::Str("ada".into())),
            ],
            env: EnvRequest::default(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Three runs: two finished with params and metrics and an XSS param (the
/// second with an artifact folder and a 16-byte model), one failed.
fn project() -> (tempfile::TempDir, Project, Vec<String>) {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    let mut ids = Vec::new();
    for (i, acc) in [0.5, 0.9].into_iter().enumerate() {
        let run = start(&project, "iris");
        run.log_param("n_estimators", Value::Int(10 * (i as i64 + 1)))
            .unwrap();
        run.log_param("label", Value::Str(XSS.into())).unwrap();
        for step in 0..1000 {
            let spike = if step == 777 { 50.0 } else { 0.0 };
            run.log_metric(
                "loss",
                1.0 / f64::from(step + 1) + spike,
                Some(i64::from(step)),
            )
            .unwrap();
        }
        run.log_metric("accuracy", acc, None).unwrap();
        if i == 1 {
            let src = dir.path().join("plots");
            std::fs::create_dir_all(src.join("sub")).unwrap();
            std::fs::write(src.join("notes.txt"), "0123456789").unwrap();
            std::fs::write(src.join("page.html"), "<script>alert(1)</script>").unwrap();
            std::fs::write(src.join("sub/data.csv"), "a,b\n1,2\n").unwrap();
            run.log_artifact("plots", &src).unwrap();
            let model = run.models_dir().unwrap().join("model.tmp");
            std::fs::write(&model, "0123456789abcdef").unwrap();
            run.add_model("model", &model, "joblib", "Forest", "sklearn", "1.0")
                .unwrap();
        }
        run.end(Status::Finished, None).unwrap();
        ids.push(run.id().to_string());
    }
    let failed = start(&project, "other");
    failed.log_param("n_estimators", Value::Int(5)).unwrap();
    failed
        .end(
            Status::Failed,
            Some(ErrorInfo {
                kind: "NameError".into(),
                message: "name 'RandomForestClassifer' is not defined".into(),
                traceback: "Traceback (most recent call last):\n...".into(),
            }),
        )
        .unwrap();
    ids.push(failed.id().to_string());
    let failures = lab_sdk::wait_for_background();
    assert!(failures.is_empty(), "{failures:?}");
    (dir, project, ids)
}

fn state(project: &Project, token: Option<&str>) -> AppState {
    let mut options = Options::new(project.clone());
    options.token = token.map(str::to_owned);
    options.poll_interval = Duration::from_millis(50);
    AppState::new(options).unwrap()
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> J {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

/// Sends `request` through the router, with `Host: 127.0.0.1:5050` unless
/// it names a host itself (as every HTTP/1.1 client does).
async fn send(state: &AppState, mut request: Request<Body>) -> Reply {
    if !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, "127.0.0.1:5050".parse().unwrap());
    }
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(state: &AppState, uri: &str) -> Reply {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn error_code(reply: &Reply) -> String {
    reply.json()["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn lists_filters_sorts_and_pages() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);

    let all = get(&s, "/api/v1/runs").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(
        all.header("server-timing").starts_with("app;dur="),
        "the server reports its time"
    );
    let body = all.json();
    assert_eq!(body["total"], 3, "{body}");
    assert_eq!(body["runs"].as_array().unwrap().len(), 3);
    assert_eq!(
        body["names"]["metrics"],
        serde_json::json!(["accuracy", "loss"])
    );
    // Newest first by default.
    assert_eq!(body["runs"][0]["id"], ids[2].as_str());
    assert_eq!(body["runs"][0]["status"], "failed");

    let sorted = get(&s, "/api/v1/runs?sort=-accuracy&where=accuracy%20%3E%200.1")
        .await
        .json();
    let got: Vec<&str> = sorted["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(sorted["runs"][0]["metrics"]["accuracy"], 0.9);
    assert_eq!(
        sorted["runs"][0]["params"]["label"], XSS,
        "values come back as text, unchanged"
    );

    let page = get(&s, "/api/v1/runs?sort=n_estimators&limit=1&offset=1")
        .await
        .json();
    assert_eq!(page["total"], 3);
    assert_eq!(page["offset"], 1);
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    assert_eq!(page["runs"][0]["params"]["n_estimators"], 10);

    let only = get(&s, "/api/v1/runs?status=failed&columns=params.n_estimators")
        .await
        .json();
    assert_eq!(only["total"], 1);
    assert_eq!(
        only["runs"][0]["params"],
        serde_json::json!({"n_estimators": 5})
    );
    assert_eq!(only["runs"][0]["metrics"], serde_json::json!({}));

    let exp = get(&s, "/api/v1/runs?experiment=other").await.json();
    assert_eq!(exp["total"], 1);
}

#[tokio::test]
async fn pages_follow_their_next_cursor_through_the_whole_listing() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    for sort in ["", "-accuracy", "n_estimators"] {
        let whole = get(&s, &format!("/api/v1/runs?sort={sort}")).await.json();
        assert!(whole["next"].is_null(), "one page holds them all: {whole}");
        let want: Vec<String> = whole["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(want.len(), ids.len());
        let mut got = Vec::new();
        let mut uri = format!("/api/v1/runs?sort={sort}&limit=2");
        loop {
            let page = get(&s, &uri).await.json();
            assert_eq!(page["total"], 3, "the total counts every run: {page}");
            for run in page["runs"].as_array().unwrap() {
                got.push(run["id"].as_str().unwrap().to_owned());
            }
            match page["next"].as_str() {
                Some(next) => uri = format!("/api/v1/runs?sort={sort}&limit=2&after={next}"),
                None => break,
            }
            assert!(got.len() <= ids.len(), "pages repeat: {got:?}");
        }
        assert_eq!(got, want, "sort `{sort}`");
    }
    let first = get(&s, "/api/v1/runs?sort=-accuracy&limit=1").await.json();
    let next = first["next"].as_str().unwrap();
    for uri in [
        format!("/api/v1/runs?sort=name&after={next}"),
        "/api/v1/runs?after=not-a-cursor".to_owned(),
    ] {
        let bad = get(&s, &uri).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{uri}");
        let body = bad.json();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("`after` must be the `next` cursor"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_json_error_naming_it() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let bad = get(&s, "/api/v1/runs?where=accuracy%20%3E%20and").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let body = bad.json();
    assert_eq!(body["error"]["code"], "bad_query");
    assert_eq!(body["error"]["offset"], 11, "{body}");
    assert_eq!(body["error"]["param"], "where", "{body}");
    let bad_sort = get(&s, "/api/v1/runs?where=accuracy%20%3E%200&sort=-acurracy")
        .await
        .json();
    assert_eq!(bad_sort["error"]["code"], "bad_query");
    assert_eq!(bad_sort["error"]["param"], "sort", "{bad_sort}");
    assert_eq!(
        bad_sort["error"]["offset"], 1,
        "the offset is within the sort key: {bad_sort}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected")
    );

    let unknown = get(&s, "/api/v1/runs?where=acuracy%20%3E%201").await.json();
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`accuracy`"),
        "{unknown}"
    );
    // The suggestions also come as a list, for a page to offer them.
    assert_eq!(
        unknown["error"]["suggestions"],
        serde_json::json!(["accuracy"]),
        "{unknown}"
    );
    assert!(
        body["error"].get("suggestions").is_none(),
        "no empty list when there is nothing to suggest: {body}"
    );

    for (uri, needle) in [
        ("/api/v1/runs?limit=-1", "`limit`"),
        ("/api/v1/runs?limit=abc", "`limit`"),
        ("/api/v1/runs?status=done", "`status`"),
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(error_code(&r), "bad_request");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{uri}: {}",
            r.json()
        );
    } // What cannot be an id prefix is looked up as a name.
    let r = get(&s, "/api/v1/runs/zz").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no run is named `zz`"),
        "{}",
        r.json()
    );

    let missing = get(&s, "/api/v1/runs/abcdef12").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "not_found");
    let no_route = get(&s, "/api/v1/nothing").await;
    assert_eq!(no_route.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&no_route), "not_found");
    let no_method = send(
        &s,
        Request::put("/api/v1/runs").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(no_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&no_method), "method_not_allowed");
    assert_eq!(no_method.header("allow"), "GET,HEAD");
}

#[tokio::test]
async fn a_url_that_is_not_utf8_is_a_json_error_naming_the_part() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let id = &ids[1];
    for (method, uri, needle) in [
        ("GET", "/api/v1/runs/%FF".to_owned(), "`id`"),
        ("GET", "/api/v1/runs/%C3%28".to_owned(), "`id`"),
        ("DELETE", "/api/v1/runs/%FF".to_owned(), "`id`"),
        ("GET", "/api/v1/runs/%FF/metrics/loss".to_owned(), "`id`"),
        ("GET", format!("/api/v1/runs/{id}/metrics/%C3%28"), "`name`"),
        ("GET", "/api/v1/runs/%FF/artifacts".to_owned(), "`id`"),
        ("GET", format!("/api/v1/runs/{id}/artifacts/%FF"), "`path`"),
        (
            "GET",
            format!("/api/v1/runs/{id}/artifacts/plots/a%C3%28.txt"),
            "`path`",
        ),
        ("GET", format!("/api/v1/runs/{id}/models/%FF"), "`name`"),
        (
            "GET",
            "/api/v1/runs?experiment=%FF".to_owned(),
            "`experiment`",
        ),
        (
            "GET",
            "/api/v1/runs?where=a%20%3D%20%C3%28".to_owned(),
            "`where`",
        ),
        ("GET", "/api/v1/runs?sort=%FF".to_owned(), "`sort`"),
        ("GET", "/api/v1/runs?limit=1&%FF=1".to_owned(), "parameter"),
        (
            "GET",
            format!("/api/v1/runs/{id}/metrics/loss?x=%FF"),
            "`x`",
        ),
    ] {
        let r = send(
            &s,
            Request::builder()
                .method(method)
                .uri(&uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {uri}");
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{method} {uri}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(error_code(&r), "bad_request", "{method} {uri}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(needle) && message.contains("UTF-8"),
            "{method} {uri}: {message}"
        );
    }
    // Percent-encoded text that is UTF-8 still works, in the path and the query.
    let fine = get(&s, "/api/v1/runs?experiment=%C3%A9t%C3%A9+2").await;
    assert_eq!(fine.status, StatusCode::OK);
    assert_eq!(fine.json()["total"], 0);
    let plus = get(&s, "/api/v1/runs?where=accuracy+%3E+0.6").await;
    assert_eq!(plus.json()["total"], 1, "`+` is a space in a query");
}

#[tokio::test]
async fn one_run_has_everything() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let run = get(&s, &format!("/api/v1/runs/{}", &ids[2][..8]))
        .await
        .json();
    assert_eq!(run["id"], ids[2].as_str());
    assert_eq!(run["error"]["type"], "NameError");
    assert!(
        run["error"]["traceback"]
            .as_str()
            .unwrap()
            .starts_with("Traceback")
    );
    assert_eq!(run["source"], "train.py");
    let good = get(&s, &format!("/api/v1/runs/{}", ids[1])).await.json();
    let loss = good["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "loss")
        .unwrap()
        .clone();
    assert_eq!(loss["count"], 1000);
    assert_eq!(loss["last_step"], 999);
    assert_eq!(good["artifacts"][0]["name"], "plots");
    assert_eq!(good["error"], J::Null);
}

#[tokio::test]
async fn series_on_wall_clock_or_another_metric_mark_nan_and_infinities() {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    let id = {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        let run = start(&project, "iris");
        for step in 0..10_i32 {
            let loss = match step {
                3 => f64::NAN,
                5 => f64::INFINITY,
                7 => f64::NEG_INFINITY,
                _ => f64::from(step),
            };
            run.log_metric("loss", loss, Some(i64::from(step))).unwrap();
            if step % 2 == 0 {
                run.log_metric(
                    "accuracy",
                    f64::from(10 - step) / 10.0,
                    Some(i64::from(step)),
                )
                .unwrap();
            }
        }
        run.end(Status::Finished, None).unwrap();
        run.id().to_string()
    };
    let s = state(&project, None);
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    let step = get(&s, &format!("/api/v1/runs/{id}/metrics/loss"))
        .await
        .json();
    assert_eq!(step["x_axis"], "step");
    assert_eq!(step["y"][3], J::Null, "old clients still see null");
    assert_eq!(
        step["nonfinite"],
        serde_json::json!([
            {"x": 3.0, "value": "NaN"},
            {"x": 5.0, "value": "Infinity"},
            {"x": 7.0, "value": "-Infinity"},
        ])
    );

    let wall = get(&s, &format!("/api/v1/runs/{id}/metrics/loss?x=wall"))
        .await
        .json();
    assert_eq!(wall["x_axis"], "wall");
    let first = wall["x"][0].as_f64().unwrap();
    assert!(
        (first - now_secs).abs() < 120.0,
        "{first} is a Unix time near {now_secs}"
    );

    let against = get(
        &s,
        &format!("/api/v1/runs/{id}/metrics/loss?x=metrics.accuracy"),
    )
    .await;
    assert_eq!(against.status, StatusCode::OK);
    let against = against.json();
    assert_eq!(against["x_axis"], "metrics.accuracy");
    // Steps 0, 2, 4, 6, 8 have both; x is accuracy, in order.
    assert_eq!(against["x"], serde_json::json!([0.2, 0.4, 0.6, 0.8, 1.0]));
    assert_eq!(against["y"], serde_json::json!([8.0, 6.0, 4.0, 2.0, 0.0]));

    let missing = get(
        &s,
        &format!("/api/v1/runs/{id}/metrics/loss?x=metrics.nope"),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`nope`")
    );
    let bad = get(&s, &format!("/api/v1/runs/{id}/metrics/loss?x=metrics.")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn series_are_downsampled_keeping_spikes() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let full = get(
        &s,
        &format!("/api/v1/runs/{}/metrics/loss?max_points=5000", ids[0]),
    )
    .await
    .json();
    assert_eq!(full["total"], 1000);
    assert_eq!(full["downsampled"], false);
    assert_eq!(full["x"].as_array().unwrap().len(), 1000);

    let small = get(
        &s,
        &format!("/api/v1/runs/{}/metrics/loss?max_points=100", ids[0]),
    )
    .await
    .json();
    assert_eq!(small["downsampled"], true);
    let ys: Vec<f64> = small["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(ys.len() <= 100);
    assert!(
        ys.iter().any(|y| *y > 50.0),
        "the spike at step 777 survives"
    );

    let zoom = get(
        &s,
        &format!("/api/v1/runs/{}/metrics/loss?from=100&to=199", ids[0]),
    )
    .await
    .json();
    assert_eq!(zoom["total"], 100);
    assert_eq!(zoom["x"][0], 100.0);

    let time = get(
        &s,
        &format!("/api/v1/runs/{}/metrics/loss?x=time&max_points=10", ids[0]),
    )
    .await
    .json();
    assert_eq!(time["x_axis"], "time");
    assert!(time["x"][0].as_f64().unwrap() >= 0.0);

    let missing = get(&s, &format!("/api/v1/runs/{}/metrics/nope", ids[0])).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = get(&s, &format!("/api/v1/runs/{}/metrics/loss?x=depth", ids[0])).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`x`")
    );
}

#[tokio::test]
async fn artifacts_are_listed_and_served_safely() {
    let (dir, project, ids) = project();
    let s = state(&project, None);
    let id = &ids[1];
    let list = get(&s, &format!("/api/v1/runs/{id}/artifacts"))
        .await
        .json();
    let paths: Vec<&str> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec!["plots/notes.txt", "plots/page.html", "plots/sub/data.csv"]
    );

    let text = get(&s, &format!("/api/v1/runs/{id}/artifacts/plots/notes.txt")).await;
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(text.body, b"0123456789");
    assert_eq!(text.header("x-content-type-options"), "nosniff");
    assert!(text.header("content-type").starts_with("text/plain"));
    assert_eq!(text.header("accept-ranges"), "bytes");

    let part = send(
        &s,
        Request::get(format!("/api/v1/runs/{id}/artifacts/plots/notes.txt"))
            .header(header::RANGE, "bytes=2-5")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, b"2345");
    assert_eq!(part.header("content-range"), "bytes 2-5/10");
    let outside = send(
        &s,
        Request::get(format!("/api/v1/runs/{id}/artifacts/plots/notes.txt"))
            .header(header::RANGE, "bytes=50-60")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(outside.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(error_code(&outside), "range_not_satisfiable");

    let html = get(&s, &format!("/api/v1/runs/{id}/artifacts/plots/page.html")).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.header("content-disposition").starts_with("attachment"));
    assert_eq!(html.header("content-type"), "application/octet-stream");
    assert!(html.header("content-security-policy").contains("sandbox"));

    // Leaving the run's folder, every way.
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    let run_dir = project.run_paths(&id[..8]).artifacts;
    std::os::unix::fs::symlink(
        dir.path().join("secret.txt"),
        run_dir.join("plots/link.txt"),
    )
    .unwrap();
    for path in [
        "..%2f..%2f..%2fsecret.txt",
        "%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "plots/..%2F..%2F..%2F..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
        "plots/link.txt",
    ] {
        let r = get(&s, &format!("/api/v1/runs/{id}/artifacts/{path}")).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(error_code(&r), "forbidden_path");
    }
    let listed = get(&s, &format!("/api/v1/runs/{id}/artifacts"))
        .await
        .json();
    assert!(
        !listed.to_string().contains("link.txt"),
        "a link leaving the run is not listed"
    );
    let missing = get(&s, &format!("/api/v1/runs/{id}/artifacts/plots/none.txt")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A GET of `uri` with `Range: range`.
async fn ranged(state: &AppState, uri: &str, range: &str) -> Reply {
    send(
        state,
        Request::get(uri)
            .header(header::RANGE, range)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_malformed_range_is_ignored_and_an_unsatisfiable_one_refused() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let id = &ids[1];
    for (uri, whole) in [
        (
            format!("/api/v1/runs/{id}/artifacts/plots/notes.txt"),
            &b"0123456789"[..],
        ),
        (
            format!("/api/v1/runs/{id}/models/model"),
            &b"0123456789abcdef"[..],
        ),
    ] {
        // RFC 9110: a server may ignore a Range it cannot parse, and must
        // ignore one in a unit it does not know; it sends the whole file.
        for range in [
            "bytes=abc",
            "bytes=",
            "bytes=-",
            "bytes=1-x",
            "bytes=x-3",
            "bytes=--1",
            "bytes=1--2",
            "bytes=9-3",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes 0-1",
            "items=0-1",
            "bytes=0-1,4-5",
            "",
        ] {
            let r = ranged(&s, &uri, range).await;
            assert_eq!(r.status, StatusCode::OK, "{uri} with `{range}`");
            assert_eq!(r.body, whole, "{uri} with `{range}`");
            assert_eq!(r.header("content-range"), "", "{uri} with `{range}`");
        }
        for (range, part) in [
            ("bytes=2-5", &whole[2..=5]),
            ("BYTES=-3", &whole[whole.len() - 3..]),
        ] {
            let r = ranged(&s, &uri, range).await;
            assert_eq!(
                r.status,
                StatusCode::PARTIAL_CONTENT,
                "{uri} with `{range}`"
            );
            assert_eq!(r.body, part, "{uri} with `{range}`");
        }
        // Well formed, but no byte of the file is in it.
        for range in [
            "bytes=50-60",
            "bytes=16-",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            let r = ranged(&s, &uri, range).await;
            assert_eq!(
                r.status,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "{uri} with `{range}`"
            );
            assert_eq!(error_code(&r), "range_not_satisfiable");
            assert_eq!(
                r.header("content-range"),
                format!("bytes */{}", whole.len()),
                "a refusal says how long the file is"
            );
        }
    }
}

/// A request as a browser sends it: `Host`, and `Origin` unless `None`.
fn browser(method: &str, uri: &str, host: &str, origin: Option<&str>) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, host);
    if let Some(o) = origin {
        r = r.header(header::ORIGIN, o);
    }
    r.body(Body::empty()).unwrap()
}

/// Names a hostile page could reach the server by once its DNS name points
/// at 127.0.0.1, and names of this machine.
const FOREIGN_HOSTS: [&str; 7] = [
    "evil.example:5050",
    "evil.example",
    "localhost.evil.example:5050",
    "LOCALHOST.evil.example",
    "127.0.0.1.nip.io:5050",
    "127.0.0.1.:5050",
    "0.0.0.0:5050",
];
const LOOPBACK_HOSTS: [&str; 7] = [
    "127.0.0.1:5050",
    "127.0.0.1",
    "127.42.0.7:5050",
    "localhost:5050",
    "LocalHost",
    "localhost.:5050",
    "[::1]:5050",
];

#[tokio::test]
async fn without_a_token_only_loopback_hosts_are_answered() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let script = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/dist/assets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "js")
        })
        .unwrap();
    let script = format!("/assets/{script}");
    for uri in ["/api/v1/runs", "/api/v1/names", "/", "/#/runs", &script] {
        for host in FOREIGN_HOSTS {
            let r = send(&s, browser("GET", uri, host, None)).await;
            assert_eq!(
                r.status,
                StatusCode::MISDIRECTED_REQUEST,
                "{uri} for {host}"
            );
            assert_eq!(error_code(&r), "bad_host", "{uri} for {host}");
            assert!(
                r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("not for `{host}`")),
                "{}",
                r.json()
            );
            assert_eq!(r.header("x-content-type-options"), "nosniff");
        }
        for host in LOOPBACK_HOSTS {
            let r = send(&s, browser("GET", uri, host, None)).await;
            assert_eq!(r.status, StatusCode::OK, "{uri} for {host}");
        }
    }
    // The hostile page's delete: refused, and the run stays.
    let target = format!("/api/v1/runs/{}", ids[0]);
    for host in FOREIGN_HOSTS {
        let origin = format!("http://{host}");
        let r = send(&s, browser("DELETE", &target, host, Some(&origin))).await;
        assert_eq!(
            r.status,
            StatusCode::MISDIRECTED_REQUEST,
            "DELETE for {host}"
        );
    }
    assert_eq!(get(&s, &target).await.status, StatusCode::OK);
    // An HTTP/1.1 request must say which host it is for.
    let mut bare = Request::get("/api/v1/runs").body(Body::empty()).unwrap();
    bare.headers_mut()
        .insert(header::HOST, "evil.example".parse().unwrap());
    bare.headers_mut().remove(header::HOST);
    let no_host = router(s.clone()).oneshot(bare).await.unwrap();
    assert_eq!(no_host.status(), StatusCode::BAD_REQUEST);
    // Started for other machines (`--host 0.0.0.0 --no-auth`): any name.
    let mut options = Options::new(project.clone());
    options.any_host = true;
    let open = AppState::new(options).unwrap();
    for host in FOREIGN_HOSTS {
        let r = send(&open, browser("GET", "/api/v1/runs", host, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn only_the_servers_own_page_may_delete() {
    let (_dir, project, ids) = project();
    let host = "127.0.0.1:5050";
    for token in [None, Some("0123456789abcdef0123")] {
        let s = state(&project, token);
        let with_token = |mut r: Request<Body>| {
            if let Some(t) = token {
                r.headers_mut().insert(
                    header::AUTHORIZATION,
                    format!("Bearer {t}").parse().unwrap(),
                );
            }
            r
        };
        let target = format!("/api/v1/runs/{}", ids[0]);
        for origin in [
            "http://evil.example",
            "http://evil.example:5050",
            "http://localhost:5050",
            "http://127.0.0.1:5051",
            "null",
        ] {
            for method in ["DELETE", "POST", "PUT", "PATCH"] {
                let r = send(&s, with_token(browser(method, &target, host, Some(origin)))).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} from {origin}");
                assert_eq!(error_code(&r), "cross_origin");
                assert!(
                    r.json()["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("`{origin}`")),
                    "{}",
                    r.json()
                );
            }
        }
        for site in ["cross-site", "same-site"] {
            let mut r = with_token(browser("DELETE", &target, host, None));
            r.headers_mut()
                .insert("sec-fetch-site", site.parse().unwrap());
            let r = send(&s, r).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "from a {site} page");
        }
        // Reads from elsewhere are answered (the browser keeps them from
        // the page that asked).
        let read = send(
            &s,
            with_token(browser("GET", &target, host, Some("http://evil.example"))),
        )
        .await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.json()["id"], ids[0].as_str(), "nothing was deleted");
    }
    // The page's own delete, as a browser sends it.
    let s = state(&project, None);
    let mut own = browser(
        "DELETE",
        &format!("/api/v1/runs/{}", ids[0]),
        host,
        Some("http://127.0.0.1:5050"),
    );
    own.headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    assert_eq!(send(&s, own).await.status, StatusCode::NO_CONTENT);
    // And a client that is not a browser (no `Origin`).
    let plain = Request::delete(format!("/api/v1/runs/{}", ids[1]))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&s, plain).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_token_guards_the_api_but_not_the_page() {
    let (_dir, project, _) = project();
    let s = state(&project, Some("s3cret"));
    let denied = get(&s, "/api/v1/runs").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&denied), "unauthorized");
    let wrong = send(
        &s,
        Request::get("/api/v1/runs")
            .header(header::AUTHORIZATION, "Bearer nope")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = send(
        &s,
        Request::get("/api/v1/runs")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        get(&s, "/api/v1/runs?token=s3cret").await.status,
        StatusCode::OK
    );
    // A token in the query is decoded as the page encodes it.
    let b64 = state(&project, Some("0123456789+/abc=="));
    assert_eq!(
        get(&b64, "/api/v1/runs?token=0123456789%2B%2Fabc%3D%3D")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&b64, "/api/v1/runs?token=0123456789+/abc==")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "`+` in a query is a space"
    );
    // With a token any host name is answered: a page without it reads nothing.
    for host in FOREIGN_HOSTS {
        let r = send(&s, browser("GET", "/api/v1/runs", host, None)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{host}");
        let mut r = browser("GET", "/api/v1/runs", host, None);
        r.headers_mut()
            .insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert_eq!(send(&s, r).await.status, StatusCode::OK, "{host}");
        assert_eq!(
            send(&s, browser("GET", "/", host, None)).await.status,
            StatusCode::OK
        );
    }
    let page = get(&s, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    let csp = page.header("content-security-policy");
    let scripts = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap();
    assert_eq!(scripts, "script-src 'self'", "no inline script: {csp}");
}

#[tokio::test]
async fn deleting_removes_the_run_but_not_a_running_one() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let live = {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        start(&project, "live")
    };
    let refused = send(
        &s,
        Request::delete(format!("/api/v1/runs/{}", live.id()))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let gone = send(
        &s,
        Request::delete(format!("/api/v1/runs/{}", ids[0]))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&s, &format!("/api/v1/runs/{}", ids[0])).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!project.run_paths(&ids[0][..8]).dir.exists());
    assert_eq!(get(&s, "/api/v1/runs").await.json()["total"], 3);
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    live.end(Status::Finished, None).unwrap();
    lab_sdk::wait_for_background();
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let doc = get(&s, "/api/v1/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/runs",
        "/runs/{id}",
        "/runs/{id}/metrics/{name}",
        "/runs/{id}/artifacts",
        "/runs/{id}/artifacts/{path}",
        "/runs/{id}/models/{name}",
        "/names",
        "/events",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
}

/// Reads server-sent events from a real socket until `until` holds.
async fn read_events(port: u16, until: impl Fn(&str) -> bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    sock.write_all(
        b"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !until(&seen) {
        let n = tokio::time::timeout_at(deadline, sock.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no such event within 10 s; got:\n{seen}"))
            .unwrap();
        assert!(n > 0, "the stream closed; got:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_announce_runs_and_points() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lab_server::serve(listener, s, async {
        let _ = stop_rx.await;
    }));

    let reader = tokio::spawn(read_events(port, |t| {
        t.contains("event: metrics") && t.contains("event: run")
    }));
    // Give the stream a moment to subscribe before logging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let project2 = project.clone();
    let run = tokio::task::spawn_blocking(move || {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        let run = start(&project2, "live");
        for step in 0..20 {
            run.log_metric("loss", f64::from(step), Some(i64::from(step)))
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        run
    })
    .await
    .unwrap();
    let seen = reader.await.unwrap();
    assert!(seen.contains(&run.id().to_string()), "{seen}");
    assert!(seen.contains("\"names\":[\"loss\"]"), "{seen}");
    {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        run.end(Status::Finished, None).unwrap();
        lab_sdk::wait_for_background();
    }
    // Stopping ends open streams, so the server stops at once.
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops promptly")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_cached_query_sees_new_runs_and_removals() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let uri = "/api/v1/runs?where=n_estimators%20%3E%201&sort=-n_estimators&limit=1";
    let before = get(&s, uri).await.json();
    assert_eq!(before["total"], 3);
    {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        let run = start(&project, "iris");
        run.log_param("n_estimators", Value::Int(99)).unwrap();
        run.end(Status::Finished, None).unwrap();
        lab_sdk::wait_for_background();
    }
    let after = get(&s, uri).await.json();
    assert_eq!(after["total"], 4, "the new run is counted");
    assert_eq!(
        after["runs"][0]["params"]["n_estimators"], 99,
        "and sorted first"
    );
    let gone = send(
        &s,
        Request::delete(format!("/api/v1/runs/{}", ids[1]))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&s, uri).await.json()["total"], 3);
    let second = get(
        &s,
        "/api/v1/runs?where=n_estimators%20%3E%201&sort=-n_estimators&limit=1&offset=1",
    )
    .await
    .json();
    assert_eq!(
        second["runs"][0]["params"]["n_estimators"], 10,
        "paging reads the same order"
    );
}

#[tokio::test]
async fn a_live_runs_series_grows_between_requests() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let run = {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        start(&project, "live")
    };
    let uri = format!("/api/v1/runs/{}/metrics/loss", run.id());
    for (logged, step) in [(10, 0), (25, 10)] {
        for i in step..logged {
            run.log_metric("loss", f64::from(i), Some(i64::from(i)))
                .unwrap();
        }
        let got = get(&s, &uri).await.json();
        assert_eq!(
            got["total"], logged,
            "the chart sees every point logged so far: {got}"
        );
    }
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    run.end(Status::Finished, None).unwrap();
    lab_sdk::wait_for_background();
}

/// The ids, sorted, of the runs `/api/v1/runs` lists, and the total.
async fn listed(state: &AppState) -> (Vec<String>, u64) {
    let body = get(state, "/api/v1/runs?sort=n_estimators").await.json();
    let mut ids: Vec<String> = body["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    (ids, body["total"].as_u64().unwrap())
}

/// Changes made to the project behind the server's back: the first run's
/// folder removed, one new run. Returns the new run's id.
fn remove_one_run_and_add_one(project: &Project, gone: &str) -> String {
    std::fs::remove_dir_all(project.run_paths(&gone[..8]).dir).unwrap();
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let run = start(project, "iris");
    run.log_param("n_estimators", Value::Int(77)).unwrap();
    run.log_metric("loss", 0.5, Some(0)).unwrap();
    run.end(Status::Finished, None).unwrap();
    lab_sdk::wait_for_background();
    run.id().to_string()
}

/// The index files (the database and its WAL files) moved to `suffix`
/// names, or deleted when `suffix` is `None`.
fn move_index(project: &Project, suffix: Option<&str>) {
    let index = project.index_path().display().to_string();
    for part in ["", "-wal", "-shm"] {
        let from = format!("{index}{part}");
        if !std::path::Path::new(&from).exists() {
            continue;
        }
        match suffix {
            Some(s) => std::fs::rename(&from, format!("{index}{s}{part}")).unwrap(),
            None => std::fs::remove_file(&from).unwrap(),
        }
    }
}

/// The server reads a project, which changes behind its back while its
/// index is rebuilt by `rebuild`; afterwards it must list what the rebuilt
/// index holds, and drop what it kept from the old one.
async fn survives_a_rebuild(rebuild: impl FnOnce(&Project)) {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    // Fill the caches: the query's ids, a series, the pool's connections.
    let (before, total) = listed(&s).await;
    assert_eq!(total, 3);
    let loss = format!("/api/v1/runs/{}/metrics/loss", ids[1]);
    assert_eq!(get(&s, &loss).await.json()["total"], 1000);
    let added = remove_one_run_and_add_one(&project, &ids[0]);
    rebuild(&project);
    let mut want: Vec<String> = before.into_iter().filter(|i| *i != ids[0]).collect();
    want.push(added.clone());
    want.sort();
    for _ in 0..2 {
        let (now, total) = listed(&s).await;
        assert_eq!(now, want, "the listing is the rebuilt index's");
        assert_eq!(total, 3);
    }
    assert_eq!(
        get(&s, &format!("/api/v1/runs/{}", ids[0])).await.status,
        StatusCode::NOT_FOUND,
        "the removed run is gone"
    );
    assert_eq!(
        get(&s, &format!("/api/v1/runs/{added}")).await.json()["params"]["n_estimators"],
        77
    );
    assert_eq!(get(&s, &loss).await.json()["total"], 1000);
    let names = get(&s, "/api/v1/names").await.json();
    assert_eq!(names["metrics"], serde_json::json!(["accuracy", "loss"]));
    // Closing the connections to the old file left the new one's WAL files
    // alone (SQLite sees the old file moved, so it neither checkpoints nor
    // deletes them by name), so other processes share them.
    let index = project.index_path().display().to_string();
    for part in ["-wal", "-shm"] {
        assert!(
            std::path::Path::new(&format!("{index}{part}")).exists(),
            "{index}{part} is gone"
        );
    }
}

#[tokio::test]
async fn a_server_reads_an_index_rebuilt_into_a_new_file() {
    survives_a_rebuild(|project| {
        move_index(project, Some(".damaged"));
        let mut store = lab_store::Store::open(project.clone()).unwrap();
        store.refresh().unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_server_reads_an_index_deleted_under_it() {
    // Nobody rebuilds it: the server's next look does.
    survives_a_rebuild(|project| move_index(project, None)).await;
}

#[tokio::test]
async fn a_server_reads_an_index_rebuilt_by_reindex() {
    survives_a_rebuild(|project| {
        let mut store = lab_store::Store::open(project.clone()).unwrap();
        assert!(store.reindex().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_server_reads_an_index_whose_database_file_alone_was_deleted() {
    // Its `-wal` and `-shm` files stay: the new index must not share them
    // with a connection to the old one.
    survives_a_rebuild(|project| std::fs::remove_file(project.index_path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_while_the_index_is_replaced_all_succeed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..6 {
        let (s, stop, id) = (s.clone(), stop.clone(), ids[1].clone());
        clients.push(tokio::spawn(async move {
            let uris = [
                "/api/v1/runs?sort=-n_estimators".to_owned(),
                format!("/api/v1/runs/{id}"),
                format!("/api/v1/runs/{id}/metrics/loss?max_points={}", 10 + i),
                "/api/v1/names".to_owned(),
            ];
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                for uri in &uris {
                    let r = get(&s, uri).await;
                    assert_eq!(
                        r.status,
                        StatusCode::OK,
                        "{uri}: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    answered += 1;
                }
            }
            answered
        }));
    }
    let pause = || tokio::time::sleep(Duration::from_millis(150));
    pause().await;
    // The database file alone, then everything, moved away; then a new index
    // built beside the server.
    std::fs::remove_file(project.index_path()).unwrap();
    pause().await;
    move_index(&project, Some(".old"));
    pause().await;
    let p = project.clone();
    tokio::task::spawn_blocking(move || {
        move_index(&p, Some(".older"));
        lab_store::Store::open(p.clone())
            .unwrap()
            .refresh()
            .unwrap();
    })
    .await
    .unwrap();
    pause().await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert!(c.await.unwrap() > 0);
    }
    assert_eq!(listed(&s).await.1, 3);
}

fn patch(target: &str, body: &str) -> Request<Body> {
    Request::patch(target)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn a_run_is_renamed_tagged_and_noted_in_any_state() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let live = {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        start(&project, "live")
    };
    for id in [ids[0].clone(), ids[2].clone(), live.id().to_string()] {
        let target = format!("/api/v1/runs/{id}");
        let r = send(
            &s,
            patch(
                &target,
                r##"{"name": "baseline ü", "tags": {"stage": "final", "k": "v"}, "note": "# Why\n\n<b>x</b>"}"##,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
        let detail = r.json();
        assert_eq!(detail["name"], "baseline ü");
        assert_eq!(
            detail["tags"],
            serde_json::json!({"k": "v", "stage": "final"})
        );
        assert_eq!(detail["note"], "# Why\n\n<b>x</b>");
        let r = send(&s, patch(&target, r#"{"untag": ["k", "never-set"]}"#)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["tags"], serde_json::json!({"stage": "final"}));
        // The listing has the name.
        let listed = get(&s, "/api/v1/runs?limit=10").await.json();
        let row = listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(row["name"], "baseline ü");
    }
    let detail = get(&s, &format!("/api/v1/runs/{}", live.id())).await.json();
    assert_eq!(detail["status"], "running");
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    live.end(Status::Finished, None).unwrap();
    lab_sdk::wait_for_background();
}

#[tokio::test]
async fn a_bad_edit_is_a_400_naming_the_field_and_a_missing_run_a_404() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let target = format!("/api/v1/runs/{}", ids[1]);
    let long = "x".repeat(201);
    for (body, field, value) in [
        (r#"{"name": ""}"#.to_owned(), "`name`", "got ``"),
        (
            format!(r#"{{"name": "{long}"}}"#),
            "`name`",
            "at most 200 characters",
        ),
        (r#"{"tags": {"": "v"}}"#.to_owned(), "`tags`", "tag key"),
        (r#"{"tags": {"k": 3}}"#.to_owned(), "`tags`", "invalid type"),
        (
            r#"{"nmae": "x"}"#.to_owned(),
            "`name`",
            "unknown field `nmae`",
        ),
        ("not json".to_owned(), "JSON object", "expected"),
    ] {
        let r = send(&s, patch(&target, &body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(field), "{body}: {message}");
        assert!(message.contains(value), "{body}: {message}");
    }
    let before = get(&s, &target).await.json();
    assert_eq!(
        before["name"],
        lab_types::names::generated_name(&ids[1][..8]).unwrap()
    );
    assert!(!project.run_paths(&ids[1][..8]).meta.exists());
    let r = send(&s, patch("/api/v1/runs/ffffffff", r#"{"name": "x"}"#)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_is_announced_to_open_pages() {
    let (_dir, project, ids) = project();
    let s = state(&project, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lab_server::serve(listener, s.clone(), async {
        let _ = stop_rx.await;
    }));
    let reader = tokio::spawn(read_events(port, |t| t.contains("renamed-by-patch")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = send(
        &s,
        patch(
            &format!("/api/v1/runs/{}", ids[0]),
            r#"{"name": "renamed-by-patch"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let seen = reader.await.unwrap();
    assert!(seen.contains("event: run"), "{seen}");
    assert!(seen.contains(&ids[0]), "{seen}");
    // An edit made by another process (`lab rename`) is announced by the
    // watcher's next look.
    let reader = tokio::spawn(read_events(port, |t| t.contains("renamed-elsewhere")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut other = lab_store::Store::open(project.clone()).unwrap();
    other.refresh().unwrap();
    other
        .edit(
            &ids[1],
            &lab_store::Edit {
                name: Some("renamed-elsewhere".into()),
                ..lab_store::Edit::default()
            },
        )
        .unwrap();
    let seen = reader.await.unwrap();
    assert!(seen.contains(&ids[1]), "{seen}");
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops promptly")
        .unwrap()
        .unwrap();
}
