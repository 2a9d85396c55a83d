//! Tokens: none, bad, revoked, of too low a role, for another project.

use lab_team::Role;

use crate::{Server, http, journal_bytes, local_project, send_journal};

#[test]
fn every_route_but_health_needs_a_valid_token_of_the_project_and_role() {
    let s = Server::start();
    let writer = s.token("writer-a", Role::Writer, Some("a"));
    let reader = s.token("reader-a", Role::Reader, Some("a"));
    let other = s.token("writer-b", Role::Writer, Some("b"));
    let admin = s.token("admin", Role::Admin, None);
    assert!(writer.starts_with("lab_") && writer.len() == 68, "{writer}");

    let health = http(s.addr, "GET", "/api/v1/health", None, &[], b"").unwrap();
    assert_eq!(health.status, 200);
    for token in [
        None,
        Some("lab_0000000000000000000000000000000000000000000000000000000000000000"),
        Some(""),
    ] {
        let r = http(s.addr, "GET", "/api/v1/whoami", token, &[], b"").unwrap();
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized".to_owned()),
            "{token:?}"
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let me = http(s.addr, "GET", "/api/v1/whoami", Some(&writer), &[], b"").unwrap();
    assert_eq!(
        me.json(),
        serde_json::json!({"name": "writer-a", "role": "writer", "project": "a"})
    );

    let (_dir, project, runs) = local_project();
    let bytes = journal_bytes(&project, &runs[0]);
    let id = runs[0].id().to_string();
    assert_eq!(
        send_journal(s.addr, &writer, "a", &id, &bytes, 1 << 20),
        bytes.len() as u64
    );

    // A reader reads, and may not write.
    let listed = http(
        s.addr,
        "GET",
        "/api/v1/projects/a/runs",
        Some(&reader),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(listed.json()["total"].as_u64(), Some(1));
    let put = |token: &str, p: &str| {
        http(
            s.addr,
            "PUT",
            &format!("/api/v1/projects/{p}/runs/{id}/journal?offset=0"),
            Some(token),
            &[],
            &bytes[..200],
        )
        .unwrap()
    };
    let r = put(&reader, "a");
    assert_eq!((r.status, r.code()), (403, "forbidden".to_owned()));
    let r = http(
        s.addr,
        "POST",
        &format!("/api/v1/projects/a/runs/{id}/heartbeat"),
        Some(&reader),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403);

    // Another project's token learns nothing of project `a`, not even that it exists.
    let r = http(
        s.addr,
        "GET",
        "/api/v1/projects/a/runs",
        Some(&other),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    let missing = http(
        s.addr,
        "GET",
        "/api/v1/projects/nope/runs",
        Some(&admin),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(
        (missing.status, missing.code()),
        (404, "not_found".to_owned())
    );
    let r = put(&other, "a");
    assert_eq!((r.status, r.code()), (404, "not_found".to_owned()));
    let r = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/a/runs/{id}/journal"),
        Some(&other),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 404);
    let r = http(s.addr, "GET", "/api/v1/projects", Some(&other), &[], b"").unwrap();
    assert_eq!(r.json()["projects"], serde_json::json!([]));
    let r = http(s.addr, "GET", "/api/v1/projects", Some(&admin), &[], b"").unwrap();
    assert_eq!(
        r.json()["projects"],
        serde_json::json!([{"name": "a", "runs": 1}])
    );

    // Revoked: refused from the next request on.
    assert!(lab_team::revoke_token(&s.cluster.lab(), "writer-a").unwrap());
    assert!(!lab_team::revoke_token(&s.cluster.lab(), "writer-a").unwrap());
    let r = put(&writer, "a");
    assert_eq!((r.status, r.code()), (401, "unauthorized".to_owned()));
    let listed = lab_team::list_tokens(&s.cluster.lab()).unwrap();
    let names: Vec<(&str, bool)> = listed
        .iter()
        .map(|t| (t.name.as_str(), t.revoked_nanos.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("writer-a", true),
            ("reader-a", false),
            ("writer-b", false),
            ("admin", false)
        ]
    );
    // Names are unique; a bad project name is refused.
    assert!(lab_team::create_token(&s.cluster.lab(), "admin", Role::Reader, None).is_err());
    assert!(lab_team::create_token(&s.cluster.lab(), "x", Role::Reader, Some("a/b")).is_err());
    assert!(lab_team::revoke_token(&s.cluster.lab(), "nobody").is_err());
    // Only hashes are kept.
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    let kept: Vec<String> = c
        .query("SELECT sha256 FROM lab_team.tokens", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        kept.iter()
            .all(|h| h.len() == 64 && !h.contains(&admin[4..]))
    );
}

#[test]
fn a_token_over_its_rate_is_told_when_to_come_back() {
    let cluster = crate::Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| o.rate_per_sec = 2);
    let busy = s.token("busy", Role::Reader, None);
    let calm = s.token("calm", Role::Reader, None);
    for _ in 0..4 {
        let r = http(s.addr, "GET", "/api/v1/whoami", Some(&busy), &[], b"").unwrap();
        assert_eq!(r.status, 200);
    }
    let r = http(s.addr, "GET", "/api/v1/whoami", Some(&busy), &[], b"").unwrap();
    assert_eq!((r.status, r.code()), (429, "rate_limited".to_owned()));
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = http(s.addr, "GET", "/api/v1/whoami", Some(&calm), &[], b"").unwrap();
    assert_eq!(r.status, 200);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let r = http(s.addr, "GET", "/api/v1/whoami", Some(&busy), &[], b"").unwrap();
    assert_eq!(r.status, 200);
}

/// `text` escaped for a URL's query.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn every_query_of_the_fuzz_corpus_is_answered_or_refused_never_a_500() {
    let s = Server::start();
    let token = s.token("reader", Role::Writer, Some("a"));
    let (_dir, project, runs) = local_project();
    for run in &runs {
        let bytes = journal_bytes(&project, run);
        send_journal(s.addr, &token, "a", &run.id().to_string(), &bytes, 1 << 20);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/query");
    let mut queries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| String::from_utf8(std::fs::read(e.unwrap().path()).unwrap()).ok())
        .collect();
    queries.sort();
    assert!(queries.len() > 100, "the corpus is missing");
    let (mut answered, mut refused) = (0, 0);
    for q in &queries {
        for param in ["where", "sort"] {
            let r = http(
                s.addr,
                "GET",
                &format!("/api/v1/projects/a/runs?{param}={}", escape(q)),
                Some(&token),
                &[],
                b"",
            )
            .unwrap();
            match r.status {
                200 => answered += 1,
                400 => {
                    assert!(
                        ["bad_query", "bad_request"].contains(&r.code().as_str()),
                        "{param}={q:?}: {}",
                        r.code()
                    );
                    refused += 1;
                }
                other => panic!(
                    "{param}={q:?}: status {other}: {}",
                    String::from_utf8_lossy(&r.body)
                ),
            }
        }
    }
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
    // Still serving.
    let list = http(
        s.addr,
        "GET",
        "/api/v1/projects/a/runs",
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(list.json()["total"].as_u64(), Some(2));
}
