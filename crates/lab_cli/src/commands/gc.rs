//! `lab gc`: delete what interrupted commands and runs left behind.
//!
//! Besides trash folders, dead processes' temporary files (and the scratch
//! folders of a killed `lab import`) and index rows of
//! vanished runs, it removes what earlier versions could leave in run
//! folders: artifact copies that never completed (no `ArtifactStored` record,
//! in a run that is no longer running), copies of a Lab store inside an
//! artifact (logging `"."` from the project root once copied `.lab` into
//! itself), and run folders without a journal, recreated by the artifacts of
//! a run that `lab rm --force` removed while it was live. Last, it writes
//! the series file (`series.lab`) of each ended run with a long journal that
//! lacks one (runs that ended before Lab wrote them, or whose process was
//! killed before it could), and gives back the pages of those journals
//! whose points the series file holds (`lab_store::series::compact`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use lab_store::{JOURNAL_FILE, MARKER_FILE, RunInfo, STORE_DIR, Store};
use lab_types::Status;

use crate::ExitStatus;
use crate::args::GcArgs;
use crate::output;

use super::disk;

/// How old a run folder without a journal must be to be removed. A run that
/// is starting makes its folder, then its journal, microseconds later; a
/// folder older than this without one will never get it.
const JOURNAL_GRACE: Duration = Duration::from_mins(10);

/// Something to delete.
enum Garbage {
    /// A folder in `.lab/trash`, left by a `lab rm` that stopped halfway.
    Trash(PathBuf),
    /// A temporary file whose writing process is gone.
    Temp(PathBuf),
    /// The scratch folder of a `lab import` that was killed.
    ImportScratch(PathBuf),
    /// A folder a killed process made ahead for its next run.
    Spare(PathBuf),
    /// A run folder without a journal, unknown to the index.
    RunFolder(PathBuf),
    /// An artifact folder that no `ArtifactStored` record claims.
    PartialArtifact(PathBuf),
    /// A copy of a Lab store inside an artifact.
    StoreCopy(PathBuf),
}

impl Garbage {
    fn describe(&self) -> &'static str {
        match self {
            Garbage::Trash(_) => "a leftover trash folder",
            Garbage::Temp(_) => "an orphaned temporary file",
            Garbage::ImportScratch(_) => "a killed import's scratch folder",
            Garbage::Spare(_) => "a killed process's spare run folder",
            Garbage::RunFolder(_) => "a run folder without a journal",
            Garbage::PartialArtifact(_) => "an artifact whose copy never completed",
            Garbage::StoreCopy(_) => "a copy of a Lab store inside an artifact",
        }
    }
}

pub fn run(args: &GcArgs) -> Result<ExitStatus> {
    // Opening the index fresh also drops the rows of runs whose folder is gone.
    let store = super::open_fresh()?;
    let found = find(&store)?;
    let (unwritten, uncompacted) = series_due(&store)?;
    let root = store.project().root().to_owned();
    let mut out = std::io::stdout().lock();
    if found.is_empty() && unwritten.is_empty() && uncompacted.is_empty() {
        writeln!(out, "Nothing to clean up")?;
        return Ok(ExitStatus::Success);
    }
    if !found.is_empty() {
        remove(&found, args.dry_run, &root, &mut out)?;
    }
    write_series(&unwritten, args.dry_run, &root, &mut out)?;
    compact(&store, &uncompacted, args.dry_run, &root, &mut out)?;
    Ok(ExitStatus::Success)
}

type Due = Vec<(String, lab_store::RunPaths)>;

/// The runs that ended with a journal long enough for a series file
/// (`lab_store::series::MIN_JOURNAL_BYTES`): first those that have none
/// that matches it (runs that ended before Lab wrote them, or whose process
/// was killed before it could), then those whose journal still holds the
/// pages of points the series file holds (or will).
fn series_due(store: &Store) -> Result<(Due, Due)> {
    let mut unwritten = Vec::new();
    let mut uncompacted = Vec::new();
    // Runs sent to a team server are read from their journals by offsets
    // until the server holds them: their pages stay.
    let team = !matches!(lab_sdk::team::config::current(), Ok(None));
    for run in store.runs(None)? {
        if run.status == Status::Running {
            continue;
        }
        let paths = store.project().run_paths(&run.short_id);
        let long = std::fs::metadata(&paths.journal)
            .is_ok_and(|m| m.len() >= lab_store::series::MIN_JOURNAL_BYTES);
        if !long || paths.journal_is_locked()? {
            continue;
        }
        if !team && lab_store::series::compaction_due(&paths)? {
            uncompacted.push((run.short_id.clone(), paths.clone()));
        }
        if without_series(&paths) {
            unwritten.push((run.short_id, paths));
        }
    }
    unwritten.sort_by(|a, b| a.0.cmp(&b.0));
    uncompacted.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((unwritten, uncompacted))
}

