//! Saved views: `/api/v1/views[/{name}]` saves, lists, reads and deletes
//! them in the project, refuses bad names and bodies naming them, and
//! takes a write only from the server's own page.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::{browser, error_code, get, project, send, state};

fn put(name: &str, body: &str) -> Request<Body> {
    Request::put(format!("/api/v1/views/{name}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn views_are_saved_listed_read_and_deleted() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    let empty = get(&s, "/api/v1/views").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.json(), serde_json::json!({"views": []}));

    let state_text = "/?where=accuracy%20%3E%200.5&cols=accuracy,n_estimators&sort=-accuracy";
    let saved = send(
        &s,
        put(
            "good-runs",
            &serde_json::json!({ "state": state_text }).to_string(),
        ),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.json());
    assert_eq!(saved.json()["name"], "good-runs");
    assert_eq!(saved.json()["state"], state_text);
    assert!(saved.json()["updated"].as_str().unwrap().ends_with('Z'));
    assert!(project.store_dir().join("views/good-runs.json").is_file());

    let again = send(&s, put("good-runs", r#"{"state": "/?sort=id"}"#)).await;
    assert_eq!(again.status, StatusCode::OK);
    send(&s, put("all.v2", r#"{"state": "/"}"#)).await;
    let list = get(&s, "/api/v1/views").await.json();
    let names: Vec<&str> = list["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["all.v2", "good-runs"]);
    let one = get(&s, "/api/v1/views/good-runs").await;
    assert_eq!(one.json()["state"], "/?sort=id", "replaced");

    let gone = send(
        &s,
        Request::delete("/api/v1/views/good-runs")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = get(&s, "/api/v1/views/good-runs").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`good-runs`")
    );
    let twice = send(
        &s,
        Request::delete("/api/v1/views/good-runs")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_names_and_bodies_are_refused_naming_them() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    send(&s, put("keep", r#"{"state": "/?sort=id"}"#)).await;
    let long = "a".repeat(101);
    for (name, body, needle) in [
        (".hidden", r#"{"state": "/"}"#, "`.hidden`"),
        ("a%20b", r#"{"state": "/"}"#, "`a b`"),
        ("..%2Fkeep", r#"{"state": "/"}"#, "`../keep`"),
        (long.as_str(), r#"{"state": "/"}"#, "1 to 100"),
        ("keep", "not json", "not JSON"),
        ("keep", "[1, 2]", "no `state`"),
        ("keep", r#"{"where": "/"}"#, "no `state`"),
        ("keep", r#"{"state": 42}"#, "`state` must be a string"),
        (
            "keep",
            r#"{"state": "https://evil.example/"}"#,
            "starting with `/`",
        ),
        ("keep", r#"{"state": "/\u0007"}"#, "control characters"),
    ] {
        let r = send(&s, put(name, body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name} {body}");
        assert_eq!(error_code(&r), "bad_request");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{needle} in {message}");
    }
    let huge = format!(r#"{{"state": "/?where={}"}}"#, "x".repeat(20_000));
    let r = send(&s, put("keep", &huge)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16384")
    );
    assert_eq!(
        get(&s, "/api/v1/views/keep").await.json()["state"],
        "/?sort=id",
        "the view is left as it was"
    );
    assert_eq!(
        get(&s, "/api/v1/views/.hidden").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn only_the_servers_own_page_may_save_or_delete_a_view() {
    let (_dir, project, _) = project();
    let s = state(&project, None);
    send(&s, put("keep", r#"{"state": "/"}"#)).await;
    for method in ["PUT", "DELETE"] {
        let r = send(
            &s,
            browser(
                method,
                "/api/v1/views/keep",
                "127.0.0.1:5050",
                Some("http://evil.example"),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}");
        assert_eq!(error_code(&r), "cross_origin");
    }
    assert_eq!(get(&s, "/api/v1/views/keep").await.status, StatusCode::OK);
    let token = state(&project, Some("0123456789abcdef0123"));
    assert_eq!(
        get(&token, "/api/v1/views").await.status,
        StatusCode::UNAUTHORIZED
    );
}
