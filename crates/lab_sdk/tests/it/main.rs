//! SDK tests: runs made through [`Run`] and read back through the index.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt as _, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex, PoisonError};

use lab_sdk::{EndReport, EnvRequest, Run, SdkError, StartOptions};
use lab_store::{ArtifactInfo, Project, RunInfo, Store};
use lab_types::Status;
use sha2::Digest as _;

/// `wait_for_background` joins the finishers of every run of the process:
/// tests that end runs take turns, so each knows its own runs are indexed.
static SDK: Mutex<()> = Mutex::new(());

fn new_project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    (dir, project)
}

fn start(project: &Project) -> Arc<Run> {
    Run::start(
        project,
        StartOptions {
            experiment: "artifacts".into(),
            attrs: Vec::new(),
            env: EnvRequest::default(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Ends `run` and waits for it to be indexed.
fn end(run: &Arc<Run>) -> EndReport {
    let report = run.end(Status::Finished, None).unwrap();
    let failures = lab_sdk::wait_for_background();
    assert!(failures.is_empty(), "{failures:?}");
    report
}

fn indexed(project: &Project, run: &Run) -> RunInfo {
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    store.run(run.short_id()).unwrap()
}

fn artifact(info: &RunInfo, name: &str) -> ArtifactInfo {
    info.artifacts
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no artifact `{name}` in {:?}", info.artifacts))
        .clone()
}

/// Every file under `dir`, relative to it, sorted; links are not followed.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(root, &entry.path(), out);
            } else {
                let rel = entry.path().strip_prefix(root).unwrap().to_owned();
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_project_root_is_copied_without_lab() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let root = project.root();
    write(&root.join("train.py"), "fit()\n");
    write(&root.join("data/x.csv"), "1,2\n");
    let run = start(&project);
    run.log_artifact("code", root).unwrap();
    let report = end(&run);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let stored = artifact(&indexed(&project, &run), "code");
    assert_eq!(stored.path.as_deref(), Some("artifacts/code"));
    assert_eq!((stored.files, stored.bytes), (Some(2), Some(10)));
    let copied = run.paths().artifacts.join("code");
    assert_eq!(files_under(&copied), ["data/x.csv", "train.py"]);
}

#[test]
fn lab_folders_are_refused_when_logged_however_they_are_spelled() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let root = project.root().to_owned();
    let run = start(&project);
    symlink(".lab/runs", root.join("runs_alias")).unwrap();
    let spellings: [PathBuf; 5] = [
        root.join(".lab"),
        root.join(".lab/runs/../runs"),
        run.paths().dir.clone(),
        root.join("runs_alias"),
        root.join("runs_alias").join(run.short_id()),
    ];
    for path in spellings {
        match run.log_artifact("x", &path) {
            Err(SdkError::InvalidArgument {
                argument, problem, ..
            }) => {
                assert_eq!(argument, "path");
                assert!(problem.contains("Lab's own"), "{problem}");
            }
            other => panic!("{} was accepted: {other:?}", path.display()),
        }
    }
    let report = end(&run);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(!run.paths().artifacts.exists());
}

#[test]
fn a_source_swapped_for_a_lab_folder_before_the_end_is_not_copied() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let root = project.root().to_owned();
    let run = start(&project);
    std::fs::create_dir(root.join("out")).unwrap();
    run.log_artifact("out", &root.join("out")).unwrap();
    std::fs::remove_dir(root.join("out")).unwrap();
    symlink(&run.paths().dir, root.join("out")).unwrap();
    let report = end(&run);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0]
            .starts_with("artifact `out` was not copied: it is a folder of Lab's own"),
        "{:?}",
        report.warnings
    );
    assert!(artifact(&indexed(&project, &run), "out").path.is_none());
    assert!(!run.paths().artifacts.join("out").exists());
}

