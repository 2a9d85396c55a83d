//! Live events across replicas: a stream at one server tells of runs and
//! points sent to another on the same database, within a second (the
//! database announces each change as it commits), and misses nothing when
//! the servers' listening connections are cut.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab_team::Role;
use serde_json::Value as J;

use crate::{Server, http, journal_bytes, local_project, send_journal};

const P: &str = "live";

/// One event of a stream, with when it arrived.
struct Got {
    at: Instant,
    kind: String,
    data: J,
}

/// Opens project `P`'s event stream at `addr`; its events arrive on the
/// receiver, read by a thread of their own, which ends (and the receiver
/// disconnects) when the server ends the stream.
fn events(addr: SocketAddr, token: &str) -> mpsc::Receiver<Got> {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /api/v1/projects/{P}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut lines = BufReader::new(stream);
    let mut status = String::new();
    lines.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let (tx, rx) = mpsc::sync_channel(1024);
    let reader = std::thread::Builder::new().name("test-events".into());
    reader
        .spawn(move || {
            let mut kind = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                // Chunked: the size lines are not `event:` or `data:` lines.
                if let Some(k) = line.strip_prefix("event: ") {
                    k.trim().clone_into(&mut kind);
                } else if let Some(d) = line.strip_prefix("data: ") {
                    let data = serde_json::from_str(d.trim()).unwrap();
                    let got = Got {
                        at: Instant::now(),
                        kind: std::mem::take(&mut kind),
                        data,
                    };
                    if tx.send(got).is_err() {
                        return;
                    }
                }
            }
        })
        .unwrap();
    rx
}

/// Sends `bytes[from..to]` of run `id`'s journal to `addr`; returns when
/// the server acknowledged it, and the length it holds.
fn send(addr: SocketAddr, token: &str, id: &str, bytes: &[u8], from: usize, to: usize) -> usize {
    let r = http(
        addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{id}/journal?offset={from}"),
        Some(token),
        &[("Content-Type", "application/octet-stream")],
        &bytes[from..to],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["length"].as_u64().unwrap() as usize
}

/// Waits (at most `within`) for the next event about run `id`; returns it.
fn next_about(rx: &mpsc::Receiver<Got>, id: &str, within: Duration) -> Got {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no event about run `{id}` within {within:?}"));
        if got.data["id"] == id {
            return got;
        }
    }
}

/// Takes the events that come within a moment (those of the same look).
fn drain(rx: &mpsc::Receiver<Got>, into: &mut Vec<Got>) {
    while let Ok(got) = rx.recv_timeout(Duration::from_millis(50)) {
        into.push(got);
    }
}

/// The processes of the servers' listening connections.
fn listening(s: &Server) -> Vec<i32> {
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'lab server (listening)' AND query <> ''",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Waits until both servers listen, on connections other than `old`.
fn wait_listening(s: &Server, old: &[i32]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = listening(s);
        if now.iter().filter(|p| !old.contains(p)).count() >= 2 {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the servers do not listen: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_replica_streams_the_runs_and_points_sent_to_another_within_a_second() {
    let a = Server::start();
    let b = a.replica();
    let token = a.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    // The project exists on the server before anyone listens.
    let first = journal_bytes(&project, &runs[0]);
    send_journal(
        a.addr,
        &token,
        P,
        &runs[0].id().to_string(),
        &first,
        1 << 20,
    );
    let pids = wait_listening(&a, &[]);
    let rx = events(b.addr, &token);
    // The second run goes to A in 20 stretches, each with new points; B's
    // stream tells of each.
    let bytes = journal_bytes(&project, &runs[1]);
    let id = runs[1].id().to_string();
    let mut got = Vec::new();
    let mut latencies = Vec::new();
    let mut at = 0;
    let stretch = bytes.len() / 20 + 1;
    for i in 0..20 {
        let to = if i == 19 {
            bytes.len()
        } else {
            (at + stretch).min(bytes.len())
        };
        if i == 15 {
            // The listening connections are cut: what is sent meanwhile is
            // still told, and the servers listen again.
            let mut c = postgres::Client::connect(&a.cluster.lab(), postgres::NoTls).unwrap();
            for pid in &pids {
                c.execute("SELECT pg_terminate_backend($1)", &[pid])
                    .unwrap();
            }
            at = send(a.addr, &token, &id, &bytes, at, to);
            got.push(next_about(&rx, &id, Duration::from_secs(5)));
            wait_listening(&a, &pids);
            drain(&rx, &mut got);
            continue;
        }
        at = send(a.addr, &token, &id, &bytes, at, to);
        let sent = Instant::now();
        let event = next_about(&rx, &id, Duration::from_secs(5));
        latencies.push(event.at - sent);
        got.push(event);
        drain(&rx, &mut got);
    }
    assert_eq!(at, bytes.len());
    // The End record's event may come with the last points' or after.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !got
        .iter()
        .any(|g| g.kind == "run" && g.data["status"] == "failed")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        got.push(next_about(&rx, &id, left));
    }
    // Everything, once: the run as it began and as it ended, and each
    // point counted once.
    let statuses: Vec<_> = got
        .iter()
        .filter(|g| g.kind == "run")
        .map(|g| g.data["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["running", "failed"]);
    let points: i64 = got
        .iter()
        .filter(|g| g.kind == "metrics")
        .map(|g| g.data["points"].as_i64().unwrap())
        .sum();
    assert_eq!(points, 2001);
    assert!(!got.iter().any(|g| g.kind == "lagged"), "the stream lagged");
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    eprintln!(
        "latency at the other replica: mean {mean:?}, max {:?}",
        latencies.last()
    );
    assert!(
        latencies.last().unwrap() < &Duration::from_secs(1),
        "{latencies:?}"
    );
    // Told, not found by looking now and then (which would take half a
    // second on average).
    assert!(mean < Duration::from_millis(350), "{latencies:?}");
    // The first run, sent before the stream opened, is not told again.
    assert!(
        rx.try_iter()
            .all(|g| g.data["id"] != runs[0].id().to_string())
    );
}

#[test]
fn a_live_stream_ends_once_its_token_is_revoked() {
    let s = Server::start();
    let token = s.token("watcher", Role::Reader, Some(P));
    let writer = s.token("writer", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let bytes = journal_bytes(&project, &runs[0]);
    send_journal(
        s.addr,
        &writer,
        P,
        &runs[0].id().to_string(),
        &bytes,
        1 << 20,
    );
    let rx = events(s.addr, &token);
    // Open, and kept open while the token is good.
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the stream ended with its token good")
            }
        }
    }
    assert!(lab_team::revoke_token(&s.cluster.lab(), "watcher").unwrap());
    let revoked = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(
                    revoked.elapsed() < Duration::from_secs(15),
                    "the stream went on with its token revoked"
                );
            }
        }
    }
    // The writer's stream, meanwhile, is not touched.
    let other = events(s.addr, &writer);
    assert!(matches!(
        other.recv_timeout(Duration::from_secs(2)),
        Ok(_) | Err(mpsc::RecvTimeoutError::Timeout)
    ));
}
