//! The web page: where it is served, and its sessions (login, the cookie,
//! CSRF refusals, expiry, logout).

use std::time::Duration;

use lab_team::Role;

use crate::{Server, http};

const RUN: &str = "0123456789abcdef0123456789abcdef";

/// Logs in with `token`; the session id from the cookie, the CSRF token and
/// the whole `Set-Cookie`.
fn login(s: &Server, token: &str, extra: &[(&str, &str)]) -> (String, String, String) {
    let body = serde_json::json!({ "token": token }).to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    let r = http(
        s.addr,
        "POST",
        "/api/v1/session",
        None,
        &headers,
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let set = r.header("set-cookie").unwrap().to_owned();
    let id = set
        .strip_prefix("lab_session=")
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    (id, csrf, set)
}

fn with_cookie(
    s: &Server,
    method: &str,
    path: &str,
    id: &str,
    extra: &[(&str, &str)],
) -> crate::Response {
    let cookie = format!("theme=dark; lab_session={id}");
    let mut headers = vec![("Cookie", cookie.as_str())];
    headers.extend_from_slice(extra);
    http(s.addr, method, path, None, &headers, b"").unwrap()
}

#[test]
fn the_page_lists_the_projects_and_shows_each_under_its_own_address() {
    let s = Server::start();
    let root = http(s.addr, "GET", "/", None, &[], b"").unwrap();
    assert!(matches!(root.status, 303 | 307 | 308), "{}", root.status);
    assert_eq!(root.header("location"), Some("/projects/"));
    for path in ["/projects/", "/projects/vision/", "/projects/vision/?x=1"] {
        let r = http(s.addr, "GET", path, None, &[], b"").unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert!(
            String::from_utf8_lossy(&r.body).contains("<title>Lab</title>"),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // The API's own misses still answer in its shape.
    let r = http(s.addr, "GET", "/api/v1/nothing", None, &[], b"").unwrap();
    assert_eq!((r.status, r.code()), (404, "not_found".into()));
    let r = http(s.addr, "GET", "/assets/nothing.js", None, &[], b"").unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn a_session_reads_with_its_cookie_and_ends_at_logout() {
    let s = Server::start();
    let token = s.token("ada", Role::Writer, Some("vision"));

    // A wrong token, or none, makes no session.
    for body in [
        r#"{"token": "lab_0000000000000000000000000000000000000000000000000000000000000000"}"#,
        r#"{"token": ""}"#,
    ] {
        let r = http(
            s.addr,
            "POST",
            "/api/v1/session",
            None,
            &[],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 401, "{body}");
        assert_eq!(r.header("set-cookie"), None);
    }
    for body in ["", "{", r#"{"tok": "x"}"#, r#"{"token": 5}"#] {
        let r = http(
            s.addr,
            "POST",
            "/api/v1/session",
            None,
            &[],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!((r.status, r.code()), (400, "bad_request".into()), "{body}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("token")
        );
    }

    let (id, csrf, set) = login(&s, &token, &[]);
    assert_eq!(id.len(), 64, "{set}");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    assert_ne!(csrf, id);

    // The database keeps the id's hash, never the id.
    let mut db = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    let kept: Vec<String> = db
        .query("SELECT sha256 FROM lab_team.sessions", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0], id);

    let me = with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["name"], "ada");
    let now = with_cookie(&s, "GET", "/api/v1/session", &id, &[]);
    assert_eq!(now.json()["csrf"], csrf.as_str());
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/projects", &id, &[]).status,
        200
    );
    // The token's project binds its session too.
    let other = with_cookie(&s, "GET", "/api/v1/projects/other/runs", &id, &[]);
    assert_eq!(other.status, 404);
    // A made-up session id is no session.
    let fake = "f".repeat(64);
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &fake, &[]).status,
        401
    );
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/session", &fake, &[]).status,
        401
    );

    // Logging out takes the CSRF token too.
    let refused = with_cookie(&s, "DELETE", "/api/v1/session", &id, &[]);
    assert_eq!(refused.status, 403);
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]).status,
        200
    );
    let out = with_cookie(
        &s,
        "DELETE",
        "/api/v1/session",
        &id,
        &[("X-CSRF-Token", &csrf)],
    );
    assert_eq!(out.status, 204);
    let gone = out.header("set-cookie").unwrap();
    assert!(
        gone.starts_with("lab_session=;") && gone.contains("Max-Age=0"),
        "{gone}"
    );
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]).status,
        401
    );
    let left: i64 = db
        .query_one("SELECT count(*) FROM lab_team.sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[test]
fn a_sessions_changes_need_its_csrf_token_and_bearer_tokens_do_not() {
    let s = Server::start();
    let token = s.token("ada", Role::Writer, None);
    let (id, csrf, _) = login(&s, &token, &[]);
    let (_, other_csrf, _) = login(&s, &token, &[]);
    let path = format!("/api/v1/projects/vision/runs/{RUN}/heartbeat");
    for headers in [
        vec![],
        vec![("X-CSRF-Token", "")],
        vec![("X-CSRF-Token", other_csrf.as_str())],
        vec![("X-CSRF-Token", id.as_str())],
    ] {
        let r = with_cookie(&s, "POST", &path, &id, &headers);
        assert_eq!(
            (r.status, r.code()),
            (403, "forbidden".into()),
            "{headers:?}"
        );
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-CSRF-Token")
        );
    }
    let put = with_cookie(
        &s,
        "PUT",
        &format!("/api/v1/projects/vision/runs/{RUN}/journal?offset=0"),
        &id,
        &[],
    );
    assert_eq!(put.status, 403);
    let ok = with_cookie(&s, "POST", &path, &id, &[("X-CSRF-Token", &csrf)]);
    assert_eq!(ok.status, 204, "{}", String::from_utf8_lossy(&ok.body));
    // A program's bearer token needs none.
    let r = http(s.addr, "POST", &path, Some(&token), &[], b"").unwrap();
    assert_eq!(r.status, 204);
}

#[test]
fn a_session_expires_and_ends_with_its_token() {
    let cluster = crate::Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| {
        o.session_ttl = Duration::from_secs(2);
    });
    let token = s.token("ada", Role::Reader, None);
    let (id, _, set) = login(&s, &token, &[]);
    assert!(set.contains("Max-Age=2"), "{set}");
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]).status,
        200
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]).status,
        401
    );
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/session", &id, &[]).status,
        401
    );

    // Revoking the token ends its sessions at once.
    let (id, _, _) = login(&s, &token, &[]);
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]).status,
        200
    );
    assert!(lab_team::revoke_token(&s.cluster.lab(), "ada").unwrap());
    assert_eq!(
        with_cookie(&s, "GET", "/api/v1/whoami", &id, &[]).status,
        401
    );
    // An expired session is cleared at the next login.
    let fresh = s.token("bob", Role::Reader, None);
    login(&s, &fresh, &[]);
    let mut db = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    let expired: i64 = db
        .query_one(
            "SELECT count(*) FROM lab_team.sessions WHERE expires_nanos <= $1",
            &[&lab_types::now_nanos()],
        )
        .unwrap()
        .get(0);
    assert_eq!(expired, 0);
}

#[test]
fn the_cookie_is_secure_behind_a_tls_proxy() {
    let s = Server::start();
    let token = s.token("ada", Role::Reader, None);
    let (_, _, set) = login(&s, &token, &[("X-Forwarded-Proto", "https")]);
    assert!(set.contains("; Secure"), "{set}");
}
