//! Finishing ended runs: one `lab-finish` thread per process closes, syncs
//! and indexes the journals of the runs that ended, in batches.
//!
//! [`Run::end`](crate::Run::end) writes the End record and hands the run
//! over; from then on a `kill -9` keeps everything the run logged, its end
//! included (the records are in the kernel's page cache). What the thread
//! adds is durability against a power failure and the index: it takes every
//! run ended since it last looked, closes their journals together (a Close
//! record each, the reserved space cut off), then syncs them one after the
//! other, so the file system commits their metadata in one journal
//! transaction where it can rather than one per run; only then does it let
//! go of their locks, and folds them into the index in one transaction
//! (one commit for the batch rather than one per run), through one
//! connection it keeps open (opening and closing SQLite for each run made
//! it checkpoint and delete its WAL each time). Its queue is bounded
//! ([`MAX_WAITING`]): a loop far ahead of it waits for it at a run's end. Last, it writes the series
//! file of each run with a long journal (`lab_store::series`).
//! [`wait_for_background`] waits until every run handed over is synced,
//! indexed and has its series file.
//!
//! A child forked from a process that had the index open leaves the fold
//! to the index's next reader (SQLite's memory of the parent's locks came
//! along with the fork), and a child gets a queue of its own: the parent's
//! thread may have held the queue's lock at the fork.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use lab_journal::JournalWriter;
use lab_store::{Project, Store};

use crate::Run;
use crate::per_process::PerProcess;
use crate::thread::spawn_quiet;

/// Runs ended and not yet finished, and what went wrong finishing others.
#[derive(Default)]
struct Queue {
    ended: Vec<Arc<Run>>,
    /// Whether the thread is finishing a batch it took.
    busy: bool,
    /// The thread, once started.
    thread: Option<JoinHandle<()>>,
    /// Whether the thread holds the index open.
    store_open: bool,
    /// Asks the thread to close the index once it has nothing to do.
    release: bool,
    problems: Vec<String>,
}

/// The queue and its signals: this process's (a forked child gets new ones,
/// see [`after_fork_in_child`]).
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Rung when runs are handed over.
    work: Condvar,
    /// Rung when the thread has finished everything handed over.
    idle: Condvar,
    /// Rung when the thread takes the runs waiting.
    taken: Condvar,
}

static SHARED: PerProcess<Shared> = PerProcess::new();

fn shared() -> &'static Shared {
    SHARED.get()
}

fn queue() -> MutexGuard<'static, Queue> {
    shared()
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// How many ended runs may wait for the `lab-finish` thread before the
/// thread that ends the next one waits for it to take them: a loop of short
/// runs far ahead of the syncs and the index holds no more than this many
/// runs' journals open (and twice this many unfinished, with the batch the
/// thread is finishing).
pub(crate) const MAX_WAITING: usize = 256;

