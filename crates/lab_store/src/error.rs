//! Store errors. Messages follow Lab's style: values in backticks, paths last,
//! an optional `hint:` after a blank line.

use std::path::PathBuf;

/// Anything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No project was found where one was needed.
    #[error(
        "not inside a Lab project (no `.lab` folder here or above): {}\n\nhint: run a script that uses `Experiment` here to make this folder a project, or set `LAB_PROJECT`",
        .start.display()
    )]
    NotAProject {
        /// Where the search started.
        start: PathBuf,
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
    /// The index database failed.
    #[error("the index failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] lab_journal::JournalError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The index was written by a newer Lab.
    #[error("the index at {} has schema version {found}; this Lab knows up to {known}\n\nhint: upgrade Lab, or run `lab reindex` with this version", .path.display())]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
}
