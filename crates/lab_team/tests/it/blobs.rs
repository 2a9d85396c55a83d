//! Blobs uploaded in parts, interrupted and resumed (across a restart of
//! the server), verified by SHA-256, refused under a wrong hash; file lists.
//! In a folder, and in a real S3 server (`s3s-fs`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_team::Role;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{Cluster, Server, http};

/// Bytes that do not repeat in any part.
fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        write!(s, "{b:02x}").unwrap();
        s
    })
}

const PART: u64 = 1 << 20;

/// Uploads `blob` under `sha` in the order the server lacks parts,
/// restarting the server (with `restart`) after the first two parts.
fn upload_interrupted(
    mut s: Server,
    restart: impl Fn(Server) -> Server,
    token: &str,
    blob: &[u8],
    sha: &str,
) -> (Server, u16) {
    let started = http(
        s.addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads"),
        Some(token),
        &[],
        json!({"size": blob.len()}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        started.status,
        201,
        "{}",
        String::from_utf8_lossy(&started.body)
    );
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    assert_eq!(started.json()["part_size"].as_u64(), Some(PART));
    let parts: Vec<&[u8]> = blob.chunks(PART as usize).collect();
    let put = |s: &Server, n: usize| {
        http(
            s.addr,
            "PUT",
            &format!("/api/v1/blobs/{sha}/uploads/{id}/parts/{n}"),
            Some(token),
            &[],
            parts[n - 1],
        )
        .unwrap()
    };
    assert_eq!(put(&s, 1).status, 204);
    assert_eq!(put(&s, 3).status, 204);
    // Again, the same bytes: fine.
    assert_eq!(put(&s, 3).status, 204);
    // A part of the wrong size, or number.
    let short = http(
        s.addr,
        "PUT",
        &format!("/api/v1/blobs/{sha}/uploads/{id}/parts/2"),
        Some(token),
        &[],
        &parts[1][..10],
    )
    .unwrap();
    assert_eq!(
        (short.status, short.code()),
        (400, "bad_request".to_owned())
    );
    let beyond = http(
        s.addr,
        "PUT",
        &format!("/api/v1/blobs/{sha}/uploads/{id}/parts/{}", parts.len() + 1),
        Some(token),
        &[],
        parts[0],
    )
    .unwrap();
    assert_eq!(beyond.status, 400);
    // Completing too early says what is missing.
    let early = http(
        s.addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads/{id}/complete"),
        Some(token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(early.status, 409);
    // The server goes away and comes back: it still holds parts 1 and 3.
    s = restart(s);
    let held = http(
        s.addr,
        "GET",
        &format!("/api/v1/blobs/{sha}/uploads/{id}"),
        Some(token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(held.json()["parts"], json!([1, 3]));
    for n in 1..=parts.len() {
        if n != 1 && n != 3 {
            assert_eq!(put(&s, n).status, 204);
        }
    }
    let done = http(
        s.addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads/{id}/complete"),
        Some(token),
        &[],
        b"",
    )
    .unwrap();
    (s, done.status)
}

fn check_blobs(s: Server, restart: impl Fn(Server) -> Server, token: &str) -> Server {
    let blob = data(3 * PART as usize + 12345);
    let sha = hex(&Sha256::digest(&blob));
    let (s, status) = upload_interrupted(s, &restart, token, &blob, &sha);
    assert_eq!(status, 204);
    let head = http(
        s.addr,
        "HEAD",
        &format!("/api/v1/blobs/{sha}"),
        Some(token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(head.status, 200);
    let get = |token: &str| {
        http(
            s.addr,
            "GET",
            &format!("/api/v1/blobs/{sha}"),
            Some(token),
            &[],
            b"",
        )
        .unwrap()
    };
    // A project's token reads the blobs its project's runs name, and no
    // other: knowing a hash is not enough.
    assert_eq!(get(token).status, 404);
    let listed = http(
        s.addr,
        "PUT",
        "/api/v1/projects/p/runs/fedcba9876543210fedcba9876543210/files",
        Some(token),
        &[],
        json!({"files": [{"path": "models/m.joblib", "sha256": sha, "size": blob.len()}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(listed.status, 204);
    let got = get(token);
    assert_eq!(got.status, 200);
    assert!(got.body == blob, "the blob read back differs");
    let other = s.token(
        &format!("other-{}", sha.get(..8).unwrap_or_default()),
        Role::Admin,
        Some("q"),
    );
    let refused = get(&other);
    assert_eq!(
        (refused.status, refused.code()),
        (404, "not_found".to_owned())
    );
    let everyone = s.token(
        &format!("all-{}", sha.get(..8).unwrap_or_default()),
        Role::Reader,
        None,
    );
    assert_eq!(get(&everyone).status, 200);
    let part = http(
        s.addr,
        "GET",
        &format!("/api/v1/blobs/{sha}"),
        Some(token),
        &[("Range", "bytes=1048570-1048589")],
        b"",
    )
    .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.body, blob[1_048_570..1_048_590]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1048570-1048589/{}", blob.len()).as_str())
    );
    let outside = http(
        s.addr,
        "GET",
        &format!("/api/v1/blobs/{sha}"),
        Some(token),
        &[("Range", "bytes=99999999-")],
        b"",
    )
    .unwrap();
    assert_eq!(outside.status, 416);
    // Present now: a new upload is not needed.
    let again = http(
        s.addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads"),
        Some(token),
        &[],
        br#"{"size": 5}"#,
    )
    .unwrap();
    assert_eq!(
        (again.status, again.json()),
        (200, json!({"present": true}))
    );

    // Bytes that are not what their hash says: refused, and not kept.
    let wrong = hex(&Sha256::digest(b"something else"));
    let (s, status) = upload_interrupted(s, &restart, token, &blob, &wrong);
    assert_eq!(status, 422);
    let head = http(
        s.addr,
        "HEAD",
        &format!("/api/v1/blobs/{wrong}"),
        Some(token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(head.status, 404);

    // A run's file list names blobs the server holds.
    let run = "0123456789abcdef0123456789abcdef";
    let files = |list: serde_json::Value| {
        http(
            s.addr,
            "PUT",
            &format!("/api/v1/projects/p/runs/{run}/files"),
            Some(token),
            &[],
            list.to_string().as_bytes(),
        )
        .unwrap()
    };
    let r = files(
        json!({"files": [{"path": "models/m.joblib", "sha256": sha, "size": blob.len()}, {"path": "artifacts/a.txt", "sha256": wrong, "size": 3}]}),
    );
    assert_eq!((r.status, r.code()), (409, "missing_blobs".to_owned()));
    assert_eq!(r.json()["missing"], json!([wrong]));
    let r = files(json!({"files": [{"path": "../../etc/passwd", "sha256": sha, "size": 1}]}));
    assert_eq!(r.status, 400);
    let r =
        files(json!({"files": [{"path": "models/m.joblib", "sha256": sha, "size": blob.len()}]}));
    assert_eq!(r.status, 204);
    s
}

#[test]
fn a_blob_uploaded_in_parts_resumes_after_a_restart_and_is_verified() {
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| o.part_size = PART);
    let token = s.token("ci", Role::Writer, Some("p"));
    let restart = |s: Server| {
        let url = format!("file://{}", s.store.path().display());
        let (cluster, store) = s.stop();
        Server::on(cluster, store, &url, |o| o.part_size = PART)
    };
    let s = check_blobs(s, restart, &token);
    // Nothing of the uploads is left behind; the blob is where it belongs.
    let uploads = s.store.path().join("uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| {
            d.flatten()
                .flat_map(|e| {
                    std::fs::read_dir(e.path())
                        .unwrap()
                        .flatten()
                        .map(|f| f.path())
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A running `s3s-fs`, whose root's folders are buckets.
struct S3 {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl S3 {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("lab-team")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::on(root, port)
    }

    /// `s3s-fs` on `root` and `port`.
    fn on(root: tempfile::TempDir, port: u16) -> Self {
        let child = spawn(root.path(), port);
        Self { child, port, root }
    }

    /// Stops the server (SIGKILL), keeping what it holds.
    fn stop(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts it again, on the same folder and port.
    fn resume(&mut self) {
        self.child = spawn(self.root.path(), self.port);
    }
}

/// Starts `s3s-fs` on `root` and `port`, and waits until it listens.
fn spawn(root: &std::path::Path, port: u16) -> Child {
    let mut child = Command::new("s3s-fs")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "lab-test-access", "--secret-key", "lab-test-secret-key"])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the S3 tests need s3s-fs: cargo install --locked s3s-fs --version 0.14.1 --features binary");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "s3s-fs exited at start"
        );
        assert!(Instant::now() < deadline, "s3s-fs did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn blobs_and_journals_go_to_a_real_s3_server() {
    let mut s3 = S3::start();
    // The standard variables configure the store (this test alone sets them).
    // SAFETY: no other thread of this test binary reads or writes them.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "lab-test-access");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "lab-test-secret-key");
        std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port));
    }
    let url = "s3://lab-team/some/prefix";
    let s = Server::on(Cluster::start(), tempfile::tempdir().unwrap(), url, |o| {
        o.part_size = PART;
    });
    let token = s.token("ci", Role::Writer, Some("p"));
    let restart = |s: Server| {
        let (cluster, store) = s.stop();
        Server::on(cluster, store, url, |o| o.part_size = PART)
    };
    let s = check_blobs(s, restart, &token);
    // A journal too.
    let (_dir, project, runs) = crate::local_project();
    let bytes = crate::journal_bytes(&project, &runs[0]);
    let id = runs[0].id().to_string();
    assert_eq!(
        crate::send_journal(s.addr, &token, "p", &id, &bytes, 1000),
        bytes.len() as u64
    );
    let copy = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/p/runs/{id}/journal"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert!(copy.body == bytes);
    // The store goes away: the server says so at once (503, so the client
    // backs off) and keeps nothing; back, everything goes on.
    s3.stop();
    let second = crate::journal_bytes(&project, &runs[1]);
    let other = runs[1].id().to_string();
    let started = Instant::now();
    let r = http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/p/runs/{other}/journal?offset=0"),
        Some(&token),
        &[],
        &second,
    )
    .unwrap();
    assert_eq!((r.status, r.code()), (503, "unavailable".to_owned()));
    assert!(r.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    s3.resume();
    assert_eq!(
        crate::send_journal(s.addr, &token, "p", &other, &second, 1 << 20),
        second.len() as u64
    );
    let copy = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/p/runs/{other}/journal"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert!(copy.body == second);
    let stored = s3
        .root
        .path()
        .join(format!("lab-team/some/prefix/projects/p/runs/{id}/journal"));
    assert!(stored.is_dir(), "{}", stored.display());
}

#[test]
fn an_upload_never_completed_is_dropped_with_its_parts() {
    let cluster = Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| {
        o.part_size = PART;
        o.upload_ttl = Duration::from_secs(2);
    });
    let token = s.token("ci", Role::Writer, Some("p"));
    let blob = data(2 * PART as usize);
    let sha = hex(&Sha256::digest(&blob));
    let started = http(
        s.addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads"),
        Some(&token),
        &[],
        json!({"size": blob.len()}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(started.status, 201);
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    let part = http(
        s.addr,
        "PUT",
        &format!("/api/v1/blobs/{sha}/uploads/{id}/parts/1"),
        Some(&token),
        &[],
        &blob[..PART as usize],
    )
    .unwrap();
    assert_eq!(part.status, 204);
    let parts = s.store.path().join("uploads").join(&id);
    assert_eq!(std::fs::read_dir(&parts).unwrap().count(), 1);
    // The server looks every half second here (a quarter of the time to
    // live); the upload goes within a few.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = http(
            s.addr,
            "GET",
            &format!("/api/v1/blobs/{sha}/uploads/{id}"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        if asked.status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the upload was never dropped");
        std::thread::sleep(Duration::from_millis(200));
    }
    let left = std::fs::read_dir(&parts).map_or(0, Iterator::count);
    assert_eq!(left, 0, "its parts are deleted too");
    // The client starts again: a new upload.
    let again = http(
        s.addr,
        "POST",
        &format!("/api/v1/blobs/{sha}/uploads"),
        Some(&token),
        &[],
        json!({"size": blob.len()}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(again.status, 201);
}
