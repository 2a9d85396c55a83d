//! W&B's run folders (`wandb/offline-run-*`, `wandb/run-*`), read from
//! their `.wandb` files ([`datastore`] framing, [`proto`] records) and the
//! files beside them. What maps to what is in `docs/import.md`:
//!
//! - the project is the experiment; the run's W&B id, with its entity and
//!   project, is its origin (`wandb:<entity>/<project>/<id>`);
//! - the config is the parameters: nested dicts flattened with `.`, the
//!   `{"value": …, "desc": …}` wrapping of config files unwrapped, `_wandb`
//!   left out;
//! - the history is the metrics: each `wandb.log` call is a step (`_step`)
//!   at its time (`_timestamp`); numbers become points, other values (media,
//!   tables, text) are left out and counted; keys starting with `_` are W&B's;
//! - the exit record is the end: exit code 0 is `finished`, any other
//!   `failed`, and the end time is the start plus the runtime it gives (or
//!   the last history time, if later). A file without one (a run still
//!   running, or killed) gives a run without an end;
//! - the run's tags are tags with empty text; its name, notes, group and job
//!   type are the tags `wandb.name`, `wandb.notes`, `wandb.group`,
//!   `wandb.job_type`; its host and git commit the `host` and `git_commit`
//!   attributes; the environment record (from older SDKs,
//!   `files/wandb-metadata.json`) gives `source` (the program), `argv`,
//!   `user`, `host`, `python_version`, `python_executable` and `cwd`;
//! - files under `files/` are artifacts, except W&B's own (see
//!   [`WANDB_FILES`]).

pub mod datastore;
pub mod proto;

use std::path::{Path, PathBuf};

use lab_sdk::import::{
    ImportedEnd, ImportedMetric, ImportedPoint, ImportedRun, artifact_name, valid_key,
};
use lab_types::{Status, Value, fields::attr};
use prost::Message as _;

use crate::mlflow::key_or_renamed;
use crate::{ImportError, LeftOut, Read, Source, SourceRun, flatten_json, json_to_value};

use proto::RecordType;

/// Files W&B writes into a run's `files/` folder about the run itself, which
/// are not artifacts: what they hold is imported otherwise (config,
/// summary, metadata) or is the console output and environment.
pub const WANDB_FILES: &[&str] = &[
    "config.yaml",
    "wandb-metadata.json",
    "wandb-summary.json",
    "wandb-events.jsonl",
    "output.log",
    "requirements.txt",
    "conda-environment.yaml",
    "diff.patch",
];

/// The run folders under a folder given to `lab import wandb`.
pub struct Folder {
    runs: Vec<PathBuf>,
}

fn is_run_folder_name(name: &str) -> bool {
    name.starts_with("offline-run-") || name.starts_with("run-")
}

fn wandb_file(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wandb") && p.is_file())
        .collect();
    files.sort();
    files.into_iter().next()
}

impl Folder {
    /// The run folders of `dir`: `dir` itself if it is one, else its
    /// `offline-run-*` and `run-*` folders, or those of its `wandb` folder.
    pub fn open(dir: &Path) -> Result<Self, ImportError> {
        let hint = "hint: give the `wandb` folder a training script wrote (`wandb.init(dir=...)` makes it inside that folder), or one `offline-run-*` folder in it";
        if !dir.is_dir() {
            return Err(ImportError::source(format!(
                "`{}` is not a W&B folder: there is no such folder: {}\n\n{hint}",
                dir.display(),
                dir.display()
            )));
        }
        if wandb_file(dir).is_some() {
            return Ok(Self {
                runs: vec![dir.to_owned()],
            });
        }
        let mut runs = Vec::new();
        for base in [dir.to_owned(), dir.join("wandb")] {
            let Ok(entries) = std::fs::read_dir(&base) else {
                continue;
            };
            for entry in entries.flatten() {
                // `latest-run` is a link to one of the others.
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && is_run_folder_name(&entry.file_name().to_string_lossy()) {
                    runs.push(entry.path());
                }
            }
        }
        runs.sort();
        if runs.is_empty() {
            return Err(ImportError::source(format!(
                "`{}` is not a W&B folder: it holds no `offline-run-*` or `run-*` folder, and no `.wandb` file: {}\n\n{hint}",
                dir.display(),
                dir.display()
            )));
        }
        Ok(Self { runs })
    }
}

