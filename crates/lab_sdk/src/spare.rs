//! The next runs' folders and journals, made ahead of time.
//!
//! Making a run's folder and creating its journal (two new inodes, the
//! journal locked and its header written) was the largest part of what
//! starting a run cost the calling thread, and far more on a disk where many
//! files were just deleted (ext4 skips inodes freed in the last minute one
//! by one). So once a run has started, the `lab-env` thread makes folders
//! for the next runs, each with its journal, in `.lab/spare/<pid>-<random>/`
//! (a few, [`READY`]), and a run's start renames one into
//! `.lab/runs/<short id>` without replacing anything there
//! ([`Project::claim_run_by`]): the claim of the short id stays one atomic
//! step, and the run is what it would have been, its records written after
//! the rename.
//!
//! A spare is never a run: no reader of runs looks in `.lab/spare` (and
//! `lab push` leaves it out), nothing is written to its journal but the
//! header, and the journal's space is reserved only when its run starts. A
//! process removes its spares whenever it waits for its background work
//! ([`discard`], which the Python exit handler does too); a process that
//! ends otherwise (killed, `os._exit`) leaves them, unlocked, for the next
//! process that makes spares in the project or `lab gc` to remove
//! ([`lab_store::stale_spares`]). Without a spare ready (the first run of a
//! process, or the thread still busy), a run makes its folder itself.

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use lab_journal::JournalWriter;
use lab_store::{JOURNAL_FILE, Project, RunPaths, SPARE_DIR, remove_stale_spare, stale_spares};
use lab_types::RunId;

use crate::per_process::PerProcess;

/// A folder made ahead, with its journal open and locked.
pub(crate) struct Spare {
    /// The `.lab` folder it belongs to.
    store: PathBuf,
    dir: PathBuf,
    journal: JournalWriter,
}

/// How many spares a process keeps ready: more than one, so that a run
/// that starts while the thread is still making the last one taken (it
/// shares a core with the `lab-finish` thread in a loop of short runs)
/// still finds one.
const READY: usize = 3;

#[derive(Default)]
struct State {
    /// For one store (a run of another project throws them away), the
    /// oldest first: a run takes the one made longest ago.
    ready: VecDeque<Spare>,
    /// Moved on by [`discard`]: spares asked for before it are not made.
    epoch: u64,
    /// Whether the `lab-env` thread is making (or throwing away) spares,
    /// with their journals open.
    making: bool,
    /// Set when moving a spare into place failed other than by a taken
    /// name (a file system without `RENAME_NOREPLACE`): runs make their
    /// own folders from then on.
    disabled: bool,
    /// The stores whose stale spares this process looked for.
    swept: Vec<PathBuf>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Rung when the thread stops making spares.
    idle: Condvar,
}

static SHARED: PerProcess<Shared> = PerProcess::new();

fn state() -> MutexGuard<'static, State> {
    SHARED
        .get()
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// What a run's start passes on to [`make_for`]: spares asked for before the
/// last [`discard`] are not made.
pub(crate) fn epoch() -> u64 {
    state().epoch
}

/// Clears [`State::making`] however [`make_for`] returns.
struct Making;

impl Drop for Making {
    fn drop(&mut self) {
        state().making = false;
        SHARED.get().idle.notify_all();
    }
}

/// Makes spares for `project` until [`READY`] are, unless [`discard`] was
/// called since the run that asks for them started (`epoch`), stopping
/// early when `more_work` says a run waits for the thread. Called on the
/// `lab-env` thread after a run's facts; failing (a full disk, a read-only
/// store) leaves the next run to make its own folder, as before.
pub(crate) fn make_for(project: &Project, epoch: u64, more_work: impl Fn() -> bool) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let store = project.store_dir();
    let (sweep, other) = {
        let mut st = state();
        if st.disabled || st.epoch != epoch || st.making {
            return;
        }
        let other = if st.ready.front().is_some_and(|s| s.store != store) {
            std::mem::take(&mut st.ready)
        } else if st.ready.len() >= READY {
            return;
        } else {
            VecDeque::new()
        };
        st.making = true;
        (!st.swept.contains(&store), other)
    };
    let _making = Making;
    other.into_iter().for_each(throw_away);
    if sweep {
        for dir in stale_spares(&store) {
            let _ = remove_stale_spare(&dir);
        }
        state().swept.push(store.clone());
    }
    while !more_work() {
        let Ok(made) = make(&store) else {
            return;
        };
        let mut st = state();
        if st.epoch != epoch || st.ready.len() >= READY {
            // Discarded meanwhile: the process waits for its background
            // work, or exits.
            drop(st);
            throw_away(made);
            return;
        }
        st.ready.push_back(made);
        if st.ready.len() >= READY {
            return;
        }
    }
}

