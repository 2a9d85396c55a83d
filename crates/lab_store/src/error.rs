//! Store errors. Messages follow Lab's style: values in backticks, paths last,
//! an optional `hint:` after a blank line.

use std::path::PathBuf;

/// Anything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No project was found where one was needed.
    #[error("{}", not_a_project(.start, *.from_env))]
    NotAProject {
        /// Where the search started (or the folder `LAB_PROJECT` names).
        start: PathBuf,
        /// Whether `LAB_PROJECT` named the folder.
        from_env: bool,
    },
    /// No run has an id starting with that prefix.
    #[error("no run has an id starting with `{prefix}`\n\nhint: `lab ls` lists the runs")]
    UnknownRun {
        /// What the user typed.
        prefix: String,
    },
    /// Several runs share the prefix.
    #[error("the run id prefix `{prefix}` is ambiguous: it matches {}", .candidates.join(", "))]
    AmbiguousRun {
        /// What the user typed.
        prefix: String,
        /// The ids it matches.
        candidates: Vec<String>,
    },
    /// No run has that name (what was typed is not an id prefix).
    #[error(
        "no run is named `{name}`\n\nhint: a run is given by an id prefix or its name; `lab ls` lists both"
    )]
    UnknownRunName {
        /// What the user typed.
        name: String,
    },
    /// Several runs have the name.
    #[error("the run name `{name}` is ambiguous: it names {}\n\nhint: give an id prefix instead", .candidates.join(", "))]
    AmbiguousRunName {
        /// What the user typed.
        name: String,
        /// The ids of the runs it names.
        candidates: Vec<String>,
    },
    /// An edit of a run with a value it cannot take.
    #[error("`{field}` must be {expected}: got `{value}`")]
    BadEdit {
        /// The field.
        field: &'static str,
        /// The value (shortened when long).
        value: String,
        /// What it must be.
        expected: String,
    },
    /// A run id prefix that cannot be one.
    #[error("`{prefix}` is not a run id: expected 1 to 32 hexadecimal digits")]
    BadRunId {
        /// What the user typed.
        prefix: String,
    },
    /// The run has no model of that name.
    #[error("run `{run}` has no model named `{name}`; it has: {}", if .available.is_empty() { "none".to_owned() } else { .available.join(", ") })]
    UnknownModel {
        /// The run.
        run: String,
        /// The name asked for.
        name: String,
        /// The models it has.
        available: Vec<String>,
    },
    /// A query or sort key that cannot be parsed or names nothing known.
    #[error("{0}")]
    Query(#[from] crate::query::QueryError),

    #[error(
        "`after` must be the `next` cursor of an earlier page of this listing, but {reason}: got `{shown}`\n\nhint: ask for the first page again, without `after`"
    )]
    BadCursor {
        /// The start of the cursor given.
        shown: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The index database failed.
    #[error("the index failed: {}{}", .0, damage_hint(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// Another database behind the index (PostgreSQL, for a team's server)
    /// failed; `kind` says how, as the database told it.
    #[error("the {database} index failed: {message}")]
    OtherIndex {
        /// Which database.
        database: &'static str,
        /// What it said.
        message: String,
        /// What kind of failure it is.
        kind: ErrorKind,
    },
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] lab_journal::JournalError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The index file is not a database, or SQLite finds it corrupt.
    #[error("the index is damaged ({reason}): {}\n\nhint: `lab reindex` rebuilds it from the journals, keeping the damaged file aside", .path.display())]
    DamagedIndex {
        /// The database.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// `.lab/project.json` is damaged: not JSON, not an object, no `format`.
    #[error("`.lab/project.json` is not a Lab project marker ({problem}): {}\n\nhint: if this folder is a Lab project whose marker was damaged, write `{{\"format\": 1}}` into it", .path.display())]
    BadMarker {
        /// The marker.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The project was made by a newer Lab.
    #[error("`.lab/project.json` says the project has format {found}, newer than this Lab knows ({known}): {}\n\nhint: upgrade Lab to use this project", .path.display())]
    NewerProject {
        /// The marker.
        path: PathBuf,
        /// Its format.
        found: u64,
        /// Ours.
        known: u64,
    },
    /// The index was written by a newer Lab.
    #[error("the index has schema version {found}, newer than this Lab knows ({known}): {}\n\nhint: upgrade Lab to read this project", .path.display())]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
}

/// What kind of failure an [`Error`] is: the one question every edge asks
/// (the CLI for its exit status, the Python package for its exception, the
/// HTTP API for its status code), answered once, here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No usable project where one was needed: none found, or its marker is
    /// damaged or from a newer Lab.
    NotAProject,
    /// No run or model by the name given.
    NotFound(Missing),
    /// A run id prefix that matches several runs.
    Ambiguous,
    /// The input cannot be used: a malformed run id, a bad query or sort key.
    InvalidInput,
    /// Another process held the index for longer than Lab waits.
    Busy,
    /// The disk, a file, a journal or the index failed, or holds what this
    /// Lab cannot read.
    Storage,
    /// Lab itself went wrong (SQL it built was refused, a value of the wrong
    /// type came back): a bug to report.
    Internal,
}

