//! Writing a run recorded elsewhere (by MLflow, W&B, TensorBoard) into a
//! project, whole or not at all.
//!
//! An importer describes the run in memory ([`ImportedRun`]) and calls
//! [`write_imported`]. The run gets a folder of its own like any run, but its
//! journal is written under a temporary name (`.journal.lab.importing`) and
//! renamed to `journal.lab` only once every record and every artifact is in
//! place: a reader never sees a run folder without a journal, so until the
//! rename the run does not exist for Lab, and after it, it exists whole. A
//! failure on the way removes the folder; a process killed on the way leaves a
//! folder without a journal, which `lab gc` removes.
//!
//! Records keep the source's times: the Start record its start time, each
//! metric point its own time, the End record its end time. Parameters,
//! attributes and tags are written at the start time. The run's id is claimed
//! at the time of the import, like any run's (so an imported run never takes
//! the short id of a run deleted earlier); its start time is the source's.

use std::path::PathBuf;

use lab_journal::JournalWriter;
use lab_store::{Project, RunPaths, Store};
use lab_types::{ErrorInfo, MetricPoint, Record, Status, Value, now_nanos};

use crate::validate::{check_key, check_name, check_value};
use crate::{SdkError, artifacts};

/// The attribute that names where an imported run came from, e.g.
/// `mlflow:1/4f0c…` or `wandb:entity/project/abc123`. Importers look for it
/// to skip runs already imported.
pub const IMPORTED_FROM: &str = "imported_from";

/// One point of an imported metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImportedPoint {
    /// The step; must not be negative.
    pub step: i64,
    /// The value.
    pub value: f64,
    /// When it was logged, nanoseconds since the epoch.
    pub time_nanos: i64,
}

/// A metric's full history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportedMetric {
    /// Its name, which must pass [`check_key`] (see [`valid_key`]).
    pub name: String,
    /// Its points, in the source's order.
    pub points: Vec<ImportedPoint>,
}

/// How an imported run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedEnd {
    /// When.
    pub time_nanos: i64,
    /// `Finished`, `Failed`, `Interrupted` or `Crashed`.
    pub status: Status,
    /// What the source says went wrong, if anything.
    pub error: Option<ErrorInfo>,
}

/// Everything an importer read about one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportedRun {
    /// Where it came from, recorded as the [`IMPORTED_FROM`] attribute.
    pub origin: String,
    /// The experiment, which must pass [`check_key`].
    pub experiment: String,
    /// When it started, nanoseconds since the epoch.
    pub start_nanos: i64,
    /// How it ended; `None` when the source has not ended it (it is still
    /// running, or died without saying so): Lab then lists it as `crashed`,
    /// its verdict for a run whose writer is gone without an End record.
    pub end: Option<ImportedEnd>,
    /// Facts about the run (`source`, `user`, `git_commit`, ...).
    pub attrs: Vec<(String, Value)>,
    /// Parameters.
    pub params: Vec<(String, Value)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Metric histories.
    pub metrics: Vec<ImportedMetric>,
    /// Files or folders to copy into the run, by artifact name (which must
    /// pass [`check_name`]).
    pub artifacts: Vec<(String, PathBuf)>,
}

/// What [`write_imported`] made.
#[derive(Debug)]
pub struct Written {
    /// The new run's short id.
    pub short_id: String,
    /// Points written.
    pub points: u64,
    /// What copying the artifacts left out (a dangling link, a link loop).
    pub warnings: Vec<String>,
}

/// The temporary name of an imported run's journal until the run is whole.
pub const IMPORTING_JOURNAL: &str = ".journal.lab.importing";

/// Writes `run` into `project` as a new, ended run, whole or not at all, and
/// indexes it. Every name and value is checked before anything is written.
pub fn write_imported(project: &Project, run: &ImportedRun) -> Result<Written, SdkError> {
    check(run)?;
    let (id, paths) = project.claim_run(now_nanos())?;
    let mut warnings = Vec::new();
    let written = fill(project, &paths, id, run, &mut warnings).and_then(|points| {
        fs_err::rename(paths.dir.join(IMPORTING_JOURNAL), &paths.journal)?;
        Ok(points)
    });
    let points = match written {
        Ok(points) => points,
        Err(e) => {
            // Nothing of it was ever visible: the journal was not in place.
            let _ = fs_err::remove_dir_all(&paths.dir);
            return Err(e);
        }
    };
    let short_id = id.short();
    Store::open(project.clone())?.fold_run(&short_id)?;
    Ok(Written {
        short_id,
        points,
        warnings,
    })
}

