//! `lab config minio`, `lab push`, `lab pull` against a real S3 server:
//! `s3s-fs` 0.14.1 (`cargo install --locked s3s-fs --version 0.14.1
//! --features binary`; `.ci/run` installs it), started for each test on a
//! free port of the loopback and stopped after it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use lab_store::Project;
use lab_types::{Status, Value};

use crate::{Output, SDK, end, run_lab, start, wait};

const AK: &str = "lab-test-access";
const SK: &str = "lab-test-secret-key";
const BUCKET: &str = "lab-runs";

/// A running `s3s-fs`; each folder of its root is a bucket.
struct S3 {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl S3 {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        // A free port may be taken by another test's server before this
        // one binds it: then it exits, and another port is tried.
        for _ in 0..10 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("s3s-fs")
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", AK, "--secret-key", SK])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(
                    "the tests of `lab push` need the S3 server s3s-fs: \
                     cargo install --locked s3s-fs --version 0.14.1 --features binary",
                );
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
                && child.try_wait().unwrap().is_none()
            {
                assert!(Instant::now() < deadline, "s3s-fs did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
            // Listening, and not someone else's server on that port.
            std::thread::sleep(Duration::from_millis(100));
            if child.try_wait().unwrap().is_none() {
                return Self { child, port, root };
            }
        }
        panic!("s3s-fs could not listen on any port");
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every file the server keeps, with its bytes: the whole bucket state.
    fn state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        tree(self.root.path())
            .into_iter()
            .filter(|(_, f)| f.is_some())
            .map(|(p, f)| (p, f.unwrap().0))
            .collect()
    }

    fn blobs(&self, project: &str) -> Vec<String> {
        let dir = self.root.path().join(BUCKET).join(project).join("blobs");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A user's machine: a configuration folder and a folder to work in.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Self { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
        cmd.args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.config())
            .env_remove("LAB_PROJECT")
            .stdin(Stdio::null());
        cmd
    }

    fn lab(&self, cwd: &Path, args: &[&str]) -> Output {
        run_lab(self.command(cwd, args))
    }

    fn lab_ok(&self, cwd: &Path, args: &[&str]) -> Output {
        let out = self.lab(cwd, args);
        assert_eq!(
            out.code, 0,
            "lab {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out
    }

    fn add_remote(&self, s3: &S3) {
        self.lab_ok(
            &self.work(),
            &[
                "config",
                "minio",
                "--tag",
                "minio",
                "--endpoint",
                &s3.endpoint(),
                "--accesskey",
                AK,
                "--secretkey",
                SK,
            ],
        );
    }
}

/// Every file and folder under `root`: files with their bytes and mode.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<(Vec<u8>, u32)>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else {
                out.insert(
                    rel,
                    Some((
                        std::fs::read(&path).unwrap(),
                        meta.permissions().mode() & 0o777,
                    )),
                );
            }
        }
    }
    out
}

/// A project folder as a push should reproduce it: without the index and
/// its rebuild lock, the push's own state, and what `.labignore` lists.
fn pushed_part(root: &Path) -> BTreeMap<PathBuf, Option<(Vec<u8>, u32)>> {
    tree(root)
        .into_iter()
        .filter(|(p, _)| {
            let s = p.to_string_lossy();
            !s.starts_with(".lab/index.sqlite")
                && s != ".lab/rebuild.lock"
                && !s.starts_with(".lab/push")
                && !s.starts_with(".lab/spare")
                && !s.starts_with(".venv")
                && !s.ends_with(".tmp")
                && s != "data/raw/secret.csv"
        })
        .collect()
}

