//! The slow facts about a run's environment: git state and installed
//! packages. Gathered on a background thread so the run starts at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lab_types::Value;
use lab_types::fields::attr;

use crate::per_process::PerProcess;

/// What to look at.
#[derive(Clone, Debug, Default)]
pub struct EnvRequest {
    /// A folder inside the git work tree of the script, if any.
    pub git_dir: Option<PathBuf>,
    /// Folders to scan for installed distributions (Python's `sys.path`).
    pub site_dirs: Vec<PathBuf>,
}

impl EnvRequest {
    /// The attributes found: `git_commit`, `git_branch`, `git_dirty` (inside a
    /// work tree) and `packages` (a sorted list of `name==version`).
    #[must_use]
    pub fn gather(&self) -> Vec<(String, Value)> {
        let mut attrs = Vec::new();
        if let Some(dir) = &self.git_dir
            && let Some(git) = git_state(dir)
        {
            attrs.extend(git);
        }
        let packages = installed_packages(&self.site_dirs);
        attrs.push((
            attr::PACKAGES.to_owned(),
            Value::List(packages.into_iter().map(Value::Str).collect()),
        ));
        attrs
    }
}

/// The git state of the work tree holding `dir`: `git status` once, and
/// again only when something it reads may have changed (see [`GitSeen`]).
fn git_state(dir: &Path) -> Option<Vec<(String, Value)>> {
    let env = git_env();
    {
        let seen = lock(GIT_SEEN.get());
        if let Some(s) = seen.iter().find(|s| s.dir == dir && s.env == env)
            && s.watched.iter().all(|(p, stamp)| Stamp::lstat(p) == *stamp)
        {
            return s.state.clone();
        }
    }
    let now = lab_types::now_nanos();
    // Stamped before git looks: a change made while it looks moves a stamp.
    let (paths, in_work_tree) = watch_list(dir);
    let watched: Option<Vec<(PathBuf, Option<Stamp>)>> = paths.map(|paths| {
        paths
            .into_iter()
            .map(|p| {
                let stamp = Stamp::lstat(&p);
                (p, stamp)
            })
            .collect()
    });
    #[cfg(test)]
    lock(&tests::READ).push(dir.to_owned());
    // Out of a work tree, `git rev-parse` just said so: `git status` would
    // fail as well.
    let state = if in_work_tree { git_status(dir) } else { None };
    if let Some(watched) = watched
        && watched
            .iter()
            .all(|(_, s)| s.is_none_or(|s| s.settled(now)))
    {
        let mut seen = lock(GIT_SEEN.get());
        seen.retain(|s| s.dir != dir);
        if seen.len() >= MAX_LISTINGS {
            seen.remove(0);
        }
        seen.push(GitSeen {
            dir: dir.to_owned(),
            env,
            watched,
            state: state.clone(),
        });
    }
    state
}

