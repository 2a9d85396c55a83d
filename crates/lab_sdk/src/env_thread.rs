//! The `lab-env` thread: one per process, started with the first run, that
//! gathers each run's slow facts ([`EnvRequest::gather`]: git state and
//! installed packages) in the order the runs started, and appends them to
//! the run's journal. A run's end does not wait for it; the `lab-finish`
//! thread does ([`wait`]), before it closes the journal.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::per_process::PerProcess;
use crate::thread::spawn_quiet;
use crate::{EnvRequest, Run};

/// Where a run's facts are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Gathered {
    /// Waiting for the thread, or being gathered.
    #[default]
    Pending,
    Done,
    /// Gathering them panicked: the run has none.
    Panicked,
}

#[derive(Default)]
struct Queue {
    started: bool,
    /// Each run with what to gather, and the spares' epoch at its start.
    todo: VecDeque<(Arc<Run>, EnvRequest, u64)>,
}

/// The queue and its signals: this process's (a forked child gets new ones:
/// the thread, and the runs it had yet to serve, are the parent's).
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Rung for the thread: a run started.
    work: Condvar,
    /// Rung by the thread: a run's facts are in its journal.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static SHARED: PerProcess<Shared> = PerProcess::new();

pub(crate) fn after_fork_in_child() {
    SHARED.renew();
}

/// Queues `run` for its facts, starting the thread if it is not running;
/// after them, the thread makes spare run folders (`spares`: the epoch
/// [`crate::spare::make_for`] takes).
pub(crate) fn gather_for(run: Arc<Run>, request: EnvRequest, spares: u64) -> std::io::Result<()> {
    let shared = SHARED.get();
    let mut q = shared.lock();
    if !q.started {
        spawn_quiet("lab-env", move || serve(shared))?;
        q.started = true;
    }
    q.todo.push_back((run, request, spares));
    drop(q);
    shared.work.notify_one();
    Ok(())
}

/// Waits until `run`'s facts are in its journal (or failed to be).
pub(crate) fn wait(run: &Run) -> Gathered {
    let shared = SHARED.get();
    let mut q = shared.lock();
    loop {
        let now = *run.gathered();
        if now != Gathered::Pending {
            return now;
        }
        // Queued in a process forked since: no thread here will serve it.
        if !q.started {
            return Gathered::Pending;
        }
        q = shared.done.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
}

fn serve(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        let Some((run, request, spares)) = q.todo.pop_front() else {
            q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        drop(q);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run.append_env(request.gather());
        }));
        let gathered = if outcome.is_ok() {
            Gathered::Done
        } else {
            Gathered::Panicked
        };
        q = shared.lock();
        // Set under the queue's lock, which `wait` holds between looking
        // and waiting: its wake-up is not missed.
        *run.gathered() = gathered;
        shared.done.notify_all();
        if q.todo.is_empty() {
            // Idle: the next run's folder and journal, made ahead.
            drop(q);
            let project = run.project().clone();
            drop(run);
            let _ = std::panic::catch_unwind(|| {
                crate::spare::make_for(&project, spares, || !shared.lock().todo.is_empty());
            });
            q = shared.lock();
        }
    }
}
