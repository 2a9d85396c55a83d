//! `lab import tensorboard DIR`: a TensorBoard log folder, one run per run
//! folder (see [`lab_sdk::tboard::log_runs`]), its scalars as metrics named
//! as an artifact's are ([`lab_sdk::tboard`]), its start and end the first
//! and last scalar's wall time, status finished.
//!
//! The origin of a run is `tensorboard:<run folder>@<fingerprint>`, the
//! fingerprint being that of its event files: importing the same folder again
//! skips its runs, and a run folder whose files changed (a training that went
//! on) is imported again as a new run.

use std::path::Path;

use lab_sdk::import::{ImportedEnd, ImportedMetric, ImportedPoint, ImportedRun, valid_key};
use lab_sdk::tboard::{self, LogRun};
use lab_types::Status;

use crate::{ImportError, LeftOut, Read, Source, SourceRun};

/// A TensorBoard log folder as a [`Source`].
pub struct TensorboardSource {
    experiment: String,
    runs: Vec<(LogRun, Result<String, String>)>,
}

/// Opens the log folder `dir`; its runs go to experiment `experiment`, by
/// default the folder's name.
pub fn open(dir: &Path, experiment: Option<&str>) -> Result<Box<dyn Source>, ImportError> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        ImportError::source(format!(
            "`lab import tensorboard` needs a TensorBoard log folder, and this cannot be read ({e}): {}",
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(ImportError::source(format!(
            "`lab import tensorboard` needs a TensorBoard log folder, and this is a file: {}\n\nhint: give the folder that holds it (the `--logdir` of `tensorboard`)",
            dir.display()
        )));
    }
    let dir = dir.canonicalize().map_err(|e| {
        ImportError::source(format!("cannot read the folder ({e}): {}", dir.display()))
    })?;
    let experiment = if let Some(e) = experiment {
        e.to_owned()
    } else {
        let name = dir.file_name().map_or_else(
            || "tensorboard".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        valid_key(&name).unwrap_or(name)
    };
    lab_sdk::check_key("--experiment", &experiment)
        .map_err(|e| ImportError::source(e.to_string()))?;
    let runs = tboard::log_runs(&dir).map_err(|e| ImportError::source(e.to_string()))?;
    if runs.is_empty() {
        return Err(ImportError::source(format!(
            "no TensorBoard event files (`events.out.tfevents.*`) in this folder or below it: {}",
            dir.display()
        )));
    }
    let runs = runs
        .into_iter()
        .map(|run| {
            let fingerprint = tboard::fingerprint(&run)
                .map_err(|e| format!("reading its event files failed: {e}"));
            (run, fingerprint)
        })
        .collect();
    Ok(Box::new(TensorboardSource { experiment, runs }))
}

fn origin(run: &LogRun, fingerprint: &str) -> String {
    format!("tensorboard:{}@{fingerprint}", run.dir.display())
}

impl Source for TensorboardSource {
    fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError> {
        Ok(self
            .runs
            .iter()
            .enumerate()
            .map(|(index, (run, fingerprint))| SourceRun {
                origin: match fingerprint {
                    Ok(f) => origin(run, f),
                    Err(_) => format!("tensorboard:{}", run.dir.display()),
                },
                label: format!("TensorBoard run `{}`", run.name),
                ended: true,
                index,
            })
            .collect())
    }

    fn read(&mut self, source: &SourceRun, _scratch: &Path) -> Result<Read, String> {
        let (run, fingerprint) = &self.runs[source.index];
        let fingerprint = fingerprint.as_ref().map_err(Clone::clone)?;
        let tree = tboard::read_files(&run.dir, &run.files);
        let warnings = tboard::notes(&tree);
        let (Some(start), Some(end)) = (tree.first_nanos, tree.last_nanos) else {
            let why = warnings
                .first()
                .map_or_else(String::new, |w| format!(" ({w})"));
            return Err(format!(
                "its event files hold no scalars{why}: {}",
                run.dir.display()
            ));
        };
        let mut left = LeftOut::default();
        // The kinds the other importers count under, so a summary adds them up.
        left.add_n("names Lab refuses, renamed", tree.renamed.len() as u64);
        left.add_n("metric points with a negative step", tree.negative_steps);
        let metrics = tree
            .metrics
            .into_iter()
            .map(|(name, points)| ImportedMetric {
                name,
                points: points
                    .into_iter()
                    .map(|(step, time_nanos, value)| ImportedPoint {
                        step,
                        value,
                        time_nanos,
                    })
                    .collect(),
            })
            .collect();
        Ok(Read {
            run: ImportedRun {
                origin: origin(run, fingerprint),
                experiment: self.experiment.clone(),
                start_nanos: start,
                end: Some(ImportedEnd {
                    time_nanos: end,
                    status: Status::Finished,
                    error: None,
                }),
                metrics,
                ..ImportedRun::default()
            },
            left_out: left.into_vec(),
            warnings: tree.problems,
        })
    }
}
