//! CLI tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use lab_sdk::{EnvRequest, Run, StartOptions};
use lab_store::Project;
use lab_types::{ErrorInfo, RunId, Status, Value};

mod escapes;
mod many;
mod remote;
mod schema11;
mod targets;

/// `wait_for_background` joins the finishers of every run of this process, so
/// runs are ended and waited for one test at a time: each test then knows its
/// own runs are closed and indexed.
static SDK: Mutex<()> = Mutex::new(());

/// The artifact run `a` logs.
const CSV: &str = "10,0,0\n0,9,1\n0,2,8\n";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Exit code and stderr, for error snapshots.
    fn failure(&self) -> String {
        format!("exit code: {}\n{}", self.code, self.stderr)
    }
}

fn lab_command(cwd: &Path, project: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .env_remove("LAB_PROJECT")
        .stdin(Stdio::null());
    if let Some(p) = project {
        cmd.env("LAB_PROJECT", p);
    }
    cmd
}

fn run_lab(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("lab was killed: {:?}", out.status)),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `lab` on `project`.
fn lab(project: &Path, args: &[&str]) -> Output {
    run_lab(lab_command(project, Some(project), args))
}

/// Runs `lab` and requires success with nothing on stderr.
fn lab_ok(project: &Path, args: &[&str]) -> String {
    let out = lab(project, args);
    assert_eq!(out.code, 0, "lab {args:?} failed: {}", out.stderr);
    assert_eq!(out.stderr, "", "lab {args:?} warned");
    out.stdout
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Snapshots `text` with run ids, times, durations and the project's path
/// replaced by placeholders of the same width where columns depend on it.
fn snapshot(name: &str, project: &Path, text: &str, extra: &[(&str, &str)]) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    for (re, with) in extra {
        settings.add_filter(re, *with);
    }
    settings.add_filter(&regex_escape(&project.display().to_string()), "[PROJECT]");
    if let Ok(real) = project.canonicalize() {
        settings.add_filter(&regex_escape(&real.display().to_string()), "[PROJECT]");
    }
    settings.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    settings.add_filter(r"\b[0-9a-f]{32}\b", "[RUN_ID]");
    settings.add_filter(r"\b[0-9a-f]{8}\b", "[SHORT8]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", "[ISO-TIME]");
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
        "YYYY-MM-DD hh:mm:ss",
    );
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "YYYY-MM-DD hh:mm");
    settings.add_filter(
        r"\((\d+ ms|\d+\.\d s|\d+ min \d{2} s|\d+ h \d{2} min)\)",
        "([DURATION])",
    );
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn attrs(script: &str, seed: i64) -> Vec<(String, Value)> {
    vec![
        (
            "source".into(),
            Value::Str(format!("/home/alice/exp/{script}")),
        ),
        (
            "argv".into(),
            Value::List(vec![
                Value::Str("--seed".into()),
                Value::Str(seed.to_string()),
            ]),
        ),
        ("user".into(), Value::Str("alice".into())),
        ("host".into(), Value::Str("gpu-box".into())),
        ("python_version".into(), Value::Str("3.12.1".into())),
        ("dataset".into(), Value::Str("iris.csv".into())),
        // Given, so that tables are as wide in every snapshot (a generated
        // name comes from the run's id, which comes from the time).
        ("name".into(), Value::Str(format!("seed-{seed}"))),
    ]
}

