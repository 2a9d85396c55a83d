//! A Lab project on disk: its layout, the index built from run journals, and
//! reading runs back.
//!
//! Journals are the truth. The SQLite index (`.lab/index.sqlite`, WAL mode)
//! holds what queries need (runs, parameters, metric summaries, tags,
//! artifacts, models) and how far into each journal it has read. Opening a
//! [`Store`] and calling [`Store::refresh`] folds in every journal tail not yet
//! indexed, so live and crashed runs read up to date.

mod console;
mod cursor;
mod delta;
mod doctor;
mod edit;
mod error;
mod facts;
pub mod fields;
mod fold;
mod fold_index;
pub mod index;
mod media;
mod metrics;
mod pieces;
mod project;
pub mod query;
mod read;
mod received;
mod remove;
mod schema;
mod select;
pub mod series;
mod sqlite;
mod summary;
pub mod user_config;
pub mod views;
pub mod wire;

pub use console::{CONSOLE_TAIL_PREFIX, ConsoleEvent, ConsoleRead, console_events};
pub use cursor::MAX_CURSOR_CHARS;
pub use doctor::{Health, Piece};
pub use edit::{Edit, MAX_NOTE_BYTES, MAX_TAG_KEY_BYTES, check_name};
pub use error::{Error, ErrorKind, Missing};
pub use fold::Issue;
pub use media::{MediaItem, MediaKey, group_media};
pub use metrics::{MetricEvent, metric_events};
pub use project::{
    JOURNAL_FILE, MARKER_FILE, META_FILE, PROJECT_FORMAT, Project, RunPaths, SPARE_DIR, STORE_DIR,
    remove_stale_spare, stale_spares,
};
pub use read::{ArtifactInfo, Detail, MetricSummary, ModelInfo, RunInfo};
pub use select::{Page, Selection, check_cursor, page_of};

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::fold_index::FoldIndex as _;
use crate::sqlite::SqliteIndex;

/// Whether this process has opened an index on disk with SQLite (or the
/// process it was forked from had, before the fork).
static OPENED_ON_DISK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process opened an index on disk, or was forked from one
/// that had. SQLite keeps the locks a process's connections hold on a file
/// in the process's memory, where a forked child finds them as they were
/// at the fork: a connection the child opens to the same file may wait
/// for locks that only the parent's connections could let go. Such a
/// child is better off not writing the index (its readers fold what it
/// wrote).
#[must_use]
pub fn index_opened_in_process() -> bool {
    OPENED_ON_DISK.load(std::sync::atomic::Ordering::Relaxed)
}

/// How long to wait for another process's lock on the index.
const BUSY_TIMEOUT: Duration = Duration::from_mins(1);

/// The size of the index's write-ahead log past which a fold that just
/// committed checkpoints it whole and starts it over ([`Store::keep_log_short`]).
const LOG_LIMIT: u64 = 64 << 20;

/// How long that checkpoint tries, at most, to find no reader still
/// reading the log (each try holds off other writers for up to
/// [`LOG_RESTART_STEP`]); when it does not, the next fold tries again.
const LOG_RESTART_WAIT: Duration = Duration::from_millis(250);

/// How long one try waits for a lock, and the pause between tries.
const LOG_RESTART_STEP: Duration = Duration::from_millis(2);

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
    /// Why the index on disk could not be written, when this store folds
    /// into a copy of it in memory instead (a full disk, a read-only project),
    /// or is damaged, when it reads every journal into memory.
    in_memory: Option<String>,
    /// Whether `conn` holds only what the journals said (in memory): an
    /// index that cannot be damaged.
    from_journals: bool,
    /// The runs read from their journals into memory, and why, once a read
    /// found the index damaged (SQLite finds a damaged page only when a
    /// query reaches it): every later read uses them.
    rebuilt: OnceCell<(Connection, String)>,
    /// [`LOG_LIMIT`], smaller in tests.
    log_limit: u64,
}

