//! Writing a whole run at once, from what another tracker recorded: the part
//! of `lab import` that every source shares.
//!
//! [`write_run`] checks everything first, claims a run folder, writes the
//! journal under a temporary name inside it, closes it (synced to disk) and
//! only then renames it to `journal.lab`: until that rename the folder holds
//! no journal, and every reader passes it by, so a run appears whole or not
//! at all. A failure removes the folder; a crash leaves a folder with only a
//! `.journal.lab.import.<pid>.tmp` file, which no listing shows and `lab gc`
//! removes.

use lab_journal::JournalWriter;
use lab_store::Project;
use lab_types::{ErrorInfo, MetricPoint, Record, RunId, Status, Value};

use crate::SdkError;
use crate::tboard::Points;
use crate::validate::{check_key, check_value};

/// The tag naming the tool a run was imported from (`tensorboard`, ...).
pub const FORMAT_TAG: &str = "import.format";
/// The tag holding what a run was imported from (a path, a URI).
pub const SOURCE_TAG: &str = "import.source";
/// The tag holding a fingerprint of what was imported: importing the same
/// thing again is recognised by it.
pub const FINGERPRINT_TAG: &str = "import.fingerprint";

/// A finished run from elsewhere, to be written in one go.
#[derive(Clone, Debug)]
pub struct ImportedRun {
    pub experiment: String,
    pub start_nanos: i64,
    /// `None` for a run still running where it came from.
    pub end_nanos: Option<i64>,
    pub status: Status,
    pub error: Option<ErrorInfo>,
    pub attrs: Vec<(String, Value)>,
    pub params: Vec<(String, Value)>,
    pub tags: Vec<(String, String)>,
    /// Metric name to its points, `(step, time_nanos, value)`.
    pub metrics: Vec<(String, Points)>,
}

impl Default for ImportedRun {
    /// An empty finished run.
    fn default() -> Self {
        Self {
            experiment: String::new(),
            start_nanos: 0,
            end_nanos: None,
            status: Status::Finished,
            error: None,
            attrs: Vec::new(),
            params: Vec::new(),
            tags: Vec::new(),
            metrics: Vec::new(),
        }
    }
}

fn check(run: &ImportedRun) -> Result<(), SdkError> {
    check_key("experiment", &run.experiment)?;
    for (k, v) in run.attrs.iter().chain(&run.params) {
        check_key("key", k)?;
        check_value("value", v)?;
    }
    for (k, _) in &run.tags {
        check_key("key", k)?;
    }
    for (name, points) in &run.metrics {
        check_key("key", name)?;
        if let Some(&(step, ..)) = points.iter().find(|p| p.0 < 0) {
            return Err(SdkError::InvalidArgument {
                argument: "step",
                value: step.to_string(),
                problem: format!("of metric `{name}` must be a non-negative integer"),
            });
        }
    }
    if run.metrics.len() > u32::MAX as usize {
        return Err(SdkError::InvalidArgument {
            argument: "metrics",
            value: run.metrics.len().to_string(),
            problem: "must be fewer than 2^32 names".into(),
        });
    }
    Ok(())
}

/// Writes `run` into `project` as a complete run; returns its id. Nothing
/// of it is visible until it is whole (see the module docs).
pub fn write_run(project: &Project, run: &ImportedRun) -> Result<RunId, SdkError> {
    check(run)?;
    let (id, paths) = project.claim_run(run.start_nanos)?;
    let temp = paths
        .dir
        .join(format!(".journal.lab.import.{}.tmp", std::process::id()));
    let written = write_journal(&temp, id, run).and_then(|()| {
        fs_err::rename(&temp, &paths.journal)?;
        Ok(())
    });
    if let Err(e) = written {
        // Best effort: what is left has no journal, so no reader shows it.
        let _ = fs_err::remove_dir_all(&paths.dir);
        return Err(e);
    }
    Ok(id)
}