/// Hands an ended run (its End record written) to the `lab-finish` thread,
/// starting it if it is not running. Waits while [`MAX_WAITING`] runs are
/// waiting already, until the thread takes them.
pub(crate) fn hand_over(run: Arc<Run>) -> std::io::Result<()> {
    let s = shared();
    let mut q = queue();
    if q.thread.is_none() {
        q.thread = Some(spawn_quiet("lab-finish", work)?);
    }
    while q.ended.len() >= MAX_WAITING {
        s.work.notify_one();
        q = s.taken.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
    q.ended.push(run);
    drop(q);
    shared().work.notify_one();
    Ok(())
}

/// How long the thread keeps the index open with no run to finish.
const KEEP_OPEN: Duration = Duration::from_secs(1);

/// Waits until every run handed over is closed, synced and indexed, and the
/// index closed (so its write-ahead log is checkpointed, as a process's
/// exit expects). Returns what failed since the last call.
pub(crate) fn wait() -> Vec<String> {
    let s = shared();
    let mut q = queue();
    while q.thread.is_some() && (q.busy || !q.ended.is_empty() || q.store_open) {
        q.release = true;
        s.work.notify_all();
        q = s.idle.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
    q.release = false;
    std::mem::take(&mut q.problems)
}

/// In a child right after `fork`: the thread is the parent's, and so are
/// the runs it has yet to finish, and the queue's lock, which the thread
/// may have held at the fork. The child gets a queue of its own; the
/// parent's is left untouched (its runs' copies of their journals are
/// dropped with the other runs the child inherited: they must not be
/// closed or indexed here). Returns whether the thread may have held
/// journals of its own at the fork (a batch it was closing, which no run
/// holds any more): the child then looks for them by path.
pub(crate) fn after_fork_in_child() -> bool {
    let busy = SHARED.get().queue.try_lock().map_or(true, |q| q.busy);
    SHARED.renew();
    // What the parent's connections hold, SQLite's memory of its locks
    // says this process holds: a connection of its own could wait for them.
    if lab_store::index_opened_in_process() {
        FOLD_LEFT_TO_READERS.store(true, Ordering::Relaxed);
    }
    busy
}

/// Set in a child forked from a process that had an index open: the runs it
/// ends are closed and synced, and folded by the next reader of the index
/// (as a run whose process was killed is) rather than by this process.
static FOLD_LEFT_TO_READERS: AtomicBool = AtomicBool::new(false);

/// The thread: takes every run ended so far, finishes them, and again.
/// Between batches it keeps the index open, for a second, or until
/// [`wait`] asks for it to be closed.
fn work() {
    let s = shared();
    let mut store: Option<(Project, Store)> = None;
    loop {
        let mut q = queue();
        while q.ended.is_empty() {
            if store.is_none() {
                q = s.work.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let let_go = q.release || {
                let (guard, waited) = s
                    .work
                    .wait_timeout(q, KEEP_OPEN)
                    .unwrap_or_else(PoisonError::into_inner);
                q = guard;
                waited.timed_out() || q.release
            };
            if let_go && q.ended.is_empty() {
                // Closed outside the lock: SQLite checkpoints its log.
                drop(q);
                store = None;
                q = queue();
                q.store_open = false;
                s.idle.notify_all();
            }
        }
        q.busy = true;
        let batch = std::mem::take(&mut q.ended);
        drop(q);
        s.taken.notify_all();
        let problems =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| finish(&batch, &mut store)))
                .unwrap_or_else(|_| {
                    // A store left in the middle of something is not used again.
                    store = None;
                    vec!["a background thread of Lab panicked".to_owned()]
                });
        drop(batch);
        let mut q = queue();
        q.problems.extend(problems);
        q.busy = false;
        q.store_open = store.is_some();
        drop(q);
        s.idle.notify_all();
    }
}

/// Closes, syncs and indexes `runs`; returns what went wrong.
fn finish(runs: &[Arc<Run>], store: &mut Option<(Project, Store)>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut journals: Vec<(&Arc<Run>, JournalWriter)> = Vec::new();
    for run in runs {
        // Its `git_*` and `packages` records come before the Close record.
        if let Err(e) = run.join_env() {
            problems.push(e);
        }
        if let Some(journal) = run.take_journal() {
            journals.push((run, journal));
        }
    }
    let (runs_closed, writers): (Vec<_>, Vec<_>) = journals.into_iter().unzip();
    for (run, closed) in runs_closed.iter().zip(JournalWriter::close_all(writers)) {
        if let Err(e) = closed {
            problems.push(format!(
                "run {}: closing the journal failed: {e}",
                run.short_id()
            ));
        }
    }
    // The runs of one project are folded in one transaction.
    for group in runs.chunk_by(|a, b| a.project() == b.project()) {
        for (run, folded) in group.iter().zip(fold(group, store)) {
            if let Err(e) = folded {
                problems.push(format!("run {}: {e}", run.short_id()));
            }
        }
    }
    write_series(runs, store.as_ref(), &mut problems);
    problems
}

/// Writes each ended run's series file (`series.lab`, its metrics in
/// compact columns), once its journal is closed and indexed: until then, and
/// whenever the file is missing, readers read the journal. Then gives back
/// the journal's pages whose points the file holds, once checked against it.
fn write_series(runs: &[Arc<Run>], store: Option<&(Project, Store)>, problems: &mut Vec<String>) {
    use lab_store::series::{self, Written};
    for run in runs {
        let paths = run.project().run_paths(run.short_id());
        match series::write(&paths) {
            Ok(Written::File { .. } | Written::Current) => {}
            Ok(Written::Skipped(_)) => continue,
            Err(e) => {
                problems.push(format!(
                    "run {}: writing its series file failed: {e}",
                    run.short_id()
                ));
                continue;
            }
        }
        // A run sent to a team server is read from its journal by offsets
        // until the server holds it all: its pages stay. So do those of a
        // run this process did not index (left to readers, or a fold that
        // failed): `lab gc` gives them back once the index holds them.
        if matches!(crate::team::config::current(), Ok(Some(_)) | Err(_))
            || FOLD_LEFT_TO_READERS.load(Ordering::Relaxed)
        {
            continue;
        }
        let Some((_, store)) = store.filter(|(p, _)| p == run.project()) else {
            continue;
        };
        if let Err(e) = store.compact_run(run.short_id()) {
            problems.push(format!(
                "run {}: giving back its journal's pages of points failed (`lab gc` tries again): {e}",
                run.short_id()
            ));
        }
    }
}

/// Folds `runs`, all of one project, into its index in one transaction,
/// through the store kept open for the project of the runs before them.
/// Gives each run's result, in order.
fn fold(runs: &[Arc<Run>], store: &mut Option<(Project, Store)>) -> Vec<Result<(), String>> {
    let ok = || runs.iter().map(|_| Ok(())).collect();
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    if FOLD_LEFT_TO_READERS.load(Ordering::Relaxed) {
        return ok();
    }
    let project = first.project();
    if store.as_ref().is_none_or(|(p, _)| p != project) {
        *store = None;
        match Store::open(project.clone()) {
            Ok(opened) => *store = Some((project.clone(), opened)),
            Err(e) => return runs.iter().map(|_| Err(e.to_string())).collect(),
        }
    }
    let Some((_, s)) = store.as_mut() else {
        return ok();
    };
    let shorts: Vec<&str> = runs.iter().map(|r| r.short_id()).collect();
    let folded: Vec<Result<(), String>> = s
        .fold_runs(&shorts)
        .into_iter()
        .map(|r| r.map(drop).map_err(|e| format!("indexing failed: {e}")))
        .collect();
    if folded.iter().any(Result::is_err) {
        // Opened again for the next runs: the failure may have been the
        // connection's (the index replaced under it by `lab reindex`).
        *store = None;
    }
    folded
}