/// A project named `demo` with code, data, runs (one with an artifact and
/// a model, one failed) and a `.labignore`.
fn demo_project(home: &Home) -> Project {
    let root = home.work().join("demo");
    let (project, _) = Project::create(&root).unwrap();
    std::fs::write(root.join("train.py"), "print('training')\n").unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh\npython train.py\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("data/raw")).unwrap();
    std::fs::write(root.join("data/iris.csv"), "5.1,3.5,1.4,0.2,setosa\n").unwrap();
    std::fs::write(root.join("data/copy.csv"), "5.1,3.5,1.4,0.2,setosa\n").unwrap();
    std::fs::create_dir_all(root.join("notebooks")).unwrap();
    // Left out by `.labignore`: a folder, a pattern, and (below) a file
    // named in a nested `.labignore`.
    std::fs::write(root.join(".labignore"), ".venv\n*.tmp\n").unwrap();
    std::fs::create_dir_all(root.join(".venv/bin")).unwrap();
    std::fs::write(root.join(".venv/bin/python"), "not pushed").unwrap();
    std::fs::write(root.join("scratch.tmp"), "not pushed").unwrap();
    std::fs::write(root.join("data/raw/.labignore"), "secret.csv\n").unwrap();
    std::fs::write(root.join("data/raw/secret.csv"), "not pushed").unwrap();
    std::fs::write(root.join("data/raw/public.csv"), "pushed").unwrap();

    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let a = start(&project, "iris", "train.py", 1);
    a.log_param("seed", Value::Int(1)).unwrap();
    for loss in [1.0, 0.5, 0.25] {
        a.log_metric("loss", loss, None).unwrap();
    }
    a.log_metric("acc", 0.93, None).unwrap();
    let csv = root.join("data/iris.csv");
    a.log_artifact("dataset", &csv).unwrap();
    let tmp = a.models_dir().unwrap().join(".clf.tmp");
    std::fs::write(&tmp, b"not really a forest").unwrap();
    a.add_model(
        "clf",
        &tmp,
        "joblib",
        "sklearn.tree.DecisionTree",
        "sklearn",
        "1.9.1",
    )
    .unwrap();
    end(&a, Status::Finished, None);
    wait();
    let b = start(&project, "iris", "train.py", 2);
    b.log_metric("acc", 0.5, None).unwrap();
    end(&b, Status::Failed, None);
    wait();
    project
}

/// The `N` of "N file(s) sent" and "M unchanged" in a push's summary.
fn counts(summary: &str) -> (usize, usize) {
    let number_before = |word: &str| -> usize {
        let at = summary
            .find(word)
            .unwrap_or_else(|| panic!("no `{word}` in {summary}"));
        summary[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .trim_start_matches(['(', ','])
            .parse()
            .unwrap()
    };
    (number_before("file(s) sent"), number_before("unchanged"))
}

#[test]
fn push_then_pull_reproduces_the_project_and_a_second_push_sends_nothing() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    // A run whose process died: its journal still has the space its
    // writer kept in reserve, which the first reader cuts off.
    let crashed = {
        let start = lab_types::now_nanos();
        let (id, paths) = project.claim_run(start).unwrap();
        let mut w = lab_journal::JournalWriter::create(&paths.journal).unwrap();
        w.append(&lab_types::Record::Start {
            run: id,
            time_nanos: start,
            experiment: "iris".into(),
        })
        .unwrap();
        drop(w);
        paths.journal
    };
    let reserved = std::fs::metadata(&crashed).unwrap().len();
    assert!(reserved > 4096, "the journal keeps no reserve: {reserved}");
    // A run still logging: its folder is left out, with a warning.
    let live = {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        start(&project, "iris", "train.py", 3)
    };
    live.log_metric("acc", 0.1, None).unwrap();

    let out = home.lab_ok(&root, &["push", "--tag", "minio", "--bucket", BUCKET, "."]);
    let short = &live.id().to_string()[..8];
    assert!(
        out.stderr.contains(&format!(
            "warning: run `{short}` is still running, so its folder `.lab/runs/{short}` was left out"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.starts_with(&format!(
            "Pushed `demo` to s3://{BUCKET}/demo/ (remote `minio`): "
        )),
        "{}",
        out.stdout
    );
    let (sent, unchanged) = counts(&out.stdout);
    assert_eq!(unchanged, 0, "{}", out.stdout);
    // data/copy.csv and the run's artifact have the bytes of
    // data/iris.csv: they are stored once.
    let files_pushed = sent;
    let contents: std::collections::BTreeSet<Vec<u8>> = pushed_part(&root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(format!(".lab/runs/{short}")))
        .filter_map(|(_, f)| f.map(|(bytes, _)| bytes))
        .collect();
    assert!(contents.len() < files_pushed);
    assert_eq!(
        s3.blobs("demo").len(),
        contents.len(),
        "one blob per distinct content"
    );

    // The pulled copy is the project, file for file, byte for byte.
    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = home.lab_ok(
        &elsewhere,
        &[
            "pull",
            "--tag",
            "minio",
            "--bucket",
            BUCKET,
            "--project",
            "demo",
        ],
    );
    assert!(
        out.stdout.contains(" 3 run(s) indexed, in "),
        "{}",
        out.stdout
    );
    assert!(
        std::fs::metadata(&crashed).unwrap().len() < reserved,
        "the push did not fold the crashed run's journal"
    );
    let pulled = elsewhere.join("demo");
    let mut expected = pushed_part(&root);
    expected.retain(|p, _| !p.starts_with(format!(".lab/runs/{short}")));
    let got = pushed_part(&pulled);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(got == expected, "the pulled files differ in bytes or mode");
    assert!(
        got.contains_key(Path::new("notebooks")),
        "an empty folder comes back"
    );
    assert!(!pulled.join(".venv").exists() && !pulled.join("scratch.tmp").exists());
    assert!(!pulled.join("data/raw/secret.csv").exists());
    assert!(pulled.join("data/raw/public.csv").exists());
    // Its runs read as they do here.
    let ls = |dir: &Path| home.lab_ok(dir, &["ls", "--format", "json"]).stdout;
    let here: serde_json::Value = serde_json::from_str(&ls(&root)).unwrap();
    let there: serde_json::Value = serde_json::from_str(&ls(&pulled)).unwrap();
    let finished: Vec<_> = here
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "running")
        .cloned()
        .collect();
    assert_eq!(there.as_array().unwrap(), &finished);
    let statuses: Vec<&str> = finished
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["crashed", "failed", "finished"]);
    let shown = home.lab_ok(
        &pulled,
        &["show", &finished[1]["id"].as_str().unwrap()[..8]],
    );
    assert!(shown.stdout.contains("failed"), "{}", shown.stdout);

    // Unchanged (but for the live run): nothing is sent, nothing rewritten.
    let before = s3.state();
    let out = home.lab_ok(&root, &["push"]);
    assert_eq!(counts(&out.stdout), (0, files_pushed), "{}", out.stdout);
    assert!(out.stdout.contains("(0 B)"), "{}", out.stdout);
    assert!(s3.state() == before, "an unchanged push changed the bucket");

    // Once it has ended, the run goes too.
    end(&live, Status::Finished, None);
    {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        wait();
    }
    let out = home.lab_ok(&root, &["push"]);
    assert_eq!(out.stderr, "", "no warning once the run ended");
    let (sent, unchanged) = counts(&out.stdout);
    assert!(sent >= 1 && unchanged >= files_pushed - 1, "{}", out.stdout);
    let again = home.dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    // No options: the last remote, bucket and project.
    let out = home.lab_ok(&again, &["pull"]);
    assert!(
        out.stdout.contains(" 4 run(s) indexed, in "),
        "{}",
        out.stdout
    );
    same_files(&again.join("demo"), &root);
}

