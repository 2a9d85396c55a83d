//! MLflow's runs: from its SQLite database (`sqlite:///path/mlflow.db`), its
//! file store (an `mlruns` folder) or a tracking server (`http://host:port`).
//!
//! Each store is read into `MlRun`s, which `to_imported` maps onto Lab's
//! run the same way whatever the store (see `docs/import.md`):
//!
//! - the experiment's name is the run's experiment;
//! - `FINISHED` is `finished`, `FAILED` is `failed`, `KILLED` is
//!   `interrupted`; `RUNNING` and `SCHEDULED` runs have not ended, and are
//!   imported without an end (Lab lists them as `crashed`) and imported again
//!   once MLflow has ended them;
//! - parameters (text in MLflow) become numbers or booleans when they spell
//!   one, else stay text;
//! - the system tags Lab has a fact for become attributes
//!   (`mlflow.source.name` → `source`, `mlflow.user` → `user`,
//!   `mlflow.source.git.commit` → `git_commit`, `mlflow.source.git.branch` →
//!   `git_branch`); every other tag stays a tag, `mlflow.*` ones included;
//! - every metric point with its step and time (steps below zero are left
//!   out and counted);
//! - the artifacts, when they are on a local path (or on the tracking
//!   server): each file or folder at the top of the run's artifact folder is
//!   one Lab artifact of the same name.
//!
//! Deleted experiments and runs are left out.

mod files;
mod rest;
mod sqlite;

use std::path::{Path, PathBuf};

use lab_sdk::import::{
    ImportedEnd, ImportedMetric, ImportedPoint, ImportedRun, artifact_name, valid_key,
};
use lab_types::{Status, Value, fields::attr};

use crate::{ImportError, LeftOut, Read, Source, SourceRun, text_to_value};

/// One MLflow run, as any of its stores holds it.
#[derive(Clone, Debug, Default)]
pub(crate) struct MlRun {
    pub experiment_id: String,
    pub experiment: String,
    pub run_id: String,
    pub run_name: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED`, `KILLED`.
    pub status: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub user: String,
    pub artifact_uri: String,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// Metric name → its points.
    pub metrics: Vec<(String, Vec<Point>)>,
}

/// A metric point: step, value, timestamp in milliseconds.
pub(crate) type Point = (i64, f64, i64);

impl MlRun {
    pub(crate) fn origin(&self) -> String {
        format!("mlflow:{}/{}", self.experiment_id, self.run_id)
    }

    pub(crate) fn ended(&self) -> bool {
        !matches!(self.status.as_str(), "RUNNING" | "SCHEDULED")
    }

    pub(crate) fn label(&self) -> String {
        if self.run_name.is_empty() {
            format!("run `{}` of experiment `{}`", self.run_id, self.experiment)
        } else {
            format!(
                "run `{}` ({}) of experiment `{}`",
                self.run_name, self.run_id, self.experiment
            )
        }
    }
}

/// The tag that holds a run's name.
const RUN_NAME_TAG: &str = "mlflow.runName";

/// The MLflow tags that are facts Lab records as attributes.
const TAG_ATTRS: &[(&str, &str)] = &[
    ("mlflow.source.name", attr::SOURCE),
    ("mlflow.user", attr::USER),
    ("mlflow.source.git.commit", attr::GIT_COMMIT),
    ("mlflow.source.git.branch", attr::GIT_BRANCH),
];

fn nanos(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

/// The local folder an artifact URI names, if it names one.
pub(crate) fn local_path(uri: &str) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        // `file:///abs/path`, or `file:/abs/path` without an authority.
        return Some(PathBuf::from(rest));
    }
    if let Some(rest) = uri.strip_prefix("file:") {
        return Some(PathBuf::from(rest));
    }
    if uri.starts_with('/') {
        return Some(PathBuf::from(uri));
    }
    None
}

/// The files and folders at the top of `dir`, as artifacts.
pub(crate) fn folder_artifacts(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list the artifacts: {e}: {}", dir.display())),
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| (artifact_name(&e.file_name().to_string_lossy()), e.path()))
        .collect();
    found.sort();
    Ok(found)
}

