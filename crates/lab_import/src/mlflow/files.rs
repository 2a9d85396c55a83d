//! MLflow's file store, an `mlruns` folder:
//!
//! ```text
//! mlruns/<experiment id>/meta.yaml            name, lifecycle_stage, ...
//! mlruns/<experiment id>/<run id>/meta.yaml   status, start_time, end_time, artifact_uri, ...
//!                         params/<key>        the value
//!                         tags/<key>          the value
//!                         metrics/<key>       a line per point: `timestamp value step`
//!                         artifacts/          the artifacts (or where artifact_uri says)
//! ```
//!
//! Keys holding `/` are subfolders. `.trash` (deleted experiments) and
//! `models` (the model registry) are not experiments.

use std::path::{Path, PathBuf};

use super::{MlRun, listing, pick_experiments, with_local_artifacts};
use crate::{ImportError, Read, Source, SourceRun};

pub(crate) struct FileStore {
    root: PathBuf,
    only: Option<String>,
    runs: Vec<(MlRun, PathBuf)>,
}

impl FileStore {
    pub(crate) fn open(root: &Path, only: Option<String>) -> Result<Self, ImportError> {
        let bad = |why: &str| {
            ImportError::source(format!(
                "`{}` is not an MLflow store Lab can read: {why}: {}\n\nhint: give an `mlruns` folder, `sqlite:///path/to/mlflow.db` or a tracking server's `http://host:port`",
                root.display(),
                root.display()
            ))
        };
        if !root.is_dir() {
            return Err(bad("there is no such folder"));
        }
        let has_experiment = std::fs::read_dir(root)
            .map_err(|e| bad(&e.to_string()))?
            .flatten()
            .any(|e| e.path().join("meta.yaml").is_file());
        if !has_experiment {
            return Err(bad(
                "it holds no experiment folder (a folder with a `meta.yaml`)",
            ));
        }
        Ok(Self {
            root: root.to_owned(),
            only,
            runs: Vec::new(),
        })
    }
}

/// The top-level `key: value` scalars of a `meta.yaml` as MLflow writes them
/// (with `yaml.safe_dump`): plain, single-quoted or double-quoted, a long one
/// continued on indented lines.
pub(crate) fn meta(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) || line.starts_with('-') {
            // The continuation of a long scalar (or an item of a list).
            if let Some((_, value)) = out.last_mut()
                && !line.trim_start().starts_with("- ")
            {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            out.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    for (_, value) in &mut out {
        *value = unquote(value);
    }
    out
}

fn unquote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        return value[1..value.len() - 1].replace("''", "'");
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        if let Ok(serde_json::Value::String(s)) = serde_json::from_str(value) {
            return s;
        }
        return value[1..value.len() - 1].to_owned();
    }
    if value == "null" || value == "~" {
        return String::new();
    }
    value.to_owned()
}

