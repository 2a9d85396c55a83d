//! The `lab` binary: `lab server` killed with SIGKILL while a client sends a
//! journal, then started again (every byte it acknowledged is there, and the
//! client goes on to the end with nothing counted twice); and `lab server
//! token`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use lab_sdk::{EnvRequest, Run, StartOptions};
use lab_team::Role;
use lab_types::Status;

use crate::{Cluster, http};

/// The `lab` binary beside this test's (both in `target/<profile>`).
fn lab() -> PathBuf {
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
    // A journal of a few megabytes.
    let (dir, project, run) = {
        let _guard = crate::SDK.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = lab_store::Project::create(dir.path()).unwrap();
        let run = Run::start(
            &project,
            StartOptions {
                experiment: "big".into(),
                attrs: Vec::new(),
                env: EnvRequest::default(),
            },
        )
        .unwrap();
        for step in 0..150_000 {
            run.log_metric("loss", 1.0 / f64::from(step + 1), Some(i64::from(step)))
                .unwrap();
        }
        run.end(Status::Finished, None).unwrap();
        lab_sdk::wait_for_background();
        (dir, project, run)
    };
    let bytes = Arc::new(crate::journal_bytes(&project, &run));
    let id = run.id().to_string();
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
    while acked.load(Ordering::SeqCst) < bytes.len() as u64 / 3 {
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
    drop(dir);
}

#[test]
fn the_token_commands_make_list_and_revoke_tokens() {
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let lab_cmd = |args: &[&str]| {
        let out = Command::new(lab())
            .args(["server", "token"])
            .args(args)
            .args(["--database", &cluster.lab()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = lab_cmd(&[
        "create",
        "--name",
        "ada",
        "--role",
        "writer",
        "--project",
        "p",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    // The token alone on the last line; what it is for on stderr.
    let token = stdout.lines().last().unwrap().to_owned();
    assert!(token.starts_with("lab_") && token.len() == 68, "{stdout}");
    assert!(
        stderr.contains("writer token `ada` for project `p`"),
        "{stderr}"
    );
    let (code, _, stderr) = lab_cmd(&["create", "--name", "ada", "--role", "reader"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("a token named `ada` exists already"),
        "{stderr}"
    );
    let (code, _, stderr) = lab_cmd(&["create", "--name", "x", "--role", "owner"]);
    assert_eq!(code, Some(2), "{stderr}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = start(&cluster, store.path(), addr);
    let me = http(addr, "GET", "/api/v1/whoami", Some(&token), &[], b"").unwrap();
    assert_eq!(me.status, 200);
    let (code, stdout, _) = lab_cmd(&["list"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.starts_with("NAME\tROLE\tPROJECT\tCREATED\tREVOKED\nada\twriter\tp\t"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("\t-"), "{stdout}");
    assert!(
        !stdout.contains(&token[4..]),
        "the list shows the token: {stdout}"
    );
    let (code, _, stderr) = lab_cmd(&["revoke", "ada"]);
    assert_eq!(code, Some(0), "{stderr}");
    let me = http(addr, "GET", "/api/v1/whoami", Some(&token), &[], b"").unwrap();
    assert_eq!(me.status, 401);
    let (code, _, stderr) = lab_cmd(&["revoke", "nobody"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no token named `nobody`"), "{stderr}");
    server.kill().unwrap();
    server.wait().unwrap();
}