/// `git status --porcelain=v2 --branch` gives the commit, the branch and the
/// changes in one process.
fn git_status(dir: &Path) -> Option<Vec<(String, Value)>> {
    let out = git(
        dir,
        &[
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=no",
        ],
    )?;
    let text = String::from_utf8_lossy(&out);
    let mut commit = None;
    let mut branch = None;
    let mut dirty = false;
    for line in text.lines() {
        if let Some(oid) = line.strip_prefix("# branch.oid ") {
            commit = (oid != "(initial)").then(|| oid.to_owned());
        } else if let Some(head) = line.strip_prefix("# branch.head ") {
            branch = (head != "(detached)").then(|| head.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            dirty = true;
        }
    }
    let mut attrs = vec![(attr::GIT_DIRTY.to_owned(), Value::Bool(dirty))];
    if let Some(c) = commit {
        attrs.push((attr::GIT_COMMIT.to_owned(), Value::Str(c)));
    }
    if let Some(b) = branch {
        attrs.push((attr::GIT_BRANCH.to_owned(), Value::Str(b)));
    }
    Some(attrs)
}

/// What `git -C dir ARGS` printed, if it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    // Without the index refresh `git status` otherwise writes under
    // `index.lock`, which made the script's own git commands fail while it
    // ran.
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// The git state found for a folder, and the stamps, taken before git
/// looked, of everything git read to find it: the repository's `HEAD`,
/// the branch's ref (loose and packed), the index, the configuration (the
/// repository's and the user's), and every tracked file, `lstat`ed as git
/// does to tell a changed file. While none of them moved, and git runs in
/// the same environment, `git status` would say the same, so it is not run
/// again: the commit made between two runs of a process, the branch
/// switched, a tracked file edited are each seen by the next run. Out of
/// a work tree, the stamps are of the folder and each folder above it (a
/// `.git` made in one of them moves it). Not remembered: a state read while
/// one of the stamps was less than a second old (a change in the same clock
/// tick would not move it), a work tree with submodules (their own changes
/// move nothing here), or with more than [`MAX_TRACKED`] files.
struct GitSeen {
    dir: PathBuf,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    watched: Vec<(PathBuf, Option<Stamp>)>,
    state: Option<Vec<(String, Value)>>,
}

/// The most tracked files whose stamps stand for `git status`.
const MAX_TRACKED: usize = 10_000;

static GIT_SEEN: PerProcess<std::sync::Mutex<Vec<GitSeen>>> = PerProcess::new();

/// Where a work tree's git data is, and its tracked files as of the index
/// whose stamp is `index` (`None`: not to be watched).
struct Repo {
    dir: PathBuf,
    git_dir: PathBuf,
    common_dir: PathBuf,
    top: PathBuf,
    index: Option<Stamp>,
    tracked: Option<Vec<PathBuf>>,
}

static REPOS: PerProcess<std::sync::Mutex<Vec<Repo>>> = PerProcess::new();

/// In a child right after `fork`: what the parent's environment thread
/// learnt is the child's to learn again, under locks of its own (the
/// parent's thread may have held one at the fork).
pub(crate) fn after_fork_in_child() {
    GIT_SEEN.renew();
    REPOS.renew();
    LISTINGS.renew();
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The environment variables that change what git does.
fn git_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<_> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.as_encoded_bytes();
            k.starts_with(b"GIT_") || [&b"HOME"[..], b"XDG_CONFIG_HOME", b"PATH"].contains(&k)
        })
        .collect();
    env.sort();
    env
}

/// The files whose stamps stand for what `git status` in `dir` reads, or
/// `None` when they cannot (see [`GitSeen`]); and whether `dir` is in a
/// work tree at all.
fn watch_list(dir: &Path) -> (Option<Vec<PathBuf>>, bool) {
    let mut paths = Vec::new();
    // The user's and the system's configuration.
    if let Some(home) = std::env::var_os("HOME") {
        paths.push(Path::new(&home).join(".gitconfig"));
        paths.push(Path::new(&home).join(".config/git/config"));
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME") {
        paths.push(Path::new(&xdg).join("git/config"));
    }
    paths.push(PathBuf::from("/etc/gitconfig"));
    let mut repos = lock(REPOS.get());
    let found = repos
        .iter()
        .position(|r| r.dir == dir && r.git_dir.join("HEAD").exists());
    let at = if let Some(at) = found {
        at
    } else {
        repos.retain(|r| r.dir != dir);
        let Some(repo) = find_repo(dir) else {
            drop(repos);
            // Out of a work tree: a `.git` made here or above moves a folder.
            paths.extend(dir.ancestors().map(Path::to_owned));
            return (Some(paths), false);
        };
        if repos.len() >= MAX_LISTINGS {
            repos.remove(0);
        }
        repos.push(repo);
        repos.len() - 1
    };
    let repo = &mut repos[at];
    let index = repo.git_dir.join("index");
    let index_now = Stamp::lstat(&index);
    if repo.index != index_now || index_now.is_none() {
        repo.index = index_now;
        repo.tracked = tracked_files(&repo.top);
    }
    let Some(tracked) = repo.tracked.as_ref() else {
        return (None, true);
    };
    let head = repo.git_dir.join("HEAD");
    if let Ok(text) = std::fs::read_to_string(&head)
        && let Some(name) = text.trim().strip_prefix("ref: ")
    {
        paths.push(repo.common_dir.join(name));
    }
    paths.extend([
        head,
        index,
        repo.common_dir.join("packed-refs"),
        repo.common_dir.join("config"),
        repo.git_dir.join("config.worktree"),
    ]);
    paths.extend(tracked.iter().map(|f| repo.top.join(f)));
    (Some(paths), true)
}