#[test]
fn dry_run_changes_nothing_and_force_prunes_after_a_warning() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    home.lab_ok(&root, &["push", "--tag", "minio", "--bucket", BUCKET]);
    let old_blobs = s3.blobs("demo");

    std::fs::remove_file(root.join("run.sh")).unwrap();
    std::fs::write(root.join("train.py"), "print('training harder')\n").unwrap();
    let bucket_before = s3.state();
    let local_before = tree(&root);

    let out = home.lab_ok(&root, &["push", "--dry-run"]);
    assert!(
        out.stdout.contains("send    train.py (25 B)\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("delete  "), "{}", out.stdout);
    let out = home.lab_ok(&root, &["push", "--dry-run", "--force"]);
    assert!(out.stdout.contains("delete  run.sh\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Would send 1 file(s) (25 B) to s3://lab-runs/demo/ (remote `minio`), ")
            && out.stdout.contains(", 1 deleted; nothing was sent"),
        "{}",
        out.stdout
    );
    assert!(s3.state() == bucket_before, "a dry run changed the bucket");
    assert!(tree(&root) == local_before, "a dry run changed the project");

    // Without `--force`, a file gone here stays in the bucket.
    let out = home.lab_ok(&root, &["push"]);
    assert!(
        out.stdout
            .contains("1 file(s) gone here stay in the bucket (`--force` deletes them)"),
        "{}",
        out.stdout
    );
    let kept = home.dir.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    home.lab_ok(&kept, &["pull"]);
    assert!(kept.join("demo/run.sh").exists());
    assert_eq!(
        std::fs::read_to_string(kept.join("demo/train.py")).unwrap(),
        "print('training harder')\n"
    );

    // With it, the bucket follows, after a warning naming what goes.
    let out = home.lab_ok(&root, &["push", "--force"]);
    assert!(
        out.stderr.contains(
            "warning: `--force` deletes 1 file(s) from the bucket that are gone here:\n  run.sh"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains(", 1 deleted"), "{}", out.stdout);
    let pruned = home.dir.path().join("pruned");
    std::fs::create_dir(&pruned).unwrap();
    home.lab_ok(&pruned, &["pull"]);
    assert!(!pruned.join("demo/run.sh").exists());
    same_files(&pruned.join("demo"), &root);
    // The old bytes of run.sh and train.py are gone from the bucket.
    let now = s3.blobs("demo");
    assert_eq!(old_blobs.iter().filter(|b| !now.contains(b)).count(), 2);
}

#[test]
fn an_interrupted_push_of_a_large_file_resumes_where_it_stopped() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    // 64 MiB of bytes that do not compress, sent in 8 parts of 8 MiB.
    let big = root.join("data/weights.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..(64 << 20) / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            std::io::Write::write_all(&mut f, &x.to_le_bytes()).unwrap();
        }
    }
    let uploads = root.join(".lab/push/uploads");
    let mut child = home
        .command(&root, &["push", "--tag", "minio", "--bucket", BUCKET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the server has some of its parts, not all.
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        // The state file itself, not the temporary one it is renamed from:
        // a push killed before that rename left the parts that file names
        // unrecorded, and sent them all again.
        let done = std::fs::read_dir(&uploads)
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "json"))
            })
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map_or(0, |state| {
                state["parts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| !p.is_null())
                    .count()
            });
        if done >= 1 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push ended before any part was seen"
        );
        assert!(Instant::now() < deadline, "no part arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !s3.root
            .path()
            .join(BUCKET)
            .join("demo/manifest.json")
            .exists(),
        "the manifest is written only once every file is in"
    );

    // The remote was remembered before the push was killed.
    let out = home.lab_ok(&root, &["push"]);
    let summary = out.stdout.clone();
    // Parts already there are not sent again: fewer bytes than the file.
    let sent = summary
        .split(" file(s) sent (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    let (value, unit) = sent.split_once(' ').unwrap();
    let value: f64 = value.parse().unwrap();
    assert_eq!(unit, "MB", "{summary}");
    assert!(value < 64.0 * 1.048_576 - 8.0, "{summary}");
    assert!(!uploads.exists(), "the resumed upload's state is gone");

    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    home.lab_ok(&elsewhere, &["pull"]);
    assert!(
        std::fs::read(elsewhere.join("demo/data/weights.bin")).unwrap()
            == std::fs::read(&big).unwrap()
    );
    same_files(&elsewhere.join("demo"), &root);
}