/// What a `.wandb` file says, put together.
#[derive(Default)]
struct Collected {
    run: Option<proto::RunRecord>,
    environment: Option<proto::EnvironmentRecord>,
    exit: Option<proto::RunExitRecord>,
    config: Vec<(String, serde_json::Value)>,
    /// Metric name → points.
    metrics: Vec<(String, Vec<ImportedPoint>)>,
    first_time_nanos: Option<i64>,
    last_time_nanos: Option<i64>,
}

impl Collected {
    fn config(&mut self, record: &proto::ConfigRecord, left: &mut LeftOut) {
        for item in &record.update {
            match serde_json::from_str(&item.value_json) {
                Ok(v) => {
                    let name = item.name();
                    self.config.retain(|(k, _)| *k != name);
                    self.config.push((name, v));
                }
                Err(_) => left.add("config values that are not JSON"),
            }
        }
        for item in &record.remove {
            let name = item.name();
            self.config.retain(|(k, _)| *k != name);
        }
    }

    fn point(&mut self, name: &str, point: ImportedPoint) {
        match self.metrics.iter_mut().find(|(n, _)| n == name) {
            Some((_, points)) => points.push(point),
            None => self.metrics.push((name.to_owned(), vec![point])),
        }
    }

    fn history(&mut self, record: &proto::HistoryRecord, left: &mut LeftOut) {
        let mut step = record.step.as_ref().map(|s| s.num);
        let mut time_nanos = None;
        // W&B writes a logged media object or table as one item per field
        // (`table.nrows`, `table._type`, ...): the fields under a name that
        // has a `_type` are that object's, not numbers of their own.
        let media: Vec<String> = record
            .item
            .iter()
            .filter_map(|i| i.name().strip_suffix("._type").map(str::to_owned))
            .collect();
        left.add_n(
            "non-numeric history values (media, tables, text)",
            media.len() as u64,
        );
        let mut values = Vec::new();
        for item in &record.item {
            let name = item.name();
            if media.iter().any(|m| {
                name.strip_prefix(m.as_str())
                    .is_some_and(|r| r.starts_with('.'))
            }) {
                continue;
            }
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&item.value_json) else {
                left.add("history values that are not JSON");
                continue;
            };
            match name.as_str() {
                "_step" => step = value.as_i64().or(step),
                "_timestamp" => {
                    time_nanos = value.as_f64().map(|s| (s * 1e9).round() as i64);
                }
                // W&B's own (`_runtime`, `_wandb`, ...).
                _ if name.starts_with('_') => {}
                _ => values.push((name, value)),
            }
        }
        let Some(time_nanos) = time_nanos.or(self.last_time_nanos) else {
            left.add_n("history values without a time", values.len() as u64);
            return;
        };
        self.first_time_nanos = Some(
            self.first_time_nanos
                .map_or(time_nanos, |t| t.min(time_nanos)),
        );
        self.last_time_nanos = Some(
            self.last_time_nanos
                .map_or(time_nanos, |t| t.max(time_nanos)),
        );
        let step = step.unwrap_or(0);
        if step < 0 {
            left.add_n("metric points with a negative step", values.len() as u64);
            return;
        }
        for (name, value) in values {
            let mut leaves = Vec::new();
            numbers(&name, &value, &mut leaves, left);
            for (name, v) in leaves {
                self.point(
                    &name,
                    ImportedPoint {
                        step,
                        value: v,
                        time_nanos,
                    },
                );
            }
        }
    }
}

