//! The team server against the real parts: a PostgreSQL cluster of each
//! test's own (`lab_pg`'s test harness), an object store in a folder
//! (`file://`) or a real S3 server (`s3s-fs`), the server on a real socket
//! (in this process, or the `lab` binary for the crash test), and plain
//! HTTP/1.1 requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::must_use_candidate)] // Tests fail loudly by design.

#[path = "../../../lab_pg/tests/it/cluster.rs"]
mod cluster;

mod blobs;
pub(crate) mod crash;
mod edits;
mod events;
mod journals;
mod short_ids;
mod tls;
mod tokens;
mod web;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use lab_journal::JournalWriter;
use lab_sdk::{EnvRequest, Run, StartOptions};
use lab_store::Project;
use lab_team::{AppState, Options, Role};
use lab_types::{MetricPoint, Record, RunId, Status, Value};
use serde_json::Value as J;

pub use cluster::Cluster;

/// Runs end one test at a time (`wait_for_background` joins them all).
pub static SDK: Mutex<()> = Mutex::new(());

/// A server running in this process on a port of the loopback, with its
/// database and its object store (a folder); stopped when dropped.
pub struct Server {
    /// First, so that it is dropped (the server stopped) before the rest.
    runner: Runner,
    pub addr: SocketAddr,
    pub cluster: Cluster,
    pub store: tempfile::TempDir,
}

/// Another server on the same database and object store.
pub struct Replica {
    _runner: Runner,
    pub addr: SocketAddr,
}

/// Serves `state` on a port of the loopback, on a thread of its own.
fn run(state: AppState) -> (Runner, SocketAddr) {
    run_tls(state, None)
}

/// Serves `state` over TLS with `tls` when given.
pub fn run_tls(state: AppState, tls: Option<lab_team::Tls>) -> (Runner, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("test-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                lab_team::serve(listener, state, tls, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        })
        .unwrap();
    (
        Runner {
            stop: Some(stop),
            thread: Some(thread),
        },
        addr,
    )
}

/// The server's thread, stopped and joined when dropped.
pub struct Runner {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Server {
    /// A server on a new cluster and an empty folder.
    pub fn start() -> Self {
        let cluster = Cluster::start();
        let store = tempfile::tempdir().unwrap();
        let url = format!("file://{}", store.path().display());
        Self::on(cluster, store, &url, |_| {})
    }

    /// A server on `cluster` and the object store at `url`.
    pub fn on(
        cluster: Cluster,
        store: tempfile::TempDir,
        url: &str,
        tune: impl FnOnce(&mut Options),
    ) -> Self {
        let mut options = Options::new(cluster.lab(), url.to_owned());
        tune(&mut options);
        let state = AppState::open(options).unwrap();
        let (runner, addr) = run(state);
        Self {
            runner,
            addr,
            cluster,
            store,
        }
    }

    /// Stops the server, keeping its database and object store.
    pub fn stop(self) -> (Cluster, tempfile::TempDir) {
        drop(self.runner);
        (self.cluster, self.store)
    }

    /// A second server on the same database and object store, as another
    /// replica would be.
    pub fn replica(&self) -> Replica {
        let url = format!("file://{}", self.store.path().display());
        let state = AppState::open(Options::new(self.cluster.lab(), url)).unwrap();
        let (runner, addr) = run(state);
        Replica {
            _runner: runner,
            addr,
        }
    }

    /// A new token's text.
    pub fn token(&self, name: &str, role: Role, project: Option<&str>) -> String {
        lab_team::create_token(&self.cluster.lab(), name, role, project).unwrap()
    }
}

/// An HTTP response: status, headers (lower-case names), body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> J {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    /// The `error.code` of a JSON error.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a new connection.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        write!(head, "Authorization: Bearer {t}\r\n").unwrap();
    }
    for (k, v) in extra {
        write!(head, "{k}: {v}\r\n").unwrap();
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // A server refusing a large body may close before reading it all.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of the response's head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

/// A project on disk with one finished run (parameters, many metric
/// points, a tag) and one failed run; returns the project and the runs'
/// ids.
pub fn local_project() -> (tempfile::TempDir, Project, Vec<Arc<Run>>) {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    let mut runs = Vec::new();
    for (i, status) in [Status::Finished, Status::Failed].into_iter().enumerate() {
        let run = Run::start(
            &project,
            StartOptions {
                experiment: "iris".into(),
                attrs: vec![("source".into(), Value::Str("train.py".into()))],
                env: EnvRequest::default(),
                ..Default::default()
            },
        )
        .unwrap();
        run.log_param("depth", Value::Int(3 + i as i64)).unwrap();
        run.log_param("label", Value::Str(format!("model {i}")))
            .unwrap();
        for step in 0..2000 {
            run.log_metric("loss", 1.0 / f64::from(step + 1), Some(i64::from(step)))
                .unwrap();
        }
        run.log_metric("accuracy", 0.5 + 0.1 * i as f64, None)
            .unwrap();
        run.set_tag("team", "vision").unwrap();
        run.end(status, None).unwrap();
        runs.push(run);
    }
    lab_sdk::wait_for_background();
    (dir, project, runs)
}

/// The journal of run `run` of `project`, as its file holds it.
pub fn journal_bytes(project: &Project, run: &Run) -> Vec<u8> {
    std::fs::read(project.run_paths(&run.id().short()).journal).unwrap()
}

/// Sends `bytes` (a whole journal) from offset 0 in stretches of `size`
/// bytes, each from where the server says it got; returns the length it
/// holds at the end.
pub fn send_journal(
    addr: SocketAddr,
    token: &str,
    project: &str,
    run: &str,
    bytes: &[u8],
    mut size: usize,
) -> u64 {
    let mut at = 0usize;
    while at < bytes.len() {
        let end = (at + size).min(bytes.len());
        let r = http(
            addr,
            "PUT",
            &format!("/api/v1/projects/{project}/runs/{run}/journal?offset={at}"),
            Some(token),
            &[("Content-Type", "application/octet-stream")],
            &bytes[at..end],
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let length = r.json()["length"].as_u64().unwrap() as usize;
        if length == at {
            // No whole frame in the stretch: send a longer one.
            assert!(end < bytes.len(), "the journal ends inside a frame");
            size *= 2;
        }
        at = length;
    }
    at as u64
}

/// How many points of metric `name` a run's detail (JSON) counts.
pub fn metric_count(detail: &J, name: &str) -> Option<u64> {
    detail["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?["count"]
        .as_u64()
}

/// A whole journal of run `run`: a parameter `machine`, `count` points of
/// metric `loss`, and an End record.
pub fn whole_journal(run: RunId, machine: &str, count: i64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let mut w = JournalWriter::create(&path).unwrap();
    let t = lab_types::now_nanos();
    w.append(&Record::Start {
        run,
        time_nanos: t,
        experiment: "iris".into(),
    })
    .unwrap();
    w.append(&Record::Param {
        time_nanos: t,
        key: "machine".into(),
        value: Value::Str(machine.into()),
    })
    .unwrap();
    w.append(&Record::MetricKey {
        key: 0,
        name: "loss".into(),
    })
    .unwrap();
    for step in 0..count {
        w.append(&Record::Metric {
            time_nanos: t + step,
            point: MetricPoint {
                key: 0,
                step,
                value: 1.0 / (step + 1) as f64,
            },
        })
        .unwrap();
    }
    w.append_final(&Record::End {
        time_nanos: t + count,
        status: Status::Finished,
        error: None,
    })
    .unwrap();
    let len = usize::try_from(w.len()).unwrap();
    drop(w);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(len);
    bytes
}