/// Whether the run at `paths` has no series file that holds every point of
/// its journal, and one can be written (its journal gave no pages back).
fn without_series(paths: &lab_store::RunPaths) -> bool {
    lab_store::series::open(paths).is_none() && !lab_store::series::has_holes(paths)
}

/// Gives back the pages of each run's journal whose points its series file
/// holds (or says it would), a line each.
fn compact(
    store: &Store,
    runs: &Due,
    dry_run: bool,
    root: &Path,
    out: &mut impl Write,
) -> Result<()> {
    for (short_id, paths) in runs {
        if dry_run {
            writeln!(
                out,
                "Would give back the pages of run `{short_id}`'s journal whose points its series file holds: {}",
                disk::shown(&paths.journal, root)
            )?;
            continue;
        }
        if without_series(paths) {
            // Its series file could not be written: said above.
            continue;
        }
        match store.compact_run(short_id)? {
            lab_store::series::Compacted::Punched { freed, .. } => writeln!(
                out,
                "Gave back {} of run `{short_id}`'s journal, whose points its series file holds: {}",
                output::bytes(freed),
                disk::shown(&paths.journal, root)
            )?,
            lab_store::series::Compacted::Current => {}
            lab_store::series::Compacted::Skipped(why) => writeln!(
                out,
                "Kept run `{short_id}`'s journal whole ({why}): {}",
                disk::shown(&paths.journal, root)
            )?,
        }
    }
    Ok(())
}

/// Writes the series file of each run in `runs` (or says it would), a line
/// each.
fn write_series(
    runs: &[(String, lab_store::RunPaths)],
    dry_run: bool,
    root: &Path,
    out: &mut impl Write,
) -> Result<()> {
    for (short_id, paths) in runs {
        let file = lab_store::series::path(paths);
        if dry_run {
            writeln!(
                out,
                "Would write the series file of run `{short_id}`: {}",
                disk::shown(&file, root)
            )?;
            continue;
        }
        match lab_store::series::write(paths)? {
            lab_store::series::Written::File { bytes, points } => writeln!(
                out,
                "Wrote the series file of run `{short_id}` ({points} points, {}): {}",
                output::bytes(bytes),
                disk::shown(&file, root)
            )?,
            lab_store::series::Written::Current => {}
            lab_store::series::Written::Skipped(why) => writeln!(
                out,
                "Left run `{short_id}` without a series file ({why}): {}",
                disk::shown(&paths.journal, root)
            )?,
        }
    }
    Ok(())
}

/// Everything there is to delete, folder by folder in name order: the trash,
/// the store's orphaned temporary files, killed processes' scratch and spare
/// folders, then what each run folder holds.
fn find(store: &Store) -> Result<Vec<Garbage>> {
    let project = store.project();
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
    // `.lab/.import-<pid>-<random>/`: a killed `lab import`'s scratch folder.
    if let Ok(entries) = std::fs::read_dir(&store_dir) {
        let mut scratch: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix(lab_import::SCRATCH_PREFIX)
                    .and_then(|rest| rest.split_once('-'))
                    .is_some_and(|(pid, _)| dead_pid(pid))
            })
            .map(|e| e.path())
            .collect();
        scratch.sort();
        found.extend(scratch.into_iter().map(Garbage::ImportScratch));
    }
    found.extend(
        lab_store::stale_spares(&store_dir)
            .into_iter()
            .map(Garbage::Spare),
    );
    let runs = store.runs(None)?;
    let by_short: HashMap<&str, &RunInfo> = runs.iter().map(|r| (r.short_id.as_str(), r)).collect();
    let mut run_dirs: Vec<PathBuf> = std::fs::read_dir(project.runs_dir())
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    run_dirs.sort();
    // A `lab import` writes each run's journal under a temporary name in the
    // run's folder, as long as the run takes: while one holds the project's
    // import lock, a folder without a journal may be its run.
    let importing = import_running(&store_dir);
    for dir in run_dirs {
        let run = by_short.get(name_of(&dir).as_str()).copied();
        if run.is_none() && !importing && is_abandoned_run_folder(&dir) {
            found.push(Garbage::RunFolder(dir));
            continue;
        }
        // `.lab/runs/<short>/models/.<name>.<pid>-<n>.tmp`: a model being saved.
        found.extend(
            files_in(&dir.join("models"))
                .into_iter()
                .filter(|p| is_orphaned_model_temp(&name_of(p)))
                .map(Garbage::Temp),
        );
        // `.lab/runs/<short>/.series.lab.<pid>-<n>.tmp`: a series file
        // being written; `.journal.lab.holes.<pid>-0.tmp`: a list of a
        // journal's holes.
        found.extend(
            files_in(&dir)
                .into_iter()
                .filter(|p| {
                    let name = name_of(p);
                    (name.starts_with(".series.lab.") || name.starts_with(".journal.lab.holes."))
                        && is_orphaned_model_temp(&name)
                })
                .map(Garbage::Temp),
        );
        // `.lab/runs/<short>/media/<key>/.media.<pid>-<n>.tmp`: an image or
        // a table being written.
        for key_dir in dirs_in(&dir.join("media")) {
            found.extend(
                files_in(&key_dir)
                    .into_iter()
                    .filter(|p| is_orphaned_model_temp(&name_of(p)))
                    .map(Garbage::Temp),
            );
        }
        // A running run may be copying its artifacts right now.
        if let Some(run) = run.filter(|r| r.status != Status::Running) {
            artifact_leftovers(&dir, run, &mut found);
        }
    }
    Ok(found)
}