fn check(run: &ImportedRun) -> Result<(), SdkError> {
    check_key("experiment", &run.experiment)?;
    for (key, value) in run.attrs.iter().chain(&run.params) {
        check_key("key", key)?;
        check_value("value", value)?;
    }
    for (key, _) in &run.tags {
        check_key("key", key)?;
    }
    for metric in &run.metrics {
        check_key("key", &metric.name)?;
        if let Some(p) = metric.points.iter().find(|p| p.step < 0) {
            return Err(SdkError::InvalidArgument {
                argument: "step",
                value: p.step.to_string(),
                problem: format!("must be a non-negative integer (metric `{}`)", metric.name),
            });
        }
    }
    for (name, source) in &run.artifacts {
        check_name("name", name)?;
        if !source.exists() {
            return Err(SdkError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("artifact `{name}`: no such file: {}", source.display()),
            )));
        }
    }
    Ok(())
}

/// Writes the journal under its temporary name and copies the artifacts;
/// returns how many points it wrote.
fn fill(
    project: &Project,
    paths: &RunPaths,
    id: lab_types::RunId,
    run: &ImportedRun,
    warnings: &mut Vec<String>,
) -> Result<u64, SdkError> {
    let start = run.start_nanos;
    let mut journal = JournalWriter::create(&paths.dir.join(IMPORTING_JOURNAL))?;
    journal.append(&Record::Start {
        run: id,
        time_nanos: start,
        experiment: run.experiment.clone(),
    })?;
    let origin = (IMPORTED_FROM.to_owned(), Value::Str(run.origin.clone()));
    for (key, value) in std::iter::once(&origin).chain(&run.attrs) {
        journal.append(&Record::Attr {
            time_nanos: start,
            key: key.clone(),
            value: value.clone(),
        })?;
    }
    for (key, value) in &run.params {
        journal.append(&Record::Param {
            time_nanos: start,
            key: key.clone(),
            value: value.clone(),
        })?;
    }
    for (key, value) in &run.tags {
        journal.append(&Record::Tag {
            time_nanos: start,
            key: key.clone(),
            value: value.clone(),
        })?;
    }
    let points = write_metrics(&mut journal, &run.metrics)?;
    for (name, source) in &run.artifacts {
        let mut notes = Vec::new();
        let stored =
            artifacts::copy_artifact(project, paths, name, source, &mut notes).map_err(|e| {
                SdkError::Io(std::io::Error::other(format!(
                    "artifact `{name}` was not copied: {e}"
                )))
            })?;
        warnings.extend(notes.iter().map(|n| format!("artifact `{name}`: {n}")));
        journal.append(&Record::Artifact {
            time_nanos: start,
            name: name.clone(),
            source: source.display().to_string(),
        })?;
        journal.append(&Record::ArtifactStored {
            time_nanos: start,
            name: name.clone(),
            path: stored.path,
            files: stored.files,
            bytes: stored.bytes,
        })?;
    }
    if let Some(end) = &run.end {
        journal.append_final(&Record::End {
            time_nanos: end.time_nanos,
            status: end.status,
            error: end.error.clone().map(crate::cut_error),
        })?;
        journal.close()?;
    } else {
        // No End and no Close: the journal of a writer gone without ending
        // its run, which the fold settles as `crashed` (a closed journal
        // without an End record would be `damaged`). The fold also gives
        // back the space reserved after the last frame.
        journal.sync()?;
        drop(journal);
    }
    Ok(points)
}

/// Declares each metric and writes every point in time order across
/// metrics (a metric's own order kept for points of the same time), points
/// of the same time in one record.
fn write_metrics(journal: &mut JournalWriter, metrics: &[ImportedMetric]) -> Result<u64, SdkError> {
    let mut all: Vec<(i64, MetricPoint)> = Vec::new();
    for (key, metric) in metrics.iter().enumerate() {
        let key = key as u32;
        journal.append(&Record::MetricKey {
            key,
            name: metric.name.clone(),
        })?;
        all.extend(metric.points.iter().map(|p| {
            (
                p.time_nanos,
                MetricPoint {
                    key,
                    step: p.step,
                    value: p.value,
                },
            )
        }));
    }
    // Stable: a metric's points of one time keep their order.
    all.sort_by_key(|(t, _)| *t);
    let mut points = Vec::new();
    let mut at = 0;
    while at < all.len() {
        let time_nanos = all[at].0;
        let end = at
            + all[at..]
                .iter()
                .take_while(|(t, _)| *t == time_nanos)
                .count();
        if end - at == 1 {
            journal.append_metric(time_nanos, &all[at].1)?;
        } else {
            points.clear();
            points.extend(all[at..end].iter().map(|(_, p)| *p));
            let record = Record::Metrics {
                time_nanos,
                points: std::mem::take(&mut points),
            };
            journal.append(&record)?;
            if let Record::Metrics { points: p, .. } = record {
                points = p;
            }
        }
        at = end;
    }
    Ok(all.len() as u64)
}

