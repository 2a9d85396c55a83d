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

/// The most memory process `pid` has held, in bytes (`VmHWM`).
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_blob_larger_than_the_servers_memory_use_goes_up_and_is_verified() {
    use sha2::{Digest as _, Sha256};
    const PART: usize = 8 << 20;
    const PARTS: usize = 24;
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let token = lab_team::create_token(&cluster.lab(), "ci", Role::Writer, None).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = start(&cluster, store.path(), addr);
    // Part n's bytes, made again whenever needed: the test holds one part.
    let part_bytes = |n: usize| -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ n as u64;
        (0..PART)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let mut hasher = Sha256::new();
    for n in 0..PARTS {
        hasher.update(part_bytes(n));
    }
    let sha = hasher.finalize().iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        write!(s, "{b:02x}").unwrap();
        s
    });
    let size = PART * PARTS;
    let started = http(
        addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads"),
        Some(&token),
        &[],
        format!("{{\"size\": {size}}}").as_bytes(),
    )
    .unwrap();
    assert_eq!(started.status, 201);
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    assert_eq!(started.json()["part_size"].as_u64(), Some(PART as u64));
    // What the server holds once it has taken a third of the parts.
    let mut early = 0;
    for n in 0..PARTS {
        let r = http(
            addr,
            "PUT",
            &format!("/api/v1/blobs/{sha}/uploads/{id}/parts/{}", n + 1),
            Some(&token),
            &[],
            &part_bytes(n),
        )
        .unwrap();
        assert_eq!(r.status, 204);
        if n == PARTS / 3 {
            early = peak_memory(server.id());
        }
    }
    let done = http(
        addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads/{id}/complete"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(done.status, 204, "{}", String::from_utf8_lossy(&done.body));
    let peak = peak_memory(server.id());
    // The blob is 192 MiB; the server holds a part or a few at a time, so
    // its memory stops growing long before the blob's end.
    eprintln!(
        "server memory peak: {} MiB after a third of the parts, {} MiB at the end",
        early >> 20,
        peak >> 20
    );
    let blob = (PART * PARTS) as u64;
    assert!(
        peak < blob * 3 / 4,
        "the server's memory peaked at {} MiB",
        peak >> 20
    );
    assert!(
        peak < early + (48 << 20),
        "the server's memory grew from {} to {} MiB",
        early >> 20,
        peak >> 20
    );
    let kept = store.path().join(format!("blobs/{}/{sha}", &sha[..2]));
    assert_eq!(std::fs::metadata(&kept).unwrap().len(), size as u64);
    server.kill().unwrap();
    server.wait().unwrap();
}