/// Fails naming the paths whose bytes or modes differ.
fn same_files(a: &Path, b: &Path) {
    let (a, b) = (pushed_part(a), pushed_part(b));
    let differ: Vec<_> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(differ.is_empty(), "these differ: {differ:?}");
}

#[test]
fn the_credentials_file_is_private_and_outside_the_project() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let file = home.config().join("lab/remotes.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(home.config().join("lab"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(SK));
    assert!(text.contains(&format!("\"endpoint\": \"http://{}\"", s3.endpoint())));
    // Replacing a remote keeps the mode.
    let out = home.lab_ok(
        &home.work(),
        &[
            "config",
            "minio",
            "--tag",
            "minio",
            "--endpoint",
            &s3.endpoint(),
            "--accesskey",
            AK,
            "--secretkey",
            SK,
        ],
    );
    assert!(
        out.stdout.starts_with("Replaced the remote `minio`"),
        "{}",
        out.stdout
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Nothing of it reaches the bucket.
    let project = demo_project(&home);
    home.lab_ok(
        project.root(),
        &["push", "--tag", "minio", "--bucket", BUCKET],
    );
    for (path, bytes) in s3.state() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SK),
            "the secret key is in {}",
            path.display()
        );
    }
}

/// Runs `lab ARGS`, which must fail with status 1 and an error naming each
/// of `names`, and leave `cwd` as it was.
fn refused(home: &Home, cwd: &Path, args: &[&str], names: &[&str]) -> String {
    let before = tree(cwd);
    let out = home.lab(cwd, args);
    assert_eq!(out.code, 1, "lab {args:?}: {}{}", out.stdout, out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    for name in names {
        assert!(
            out.stderr.contains(name),
            "lab {args:?}: no {name} in\n{}",
            out.stderr
        );
    }
    assert!(
        tree(cwd) == before,
        "lab {args:?} changed {}",
        cwd.display()
    );
    out.stderr
}

#[test]
fn bad_input_is_refused_naming_the_argument_and_the_value() {
    let s3 = S3::start();
    let home = Home::new();
    let work = home.work();
    // Nothing remembered yet.
    refused(
        &home,
        &work,
        &["pull"],
        &["no `--tag` given", "lab config minio"],
    );
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    let empty = home.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();

    refused(
        &home,
        &root,
        &["push", "--tag", "nope", "--bucket", BUCKET],
        &["`--tag`", "`nope`", "`minio`"],
    );
    refused(
        &home,
        &root,
        &["push", "--tag", "minio"],
        &["no `--bucket` given"],
    );
    refused(
        &home,
        &root,
        &["push", "--tag", "minio", "--bucket", "Bad_Bucket"],
        &["`--bucket`", "`Bad_Bucket`"],
    );
    refused(
        &home,
        &root,
        &["push", "--tag", "minio", "--bucket", "missing"],
        &["`--bucket`", "does not exist", "`missing`"],
    );
    refused(
        &home,
        &work,
        &["push", "--tag", "minio", "--bucket", BUCKET, "."],
        &["not inside a Lab project"],
    );
    for endpoint in [
        "",
        "ftp://127.0.0.1:9",
        "127.0.0.1:notaport",
        "http://127.0.0.1:9/bucket",
    ] {
        refused(
            &home,
            &work,
            &[
                "config",
                "minio",
                "--tag",
                "x",
                "--endpoint",
                endpoint,
                "--accesskey",
                AK,
                "--secretkey",
                SK,
            ],
            &["`--endpoint`", &format!("`{endpoint}`")],
        );
    }
    refused(
        &home,
        &work,
        &[
            "config",
            "minio",
            "--tag",
            "a b",
            "--endpoint",
            "127.0.0.1:9",
            "--accesskey",
            AK,
            "--secretkey",
            SK,
        ],
        &["`--tag`", "`a b`"],
    );

    // A server that is not there, and credentials it refuses.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (tag, endpoint, secret, names) in [
        (
            "down",
            format!("127.0.0.1:{closed}"),
            SK,
            vec!["cannot reach remote `down`", "Connection refused"],
        ),
        (
            "wrong",
            s3.endpoint(),
            "not-the-secret",
            vec![
                "remote `wrong`",
                "refused the credentials of access key",
                AK,
            ],
        ),
    ] {
        home.lab_ok(
            &work,
            &[
                "config",
                "minio",
                "--tag",
                tag,
                "--endpoint",
                &endpoint,
                "--accesskey",
                AK,
                "--secretkey",
                secret,
            ],
        );
        refused(
            &home,
            &root,
            &["push", "--tag", tag, "--bucket", BUCKET],
            &names,
        );
        refused(
            &home,
            &empty,
            &[
                "pull",
                "--tag",
                tag,
                "--bucket",
                BUCKET,
                "--project",
                "demo",
            ],
            &names,
        );
    }

    // A `.labignore` that would make the pushed copy no project.
    let labignore = std::fs::read_to_string(root.join(".labignore")).unwrap();
    std::fs::write(root.join(".labignore"), format!("{labignore}/.lab\n")).unwrap();
    refused(
        &home,
        &root,
        &["push", "--tag", "minio", "--bucket", BUCKET],
        &["`.labignore` leaves out `.lab/project.json`"],
    );
    std::fs::write(root.join(".labignore"), labignore).unwrap();

    home.lab_ok(&root, &["push", "--tag", "minio", "--bucket", BUCKET]);
    // The folder exists, or the name is a path.
    refused(
        &home,
        &work,
        &["pull", "--project", "demo"],
        &["`--project`", "exists already", "`demo`"],
    );
    for name in ["../demo", "a/b", "/tmp/x", "..", "."] {
        refused(
            &home,
            &empty,
            &["pull", "--project", name],
            &["`--project`", &format!("`{name}`")],
        );
    }
    refused(
        &home,
        &empty,
        &["pull", "--project", "other"],
        &["`--project` names no project", "`other`", "`demo`"],
    );
}