/// `name` made into a key [`check_key`] accepts, when it is not one:
/// control and invisible formatting characters become `_`, a blank name
/// becomes `_`, and a name longer than the limit is cut (at a character
/// boundary). Returns `None` when `name` is fine as it is.
#[must_use]
pub fn valid_key(name: &str) -> Option<String> {
    if check_key("key", name).is_ok() {
        return None;
    }
    let mut key: String = name
        .chars()
        .map(|c| {
            if c.is_control() || crate::is_invisible_format(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    if key.len() > crate::MAX_KEY_LEN {
        key.truncate(key.floor_char_boundary(crate::MAX_KEY_LEN));
    }
    if check_key("key", &key).is_err() {
        key.push('_');
    }
    Some(key)
}

/// The artifact name a file or folder called `file_name` takes: the name
/// itself when [`check_name`] accepts it, else one with `/`, `\` and `..`
/// replaced and a leading `.` dropped (`.hidden` becomes `hidden`).
#[must_use]
pub fn artifact_name(file_name: &str) -> String {
    if check_name("name", file_name).is_ok() {
        return file_name.to_owned();
    }
    let mut name = file_name.replace(['/', '\\'], "_").replace("..", "_");
    name = name.trim_start_matches('.').to_owned();
    if let Some(key) = valid_key(&name) {
        name = key;
    }
    if check_name("name", &name).is_err() {
        name = format!("artifact_{}", name.len());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        (dir, project)
    }

    fn sample(origin: &str) -> ImportedRun {
        ImportedRun {
            origin: origin.into(),
            experiment: "exp".into(),
            start_nanos: 1_600_000_000_000_000_000,
            end: Some(ImportedEnd {
                time_nanos: 1_600_000_010_000_000_000,
                status: Status::Failed,
                error: None,
            }),
            attrs: vec![("user".into(), Value::Str("ada".into()))],
            params: vec![("lr".into(), Value::Float(0.1))],
            tags: vec![("team".into(), "x".into())],
            metrics: vec![ImportedMetric {
                name: "loss".into(),
                points: (0..5)
                    .map(|i| ImportedPoint {
                        step: i,
                        value: 1.0 / (i as f64 + 1.0),
                        time_nanos: 1_600_000_000_000_000_000 + i * 1_000_000,
                    })
                    .collect(),
            }],
            artifacts: vec![],
        }
    }

    #[test]
    fn an_imported_run_keeps_its_times_status_and_values() {
        let (_d, project) = project();
        let written = write_imported(&project, &sample("test:1")).unwrap();
        assert_eq!(written.points, 5);
        let store = Store::open(project.clone()).unwrap();
        let runs = store.runs(None).unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.short_id, written.short_id);
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.start_nanos, 1_600_000_000_000_000_000);
        assert_eq!(r.end_nanos, Some(1_600_000_010_000_000_000));
        assert_eq!(r.attr(IMPORTED_FROM), Some(&Value::Str("test:1".into())));
        assert_eq!(r.params, vec![("lr".into(), Value::Float(0.1))]);
        assert_eq!(r.metrics[0].count, 5);
        assert!(
            !project
                .run_paths(&r.short_id)
                .dir
                .join(IMPORTING_JOURNAL)
                .exists()
        );
    }

    #[test]
    fn a_run_the_source_has_not_ended_is_listed_as_crashed() {
        let (_d, project) = project();
        let mut run = sample("test:2");
        run.end = None;
        write_imported(&project, &run).unwrap();
        let store = Store::open(project).unwrap();
        assert_eq!(store.runs(None).unwrap()[0].status, Status::Crashed);
    }

    #[test]
    fn a_run_cut_short_before_its_rename_is_shown_nowhere() {
        let (_d, project) = project();
        // What a `kill -9` between a whole journal and its rename leaves.
        let (id, paths) = project.claim_run(now_nanos()).unwrap();
        let points = fill(&project, &paths, id, &sample("test:5"), &mut Vec::new()).unwrap();
        assert_eq!(points, 5);
        let mut store = Store::open(project.clone()).unwrap();
        store.refresh().unwrap();
        assert!(store.runs(None).unwrap().is_empty());
        // The next import of it is whole, and the only run.
        write_imported(&project, &sample("test:5")).unwrap();
        store.refresh().unwrap();
        assert_eq!(store.runs(None).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_run_leaves_nothing_behind() {
        let (_d, project) = project();
        let mut run = sample("test:3");
        run.artifacts = vec![("model".into(), "/nonexistent/model.bin".into())];
        assert!(write_imported(&project, &run).is_err());
        let mut run = sample("test:4");
        run.metrics[0].points[2].step = -1;
        assert!(write_imported(&project, &run).is_err());
        let entries: Vec<_> = std::fs::read_dir(project.runs_dir())
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(entries.is_empty(), "{entries:?}");
    }

    #[test]
    fn keys_and_names_are_made_valid() {
        assert_eq!(valid_key("loss"), None);
        assert_eq!(valid_key("a\tb").as_deref(), Some("a_b"));
        assert_eq!(valid_key("   ").as_deref(), Some("   _"));
        assert_eq!(valid_key(&"x".repeat(300)).map(|k| k.len()), Some(250));
        assert_eq!(artifact_name("model.pkl"), "model.pkl");
        assert_eq!(artifact_name(".hidden"), "hidden");
        assert_eq!(artifact_name("a/../b"), "a___b");
    }
}
