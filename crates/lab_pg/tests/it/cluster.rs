//! A PostgreSQL cluster of a test's own: made with `initdb` in a temporary
//! folder, started with `pg_ctl` on a free port of 127.0.0.1, stopped and
//! removed when dropped. Run as root (as CI is), PostgreSQL's programs run as
//! the `postgres` user, since `initdb` refuses root; the folder is then
//! readable by all, which it must be for that user to reach its data.
//!
//! A watchdog process stops the cluster and removes its folder when the
//! test process dies without dropping it (killed, or timed out).
//!
//! The cluster's default collation is ICU's English where this PostgreSQL
//! has ICU, so that text compared without the index's own "C" collation
//! would order differently from SQLite and show.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    watchdog: Option<std::process::Child>,
}

/// Waits for the test process (`$1`) to end while the cluster's data
/// folder (`$2`) exists; if the folder outlives the process, stops the
/// cluster with `pg_ctl` (`$3`, run as `postgres` when `$4` says so) and
/// removes the folder's parent.
const WATCHDOG: &str = r#"
pid=$1; data=$2; pg_ctl=$3; as_postgres=$4
alive() { [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; }
while alive && [ -d "$data" ]; do sleep 0.5; done
if [ -d "$data" ]; then
  if [ "$as_postgres" = yes ]; then
    runuser -u postgres -- "$pg_ctl" -D "$data" -m immediate -w stop
  else
    "$pg_ctl" -D "$data" -m immediate -w stop
  fi
  rm -rf "$(dirname "$data")"
fi
"#;

/// The newest PostgreSQL's programs (`PG_BIN` overrides).
fn pg_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return bin.into();
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed in /usr/lib/postgresql (apt-get install postgresql); set PG_BIN to its programs' folder otherwise")
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("no PostgreSQL with initdb in /usr/lib/postgresql/*/bin")
        .1
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// Makes and starts a cluster, with an empty database `lab`.
    pub fn start() -> Self {
        let as_postgres = is_root();
        // The postgres user must reach the folder: not under root's home,
        // wherever TMPDIR points.
        let dir = if as_postgres {
            tempfile::tempdir_in("/tmp")
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("pg");
        if as_postgres {
            let status = Command::new("install")
                .args(["-d", "-o", "postgres", "-g", "postgres"])
                .arg(&data)
                .status()
                .unwrap();
            assert!(status.success());
        } else {
            std::fs::create_dir(&data).unwrap();
        }
        let mut cluster = Cluster {
            _dir: dir,
            data,
            bin: pg_bin(),
            as_postgres,
            port: 0,
            watchdog: None,
        };
        let base = [
            "-D",
            path(&cluster.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ];
        let icu = cluster.run(
            "initdb",
            &[
                &base[..],
                &[
                    "--locale=C.UTF-8",
                    "--locale-provider=icu",
                    "--icu-locale=en",
                ],
            ]
            .concat(),
        );
        if !icu.status.success() {
            // A PostgreSQL without ICU: the default collation is the locale's.
            let plain = cluster.run("initdb", &base);
            assert!(
                plain.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&plain.stderr)
            );
        }
        // A free port may be taken between looking and starting: try again.
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let options = format!("-p {port} -h 127.0.0.1 -k {} -F", path(&cluster.data));
            let log = cluster.data.join("server.log");
            let out = cluster.run(
                "pg_ctl",
                &[
                    "-D",
                    path(&cluster.data),
                    "-l",
                    path(&log),
                    "-o",
                    &options,
                    "-w",
                    "start",
                ],
            );
            if out.status.success() {
                cluster.port = port;
                cluster.watchdog = Some(
                    Command::new("sh")
                        .args(["-c", WATCHDOG, "watchdog"])
                        .arg(std::process::id().to_string())
                        .arg(&cluster.data)
                        .arg(cluster.bin.join("pg_ctl"))
                        .arg(if cluster.as_postgres { "yes" } else { "no" })
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap(),
                );
                cluster.sql("postgres", "CREATE DATABASE lab");
                return cluster;
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(cluster.data.join("server.log")).unwrap_or_default()
        );
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL of the database `lab`.
    pub fn lab(&self) -> String {
        self.url("lab")
    }

    /// The cluster's port and data folder.
    pub fn place(&self) -> (u16, &Path) {
        (self.port, &self.data)
    }

    /// What the server has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    /// Runs `sql` in database `db`.
    pub fn sql(&self, db: &str, sql: &str) {
        let mut client = postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // pg_ctl's server keeps the output pipes open: discard them.
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.port != 0 {
            let _ = self.run(
                "pg_ctl",
                &["-D", path(&self.data), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