/// The numbers a history value holds: itself, or the numeric leaves of a
/// plain dict (`name.key`). Media and tables (dicts with a `_type`), text,
/// lists, booleans and nulls are counted as left out.
fn numbers(
    name: &str,
    value: &serde_json::Value,
    out: &mut Vec<(String, f64)>,
    left: &mut LeftOut,
) {
    use serde_json::Value as J;
    match value {
        J::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.push((name.to_owned(), f));
            }
        }
        // How W&B writes the floats JSON has no spelling for.
        J::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
            out.push((name.to_owned(), s.parse::<f64>().unwrap_or(f64::NAN)));
        }
        J::Object(map) if map.contains_key("_type") => {
            left.add("non-numeric history values (media, tables, text)");
        }
        J::Object(map) => {
            for (k, v) in map {
                numbers(&format!("{name}.{k}"), v, out, left);
            }
        }
        _ => left.add("non-numeric history values (media, tables, text)"),
    }
}

/// W&B's config wrapping, `{"value": …, "desc": …}`, taken off.
fn unwrap_config(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(mut map)
            if map.contains_key("value") && map.keys().all(|k| k == "value" || k == "desc") =>
        {
            map.remove("value").unwrap_or(serde_json::Value::Null)
        }
        other => other,
    }
}

fn read_file(path: &Path, left: &mut LeftOut) -> Result<Collected, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let decoded = datastore::decode(&bytes)
        .map_err(|e| format!("{e}; nothing of this run was imported: {}", path.display()))?;
    if decoded.cut_tail.is_some() {
        left.add("records cut off at the end of a .wandb file (a run still writing, or killed)");
    }
    let mut c = Collected::default();
    for (n, bytes) in decoded.records.iter().enumerate() {
        let record = proto::Record::decode(bytes.as_slice()).map_err(|e| {
            format!(
                "record {} is not a W&B record ({e}); nothing of this run was imported: {}",
                n + 1,
                path.display()
            )
        })?;
        match record.record_type {
            Some(RecordType::Run(run)) => {
                if let Some(config) = &run.config {
                    c.config(config, left);
                }
                // A resumed run repeats its record; the first one holds the start.
                if c.run.is_none() {
                    c.run = Some(*run);
                }
            }
            Some(RecordType::Config(config)) => c.config(&config, left),
            Some(RecordType::History(history)) => c.history(&history, left),
            Some(RecordType::Exit(exit)) => c.exit = Some(exit),
            Some(RecordType::Environment(env)) => {
                if c.environment.is_none() {
                    c.environment = Some(env);
                }
            }
            Some(RecordType::Summary(_) | RecordType::Files(_)) | None => {}
        }
    }
    Ok(c)
}

/// The facts of `files/wandb-metadata.json` Lab has attributes for.
fn metadata(files: &Path) -> Vec<(String, Value)> {
    let Ok(text) = std::fs::read_to_string(files.join("wandb-metadata.json")) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let str_of = |k: &str| {
        json.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(program) = str_of("codePath").or_else(|| str_of("program")) {
        out.push((attr::SOURCE.to_owned(), Value::Str(program.to_owned())));
    }
    if let Some(args) = json.get("args").and_then(serde_json::Value::as_array) {
        out.push((
            attr::ARGV.to_owned(),
            json_to_value(&serde_json::Value::Array(args.clone())),
        ));
    }
    if let Some(user) = str_of("username") {
        out.push((attr::USER.to_owned(), Value::Str(user.to_owned())));
    }
    if let Some(python) = str_of("python") {
        // "CPython 3.11.7" or "3.11.7".
        let version = python.rsplit(' ').next().unwrap_or(python);
        out.push((
            attr::PYTHON_VERSION.to_owned(),
            Value::Str(version.to_owned()),
        ));
    }
    out
}

/// The facts of the environment record Lab has attributes for.
fn environment(env: &proto::EnvironmentRecord) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut text = |key: &str, value: &str| {
        if !value.is_empty() {
            out.push((key.to_owned(), Value::Str(value.to_owned())));
        }
    };
    text(attr::SOURCE, &env.program);
    // "CPython 3.11.7".
    text(
        attr::PYTHON_VERSION,
        env.python.rsplit(' ').next().unwrap_or_default(),
    );
    text(attr::HOST, &env.host);
    text(attr::USER, &env.username);
    text(attr::PYTHON_EXECUTABLE, &env.executable);
    text(attr::CWD, &env.root);
    if !env.args.is_empty() {
        out.push((
            attr::ARGV.to_owned(),
            Value::List(env.args.iter().cloned().map(Value::Str).collect()),
        ));
    }
    out
}

