//! Where a project is and how its files are laid out.
//!
//! ```text
//! <project>/.lab/project.json              marks the folder as a Lab project
//! <project>/.lab/index.sqlite              the index (derived from the journals)
//! <project>/.lab/runs/<short id>/journal.lab
//! <project>/.lab/runs/<short id>/artifacts/<name>/...
//! <project>/.lab/runs/<short id>/models/<name>.<format>
//! <project>/.lab/trash/<short id>/        a run `lab rm` is deleting
//! ```

use std::path::{Path, PathBuf};

use lab_types::RunId;

use crate::Error;

/// The folder inside a project that holds everything Lab writes.
pub const STORE_DIR: &str = ".lab";
/// The file in [`STORE_DIR`] that marks a folder as a project.
pub const MARKER_FILE: &str = "project.json";
/// A run's journal, in its run folder.
pub const JOURNAL_FILE: &str = "journal.lab";

/// A project: a folder with a `.lab` store inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    root: PathBuf,
}

/// The files of one run.
#[derive(Clone, Debug)]
pub struct RunPaths {
    /// `.lab/runs/<short id>`.
    pub dir: PathBuf,
    /// The journal.
    pub journal: PathBuf,
    /// Where artifacts are copied.
    pub artifacts: PathBuf,
    /// Where models are serialised.
    pub models: PathBuf,
}

impl RunPaths {
    fn new(dir: PathBuf) -> Self {
        Self {
            journal: dir.join(JOURNAL_FILE),
            artifacts: dir.join("artifacts"),
            models: dir.join("models"),
            dir,
        }
    }
}

impl Project {
    /// The project at `root`, which must hold a store.
    pub fn at(root: &Path) -> Result<Self, Error> {
        Self::at_inner(root, false)
    }

    fn at_inner(root: &Path, from_env: bool) -> Result<Self, Error> {
        let root = std::path::absolute(root)?;
        if root.join(STORE_DIR).join(MARKER_FILE).is_file() {
            Ok(Self { root })
        } else {
            Err(Error::NotAProject {
                start: root,
                from_env,
            })
        }
    }

    /// `LAB_PROJECT` if set, else the nearest folder from `cwd` upward that
    /// holds a store.
    pub fn discover(cwd: &Path) -> Result<Self, Error> {
        if let Some(dir) = env_project() {
            return Self::at_inner(&dir, true);
        }
        let cwd = std::path::absolute(cwd)?;
        cwd.ancestors()
            .find(|dir| dir.join(STORE_DIR).join(MARKER_FILE).is_file())
            .map(|dir| Self {
                root: dir.to_owned(),
            })
            .ok_or(Error::NotAProject {
                start: cwd,
                from_env: false,
            })
    }

    /// Like [`Project::discover`], but makes `LAB_PROJECT` (or else `cwd`) a
    /// project when none is found. The flag says whether this call made it
    /// (of several processes racing to make one, exactly one did).
    pub fn discover_or_create(cwd: &Path) -> Result<(Self, bool), Error> {
        match Self::discover(cwd) {
            Ok(p) => Ok((p, false)),
            Err(Error::NotAProject { .. }) => {
                let root = env_project().unwrap_or_else(|| cwd.to_owned());
                Self::create(&root)
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `root` a project (creating the folder if needed); the flag says
    /// whether it was made now or was one already.
    pub fn create(root: &Path) -> Result<(Self, bool), Error> {
        let root = std::path::absolute(root)?;
        let store = root.join(STORE_DIR);
        fs_err::create_dir_all(store.join("runs"))?;
        let marker = store.join(MARKER_FILE);
        let mut created = false;
        if !marker.is_file() {
            let body = serde_json::json!({
                "format": 1,
                "created_nanos": lab_types::now_nanos(),
            });
            // Write aside, then link into place: a reader never sees half a
            // marker, and of racing processes exactly one link succeeds.
            let tmp = store.join(format!(".{MARKER_FILE}.{}", std::process::id()));
            fs_err::write(&tmp, format!("{body:#}\n"))?;
            match std::fs::hard_link(&tmp, &marker) {
                Ok(()) => created = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.into());
                }
            }
            fs_err::remove_file(&tmp)?;
        }
        Ok((Self { root }, created))
    }

    /// The project folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.lab` inside the project.
    #[must_use]
    pub fn store_dir(&self) -> PathBuf {
        self.root.join(STORE_DIR)
    }

    /// The index database.
    #[must_use]
    pub fn index_path(&self) -> PathBuf {
        self.store_dir().join("index.sqlite")
    }

    /// The folder holding one folder per run.
    #[must_use]
    pub fn runs_dir(&self) -> PathBuf {
        self.store_dir().join("runs")
    }

    /// The files of the run with this short id.
    #[must_use]
    pub fn run_paths(&self, short_id: &str) -> RunPaths {
        RunPaths::new(self.runs_dir().join(short_id))
    }

    /// Claims a folder for a new run started at `time_nanos`. Two runs in one
    /// project never share a short id: the folder is made with an atomic
    /// `mkdir`, and a taken short id moves the id to the next time slot.
    pub fn claim_run(&self, time_nanos: i64) -> Result<(RunId, RunPaths), Error> {
        let runs = self.runs_dir();
        fs_err::create_dir_all(&runs)?;
        let mut id = RunId::new(time_nanos, 0);
        loop {
            let dir = runs.join(id.short());
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok((id, RunPaths::new(dir))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => id = id.next_slot(),
                Err(e) => {
                    return Err(Error::Io(std::io::Error::new(
                        e.kind(),
                        format!("cannot create the run folder {}: {e}", dir.display()),
                    )));
                }
            }
        }
    }
}

fn env_project() -> Option<PathBuf> {
    std::env::var_os("LAB_PROJECT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