#[test]
fn dangling_links_and_link_loops_are_skipped_and_the_rest_recorded() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let other = tempfile::tempdir().unwrap();
    let src = other.path().join("src");
    write(&src.join("a.txt"), "a");
    write(&other.path().join("outside/o.txt"), "oo");
    symlink(other.path().join("missing"), src.join("dead")).unwrap();
    std::fs::create_dir(src.join("sub")).unwrap();
    symlink("..", src.join("sub/up")).unwrap();
    symlink("me", src.join("me")).unwrap();
    symlink(other.path().join("outside"), src.join("out")).unwrap();
    let run = start(&project);
    run.log_artifact("src", &src).unwrap();
    let mut warnings = end(&run).warnings;
    warnings.sort();
    let s = src.display();
    assert_eq!(
        warnings,
        [
            format!(
                "artifact `src`: skipped a symbolic link loop (a link to a folder that holds it): {s}/sub/up"
            ),
            format!("artifact `src`: skipped a symbolic link loop: {s}/me"),
            format!("artifact `src`: skipped a symbolic link to a missing file: {s}/dead"),
        ]
    );
    let stored = artifact(&indexed(&project, &run), "src");
    assert_eq!((stored.files, stored.bytes), (Some(2), Some(3)));
    assert_eq!(
        files_under(&run.paths().artifacts.join("src")),
        ["a.txt", "out/o.txt"]
    );
}

#[test]
fn a_sparse_file_stays_sparse() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let other = tempfile::tempdir().unwrap();
    let src = other.path().join("sparse.bin");
    {
        let f = std::fs::File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[7u8; 4096], 16 << 20).unwrap();
    }
    let run = start(&project);
    run.log_artifact("sparse", &src).unwrap();
    assert!(end(&run).warnings.is_empty());
    let copy = run.paths().artifacts.join("sparse/sparse.bin");
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    assert!(
        meta.blocks() * 512 <= 1 << 20,
        "{} bytes allocated for 4 KiB of data",
        meta.blocks() * 512
    );
    let data = std::fs::read(&copy).unwrap();
    assert!(data[(16 << 20)..(16 << 20) + 4096].iter().all(|b| *b == 7));
    assert_eq!(data.iter().filter(|b| **b != 0).count(), 4096);
}

#[test]
fn a_run_folder_deleted_while_live_is_not_brought_back() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let other = tempfile::tempdir().unwrap();
    write(&other.path().join("a.txt"), "a");
    let run = start(&project);
    run.log_artifact("a", &other.path().join("a.txt")).unwrap();
    run.log_artifact("all", other.path()).unwrap();
    std::fs::remove_dir_all(&run.paths().dir).unwrap();
    match run.models_dir() {
        Err(e @ SdkError::RunFolderGone { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "the folder of run `{}` was deleted while the run was live (by `lab rm --force`?), so nothing more can be saved into it: {}",
                run.short_id(),
                run.paths().dir.display()
            )
        ),
        other => panic!("{other:?}"),
    }
    let warnings = end(&run).warnings;
    let gone = format!(
        "the run's folder was deleted while the run was live (by `lab rm --force`?): {}",
        run.paths().dir.display()
    );
    assert_eq!(
        warnings,
        [
            format!("artifact `a` was not copied: {gone}"),
            format!("artifact `all` was not copied: {gone}"),
        ]
    );
    assert!(!run.paths().dir.exists());
}

#[test]
fn models_of_one_name_saved_from_many_threads_all_succeed_and_the_last_wins() {
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let run = start(&project);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let run = Arc::clone(&run);
            let barrier = Arc::clone(&barrier);
            std::thread::Builder::new()
                .name(format!("saver-{t}"))
                .spawn(move || {
                    barrier.wait();
                    for i in 0..20 {
                        let tmp = run.model_temp_path("m").unwrap();
                        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
                        let pid = std::process::id();
                        assert!(name.starts_with(&format!(".m.{pid}-")), "{name}");
                        std::fs::write(&tmp, format!("{t} {i} {}", "x".repeat(10_000))).unwrap();
                        run.add_model("m", &tmp, "pickle", "dict", "builtins", "")
                            .unwrap();
                    }
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(end(&run).warnings.is_empty());
    let info = indexed(&project, &run);
    let model = info.models.iter().find(|m| m.name == "m").unwrap();
    let file = run.paths().dir.join(&model.path);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.split(' ').nth(1) == Some("19"), "{}", &text[..10]);
    assert_eq!(model.size, text.len() as u64);
    // The file in place is the one the last record describes.
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex = digest.iter().fold(String::new(), |mut s, b| {
        write!(s, "{b:02x}").unwrap();
        s
    });
    assert_eq!(model.sha256, hex);
    let left: Vec<_> = std::fs::read_dir(&run.paths().models)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["m.pkl"]);
}