#[test]
fn an_interrupted_pull_goes_on_and_replaces_what_is_wrong() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    home.lab_ok(&root, &["push", "--tag", "minio", "--bucket", BUCKET]);
    // What a pull stopped halfway left: a good file, a bad one, a half
    // fetched one, and a file of another version of the project.
    let elsewhere = home.dir.path().join("elsewhere");
    let work = elsewhere.join(".demo.pulling");
    std::fs::create_dir_all(work.join("data")).unwrap();
    std::fs::copy(root.join("data/iris.csv"), work.join("data/iris.csv")).unwrap();
    std::fs::write(work.join("train.py"), "print('not what was pushed')\n").unwrap();
    std::fs::write(work.join("run.sh.lab-part"), "#!/bin/").unwrap();
    std::fs::write(work.join("stray.txt"), "gone since").unwrap();

    let out = home.lab_ok(&elsewhere, &["pull"]);
    assert!(
        out.stdout
            .contains(" (1 fetched by an interrupted pull before), 2 run(s) indexed"),
        "{}",
        out.stdout
    );
    assert!(!work.exists());
    same_files(&elsewhere.join("demo"), &root);
}

#[test]
fn a_hostile_or_damaged_bucket_is_refused_and_nothing_is_made() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let bucket = s3.root.path().join(BUCKET);
    let a = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"; // "a"
    let manifest = |path: &str| {
        format!(
            r#"{{"format":1,"project":"p","files":[{{"path":"{path}","size":1,"sha256":"{a}","mode":420}}],"dirs":[]}}"#
        )
    };
    // A path that leaves the project.
    std::fs::create_dir_all(bucket.join("evil/blobs")).unwrap();
    std::fs::write(
        bucket.join("evil/manifest.json"),
        manifest("../../escaped.txt"),
    )
    .unwrap();
    std::fs::write(bucket.join(format!("evil/blobs/{a}")), "a").unwrap();
    // Bytes that are not the ones the manifest names.
    std::fs::create_dir_all(bucket.join("bent/blobs")).unwrap();
    std::fs::write(bucket.join("bent/manifest.json"), manifest("data.txt")).unwrap();
    std::fs::write(bucket.join(format!("bent/blobs/{a}")), "b").unwrap();
    // Not a manifest at all.
    std::fs::create_dir_all(bucket.join("junk")).unwrap();
    std::fs::write(bucket.join("junk/manifest.json"), "<html>").unwrap();

    let here = home.dir.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let pull = |name: &str| {
        home.lab(
            &here,
            &[
                "pull",
                "--tag",
                "minio",
                "--bucket",
                BUCKET,
                "--project",
                name,
            ],
        )
    };
    let out = pull("evil");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "the manifest `s3://lab-runs/evil/manifest.json` is not one `lab push` writes: the path `../../escaped.txt` leaves the project"
        ),
        "{}",
        out.stderr
    );
    let out = pull("bent");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("the bytes of `data.txt` in the bucket are not the ones the manifest names"),
        "{}",
        out.stderr
    );
    let out = pull("junk");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is not one `lab push` writes"),
        "{}",
        out.stderr
    );
    assert!(!home.dir.path().join("escaped.txt").exists());
    for name in ["evil", "bent", "junk"] {
        assert!(!here.join(name).exists(), "{name} was made");
    }
}

