//! Console capture: what a run prints on its standard output and error,
//! Python's and native code's alike, recorded as it goes by.
//!
//! The capture works on file descriptors 1 and 2, so C code writing with
//! `printf` or `write(2)` is caught with Python's `print`. For each, the
//! original is kept (a `dup`), and in its place goes
//!
//! - a pseudo-terminal with the original's termios and window size when the
//!   original is a terminal, so `isatty()` answers as before and colours and
//!   progress bars still render (the window size is looked at again four
//!   times a second and passed on when it changes);
//! - a pipe otherwise.
//!
//! A named thread, `lab-console`, reads both, copies every byte to the
//! original at once, then cuts what it read into lines ([`lines::Splitter`])
//! and appends them to the run's journal as Console records, one record per
//! read, under the run's lock for the time of one copy into the journal.
//! The thread is the process's: the first capture starts it, and each
//! capture after hands it its pipes (a loop of short runs starts no thread
//! per run). The
//! run keeps a bounded amount ([`lines::Bound`]): past it, the tail waits in
//! memory until the run ends, behind a `ConsoleCut` record, and meanwhile in
//! two small files beside the journal (`tail`), so that a run killed before
//! its end still shows the last lines it printed.
//!
//! Only one capture runs in a process at a time (file descriptors are the
//! process's): a run started while another is being captured is not
//! captured. When the run ends ([`Capture::stop`]), the originals go back in
//! place, the thread reads what was already written, records it (or, when
//! the thread is idle and nothing waits in the capture's pipes, the ending
//! thread records the unfinished last line and the tail itself), and from
//! then on the thread only forwards what processes forked during the run
//! still write (while it records the next run's lines from new pipes),
//! until they close their copies.

pub mod lines;
#[cfg(unix)]
mod tail;

#[cfg(unix)]
mod unix;

#[cfg(unix)]
pub(crate) use unix::Capture;

/// The console a run keeps when none is asked for: 8 MiB of text.
pub const DEFAULT_LIMIT_BYTES: u64 = 8 << 20;

#[cfg(not(unix))]
pub(crate) struct Capture;

#[cfg(not(unix))]
impl Capture {
    pub(crate) fn start(
        _run: std::sync::Weak<crate::Run>,
        _limit_bytes: u64,
    ) -> std::io::Result<Option<Capture>> {
        Ok(None)
    }
    pub(crate) fn stop(self) {}
    pub(crate) fn let_go_in_forked_child(self) {}
}

/// Waits, up to `limit`, for what processes forked during ended runs wrote
/// after those runs ended to be passed on to the original fds.
pub fn wait_for_forwarding(limit: std::time::Duration) {
    #[cfg(unix)]
    unix::wait_for_forwarding(limit);
    #[cfg(not(unix))]
    let _ = limit;
}

/// Forgets, in a child process right after `fork`, the capture of the
/// parent: its thread is not in the child, and the child's output goes on
/// to the parent's capture until the child starts a run of its own.
pub(crate) fn after_fork_in_child() {
    #[cfg(unix)]
    unix::after_fork_in_child();
}
