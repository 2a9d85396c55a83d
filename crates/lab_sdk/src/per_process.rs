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

use std::os::fd::{IntoRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Closes a forked child's copy of a descriptor that the parent's memory
/// holds, which the child may not have: `fork` copies the descriptors before
/// the memory, so one that another thread of the parent opened meanwhile is
/// in the child's memory but not among its descriptors (dropping it as an
/// `OwnedFd` would abort, a closed descriptor being taken for a double
/// close). Right after the fork, with no other thread, the number is either
/// that copy or free: closing it closes nothing else.
pub(crate) fn close_inherited(fd: OwnedFd) {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` was given up by its owner just above and is not used
    // again. `EBADF` (the copy the child lacks) is the one failure expected,
    // and nothing is left to do about any other.
    unsafe { libc::close(raw) };
}

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