/// Whether an error means the index cannot be written here (while it can
/// still be read): the disk is full, or the project is read-only.
fn unwritable(e: &Error) -> bool {
    match e {
        Error::Sqlite(e) => matches!(
            e.sqlite_error_code(),
            Some(
                rusqlite::ErrorCode::DiskFull
                    // SQLite's own writes failing (its WAL index on a full
                    // disk says this).
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::PermissionDenied
            )
        ),
        Error::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::ReadOnlyFilesystem
                | std::io::ErrorKind::PermissionDenied
        ),
        _ => false,
    }
}

/// Whether the index is damaged, as SQLite says (not a database, corrupt),
/// or as a value Lab never writes in its column shows (another type, text
/// that is not UTF-8, an unknown status): SQLite keeps no checksums.
fn is_damage(e: &Error) -> bool {
    match e {
        Error::DamagedIndex { .. } => true,
        Error::Sqlite(err) => is_sqlite_damage(err),
        _ => false,
    }
}

/// [`is_damage`] of an error of SQLite's.
fn is_sqlite_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    ) || matches!(
        err,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::Utf8Error(..)
    )
}

/// The index file cannot be read as a database: [`Error::DamagedIndex`].
fn damaged(e: Error, path: &Path) -> Error {
    match &e {
        Error::Sqlite(err) if is_sqlite_damage(err) => Error::DamagedIndex {
            path: path.to_owned(),
            reason: err.to_string(),
        },
        _ => e,
    }
}