/// The repository of the work tree holding `dir`, if any.
fn find_repo(dir: &Path) -> Option<Repo> {
    let out = git(
        dir,
        &[
            "rev-parse",
            "--git-dir",
            "--git-common-dir",
            "--show-toplevel",
        ],
    )?;
    let text = String::from_utf8(out).ok()?;
    let mut lines = text.lines();
    let (git_dir, common_dir, top) = (lines.next()?, lines.next()?, lines.next()?);
    // The first two may be relative to `dir`; joining keeps absolute ones.
    Some(Repo {
        dir: dir.to_owned(),
        git_dir: dir.join(git_dir),
        common_dir: dir.join(common_dir),
        top: top.into(),
        index: None,
        tracked: None,
    })
}

/// The files the index of the work tree at `top` tracks; `None` with a
/// submodule among them, or more than [`MAX_TRACKED`].
fn tracked_files(top: &Path) -> Option<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt as _;
    let out = git(top, &["ls-files", "-z", "--stage"])?;
    let mut files = Vec::new();
    for entry in out.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        // `MODE OBJECT STAGE<TAB>PATH`; a submodule's mode is 160000.
        let tab = entry.iter().position(|&b| b == b'\t')?;
        if entry.starts_with(b"160000 ") || files.len() >= MAX_TRACKED {
            return None;
        }
        files.push(PathBuf::from(std::ffi::OsStr::from_bytes(
            &entry[tab + 1..],
        )));
    }
    Some(files)
}

/// `name==version` of every distribution found in `dirs`, the first of each
/// name winning (as Python's import order does), sorted by name. A folder's
/// distributions are read again only when the folder changed (see
/// [`Listing`]), so the runs of one process scan `site-packages` once.
fn installed_packages(dirs: &[PathBuf]) -> Vec<String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for dir in dirs {
        for (key, package) in Listing::of(dir).found {
            found.entry(key).or_insert(package);
        }
    }
    found.into_values().collect()
}

