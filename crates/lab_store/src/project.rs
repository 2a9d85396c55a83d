//! Where a project is and how its files are laid out.
//!
//! ```text
//! <project>/.lab/project.json              marks the folder as a Lab project: {"format": 1, ...}
//! <project>/.lab/index.sqlite              the index (derived from the journals)
//! <project>/.lab/runs/<short id>/journal.lab
//! <project>/.lab/runs/<short id>/artifacts/<name>/...
//! <project>/.lab/runs/<short id>/models/<name>.<format>
//! <project>/.lab/trash/<short id>/        a run `lab rm` is deleting
//! <project>/.lab/spare/<pid>-<random>/  a running process's next run, made ahead
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
/// A run's meta journal, in its run folder: the edits made to the run (its
/// name, tags, note, group) from outside its process.
pub const META_FILE: &str = "meta.lab";
/// The project format this Lab writes, and the newest it reads: the
/// `format` of `.lab/project.json`.
pub const PROJECT_FORMAT: u64 = 1;
/// A marker is a few dozen bytes; a larger file is not one.
const MARKER_MAX_BYTES: u64 = 1 << 16;

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
    /// The meta journal (edits made from outside the run's process).
    pub meta: PathBuf,
    /// Where artifacts are copied.
    pub artifacts: PathBuf,
    /// Where models are serialised.
    pub models: PathBuf,
}