fn get<'a>(meta: &'a [(String, String)], key: &str) -> Option<&'a str> {
    meta.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn read_meta(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let path = dir.join("meta.yaml");
    std::fs::read_to_string(&path)
        .map(|t| meta(&t))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every file under `dir`, as (key with `/` between folders, path).
fn keyed_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), dir.to_owned())];
    while let Some((prefix, folder)) = todo.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot list {}: {e}", folder.display())),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push((key, entry.path()));
            } else {
                out.push((key, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn status_name(code: &str) -> String {
    match code {
        "1" => "RUNNING",
        "2" => "SCHEDULED",
        "3" => "FINISHED",
        "4" => "FAILED",
        "5" => "KILLED",
        other => other,
    }
    .to_owned()
}

fn read_run(run: &mut MlRun, dir: &Path) -> Result<(), String> {
    let text = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    for (key, path) in keyed_files(&dir.join("params"))? {
        run.params.push((key, text(&path)?));
    }
    for (key, path) in keyed_files(&dir.join("tags"))? {
        run.tags.push((key, text(&path)?));
    }
    for (key, path) in keyed_files(&dir.join("metrics"))? {
        let mut points = Vec::new();
        for (n, line) in text(&path)?.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed = match fields.as_slice() {
                [ts, value, step] => ts
                    .parse::<i64>()
                    .ok()
                    .zip(value.parse::<f64>().ok())
                    .zip(step.parse::<i64>().ok())
                    .map(|((ts, v), s)| (s, v, ts)),
                [ts, value] => ts
                    .parse::<i64>()
                    .ok()
                    .zip(value.parse::<f64>().ok())
                    .map(|(ts, v)| (0, v, ts)),
                [] => continue,
                _ => None,
            };
            points.push(parsed.ok_or_else(|| {
                format!(
                    "line {} of {} is not `timestamp value step`: `{line}`",
                    n + 1,
                    path.display()
                )
            })?);
        }
        run.metrics.push((key, points));
    }
    Ok(())
}

impl Source for FileStore {
    fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError> {
        let cannot = |e: String| ImportError::source(format!("cannot read the MLflow store: {e}"));
        let mut experiments = Vec::new();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .map_err(|e| cannot(format!("{e}: {}", self.root.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("meta.yaml").is_file())
            .collect();
        dirs.sort();
        for dir in &dirs {
            let meta = read_meta(dir).map_err(cannot)?;
            if get(&meta, "lifecycle_stage").is_some_and(|s| s != "active") {
                continue;
            }
            let id = get(&meta, "experiment_id").map_or_else(
                || {
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                },
                str::to_owned,
            );
            let name = get(&meta, "name").unwrap_or(&id).to_owned();
            experiments.push((id, name));
        }
        let picked = pick_experiments(
            experiments,
            self.only.as_deref(),
            &self.root.display().to_string(),
        )?;
        self.runs.clear();
        for (id, name) in picked {
            let exp_dir = self.root.join(&id);
            let mut run_dirs: Vec<PathBuf> = std::fs::read_dir(&exp_dir)
                .map_err(|e| cannot(format!("{e}: {}", exp_dir.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("meta.yaml").is_file())
                .collect();
            run_dirs.sort();
            for dir in run_dirs {
                let run_id = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let meta = match read_meta(&dir) {
                    Ok(m) => m,
                    Err(why) => {
                        // Listed, so that its reading fails with the reason.
                        self.runs.push((
                            MlRun {
                                experiment_id: id.clone(),
                                experiment: name.clone(),
                                run_id,
                                status: format!("unreadable: {why}"),
                                ..MlRun::default()
                            },
                            dir,
                        ));
                        continue;
                    }
                };
                if get(&meta, "lifecycle_stage").is_some_and(|s| s != "active") {
                    continue;
                }
                let int = |k: &str| get(&meta, k).and_then(|v| v.parse::<i64>().ok());
                self.runs.push((
                    MlRun {
                        experiment_id: id.clone(),
                        experiment: name.clone(),
                        run_id: get(&meta, "run_id").unwrap_or(&run_id).to_owned(),
                        run_name: get(&meta, "run_name").unwrap_or_default().to_owned(),
                        status: status_name(get(&meta, "status").unwrap_or_default()),
                        start_ms: int("start_time"),
                        end_ms: int("end_time"),
                        user: get(&meta, "user_id").unwrap_or_default().to_owned(),
                        artifact_uri: get(&meta, "artifact_uri").unwrap_or_default().to_owned(),
                        ..MlRun::default()
                    },
                    dir,
                ));
            }
        }
        let runs: Vec<MlRun> = self.runs.iter().map(|(r, _)| r.clone()).collect();
        Ok(listing(&runs))
    }

    fn read(&mut self, run: &SourceRun, _scratch: &Path) -> Result<Read, String> {
        let (mut ml, dir) = self
            .runs
            .get(run.index)
            .cloned()
            .ok_or_else(|| format!("no run at {}", run.index))?;
        if let Some(why) = ml.status.strip_prefix("unreadable: ") {
            return Err(why.to_owned());
        }
        read_run(&mut ml, &dir)?;
        // The artifact URI of a store that was moved points where it was:
        // the run's own `artifacts` folder is looked at first.
        let own = dir.join("artifacts");
        with_local_artifacts(ml, Some(&own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `mlruns` folder of one experiment and one run, as MLflow writes it.
    fn store() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let exp = dir.path().join("7");
        let run = exp.join("r1");
        for sub in ["params", "tags", "metrics/val", "artifacts"] {
            std::fs::create_dir_all(run.join(sub)).unwrap();
        }
        std::fs::write(
            exp.join("meta.yaml"),
            "experiment_id: '7'\nlifecycle_stage: active\nname: exp\n",
        )
        .unwrap();
        std::fs::write(
            run.join("meta.yaml"),
            "run_id: r1\nrun_name: first\nstatus: 4\nstart_time: 1000\nend_time: 2000\nlifecycle_stage: active\nartifact_uri: file:///nowhere\n",
        )
        .unwrap();
        std::fs::write(run.join("params/lr"), "0.1").unwrap();
        std::fs::write(run.join("tags/mlflow.user"), "ada").unwrap();
        std::fs::write(run.join("metrics/val/acc"), "1500 0.5 0\n1600 0.75 1\n").unwrap();
        std::fs::write(run.join("artifacts/notes.txt"), "hi").unwrap();
        dir
    }

    #[test]
    fn a_run_of_the_file_store_is_read_whole() {
        let dir = store();
        let mut source = FileStore::open(dir.path(), None).unwrap();
        let runs = source.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].origin, "mlflow:7/r1");
        let read = source.read(&runs[0], dir.path()).unwrap().run;
        assert_eq!(read.end.unwrap().status, lab_types::Status::Failed);
        assert_eq!(read.metrics[0].name, "val/acc");
        assert_eq!(read.metrics[0].points.len(), 2);
        assert_eq!(read.artifacts[0].0, "notes.txt");
        assert!(
            read.tags
                .contains(&("mlflow.runName".into(), "first".into()))
        );
    }

    #[test]
    fn a_bad_metric_line_fails_its_run_with_the_line() {
        let dir = store();
        let file = dir.path().join("7/r1/metrics/val/acc");
        std::fs::write(&file, "1500 0.5 0\n1600 zero 1\n").unwrap();
        let mut source = FileStore::open(dir.path(), None).unwrap();
        let runs = source.runs().unwrap();
        let err = source.read(&runs[0], dir.path()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "line 2 of {} is not `timestamp value step`: `1600 zero 1`",
                file.display()
            )
        );
    }

    #[test]
    fn a_deleted_run_and_an_unknown_experiment() {
        let dir = store();
        let meta = dir.path().join("7/r1/meta.yaml");
        let text = std::fs::read_to_string(&meta).unwrap();
        std::fs::write(&meta, text.replace("active", "deleted")).unwrap();
        let mut source = FileStore::open(dir.path(), None).unwrap();
        assert!(source.runs().unwrap().is_empty());
        let mut source = FileStore::open(dir.path(), Some("nope".into())).unwrap();
        let err = source.runs().unwrap_err().to_string();
        assert!(err.contains("got `nope`, the store has `exp`"), "{err}");
    }

    #[test]
    fn meta_yaml_scalars() {
        let text = "artifact_uri: file:///tmp/a/very/long/path\n  continued\nend_time: 1700000000123\nname: 'it''s'\nrun_name: \"q\\u00e9\"\ntags: []\nuser_id: null\n";
        let m = meta(text);
        assert_eq!(
            get(&m, "artifact_uri"),
            Some("file:///tmp/a/very/long/path continued")
        );
        assert_eq!(get(&m, "end_time"), Some("1700000000123"));
        assert_eq!(get(&m, "name"), Some("it's"));
        assert_eq!(get(&m, "run_name"), Some("qé"));
        assert_eq!(get(&m, "user_id"), None);
    }
}