/// A tmpfs of a fixed size, mounted for one test and removed after it.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn new(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_run_that_stored_many_artifacts_still_ends_on_a_full_disk() {
    use std::io::Write as _;
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let disk = SmallDisk::new(24 << 20);
    let (project, _) = Project::create(&disk.path().join("p")).unwrap();
    let sources = disk.path().join("src");
    std::fs::create_dir(&sources).unwrap();
    let run = start(&project);
    // Empty files take no room, so they are copied even on a full disk; each
    // one stored adds a record of some 450 bytes to the end of the run.
    let count = 3000;
    for i in 0..count {
        let file = sources.join(format!("{}{i:05}", "f".repeat(200)));
        std::fs::File::create(&file).unwrap();
        run.log_artifact(&format!("{}{i:05}", "a".repeat(200)), &file)
            .unwrap();
    }
    // The disk fills up, and logging goes on until it is refused.
    let filler = disk.path().join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[1u8; 16 << 10]).is_ok() {}
    }
    let mut step = 0;
    while run.log_metric("loss", 0.5, Some(step)).is_ok() {
        step += 1;
    }

    let report = run.end(Status::Finished, None).unwrap();
    let failures = lab_sdk::wait_for_background();
    assert!(failures.is_empty(), "{failures:?}");
    std::fs::remove_file(&filler).unwrap();
    let info = indexed(&project, &run);
    assert_eq!(info.status, Status::Finished, "the End record had its room");
    let recorded = info.artifacts.iter().filter(|a| a.path.is_some()).count();
    assert!(recorded > 0);
    assert_eq!(
        report.warnings.len(),
        count - recorded,
        "{:?}",
        &report.warnings[..1]
    );
    assert!(
        report.warnings[0].contains("was copied, but recording it failed"),
        "{}",
        report.warnings[0]
    );
}

fn start_sampling(project: &Project, interval: std::time::Duration) -> Arc<Run> {
    Run::start(
        project,
        StartOptions {
            experiment: "sys".into(),
            system_metrics: lab_sdk::SystemMetrics {
                enabled: true,
                interval,
            },
            ..Default::default()
        },
    )
    .unwrap()
}

fn metric_names(info: &RunInfo) -> Vec<&str> {
    info.metrics.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn a_sampling_run_records_system_metrics_each_interval_and_at_the_end() {
    let _turn = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let run = start_sampling(&project, std::time::Duration::from_millis(100));
    run.log_metric("loss", 0.5, None).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let ending = std::time::Instant::now();
    end(&run);
    let ended_in = ending.elapsed();
    let info = indexed(&project, &run);
    let names = metric_names(&info);
    for n in [
        "loss",
        "sys/cpu_percent",
        "sys/rss_bytes",
        "sys/mem_used_bytes",
        "sys/mem_percent",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    // Up to ten samples in a second at 100 ms, and one at the end; fewer on
    // a loaded machine, where the thread may start late.
    let cpu = info
        .metrics
        .iter()
        .find(|m| m.name == "sys/cpu_percent")
        .unwrap();
    assert!((3..=11).contains(&cpu.count), "{cpu:?}");
    assert_eq!(cpu.last_step, cpu.count - 1);
    // The script's own metric is untouched by the sampler's steps.
    let loss = info.metrics.iter().find(|m| m.name == "loss").unwrap();
    assert_eq!((loss.count, loss.last_step), (1, 0));
    // The end waited for one sample, not for an interval (nor for indexing,
    // which `end` above also waited for).
    assert!(ended_in < std::time::Duration::from_secs(2), "{ended_in:?}");
}

#[test]
fn a_run_shorter_than_the_interval_gets_one_sample_and_ends_at_once() {
    let _turn = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let run = start_sampling(&project, std::time::Duration::from_hours(1));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ending = std::time::Instant::now();
    run.end(Status::Finished, None).unwrap();
    let ended_in = ending.elapsed();
    assert!(lab_sdk::wait_for_background().is_empty());
    let info = indexed(&project, &run);
    let cpu = info
        .metrics
        .iter()
        .find(|m| m.name == "sys/cpu_percent")
        .unwrap();
    assert_eq!((cpu.count, cpu.last_step), (1, 0));
    assert!(
        ended_in < std::time::Duration::from_millis(500),
        "{ended_in:?}"
    );
}

/// The threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| {
            let comm = t.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == name)
        })
        .count()
}

