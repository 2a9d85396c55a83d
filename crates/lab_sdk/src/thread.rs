//! Lab's own background threads: named, and deaf to the signals meant for
//! the script.

use std::thread::JoinHandle;

/// Spawns one of Lab's named background threads with every asynchronous
/// signal blocked, so that a Ctrl-C (or a SIGTERM) goes to the process's
/// other threads: Python runs signal handlers in its main thread, and wakes
/// that thread from a blocking call (`time.sleep`, a read) only when the
/// signal is delivered to it. Taken by a Lab thread, a Ctrl-C in the first
/// moments of a run waited for the blocking call to end. The new thread
/// inherits the mask of the thread that spawns it, which has its own mask
/// back right after.
pub(crate) fn spawn_quiet<F, T>(name: &str, f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let previous = signals::block_asynchronous();
    let spawned = std::thread::Builder::new().name(name.into()).spawn(f);
    signals::restore(previous);
    spawned
}

#[cfg(unix)]
mod signals {
    /// Blocks every signal but those a fault raises in the faulting thread
    /// (which must not be blocked), and returns the mask to restore.
    pub(super) fn block_asynchronous() -> Option<libc::sigset_t> {
        // SAFETY: the sets are initialised by `sigemptyset`/`sigfillset`
        // before use, and `pthread_sigmask` only reads `set` and writes
        // `previous`, both valid for the call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&raw mut set);
            for fault in [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGFPE,
                libc::SIGILL,
                libc::SIGTRAP,
                libc::SIGABRT,
                libc::SIGSYS,
            ] {
                libc::sigdelset(&raw mut set, fault);
            }
            libc::sigemptyset(&raw mut previous);
            (libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, &raw mut previous) == 0)
                .then_some(previous)
        }
    }

    pub(super) fn restore(previous: Option<libc::sigset_t>) {
        if let Some(previous) = previous {
            // SAFETY: `previous` is the mask `pthread_sigmask` returned.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, &raw const previous, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(not(unix))]
mod signals {
    pub(super) fn block_asynchronous() -> Option<()> {
        None
    }

    pub(super) fn restore(_: Option<()>) {}
}