/// `f` on `conn` in one read transaction (unless `conn` is in one already):
/// every statement of the read sees the index as it was when the first one
/// ran, and SQLite takes its locks and checks the files once for the whole
/// read, where each statement on its own took two `fcntl` locks and an
/// `fstat`: 15,000 system calls for a listing of 5,000 runs read one by one.
fn in_one_read<T>(
    conn: &Connection,
    f: &impl Fn(&Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    if !conn.is_autocommit() {
        return f(conn);
    }
    conn.execute_batch("BEGIN")?;
    let out = f(conn);
    // A read writes at most its temporary tables; SQLite may have ended
    // the transaction already on some errors.
    if !conn.is_autocommit() {
        if out.is_ok() {
            conn.execute_batch("COMMIT")?;
        } else {
            // The read's own error is the one to report.
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    out
}

/// An empty index in memory, for the runs the journals hold.
fn empty_in_memory() -> Result<Connection, Error> {
    let conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    schema::migrate(&conn)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the index of `project`. When the index
    /// cannot be written (a full disk, a read-only project), it is read into
    /// memory instead: reading works, and folds go to the copy
    /// ([`Store::in_memory`] says why).
    ///
    /// A damaged index is never a dead end either: the runs are then read
    /// from the journals into memory, until `lab reindex`
    /// ([`Store::open_to_rebuild`]) replaces it. That holds for damage SQLite
    /// finds later, when a fold or a read reaches it, too.
    pub fn open(project: Project) -> Result<Self, Error> {
        let path = project.index_path();
        match Self::open_on_disk(project.clone()) {
            Ok(store) => {
                store.restore_interrupted();
                Ok(store)
            }
            Err(e) if unwritable(&e) => Self::open_copy(project, &e.to_string()),
            Err(e) => match damaged(e, &path) {
                e @ Error::DamagedIndex { .. } => Ok(Self {
                    project,
                    conn: empty_in_memory()?,
                    in_memory: Some(e.to_string()),
                    from_journals: true,
                    rebuilt: OnceCell::new(),
                    log_limit: LOG_LIMIT,
                }),
                e => Err(e),
            },
        }
    }

    fn open_on_disk(project: Project) -> Result<Self, Error> {
        OPENED_ON_DISK.store(true, std::sync::atomic::Ordering::Relaxed);
        let conn = Connection::open(project.index_path())?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching a new index to WAL, and migrating it, take locks that
        // SQLite does not always wait for: several processes opening a new
        // project at once retry instead of failing.
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // A fold of a large journal is one large transaction; give the WAL
        // file back after each checkpoint rather than keeping its high mark.
        conn.pragma_update(None, "journal_size_limit", 4_i64 << 20)?;
        // Read pages through a memory map rather than a system call each:
        // listing ten thousand runs touches tens of thousands of pages.
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)?;
        migrate_waiting(&conn)?;
        Ok(Self {
            project,
            conn,
            in_memory: None,
            from_journals: false,
            rebuilt: OnceCell::new(),
            log_limit: LOG_LIMIT,
        })
    }

    /// A store over a copy in memory of what the index on disk holds (if it
    /// can be read at all), for a project whose index cannot be written.
    fn open_copy(project: Project, why: &str) -> Result<Self, Error> {
        let mut conn = Connection::open_in_memory()?;
        copy_index_into(&project.index_path(), &mut conn)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        schema::migrate(&conn)?;
        Ok(Self {
            project,
            conn,
            in_memory: Some(why.to_owned()),
            from_journals: false,
            rebuilt: OnceCell::new(),
            log_limit: LOG_LIMIT,
        })
    }

    /// Why this store folds into memory instead of the index on disk (which
    /// cannot be written: a full disk, a read-only project; or is damaged),
    /// if it does.
    #[must_use]
    pub fn in_memory(&self) -> Option<&str> {
        self.in_memory
            .as_deref()
            .or_else(|| self.rebuilt.get().map(|(_, why)| why.as_str()))
    }

    /// The connection reads go to.
    fn db(&self) -> &Connection {
        self.rebuilt.get().map_or(&self.conn, |(conn, _)| conn)
    }

    /// Runs the read `f`. When it finds the index damaged, every journal is
    /// read into memory, and `f` runs there (as does every later read).
    fn read<T>(&self, f: impl Fn(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        match in_one_read(self.db(), &f) {
            Err(e) if is_damage(&e) && !self.from_journals && self.rebuilt.get().is_none() => {
                let why = damaged(e, &self.project.index_path()).to_string();
                let mut conn = empty_in_memory()?;
                fold::refresh(&self.project, &mut SqliteIndex::new(&mut conn))?;
                in_one_read(&self.rebuilt.get_or_init(move || (conn, why)).0, &f)
            }
            Err(e) => Err(damaged(e, &self.project.index_path())),
            ok => ok,
        }
    }

    /// Goes on with the runs a read put in memory, if one found the index
    /// damaged: what changes the index changes them.
    pub(crate) fn keep_rebuilt(&mut self) {
        if let Some((conn, why)) = self.rebuilt.take() {
            self.conn = conn;
            self.in_memory = Some(why);
            self.from_journals = true;
        }
    }

    /// Reads every journal into a new index in memory, the one on disk being
    /// damaged (`e` says how), and goes on there.
    fn rebuild_in_memory(&mut self, e: Error) -> Result<(), Error> {
        let why = damaged(e, &self.project.index_path()).to_string();
        self.conn = empty_in_memory()?;
        self.in_memory = Some(why);
        self.from_journals = true;
        Ok(())
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
    /// unreadable ones (which are skipped). When the index turns out not to
    /// be writable, the fold goes on in a copy of it in memory.
    pub fn refresh(&mut self) -> Result<Vec<Issue>, Error> {
        let issues = self.refresh_journals()?;
        match sqlite::fold_edited(&self.project, &mut self.conn) {
            Err(e) if unwritable(&e) && self.in_memory.is_none() => {
                self.move_to_memory(&e.to_string())?;
                sqlite::fold_edited(&self.project, &mut self.conn)?;
            }
            Err(e) => return Err(damaged(e, &self.project.index_path())),
            Ok(()) => {}
        }
        self.keep_log_short();
        Ok(issues)
    }

    /// Checkpoints the index's write-ahead log whole and starts it over once
    /// it is longer than [`LOG_LIMIT`]. SQLite's own checkpoint after a
    /// commit copies the log into the database only up to what the oldest
    /// reader still reads, and the log starts over only once all of it is
    /// copied: with several processes folding at once, some fold is always
    /// reading, so the log was never started over and grew without end
    /// (6.9 GB after 130,000 runs from 8 processes, every read looking
    /// through it). This checkpoint waits, up to [`LOG_RESTART_WAIT`], for
    /// the readers of the log's older part to finish (readers starting
    /// meanwhile read the database, not the log), then empties the file.
    /// It changes nothing a reader sees; when it cannot finish in time, the
    /// next fold tries again.
    fn keep_log_short(&self) {
        if self.in_memory.is_some() {
            return;
        }
        let mut log = self.project.index_path().into_os_string();
        log.push("-wal");
        if !std::fs::metadata(&log).is_ok_and(|m| m.len() > self.log_limit) {
            return;
        }
        // SQLite gives up waiting for the log's readers at the first one
        // still busy after its wait: a reader that starts again at once
        // (another process's next fold) can keep one checkpoint from
        // finishing, not several a few milliseconds apart.
        let deadline = std::time::Instant::now() + LOG_RESTART_WAIT;
        if self.conn.busy_timeout(LOG_RESTART_STEP).is_err() {
            return;
        }
        loop {
            let busy = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_or_else(|e| is_busy(&e), |busy| busy != 0);
            if !busy || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(LOG_RESTART_STEP);
        }
        // When this fails, so will the next write, which reports it.
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
    }

    /// Folds the edits of run `short` (indexed as `id`) from its meta
    /// journal, as [`Store::refresh`] would.
    pub(crate) fn fold_edits(&mut self, short: &str, id: &str) -> Result<(), Error> {
        self.keep_rebuilt();
        match sqlite::fold_edits(&self.project, &mut self.conn, short, id) {
            Err(e) if unwritable(&e) && self.in_memory.is_none() => {
                self.move_to_memory(&e.to_string())?;
                sqlite::fold_edits(&self.project, &mut self.conn, short, id)
            }
            other => other,
        }
    }

    /// [`Store::refresh`] of the training journals.
    fn refresh_journals(&mut self) -> Result<Vec<Issue>, Error> {
        self.keep_rebuilt();
        match fold::refresh(&self.project, &mut SqliteIndex::new(&mut self.conn)) {
            Err(e) if unwritable(&e) && self.in_memory.is_none() => {
                self.move_to_memory(&e.to_string())?;
                self.refresh_journals()
            }
            Err(e) if is_damage(&e) && !self.from_journals => {
                self.rebuild_in_memory(e)?;
                fold::refresh(&self.project, &mut SqliteIndex::new(&mut self.conn))
            }
            Err(e) => Err(damaged(e, &self.project.index_path())),
            ok => ok,
        }
    }

    /// Goes on in a copy in memory of what the open index holds.
    fn move_to_memory(&mut self, why: &str) -> Result<(), Error> {
        let mut copy = Connection::open_in_memory()?;
        {
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut copy)?;
            backup.run_to_completion(1024, Duration::ZERO, None)?;
        }
        self.conn = copy;
        self.in_memory = Some(why.to_owned());
        Ok(())
    }

    /// Gives back the pages of run `short_id`'s journal whose points its
    /// series file holds ([`series::compact`]), once the index holds the
    /// whole journal: a fold that had read part of it could not read the
    /// rest of its points from the journal any more.
    pub fn compact_run(&self, short_id: &str) -> Result<series::Compacted, Error> {
        use rusqlite::OptionalExtension;
        let paths = self.project.run_paths(short_id);
        let len = match std::fs::metadata(&paths.journal) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(series::Compacted::Skipped("no journal"));
            }
            Err(e) => return Err(e.into()),
        };
        let indexed: Option<i64> = self
            .conn
            .query_row(
                "SELECT journal_offset FROM runs WHERE short_id = ?1",
                [short_id],
                |r| r.get(0),
            )
            .optional()?;
        if indexed.and_then(|o| u64::try_from(o).ok()) != Some(len) {
            return Ok(series::Compacted::Skipped(
                "a journal not indexed to its end",
            ));
        }
        series::compact(&paths)
    }

    /// Folds the journal of one run into the index. Returns the damage found
    /// in it, if its writer is gone. When the index turns out not to be
    /// writable, the fold goes on in a copy of it in memory, as
    /// [`Store::refresh`] does.
    pub fn fold_run(&mut self, short_id: &str) -> Result<Vec<Issue>, Error> {
        self.keep_rebuilt();
        match fold::fold_run(
            &self.project,
            &mut SqliteIndex::new(&mut self.conn),
            short_id,
        ) {
            Err(e) if unwritable(&e) && self.in_memory.is_none() => {
                self.move_to_memory(&e.to_string())?;
                self.fold_run(short_id)
            }
            Err(e) if is_damage(&e) && !self.from_journals => {
                self.rebuild_in_memory(e)?;
                let issues = fold::refresh(&self.project, &mut SqliteIndex::new(&mut self.conn))?;
                Ok(issues.into_iter().filter(|i| i.run() == short_id).collect())
            }
            Err(e) => Err(damaged(e, &self.project.index_path())),
            ok => {
                self.keep_log_short();
                ok
            }
        }
    }

    /// Folds the journals of `short_ids` into the index in one transaction,
    /// as a process that ended them does: one commit for the lot rather
    /// than one per run. When any of them fails, nothing of the batch is
    /// kept and each is folded on its own with [`Store::fold_run`] (which
    /// goes on in memory when the index cannot be written), so one bad run
    /// costs the others nothing. Returns each run's result, in order.
    pub fn fold_runs(&mut self, short_ids: &[&str]) -> Vec<Result<Vec<Issue>, Error>> {
        self.keep_rebuilt();
        if short_ids.len() > 1 {
            let mut index = SqliteIndex::new(&mut self.conn);
            let batch = index.begin_batch().and_then(|()| {
                short_ids
                    .iter()
                    .map(|short| fold::fold_run(&self.project, &mut index, short))
                    .collect::<Result<Vec<_>, Error>>()
            });
            let ended = index.end_batch(batch.is_ok());
            if let (Ok(issues), Ok(())) = (batch, ended) {
                self.keep_log_short();
                return issues.into_iter().map(Ok).collect();
            }
        }
        short_ids.iter().map(|short| self.fold_run(short)).collect()
    }

    /// A number that changes whenever the indexed runs change: two equal
    /// numbers mean any query gives the same answer (for caching answers).
    pub fn generation(&self) -> Result<i64, Error> {
        self.read(schema::generation)
    }

    /// Empties the index and rebuilds it from the journals alone.
    pub fn reindex(&mut self) -> Result<Vec<Issue>, Error> {
        self.keep_rebuilt();
        // Held while the indexes built at the end are missing: another
        // process that finds them missing makes them only when it can take
        // this (the rebuild that dropped them was interrupted). Two
        // rebuilds take turns.
        let held = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.project.rebuild_lock_path())
            .ok()
            .filter(|f| f.lock().is_ok());
        schema::clear(&self.conn)?;
        if held.is_some() {
            schema::defer_indexes(&self.conn)?;
        }
        // Every page of the index is written again: keep them in memory
        // (64 MiB at most) rather than reading back ones just written.
        let cache: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        self.conn.pragma_update(None, "cache_size", -65_536_i64)?;
        let issues = self.refresh();
        let restored = schema::restore_indexes(&self.conn);
        self.conn.pragma_update(None, "cache_size", cache)?;
        drop(held);
        restored?;
        issues
    }

    /// Makes the indexes that an interrupted `lab reindex` dropped
    /// ([`schema::defer_indexes`]), unless a rebuild still runs. Queries
    /// give the same answers without them, only slower; a failure here
    /// (a read-only project) leaves them so.
    fn restore_interrupted(&self) {
        if !schema::indexes_deferred(&self.conn).unwrap_or(false) {
            return;
        }
        let free = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.project.rebuild_lock_path())
            .is_ok_and(|f| f.try_lock().is_ok());
        if free {
            let _ = schema::restore_indexes(&self.conn);
        }
    }

    /// Opens the index of `project` to rebuild it, as `lab reindex` does: an
    /// index that cannot be read as a database is moved aside first (to
    /// `index.sqlite.damaged.N`, with its WAL files) and a new one made.
    /// Returns the store and where a damaged index was moved.
    pub fn open_to_rebuild(project: Project) -> Result<(Self, Option<PathBuf>), Error> {
        let path = project.index_path();
        // A damaged page may lie where nothing reads when the file is opened:
        // the whole file is checked, as a rebuild reads every journal anyway.
        let opened = Self::open_on_disk(project.clone()).and_then(|store| {
            match store.check_index()?.first() {
                Some(problem) => Err(Error::DamagedIndex {
                    path: path.clone(),
                    reason: problem.clone(),
                }),
                None => Ok(store),
            }
        });
        match opened.map_err(|e| damaged(e, &path)) {
            Ok(store) => Ok((store, None)),
            Err(Error::DamagedIndex { path, .. }) => {
                let kept = move_aside(&path)?;
                Ok((Self::open_on_disk(project)?, Some(kept)))
            }
            Err(e) => Err(e),
        }
    }
}