fn artifacts(files: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(files) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| !WANDB_FILES.contains(&e.file_name().to_string_lossy().as_ref()))
        .map(|e| (artifact_name(&e.file_name().to_string_lossy()), e.path()))
        .collect();
    out.sort();
    out
}

/// Reads one run folder.
fn read_run(dir: &Path) -> Result<Read, String> {
    let file = wandb_file(dir).ok_or_else(|| {
        format!(
            "it is not a W&B run folder: it holds no `.wandb` file: {}",
            dir.display()
        )
    })?;
    let mut left = LeftOut::default();
    let c = read_file(&file, &mut left)?;
    let run = c.run.clone().ok_or_else(|| {
        format!(
            "its `.wandb` file has no run record; nothing of this run was imported: {}",
            file.display()
        )
    })?;
    let start_nanos = run
        .start_time
        .as_ref()
        .map(|t| t.seconds.saturating_mul(1_000_000_000) + i64::from(t.nanos))
        .or(c.first_time_nanos)
        .unwrap_or(0);
    let end = c.exit.as_ref().map(|exit| {
        let by_runtime = start_nanos + i64::from(exit.runtime) * 1_000_000_000;
        ImportedEnd {
            time_nanos: by_runtime.max(c.last_time_nanos.unwrap_or(start_nanos)),
            status: if exit.exit_code == 0 {
                Status::Finished
            } else {
                Status::Failed
            },
            error: (exit.exit_code != 0).then(|| lab_types::ErrorInfo {
                kind: "exit code".into(),
                message: format!("the W&B run ended with exit code {}", exit.exit_code),
                traceback: String::new(),
            }),
        }
    });
    let mut params = Vec::new();
    for (key, value) in c.config {
        if key == "_wandb" {
            continue;
        }
        flatten_json(&key, &unwrap_config(value), &mut params);
    }
    let params = params
        .into_iter()
        .map(|(k, v)| (key_or_renamed(k, &mut left), v))
        .collect();
    let files = dir.join("files");
    let mut attrs = c
        .environment
        .as_ref()
        .map_or_else(|| metadata(&files), environment);
    if !run.host.is_empty() {
        attrs.retain(|(k, _)| k != attr::HOST);
        attrs.push((attr::HOST.to_owned(), Value::Str(run.host.clone())));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    if let Some(git) = &run.git {
        if !git.commit.is_empty() {
            attrs.push((attr::GIT_COMMIT.to_owned(), Value::Str(git.commit.clone())));
        }
        if !git.remote_url.is_empty() {
            tags.push(("wandb.git.remote".into(), git.remote_url.clone()));
        }
    }
    for (key, value) in [
        ("wandb.name", &run.display_name),
        ("wandb.notes", &run.notes),
        ("wandb.group", &run.run_group),
        ("wandb.job_type", &run.job_type),
    ] {
        if !value.is_empty() {
            tags.push((key.to_owned(), value.clone()));
        }
    }
    for tag in &run.tags {
        tags.push((key_or_renamed(tag.clone(), &mut left), String::new()));
    }
    let metrics = c
        .metrics
        .into_iter()
        .map(|(name, points)| ImportedMetric {
            name: key_or_renamed(name, &mut left),
            points,
        })
        .collect();
    let project = if run.project.is_empty() {
        "uncategorized".to_owned()
    } else {
        run.project.clone()
    };
    let experiment = valid_key(&project).unwrap_or(project.clone());
    let origin = if run.entity.is_empty() {
        format!("wandb:{project}/{}", run.run_id)
    } else {
        format!("wandb:{}/{project}/{}", run.entity, run.run_id)
    };
    Ok(Read {
        run: ImportedRun {
            origin,
            experiment,
            start_nanos,
            end,
            attrs,
            params,
            tags,
            metrics,
            artifacts: artifacts(&files),
        },
        left_out: left.into_vec(),
        warnings: Vec::new(),
    })
}

/// A folder of W&B runs as a [`Source`]. Runs are read whole while listed
/// (their identity is inside the `.wandb` file); a run that cannot be read
/// is listed under its folder, and fails when its turn comes.
pub struct WandbSource {
    read: Vec<(PathBuf, Result<Read, String>)>,
}

/// Opens `dir` (see [`Folder::open`]).
pub fn open(dir: &Path) -> Result<Box<dyn Source>, ImportError> {
    let folder = Folder::open(dir)?;
    let read = folder
        .runs
        .into_iter()
        .map(|d| {
            let read = read_run(&d);
            (d, read)
        })
        .collect();
    Ok(Box::new(WandbSource { read }))
}

impl Source for WandbSource {
    fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError> {
        Ok(self
            .read
            .iter()
            .enumerate()
            .map(|(index, (dir, r))| match r {
                Ok(read) => SourceRun {
                    origin: read.run.origin.clone(),
                    label: format!("W&B run `{}`", read.run.origin.trim_start_matches("wandb:")),
                    ended: read.run.end.is_some(),
                    index,
                },
                Err(_) => SourceRun {
                    origin: String::new(),
                    label: format!("W&B folder {}", dir.display()),
                    ended: true,
                    index,
                },
            })
            .collect())
    }

    fn read(&mut self, run: &SourceRun, _scratch: &Path) -> Result<Read, String> {
        match self.read.get_mut(run.index) {
            Some((_, r)) => std::mem::replace(r, Err("read twice".into())),
            None => Err(format!("no run at {}", run.index)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Item, Record};

    fn item(key: &str, json: &str) -> Item {
        Item {
            key: key.into(),
            nested_key: vec![],
            value_json: json.into(),
        }
    }

    fn encode(r: RecordType) -> Vec<u8> {
        Record {
            num: 0,
            record_type: Some(r),
        }
        .encode_to_vec()
    }

    /// A run folder with a `.wandb` file of `records`.
    fn folder(records: &[Vec<u8>]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("offline-run-20260101_000000-abc123");
        std::fs::create_dir_all(run.join("files")).unwrap();
        std::fs::write(
            run.join("run-abc123.wandb"),
            datastore::tests::encode(records),
        )
        .unwrap();
        std::fs::write(run.join("files").join("model.txt"), "weights").unwrap();
        std::fs::write(run.join("files").join("wandb-summary.json"), "{}").unwrap();
        dir
    }

    fn records(exit: Option<i32>) -> Vec<Vec<u8>> {
        let mut out = vec![
            encode(RecordType::Run(Box::new(proto::RunRecord {
                run_id: "abc123".into(),
                project: "proj".into(),
                display_name: "brisk-1".into(),
                tags: vec!["baseline".into()],
                start_time: Some(proto::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 5,
                }),
                config: Some(proto::ConfigRecord {
                    update: vec![
                        item("lr", r#"{"value": 0.1, "desc": null}"#),
                        item("opt", r#"{"name": "adam", "betas": [0.9, 0.99]}"#),
                        item("_wandb", r#"{"cli_version": "0.31.0"}"#),
                    ],
                    remove: vec![],
                }),
                ..proto::RunRecord::default()
            }))),
            encode(RecordType::Config(proto::ConfigRecord {
                update: vec![item("epochs", "3")],
                remove: vec![],
            })),
            encode(RecordType::Environment(proto::EnvironmentRecord {
                python: "CPython 3.11.7".into(),
                program: "/home/ada/train.py".into(),
                host: "gpu1".into(),
                args: vec!["--lr".into(), "0.1".into()],
                ..proto::EnvironmentRecord::default()
            })),
        ];
        for step in 0..3 {
            out.push(encode(RecordType::History(proto::HistoryRecord {
                item: vec![
                    item("loss", &format!("{}", 1.0 / f64::from(step + 1))),
                    item("img", r#"{"_type": "image-file", "path": "media/x.png"}"#),
                    Item {
                        key: String::new(),
                        nested_key: vec!["table".into(), "_type".into()],
                        value_json: r#""table-file""#.into(),
                    },
                    Item {
                        key: String::new(),
                        nested_key: vec!["table".into(), "nrows".into()],
                        value_json: "1".into(),
                    },
                    item("_step", &step.to_string()),
                    item("_timestamp", &format!("{}.5", 1_700_000_001 + step)),
                    item("_runtime", "1.0"),
                ],
                step: None,
            })));
        }
        if let Some(code) = exit {
            out.push(encode(RecordType::Exit(proto::RunExitRecord {
                exit_code: code,
                runtime: 10,
            })));
        }
        out
    }

    #[test]
    fn a_run_maps_config_history_exit_and_files() {
        let dir = folder(&records(Some(1)));
        let mut source = open(dir.path()).unwrap();
        let runs = source.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].origin, "wandb:proj/abc123");
        let read = source.read(&runs[0], dir.path()).unwrap();
        let r = read.run;
        assert_eq!(r.experiment, "proj");
        assert_eq!(r.start_nanos, 1_700_000_000_000_000_005);
        let end = r.end.unwrap();
        assert_eq!(end.status, Status::Failed);
        assert_eq!(end.time_nanos, 1_700_000_010_000_000_005);
        assert_eq!(
            r.params,
            vec![
                ("lr".into(), Value::Float(0.1)),
                (
                    "opt.betas".into(),
                    Value::List(vec![Value::Float(0.9), Value::Float(0.99)])
                ),
                ("opt.name".into(), Value::Str("adam".into())),
                ("epochs".into(), Value::Int(3)),
            ]
        );
        assert_eq!(r.metrics.len(), 1);
        let loss = &r.metrics[0];
        assert_eq!(loss.name, "loss");
        assert_eq!(
            loss.points.iter().map(|p| p.step).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(loss.points[1].time_nanos, 1_700_000_002_500_000_000);
        assert_eq!(
            read.left_out,
            vec![("non-numeric history values (media, tables, text)".into(), 6)]
        );
        assert_eq!(
            r.attrs,
            vec![
                ("source".into(), Value::Str("/home/ada/train.py".into())),
                ("python_version".into(), Value::Str("3.11.7".into())),
                ("host".into(), Value::Str("gpu1".into())),
                (
                    "argv".into(),
                    Value::List(vec![Value::Str("--lr".into()), Value::Str("0.1".into())])
                ),
            ]
        );
        assert!(r.tags.contains(&("baseline".into(), String::new())));
        assert!(r.tags.contains(&("wandb.name".into(), "brisk-1".into())));
        assert_eq!(
            r.artifacts
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            vec!["model.txt"]
        );
    }

    #[test]
    fn a_run_without_an_exit_record_has_no_end() {
        let dir = folder(&records(None));
        let mut source = open(dir.path()).unwrap();
        let runs = source.runs().unwrap();
        assert!(!runs[0].ended);
        assert!(source.read(&runs[0], dir.path()).unwrap().run.end.is_none());
    }

    #[test]
    fn a_damaged_file_fails_its_run_with_the_reason() {
        let dir = folder(&records(Some(0)));
        let file = dir
            .path()
            .join("offline-run-20260101_000000-abc123/run-abc123.wandb");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        let mut source = open(dir.path()).unwrap();
        let runs = source.runs().unwrap();
        let err = source.read(&runs[0], dir.path()).unwrap_err();
        assert!(err.contains("CRC"), "{err}");
        assert!(err.contains("nothing of this run was imported"), "{err}");
    }

    #[test]
    fn a_folder_without_runs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("is not a W&B folder"), "{err}");
    }
}
