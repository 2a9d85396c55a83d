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

mod query;

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
        },
    )
    .unwrap()
}

/// Three runs: two finished with params and metrics (one with an artifact
/// folder, a model-like file and an XSS param), one failed.
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

async fn send(state: &AppState, request: Request<Body>) -> Reply {
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
    assert_eq!(body["total"], 3);
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

    for (uri, needle) in [
        ("/api/v1/runs?limit=-1", "`limit`"),
        ("/api/v1/runs?limit=abc", "`limit`"),
        ("/api/v1/runs?status=done", "`status`"),
        ("/api/v1/runs/zz", "zz"),
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
    }
    let missing = get(&s, "/api/v1/runs/abcdef12").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "not_found");
    let no_route = get(&s, "/api/v1/nothing").await;
    assert_eq!(no_route.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&no_route), "not_found");
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