impl RunPaths {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            journal: dir.join(JOURNAL_FILE),
            meta: dir.join(META_FILE),
            artifacts: dir.join("artifacts"),
            models: dir.join("models"),
            dir,
        }
    }

    /// Whether a writer holds the run's journal (its `flock`): the run is
    /// still logging, and its journal may grow under a reader. A run folder
    /// without a journal has no writer.
    pub fn journal_is_locked(&self) -> Result<bool, Error> {
        let file = match std::fs::File::open(&self.journal) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
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
        let marker = root.join(STORE_DIR).join(MARKER_FILE);
        if marker.is_file() {
            check_marker(&marker)?;
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
        let root = cwd
            .ancestors()
            .find(|dir| dir.join(STORE_DIR).join(MARKER_FILE).is_file())
            .ok_or_else(|| Error::NotAProject {
                start: cwd.clone(),
                from_env: false,
            })?;
        // The nearest marker decides: a damaged one is reported, not skipped
        // for a project further up.
        check_marker(&root.join(STORE_DIR).join(MARKER_FILE))?;
        Ok(Self {
            root: root.to_owned(),
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
                "format": PROJECT_FORMAT,
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
        if !created {
            check_marker(&marker)?;
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

    /// The file a rebuild of the index (`lab reindex`) holds locked while it
    /// runs.
    #[must_use]
    pub fn rebuild_lock_path(&self) -> PathBuf {
        self.store_dir().join("rebuild.lock")
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

    /// The file whose time says when a run of the project was last edited:
    /// an edit touches it before it appends to a run's meta journal, and a
    /// refresh that sees it moved looks for meta journals to fold.
    #[must_use]
    pub fn edits_stamp(&self) -> PathBuf {
        self.store_dir().join("edited")
    }

    /// The files of the run with this short id.
    #[must_use]
    pub fn run_paths(&self, short_id: &str) -> RunPaths {
        RunPaths::new(self.runs_dir().join(short_id))
    }

    /// Claims a folder for a new run started at `time_nanos`. Two runs in one
    /// project never share a short id: the folder is made with an atomic
    /// `mkdir`, and a taken short id moves the id to the next time slot.
    ///
    /// A short id is never given twice, even after its folder was deleted by
    /// hand: the index may still hold the old run under it, and would take
    /// the new run's folder for the old one's. So the project remembers the
    /// last slot it gave (`.lab/last_slot`), and a new run takes a later one
    /// (unless that is more than an hour ahead of the clock, as after the
    /// clock was set back: then the clock's slot is tried first).
    ///
    /// A taken slot moves the id past the last slot given, not one slot on:
    /// a project written faster than four runs a second (a quarter second
    /// a slot) has given slots far ahead of the clock, hours ahead for
    /// 20,000 runs, and a claim that walked them one `mkdir` at a time from
    /// the clock's slot took a fifth of a second a run there.
    pub fn claim_run(&self, time_nanos: i64) -> Result<(RunId, RunPaths), Error> {
        self.claim_run_by(time_nanos, |dir| std::fs::create_dir(dir))
    }

    /// [`Project::claim_run`] with the run's folder made by `make`, which
    /// must fail with `AlreadyExists` when the folder exists (as `mkdir`
    /// does), and so claim it atomically: a process that made its next
    /// run's folder ahead of time (in [`SPARE_DIR`]) renames it into place.
    pub fn claim_run_by(
        &self,
        time_nanos: i64,
        mut make: impl FnMut(&Path) -> std::io::Result<()>,
    ) -> Result<(RunId, RunPaths), Error> {
        let runs = self.runs_dir();
        let mut id = RunId::new(time_nanos, 0);
        // Opened once for the claim: read, then written in place. (Three
        // opens a run, with the check that the runs folder exists, were a
        // tenth of what starting a run cost the calling thread.)
        let last = LastSlot::open(&self.store_dir().join(LAST_SLOT_FILE));
        if let Some(given) = last.read()
            && given < id.slot().saturating_add(SLOTS_AHEAD)
        {
            id = id.at_least_slot(given.saturating_add(1));
        }
        // Past the last slot given at most once: a damaged `last_slot` at
        // the end of the slots would otherwise send every try back to it.
        let mut jumped = false;
        loop {
            let dir = runs.join(id.short());
            match make(&dir) {
                Ok(()) => {
                    // Remembering is best effort: losing it only makes a
                    // reused name possible again after a hand deletion.
                    let _ = last.record(id.slot());
                    return Ok((id, RunPaths::new(dir)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    id = id.next_slot();
                    if !jumped
                        && let Some(given) = last.read()
                        && given >= id.slot()
                    {
                        id = id.at_least_slot(given.saturating_add(1));
                        jumped = true;
                    }
                }
                // The project's first run: the runs folder is made with it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !runs.is_dir() => {
                    fs_err::create_dir_all(&runs)?;
                }
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

/// The folder in [`STORE_DIR`] where a process makes its next run's folder
/// and journal ahead of time, to rename into place with
/// [`Project::claim_run_by`] when the run starts.
pub const SPARE_DIR: &str = "spare";

/// How long a spare folder must have been left alone before it may be
/// taken for a dead process's: its owner locks the journal it creates at
/// once, and a journal found unlocked is either an owner's that died or
/// one made in the last instant, not yet locked.
const SPARE_SETTLED: std::time::Duration = std::time::Duration::from_secs(10);

/// The spare folders of [`SPARE_DIR`] whose process is gone: their journal
/// is not locked (or there is none), holds nothing but its header, and
/// nothing changed them for ten seconds. A process removes its own
/// spares whenever it waits for its background work (so as it exits); one
/// killed leaves them, for a later process that makes spares in the
/// project or `lab gc` to remove ([`remove_stale_spare`]).
#[must_use]
pub fn stale_spares(store_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(store_dir.join(SPARE_DIR)) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|dir| matches!(stale_spare(dir), Ok(SpareLook::Stale(_))))
        .collect();
    stale.sort();
    stale
}

/// What a look at a spare folder found.
enum SpareLook {
    /// Its process may be alive: locked, or changed in the last
    /// [`SPARE_SETTLED`].
    Kept,
    /// Stale, with its journal (locked by this look, so that no process
    /// takes it up meanwhile) when it has one.
    Stale(Option<std::fs::File>),
}

fn stale_spare(dir: &Path) -> std::io::Result<SpareLook> {
    let settled = |path: &Path| {
        std::fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= SPARE_SETTLED))
    };
    let journal = dir.join(JOURNAL_FILE);
    // Only a plain file is opened (a FIFO's `open` would wait for a
    // writer), and only one of nothing but a header is stale: one with
    // records is a run whose move into `runs` did not last (nothing syncs
    // the folder), never to be deleted unread.
    match std::fs::symlink_metadata(&journal) {
        Ok(m) if !m.is_file() || m.len() > lab_journal::HEADER_LEN as u64 => {
            return Ok(SpareLook::Kept);
        }
        _ => {}
    }
    Ok(match std::fs::File::open(&journal) {
        Ok(file)
            if file.try_lock().is_ok()
                && settled(&journal)
                && file.metadata()?.len() <= lab_journal::HEADER_LEN as u64 =>
        {
            SpareLook::Stale(Some(file))
        }
        Ok(_) => SpareLook::Kept,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && settled(dir) => {
            SpareLook::Stale(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SpareLook::Kept,
        Err(e) => return Err(e),
    })
}

/// Removes the spare folder `dir` if it is still stale (see
/// [`stale_spares`]): its journal while holding the journal's lock, and
/// only if the name is still that file's, then the folder. Returns whether
/// it was removed; one already gone (another process removed it) is not an
/// error.
pub fn remove_stale_spare(dir: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let gone = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Ok(false)
        } else {
            Err(e)
        }
    };
    let journal = match stale_spare(dir) {
        Ok(SpareLook::Stale(journal)) => journal,
        Ok(SpareLook::Kept) => return Ok(false),
        Err(e) => return gone(e),
    };
    if let Some(file) = journal {
        let path = dir.join(JOURNAL_FILE);
        let held = file.metadata()?;
        match std::fs::symlink_metadata(&path) {
            Ok(named) if named.dev() == held.dev() && named.ino() == held.ino() => {
                if let Err(e) = std::fs::remove_file(&path) {
                    return gone(e);
                }
            }
            Ok(_) => return Ok(false),
            Err(e) => return gone(e),
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) => gone(e),
    }
}

/// Where a project remembers the last time slot it gave a run.
const LAST_SLOT_FILE: &str = "last_slot";

/// How far ahead of the clock a remembered slot may be and still be
/// followed: an hour of quarter seconds.
const SLOTS_AHEAD: u32 = 4 * 3600;

/// The file `last_slot`, open for one claim: for reading and writing, else
/// (a file this user may not write) for reading alone, which still keeps
/// the claim past the slots given; `None` when it cannot be opened at all,
/// which only loses its protection.
struct LastSlot(Option<std::fs::File>);

impl LastSlot {
    fn open(path: &Path) -> Self {
        Self(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .or_else(|_| std::fs::File::open(path))
                .ok(),
        )
    }

    /// The last slot given, when it is recorded and readable. A write cut
    /// short reads as a smaller number or none: at worst a little less
    /// protection.
    fn read(&self) -> Option<u32> {
        use std::os::unix::fs::FileExt as _;
        // Lab writes 11 bytes; a longer file is not one it wrote.
        let mut bytes = [0; 64];
        let n = self.0.as_ref()?.read_at(&mut bytes, 0).ok()?;
        if n == bytes.len() {
            return None;
        }
        std::str::from_utf8(&bytes[..n]).ok()?.trim().parse().ok()
    }

    /// Records `slot` as the last one given, unless a later one is
    /// recorded. The number is written over the old one in place,
    /// zero-padded to the width of any `u32`, so the file never shrinks:
    /// truncating it first made the file system free its block and allocate
    /// it again for every run.
    fn record(&self, slot: u32) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        let Some(file) = &self.0 else {
            return Ok(());
        };
        if self.read().is_some_and(|given| given >= slot) {
            return Ok(());
        }
        file.write_all_at(format!("{slot:010}\n").as_bytes(), 0)
    }
}

/// Refuses a marker that is not a JSON object with a `format` this Lab
/// knows. The marker is written aside and linked into place, so it is never
/// seen half-written: an empty or unreadable one is damaged, not in the making.
fn check_marker(marker: &Path) -> Result<(), Error> {
    use std::io::Read as _;

    let bad = |problem: String| Error::BadMarker {
        path: marker.to_owned(),
        problem,
    };
    let mut bytes = Vec::new();
    fs_err::File::open(marker)?
        .take(MARKER_MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MARKER_MAX_BYTES {
        return Err(bad(format!("it is larger than {MARKER_MAX_BYTES} bytes")));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("not JSON: it is empty".into()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(fields) = value.as_object() else {
        return Err(bad("not a JSON object".into()));
    };
    match fields.get("format").and_then(serde_json::Value::as_u64) {
        Some(found) if found > PROJECT_FORMAT => Err(Error::NewerProject {
            path: marker.to_owned(),
            found,
            known: PROJECT_FORMAT,
        }),
        Some(1..) => Ok(()),
        _ => Err(bad("its `format` is not a positive whole number".into())),
    }
}

fn env_project() -> Option<PathBuf> {
    std::env::var_os("LAB_PROJECT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_slot_is_written_in_place_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAST_SLOT_FILE);
        // As an earlier Lab wrote it.
        std::fs::write(&path, "98765\n").unwrap();
        LastSlot::open(&path).record(98766).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0000098766\n");
        assert_eq!(LastSlot::open(&path).read(), Some(98766));
        LastSlot::open(&path).record(7).unwrap();
        assert_eq!(LastSlot::open(&path).read(), Some(98766));
        LastSlot::open(&path).record(u32::MAX).unwrap();
        assert_eq!(LastSlot::open(&path).read(), Some(u32::MAX));
    }

    #[test]
    fn a_last_slot_this_user_may_not_write_is_still_followed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let now = lab_types::now_nanos();
        let clock = RunId::new(now, 0).slot();
        let path = project.store_dir().join(LAST_SLOT_FILE);
        LastSlot::open(&path).record(clock + 500).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let writable = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
        let (id, _) = project.claim_run(now).unwrap();
        assert_eq!(id.slot(), clock + 501);
        // Not written (unless this user may write it all the same: root).
        let recorded = LastSlot::open(&path).read();
        assert_eq!(
            recorded,
            Some(if writable { clock + 501 } else { clock + 500 })
        );
    }

    #[test]
    fn a_taken_slot_far_behind_the_last_one_given_moves_past_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let now = lab_types::now_nanos();
        let clock = RunId::new(now, 0).slot();
        // As a loop of runs faster than four a second leaves it: the slots
        // from the clock's on are taken, and the last given is hours ahead.
        let last = clock + SLOTS_AHEAD + 1000;
        LastSlot::open(&project.store_dir().join(LAST_SLOT_FILE))
            .record(last)
            .unwrap();
        fs_err::create_dir_all(project.runs_dir()).unwrap();
        for slot in clock..clock + 20 {
            let taken = RunId::new(now, 0).at_least_slot(slot);
            std::fs::create_dir(project.runs_dir().join(taken.short())).unwrap();
        }
        // One try at the clock's slot, then straight past the last given
        // (one slot at a time would have stopped at `clock + 20`).
        let (id, paths) = project.claim_run(now).unwrap();
        assert_eq!(id.slot(), last + 1);
        assert!(paths.dir.is_dir());
        assert_eq!(
            LastSlot::open(&project.store_dir().join(LAST_SLOT_FILE)).read(),
            Some(last + 1)
        );
        // With the clock's slot free, as after the clock was set back, the
        // clock's slot is taken.
        let later = now + 40 * 250_000_000;
        let (id, _) = project.claim_run(later).unwrap();
        assert_eq!(id.slot(), RunId::new(later, 0).slot());
    }

    #[test]
    fn a_last_slot_at_the_end_of_the_slots_still_gives_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let now = lab_types::now_nanos();
        let clock = RunId::new(now, 0);
        LastSlot::open(&project.store_dir().join(LAST_SLOT_FILE))
            .record(u32::MAX)
            .unwrap();
        fs_err::create_dir_all(project.runs_dir()).unwrap();
        for taken in [clock, clock.at_least_slot(u32::MAX)] {
            std::fs::create_dir(project.runs_dir().join(taken.short())).unwrap();
        }
        // The clock's slot taken, the last one too: a folder all the same
        // (it tried the last slot over and over before).
        let (id, paths) = project.claim_run(now).unwrap();
        assert!(paths.dir.is_dir());
        assert_ne!(id.slot(), clock.slot());
        assert_ne!(id.slot(), u32::MAX);
    }
}