/// A run read from a store on this machine, with its artifacts when they
/// are here too: in `own` (the run's folder in a store that was moved),
/// else where its artifact URI points. Artifacts elsewhere are left out and
/// said.
pub(crate) fn with_local_artifacts(ml: MlRun, own: Option<&Path>) -> Result<Read, String> {
    let dir = own
        .filter(|p| p.is_dir())
        .map(Path::to_path_buf)
        .or_else(|| local_path(&ml.artifact_uri));
    let mut left = Vec::new();
    let artifacts = if let Some(dir) = dir {
        folder_artifacts(&dir)?
    } else {
        if !ml.artifact_uri.is_empty() {
            left.push((
                "artifact folders not on a local path (import from the tracking server to get them)".to_owned(),
                1,
            ));
        }
        Vec::new()
    };
    let mut read = to_imported(ml, artifacts);
    read.left_out.extend(left);
    Ok(read)
}

/// Maps an MLflow run onto Lab's; `artifacts` are the files to copy.
pub(crate) fn to_imported(run: MlRun, artifacts: Vec<(String, PathBuf)>) -> Read {
    let mut left = LeftOut::default();
    let start_ms = run.start_ms.unwrap_or_else(|| {
        run.metrics
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.2))
            .min()
            .unwrap_or(0)
    });
    let mut attrs: Vec<(String, Value)> = Vec::new();
    let mut tags = Vec::new();
    // The run's name is a column of its own in newer stores, and the tag
    // `mlflow.runName` in older ones: the tag either way.
    let mut source_tags = run.tags;
    if !run.run_name.is_empty() && !source_tags.iter().any(|(k, _)| k == RUN_NAME_TAG) {
        source_tags.push((RUN_NAME_TAG.to_owned(), run.run_name.clone()));
    }
    for (key, value) in source_tags {
        if let Some((_, name)) = TAG_ATTRS.iter().find(|(k, _)| *k == key) {
            attrs.push(((*name).to_owned(), Value::Str(value)));
        } else {
            tags.push((key_or_renamed(key, &mut left), value));
        }
    }
    if !run.user.is_empty() && !attrs.iter().any(|(k, _)| k == attr::USER) {
        attrs.push((attr::USER.to_owned(), Value::Str(run.user.clone())));
    }
    let params = run
        .params
        .into_iter()
        .map(|(k, v)| (key_or_renamed(k, &mut left), text_to_value(&v)))
        .collect();
    let mut last_ms = start_ms;
    let metrics = run
        .metrics
        .into_iter()
        .map(|(name, points)| {
            let before = points.len();
            let points: Vec<ImportedPoint> = points
                .into_iter()
                .filter(|(step, _, _)| *step >= 0)
                .map(|(step, value, ms)| {
                    last_ms = last_ms.max(ms);
                    ImportedPoint {
                        step,
                        value,
                        time_nanos: nanos(ms),
                    }
                })
                .collect();
            left.add_n(
                "metric points with a negative step",
                (before - points.len()) as u64,
            );
            ImportedMetric {
                name: key_or_renamed(name, &mut left),
                points,
            }
        })
        .collect();
    let status = match run.status.as_str() {
        "FINISHED" => Some(Status::Finished),
        "FAILED" => Some(Status::Failed),
        "KILLED" => Some(Status::Interrupted),
        _ => None,
    };
    let end = status.map(|status| ImportedEnd {
        time_nanos: nanos(run.end_ms.unwrap_or(last_ms)),
        status,
        error: None,
    });
    let experiment = valid_key(&run.experiment).unwrap_or(run.experiment);
    Read {
        run: ImportedRun {
            origin: format!("mlflow:{}/{}", run.experiment_id, run.run_id),
            experiment,
            start_nanos: nanos(start_ms),
            end,
            attrs,
            params,
            tags,
            metrics,
            artifacts,
        },
        left_out: left.into_vec(),
        warnings: Vec::new(),
    }
}

/// `key`, or a valid key made of it (counted).
pub(crate) fn key_or_renamed(key: String, left: &mut LeftOut) -> String {
    match valid_key(&key) {
        None => key,
        Some(k) => {
            left.add("names Lab refuses, renamed");
            k
        }
    }
}

