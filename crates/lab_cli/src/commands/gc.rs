//! `lab gc`: delete what interrupted commands and runs left behind.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::ExitStatus;
use crate::args::GcArgs;
use crate::output;

use super::disk;

/// Something to delete.
enum Garbage {
    /// A folder in `.lab/trash`, left by a `lab rm` that stopped halfway.
    Trash(PathBuf),
    /// A temporary file whose writing process is gone.
    Temp(PathBuf),
}

pub fn run(args: &GcArgs) -> Result<ExitStatus> {
    // Opening the index fresh also drops the rows of runs whose folder is gone.
    let store = super::open_fresh()?;
    let project = store.project().clone();
    let root = project.root().to_owned();
    let store_dir = project.store_dir();
    let mut found = Vec::new();

    if let Ok(entries) = std::fs::read_dir(store_dir.join("trash")) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        found.extend(paths.into_iter().map(Garbage::Trash));
    }
    // `.lab/.project.json.<pid>`: the marker, written aside.
    found.extend(
        files_in(&store_dir)
            .into_iter()
            .filter(|p| {
                name_of(p)
                    .strip_prefix(".project.json.")
                    .is_some_and(dead_pid)
            })
            .map(Garbage::Temp),
    );
    // `.lab/runs/<short>/models/.<name>.<pid>.tmp`: a model being saved.
    let mut run_dirs: Vec<PathBuf> = std::fs::read_dir(project.runs_dir())
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    run_dirs.sort();
    for dir in run_dirs {
        found.extend(
            files_in(&dir.join("models"))
                .into_iter()
                .filter(|p| is_orphaned_model_temp(&name_of(p)))
                .map(Garbage::Temp),
        );
    }

    let mut out = std::io::stdout().lock();
    if found.is_empty() {
        writeln!(out, "Nothing to clean up")?;
        return Ok(ExitStatus::Success);
    }
    let verb = if args.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    let mut freed = 0;
    for item in &found {
        let (Garbage::Trash(path) | Garbage::Temp(path)) = item;
        let bytes = disk::size(path);
        if !args.dry_run {
            disk::remove(path)?;
        }
        freed += bytes;
        let what = if matches!(item, Garbage::Trash(_)) {
            "a leftover trash folder"
        } else {
            "an orphaned temporary file"
        };
        writeln!(
            out,
            "{verb} {what} ({}): {}",
            output::bytes(bytes),
            disk::shown(path, &root)
        )?;
    }
    writeln!(
        out,
        "{} {} item(s), {} {}",
        verb,
        found.len(),
        if args.dry_run { "would free" } else { "freed" },
        output::bytes(freed)
    )?;
    Ok(ExitStatus::Success)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.<name>.<pid>.tmp` whose process is gone.
fn is_orphaned_model_temp(name: &str) -> bool {
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    stem.rsplit_once('.')
        .is_some_and(|(model, pid)| !model.is_empty() && dead_pid(pid))
}

/// Whether `text` is a process id no process has.
fn dead_pid(text: &str) -> bool {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(pid) = text
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}