fn write_journal(path: &std::path::Path, id: RunId, run: &ImportedRun) -> Result<(), SdkError> {
    let mut j = JournalWriter::create(path)?;
    let t = run.start_nanos;
    j.append(&Record::Start {
        run: id,
        time_nanos: t,
        experiment: run.experiment.clone(),
    })?;
    for (key, value) in &run.attrs {
        j.append(&Record::Attr {
            time_nanos: t,
            key: key.clone(),
            value: value.clone(),
        })?;
    }
    for (key, value) in &run.params {
        j.append(&Record::Param {
            time_nanos: t,
            key: key.clone(),
            value: value.clone(),
        })?;
    }
    for (key, value) in &run.tags {
        j.append(&Record::Tag {
            time_nanos: t,
            key: key.clone(),
            value: value.clone(),
        })?;
    }
    for (key, (name, points)) in (0u32..).zip(&run.metrics) {
        j.append(&Record::MetricKey {
            key,
            name: name.clone(),
        })?;
        for &(step, time_nanos, value) in points {
            j.append_metric(time_nanos, &MetricPoint { key, step, value })?;
        }
    }
    if let Some(end) = run.end_nanos {
        j.append_final(&Record::End {
            time_nanos: end,
            status: run.status,
            error: run.error.clone().map(crate::cut_error),
        })?;
    }
    j.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_run_is_refused_before_any_folder_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let run = ImportedRun {
            experiment: "e".into(),
            metrics: vec![("loss".into(), vec![(0, 1, 1.0), (-1, 2, 2.0)])],
            ..ImportedRun::default()
        };
        let e = write_run(&project, &run).unwrap_err();
        assert!(e.to_string().contains("`loss`"), "{e}");
        let bad = ImportedRun {
            experiment: "e".into(),
            tags: vec![("a\nb".into(), "x".into())],
            ..ImportedRun::default()
        };
        assert!(write_run(&project, &bad).is_err());
        assert!(
            !project.runs_dir().exists()
                || fs_err::read_dir(project.runs_dir()).unwrap().count() == 0
        );
    }

    #[test]
    fn a_run_cut_short_before_its_rename_is_shown_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let run = ImportedRun {
            experiment: "old".into(),
            end_nanos: Some(5),
            metrics: vec![("loss".into(), vec![(0, 1, 1.0)])],
            ..ImportedRun::default()
        };
        // What a `kill -9` between the journal and its rename leaves.
        let (id, paths) = project.claim_run(1).unwrap();
        write_journal(&paths.dir.join(".journal.lab.import.1.tmp"), id, &run).unwrap();
        let mut store = lab_store::Store::open(project.clone()).unwrap();
        store.refresh().unwrap();
        assert_eq!(store.runs(None).unwrap().len(), 0);
        // And the next import is whole.
        write_run(&project, &run).unwrap();
        store.refresh().unwrap();
        assert_eq!(store.runs(None).unwrap().len(), 1);
    }

    #[test]
    fn a_run_is_written_whole_under_its_journal_name() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let run = ImportedRun {
            experiment: "old".into(),
            start_nanos: 1_700_000_000_000_000_000,
            end_nanos: Some(1_700_000_100_000_000_000),
            status: Status::Finished,
            attrs: vec![("dataset".into(), Value::Str("iris".into()))],
            tags: vec![(SOURCE_TAG.into(), "/x".into())],
            metrics: vec![(
                "train/loss".into(),
                vec![
                    (0, 1_700_000_001_000_000_000, 1.0),
                    (5, 1_700_000_002_000_000_000, 0.5),
                ],
            )],
            ..ImportedRun::default()
        };
        let id = write_run(&project, &run).unwrap();
        let paths = project.run_paths(&id.short());
        let names: Vec<_> = fs_err::read_dir(&paths.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["journal.lab"]);
        let mut store = lab_store::Store::open(project).unwrap();
        store.refresh().unwrap();
        let info = store.run(&id.short()).unwrap();
        assert_eq!(info.status, Status::Finished);
        assert_eq!(info.experiment, "old");
        assert_eq!(info.start_nanos, 1_700_000_000_000_000_000);
        assert_eq!(info.end_nanos, Some(1_700_000_100_000_000_000));
        assert_eq!(info.attr_str("dataset"), Some("iris"));
        assert_eq!(info.tags, vec![(SOURCE_TAG.to_owned(), "/x".to_owned())]);
        assert_eq!(
            store.metric_history(&info, "train/loss").unwrap(),
            vec![
                (0, 1_700_000_001_000_000_000, 1.0),
                (5, 1_700_000_002_000_000_000, 0.5)
            ]
        );
    }
}
