//! Saved views of the web page: a name and the state of a page (its path and
//! query string, such as `/?where=lr%3E0.01&cols=accuracy,lr`), kept in the
//! project so that everyone who opens it (and a link `#/?view=NAME`) finds
//! them.
//!
//! Each view is one file, `.lab/views/NAME.json`, written whole to a
//! temporary file, synced and renamed over the old one: a reader sees the
//! old view or the new one, never half of either, and two servers saving
//! different views never lose each other's. Names are restricted to
//! characters that are safe in a file name and a URL.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Project;

/// The longest view name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The longest state, in bytes: a page's address, with room for long filters.
pub const MAX_STATE_BYTES: usize = 16 * 1024;

/// What can go wrong with a view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// A name that is empty, too long or has characters other than letters,
    /// digits, `-`, `_` and `.`.
    #[error(
        "bad view name `{0}`: expected 1 to {MAX_NAME_CHARS} letters, digits, `-`, `_` or `.`, not starting with `.`"
    )]
    BadName(String),
    /// A state that is not a page's path and query string.
    #[error("bad view state: {0}")]
    BadState(String),
    /// No view of that name.
    #[error("no view is named `{0}`")]
    NotFound(String),
    /// Reading or writing a view's file failed.
    #[error("the view file could not be {action}: {source}: {}", .path.display())]
    Io {
        /// `read`, `written` or `deleted`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One saved view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Its name, which is its file's.
    pub name: String,
    /// The page's path and query string.
    pub state: String,
    /// When it was last saved, in nanoseconds since the Unix epoch.
    pub updated_nanos: i64,
}

/// What a view's file holds (its name is the file's).
#[derive(Serialize, Deserialize)]
struct Stored {
    state: String,
    updated_nanos: i64,
}

/// Checks a view's name.
///
/// # Errors
///
/// [`ViewError::BadName`] when it is not a name a view may have.
pub fn check_name(name: &str) -> Result<(), ViewError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ViewError::BadName(shorten(name)))
    }
}

/// Checks a view's state: a path of the page and its query string.
///
/// # Errors
///
/// [`ViewError::BadState`] when it does not start with `/`, is longer than
/// [`MAX_STATE_BYTES`] or holds control characters.
pub fn check_state(state: &str) -> Result<(), ViewError> {
    if !state.starts_with('/') {
        return Err(ViewError::BadState(format!(
            "expected a page's path and query string starting with `/`, got `{}`",
            shorten(state)
        )));
    }
    if state.len() > MAX_STATE_BYTES {
        return Err(ViewError::BadState(format!(
            "it has {} bytes; at most {MAX_STATE_BYTES} are kept",
            state.len()
        )));
    }
    if state.chars().any(char::is_control) {
        return Err(ViewError::BadState(format!(
            "`{}` holds control characters",
            shorten(state)
        )));
    }
    Ok(())
}

/// At most 60 characters of `text`, for a message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out.escape_debug().to_string()
}

fn dir(project: &Project) -> PathBuf {
    project.store_dir().join("views")
}

fn file(project: &Project, name: &str) -> PathBuf {
    dir(project).join(format!("{name}.json"))
}

fn read(path: &Path, name: &str) -> Result<Option<View>, ViewError> {
    let bytes = match fs_err::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ViewError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| ViewError::Io {
        action: "read",
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    Ok(Some(View {
        name: name.to_owned(),
        state: stored.state,
        updated_nanos: stored.updated_nanos,
    }))
}

/// Every view of the project, by name. A file that is not a view (a
/// temporary file, a damaged one) is left out.
///
/// # Errors
///
/// When the folder cannot be read.
pub fn list(project: &Project) -> Result<Vec<View>, ViewError> {
    let dir = dir(project);
    let entries = match fs_err::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ViewError::Io {
                action: "read",
                path: dir,
                source,
            });
        }
    };
    let mut views = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|n| check_name(n).is_ok())
        else {
            continue;
        };
        if let Ok(Some(view)) = read(&entry.path(), name) {
            views.push(view);
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(views)
}

/// The view `name`.
///
/// # Errors
///
/// A bad name, no such view, or a file that cannot be read.
pub fn get(project: &Project, name: &str) -> Result<View, ViewError> {
    check_name(name)?;
    read(&file(project, name), name)?.ok_or_else(|| ViewError::NotFound(name.to_owned()))
}

