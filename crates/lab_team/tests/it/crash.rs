//! The `lab` binary: `lab server` killed with SIGKILL while a client sends a
//! journal, then started again (every byte it acknowledged is there, and the
//! client goes on to the end with nothing counted twice); and `lab server
//! token`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lab_team::Role;

use crate::{Cluster, http};

/// The `lab` binary beside this test's (both in `target/<profile>`).
pub(crate) fn lab() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let lab = dir.join("lab");
    assert!(
        lab.exists(),
        "build the `lab` binary first: cargo build -p lab_cli ({})",
        lab.display()
    );
    lab
}

fn start(cluster: &Cluster, store: &std::path::Path, addr: SocketAddr) -> Child {
    let child = Command::new(lab())
        .args(["server", "--database", &cluster.lab()])
        .arg("--artifacts")
        .arg(format!("file://{}", store.display()))
        .args(["--listen", &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(addr, "GET", "/api/v1/health", None, &[], b"").is_err() {
        assert!(Instant::now() < deadline, "lab server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_server_killed_mid_upload_loses_no_acknowledged_byte() {
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let token = lab_team::create_token(&cluster.lab(), "ci", Role::Writer, Some("p")).unwrap();
    // A journal of a few megabytes, written as a run's process writes it
    // (the journal of a run that ended through `lab_sdk` has the pages of
    // its points given back to its series file, which this client does not
    // send).
    let run = lab_types::RunId::new(lab_types::now_nanos(), 0);
    let bytes = Arc::new(crate::whole_journal(run, "crash", 150_000));
    let id = run.to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = start(&cluster, store.path(), addr);

    // The client: stretches of 32 KiB, retried from what the server says.
    let acked = Arc::new(AtomicU64::new(0));
    let client = {
        let (acked, bytes, token, id) = (acked.clone(), bytes.clone(), token.clone(), id.clone());
        std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                let mut at = 0usize;
                let deadline = Instant::now() + Duration::from_mins(2);
                while at < bytes.len() {
                    assert!(Instant::now() < deadline, "the client never finished");
                    let end = (at + (32 << 10)).min(bytes.len());
                    match http(
                        addr,
                        "PUT",
                        &format!("/api/v1/projects/p/runs/{id}/journal?offset={at}"),
                        Some(&token),
                        &[],
                        &bytes[at..end],
                    ) {
                        Ok(r) if r.status == 200 => {
                            at = r.json()["length"].as_u64().unwrap() as usize;
                            acked.fetch_max(at as u64, Ordering::SeqCst);
                        }
                        Ok(r) if r.status == 409 => {
                            at = r.json()["length"].as_u64().unwrap() as usize;
                        }
                        // The server is gone (or answers from a dead connection): again.
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_mins(2);
    while acked.load(Ordering::SeqCst) < bytes.len() as u64 / 3 {
        assert!(
            Instant::now() < deadline && !client.is_finished(),
            "the server never took a third of the journal"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let before = acked.load(Ordering::SeqCst);
    assert!(
        before < bytes.len() as u64,
        "the upload ended before the kill"
    );
    let mut server = start(&cluster, store.path(), addr);
    let held = http(
        addr,
        "GET",
        &format!("/api/v1/projects/p/runs/{id}/journal/length"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert!(
        held.json()["length"].as_u64().unwrap() >= before,
        "acknowledged {before} bytes, the server holds {}",
        held.json()
    );
    client.join().unwrap();
    let copy = http(
        addr,
        "GET",
        &format!("/api/v1/projects/p/runs/{id}/journal"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert!(
        copy.body == *bytes,
        "the server's copy differs from the journal"
    );
    // Every point once: the index counts what the journal holds.
    let shown = http(
        addr,
        "GET",
        &format!("/api/v1/projects/p/runs/{id}"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(
        crate::metric_count(&shown.json(), "loss"),
        Some(150_000),
        "{}",
        shown.json()["metrics"]
    );
    assert_eq!(shown.json()["status"], "finished");
    server.kill().unwrap();
    server.wait().unwrap();
}