/// What a file's or folder's metadata says of it: a file's mtime, ctime and
/// size move when it is written; a folder's mtime and ctime whenever an entry
/// is made, removed or renamed in it (installing, upgrading or removing a
/// distribution does all three); the device and inode change when it is
/// replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mode: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::from(&m))
    }

    /// The stamp of `path` itself, a link not followed.
    fn lstat(path: &Path) -> Option<Stamp> {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| Stamp::from(&m))
    }

    fn from(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt as _;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mode: m.mode(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether nothing changed it in the second before `now_nanos`: a change
    /// made in the same tick of the file system's clock as the last one
    /// would leave the stamp as it was, so a stamp that recent is not
    /// trusted to tell.
    fn settled(&self, now_nanos: i64) -> bool {
        let nanos = |(s, ns): (i64, i64)| s.saturating_mul(1_000_000_000).saturating_add(ns);
        let latest = nanos(self.mtime).max(nanos(self.ctime));
        now_nanos.saturating_sub(latest) > SETTLE_NANOS
    }
}

/// How long a folder or file must have stood still before its stamp is
/// trusted to tell that it has not changed.
const SETTLE_NANOS: i64 = 1_000_000_000;

/// The most folders whose listings (or git states) are remembered.
const MAX_LISTINGS: usize = 64;

/// The distributions found in one folder, with the stamps they were read
/// under: the folder's own, and those of the metadata files read for a
/// version its entry's name does not hold.
#[derive(Clone)]
struct Listing {
    dir: PathBuf,
    stamp: Option<Stamp>,
    files: Vec<(PathBuf, Option<Stamp>)>,
    /// `(normalised name, name==version)`, the first of each name, in the
    /// order the folder's entries sort.
    found: Vec<(String, String)>,
}

/// Listings of folders that had stood still when they were read.
static LISTINGS: PerProcess<std::sync::Mutex<Vec<Listing>>> = PerProcess::new();

impl Listing {
    /// The distributions in `dir`: remembered, when neither the folder nor
    /// a file read for it changed since; else read, and remembered when
    /// everything read had stood still for a second.
    fn of(dir: &Path) -> Listing {
        let now = lab_types::now_nanos();
        let stamp = Stamp::of(dir);
        {
            let listings = lock(LISTINGS.get());
            if let Some(l) = listings.iter().find(|l| l.dir == dir)
                && stamp.is_some()
                && l.stamp == stamp
                && l.files.iter().all(|(f, s)| Stamp::of(f) == *s)
            {
                return l.clone();
            }
        }
        let listing = Listing::read(dir, stamp);
        let settled = |s: &Option<Stamp>| s.is_some_and(|s| s.settled(now));
        if settled(&listing.stamp) && listing.files.iter().all(|(_, s)| settled(s)) {
            let mut listings = lock(LISTINGS.get());
            listings.retain(|l| l.dir != dir);
            if listings.len() >= MAX_LISTINGS {
                listings.remove(0);
            }
            listings.push(listing.clone());
        }
        listing
    }

    /// Reads `dir`, whose stamp was `stamp` before it was read.
    fn read(dir: &Path, stamp: Option<Stamp>) -> Listing {
        #[cfg(test)]
        lock(&tests::READ).push(dir.to_owned());
        let mut listing = Listing {
            dir: dir.to_owned(),
            stamp,
            files: Vec::new(),
            found: Vec::new(),
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return listing;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut keys = std::collections::HashSet::new();
        for entry in names {
            let Some((stem, is_dist)) = entry
                .strip_suffix(".dist-info")
                .map(|s| (s, true))
                .or_else(|| entry.strip_suffix(".egg-info").map(|s| (s, false)))
            else {
                continue;
            };
            let (name, version) = if let Some((n, rest)) = stem.split_once('-') {
                // egg-info names may end in -pyX.Y.
                let v = if is_dist {
                    rest
                } else {
                    rest.split("-py").next().unwrap_or(rest)
                };
                (n.to_owned(), v.to_owned())
            } else {
                let (version, read) = metadata_version(&dir.join(&entry));
                listing.files.push((read.clone(), Stamp::of(&read)));
                (stem.to_owned(), version.unwrap_or_default())
            };
            let key = name.to_ascii_lowercase().replace(['-', '.'], "_");
            if keys.insert(key.clone()) {
                listing.found.push((key, format!("{name}=={version}")));
            }
        }
        listing
    }
}

/// The version in an egg-info's metadata (`PKG-INFO` in a folder, or the
/// file itself), and the file it was read from (or looked for).
fn metadata_version(info: &Path) -> (Option<String>, PathBuf) {
    let in_folder = info.join("PKG-INFO");
    let (text, read) = match std::fs::read_to_string(&in_folder) {
        Ok(text) => (Some(text), in_folder),
        Err(_) => (std::fs::read_to_string(info).ok(), info.to_owned()),
    };
    let version = text.and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .map(|v| v.trim().to_owned())
    });
    (version, read)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folders whose distributions were read, or where `git status` ran.
    pub(super) static READ: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

    fn reads_of(dir: &Path) -> usize {
        lock(&READ).iter().filter(|d| *d == dir).count()
    }

    fn settle() {
        std::thread::sleep(std::time::Duration::from_millis(1200));
    }

    #[test]
    fn a_folder_of_packages_is_read_again_only_when_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().to_owned();
        std::fs::create_dir(site.join("numpy-1.0.dist-info")).unwrap();
        // Too fresh to be trusted: read each time.
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["numpy==1.0"]
        );
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["numpy==1.0"]
        );
        assert_eq!(reads_of(&site), 2);
        settle();
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["numpy==1.0"]
        );
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["numpy==1.0"]
        );
        assert_eq!(reads_of(&site), 3);
        // Installed, upgraded: seen at once.
        std::fs::create_dir(site.join("scipy-2.0.dist-info")).unwrap();
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["numpy==1.0", "scipy==2.0"]
        );
        settle();
        std::fs::rename(
            site.join("numpy-1.0.dist-info"),
            site.join("numpy-1.1.dist-info"),
        )
        .unwrap();
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["numpy==1.1", "scipy==2.0"]
        );
        // An egg-info whose version is in its metadata: a new version there
        // is seen though the folder did not change.
        std::fs::write(site.join("legacy.egg-info"), "Name: legacy\nVersion: 1\n").unwrap();
        settle();
        assert_eq!(installed_packages(std::slice::from_ref(&site)).len(), 3);
        std::fs::write(site.join("legacy.egg-info"), "Name: legacy\nVersion: 22\n").unwrap();
        assert_eq!(
            installed_packages(std::slice::from_ref(&site)),
            ["legacy==22", "numpy==1.1", "scipy==2.0"]
        );
    }

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    fn attr<'a>(attrs: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
        attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn git_runs_again_only_when_something_it_reads_moved() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().to_owned();
        git(&top, &["init", "-q", "-b", "main"]);
        std::fs::write(top.join("train.py"), "print(1)\n").unwrap();
        git(&top, &["add", "train.py"]);
        git(&top, &["commit", "-q", "-m", "first"]);
        settle();
        let first = git_state(&top).unwrap();
        assert_eq!(git_state(&top).unwrap(), first);
        assert_eq!(reads_of(&top), 1, "the second run asked git again");
        assert_eq!(attr(&first, attr::GIT_DIRTY), Some(&Value::Bool(false)));
        // A tracked file edited, the same size: dirty at once.
        std::fs::write(top.join("train.py"), "print(2)\n").unwrap();
        let edited = git_state(&top).unwrap();
        assert_eq!(attr(&edited, attr::GIT_DIRTY), Some(&Value::Bool(true)));
        // A commit: the new one at once.
        git(&top, &["commit", "-q", "-am", "second"]);
        let committed = git_state(&top).unwrap();
        assert_eq!(attr(&committed, attr::GIT_DIRTY), Some(&Value::Bool(false)));
        assert_ne!(
            attr(&committed, attr::GIT_COMMIT),
            attr(&first, attr::GIT_COMMIT)
        );
        settle();
        let before = reads_of(&top);
        assert_eq!(git_state(&top).unwrap(), committed);
        assert_eq!(git_state(&top).unwrap(), committed);
        assert_eq!(reads_of(&top), before + 1);
        // A branch switched: its name at once.
        git(&top, &["checkout", "-q", "-b", "other"]);
        let switched = git_state(&top).unwrap();
        assert_eq!(
            attr(&switched, attr::GIT_BRANCH),
            Some(&Value::Str("other".into()))
        );
    }

    #[test]
    fn packages_are_read_from_folder_names() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "numpy-2.4.6.dist-info",
            "scikit_learn-1.9.1.dist-info",
            "six-1.16.0-py3.11.egg-info",
            "notapackage",
        ] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let second = tempfile::tempdir().unwrap();
        std::fs::create_dir(second.path().join("numpy-1.0.dist-info")).unwrap();
        let found = installed_packages(&[dir.path().to_owned(), second.path().to_owned()]);
        assert_eq!(
            found,
            ["numpy==2.4.6", "scikit_learn==1.9.1", "six==1.16.0"]
        );
    }

    #[test]
    fn a_folder_out_of_a_work_tree_is_seen_to_become_one() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("work");
        let sub = top.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        settle();
        assert!(git_state(&sub).is_none());
        assert!(git_state(&sub).is_none());
        git(&top, &["init", "-q", "-b", "main"]);
        std::fs::write(sub.join("train.py"), "print(1)\n").unwrap();
        git(&top, &["add", "sub/train.py"]);
        git(&top, &["commit", "-q", "-m", "first"]);
        // From a folder below the top, whose git folder is found above.
        let state = git_state(&sub).unwrap();
        assert_eq!(attr(&state, attr::GIT_DIRTY), Some(&Value::Bool(false)));
        settle();
        let before = reads_of(&sub);
        assert_eq!(git_state(&sub).unwrap(), state);
        assert_eq!(git_state(&sub).unwrap(), state);
        assert_eq!(reads_of(&sub), before + 1);
        std::fs::write(sub.join("train.py"), "print(2)\n").unwrap();
        let edited = git_state(&sub).unwrap();
        assert_eq!(attr(&edited, attr::GIT_DIRTY), Some(&Value::Bool(true)));
    }

    #[test]
    fn git_state_outside_a_work_tree_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(git_state(dir.path()).is_none());
    }
}