/// The store a `lab import mlflow` argument names: `sqlite:///path`
/// (relative to the current folder; `sqlite:////path` is absolute), a
/// tracking server's `http://` or `https://` URL, or an `mlruns` folder
/// (a path, or `file:///path`).
pub fn open(uri: &str, experiment: Option<&str>) -> Result<Box<dyn Source>, ImportError> {
    let only = experiment.map(str::to_owned);
    // As SQLAlchemy (and so MLflow) reads it: `sqlite:///mlflow.db` is
    // relative to the current folder, `sqlite:////abs/mlflow.db` absolute.
    if let Some(path) = uri.strip_prefix("sqlite:///") {
        return Ok(Box::new(sqlite::SqliteStore::open(
            uri,
            Path::new(path),
            only,
        )?));
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return Ok(Box::new(rest::Server::open(uri, only)?));
    }
    if let Some(scheme) = uri.split_once("://").map(|(s, _)| s)
        && scheme != "file"
    {
        let hint = if scheme == "sqlite" {
            "a SQLite database is `sqlite:///` and its path: `sqlite:///mlflow.db` in the current folder, `sqlite:////home/me/mlflow.db` anywhere".to_owned()
        } else {
            format!(
                "the `{scheme}://` database backends are read through a tracking server: start `mlflow server --backend-store-uri {uri}` and import from its URL"
            )
        };
        return Err(ImportError::source(format!(
            "`{uri}` is not an MLflow store Lab can read: expected `sqlite:///path/to/mlflow.db`, `http://host:port` or an `mlruns` folder\n\nhint: {hint}"
        )));
    }
    let path = local_path(uri).unwrap_or_else(|| PathBuf::from(uri));
    Ok(Box::new(files::FileStore::open(&path, only)?))
}

/// A listing of [`MlRun`]s read up front, for the stores that read runs
/// whole while listing them.
pub(crate) fn listing(runs: &[MlRun]) -> Vec<SourceRun> {
    runs.iter()
        .enumerate()
        .map(|(index, r)| SourceRun {
            origin: r.origin(),
            label: r.label(),
            ended: r.ended(),
            index,
        })
        .collect()
}

/// The experiments `only` leaves, or an error naming the ones there are.
pub(crate) fn pick_experiments(
    all: Vec<(String, String)>,
    only: Option<&str>,
    place: &str,
) -> Result<Vec<(String, String)>, ImportError> {
    let Some(name) = only else {
        return Ok(all);
    };
    let names: Vec<String> = all.iter().map(|(_, n)| format!("`{n}`")).collect();
    let picked: Vec<(String, String)> = all.into_iter().filter(|(_, n)| n == name).collect();
    if picked.is_empty() {
        return Err(ImportError::source(format!(
            "`--experiment` names no experiment of the MLflow store: got `{name}`, the store has {}: {place}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_system_tags_and_steps_map_as_documented() {
        let run = MlRun {
            experiment_id: "1".into(),
            experiment: "exp".into(),
            run_id: "abc".into(),
            status: "KILLED".into(),
            start_ms: Some(1000),
            end_ms: Some(5000),
            params: vec![("lr".into(), "0.1".into()), ("opt".into(), "adam".into())],
            tags: vec![
                ("mlflow.user".into(), "ada".into()),
                ("mlflow.runName".into(), "r1".into()),
                ("team".into(), "x".into()),
            ],
            metrics: vec![("loss".into(), vec![(0, 1.0, 1500), (-1, 2.0, 1600)])],
            ..MlRun::default()
        };
        let read = to_imported(run, vec![]);
        let r = read.run;
        assert_eq!(r.origin, "mlflow:1/abc");
        assert_eq!(r.start_nanos, 1_000_000_000);
        let end = r.end.unwrap();
        assert_eq!(end.status, Status::Interrupted);
        assert_eq!(end.time_nanos, 5_000_000_000);
        assert_eq!(r.attrs, vec![("user".into(), Value::Str("ada".into()))]);
        assert_eq!(r.tags.len(), 2);
        assert_eq!(r.params[0].1, Value::Float(0.1));
        assert_eq!(r.metrics[0].points.len(), 1);
        assert_eq!(
            read.left_out,
            vec![("metric points with a negative step".into(), 1)]
        );
    }

    #[test]
    fn a_running_run_has_no_end() {
        let run = MlRun {
            status: "RUNNING".into(),
            ..MlRun::default()
        };
        assert!(!run.ended());
        assert!(to_imported(run, vec![]).run.end.is_none());
    }

    #[test]
    fn artifact_uris() {
        assert_eq!(local_path("file:///a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(local_path("/a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(local_path("s3://bucket/x"), None);
        assert_eq!(local_path("mlflow-artifacts:/1/x"), None);
    }
}