/// Appends to files when the push starts sending: they change after they
/// were hashed.
struct Scribbler(Vec<PathBuf>);

impl lab_remote::Progress for Scribbler {
    fn begin(&self, phase: &str, _: u64, _: u64) {
        if phase == "sending" {
            for path in &self.0 {
                let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                std::io::Write::write_all(&mut f, b"more").unwrap();
            }
        }
    }
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

#[test]
fn a_file_that_changes_while_it_is_sent_is_not_stored_under_its_old_hash() {
    let s3 = S3::start();
    let home = Home::new();
    let project = demo_project(&home);
    let root = project.root().to_owned();
    let big = root.join("data/big.bin");
    std::fs::write(&big, vec![7u8; 20 << 20]).unwrap();
    let remote = lab_remote::config::Remote {
        endpoint: format!("http://{}", s3.endpoint()),
        access_key: AK.into(),
        secret_key: SK.into(),
    };
    let bucket = lab_remote::Bucket::new("minio", &remote, BUCKET).unwrap();
    let small = root.join("train.py");
    let old = [
        lab_remote::scan::sha256(&std::fs::read(&small).unwrap()),
        lab_remote::scan::sha256(&std::fs::read(&big).unwrap()),
    ];
    // One sent whole, one in parts.
    let err = lab_remote::block_on(lab_remote::push(
        &project,
        &bucket,
        "demo",
        lab_remote::PushOptions::default(),
        &Scribbler(vec![small, big.clone()]),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, lab_remote::Error::Changed { path } if path == "train.py" || path == "data/big.bin"),
        "{err}"
    );
    assert!(
        !s3.root
            .path()
            .join(BUCKET)
            .join("demo/manifest.json")
            .exists(),
        "a push that failed wrote the manifest"
    );
    // Nothing is stored under the hashes of the old bytes.
    let blobs = s3.blobs("demo");
    assert!(!blobs.is_empty(), "the other files were sent");
    for sha in &old {
        assert!(!blobs.contains(sha), "new bytes stored as {sha}");
    }
    // Left alone, they go.
    home.add_remote(&s3);
    home.lab_ok(&root, &["push", "--tag", "minio", "--bucket", BUCKET]);
    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    home.lab_ok(&elsewhere, &["pull"]);
    same_files(&elsewhere.join("demo"), &root);
}

#[test]
fn names_with_spaces_and_accents_and_empty_files_go_as_they_are() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let name = "my prøject #1";
    let root = home.work().join(name);
    Project::create(&root).unwrap();
    std::fs::write(root.join("empty.txt"), "").unwrap();
    std::fs::create_dir_all(root.join("dåta 2")).unwrap();
    std::fs::write(root.join("dåta 2/ßcores [v1].csv"), "1,2\n").unwrap();
    // From a folder inside the project, as every command works.
    home.lab_ok(
        &root.join("dåta 2"),
        &["push", "--tag", "minio", "--bucket", BUCKET],
    );
    let out = home.lab_ok(
        &home.work(),
        &["push", "--dry-run", &format!("{name}/dåta 2")],
    );
    assert!(
        out.stdout.contains(", 0 deleted; nothing was sent"),
        "{}",
        out.stdout
    );
    // The bucket's folder has the project's name, not an encoding of it.
    assert!(
        s3.root
            .path()
            .join(BUCKET)
            .join(name)
            .join("manifest.json")
            .is_file()
    );
    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    home.lab_ok(&elsewhere, &["pull", "--project", name]);
    same_files(&elsewhere.join(name), &root);
}