#[test]
fn runs_live_at_once_are_each_sampled_at_their_own_interval_by_one_thread() {
    let _turn = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let fast = start_sampling(&project, std::time::Duration::from_millis(100));
    let slow = start_sampling(&project, std::time::Duration::from_millis(450));
    std::thread::sleep(std::time::Duration::from_secs(1));
    slow.end(Status::Finished, None).unwrap();
    end(&fast);
    let count = |run: &Run| {
        let info = indexed(&project, run);
        let cpu = info
            .metrics
            .iter()
            .find(|m| m.name == "sys/cpu_percent")
            .unwrap()
            .clone();
        // Numbered from 0 for each run, without a gap.
        assert_eq!(cpu.last_step, cpu.count - 1, "{cpu:?}");
        cpu.count
    };
    // Up to ten and two in a second, and one each at the end; fewer on a
    // loaded machine.
    let (fast, slow) = (count(&fast), count(&slow));
    assert!((3..=11).contains(&fast), "{fast}");
    assert!((1..=3).contains(&slow), "{slow}");
    assert!(fast > slow, "{fast} {slow}");

    // A loop of short runs: no thread of their own, and none waits for one.
    let started = std::time::Instant::now();
    let runs: Vec<Arc<Run>> = (0..50)
        .map(|_| {
            let run = start_sampling(&project, std::time::Duration::from_secs(5));
            run.end(Status::Finished, None).unwrap();
            run
        })
        .collect();
    assert!(lab_sdk::wait_for_background().is_empty());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(threads_named(lab_sdk::sysmetrics::THREAD_NAME), 1);
    // Under the shortest span from their baselines: no sample.
    let info = indexed(&project, &runs[49]);
    assert!(metric_names(&info).is_empty(), "{:?}", metric_names(&info));
}

#[test]
fn a_run_without_system_metrics_has_none() {
    let _turn = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_dir, project) = new_project();
    let run = start(&project);
    run.log_metric("loss", 0.5, None).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    end(&run);
    assert_eq!(metric_names(&indexed(&project, &run)), ["loss"]);
}

#[test]
fn runs_ended_in_a_burst_are_each_closed_synced_and_indexed() {
    let _turn = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let (_a, first) = new_project();
    let (_b, second) = new_project();
    // Ended faster than they are finished, in two projects in turn: the
    // finishing thread takes them in batches and switches indexes.
    let runs: Vec<(Project, Arc<Run>)> = (0..40)
        .map(|i| {
            let project = if i % 3 == 0 { &second } else { &first };
            let run = start(project);
            run.log_param("i", lab_types::Value::Int(i)).unwrap();
            run.log_metric("loss", 0.5, None).unwrap();
            run.end(Status::Finished, None).unwrap();
            (project.clone(), run)
        })
        .collect();
    let failures = lab_sdk::wait_for_background();
    assert!(failures.is_empty(), "{failures:?}");
    for (i, (project, run)) in runs.iter().enumerate() {
        // Closed: the last record is Close, the reserved space is cut off,
        // and the writer's lock is released.
        let journal = &run.paths().journal;
        let mut last = None;
        let scan = lab_journal::read_journal(journal, 0, |_, r| last = Some(r)).unwrap();
        assert!(
            matches!(last, Some(lab_types::Record::Close { .. })),
            "run {i}"
        );
        assert_eq!(std::fs::metadata(journal).unwrap().len(), scan.end);
        std::fs::File::open(journal).unwrap().try_lock().unwrap();
        // Indexed by the thread: read without folding anything first.
        let info = Store::open(project.clone())
            .unwrap()
            .run(run.short_id())
            .unwrap();
        assert_eq!(info.status, Status::Finished);
        assert_eq!(
            info.params,
            [("i".to_owned(), lab_types::Value::Int(i as i64))]
        );
    }
}
