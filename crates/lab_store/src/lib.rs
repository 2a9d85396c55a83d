//! A Lab project on disk: its layout, the index built from run journals, and
//! reading runs back.
//!
//! Journals are the truth. The SQLite index (`.lab/index.sqlite`, WAL mode)
//! holds what queries need (runs, parameters, metric summaries, tags,
//! artifacts, models) and how far into each journal it has read. Opening a
//! [`Store`] and calling [`Store::refresh`] folds in every journal tail not yet
//! indexed, so live and crashed runs read up to date.

mod error;
mod fold;
mod project;
pub mod query;
mod read;
mod remove;
mod schema;
mod select;
mod summary;

pub use error::Error;
pub use fold::Issue;
pub use project::{PROJECT_FORMAT, Project, RunPaths, STORE_DIR};
pub use read::{ArtifactInfo, Detail, MetricSummary, ModelInfo, RunInfo};
pub use select::{Selection, page_of};

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long to wait for another process's lock on the index.
const BUSY_TIMEOUT: Duration = Duration::from_mins(1);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs `f` again while the index is busy, up to [`BUSY_TIMEOUT`].
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// An open project index.
pub struct Store {
    project: Project,
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the index of `project`.
    pub fn open(project: Project) -> Result<Self, Error> {
        let conn = Connection::open(project.index_path())?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching a new index to WAL, and migrating it, take locks that
        // SQLite does not always wait for: several processes opening a new
        // project at once retry instead of failing.
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Read pages through a memory map rather than a system call each:
        // listing ten thousand runs touches tens of thousands of pages.
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match schema::migrate(&conn) {
                Err(Error::Sqlite(e)) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other?,
            }
        }
        Ok(Self { project, conn })
    }

    /// Finds the project for `cwd` (see [`Project::discover`]) and opens its index.
    pub fn discover(cwd: &Path) -> Result<Self, Error> {
        Self::open(Project::discover(cwd)?)
    }

    /// The project this index belongs to.
    #[must_use]
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Folds every journal record not yet indexed into the index, and drops
    /// the rows of runs whose folder is gone. Returns the journals that could
    /// not be folded in whole: damaged ones whose writers are gone, and
    /// unreadable ones (which are skipped).
    pub fn refresh(&mut self) -> Result<Vec<Issue>, Error> {
        fold::refresh(&self.project, &mut self.conn)
    }

    /// Folds the journal of one run into the index.
    pub fn fold_run(&mut self, short_id: &str) -> Result<Option<lab_journal::Damage>, Error> {
        fold::fold_run(&self.project, &mut self.conn, short_id)
    }

    /// A number that changes whenever the indexed runs change: two equal
    /// numbers mean any query gives the same answer (for caching answers).
    pub fn generation(&self) -> Result<i64, Error> {
        schema::generation(&self.conn)
    }

    /// Empties the index and rebuilds it from the journals alone.
    pub fn reindex(&mut self) -> Result<Vec<Issue>, Error> {
        schema::clear(&self.conn)?;
        self.refresh()
    }
}