/// Migrates, retrying while another process holds a lock SQLite does not
/// wait for.
fn migrate_waiting(conn: &Connection) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match schema::migrate(conn) {
            Err(Error::Sqlite(e)) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Copies the index at `path`, opened read-only and without taking locks
/// or writing anything beside it, into `into`. Nothing is copied when there
/// is no index or it cannot be read: the copy then starts empty and folds
/// every journal.
fn copy_index_into(path: &Path, into: &mut Connection) -> Result<(), Error> {
    if !path.exists() {
        return Ok(());
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let Ok(disk) = Connection::open_with_flags(uri, flags) else {
        return Ok(());
    };
    let copied = {
        let backup = rusqlite::backup::Backup::new(&disk, into)?;
        backup.run_to_completion(1024, Duration::ZERO, None).is_ok()
    };
    if !copied {
        // Unreadable after all: start from nothing.
        *into = Connection::open_in_memory()?;
    }
    Ok(())
}

/// A path as a `file:` URI path: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Moves a damaged index and its WAL files aside, to the first free
/// `index.sqlite.damaged.N`. Returns the new path of the index.
fn move_aside(path: &Path) -> Result<PathBuf, Error> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut n = 1;
    let target = loop {
        let candidate = path.with_file_name(format!("{name}.damaged.{n}"));
        if !candidate.exists() {
            break candidate;
        }
        n += 1;
    };
    fs_err::rename(path, &target)?;
    for suffix in ["-wal", "-shm"] {
        let side = path.with_file_name(format!("{name}{suffix}"));
        if side.exists() {
            fs_err::rename(
                &side,
                target.with_file_name(format!("{name}.damaged.{n}{suffix}")),
            )?;
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_of_one_read_see_one_index() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let other = Connection::open(project.index_path()).unwrap();
        let store = Store::open(project).unwrap();
        let first = store.read(schema::generation).unwrap();
        let (before, after) = store
            .read(|db| {
                let before = schema::generation(db)?;
                // Another process changes the index mid-read.
                schema::bump_generation(&other)?;
                Ok((before, schema::generation(db)?))
            })
            .unwrap();
        assert_eq!((before, after), (first, first));
        // The read is over: the next one sees the change.
        assert_eq!(store.read(schema::generation).unwrap(), first + 1);
        assert!(store.db().is_autocommit());
    }

    /// Writes and folds `runs` runs of ten parameters and ten metrics each;
    /// returns the longest the write-ahead log was after a fold.
    fn fold_runs_beside_a_reader(limit: u64, runs: i64) -> u64 {
        use lab_journal::JournalWriter;
        use lab_types::{MetricPoint, Record, Status, Value};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let mut store = Store::open(project.clone()).unwrap();
        store.log_limit = limit;
        let log = dir.path().join(".lab/index.sqlite-wal");
        // Another process's reads, one after the other without a pause, as
        // the folds of several processes writing at once are: one of them
        // always holds a snapshot older than the last commit.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (stop, path) = (Arc::clone(&stop), project.index_path());
            std::thread::Builder::new()
                .name("reader".into())
                .spawn(move || {
                    let conn = Connection::open(path).unwrap();
                    conn.busy_timeout(BUSY_TIMEOUT).unwrap();
                    let mut reads = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        conn.execute_batch("BEGIN").unwrap();
                        let n: i64 = conn
                            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
                            .unwrap();
                        assert!(n >= 0);
                        std::thread::sleep(Duration::from_millis(1));
                        conn.execute_batch("COMMIT").unwrap();
                        reads += 1;
                    }
                    reads
                })
                .unwrap()
        };
        let start = 1_800_000_000_000_000_000_i64;
        let mut longest = 0;
        for r in 0..runs {
            let t = start + r * 1_000_000_000;
            let (id, paths) = project.claim_run(t).unwrap();
            let mut w = JournalWriter::create(&paths.journal).unwrap();
            w.append(&Record::Start {
                run: id,
                time_nanos: t,
                experiment: "e".into(),
            })
            .unwrap();
            for k in 0..10_u32 {
                w.append(&Record::Param {
                    time_nanos: t,
                    key: format!("p{k}"),
                    value: Value::Float(f64::from(k) / 7.0),
                })
                .unwrap();
                w.append(&Record::MetricKey {
                    key: k,
                    name: format!("m{k}"),
                })
                .unwrap();
                w.append_metric(
                    t,
                    &MetricPoint {
                        key: k,
                        step: 0,
                        value: f64::from(k) / 3.0,
                    },
                )
                .unwrap();
            }
            w.append(&Record::End {
                time_nanos: t + 1,
                status: Status::Finished,
                error: None,
            })
            .unwrap();
            w.close().unwrap();
            store.fold_run(&id.short()).unwrap();
            longest = longest.max(std::fs::metadata(&log).map_or(0, |m| m.len()));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(
            store.count(&crate::Selection::default()).unwrap(),
            usize::try_from(runs).unwrap()
        );
        longest
    }

    fn index_names(project: &Project) -> Vec<String> {
        let conn = Connection::open(project.index_path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_rebuild_makes_the_indexes_it_dropped_again_even_when_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let mut store = Store::open(project.clone()).unwrap();
        let all = index_names(&project);
        for name in schema::DEFERRED_INDEXES {
            assert!(all.iter().any(|n| n == name), "{name} in {all:?}");
        }
        store.reindex().unwrap();
        assert_eq!(index_names(&project), all);
        assert!(!schema::indexes_deferred(&store.conn).unwrap());

        // A rebuild killed while they were dropped, twice over: their SQL
        // is kept once.
        schema::defer_indexes(&store.conn).unwrap();
        schema::defer_indexes(&store.conn).unwrap();
        assert!(index_names(&project).len() == all.len() - schema::DEFERRED_INDEXES.len());
        drop(store);
        // While a rebuild holds its lock, an opener leaves them to it.
        let rebuilding = std::fs::File::create(project.rebuild_lock_path()).unwrap();
        rebuilding.lock().unwrap();
        drop(Store::open(project.clone()).unwrap());
        assert_ne!(index_names(&project), all);
        drop(rebuilding);
        // Once none does, the next opener makes them.
        let store = Store::open(project.clone()).unwrap();
        assert_eq!(index_names(&project), all);
        assert!(!schema::indexes_deferred(&store.conn).unwrap());
    }

    #[test]
    fn the_log_starts_over_while_other_connections_keep_reading() {
        let limit = 256 << 10;
        // SQLite's own checkpoints alone: the log only grows.
        let unchecked = fold_runs_beside_a_reader(u64::MAX, 300);
        assert!(unchecked > 4 * limit, "the log reached {unchecked} bytes");
        // Past the limit it is checkpointed whole and emptied.
        let kept = fold_runs_beside_a_reader(limit, 300);
        assert!(kept < 2 * limit, "the log reached {kept} bytes");
    }
}