fn make(store: &Path) -> Result<Spare, lab_journal::JournalError> {
    let root = store.join(SPARE_DIR);
    // Random, not numbered: pids repeat (every container's first process
    // is pid 1), and a name seen stale once must not come back as a live
    // process's spare.
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let random = u64::from_le_bytes(random);
    let dir = root.join(format!("{}-{random:016x}", std::process::id()));
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && store.is_dir() => {
            std::fs::create_dir_all(&root)?;
            std::fs::create_dir(&dir)?;
        }
        other => other?,
    }
    // Its space is reserved when its run starts: a spare holds no more
    // disk than a folder and a header.
    match JournalWriter::create_unmapped(&dir.join(JOURNAL_FILE)) {
        Ok(journal) => Ok(Spare {
            store: store.to_owned(),
            dir,
            journal,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// Removes a spare of this process: its journal while still holding the
/// lock (a journal found unlocked and old may be taken for a dead
/// process's), then the folder.
fn throw_away(spare: Spare) {
    let _ = std::fs::remove_file(spare.dir.join(JOURNAL_FILE));
    drop(spare.journal);
    let _ = std::fs::remove_dir(&spare.dir);
}

/// Claims a folder for a run of `project` started at `time_nanos` by moving
/// a spare into place, and gives its journal, whose space the caller
/// reserves ([`JournalWriter::map_reserved`]): `None` when no spare is ready
/// for this project (or it could not be moved), and the caller makes the
/// folder itself. An error once the folder is claimed is the run's.
pub(crate) fn claim(
    project: &Project,
    time_nanos: i64,
) -> Option<Result<(RunId, RunPaths, JournalWriter), lab_journal::JournalError>> {
    let store = project.store_dir();
    let mut spare = {
        let mut st = state();
        if st.ready.front().is_none_or(|s| s.store != store) {
            return None;
        }
        st.ready.pop_front()?
    };
    let mut refused = None;
    let claimed = project.claim_run_by(time_nanos, |dir| {
        let moved = move_into(&spare.dir, dir);
        if let Err(e) = &moved
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            refused = Some(e.kind());
        }
        moved
    });
    let Ok((id, paths)) = claimed else {
        // The spare's folder gone, or a file system that cannot rename
        // without replacing: the run makes its own folder.
        if refused.is_some_and(|k| k != std::io::ErrorKind::NotFound) {
            state().disabled = true;
        }
        throw_away(spare);
        return None;
    };
    // The folder is the run's now. Its journal must still be the file this
    // writer holds (deleted by hand, records written to it would be lost
    // with the descriptor): if not, the run gets a new one in the folder.
    let (dev, ino) = spare.journal.file_id();
    let named = std::fs::symlink_metadata(&paths.journal);
    if named.is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
        spare.journal.moved_to(paths.journal.clone());
        return Some(Ok((id, paths, spare.journal)));
    }
    drop(spare.journal);
    Some(JournalWriter::create(&paths.journal).map(|journal| (id, paths, journal)))
}

/// Renames the folder `from` to `to`, failing with `AlreadyExists` rather
/// than replace what is there (an empty folder would be replaced by a plain
/// `rename`).
#[cfg(target_os = "linux")]
fn move_into(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn move_into(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Removes this process's spares, waiting for the thread if it is making
/// some, so that the process holds nothing open in the project until its
/// next run starts (which asks for more): called by
/// [`wait_for_background`](crate::wait_for_background), which the exit
/// handler calls.
pub(crate) fn discard() {
    let shared = SHARED.get();
    let mut st = state();
    st.epoch += 1;
    while st.making {
        st = shared.idle.wait(st).unwrap_or_else(PoisonError::into_inner);
    }
    let ready = std::mem::take(&mut st.ready);
    drop(st);
    ready.into_iter().for_each(throw_away);
}

/// In a child right after `fork`: the parent's spares stay the parent's.
/// The child closes its copies of their journals' descriptors (which share
/// the parent's locks: a run that later takes one would look live while
/// the child lives) and starts without any. Returns whether the parent's
/// thread was making a spare at the fork (or the list's lock was held): that
/// one is in no list yet, and the fork handler's sweep of inherited
/// journals lets go of it
/// ([`close_inherited_journals`](crate::per_process::close_inherited_journals)).
pub(crate) fn after_fork_in_child() -> bool {
    let (inherited, unsure) = match SHARED.get().state.try_lock() {
        Ok(mut st) => (std::mem::take(&mut st.ready), st.making),
        Err(_) => (VecDeque::new(), true),
    };
    SHARED.renew();
    for spare in inherited {
        let id = spare.journal.file_id();
        crate::per_process::close_inherited(spare.journal.into_file().into(), Some(id));
    }
    unsure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_is_moved_into_place_without_replacing_a_taken_name_and_its_journal_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(tmp.path()).unwrap();
        make_for(&project, epoch(), || false);
        let spare_dir = state().ready.front().map(|s| s.dir.clone()).unwrap();
        assert!(spare_dir.join(JOURNAL_FILE).is_file());
        // Another process's empty folder under the name the claim tries
        // first: a plain rename would replace it.
        let now = lab_types::now_nanos();
        let taken = project.run_paths(&RunId::new(now, 0).short());
        std::fs::create_dir_all(&taken.dir).unwrap();
        let (id, paths, journal) = claim(&project, now).unwrap().unwrap();
        assert_ne!(paths.dir, taken.dir);
        assert!(taken.dir.is_dir());
        assert_eq!(journal.path(), paths.journal);
        assert!(paths.journal.is_file());
        assert!(paths.journal_is_locked().unwrap());
        assert!(!spare_dir.exists());
        assert_eq!(paths.dir, project.run_paths(&id.short()).dir);
        drop(journal);
        discard();
        let left = std::fs::read_dir(project.store_dir().join(SPARE_DIR)).unwrap();
        assert_eq!(left.count(), 0);

        // A spare whose journal was deleted by hand: its run gets a new one.
        make_for(&project, epoch(), || false);
        let spare_dir = state().ready.front().map(|s| s.dir.clone()).unwrap();
        std::fs::remove_file(spare_dir.join(JOURNAL_FILE)).unwrap();
        let (_, paths, mut journal) = claim(&project, lab_types::now_nanos()).unwrap().unwrap();
        journal.map_reserved().unwrap();
        assert_eq!(journal.path(), paths.journal);
        assert!(paths.journal_is_locked().unwrap());
        discard();
    }
}
