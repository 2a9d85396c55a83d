//! The server's index connections, and noticing when the index file under
//! them is replaced.
//!
//! SQLite connections are not shared between threads: each request takes one
//! from the pool, or opens one, and gives it back. They stay open between
//! requests, so a connection keeps reading the file it opened even after
//! `lab reindex` rebuilt the index into a new file, or a user deleted it.
//! Each time a connection is taken, the file at the index's path (device and
//! inode, one `stat`) is compared with the pool's: when it changed, the epoch
//! moves on, the connections to the old file are closed, the caller forgets
//! what it read from it, and connections to the file now there are opened.
//!
//! A connection to the old file may still be serving a request then. A new
//! connection is opened only once it is given back: when only the database
//! file was removed, its `-wal` and `-shm` files are still there, and two
//! connections in one process, one to each file, would share them.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lab_store::{Project, Store};

/// At most this many connections wait in the pool.
const KEPT: usize = 8;

/// How long a new connection waits for those to an old file to be given
/// back: they serve one request each.
const STALE_WAIT: Duration = Duration::from_secs(10);

/// A file as the file system names it: its device and inode.
type FileKey = (u64, u64);

/// The file at `path`, if there is one.
fn file_key(path: &std::path::Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The index connections of one project.
pub(crate) struct Pool {
    project: Project,
    slots: Mutex<Slots>,
    /// Signalled when a connection is given back.
    returned: Condvar,
}

struct Slots {
    /// Connections not in use, all to `file`.
    stores: Vec<Store>,
    /// The file at the index's path when last looked at (`None`: none).
    file: Option<FileKey>,
    /// Moves on each time `file` changes.
    epoch: u64,
    /// Connections in use, to `file`.
    lent: usize,
    /// Connections in use, to files before it.
    lent_stale: usize,
}

/// A connection taken from the pool; given back when dropped, also when
/// the request using it panics.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    store: Option<Store>,
    epoch: u64,
}

impl Lease<'_> {
    /// The connection.
    pub(crate) fn store(&mut self) -> &mut Store {
        match &mut self.store {
            Some(store) => store,
            None => unreachable!("a lease handed out holds a connection until dropped"),
        }
    }

    /// The epoch of the file it has open: equal epochs, same file.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.give_back(self.store.take(), self.epoch);
    }
}

impl Pool {
    /// A pool for `project`, with `first` (a connection just opened) in it if
    /// the index file did not change while it opened.
    pub(crate) fn new(project: Project, first: Store, file_before: Option<FileKey>) -> Self {
        let file = file_key(&project.index_path());
        let stores = if file.is_some() && file == file_before {
            vec![first]
        } else {
            Vec::new()
        };
        Self {
            project,
            slots: Mutex::new(Slots {
                stores,
                file,
                epoch: 0,
                lent: 0,
                lent_stale: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// The file at the index's path now, for [`Pool::new`].
    pub(crate) fn file_now(project: &Project) -> Option<FileKey> {
        file_key(&project.index_path())
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection to the index file now at the index's path. When that is
    /// another file than before, `changed` runs first (under the pool's lock).
    pub(crate) fn take(&self, changed: impl Fn()) -> Result<Lease<'_>, lab_store::Error> {
        let path = self.project.index_path();
        // A file that changes again while a connection opens is looked at
        // again; one that keeps changing is read as it is.
        let mut tries = 3;
        loop {
            tries -= 1;
            let (file, epoch) = {
                let mut slots = self.lock();
                let file = file_key(&path);
                if slots.file != file {
                    slots.file = file;
                    slots.epoch += 1;
                    slots.stores.clear();
                    slots.lent_stale += slots.lent;
                    slots.lent = 0;
                    changed();
                }
                if let Some(store) = slots.stores.pop() {
                    slots.lent += 1;
                    let epoch = slots.epoch;
                    return Ok(self.lease(Some(store), epoch));
                }
                let deadline = Instant::now() + STALE_WAIT;
                while slots.lent_stale > 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    slots = self
                        .returned
                        .wait_timeout(slots, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                slots.lent += 1;
                (file, slots.epoch)
            };
            // Counted as lent from here: given back however this ends.
            let mut lease = self.lease(None, epoch);
            lease.store = Some(Store::open(self.project.clone())?);
            // Opened between two looks at the same file: it has that file open.
            if tries == 0 || (file.is_some() && file_key(&path) == file) {
                return Ok(lease);
            }
            // Closed, not pooled: it may have another file open than the epoch's.
            lease.store = None;
        }
    }

    fn lease(&self, store: Option<Store>, epoch: u64) -> Lease<'_> {
        Lease {
            pool: self,
            store,
            epoch,
        }
    }

    fn give_back(&self, store: Option<Store>, epoch: u64) {
        let mut slots = self.lock();
        if epoch == slots.epoch {
            slots.lent = slots.lent.saturating_sub(1);
            if let Some(store) = store
                && slots.stores.len() < KEPT
            {
                slots.stores.push(store);
            }
        } else {
            // Closed before it is counted out, so that a connection to the
            // new file opens only once this one to the old file is gone.
            drop(store);
            slots.lent_stale = slots.lent_stale.saturating_sub(1);
        }
        drop(slots);
        self.returned.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let before = Pool::file_now(&project);
        let store = Store::open(project.clone()).unwrap();
        (dir, Pool::new(project, store, before))
    }

    #[test]
    fn connections_stay_on_one_file_until_it_is_replaced() {
        let (_dir, pool) = pool();
        let changes = std::cell::Cell::new(0);
        let count = || changes.set(changes.get() + 1);
        let first = pool.take(count).unwrap();
        let second = pool.take(count).unwrap();
        assert_eq!((first.epoch(), second.epoch(), changes.get()), (0, 0, 0));
        drop((first, second));
        assert_eq!(pool.lock().stores.len(), 2, "both kept");
        let path = pool.project.index_path();
        let aside = path.with_extension("aside");
        std::fs::rename(&path, &aside).unwrap();
        let third = pool.take(count).unwrap();
        // No file, then the one the pool made: two changes.
        let new_epoch = third.epoch();
        assert!(new_epoch > 0 && changes.get() > 0, "a new file");
        assert!(pool.lock().stores.is_empty(), "the old file's are closed");
        assert!(path.exists(), "a new index was made");
        drop(third);
        assert_eq!(pool.take(count).unwrap().epoch(), new_epoch);
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&aside, &path).unwrap();
        let back = pool.take(count).unwrap().epoch();
        assert!(back > new_epoch, "the old file back is another file");
        assert_eq!(pool.take(count).unwrap().epoch(), back);
    }

    #[test]
    fn a_new_file_is_opened_once_the_old_ones_connections_are_given_back() {
        let (_dir, pool) = pool();
        let old = pool.take(|| ()).unwrap();
        std::fs::remove_file(pool.project.index_path()).unwrap();
        let given_back = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                given_back.store(true, Ordering::SeqCst);
                drop(old);
            });
            let new = pool.take(|| ()).unwrap();
            assert!(
                given_back.load(Ordering::SeqCst),
                "a connection to the new file opened while one to the old was in use"
            );
            assert!(new.epoch() > 0);
        });
    }
}
