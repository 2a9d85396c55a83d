//! `lab rm`: remove runs, their files and their index rows.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, Result, anyhow};
use lab_store::{RunInfo, Store};
use lab_types::Status;

use crate::ExitStatus;
use crate::args::RmArgs;
use crate::output;
use crate::visible;

use super::disk;

pub fn run(args: &RmArgs) -> Result<ExitStatus> {
    let mut store = super::open_fresh()?;
    // Every prefix is resolved before anything is removed.
    let mut runs: Vec<RunInfo> = Vec::new();
    for prefix in &args.runs {
        let run = store.run(prefix)?;
        if !runs.iter().any(|r| r.id == run.id) {
            runs.push(run);
        }
    }
    if !args.force
        && let Some(running) = runs.iter().find(|r| r.status == Status::Running)
    {
        output::error(&anyhow!(
            "run `{}` is still running: removing it would lose what it logs next\n\nhint: wait for it to end, or pass `--force` to remove it anyway",
            running.short_id
        ));
        return Ok(ExitStatus::Failure);
    }
    if !args.yes && !confirm(&store, &runs)? {
        return Ok(ExitStatus::Failure);
    }
    let mut out = std::io::stdout().lock();
    let mut freed = 0;
    for run in &runs {
        let bytes = remove_run(&mut store, run)?;
        freed += bytes;
        writeln!(
            out,
            "Removed run `{}` ({}, {}, {}): {}",
            run.short_id,
            visible::text(&run.experiment),
            visible::text(&output::source_name(run)),
            run.status,
            output::bytes(bytes)
        )?;
    }
    writeln!(
        out,
        "Removed {} run(s), freed {}",
        runs.len(),
        output::bytes(freed)
    )?;
    Ok(ExitStatus::Success)
}

/// Asks on the terminal; refuses when stdin is not one.
fn confirm(store: &Store, runs: &[RunInfo]) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        output::error(&anyhow!(
            "refusing to remove {} run(s) without confirmation: stdin is not a terminal\n\nhint: pass `--yes` to remove without asking",
            runs.len()
        ));
        return Ok(false);
    }
    let mut err = std::io::stderr().lock();
    writeln!(err, "These runs and all their files will be deleted:")?;
    for run in runs {
        writeln!(
            err,
            "  {}  {}  {}  {}  {}",
            run.short_id,
            visible::text(&run.experiment),
            visible::text(&output::source_name(run)),
            run.status,
            output::bytes(disk::size(&store.project().run_paths(&run.short_id).dir))
        )?;
    }
    write!(err, "Remove {} run(s)? [y/N] ", runs.len())?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(true)
    } else {
        writeln!(err, "Nothing removed")?;
        Ok(false)
    }
}

/// Deletes the run (see [`Store::delete_run`]); returns the bytes freed.
fn remove_run(store: &mut Store, run: &RunInfo) -> Result<u64> {
    let bytes = disk::size(&store.project().run_paths(&run.short_id).dir);
    store.delete_run(run).with_context(|| {
        format!(
            "run `{}` is removed, but its files could not be deleted; `lab gc` will retry",
            run.short_id
        )
    })?;
    Ok(bytes)
}