fn start(project: &Project, experiment: &str, script: &str, seed: i64) -> Arc<Run> {
    Run::start(
        project,
        StartOptions {
            experiment: experiment.into(),
            attrs: attrs(script, seed),
            env: EnvRequest::default(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn end(run: &Arc<Run>, status: Status, error: Option<ErrorInfo>) {
    let report = run.end(status, error).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

fn wait() {
    let failures = lab_sdk::wait_for_background();
    assert!(failures.is_empty(), "{failures:?}");
}

fn new_project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let (project, created) = Project::create(dir.path()).unwrap();
    assert!(created);
    (dir, project)
}

/// Four runs, oldest first:
/// - `a`: train.py, iris, finished; acc 0.9, loss 1 → 0.25, features,
///   parameters, a tag, an artifact and a model;
/// - `b`: train.py, iris, finished; acc 0.95, loss 0.8 → 0.3;
/// - `c`: explore.py, scratch, finished; no metric;
/// - `d`: train.py, iris, failed with a traceback; acc 0.7, no loss.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    a: RunId,
    b: RunId,
    c: RunId,
    d: RunId,
}

fn fixture() -> Fixture {
    let (dir, project) = new_project();
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);

    let a = start(&project, "iris", "train.py", 1);
    a.log_features(
        ["sepal length (cm)", "sepal width (cm)", "petal length (cm)"]
            .into_iter()
            .map(|s| Value::Str(s.into()))
            .collect(),
    )
    .unwrap();
    a.log_param("seed", Value::Int(1)).unwrap();
    a.log_param("n_estimators", Value::Int(10)).unwrap();
    a.log_param("criterion", Value::Str("gini".into())).unwrap();
    a.log_param("n_estimators", Value::Int(20)).unwrap();
    for loss in [1.0, 0.5, 0.25] {
        a.log_metric("loss", loss, None).unwrap();
    }
    a.log_metrics(
        [("acc", 0.9), ("precision[2]", 0.8), ("precision[10]", 0.6)].into_iter(),
        None,
    )
    .unwrap();
    a.set_tag("stage", "baseline").unwrap();
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("confusion_matrix.csv");
    std::fs::write(&csv, CSV).unwrap();
    a.log_artifact("confusion_matrix", &csv).unwrap();
    let tmp = a.models_dir().unwrap().join(".clf.tmp");
    std::fs::write(&tmp, b"not really a forest").unwrap();
    a.add_model(
        "clf",
        &tmp,
        "joblib",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn",
        "1.9.1",
    )
    .unwrap();
    end(&a, Status::Finished, None);
    wait();

    let b = start(&project, "iris", "train.py", 2);
    b.log_param("seed", Value::Int(2)).unwrap();
    b.log_metric("loss", 0.8, None).unwrap();
    b.log_metric("loss", 0.3, None).unwrap();
    b.log_metric("acc", 0.95, None).unwrap();
    end(&b, Status::Finished, None);
    wait();

    let c = start(&project, "scratch", "explore.py", 3);
    c.log_param("note", Value::Str("just looking".into()))
        .unwrap();
    end(&c, Status::Finished, None);
    wait();

    let d = start(&project, "iris", "train.py", 4);
    d.log_param("seed", Value::Int(4)).unwrap();
    d.log_metric("acc", 0.7, None).unwrap();
    end(
        &d,
        Status::Failed,
        Some(ErrorInfo {
            kind: "ValueError".into(),
            message: "Input contains NaN".into(),
            traceback: "Traceback (most recent call last):\n  File \"/home/alice/exp/train.py\", line 12, in <module>\n    model.fit(X, y)\nValueError: Input contains NaN\n".into(),
        }),
    );
    wait();

    Fixture {
        root: project.root().to_owned(),
        _dir: dir,
        a: a.id(),
        b: b.id(),
        c: c.id(),
        d: d.id(),
    }
}

/// Runs `lab ls ARGS` and requires success with nothing on stderr but,
/// for a limited listing with more runs, the next page's cursor.
fn ls_ok(project: &Path, args: &[&str]) -> String {
    let out = lab(project, args);
    assert_eq!(out.code, 0, "lab {args:?} failed: {}", out.stderr);
    let rest = out
        .stderr
        .strip_prefix("more runs: the next page is `--after ")
        .map_or(out.stderr.as_str(), |r| {
            r.split_once("`\n").map_or(r, |(_, t)| t)
        });
    assert_eq!(rest, "", "lab {args:?} warned");
    out.stdout
}

/// The short ids `lab ls --format json ARGS` lists, in order.
fn json_order(project: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls", "--format", "json"];
    all.extend_from_slice(args);
    let rows: serde_json::Value = serde_json::from_str(&ls_ok(project, &all)).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["short_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn ls_lists_runs_newest_first() {
    let f = fixture();
    let out = lab_ok(&f.root, &["ls"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("ID "), "{out}");
    for (line, id) in lines[1..].iter().zip([f.d, f.c, f.b, f.a]) {
        assert!(line.starts_with(&id.short()), "{out}");
    }
    assert!(lines[2].contains("explore.py") && lines[2].contains("finished"));
    assert!(lines[1].contains("failed ✗"));
    // Columns in first-logged order, oldest run first.
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "SOURCE",
            "STARTED",
            "(UTC)",
            "STATUS",
            "loss",
            "acc",
            "precision[2]",
            "precision[10]"
        ]
    );
    snapshot("ls", &f.root, &out, &[]);
}

#[test]
fn ls_leaves_a_blank_cell_for_a_missing_metric() {
    let f = fixture();
    let out = lab_ok(&f.root, &["ls"]);
    let lines: Vec<&str> = out.lines().collect();
    // Columns by characters: bars and `✗` take several bytes.
    let chars =
        |line: &str, from: usize, n: usize| -> String { line.chars().skip(from).take(n).collect() };
    let col = lines[0].find("loss").unwrap();
    let cell = |line: &str| chars(line, col, 8).trim().to_owned();
    let row = |id: RunId| *lines.iter().find(|l| l.starts_with(&id.short())).unwrap();
    assert_eq!(cell(row(f.a)), "0.25");
    assert_eq!(cell(row(f.b)), "0.3");
    assert_eq!(cell(row(f.d)), "", "{out}");
    // A run without any metric ends after its status.
    assert!(row(f.c).trim_end().ends_with("finished"), "{out}");
    // The largest value fills the bar; the others are scaled to it.
    let acc = lines[0].find("acc").unwrap();
    assert_eq!(chars(row(f.b), acc, 19), "0.95     ██████████", "{out}");
    assert_eq!(chars(row(f.a), acc, 8).trim(), "0.9", "{out}");
    let d_acc = chars(row(f.d), acc, 19);
    assert!(d_acc.starts_with("0.7      ███████"), "{out}");
    assert_ne!(d_acc, "0.7      ██████████", "{out}");
}

#[test]
fn ls_json_has_every_run_and_value() {
    let f = fixture();
    let out = lab_ok(&f.root, &["ls", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["id"], f.a.to_string());
    assert_eq!(rows[3]["params"]["n_estimators"], 20);
    assert_eq!(rows[3]["metrics"]["loss"], 0.25);
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["source"], "/home/alice/exp/train.py");
    assert!(rows[0]["end_time"].is_string());
    // Piped output is compact, one line; the snapshot shows it indented.
    assert_eq!(out.lines().count(), 1);
    let shown = serde_json::to_string_pretty(&rows).unwrap();
    snapshot("ls_json", &f.root, &shown, &[]);
}

#[test]
fn ls_sorts_by_a_metric_and_limits_and_filters() {
    let fx = fixture();
    let (a, b, c, d) = (fx.a.short(), fx.b.short(), fx.c.short(), fx.d.short());
    let (a, b, c, d) = (a.as_str(), b.as_str(), c.as_str(), d.as_str());
    assert_eq!(json_order(&fx.root, &[]), [d, c, b, a]);
    // Largest first; runs without the metric last, newest first among them.
    assert_eq!(json_order(&fx.root, &["acc"]), [b, a, d, c]);
    assert_eq!(json_order(&fx.root, &["-acc"]), [d, a, b, c]);
    assert_eq!(json_order(&fx.root, &["loss"]), [b, a, d, c]);
    assert_eq!(json_order(&fx.root, &["-loss"]), [a, b, d, c]);
    assert_eq!(json_order(&fx.root, &["--", "-loss"]), [a, b, d, c]);
    // A sort key no run has is refused, with the nearest names.
    let out = lab(&fx.root, &["ls", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("no run has a metric, parameter, tag or run field named `nope`"),
        "{}",
        out.stderr
    );
    // Limit after sorting.
    assert_eq!(json_order(&fx.root, &["-acc", "-n", "2"]), [d, a]);
    assert_eq!(json_order(&fx.root, &["--limit", "1"]), [d]);
    assert!(json_order(&fx.root, &["--limit", "0"]).is_empty());
    assert_eq!(json_order(&fx.root, &["--limit", "99"]).len(), 4);
    // Experiment.
    assert_eq!(json_order(&fx.root, &["-e", "scratch"]), [c]);
    assert_eq!(
        json_order(&fx.root, &["--experiment", "iris", "acc"]),
        [b, a, d]
    );
    assert!(json_order(&fx.root, &["-e", "nothing"]).is_empty());

    // The table in the same order.
    let table = ls_ok(&fx.root, &["ls", "-acc", "-e", "iris", "-n", "2"]);
    let ids: Vec<&str> = table.lines().skip(1).map(|l| &l[..8]).collect();
    assert_eq!(ids, [d, a]);
    snapshot("ls_sorted_limited", &fx.root, &table, &[]);
    // Only the metrics of the listed runs get columns.
    let scratch = lab_ok(&fx.root, &["ls", "-e", "scratch"]);
    assert!(!scratch.contains("acc"), "{scratch}");
}

#[test]
fn ls_says_no_runs_match_when_the_filters_leave_none() {
    // docs/cli.md: "when it has runs but none is left to list (`--experiment`
    // matched nothing, or `--limit 0`), it prints `No runs match.`".
    let f = fixture();
    assert_eq!(lab_ok(&f.root, &["ls", "-n", "0"]), "No runs match.\n");
    assert_eq!(
        lab_ok(&f.root, &["ls", "-e", "nothing"]),
        "No runs match.\n"
    );
}

#[test]
fn ls_of_an_empty_project() {
    let (_dir, project) = new_project();
    assert_eq!(lab_ok(project.root(), &["ls"]), "No runs yet.\n");
    assert_eq!(lab_ok(project.root(), &["ls", "--format", "json"]), "[]\n");
}

#[test]
fn show_prints_everything_about_a_run() {
    let f = fixture();
    let out = lab_ok(&f.root, &["show", &f.a.short()]);
    assert!(out.starts_with(&format!("Run {}\n", f.a)), "{out}");
    assert!(out.contains("  status      finished\n"), "{out}");
    assert!(out.contains("  user        alice@gpu-box\n"), "{out}");
    assert!(
        out.contains("  source      /home/alice/exp/train.py --seed 1\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  folder      {}\n",
            f.root.join(".lab/runs").join(f.a.short()).display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  confusion_matrix artifacts/confusion_matrix/confusion_matrix.csv (1 file(s), {} B)\n",
            CSV.len()
        )),
        "{out}"
    );
    // Metrics of one call keep their order: precision[2] before precision[10].
    let p2 = out.find("precision[2]").unwrap();
    let p10 = out.find("precision[10]").unwrap();
    assert!(p2 < p10, "{out}");
    snapshot("show", &f.root, &out, &[]);

    // The full id, any case, and a longer prefix show the same.
    let full = f.a.to_string();
    assert_eq!(lab_ok(&f.root, &["show", &full]), out);
    assert_eq!(
        lab_ok(&f.root, &["show", &full[..12].to_ascii_uppercase()]),
        out
    );
}

#[test]
fn show_of_a_failed_run_has_its_error_and_traceback() {
    let f = fixture();
    let out = lab_ok(&f.root, &["show", &f.d.short()]);
    assert!(
        out.contains("  status      failed ✗  ValueError: Input contains NaN\n"),
        "{out}"
    );
    assert!(
        out.contains("\nTraceback\n  Traceback (most recent call last):\n"),
        "{out}"
    );
    assert!(out.ends_with("  ValueError: Input contains NaN\n"), "{out}");
    snapshot("show_failed", &f.root, &out, &[]);
}

#[test]
fn run_prefix_errors_exit_1() {
    let f = fixture();
    let unknown = lab(&f.root, &["show", "ffff"]);
    assert_eq!(unknown.code, 1);
    assert_eq!(unknown.stdout, "");
    assert!(unknown.stderr.contains("hint: `lab ls` lists the runs"));
    snapshot("error_unknown_run", &f.root, &unknown.failure(), &[]);

    let ids: Vec<String> = [f.a, f.b, f.c, f.d]
        .iter()
        .map(ToString::to_string)
        .collect();
    let common = (0..32)
        .take_while(|&i| {
            ids.iter()
                .all(|id| id.as_bytes()[i] == ids[0].as_bytes()[i])
        })
        .count();
    assert!(
        common >= 1,
        "time-ordered ids share a leading digit: {ids:?}"
    );
    let prefix = &ids[0][..common];
    let ambiguous = lab(&f.root, &["show", prefix]);
    assert_eq!(ambiguous.code, 1);
    assert_eq!(ambiguous.stdout, "");
    for id in &ids {
        assert!(
            ambiguous.stderr.contains(id.as_str()),
            "{}",
            ambiguous.stderr
        );
    }
    let quoted = format!("`{prefix}`");
    snapshot(
        "error_ambiguous_run",
        &f.root,
        &ambiguous.failure(),
        &[(&regex_escape(&quoted), "`[PREFIX]`")],
    );

    for bad in ["xyz", "0e5z", "0123456789abcdef0123456789abcdef0"] {
        let out = lab(&f.root, &["show", bad]);
        assert_eq!(out.code, 1, "{bad}: {}", out.stderr);
        // What cannot be an id prefix is looked up as a name.
        assert_eq!(
            out.stderr,
            format!(
                "error: no run is named `{bad}`\n\nhint: a run is given by an id prefix or its name; `lab ls` lists both\n"
            )
        );
    }
    snapshot(
        "error_not_a_run_id",
        &f.root,
        &lab(&f.root, &["show", "xyz"]).failure(),
        &[],
    );
}

#[test]
fn outside_a_project_ls_exits_1_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_lab(lab_command(dir.path(), None, &["ls"]));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with("error: not inside a Lab project"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: run a script that uses `Experiment`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("LAB_PROJECT"), "{}", out.stderr);
    snapshot("error_not_a_project", dir.path(), &out.failure(), &[]);

    // `LAB_PROJECT` naming a folder that is not a project.
    let out = run_lab(lab_command(dir.path(), Some(dir.path()), &["show", "0"]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("`LAB_PROJECT` names a folder that is not a Lab project"),
        "{}",
        out.stderr
    );
    snapshot(
        "error_lab_project_not_a_project",
        dir.path(),
        &out.failure(),
        &[],
    );
    // Nothing was made.
    assert!(!dir.path().join(".lab").exists());
}

#[test]
fn a_project_is_found_from_a_folder_inside_it() {
    let f = fixture();
    let sub = f.root.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = run_lab(lab_command(&sub, None, &["ls", "--format", "json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
}

#[test]
fn usage_errors_exit_2() {
    let f = fixture();
    for args in [
        &["frobnicate"][..],
        &[][..],
        &["--bogus"][..],
        &["show"][..],
        &["show", "--bogus", "abc"][..],
        &["ls", "--format", "yaml"][..],
        &["ls", "--limit", "-1"][..],
        &["ls", "--limit", "many"][..],
        &["ls", "acc", "loss"][..],
    ] {
        let out = lab(&f.root, args);
        assert_eq!(out.code, 2, "lab {args:?}: {}{}", out.stdout, out.stderr);
        assert_eq!(out.stdout, "", "lab {args:?}");
        assert!(!out.stderr.is_empty(), "lab {args:?}");
    }
    snapshot(
        "error_unknown_subcommand",
        &f.root,
        &lab(&f.root, &["frobnicate"]).failure(),
        &[],
    );
    snapshot(
        "error_bad_format",
        &f.root,
        &lab(&f.root, &["ls", "--format", "yaml"]).failure(),
        &[],
    );
    snapshot(
        "error_unknown_option",
        &f.root,
        &lab(&f.root, &["--bogus"]).failure(),
        &[],
    );
}

#[test]
fn an_unknown_ls_option_is_a_usage_error() {
    // `SORT_BY` may start with `-` (`lab ls -loss`), but an unknown `--option`
    // is a mistake on the command line (docs/cli.md: exit status 2).
    let (_dir, project) = new_project();
    let out = lab(project.root(), &["ls", "--bogus"]);
    assert_eq!(
        out.code, 2,
        "`lab ls --bogus` was accepted: stdout {:?}, stderr {:?}",
        out.stdout, out.stderr
    );
}

#[test]
fn help_and_version() {
    let (_dir, project) = new_project();
    let root = project.root();
    let help = lab_ok(root, &["--help"]);
    assert!(help.contains("Usage: lab <COMMAND>"), "{help}");
    snapshot("help", root, &help, &[]);
    let ls_help = lab_ok(root, &["ls", "--help"]);
    assert!(
        ls_help.contains("[SORT_BY]") && ls_help.contains("--limit <N>"),
        "{ls_help}"
    );
    snapshot("ls_help", root, &ls_help, &[]);
    assert_eq!(lab_ok(root, &["help", "ls"]), ls_help);
    assert_eq!(
        lab_ok(root, &["--version"]),
        format!("lab {}\n", env!("CARGO_PKG_VERSION"))
    );
    // Without a command: the summary on stderr, status 2.
    let bare = lab(root, &[]);
    assert_eq!(bare.code, 2);
    assert!(
        bare.stderr.contains("Usage: lab <COMMAND>"),
        "{}",
        bare.stderr
    );
}

#[test]
fn reindex_prints_the_count_and_keeps_the_listing() {
    let f = fixture();
    let before = lab_ok(&f.root, &["ls"]);
    let json_before = lab_ok(&f.root, &["ls", "--format", "json"]);
    let show_before = lab_ok(&f.root, &["show", &f.a.short()]);
    let out = lab_ok(&f.root, &["reindex"]);
    assert_eq!(
        out,
        format!(
            "Indexed 4 run(s) from their journals in {}\n",
            f.root.join(".lab").display()
        )
    );
    snapshot("reindex", &f.root, &out, &[]);
    assert_eq!(lab_ok(&f.root, &["ls"]), before);
    assert_eq!(lab_ok(&f.root, &["ls", "--format", "json"]), json_before);
    assert_eq!(lab_ok(&f.root, &["show", &f.a.short()]), show_before);

    // From the journals alone: the index deleted.
    for name in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(f.root.join(".lab").join(name));
    }
    assert_eq!(lab_ok(&f.root, &["reindex"]), out);
    assert_eq!(lab_ok(&f.root, &["ls"]), before);
    assert_eq!(lab_ok(&f.root, &["ls", "--format", "json"]), json_before);
}

#[test]
fn a_broken_index_is_read_around_and_rebuilt_by_reindex() {
    let f = fixture();
    let index = f.root.join(".lab/index.sqlite");
    std::fs::write(&index, vec![b'x'; 4096]).unwrap();
    let out = lab(&f.root, &["ls", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4, "read from the journals");
    assert!(
        out.stderr.contains("the index is damaged") && out.stderr.contains("lab reindex"),
        "{}",
        out.stderr
    );
    let rebuilt = lab(&f.root, &["reindex"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert!(
        rebuilt.stderr.contains("it was moved aside to ")
            && rebuilt.stderr.contains("index.sqlite.damaged.1"),
        "{}",
        rebuilt.stderr
    );
    assert_eq!(
        std::fs::read(f.root.join(".lab/index.sqlite.damaged.1")).unwrap(),
        vec![b'x'; 4096]
    );
    assert!(
        rebuilt.stdout.starts_with("Indexed 4 run(s)"),
        "{}",
        rebuilt.stdout
    );
    lab_ok(&f.root, &["ls"]);
}

#[test]
fn an_unreadable_journal_is_warned_about_and_the_rest_listed() {
    let f = fixture();
    let bad = f.root.join(".lab/runs/deadbeef");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("journal.lab"), "not a journal at all\n").unwrap();
    let out = lab(&f.root, &["ls", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // It is listed too, as damaged: a run never vanishes from the listing.
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let bad = rows.iter().find(|r| r["short_id"] == "deadbeef").unwrap();
    assert_eq!(bad["status"], "damaged");
    assert!(
        out.stderr
            .starts_with("warning: the journal of run `deadbeef` cannot be read"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not a Lab journal"), "{}", out.stderr);
    // Said once: the run is settled.
    lab_ok(&f.root, &["ls"]);
}

#[test]
fn a_closed_pipe_ends_ls_quietly_with_success() {
    const RUNS: usize = 40;
    const METRICS: usize = 40;
    let (_dir, project) = new_project();
    let names: Vec<String> = (0..METRICS)
        .map(|i| format!("metric_{i:02}_{}", "x".repeat(80)))
        .collect();
    {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        for r in 0..RUNS {
            let run = start(&project, "wide", "wide.py", r as i64);
            run.log_metrics(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), (r * METRICS + i) as f64)),
                None,
            )
            .unwrap();
            end(&run, Status::Finished, None);
        }
        wait();
    }
    // Far more than a pipe holds.
    let mut whole = lab_command(project.root(), Some(project.root()), &["ls"]);
    whole.env_remove("COLUMNS");
    let whole = run_lab(whole);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert_eq!(whole.stdout.lines().count(), RUNS + 1);
    assert!(whole.stdout.len() > 128 * 1024, "{}", whole.stdout.len());

    for args in [&["ls"][..], &["ls", "--format", "json"][..]] {
        let mut cmd = lab_command(project.root(), Some(project.root()), args);
        cmd.env_remove("COLUMNS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut first = String::new();
        {
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            reader.read_line(&mut first).unwrap();
        } // The read end is closed here, like `| head -1`.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty());
        assert_eq!(out.status.code(), Some(0), "lab {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr, "", "lab {args:?}");
    }
}

/// How many rows of each per-run table of the index belong to run `id`.
fn index_rows(project: &Path, id: &str) -> Vec<(&'static str, i64)> {
    let conn = rusqlite::Connection::open(project.join(".lab/index.sqlite")).unwrap();
    [
        ("runs", "rid"),
        ("attrs", "run"),
        ("params", "run"),
        ("metric_keys", "run"),
        ("metrics", "run"),
        ("tags", "run"),
        ("artifacts", "run"),
        ("models", "run"),
    ]
    .into_iter()
    .map(|(table, column)| {
        let n: i64 = conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM {table} WHERE {column} = (SELECT rid FROM runs WHERE id = ?1)"
                ),
                [id],
                |r| r.get(0),
            )
            .unwrap();
        (table, n)
    })
    .collect()
}

/// The names the index offers to queries in `scope`.
fn index_names(project: &Path, scope: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(project.join(".lab/index.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT key FROM names WHERE scope = ?1 ORDER BY key")
        .unwrap();
    stmt.query_map([scope], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A prefix every run of the fixture shares.
fn shared_prefix(f: &Fixture) -> String {
    let ids: Vec<String> = [f.a, f.b, f.c, f.d]
        .iter()
        .map(ToString::to_string)
        .collect();
    let common = (0..32)
        .take_while(|&i| {
            ids.iter()
                .all(|id| id.as_bytes()[i] == ids[0].as_bytes()[i])
        })
        .count();
    assert!(common >= 1, "{ids:?}");
    ids[0][..common].to_owned()
}

#[test]
fn compare_shows_runs_side_by_side() {
    let f = fixture();
    let out = lab_ok(
        &f.root,
        &["compare", &f.a.short(), &f.b.short(), &f.d.short()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains(&f.a.short()) && lines[0].contains(&f.d.short()),
        "{out}"
    );
    // Differing parameters before equal ones; metric differences to the first run.
    let seed = lines.iter().position(|l| l.starts_with("  seed")).unwrap();
    let criterion = lines
        .iter()
        .position(|l| l.starts_with("  criterion"))
        .unwrap();
    assert!(seed < lines.iter().position(|l| *l == "Metrics").unwrap());
    assert!(criterion > seed);
    let acc = lines.iter().find(|l| l.starts_with("  acc")).unwrap();
    assert!(
        acc.contains("0.95 (+0.05)") && acc.contains("0.7 (-0.2)"),
        "{acc}"
    );
    assert!(out.contains("removed"), "{out}");
    snapshot("compare", &f.root, &out, &[]);

    // Equal parameters are marked and listed after the differing ones.
    let same = lab_ok(&f.root, &["compare", &f.a.short(), &f.a.short()]);
    assert!(same.contains("= seed"), "{same}");
    assert!(same.contains("0.9 (+0)"), "{same}");
}

#[test]
fn compare_lists_equal_parameters_last_and_added_features() {
    let (_dir, project) = new_project();
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut ids = Vec::new();
    for (seed, features) in [(1, &["x", "y"][..]), (2, &["x", "y", "z"][..])] {
        let run = start(&project, "e", "train.py", seed);
        run.log_features(features.iter().map(|s| Value::Str((*s).into())).collect())
            .unwrap();
        run.log_param("lr", Value::Float(0.1)).unwrap();
        run.log_param("seed", Value::Int(seed)).unwrap();
        run.log_metric("acc", 0.5 + 0.1 * seed as f64, None)
            .unwrap();
        end(&run, Status::Finished, None);
        ids.push(run.id().short());
    }
    wait();
    let out = lab_ok(project.root(), &["compare", &ids[0], &ids[1]]);
    let body: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(
        body,
        [
            "Parameters",
            "  seed      1         2",
            "= lr        0.1       0.1",
            "Metrics",
            "  acc       0.6       0.7 (+0.1)",
            "Features",
            "  (count)   2         3",
            "  z         -         added",
            "Names",
            &format!("  {}  seed-1", ids[0]),
            &format!("  {}  seed-2", ids[1]),
        ],
        "{out}"
    );
}

#[test]
fn compare_errors() {
    let f = fixture();
    let unknown = lab(&f.root, &["compare", &f.a.short(), "ffff"]);
    assert_eq!(unknown.code, 1);
    assert_eq!(unknown.stdout, "");
    assert!(
        unknown
            .stderr
            .starts_with("error: no run has an id starting with `ffff`"),
        "{}",
        unknown.stderr
    );
    let prefix = shared_prefix(&f);
    let ambiguous = lab(&f.root, &["compare", &prefix, &f.a.short()]);
    assert_eq!(ambiguous.code, 1);
    assert!(
        ambiguous.stderr.contains("is ambiguous"),
        "{}",
        ambiguous.stderr
    );
    let one = lab(&f.root, &["compare", &f.a.short()]);
    assert_eq!(one.code, 2, "{}", one.stderr);
    assert!(one.stderr.contains("RUN"), "{}", one.stderr);
}

#[test]
fn rm_removes_exactly_those_runs() {
    let f = fixture();
    let a = f.a.to_string();
    // A complete run keeps no metric numbering (nothing more to fold).
    assert!(
        index_rows(&f.root, &a)
            .iter()
            .all(|(table, n)| (*n > 0) != (*table == "metric_keys"))
    );
    assert!(index_names(&f.root, "params").contains(&"criterion".to_owned()));
    let show_b = lab_ok(&f.root, &["show", &f.b.short()]);
    let out = lab_ok(&f.root, &["rm", &f.a.short(), "--yes"]);
    assert!(
        out.starts_with(&format!(
            "Removed run `{}` (iris, train.py, finished): ",
            f.a.short()
        )),
        "{out}"
    );
    assert!(out.contains("Removed 1 run(s), freed "), "{out}");
    snapshot("rm", &f.root, &out, &[(r"\d+(\.\d)? (B|KB|MB)", "[SIZE]")]);
    assert!(!f.root.join(".lab/runs").join(f.a.short()).exists());
    assert!(!f.root.join(".lab/trash").join(f.a.short()).exists());
    for (table, n) in index_rows(&f.root, &a) {
        assert_eq!(n, 0, "{table}");
    }
    // Names only the removed run had are gone; shared ones stay.
    let params = index_names(&f.root, "params");
    assert!(!params.contains(&"criterion".to_owned()), "{params:?}");
    assert!(params.contains(&"seed".to_owned()), "{params:?}");
    assert!(index_names(&f.root, "tags").is_empty());
    // The others are untouched, also after the journals are read again.
    for id in [f.b, f.c, f.d] {
        assert!(
            f.root
                .join(".lab/runs")
                .join(id.short())
                .join("journal.lab")
                .is_file()
        );
    }
    assert_eq!(
        json_order(&f.root, &[]),
        [f.d, f.c, f.b].map(RunId::short).to_vec()
    );
    assert_eq!(lab_ok(&f.root, &["show", &f.b.short()]), show_b);
    lab_ok(&f.root, &["reindex"]);
    assert_eq!(json_order(&f.root, &[]).len(), 3);
    let gone = lab(&f.root, &["show", &f.a.short()]);
    assert_eq!(gone.code, 1);

    // Several at once.
    let out = lab_ok(&f.root, &["rm", "-y", &f.b.short(), &f.c.short()]);
    assert!(out.contains("Removed 2 run(s)"), "{out}");
    assert_eq!(json_order(&f.root, &[]), [f.d.short()].to_vec());
}

#[test]
fn rm_refuses_without_confirmation_and_for_bad_runs() {
    let f = fixture();
    let before = lab_ok(&f.root, &["ls", "--format", "json"]);
    // stdin is not a terminal in these tests.
    let asked = lab(&f.root, &["rm", &f.a.short()]);
    assert_eq!(asked.code, 1);
    assert_eq!(asked.stdout, "");
    assert_eq!(
        asked.stderr,
        "error: refusing to remove 1 run(s) without confirmation: stdin is not a terminal\n\nhint: pass `--yes` to remove without asking\n"
    );
    let unknown = lab(&f.root, &["rm", "--yes", &f.a.short(), "ffff"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown
            .stderr
            .contains("no run has an id starting with `ffff`")
    );
    let ambiguous = lab(&f.root, &["rm", "--yes", &shared_prefix(&f)]);
    assert_eq!(ambiguous.code, 1);
    assert!(
        ambiguous.stderr.contains("is ambiguous"),
        "{}",
        ambiguous.stderr
    );
    let none = lab(&f.root, &["rm"]);
    assert_eq!(none.code, 2);
    // Nothing was removed.
    assert_eq!(lab_ok(&f.root, &["ls", "--format", "json"]), before);
    assert!(f.root.join(".lab/runs").join(f.a.short()).is_dir());
}

#[test]
fn rm_refuses_a_running_run_unless_forced() {
    let (_dir, project) = new_project();
    let root = project.root().to_owned();
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let run = start(&project, "live", "train.py", 1);
    run.log_metric("acc", 0.5, None).unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("notes.txt"), "notes").unwrap();
    run.log_artifact("notes", &files.path().join("notes.txt"))
        .unwrap();
    let short = run.id().short();
    let refused = lab(&root, &["rm", "--yes", &short]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(
        refused.stderr,
        format!(
            "error: run `{short}` is still running: removing it would lose what it logs next\n\nhint: wait for it to end, or pass `--force` to remove it anyway\n"
        )
    );
    assert!(root.join(".lab/runs").join(&short).is_dir());
    let forced = lab(&root, &["rm", "--yes", "--force", &short]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced.stdout.contains("(live, train.py, running)"),
        "{}",
        forced.stdout
    );
    assert!(!root.join(".lab/runs").join(&short).exists());
    // The run's own process may still end it: its artifacts are not copied,
    // for that would make its folder again.
    let report = run.end(Status::Finished, None).unwrap();
    assert_eq!(
        report.warnings,
        [format!(
            "artifact `notes` was not copied: the run's folder was deleted while the run was live (by `lab rm --force`?): {}",
            run.paths().dir.display()
        )]
    );
    wait();
    assert!(!root.join(".lab/runs").join(&short).exists());
    assert_eq!(lab_ok(&root, &["gc"]), "Nothing to clean up\n");
}

#[test]
fn a_run_folder_deleted_by_hand_leaves_the_index_at_the_next_command() {
    let f = fixture();
    let runs = f.root.join(".lab").join("runs");
    assert_eq!(
        json_order(&f.root, &[]),
        [f.d, f.c, f.b, f.a].map(RunId::short).to_vec()
    );
    std::fs::remove_dir_all(runs.join(f.b.short())).unwrap();
    assert_eq!(
        json_order(&f.root, &[]),
        [f.d, f.c, f.a].map(RunId::short).to_vec()
    );
    for (table, n) in index_rows(&f.root, &f.b.to_string()) {
        assert_eq!(n, 0, "{table}");
    }
    let unknown = lab(&f.root, &["show", &f.b.short()]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    // The whole runs folder gone: no run is left to list.
    std::fs::remove_dir_all(&runs).unwrap();
    assert!(json_order(&f.root, &[]).is_empty());
    for run in [f.a, f.c, f.d] {
        for (table, n) in index_rows(&f.root, &run.to_string()) {
            assert_eq!(n, 0, "{table}");
        }
    }
}

#[test]
fn gc_removes_the_orphaned_temporary_files_of_media() {
    let f = fixture();
    let key = f
        .root
        .join(".lab/runs")
        .join(f.a.short())
        .join("media/samples");
    std::fs::create_dir_all(&key).unwrap();
    let orphan = key.join(".media.2147483646-3.tmp");
    std::fs::write(&orphan, vec![b'p'; 50]).unwrap();
    let live = key.join(format!(".media.{}-0.tmp", std::process::id()));
    std::fs::write(&live, b"being written").unwrap();
    let image = key.join("0.png");
    std::fs::write(&image, b"an image").unwrap();
    let out = lab_ok(&f.root, &["gc"]);
    assert!(
        out.contains(&format!(
            "Removed an orphaned temporary file (50 B): .lab/runs/{}/media/samples/.media.2147483646-3.tmp\n",
            f.a.short()
        )),
        "{out}"
    );
    assert!(!orphan.exists());
    assert!(live.is_file() && image.is_file());
}

#[test]
fn gc_removes_leftovers_and_reports_them() {
    let f = fixture();
    let store = f.root.join(".lab");
    let trash = store.join("trash/0badf00d");
    std::fs::create_dir_all(trash.join("models")).unwrap();
    std::fs::write(trash.join("journal.lab"), vec![b'j'; 1000]).unwrap();
    let models = store.join("runs").join(f.a.short()).join("models");
    let orphan = models.join(".clf.2147483646.tmp");
    std::fs::write(&orphan, vec![b'm'; 200]).unwrap();
    // As this version names them: one per call.
    let orphan_call = models.join(".clf.2147483646-7.tmp");
    std::fs::write(&orphan_call, vec![b'm'; 100]).unwrap();
    let live = models.join(format!(".clf.{}.tmp", std::process::id()));
    std::fs::write(&live, b"still being written").unwrap();
    let live_call = models.join(format!(".clf.{}-0.tmp", std::process::id()));
    std::fs::write(&live_call, b"still being written").unwrap();
    let marker = store.join(".project.json.2147483646");
    std::fs::write(&marker, b"{}\n").unwrap();

    let dry = lab_ok(&f.root, &["gc", "--dry-run"]);
    assert!(
        dry.ends_with("Would remove 4 item(s), would free 1.3 KB\n"),
        "{dry}"
    );
    assert!(trash.is_dir() && orphan.is_file() && orphan_call.is_file() && marker.is_file());

    let out = lab_ok(&f.root, &["gc"]);
    assert_eq!(
        out,
        dry.replace("Would remove", "Removed")
            .replace("would free", "freed")
    );
    assert!(
        out.contains("Removed a leftover trash folder (1.0 KB): .lab/trash/0badf00d\n"),
        "{out}"
    );
    assert!(out.contains(&format!(
        "Removed an orphaned temporary file (200 B): .lab/runs/{}/models/.clf.2147483646.tmp\n",
        f.a.short()
    )));
    assert!(out.contains(&format!(
        "Removed an orphaned temporary file (100 B): .lab/runs/{}/models/.clf.2147483646-7.tmp\n",
        f.a.short()
    )));
    assert!(
        out.contains("Removed an orphaned temporary file (3 B): .lab/.project.json.2147483646\n")
    );
    snapshot("gc", &f.root, &out, &[]);
    assert!(!trash.exists() && !orphan.exists() && !orphan_call.exists() && !marker.exists());
    assert!(live.is_file(), "a temporary file of a live process is kept");
    assert!(
        live_call.is_file(),
        "a temporary file of a live process is kept"
    );
    assert_eq!(
        json_order(&f.root, &[]),
        [f.d, f.c, f.b, f.a].map(RunId::short).to_vec()
    );
    assert_eq!(lab_ok(&f.root, &["gc"]), "Nothing to clean up\n");
}

#[test]
fn gc_removes_the_scratch_folders_of_a_killed_import() {
    let f = fixture();
    let store = f.root.join(".lab");
    let killed = store.join(".import-2147483646-Ab3dE");
    std::fs::create_dir_all(killed.join("artifacts")).unwrap();
    std::fs::write(killed.join("artifacts/model.bin"), vec![b'm'; 300]).unwrap();
    let live = store.join(format!(".import-{}-xY9", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    let out = lab_ok(&f.root, &["gc"]);
    assert_eq!(
        out,
        "Removed a killed import's scratch folder (300 B): .lab/.import-2147483646-Ab3dE\nRemoved 1 item(s), freed 300 B\n"
    );
    assert!(!killed.exists());
    assert!(live.is_dir(), "a live import's scratch folder is kept");
}

/// Sets a folder's modification time `secs` into the past.
fn age(dir: &Path, secs: u64) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

#[test]
fn gc_removes_what_earlier_artifact_copies_left() {
    let f = fixture();
    let runs = f.root.join(".lab/runs");
    let write = |path: &Path, bytes: usize| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![b'x'; bytes]).unwrap();
    };
    // Run `a` logged "." from the project root: its stored artifact holds a
    // copy of `.lab` (which held a copy of itself, and so on).
    let stored = runs.join(f.a.short()).join("artifacts/confusion_matrix");
    let copy = stored.join("src/.lab");
    write(&copy.join("project.json"), 30);
    write(
        &copy
            .join("runs")
            .join(f.a.short())
            .join("artifacts/confusion_matrix/src/.lab/project.json"),
        70,
    );
    // `.lab` folders that are no store are the user's.
    write(&stored.join("tools/.lab/settings.toml"), 5);
    write(&stored.join("cache/.lab/runs/keep.txt"), 5);
    // Run `b` ended while copying an artifact: no record claims it.
    let partial = runs.join(f.b.short()).join("artifacts/code");
    write(&partial.join("train.py"), 100);
    write(&partial.join(".lab/runs/x/journal.lab"), 200);
    // A run removed by `lab rm --force` while live, whose writer then copied
    // its artifacts into a folder it made again.
    let abandoned = runs.join("0badc0de");
    write(&abandoned.join("artifacts/code/train.py"), 400);
    age(&abandoned, 3600);
    // A run that is starting: its folder, not yet its journal. Kept.
    let starting = runs.join("0badc0df");
    std::fs::create_dir(&starting).unwrap();
    // The same, but with files in it, made a moment ago. Kept too.
    let young = runs.join("0badc0e0");
    write(&young.join("artifacts/code/x"), 1);
    // A live run's artifact being copied: no record yet, but kept.
    let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
    let project = Project::at(&f.root).unwrap();
    let live = start(&project, "live", "train.py", 9);
    let copying = runs.join(live.id().short()).join("artifacts/big/part");
    write(&copying, 10);

    // While a `lab import` holds the project's import lock, a folder without
    // a journal may be the run it is writing: kept.
    let lock = std::fs::File::create(f.root.join(".lab/import.lock")).unwrap();
    lock.lock().unwrap();
    let held = lab_ok(&f.root, &["gc", "--dry-run"]);
    assert!(!held.contains("0badc0de"), "{held}");
    drop(lock);

    let dry = lab_ok(&f.root, &["gc", "--dry-run"]);
    let out = lab_ok(&f.root, &["gc"]);
    assert_eq!(
        out,
        dry.replace("Would remove", "Removed")
            .replace("would free", "freed")
    );
    let (a, b) = (f.a.short(), f.b.short());
    assert_eq!(
        out,
        format!(
            "Removed a run folder without a journal (400 B): .lab/runs/0badc0de\n\
             Removed a copy of a Lab store inside an artifact (100 B): .lab/runs/{a}/artifacts/confusion_matrix/src/.lab\n\
             Removed an artifact whose copy never completed (300 B): .lab/runs/{b}/artifacts/code\n\
             Removed 3 item(s), freed 800 B\n"
        )
    );
    assert!(!abandoned.exists() && !copy.exists() && !partial.exists());
    assert!(stored.join("confusion_matrix.csv").is_file());
    assert!(stored.join("tools/.lab/settings.toml").is_file());
    assert!(stored.join("cache/.lab/runs/keep.txt").is_file());
    assert!(starting.is_dir() && young.is_dir() && copying.is_file());
    assert_eq!(lab_ok(&f.root, &["gc"]), "Nothing to clean up\n");
    // The runs read as before.
    assert_eq!(
        json_order(&f.root, &[]),
        [live.id(), f.d, f.c, f.b, f.a].map(RunId::short).to_vec()
    );
    live.end(Status::Finished, None).unwrap();
    wait();
    // Once the run has ended, a folder no record claims is a leftover.
    let out = lab_ok(&f.root, &["gc"]);
    assert!(
        out.starts_with(&format!(
            "Removed an artifact whose copy never completed (10 B): .lab/runs/{}/artifacts/big\n",
            live.id().short()
        )),
        "{out}"
    );
}

#[test]
fn info_describes_the_project_and_the_machine() {
    let f = fixture();
    let out = lab_ok(&f.root, &["info"]);
    let lines: Vec<&str> = out.lines().collect();
    let keys: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        ["Lab", "Project", "Runs", "Python", "OS", "CPUs"],
        "{out}"
    );
    assert_eq!(lines[0], format!("Lab:     {}", env!("CARGO_PKG_VERSION")));
    assert!(
        lines[1].starts_with(&format!("Project: {} (", f.root.display()))
            && lines[1].ends_with(" in .lab)"),
        "{out}"
    );
    assert_eq!(lines[2], "Runs:    4 (3 finished, 1 failed)");
    assert!(
        lines[3] == "Python:  not found" || lines[3].starts_with("Python:  Python 3"),
        "{out}"
    );
    assert!(lines[4].starts_with("OS:      "), "{out}");
    let cpus: usize = lines[5].trim_start_matches("CPUs:").trim().parse().unwrap();
    assert!(cpus >= 1);

    // Lab has no tracking server: nothing reads `LAB_TRACKING_URI`, so
    // `lab info` names none, whatever the environment says.
    let mut with_remote = lab_command(&f.root, Some(&f.root), &["info"]);
    with_remote.env("LAB_TRACKING_URI", "https://lab.example.com");
    let with_remote = run_lab(with_remote);
    assert_eq!(with_remote.code, 0);
    assert!(
        !with_remote.stdout.contains("Remotes") && !with_remote.stdout.contains("lab.example.com"),
        "{}",
        with_remote.stdout
    );

    // Without python3 on PATH.
    let mut no_python = lab_command(&f.root, Some(&f.root), &["info"]);
    no_python.env("PATH", "/nonexistent");
    let no_python = run_lab(no_python);
    assert!(
        no_python.stdout.contains("Python:  not found\n"),
        "{}",
        no_python.stdout
    );

    let outside = tempfile::tempdir().unwrap();
    let out = run_lab(lab_command(outside.path(), None, &["info"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("Project: none (not inside a Lab project)\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Runs:"));
}

#[test]
fn export_writes_what_ls_prints() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("runs.csv");
    let out = lab_ok(
        &f.root,
        &["export", "--format", "csv", "-o", csv.to_str().unwrap()],
    );
    assert_eq!(out, format!("Exported 4 run(s) to {}\n", csv.display()));
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        lab_ok(&f.root, &["ls", "--format", "csv"])
    );
    let json = dir.path().join("runs.json");
    let args = ["--where", "acc > 0.8", "--sort", "-acc", "-e", "iris"];
    let mut all = vec!["export", "--format", "json", "-o", json.to_str().unwrap()];
    all.extend_from_slice(&args);
    lab_ok(&f.root, &all);
    let mut ls = vec!["ls", "--format", "json"];
    ls.extend_from_slice(&args);
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        lab_ok(&f.root, &ls)
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    // Replaced whole, relative to the current folder, no temporary file left.
    let out = run_lab(lab_command(
        dir.path(),
        Some(&f.root),
        &["export", "--format", "csv", "-o", "runs.json"],
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::read_to_string(&json).unwrap().starts_with("id,"));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["runs.csv", "runs.json"]);
}

#[test]
fn export_errors() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder/runs.csv");
    let out = lab(
        &f.root,
        &["export", "--format", "csv", "-o", missing.to_str().unwrap()],
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with("error: cannot write the export: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with(&format!(": {}\n", missing.display())),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("no").exists());

    let folder = lab(
        &f.root,
        &[
            "export",
            "--format",
            "json",
            "-o",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(folder.code, 1);
    assert_eq!(
        folder.stderr,
        format!(
            "error: cannot write the export: the output path is a folder, not a regular file: {}\n\nhint: name a regular file, or `-` for standard output\n",
            dir.path().display()
        )
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let target = dir.path().join("runs.csv");
    let bad_query = lab(
        &f.root,
        &[
            "export",
            "--format",
            "csv",
            "-o",
            target.to_str().unwrap(),
            "--where",
            "acc >",
        ],
    );
    assert_eq!(bad_query.code, 1);
    assert!(!target.exists());
    let parquet = lab(
        &f.root,
        &[
            "export",
            "--format",
            "parquet",
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(parquet.code, 0, "{}", parquet.stderr);
    let bytes = std::fs::read(&target).unwrap();
    assert!(
        bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
        "a Parquet file"
    );
    let no_output = lab(&f.root, &["export", "--format", "csv"]);
    assert_eq!(no_output.code, 2);
}

#[test]
fn ui_refuses_unsafe_or_impossible_addresses() {
    let (dir, _project) = new_project();
    let open = lab(dir.path(), &["ui", "--host", "0.0.0.0"]);
    assert_eq!(open.code, 1, "{}", open.stderr);
    assert!(
        open.stderr.contains("`--host 0.0.0.0`") && open.stderr.contains("--token"),
        "{}",
        open.stderr
    );
    let bad_host = lab(dir.path(), &["ui", "--host", "example.org"]);
    assert_eq!(bad_host.code, 1);
    assert!(
        bad_host.stderr.contains("`--host` must be an IP address"),
        "{}",
        bad_host.stderr
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let busy = lab(dir.path(), &["ui", "--port", &port]);
    assert_eq!(busy.code, 1);
    assert!(
        busy.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        busy.stderr
    );
    let both = lab(dir.path(), &["ui", "--token", "x", "--no-auth"]);
    assert_eq!(both.code, 2, "conflicting options are a usage error");
    for args in [
        &["ui", "--token", "s3cret"][..],
        &["ui", "--token", "0123456789abcde"],
        &["ui", "--host", "0.0.0.0", "--token", "0123456789abcde"],
    ] {
        let short = lab(dir.path(), args);
        assert_eq!(short.code, 1, "{args:?}: {}", short.stderr);
        assert!(
            short.stderr.contains("must have at least 16 characters")
                && short.stderr.contains("openssl rand"),
            "{}",
            short.stderr
        );
        assert!(!short.stderr.contains("s3cret"), "the token is a secret");
    }
    let mut env_cmd = lab_command(dir.path(), Some(dir.path()), &["ui"]);
    env_cmd.env("LAB_UI_TOKEN", "s3cret");
    let from_env = run_lab(env_cmd);
    assert_eq!(from_env.code, 1);
    assert!(
        from_env.stderr.contains("`LAB_UI_TOKEN`") && from_env.stderr.contains("it has 6"),
        "{}",
        from_env.stderr
    );
    let spaced = lab(
        dir.path(),
        &["ui", "--token", "correct horse battery staple"],
    );
    assert_eq!(spaced.code, 1);
    assert!(
        spaced.stderr.contains("without spaces"),
        "{}",
        spaced.stderr
    );
    let outside = tempfile::tempdir().unwrap();
    let not_project = run_lab(lab_command(outside.path(), None, &["ui"]));
    assert_eq!(not_project.code, 1);
    assert!(
        not_project.stderr.contains("not inside a Lab project"),
        "{}",
        not_project.stderr
    );
}

#[test]
fn ui_serves_until_terminated() {
    let (dir, _project) = new_project();
    let mut child = lab_command(dir.path(), Some(dir.path()), &["ui", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line has the address. The reader is dropped then, closing
    // the pipe before the second line: that must not stop the server.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut sock, b"GET /api/v1/runs HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut sock, &mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    assert!(reply.contains("\"total\":0"), "{reply}");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM stops it cleanly");
}

/// Cuts run `short`'s journal as an older Lab did at a corrupt first metric
/// frame: everything from there into one unnumbered piece.
fn cut_like_an_older_lab(root: &Path, short: &str) -> PathBuf {
    let dir = root.join(".lab").join("runs").join(short);
    let journal = dir.join("journal.lab");
    let mut first_metric = None;
    lab_journal::read_journal(&journal, 0, |at, r| {
        if matches!(r, lab_types::Record::Metric { .. }) {
            first_metric.get_or_insert(at);
        }
    })
    .unwrap();
    let at = first_metric.unwrap() as usize;
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[at + 12] ^= 0x10;
    std::fs::write(dir.join("journal.lab.damaged"), &bytes[at..]).unwrap();
    std::fs::write(&journal, &bytes[..at]).unwrap();
    journal
}

#[test]
fn doctor_salvages_the_other_runs_when_one_journal_is_busy() {
    let f = fixture();
    let busy = cut_like_an_older_lab(&f.root, &f.a.short());
    cut_like_an_older_lab(&f.root, &f.b.short());
    lab_ok(&f.root, &["reindex"]);
    // Someone reads run `a`'s journal all the while (`lab ui` showing it).
    let reader = std::fs::File::open(&busy).unwrap();
    reader.lock_shared().unwrap();
    let salvaged = lab(&f.root, &["doctor", "--salvage"]);
    drop(reader);
    assert_eq!(salvaged.code, 1, "{}{}", salvaged.stdout, salvaged.stderr);
    assert!(
        salvaged.stdout.contains(&format!(
            "record(s) into the journal of run `{}`",
            f.b.short()
        )),
        "{}",
        salvaged.stdout
    );
    assert!(
        salvaged.stdout.contains(&format!(
            "Could not put back the records of run `{}`: another process holds the journal",
            f.a.short()
        )),
        "{}",
        salvaged.stdout
    );
    // Once it is free, the salvage of `a` goes through.
    let again = lab(&f.root, &["doctor", "--salvage"]);
    assert!(
        again.stdout.contains(&format!(
            "record(s) into the journal of run `{}`",
            f.a.short()
        )),
        "{}",
        again.stdout
    );
    assert!(lab_ok(&f.root, &["show", &f.a.short()]).contains("finished"));
}

#[test]
fn doctor_reports_damage_and_salvages_what_an_older_cut_kept() {
    let f = fixture();
    let short = f.b.short();
    let dir = f.root.join(".lab").join("runs").join(&short);
    let journal = dir.join("journal.lab");
    // The first metric frame of run `b` (loss 0.8) is corrupt, and an older
    // Lab, stopping at it, cut everything from there into one unnumbered
    // piece: the run lost its last points and its End record.
    let mut offsets = Vec::new();
    lab_journal::read_journal(&journal, 0, |at, r| {
        if matches!(r, lab_types::Record::Metric { .. }) {
            offsets.push(at);
        }
    })
    .unwrap();
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = offsets[0] as usize;
    bytes[at + 12] ^= 0x10;
    std::fs::write(dir.join("journal.lab.damaged"), &bytes[at..]).unwrap();
    std::fs::write(&journal, &bytes[..at]).unwrap();
    lab_ok(&f.root, &["reindex"]);
    let before: serde_json::Value =
        serde_json::from_str(&lab_ok(&f.root, &["ls", "--format", "json"])).unwrap();
    let b_before = before
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["short_id"] == short.as_str())
        .unwrap();
    assert_eq!(b_before["status"], "damaged", "{b_before}");

    let report = lab(&f.root, &["doctor"]);
    assert_eq!(report.code, 1, "damage found: {}", report.stderr);
    assert!(report.stdout.contains("Index: sound"), "{}", report.stdout);
    assert!(
        report.stdout.contains(&format!(
            "{short}  piece cut off the journal: .lab/runs/{short}/journal.lab.damaged"
        )),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("lab doctor --salvage"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains(&format!(
            "Runs listed as damaged (how they went cannot be told from their journals): {short}"
        )),
        "{}",
        report.stdout
    );

    let salvaged = lab(&f.root, &["doctor", "--salvage"]);
    assert!(
        salvaged
            .stdout
            .contains(&format!("record(s) into the journal of run `{short}`")),
        "{}",
        salvaged.stdout
    );
    let shown = lab_ok(&f.root, &["show", &short]);
    assert!(
        shown.contains("finished"),
        "the End record is back:\n{shown}"
    );
    let after: serde_json::Value =
        serde_json::from_str(&lab_ok(&f.root, &["ls", "--format", "json"])).unwrap();
    let b_after = after
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["short_id"] == short.as_str())
        .unwrap();
    assert_eq!(b_after["status"], "finished");
    assert_eq!(b_after["metrics"]["acc"], 0.95, "{b_after}");
    assert_eq!(
        b_after["metrics"]["loss"], 0.3,
        "only the corrupt point is lost"
    );
    // The piece is kept, renamed.
    assert!(dir.join("journal.lab.damaged.salvaged").exists());
    assert!(!dir.join("journal.lab.damaged").exists());
    // Nothing is left to salvage; the damage is still told.
    let again = lab(&f.root, &["doctor"]);
    assert!(!again.stdout.contains("--salvage"), "{}", again.stdout);

    // A healthy project is healthy.
    let g = fixture();
    let healthy = lab(&g.root, &["doctor"]);
    assert_eq!(healthy.code, 0, "{}{}", healthy.stdout, healthy.stderr);
    assert_eq!(
        healthy.stdout,
        "Index: sound\nJournals: 4 read, none damaged\n"
    );
}

/// A `lab ui` started with `args` on a free port, stopped when dropped.
struct Served {
    child: std::process::Child,
    port: u16,
    /// The first line it printed.
    banner: String,
}

impl Served {
    fn start(dir: &Path, args: &[&str]) -> Self {
        let mut all = vec!["ui", "--port", "0"];
        all.extend_from_slice(args);
        let mut child = lab_command(dir, Some(dir), &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let address = banner.split_whitespace().last().unwrap_or_default();
        let port = address
            .trim_start_matches("http://")
            .split(['/', '#'])
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {banner:?}"));
        Self {
            child,
            port,
            banner,
        }
    }

    /// Sends `head` (the request line and headers, without the blank line
    /// ending them) and gives the whole answer.
    fn request(&self, head: &str) -> String {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let text = format!(
            "{}\r\nConnection: close\r\n\r\n",
            head.replace('\n', "\r\n")
        );
        std::io::Write::write_all(&mut sock, text.as_bytes()).unwrap();
        let mut reply = Vec::new();
        std::io::Read::read_to_end(&mut sock, &mut reply).unwrap();
        String::from_utf8_lossy(&reply).into_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of an HTTP answer.
fn status_of(reply: &str) -> u16 {
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {reply:?}"))
}

#[test]
fn ui_answers_a_hostile_page_with_refusals() {
    let f = fixture();
    let served = Served::start(&f.root, &[]);
    let a = f.a.to_string();
    // The hostile page's view: its own name, pointed at 127.0.0.1 by its DNS.
    let foreign =
        "Host: evil.example:5050\nOrigin: http://evil.example:5050\nSec-Fetch-Site: same-origin";
    let list = served.request(&format!("GET /api/v1/runs HTTP/1.1\n{foreign}"));
    assert_eq!(status_of(&list), 421, "{list}");
    assert!(
        list.contains("\"code\":\"bad_host\"") && !list.contains(&a),
        "{list}"
    );
    let page = served.request(&format!("GET / HTTP/1.1\n{foreign}"));
    assert_eq!(status_of(&page), 421, "{page}");
    let delete = served.request(&format!("DELETE /api/v1/runs/{a} HTTP/1.1\n{foreign}"));
    assert_eq!(status_of(&delete), 421, "{delete}");
    // A page elsewhere writing to the real address.
    let cross = served.request(&format!(
        "DELETE /api/v1/runs/{a} HTTP/1.1\nHost: 127.0.0.1:{}\nOrigin: http://evil.example\nSec-Fetch-Site: cross-site",
        served.port
    ));
    assert_eq!(status_of(&cross), 403, "{cross}");
    assert!(cross.contains("\"code\":\"cross_origin\""), "{cross}");
    assert!(
        f.root.join(".lab/runs").join(&a[..8]).exists(),
        "nothing was deleted"
    );
    // The server's own page, at each of its loopback names.
    for host in [
        format!("127.0.0.1:{}", served.port),
        format!("localhost:{}", served.port),
    ] {
        let own = format!("Host: {host}\nOrigin: http://{host}\nSec-Fetch-Site: same-origin");
        let list = served.request(&format!("GET /api/v1/runs HTTP/1.1\n{own}"));
        assert_eq!(status_of(&list), 200, "{list}");
        assert!(list.contains(&a), "{list}");
    }
    let own = format!(
        "Host: 127.0.0.1:{port}\nOrigin: http://127.0.0.1:{port}\nSec-Fetch-Site: same-origin",
        port = served.port
    );
    let deleted = served.request(&format!("DELETE /api/v1/runs/{a} HTTP/1.1\n{own}"));
    assert_eq!(status_of(&deleted), 204, "{deleted}");
    assert!(!f.root.join(".lab/runs").join(&a[..8]).exists());
    // HTTP/1.0 without `Host` is not a browser: answered.
    let old = served.request("GET /api/v1/runs HTTP/1.0");
    assert_eq!(status_of(&old), 200, "{old}");
    // HTTP/1.1 must name a host.
    let bare = served.request("GET /api/v1/runs HTTP/1.1");
    assert_eq!(status_of(&bare), 400, "{bare}");
    assert!(bare.contains("\"code\":\"bad_request\""), "{bare}");
}

#[test]
fn ui_with_a_token_answers_any_host_that_has_it() {
    let f = fixture();
    let token = "0123456789abcdef";
    let served = Served::start(&f.root, &["--token", token]);
    assert!(
        served
            .banner
            .trim_end()
            .ends_with(&format!("/#token={token}")),
        "{}",
        served.banner
    );
    let without = served.request("GET /api/v1/runs HTTP/1.1\nHost: box.example:5050");
    assert_eq!(status_of(&without), 401, "{without}");
    let with = served.request(&format!(
        "GET /api/v1/runs HTTP/1.1\nHost: box.example:5050\nAuthorization: Bearer {token}"
    ));
    assert_eq!(status_of(&with), 200, "{with}");
    let cross = served.request(&format!(
        "DELETE /api/v1/runs/{} HTTP/1.1\nHost: box.example:5050\nAuthorization: Bearer {token}\nOrigin: http://evil.example",
        f.a
    ));
    assert_eq!(status_of(&cross), 403, "{cross}");
}

#[test]
fn ui_host_localhost_is_127_0_0_1() {
    let (dir, _project) = new_project();
    for name in ["localhost", "LOCALHOST"] {
        let served = Served::start(dir.path(), &["--host", name]);
        assert!(
            served.banner.contains("http://127.0.0.1:"),
            "{}",
            served.banner
        );
        let reply = served.request("GET /api/v1/runs HTTP/1.1\nHost: localhost");
        assert_eq!(status_of(&reply), 200, "{reply}");
    }
}

#[test]
fn show_lists_links_in_a_stored_artifact_without_following_them() {
    let (_dir, project) = new_project();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("weights.bin"), b"12345678").unwrap();
    let run = {
        let _guard = SDK.lock().unwrap_or_else(PoisonError::into_inner);
        let run = start(&project, "links", "train.py", 1);
        run.log_artifact("logs", source.path()).unwrap();
        end(&run, Status::Finished, None);
        wait();
        run
    };
    // Links put into the stored copy by hand, two of them back up the tree:
    // followed, the tree would double at every level.
    let stored = project.run_paths(run.short_id()).artifacts.join("logs");
    std::os::unix::fs::symlink("..", stored.join("up")).unwrap();
    std::os::unix::fs::symlink("..", stored.join("up2")).unwrap();
    let out = lab_ok(project.root(), &["show", run.short_id()]);
    assert!(out.contains("weights.bin  (8 B)"), "{out}");
    assert!(
        out.contains("up  ("),
        "the link is listed as itself:\n{out}"
    );
    assert!(out.contains("up2  ("), "{out}");
}

#[test]
fn runs_are_renamed_tagged_untagged_and_noted_by_name_or_id() {
    let f = fixture();
    let short = f.d.short();
    let out = lab_ok(&f.root, &["rename", &short, "baseline"]);
    assert_eq!(
        out,
        format!("Renamed run `{short}` from `seed-4` to `baseline`\n")
    );
    let out = lab_ok(
        &f.root,
        &["tag", "baseline", "stage=final", "expr=a=b", "empty="],
    );
    assert_eq!(
        out,
        format!("Tagged run `{short}` (baseline): `stage=final`, `expr=a=b`, `empty=`\n")
    );
    let out = lab_ok(&f.root, &["untag", "baseline", "empty", "never"]);
    assert_eq!(
        out,
        format!(
            "Removed tag `empty` from run `{short}` (baseline)\nRun `{short}` (baseline) had no tag `never`\n"
        )
    );
    let out = lab_ok(&f.root, &["note", "baseline", "# Why\n\nthe *first* try"]);
    assert_eq!(
        out,
        format!("Wrote a note of 22 characters on run `{short}` (baseline)\n")
    );
    let show = lab_ok(&f.root, &["show", "baseline"]);
    assert!(show.contains("  name        baseline\n"), "{show}");
    assert!(
        show.contains("Note\n  # Why\n  \n  the *first* try\n"),
        "{show}"
    );
    assert!(show.contains("  stage       final\n"), "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&lab_ok(&f.root, &["ls", "--format", "json"])).unwrap();
    let row = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["short_id"] == short.as_str())
        .unwrap();
    assert_eq!(row["name"], "baseline");
    assert_eq!(
        row["tags"],
        serde_json::json!({"expr": "a=b", "stage": "final"})
    );
    // The run's own journal is untouched; the edits are in its meta journal.
    let meta = f.root.join(".lab/runs").join(&short).join("meta.lab");
    assert!(meta.is_file());
    let out = lab_ok(&f.root, &["note", "baseline", ""]);
    assert!(out.starts_with("Removed the note of run"), "{out}");
    assert!(!lab_ok(&f.root, &["show", &short]).contains("Note\n"));
}

#[test]
fn a_bad_edit_names_its_argument_and_changes_nothing() {
    let f = fixture();
    let short = f.d.short();
    let meta = f.root.join(".lab/runs").join(&short).join("meta.lab");
    let out = lab(&f.root, &["tag", &short, "stage"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("error: `stage` is not a tag: expected KEY=VALUE\n\nhint: "),
        "{}",
        out.stderr
    );
    let out = lab(&f.root, &["rename", &short, " "]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "error: `name` must be a non-empty text: got ` `\n"
    );
    let out = lab(&f.root, &["tag", &short, "=v"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("`tags` must be a non-empty tag key"),
        "{}",
        out.stderr
    );
    assert!(!meta.exists(), "nothing was written");
    let out = lab(&f.root, &["rename", "no-such-run", "x"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("no run is named `no-such-run`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_reindex_killed_midway_leaves_every_run_listed() {
    const RUNS: usize = 1000;
    let (_dir, project) = new_project();
    let root = project.root().to_path_buf();
    let t0 = lab_types::now_nanos() - 7200 * 1_000_000_000;
    for i in 0..RUNS {
        let start = t0 + i as i64 * 1_000_000_000;
        let (id, paths) = project.claim_run(start).unwrap();
        let mut w = lab_journal::JournalWriter::create(&paths.journal).unwrap();
        w.append(&lab_types::Record::Start {
            run: id,
            time_nanos: start,
            experiment: "many".into(),
        })
        .unwrap();
        for p in 0..5 {
            w.append(&lab_types::Record::Param {
                time_nanos: start,
                key: format!("p{p}"),
                value: Value::Int(i as i64),
            })
            .unwrap();
        }
        w.append(&lab_types::Record::End {
            time_nanos: start + 1,
            status: Status::Finished,
            error: None,
        })
        .unwrap();
        w.close().unwrap();
    }
    let listed = |root: &Path| {
        let out = lab(root, &["ls", "--format", "json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        rows.as_array().unwrap().len()
    };
    assert_eq!(listed(&root), RUNS);
    let index = root.join(".lab/index.sqlite");
    let mut killed_midway = 0;
    for delay_ms in [10, 40, 100, 200] {
        let mut child = lab_command(&root, Some(&root), &["reindex"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_midway += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What the killed rebuild left, read as it is...
        let conn = rusqlite::Connection::open(&index).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "after a kill at {delay_ms} ms");
        drop(conn);
        // ...and every run is listed all the same.
        assert_eq!(listed(&root), RUNS, "after a kill at {delay_ms} ms");
    }
    assert!(
        killed_midway > 0,
        "no reindex was still running when killed"
    );
    assert!(
        lab_ok(&root, &["reindex"]).starts_with(&format!("Indexed {RUNS} run(s)")),
        "a later reindex ends"
    );
}