/// What was not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A run.
    Run,
    /// A model of a run.
    Model,
}

impl Error {
    /// What kind of failure this is. Every variant is named here, so a new
    /// one cannot fall through to a default at some edge.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotAProject { .. } | Error::BadMarker { .. } | Error::NewerProject { .. } => {
                ErrorKind::NotAProject
            }
            Error::UnknownRun { .. } | Error::UnknownRunName { .. } => {
                ErrorKind::NotFound(Missing::Run)
            }
            Error::UnknownModel { .. } => ErrorKind::NotFound(Missing::Model),
            Error::AmbiguousRun { .. } | Error::AmbiguousRunName { .. } => ErrorKind::Ambiguous,
            Error::BadRunId { .. }
            | Error::BadEdit { .. }
            | Error::Query(_)
            | Error::BadCursor { .. } => ErrorKind::InvalidInput,
            Error::Sqlite(e) => sqlite_kind(e),
            Error::OtherIndex { kind, .. } => *kind,
            Error::Journal(_)
            | Error::Io(_)
            | Error::DamagedIndex { .. }
            | Error::NewerSchema { .. } => ErrorKind::Storage,
        }
    }
}

/// The kind of an SQLite failure: a lock held too long, the database or
/// the disk under it, or SQL and values Lab got wrong.
fn sqlite_kind(e: &rusqlite::Error) -> ErrorKind {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => ErrorKind::Busy,
        Some(
            C::SystemIoFailure
            | C::DatabaseCorrupt
            | C::NotADatabase
            | C::DiskFull
            | C::CannotOpen
            | C::ReadOnly
            | C::PermissionDenied
            | C::FileLockingProtocolFailed
            | C::OutOfMemory
            | C::NoLargeFileSupport
            | C::TooBig,
        ) => ErrorKind::Storage,
        // SQL refused, a constraint broken, a value of the wrong type: how
        // Lab used the database, not the database itself.
        _ => ErrorKind::Internal,
    }
}

/// A hint after SQLite's own words when they say the index is corrupt.
fn damage_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            "\n\nhint: `lab reindex` rebuilds the index from the journals, keeping the damaged file aside"
        }
        _ => "",
    }
}

fn not_a_project(start: &std::path::Path, from_env: bool) -> String {
    if from_env {
        format!(
            "`LAB_PROJECT` names a folder that is not a Lab project (it has no `.lab` folder): {}\n\nhint: run a script that uses `Experiment` with this `LAB_PROJECT` to make it one, or unset `LAB_PROJECT`",
            start.display()
        )
    } else {
        format!(
            "not inside a Lab project (no `.lab` folder here or in any folder above): {}\n\nhint: run a script that uses `Experiment` here to make this folder a project, or set `LAB_PROJECT`",
            start.display()
        )
    }
}
