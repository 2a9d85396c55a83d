//! Journals sent in pieces, with retries, gaps, conflicting and bad bytes:
//! kept byte for byte, folded as the local index folds them, and a run's
//! status as its client is heard from or not.

use std::time::Duration;

use lab_store::wire::RunSummary;
use lab_store::{Selection, Store};
use lab_team::Role;
use serde_json::Value as J;

use crate::{Server, http, journal_bytes, local_project, send_journal};

const P: &str = "iris-project";

fn put(s: &Server, token: &str, run: &str, offset: usize, bytes: &[u8]) -> crate::Response {
    http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{run}/journal?offset={offset}"),
        Some(token),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .unwrap()
}

#[test]
fn a_journal_sent_in_pieces_is_kept_whole_and_folded_as_locally() {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    for run in &runs {
        let bytes = journal_bytes(&project, run);
        let id = run.id().to_string();
        let first = put(&s, &token, &id, 0, &bytes[..300]);
        assert_eq!(
            first.status,
            200,
            "{}",
            String::from_utf8_lossy(&first.body)
        );
        let held = first.json()["length"].as_u64().unwrap() as usize;
        assert!(held > 16 && held <= 300, "{held}");
        // The same bytes again: a retry, nothing stored twice.
        let again = put(&s, &token, &id, 0, &bytes[..300]);
        assert_eq!(
            (again.status, again.json()["length"].as_u64()),
            (200, Some(held as u64))
        );
        // From past the end: a gap, and where to resume.
        let gap = put(&s, &token, &id, held + 10, &bytes[held + 10..held + 100]);
        assert_eq!((gap.status, gap.code()), (409, "gap".to_owned()));
        assert_eq!(gap.json()["length"].as_u64(), Some(held as u64));
        // A different byte where the server holds one: refused, nothing kept.
        let mut changed = bytes[..held + 200].to_vec();
        changed[held - 3] ^= 0x40;
        let conflict = put(&s, &token, &id, 0, &changed);
        assert_eq!(
            (conflict.status, conflict.code()),
            (409, "conflict".to_owned())
        );
        assert_eq!(conflict.json()["length"].as_u64(), Some(held as u64));
        // A frame whose CRC does not match its bytes.
        let mut bad = bytes[held..held + 200].to_vec();
        bad[6] ^= 0xff;
        let refused = put(&s, &token, &id, held, &bad);
        assert_eq!(
            (refused.status, refused.code()),
            (400, "bad_frame".to_owned())
        );
        assert_eq!(refused.json()["length"].as_u64(), Some(held as u64));
        // An overlap of good bytes is a retry too: the rest goes on from it.
        let overlap = put(&s, &token, &id, held - 50, &bytes[held - 50..held + 500]);
        assert_eq!(overlap.status, 200);
        let held = overlap.json()["length"].as_u64().unwrap() as usize;
        // The rest in odd-sized pieces.
        let rest = send_journal_from(&s, &token, &id, &bytes, held, 777);
        assert_eq!(rest, bytes.len() as u64);

        let length = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{P}/runs/{id}/journal/length"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(length.json()["length"].as_u64(), Some(bytes.len() as u64));
        let copy = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{P}/runs/{id}/journal"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(copy.status, 200);
        assert!(
            copy.body == bytes,
            "the server's copy differs from the journal"
        );
        // The object store holds the same bytes, stretch after stretch.
        let dir = s
            .store
            .path()
            .join(format!("projects/{P}/runs/{id}/journal"));
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let stored: Vec<u8> = names
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect();
        assert!(
            stored == bytes,
            "the object store's stretches differ from the journal"
        );
    }

    // The runs API shows what `lab ls --format json` shows for them.
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    let local = store.select(&Selection::default()).unwrap();
    let listed = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    assert_eq!(listed["total"].as_u64(), Some(2));
    for run in local {
        let summary = RunSummary::of(run);
        let want = serde_json::to_value(summary.without_listing_extras()).unwrap();
        let got = listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == want["id"])
            .unwrap_or_else(|| panic!("run {} is not listed", want["id"]));
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&got[key], value, "`{key}` of run {}", want["id"]);
        }
    }
    let one = http(
        s.addr,
        "GET",
        &format!(
            "/api/v1/projects/{P}/runs/{}",
            &runs[0].id().to_string()[..10]
        ),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["params"]["depth"], J::from(3));
    // A page of them, with the total beside it: newest first.
    let page = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs?limit=1&offset=1"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    let page = page.json();
    assert_eq!(page["total"].as_u64(), Some(2));
    assert_eq!(page["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["runs"][0]["id"], J::from(runs[0].id().to_string()));
    let queried = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs?where=depth+%3E+3"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(queried.json()["total"].as_u64(), Some(1));
    let bad_query = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs?where=depth+%3E"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(
        (bad_query.status, bad_query.code()),
        (400, "bad_query".to_owned())
    );
    // A metric's points, downsampled as `lab ui` does, from the journal read
    // back out of the object store.
    let local_run = store.run(&runs[1].id().to_string()).unwrap();
    let mut series = lab_server::series::Series::new();
    store
        .visit_metric(&local_run, "loss", |step, nanos, value| {
            series.push(step, nanos, local_run.start_nanos, value);
        })
        .unwrap();
    for (query, axis) in [
        ("", lab_server::series::XAxis::Step),
        (
            "?x=time&max_points=100&from=0.0",
            lab_server::series::XAxis::Time,
        ),
        (
            "?x=wall&max_points=100&from=0.0",
            lab_server::series::XAxis::Wall,
        ),
        // A metric against itself: paired by step, the same points.
        (
            "?x=metrics.loss&max_points=100&from=0.0",
            lab_server::series::XAxis::Metric,
        ),
    ] {
        let from = if query.is_empty() { None } else { Some(0.0) };
        let max = if query.is_empty() { 2000 } else { 100 };
        let paired;
        let source = if axis == lab_server::series::XAxis::Metric {
            paired = series.against(&series);
            &paired
        } else {
            &series
        };
        let want = lab_server::series::downsample(source, axis, from, None, max);
        let got = http(
            s.addr,
            "GET",
            &format!(
                "/api/v1/projects/{P}/runs/{}/metrics/loss{query}",
                runs[1].id()
            ),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
        let got = got.json();
        assert_eq!(got["total"].as_u64(), Some(want.in_range as u64));
        assert_eq!(got["downsampled"].as_bool(), Some(want.downsampled));
        assert_eq!(got["x"], serde_json::json!(want.x));
        // Equal up to the last bit that JSON text parsing may change.
        let ys: Vec<Option<f64>> = serde_json::from_value(got["y"].clone()).unwrap();
        assert_eq!(ys.len(), want.y.len());
        for (i, (a, b)) in ys.iter().zip(&want.y).enumerate() {
            let same = match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-15 * b.abs().max(1e-300),
                (None, None) => true,
                _ => false,
            };
            assert!(same, "y[{i}]: {a:?} against {b:?}");
        }
    }
    assert_eq!(
        want_total_points(&s, &token, &runs[1].id().to_string()),
        2000
    );
    let missing = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{}/metrics/nope", runs[1].id()),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(missing.status, 404);
    let projects = http(s.addr, "GET", "/api/v1/projects", Some(&token), &[], b"").unwrap();
    assert_eq!(
        projects.json()["projects"],
        serde_json::json!([{"name": P, "runs": 2}])
    );
}