#[test]
fn a_push_reads_again_only_the_files_that_may_have_changed() {
    let s3 = S3::start();
    let home = Home::new();
    let project = demo_project(&home);
    let root = project.root().to_owned();
    let remote = lab_remote::config::Remote {
        endpoint: format!("http://{}", s3.endpoint()),
        access_key: AK.into(),
        secret_key: SK.into(),
    };
    let bucket = lab_remote::Bucket::new("minio", &remote, BUCKET).unwrap();
    let push = || {
        lab_remote::block_on(lab_remote::push(
            &project,
            &bucket,
            "demo",
            lab_remote::PushOptions::default(),
            &lab_remote::NoProgress,
        ))
        .unwrap()
    };
    // Files written just now are read at every push; once they are older
    // than the margin, a push that read them remembers their hashes.
    std::thread::sleep(Duration::from_nanos(
        lab_remote::hashes::MARGIN_NANOS as u64 + 100_000_000,
    ));
    let first = push();
    assert_eq!(first.read, first.files);
    let second = push();
    assert_eq!(second.read, 0, "{second:?}");
    assert!(second.sent.is_empty());
    // Same size, same modification time, other bytes: read and sent.
    let train = root.join("train.py");
    let mtime = std::fs::metadata(&train).unwrap().modified().unwrap();
    std::fs::write(&train, "print('TRAINING')\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&train)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let third = push();
    assert_eq!(third.read, 1, "{third:?}");
    assert_eq!(third.sent, [("train.py".to_owned(), 18)]);
    home.add_remote(&s3);
    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    home.lab_ok(
        &elsewhere,
        &[
            "pull",
            "--tag",
            "minio",
            "--bucket",
            BUCKET,
            "--project",
            "demo",
        ],
    );
    same_files(&elsewhere.join("demo"), &root);
}

#[test]
fn many_large_files_at_once_share_the_buffers_without_waiting_on_each_other() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    // More files of two parts each than there are buffers: each holds one
    // part in flight while it waits for a buffer for its second.
    let parts = lab_remote::PART_SIZE as usize + 1024;
    for i in 0..lab_remote::BUFFERS + 2 {
        std::fs::write(root.join(format!("data/w{i}.bin")), vec![i as u8; parts]).unwrap();
    }
    let mut child = home
        .command(&root, &["push", "--tag", "minio", "--bucket", BUCKET])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(2);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the push hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    home.lab_ok(&elsewhere, &["pull"]);
    same_files(&elsewhere.join("demo"), &root);
}

