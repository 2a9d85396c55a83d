//! `lab import`: runs recorded by another tool, brought into the project.
//!
//! Each source is read into [`ImportedRun`]s, written by
//! [`lab_sdk::import::write_run`] (whole or not at all). A run records its
//! source and a fingerprint of it in tags; a run whose fingerprint the
//! project already holds is not imported again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as IoWrite};

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lab_sdk::import::{FINGERPRINT_TAG, FORMAT_TAG, ImportedRun, SOURCE_TAG, write_run};
use lab_sdk::tboard;
use lab_store::{Project, Store};
use lab_types::Status;

use crate::ExitStatus;
use crate::args::{ImportArgs, ImportCommand, ImportTensorboardArgs, current_dir};
use crate::output::{self, UserError};

pub fn run(args: &ImportArgs) -> Result<ExitStatus> {
    match &args.from {
        ImportCommand::Tensorboard(a) => tensorboard(a),
    }
}

/// What an import did, for its summary line.
#[derive(Default)]
struct Tally {
    imported: usize,
    points: usize,
    already: usize,
    empty: usize,
    failed: usize,
}

/// A bar counting runs on stderr, drawn only on a terminal.
fn bar(len: usize) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len as u64), target);
    bar.set_style(
        ProgressStyle::with_template("importing [{wide_bar}] {pos}/{len} run(s) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// The project of the current folder, made if there is none.
fn project() -> Result<Project> {
    let (project, created) = Project::discover_or_create(&current_dir())?;
    if created {
        eprintln!(
            "lab: {} is now a Lab project; runs are kept in {}",
            project.root().display(),
            project.store_dir().display()
        );
    }
    Ok(project)
}

/// The fingerprints of the runs imported before, to their short ids.
fn known_fingerprints(store: &Store) -> Result<HashMap<String, String>> {
    Ok(store
        .runs(None)?
        .into_iter()
        .filter_map(|r| {
            let fp = r
                .tags
                .iter()
                .find(|(k, _)| k == FINGERPRINT_TAG)
                .map(|(_, v)| v.clone())?;
            Some((fp, r.short_id))
        })
        .collect())
}

fn tensorboard(args: &ImportTensorboardArgs) -> Result<ExitStatus> {
    let dir = &args.dir;
    let meta = std::fs::metadata(dir).map_err(|e| {
        UserError(format!(
            "`lab import tensorboard` needs a TensorBoard log folder, and this cannot be read ({e}): {}",
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(UserError(format!(
            "`lab import tensorboard` needs a TensorBoard log folder, and this is a file: {}\n\nhint: give the folder that holds it (the `--logdir` of `tensorboard`)",
            dir.display()
        ))
        .into());
    }
    let dir = dir.canonicalize().or_else(|_| std::path::absolute(dir))?;
    let runs = tboard::log_runs(&dir).context("cannot list the log folder")?;
    if runs.is_empty() {
        return Err(UserError(format!(
            "no TensorBoard event files (`events.out.tfevents.*`) in this folder or below it: {}",
            dir.display()
        ))
        .into());
    }
    let experiment = match &args.experiment {
        Some(e) => e.clone(),
        None => tboard::valid_metric_name(
            &dir.canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "tensorboard".to_owned()),
        ),
    };
    lab_sdk::check_key("--experiment", &experiment).map_err(|e| UserError(e.to_string()))?;
    let project = project()?;
    let mut store = Store::open(project.clone())?;
    for issue in store.refresh()? {
        output::warn(&issue.to_string());
    }
    let mut known = known_fingerprints(&store)?;
    let mut tally = Tally::default();
    let bar = bar(runs.len());
    for run in &runs {
        bar.set_message(run.name.clone());
        let warn = |text: &str| bar.suspend(|| output::warn(text));
        let fingerprint = match tboard::fingerprint(run) {
            Ok(f) => f,
            Err(e) => {
                warn(&format!(
                    "run `{}` was not imported: reading its event files failed: {e}",
                    run.name
                ));
                tally.failed += 1;
                bar.inc(1);
                continue;
            }
        };
        if known.contains_key(&fingerprint) {
            tally.already += 1;
            bar.inc(1);
            continue;
        }
        let tree = tboard::read_files(&run.dir, &run.files);
        for note in tboard::notes(&tree) {
            warn(&format!("run `{}`: {note}", run.name));
        }
        let (Some(start), Some(end)) = (tree.first_nanos, tree.last_nanos) else {
            warn(&format!(
                "run `{}` was not imported: its event files hold no scalars: {}",
                run.name,
                run.dir.display()
            ));
            tally.empty += 1;
            bar.inc(1);
            continue;
        };
        let source = run.dir.canonicalize().unwrap_or_else(|_| run.dir.clone());
        let points: usize = tree.metrics.iter().map(|(_, p)| p.len()).sum();
        let imported = ImportedRun {
            experiment: experiment.clone(),
            start_nanos: start,
            end_nanos: Some(end),
            status: Status::Finished,
            tags: vec![
                (FORMAT_TAG.to_owned(), "tensorboard".to_owned()),
                (SOURCE_TAG.to_owned(), source.display().to_string()),
                (FINGERPRINT_TAG.to_owned(), fingerprint.clone()),
            ],
            metrics: tree.metrics,
            ..ImportedRun::default()
        };
        match write_run(&project, &imported) {
            Ok(id) => {
                store.fold_run(&id.short())?;
                known.insert(fingerprint, id.short());
                tally.imported += 1;
                tally.points += points;
            }
            Err(e) => {
                warn(&format!("run `{}` was not imported: {e}", run.name));
                tally.failed += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut line = format!(
        "Imported {} run(s) ({} point(s)) into experiment `{experiment}`",
        tally.imported, tally.points
    );
    for (n, what) in [
        (tally.already, "already imported"),
        (tally.empty, "without scalars"),
        (tally.failed, "failed"),
    ] {
        if n > 0 {
            let _ = write!(line, "; {n} {what}");
        }
    }
    let mut out = std::io::stdout().lock();
    IoWrite::write_fmt(&mut out, format_args!("{line}: {}\n", dir.display()))?;
    Ok(if tally.failed > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
