//! The server's own tables in PostgreSQL, beside the index (`lab_pg`, schema
//! `lab`): tokens, the web page's sessions, heartbeats, uploads in progress
//! and each run's file list,
//! in schema `lab_team`, with migrations of their own applied on start under
//! an advisory lock. And the connections: a small pool of synchronous
//! clients, used from blocking threads only.
//!
//! None of this is the truth of a run (the journals and blobs in the object
//! store are): tokens and heartbeats are the server's state, uploads are
//! transient, and a file list is sent again by its client.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use postgres::{Client, NoTls};

use crate::error::ApiError;

/// The advisory lock migrations are applied under (one key; the index's
/// migrations take another).
const MIGRATION_LOCK: i64 = 0x4c61_625f_5465_0001;

const MIGRATIONS: &[&str] = &[
    // 1: tokens, heartbeats, uploads, file lists.
    r"
    CREATE TABLE lab_team.tokens (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE,
        role text NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
        project text,
        sha256 text NOT NULL UNIQUE,
        created_nanos bigint NOT NULL,
        revoked_nanos bigint
    );
    CREATE TABLE lab_team.heartbeats (
        project text NOT NULL,
        run text NOT NULL,
        seen_nanos bigint NOT NULL,
        PRIMARY KEY (project, run)
    );
    CREATE TABLE lab_team.uploads (
        id text PRIMARY KEY,
        sha256 text NOT NULL,
        size bigint NOT NULL,
        part_size bigint NOT NULL,
        created_nanos bigint NOT NULL
    );
    CREATE TABLE lab_team.files (
        project text NOT NULL,
        run text NOT NULL,
        path text NOT NULL,
        sha256 text NOT NULL,
        size bigint NOT NULL,
        PRIMARY KEY (project, run, path)
    );
    ",
    // 2: the web page's sessions, by the SHA-256 of their id.
    r"
    CREATE TABLE lab_team.sessions (
        sha256 text PRIMARY KEY,
        token_id integer NOT NULL REFERENCES lab_team.tokens (id),
        expires_nanos bigint NOT NULL
    );
    CREATE INDEX sessions_expiry ON lab_team.sessions (expires_nanos);
    ",
    // 3: which projects name a blob, for a project's token reading it.
    r"
    CREATE INDEX files_by_blob ON lab_team.files (sha256, project);
    ",
    // 4: how many stretches each run's journal has had since its last merge.
    r"
    CREATE TABLE lab_team.journals (
        project text NOT NULL,
        run text NOT NULL,
        stretches integer NOT NULL,
        PRIMARY KEY (project, run)
    );
    ",
];

/// Connects to `url`, for a command that needs one connection.
pub(crate) fn connect(url: &str) -> Result<Client, ApiError> {
    Client::connect(url, NoTls).map_err(|e| {
        let why =
            std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| format!("{e}: {s}"));
        ApiError::Unavailable(format!(
            "cannot connect to PostgreSQL at `{}`: {why}",
            lab_pg::redact(url)
        ))
    })
}

/// Brings schema `lab_team` up to date, in one transaction under an
/// advisory lock, as `lab_pg` does for the index.
pub(crate) fn migrate(client: &mut Client) -> Result<(), ApiError> {
    Ok(lab_pg::migrate_schema(
        client,
        "lab_team",
        MIGRATION_LOCK,
        MIGRATIONS,
        "the team server",
    )?)
}

/// At most this many idle connections are kept.
const KEPT: usize = 16;

/// The server's connections to PostgreSQL for its own tables.
pub(crate) struct Db {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl Db {
    /// Connects once (so a wrong URL fails at start) and migrates.
    pub(crate) fn open(url: &str) -> Result<Self, ApiError> {
        let mut client = connect(url)?;
        migrate(&mut client)?;
        Ok(Self {
            url: url.to_owned(),
            idle: Mutex::new(vec![client]),
        })
    }

    /// A connection, idle or new. Call from a blocking thread.
    pub(crate) fn take(&self) -> Result<Lease<'_>, ApiError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        // An idle connection may have been closed by a restart of the
        // database without the client noticing yet: ask it first.
        let client = match idle {
            Some(mut c) => {
                if !c.is_closed() && c.is_valid(Duration::from_secs(5)).is_ok() {
                    c
                } else {
                    close_off_runtime(c);
                    connect(&self.url)?
                }
            }
            None => connect(&self.url)?,
        };
        Ok(Lease {
            db: self,
            client: Some(client),
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        close_off_runtime(idle);
    }
}

/// Drops `clients` (connections of the blocking `postgres` client, which
/// closes them by blocking on a runtime of its own) where that is allowed:
/// on a thread of their own when called inside the server's runtime (the
/// last copy of the state goes there as the server stops).
pub(crate) fn close_off_runtime<T: Send + 'static>(clients: T) {
    if tokio::runtime::Handle::try_current().is_err() {
        drop(clients);
        return;
    }
    if let Ok(t) = std::thread::Builder::new()
        .name("lab-pg-close".into())
        .spawn(move || drop(clients))
    {
        let _ = t.join();
    }
}

/// A connection taken from the pool, given back when dropped (unless it
/// broke, or was told to go: see [`Lease::discard`]).
pub(crate) struct Lease<'a> {
    db: &'a Db,
    client: Option<Client>,
}

impl Lease<'_> {
    /// The connection.
    pub(crate) fn client(&mut self) -> &mut Client {
        match &mut self.client {
            Some(c) => c,
            None => unreachable!("a lease holds its connection until dropped"),
        }
    }

    /// Closes the connection instead of giving it back: what it holds (a
    /// session's advisory lock) goes with it.
    pub(crate) fn discard(mut self) {
        self.client = None;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && !c.is_closed()
        {
            let mut idle = self.db.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < KEPT {
                idle.push(c);
            }
        }
    }
}