/// How many points of `loss` the server reads back for run `run`.
fn want_total_points(s: &Server, token: &str, run: &str) -> u64 {
    let r = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{run}/metrics/loss?max_points=2"),
        Some(token),
        &[],
        b"",
    )
    .unwrap();
    r.json()["total"].as_u64().unwrap()
}

/// Sends `bytes` from `from` on in pieces of `size`, each piece overlapping
/// the last by a few bytes; returns the length the server holds.
fn send_journal_from(
    s: &Server,
    token: &str,
    run: &str,
    bytes: &[u8],
    from: usize,
    size: usize,
) -> u64 {
    let mut at = from;
    while at < bytes.len() {
        let start = at.saturating_sub(7).max(from);
        let end = (at + size).min(bytes.len());
        let r = put(s, token, run, start, &bytes[start..end]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let length = r.json()["length"].as_u64().unwrap() as usize;
        assert!(length > at || end < bytes.len(), "no progress at {at}");
        at = if length > at { length } else { at };
        if length == start && end < bytes.len() {
            // A frame longer than the piece: send it whole.
            let r = put(
                s,
                token,
                run,
                at,
                &bytes[at..(at + 8 * size).min(bytes.len())],
            );
            at = r.json()["length"].as_u64().unwrap() as usize;
        }
    }
    at as u64
}

#[test]
fn a_run_is_running_while_its_client_is_heard_then_unreachable_crashed_or_what_its_end_says() {
    let cluster = crate::Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| {
        o.heartbeat_timeout = Duration::from_millis(800);
    });
    let token = s.token("ci", Role::Writer, Some(P));
    let _guard = crate::SDK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = lab_store::Project::create(dir.path()).unwrap();
    let run = lab_sdk::Run::start(
        &project,
        lab_sdk::StartOptions {
            experiment: "live".into(),
            attrs: Vec::new(),
            env: lab_sdk::EnvRequest::default(),
            ..Default::default()
        },
    )
    .unwrap();
    run.log_metric("loss", 0.5, None).unwrap();
    let id = run.id().to_string();
    let journal = project.run_paths(&run.id().short()).journal;
    // What a live journal holds: up to the end of its last whole frame.
    let live = |journal: &std::path::Path| {
        let end = lab_journal::read_journal(journal, 0, |_, _| {})
            .unwrap()
            .end as usize;
        std::fs::read(journal).unwrap()[..end].to_vec()
    };
    let bytes = live(&journal);
    assert_eq!(
        send_journal(s.addr, &token, P, &id, &bytes, 4096),
        bytes.len() as u64
    );
    let status = || {
        let r = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{P}/runs/{id}"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        r.json()["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status(), "running");
    // How many runs a listing with query `query` counts.
    let count = |query: &str| {
        let r = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{P}/runs?{query}"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["total"].as_u64().unwrap()
    };
    assert_eq!(count("status=unreachable"), 0);
    std::thread::sleep(Duration::from_secs(1));
    // A status of its own, in the index: filtered and queried like any.
    assert_eq!(count("status=unreachable"), 1);
    assert_eq!(count("where=status+%3D+unreachable"), 1);
    assert_eq!(count("status=running"), 0);
    assert_eq!(status(), "unreachable");
    let beat = http(
        s.addr,
        "POST",
        &format!("/api/v1/projects/{P}/runs/{id}/heartbeat"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(beat.status, 204);
    assert_eq!(status(), "running");
    assert_eq!(count("where=status+%3D+unreachable"), 0);
    let crashed = http(
        s.addr,
        "POST",
        &format!("/api/v1/projects/{P}/runs/{id}/crashed"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(crashed.status, 204);
    assert_eq!(status(), "crashed");
    // The client catches up: its End record says how the run went.
    run.log_metric("loss", 0.25, None).unwrap();
    run.end(lab_types::Status::Finished, None).unwrap();
    lab_sdk::wait_for_background();
    let bytes = std::fs::read(&journal).unwrap();
    assert_eq!(
        send_journal(s.addr, &token, P, &id, &bytes, 4096),
        bytes.len() as u64
    );
    assert_eq!(status(), "finished");
    let r = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(
        crate::metric_count(&r.json(), "loss"),
        Some(2),
        "{}",
        r.json()
    );
}

#[test]
fn an_oversize_body_is_refused_and_nothing_is_kept() {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let run = "0123456789abcdef0123456789abcdef";
    let huge = vec![7u8; lab_team::MAX_JOURNAL_BODY + 1];
    let r = put(&s, &token, run, 0, &huge);
    assert_eq!((r.status, r.code()), (413, "too_large".to_owned()));
    let length = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{run}/journal/length"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(length.json()["length"].as_u64(), Some(0));
    // Not a journal at all, and a first stretch without its Start record.
    let r = put(&s, &token, run, 0, b"not a journal, not at all");
    assert_eq!((r.status, r.code()), (400, "bad_frame".to_owned()));
    let r = put(&s, &token, run, 0, &lab_journal_header());
    assert_eq!((r.status, r.code()), (400, "bad_frame".to_owned()));
    let r = put(&s, &token, "not-a-run", 0, b"");
    assert_eq!((r.status, r.code()), (400, "bad_request".to_owned()));
}

fn lab_journal_header() -> Vec<u8> {
    lab_journal::header().to_vec()
}

#[test]
fn clients_racing_over_two_replicas_store_each_byte_once_and_count_each_point_once() {
    let s = Server::start();
    let other = s.replica();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let bytes = std::sync::Arc::new(journal_bytes(&project, &runs[0]));
    let id = runs[0].id().to_string();
    let addrs = [s.addr, other.addr];
    // Four clients send the same journal at once, each in its own stretch
    // size, each request to the replica after the one before.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (bytes, token, id) = (bytes.clone(), token.clone(), id.clone());
            std::thread::Builder::new()
                .name(format!("client-{c}"))
                .spawn(move || {
                    let size = 300 + 211 * c;
                    let mut at = 0usize;
                    let mut turn = c;
                    while at < bytes.len() {
                        let end = (at + size).min(bytes.len());
                        let r = http(
                            addrs[turn % 2],
                            "PUT",
                            &format!("/api/v1/projects/{P}/runs/{id}/journal?offset={at}"),
                            Some(&token),
                            &[],
                            &bytes[at..end],
                        )
                        .unwrap();
                        turn += 1;
                        let length = r.json()["length"].as_u64().unwrap() as usize;
                        match r.status {
                            // Another client got further (a gap), or this stretch held no whole frame.
                            200 | 409 if length > at => at = length,
                            200 => at = length.max(at),
                            other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
                        }
                        if length == at && end < bytes.len() && r.status == 200 {
                            // A frame longer than the stretch: send it whole.
                            let r = http(
                                addrs[turn % 2],
                                "PUT",
                                &format!("/api/v1/projects/{P}/runs/{id}/journal?offset={at}"),
                                Some(&token),
                                &[],
                                &bytes[at..(at + 8 * size).min(bytes.len())],
                            )
                            .unwrap();
                            at = r.json()["length"].as_u64().unwrap() as usize;
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let copy = http(
        other.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}/journal"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert!(
        copy.body == *bytes,
        "the server's copy differs from the journal"
    );
    let shown = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(crate::metric_count(&shown.json(), "loss"), Some(2000));
    assert_eq!(crate::metric_count(&shown.json(), "accuracy"), Some(1));
}

#[test]
fn live_events_tell_of_new_runs_and_points() {
    use std::io::{Read as _, Write as _};
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let first = journal_bytes(&project, &runs[0]);
    send_journal(
        s.addr,
        &token,
        P,
        &runs[0].id().to_string(),
        &first,
        1 << 20,
    );
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/projects/{P}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    // Once the stream has looked (and primed itself), a second run arrives.
    std::thread::sleep(Duration::from_millis(1500));
    let second = journal_bytes(&project, &runs[1]);
    let id = runs[1].id().to_string();
    send_journal(s.addr, &token, P, &id, &second, 1 << 20);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !(seen.contains("event: run") && seen.contains("event: metrics")) {
        let n = stream.read(&mut buf).expect("no events within 20 s");
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains(&id), "{seen}");
    assert!(
        !seen.contains(&runs[0].id().to_string()),
        "the first run was announced again: {seen}"
    );
    // Another project's token cannot listen.
    let other = s.token("other", Role::Reader, Some("elsewhere"));
    let r = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/events"),
        Some(&other),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn the_index_is_made_again_from_the_object_store_alone() {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    for run in &runs {
        let bytes = journal_bytes(&project, run);
        send_journal(s.addr, &token, P, &run.id().to_string(), &bytes, 999);
    }
    let get = |path: &str| {
        let r = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{P}{path}"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    let detail = format!("/runs/{}", runs[0].id());
    let (list, one) = (get("/runs"), get(&detail));
    // The index is lost.
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    c.batch_execute("DELETE FROM lab.runs; DELETE FROM lab.names;")
        .unwrap();
    assert_eq!(get("/runs")["total"].as_u64(), Some(0));
    let url = format!("file://{}", s.store.path().display());
    let done = lab_team::reindex(&s.cluster.lab(), &url, None).unwrap();
    assert_eq!((done.projects, done.runs), (1, 2));
    assert_eq!(get("/runs"), list);
    assert_eq!(get(&detail), one);
    // Again: the same.
    lab_team::reindex(&s.cluster.lab(), &url, Some(P)).unwrap();
    assert_eq!(get("/runs"), list);
}

/// Runs PostgreSQL's `pg_ctl` with `args`, as the cluster's harness does
/// (as the `postgres` user when run as root).
fn pg_ctl(args: &[&str]) {
    let mut bins: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|b| b.join("pg_ctl").exists())
        .collect();
    bins.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    let pg_ctl = bins.pop().unwrap().join("pg_ctl");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .unwrap()
        .stdout
        == b"0\n";
    let mut cmd = if root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_ctl);
        c
    } else {
        std::process::Command::new(pg_ctl)
    };
    let out = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn postgresql_down_is_a_503_and_nothing_is_lost_when_it_is_back() {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let bytes = journal_bytes(&project, &runs[0]);
    let id = runs[0].id().to_string();
    let half = put(&s, &token, &id, 0, &bytes[..bytes.len() / 2]);
    assert_eq!(half.status, 200);
    let held = half.json()["length"].as_u64().unwrap() as usize;
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    let data: String = c.query_one("SHOW data_directory", &[]).unwrap().get(0);
    let port: String = c.query_one("SHOW port", &[]).unwrap().get(0);
    drop(c);
    pg_ctl(&["-D", &data, "-m", "fast", "-w", "stop"]);
    let r = put(&s, &token, &id, held, &bytes[held..]);
    assert_eq!((r.status, r.code()), (503, "unavailable".to_owned()));
    assert!(r.header("retry-after").is_some());
    let r = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 503);
    let log = format!("{data}/server.log");
    let options = format!("-p {port} -h 127.0.0.1 -k {data} -F");
    pg_ctl(&["-D", &data, "-l", &log, "-o", &options, "-w", "start"]);
    // The pool's broken connections are replaced; the client goes on.
    let mut answered = None;
    for _ in 0..5 {
        let r = put(&s, &token, &id, held, &bytes[held..]);
        if r.status == 200 {
            answered = r.json()["length"].as_u64();
            break;
        }
        assert_eq!(r.status, 503);
    }
    assert_eq!(answered, Some(bytes.len() as u64));
    let copy = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}/journal"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert!(copy.body == bytes);
    let shown = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(crate::metric_count(&shown.json(), "loss"), Some(2000));
}

#[test]
fn a_journal_of_many_stretches_is_merged_and_reads_back_the_same() {
    let cluster = crate::Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| o.compact_every = 8);
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let objects = |id: &str| {
        std::fs::read_dir(
            s.store
                .path()
                .join(format!("projects/{P}/runs/{id}/journal")),
        )
        .unwrap()
        .count()
    };
    let get = |path: &str| {
        let r = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{P}{path}"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r
    };
    for run in &runs {
        let bytes = journal_bytes(&project, run);
        let id = run.id().to_string();
        // Some 80 requests: without merging, 80 objects.
        let size = bytes.len() / 80 + 1;
        assert_eq!(
            send_journal(s.addr, &token, P, &id, &bytes, size),
            bytes.len() as u64
        );
        let n = objects(&id);
        assert!(n <= 2 * 8 + 1, "{n} objects for {} bytes", bytes.len());
        assert_eq!(get(&format!("/runs/{id}/journal")).body, bytes);
        let loss = get(&format!("/runs/{id}/metrics/loss?max_points=100000")).json();
        assert_eq!(loss["total"].as_u64(), Some(2000));
    }
    // The index made again from the merged objects is the same.
    let list = get("/runs").json();
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    c.batch_execute("DELETE FROM lab.runs; DELETE FROM lab.names;")
        .unwrap();
    let done = lab_team::reindex(&s.cluster.lab(), &url, None).unwrap();
    assert_eq!((done.projects, done.runs), (1, 2));
    assert_eq!(get("/runs").json(), list);
}

#[test]
fn a_request_cut_off_by_postgresql_stopping_is_a_503() {
    use sha2::{Digest as _, Sha256};
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let bytes = journal_bytes(&project, &runs[0]);
    let id = runs[0].id().to_string();
    let held = put(&s, &token, &id, 0, &bytes[..bytes.len() / 2]).json()["length"]
        .as_u64()
        .unwrap() as usize;
    // The run's lock is taken elsewhere: the next request waits for it,
    // inside PostgreSQL, when PostgreSQL stops.
    let digest = Sha256::digest(format!("lab journal\0{P}\0{id}"));
    let key = i64::from_le_bytes(digest[..8].try_into().unwrap());
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    c.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    let data: String = c.query_one("SHOW data_directory", &[]).unwrap().get(0);
    let port: String = c.query_one("SHOW port", &[]).unwrap().get(0);
    let addr = s.addr;
    let (token2, id2, rest) = (token.clone(), id.clone(), bytes[held..].to_vec());
    let waiting = std::thread::Builder::new()
        .name("test-put".into())
        .spawn(move || {
            http(
                addr,
                "PUT",
                &format!("/api/v1/projects/{P}/runs/{id2}/journal?offset={held}"),
                Some(&token2),
                &[],
                &rest,
            )
            .unwrap()
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waits: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT pg_advisory_lock%'",
                &[],
            )
            .unwrap()
            .get(0);
        if waits > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request does not wait"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pg_ctl(&["-D", &data, "-m", "fast", "-w", "stop"]);
    drop(c);
    let r = waiting.join().unwrap();
    assert_eq!(
        (r.status, r.code()),
        (503, "unavailable".to_owned()),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.header("retry-after").is_some());
    let log = format!("{data}/server.log");
    let options = format!("-p {port} -h 127.0.0.1 -k {data} -F");
    pg_ctl(&["-D", &data, "-l", &log, "-o", &options, "-w", "start"]);
    // Nothing of the cut request was kept: sent again, it all arrives once.
    let mut answered = None;
    for _ in 0..5 {
        let r = put(&s, &token, &id, held, &bytes[held..]);
        if r.status == 200 {
            answered = r.json()["length"].as_u64();
            break;
        }
        assert_eq!(r.status, 503);
    }
    assert_eq!(answered, Some(bytes.len() as u64));
    let shown = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(crate::metric_count(&shown.json(), "loss"), Some(2000));
}
