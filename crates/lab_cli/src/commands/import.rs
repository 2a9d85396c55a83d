//! `lab import mlflow URI`, `lab import wandb DIR` and `lab import
//! tensorboard DIR`: other trackers' runs
//! into the current project (made here if there is none), with a progress
//! bar and a summary.

use std::io::Write as _;

use anyhow::Result;
use lab_import::{ImportError, Options, Summary};
use lab_store::Project;

use crate::ExitStatus;
use crate::args::{ImportArgs, ImportCommand, current_dir};
use crate::output::{self, UserError};
use crate::progress::ImportBar;

pub fn run(args: &ImportArgs) -> Result<ExitStatus> {
    let (mut source, dry_run) = match &args.from {
        ImportCommand::Mlflow(a) => (
            lab_import::mlflow::open(&a.uri, a.experiment.as_deref()).map_err(user)?,
            a.dry_run,
        ),
        ImportCommand::Wandb(a) => (
            lab_import::wandb::open(&current_dir().join(&a.dir)).map_err(user)?,
            a.dry_run,
        ),
        ImportCommand::Tensorboard(a) => (
            lab_import::tensorboard::open(&current_dir().join(&a.dir), a.experiment.as_deref())
                .map_err(user)?,
            a.dry_run,
        ),
    };
    let (project, made) = Project::discover_or_create(&current_dir())?;
    if made {
        output::warn(&format!(
            "{} is now a Lab project; runs are kept in {}",
            project.root().display(),
            project.store_dir().display()
        ));
    }
    let bar = ImportBar::new();
    let summary =
        lab_import::import(&project, source.as_mut(), Options { dry_run }, &bar).map_err(user)?;
    report(&summary, dry_run)?;
    Ok(if summary.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// A source that cannot be read is the user's to fix; a project that fails is not.
fn user(e: ImportError) -> anyhow::Error {
    match e {
        ImportError::Store(e) => e.into(),
        other => UserError(other.to_string()).into(),
    }
}

/// What was imported, skipped and failed: the runs on stdout, one line
/// each, then a total; what went wrong and what was left out on stderr.
fn report(summary: &Summary, dry_run: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for (origin, short) in &summary.imported {
        if dry_run {
            writeln!(out, "would import {origin}")?;
        } else {
            writeln!(out, "imported {origin} as {short}")?;
        }
    }
    for (origin, short, old) in &summary.replaced {
        writeln!(
            out,
            "imported {origin} again as {short} (it has ended since; {old} deleted)"
        )?;
    }
    for (label, why) in &summary.failed {
        output::warn(&format!("{label} was not imported: {why}"));
    }
    for warning in &summary.warnings {
        output::warn(warning);
    }
    if !summary.left_out.is_empty() {
        let parts: Vec<String> = summary
            .left_out
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        output::warn(&format!("left out: {}", parts.join("; ")));
    }
    let verb = if dry_run { "Would import" } else { "Imported" };
    writeln!(
        out,
        "{verb} {} run(s) ({} metric point(s)), replaced {}, skipped {} already here, {} failed",
        summary.imported.len(),
        summary.points,
        summary.replaced.len(),
        summary.skipped.len(),
        summary.failed.len()
    )?;
    Ok(())
}