/// A run made by hand in `project` at `time_nanos` (its short id follows
/// from the time), ended as crashed runs are.
fn run_at(project: &Project, time_nanos: i64) -> String {
    let (id, paths) = project.claim_run(time_nanos).unwrap();
    let mut w = lab_journal::JournalWriter::create(&paths.journal).unwrap();
    w.append(&lab_types::Record::Start {
        run: id,
        time_nanos,
        experiment: "iris".into(),
    })
    .unwrap();
    w.close().unwrap();
    id.to_string()
}

#[test]
fn pushes_from_two_copies_of_a_project_add_up_and_never_swap_runs() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let here = demo_project(&home);
    home.lab_ok(here.root(), &["push", "--tag", "minio", "--bucket", BUCKET]);
    let laptop = home.dir.path().join("laptop");
    std::fs::create_dir(&laptop).unwrap();
    home.lab_ok(&laptop, &["pull"]);
    let there = Project::at(&laptop.join("demo")).unwrap();
    // A new run in each copy, a second apart: both end up in the bucket.
    let now = lab_types::now_nanos() + 10_000_000_000;
    run_at(&here, now);
    run_at(&there, now + 1_000_000_000);
    home.lab_ok(here.root(), &["push"]);
    let out = home.lab_ok(there.root(), &["push"]);
    assert!(
        out.stdout
            .contains("1 file(s) gone here stay in the bucket"),
        "{}",
        out.stdout
    );
    let third = home.dir.path().join("third");
    std::fs::create_dir(&third).unwrap();
    let out = home.lab_ok(&third, &["pull"]);
    assert!(out.stdout.contains(" 4 run(s) indexed"), "{}", out.stdout);

    // Two runs in the same quarter second: the same short id, other runs.
    let later = now + 60_000_000_000;
    let ours = run_at(&here, later);
    let theirs = run_at(&there, later);
    assert_eq!(ours[..8], theirs[..8]);
    home.lab_ok(here.root(), &["push"]);
    let before = s3.state();
    let out = home.lab(there.root(), &["push"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "error: the bucket's run folder `.lab/runs/{}` holds another run (`{ours}`) than here (`{theirs}`)",
            &ours[..8]
        )),
        "{}",
        out.stderr
    );
    assert!(s3.state() == before, "the refused push changed the bucket");
    // `--force` replaces it, as asked.
    home.lab_ok(there.root(), &["push", "--force"]);
    let fourth = home.dir.path().join("fourth");
    std::fs::create_dir(&fourth).unwrap();
    home.lab_ok(&fourth, &["pull"]);
    let json = home
        .lab_ok(&fourth.join("demo"), &["ls", "--format", "json"])
        .stdout;
    assert!(json.contains(&theirs) && !json.contains(&ours), "{json}");
}

#[test]
fn a_runs_edits_travel_with_a_push_and_a_pull() {
    let s3 = S3::start();
    let home = Home::new();
    home.add_remote(&s3);
    let project = demo_project(&home);
    let root = project.root().to_owned();
    let short = {
        let mut store = lab_store::Store::open(project.clone()).unwrap();
        store.refresh().unwrap();
        let short = store.runs(None).unwrap()[0].short_id.clone();
        home.lab_ok(&root, &["rename", &short, "baseline"]);
        home.lab_ok(&root, &["tag", "baseline", "stage=final"]);
        home.lab_ok(&root, &["note", "baseline", "# Why\n\nthe reference"]);
        short
    };
    home.lab_ok(&root, &["push", "--tag", "minio", "--bucket", BUCKET, "."]);
    let elsewhere = home.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    home.lab_ok(
        &elsewhere,
        &[
            "pull",
            "--tag",
            "minio",
            "--bucket",
            BUCKET,
            "--project",
            "demo",
        ],
    );
    let pulled = elsewhere.join("demo");
    assert!(pulled.join(format!(".lab/runs/{short}/meta.lab")).is_file());
    let shown = home.lab_ok(&pulled, &["show", "baseline"]).stdout;
    assert!(shown.contains(&format!("Run {short}")), "{shown}");
    assert!(shown.contains("  stage       final\n"), "{shown}");
    assert!(
        shown.contains("Note\n  # Why\n  \n  the reference\n"),
        "{shown}"
    );
}