/// Saves `state` as the view `name` (replacing one of that name), stamped
/// `now_nanos`.
///
/// # Errors
///
/// A bad name or state, or a file that cannot be written (the old view, if
/// any, is then left as it was).
pub fn put(project: &Project, name: &str, state: &str, now_nanos: i64) -> Result<View, ViewError> {
    check_name(name)?;
    check_state(state)?;
    let dir = dir(project);
    let path = file(project, name);
    let view = View {
        name: name.to_owned(),
        state: state.to_owned(),
        updated_nanos: now_nanos,
    };
    let bytes = serde_json::to_vec(&Stored {
        state: view.state.clone(),
        updated_nanos: now_nanos,
    })
    .map_err(|e| ViewError::Io {
        action: "written",
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    // One temporary file per process and view: two writers of one view each
    // rename a whole file, and the last one wins.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        fs_err::create_dir_all(&dir)?;
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs_err::rename(&tmp, &path)?;
        // The rename itself is durable once the folder is synced.
        fs_err::File::open(&dir)?.sync_all()
    };
    write().map_err(|source| {
        // Best effort: the temporary file is not a view and `list` skips it.
        let _ = fs_err::remove_file(&tmp);
        ViewError::Io {
            action: "written",
            path: path.clone(),
            source,
        }
    })?;
    Ok(view)
}

/// Deletes the view `name`.
///
/// # Errors
///
/// A bad name, no such view, or a file that cannot be removed.
pub fn delete(project: &Project, name: &str) -> Result<(), ViewError> {
    check_name(name)?;
    let path = file(project, name);
    match fs_err::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ViewError::NotFound(name.to_owned()))
        }
        Err(source) => Err(ViewError::Io {
            action: "deleted",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = Project::create(dir.path()).unwrap();
        (dir, p)
    }

    #[test]
    fn views_are_saved_listed_replaced_and_deleted() {
        let (_d, p) = project();
        assert!(list(&p).unwrap().is_empty());
        put(&p, "best-lr", "/?where=lr%3E0.01", 1).unwrap();
        put(&p, "all", "/", 2).unwrap();
        put(&p, "best-lr", "/?sort=-accuracy", 3).unwrap();
        let names: Vec<_> = list(&p).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["all", "best-lr"]);
        let v = get(&p, "best-lr").unwrap();
        assert_eq!((v.state.as_str(), v.updated_nanos), ("/?sort=-accuracy", 3));
        delete(&p, "best-lr").unwrap();
        assert!(matches!(get(&p, "best-lr"), Err(ViewError::NotFound(_))));
        assert!(matches!(delete(&p, "best-lr"), Err(ViewError::NotFound(_))));
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(p.store_dir().join("views"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["all.json"]);
    }

    #[test]
    fn bad_names_and_states_are_refused_and_change_nothing() {
        let (_d, p) = project();
        put(&p, "keep", "/", 1).unwrap();
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        for name in [
            "",
            ".hidden",
            "../keep",
            "a/b",
            "a b",
            "é",
            "keep\n",
            long.as_str(),
        ] {
            let e = put(&p, name, "/", 2).unwrap_err();
            assert!(matches!(e, ViewError::BadName(_)), "{name:?}: {e}");
            assert!(e.to_string().starts_with("bad view name `"), "{e}");
            assert!(get(&p, name).is_err());
            assert!(delete(&p, name).is_err());
        }
        put(&p, &"a".repeat(MAX_NAME_CHARS), "/", 2).unwrap();
        let huge = format!("/?where={}", "x".repeat(MAX_STATE_BYTES));
        for state in [
            "",
            "http://evil.example/",
            "?where=a",
            "/\u{0}",
            huge.as_str(),
        ] {
            let e = put(&p, "keep", state, 3).unwrap_err();
            assert!(matches!(e, ViewError::BadState(_)), "{state:?}: {e}");
        }
        assert_eq!(get(&p, "keep").unwrap().updated_nanos, 1);
    }

    #[test]
    fn damaged_and_foreign_files_are_left_out_of_the_list() {
        let (_d, p) = project();
        put(&p, "good", "/", 1).unwrap();
        let dir = p.store_dir().join("views");
        std::fs::write(dir.join("torn.json"), "{\"state\": \"/").unwrap();
        std::fs::write(dir.join(".good.99.tmp"), "{}").unwrap();
        std::fs::write(dir.join("notes.txt"), "hello").unwrap();
        let names: Vec<_> = list(&p).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["good"]);
        assert!(matches!(get(&p, "torn"), Err(ViewError::Io { .. })));
    }
}