/// Removes each item found (or only says it would, on a dry run), a line
/// each with the bytes it held, then the total.
fn remove(found: &[Garbage], dry_run: bool, root: &Path, out: &mut impl Write) -> Result<()> {
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let (mut freed, mut count) = (0, 0);
    for item in found {
        let path = match item {
            Garbage::Trash(path)
            | Garbage::Temp(path)
            | Garbage::ImportScratch(path)
            | Garbage::Spare(path)
            | Garbage::RunFolder(path)
            | Garbage::PartialArtifact(path)
            | Garbage::StoreCopy(path) => path,
        };
        let bytes = disk::size(path);
        if !dry_run {
            if let Garbage::Spare(_) = item {
                // Looked at again under its journal's lock: one taken up
                // or removed by a process since is left alone, and one
                // that cannot be removed is told and the rest goes on.
                match lab_store::remove_stale_spare(path) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        writeln!(
                            out,
                            "Left {} ({e}): {}",
                            item.describe(),
                            disk::shown(path, root)
                        )?;
                        continue;
                    }
                }
            } else {
                disk::remove(path)?;
            }
        }
        freed += bytes;
        count += 1;
        writeln!(
            out,
            "{verb} {} ({}): {}",
            item.describe(),
            output::bytes(bytes),
            disk::shown(path, root)
        )?;
    }
    writeln!(
        out,
        "{} {} item(s), {} {}",
        verb,
        count,
        if dry_run { "would free" } else { "freed" },
        output::bytes(freed)
    )?;
    Ok(())
}

/// A run folder that has no journal and has not had one for
/// [`JOURNAL_GRACE`]: not a run that is starting, but one whose folder was
/// deleted while it ran and then made again by an earlier version copying its
/// artifacts or saving a model.
/// Whether a `lab import` holds the project's import lock now.
fn import_running(store_dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(store_dir.join(lab_import::LOCK_FILE)) else {
        return false;
    };
    // Held by an import, or not to be taken for another reason: either way
    // keep what may be a run being imported rather than guess.
    file.try_lock().is_err()
}

fn is_abandoned_run_folder(dir: &Path) -> bool {
    let name = name_of(dir);
    if name.len() != 8 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    if !meta.is_dir() || std::fs::symlink_metadata(dir.join(JOURNAL_FILE)).is_ok() {
        return false;
    }
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= JOURNAL_GRACE)
}

/// In the folder of a run that is not running: artifact folders no
/// `ArtifactStored` record claims (a copy cut short), and in the others,
/// copies of a Lab store.
fn artifact_leftovers(dir: &Path, run: &RunInfo, found: &mut Vec<Garbage>) {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir.join("artifacts"))
        .map(|e| {
            e.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    folders.sort();
    for folder in folders {
        let name = name_of(&folder);
        let stored = run
            .artifacts
            .iter()
            .any(|a| a.name == name && a.path.is_some());
        if stored {
            found.extend(store_copies(&folder).into_iter().map(Garbage::StoreCopy));
        } else {
            found.push(Garbage::PartialArtifact(folder));
        }
    }
}

/// Folders under `dir` named `.lab` that hold `project.json` and `runs/`: a
/// copy of a project's store, which an artifact copy now never makes. Links
/// are not followed; what is inside a store copy is not looked at.
fn store_copies(dir: &Path) -> Vec<PathBuf> {
    let mut copies = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(folder) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name() == STORE_DIR
                && path.join(MARKER_FILE).is_file()
                && path.join("runs").is_dir()
            {
                copies.push(path);
            } else {
                todo.push(path);
            }
        }
    }
    copies.sort();
    copies
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    entries_in(dir, std::fs::FileType::is_file)
}

fn dirs_in(dir: &Path) -> Vec<PathBuf> {
    entries_in(dir, std::fs::FileType::is_dir)
}

/// The entries of `dir` of the kind `keep` takes, sorted; none when it
/// cannot be read.
fn entries_in(dir: &Path, keep: fn(&std::fs::FileType) -> bool) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| keep(&t)))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.<name>.<pid>-<n>.tmp` (or `.<name>.<pid>.tmp`, as earlier versions
/// named it) whose process is gone.
fn is_orphaned_model_temp(name: &str) -> bool {
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    stem.rsplit_once('.').is_some_and(|(model, tail)| {
        let pid = tail.split_once('-').map_or(tail, |(pid, _)| pid);
        !model.is_empty() && dead_pid(pid)
    })
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
