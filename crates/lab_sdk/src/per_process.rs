//! State that belongs to one process and that a forked child starts afresh.
//!
//! A child forked while one of Lab's threads held a lock gets the lock held
//! by a thread it does not have: waiting for it would wait forever, and
//! `try_lock` in the child's fork handler only leaves it unusable. So each
//! piece of process-wide state (the queue of the `lab-finish` thread, the
//! sampler's runs, the console's captures) lives behind a pointer that the
//! child's fork handler points at a new, empty value, with locks of its own.
//! The parent's copy is left as it is, never dropped: what it holds (runs,
//! descriptors, thread handles) is the parent's.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, IntoRawFd as _, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt as _;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The device and inode of what `fd` is open on.
pub(crate) fn file_id(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    id_of_raw(fd.as_raw_fd())
}

fn id_of_raw(raw: RawFd) -> Option<(u64, u64)> {
    // SAFETY: the `File` only lends `fstat` the number and is never dropped,
    // so it never closes it; a number not open gives `EBADF`.
    let file = ManuallyDrop::new(unsafe { File::from_raw_fd(raw) });
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// Closes a forked child's copy of a descriptor that the parent's memory
/// holds, if the child has it: the number must still be open on the file
/// `id` names (the device and inode read when it was opened). `fork`
/// copies the descriptors before the memory, so one that another thread of
/// the parent opened meanwhile is in the child's memory but not among its
/// descriptors (dropping it as an `OwnedFd` would abort, a closed
/// descriptor being taken for a double close), and fork handlers that ran
/// before Lab's may have opened something else under that number since.
/// A number open on another file is left alone.
pub(crate) fn close_inherited(fd: OwnedFd, id: Option<(u64, u64)>) {
    let raw = fd.into_raw_fd();
    if id.is_some() && id_of_raw(raw) == id {
        // SAFETY: `raw` was given up by its owner just above, is open on the
        // very file it was opened on, and is not used again.
        unsafe { libc::close(raw) };
    }
}

/// In a forked child: lets go of every descriptor it inherited that holds
/// the lock of a journal of a run or of a spare run folder
/// (`…/.lab/runs/<id>/journal.lab`, `…/.lab/spare/<name>/journal.lab`, as
/// `/proc/self/fd` names them). Right
/// after a fork the child has no journal of its own, and a copy of the
/// parent's would share its lock: a run the parent ended just before the
/// fork (its journal still with the `lab-finish` thread, in no list the
/// child can see) or a spare the parent was making would look live for as
/// long as the child lives. Each such number is pointed at `/dev/null`
/// rather than closed: a writer the child's memory still holds (a run whose
/// lock was held at the fork) may close it one day, and must not close a
/// file the child opened under the same number since.
#[cfg(target_os = "linux")]
pub(crate) fn close_inherited_journals() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let numbers: Vec<RawFd> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let mut null: Option<File> = None;
    for raw in numbers {
        // A cheap test first, so that a process with many descriptors
        // (sockets, pipes) pays a `readlink` for few of them.
        // SAFETY: as in `id_of_raw`: lent for `fstat`, never closed.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(raw) });
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{raw}")) else {
            continue;
        };
        let parts: Vec<_> = target.components().rev().take(4).collect();
        let is_journal = matches!(
            parts.as_slice(),
            [file, _, kind, store]
                if file.as_os_str() == lab_store::JOURNAL_FILE
                    && (kind.as_os_str() == "runs" || kind.as_os_str() == lab_store::SPARE_DIR)
                    && store.as_os_str() == lab_store::STORE_DIR
        );
        // Only a descriptor that holds the journal's lock: a writer's, or
        // one a reader was testing the lock with at the fork. One that
        // user code reads a journal through is left as it is.
        if !is_journal || !holds_flock(raw) {
            continue;
        }
        if null.is_none() {
            null = File::open("/dev/null").ok();
        }
        if let Some(null) = &null {
            // SAFETY: `raw` is open in this process (just listed) on a
            // journal of the parent's, which nothing in the child writes;
            // `dup3` only swaps what the number refers to, atomically.
            unsafe { libc::dup3(null.as_raw_fd(), raw, libc::O_CLOEXEC) };
        }
    }
}

/// Whether the open file behind `raw` holds an `flock` (a `FLOCK` line in
/// `/proc/self/fdinfo/<raw>`).
#[cfg(target_os = "linux")]
fn holds_flock(raw: RawFd) -> bool {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}")).is_ok_and(|info| {
        info.lines()
            .any(|l| l.starts_with("lock:") && l.contains("FLOCK"))
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn close_inherited_journals() {}

/// A process-wide `T`, made on first use, and made again in a forked child
/// by [`PerProcess::renew`].
pub(crate) struct PerProcess<T> {
    current: AtomicPtr<T>,
}

impl<T: Default> PerProcess<T> {
    pub(crate) const fn new() -> Self {
        Self {
            current: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's value.
    pub(crate) fn get(&self) -> &'static T {
        let mut p = self.current.load(Ordering::Acquire);
        if p.is_null() {
            let made = Box::into_raw(Box::<T>::default());
            p = match self.current.compare_exchange(
                std::ptr::null_mut(),
                made,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => made,
                Err(theirs) => {
                    // SAFETY: `made` came from `Box::into_raw` just above and
                    // was never shared.
                    drop(unsafe { Box::from_raw(made) });
                    theirs
                }
            };
        }
        // SAFETY: a non-null pointer here came from `Box::into_raw` and is
        // never freed (a renewed value's predecessor is leaked), so it lives
        // as long as the process.
        unsafe { &*p }
    }

    /// In a child right after `fork`: a new, empty value in place of the
    /// parent's, which is leaked (its contents are the parent's).
    pub(crate) fn renew(&self) {
        let made = Box::into_raw(Box::<T>::default());
        self.current.store(made, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_renewed_value_is_fresh_and_unlocked() {
        static STATE: PerProcess<Mutex<Vec<u32>>> = PerProcess::new();
        STATE.get().lock().unwrap().push(1);
        let held = STATE.get().lock().unwrap();
        // As in a child forked while another thread held the lock.
        STATE.renew();
        assert!(STATE.get().try_lock().unwrap().is_empty());
        drop(held);
    }
}
