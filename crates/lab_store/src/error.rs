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
    /// The index database failed.
    #[error("the index failed: {}{}", .0, damage_hint(.0))]
    Sqlite(#[from] rusqlite::Error),
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
