//! Which files of a project a push sends.
//!
//! Everything under the project folder, code and runs, except:
//!
//! - what `.labignore` files list (gitignore syntax; a `.labignore` in a
//!   subfolder applies below it, as `.gitignore` does);
//! - the index (`.lab/index.sqlite*`: derived, rebuilt by `lab pull`) and
//!   the lock a rebuild of it holds (`.lab/rebuild.lock`), the trash of an
//!   interrupted `lab rm` (`.lab/trash`), the folders processes made ahead
//!   for their next runs (`.lab/spare`), and the push's own state
//!   (`.lab/push`);
//! - the folders of runs still logging: their journal grows while it is
//!   read and their artifacts are not copied yet, and a copy taken now
//!   would show the run as crashed wherever it is pulled. They are reported,
//!   and the next push after they end sends them;
//! - what a bucket cannot hold: symbolic links, sockets, devices, and names
//!   that are not UTF-8 (reported).

use std::collections::BTreeSet;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lab_store::{JOURNAL_FILE, Project, SPARE_DIR, STORE_DIR};
use sha2::{Digest as _, Sha256};

use crate::Error;

/// The name of the files listing what a push leaves out.
pub const IGNORE_FILE: &str = ".labignore";
/// The folder in `.lab` where a push keeps what it needs to resume.
pub const STATE_DIR: &str = "push";

/// A file to push.
#[derive(Clone, Debug)]
pub struct LocalFile {
    /// Its path in the project, `/`-separated.
    pub path: String,
    /// Where it is.
    pub abs: PathBuf,
    /// Its size when scanned.
    pub size: u64,
    /// Its permission bits.
    pub mode: u32,
}

/// What a scan of the project found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The files to push, sorted by path.
    pub files: Vec<LocalFile>,
    /// Every folder, sorted.
    pub dirs: Vec<String>,
    /// The run folders left out because their run is still logging
    /// (`.lab/runs/<short id>`).
    pub live_runs: Vec<String>,
    /// What a bucket cannot hold, left out: links, devices, names that are not UTF-8.
    pub unsendable: Vec<String>,
}

/// Lists what a push of `project` sends.
pub fn scan(project: &Project) -> Result<Scan, Error> {
    let root = project.root().to_owned();
    let mut out = Scan::default();
    let mut left_out: BTreeSet<PathBuf> = BTreeSet::new();
    let store = project.store_dir();
    left_out.insert(store.join("trash"));
    left_out.insert(store.join(SPARE_DIR));
    left_out.insert(store.join(STATE_DIR));
    left_out.insert(project.rebuild_lock_path());
    let runs = project.runs_dir();
    if runs.is_dir() {
        for entry in fs_err::read_dir(&runs)? {
            let entry = entry?;
            let short = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() && project.run_paths(&short).journal_is_locked()? {
                out.live_runs.push(format!("{STORE_DIR}/runs/{short}"));
                left_out.insert(entry.path());
            }
        }
    }
    out.live_runs.sort();
    let index = project.index_path();
    let index_name = index
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let left_out = Arc::new(left_out);
    let walker = {
        let left_out = Arc::clone(&left_out);
        let store = store.clone();
        let mut b = ignore::WalkBuilder::new(&root);
        b.standard_filters(false)
            .follow_links(false)
            .add_custom_ignore_filename(IGNORE_FILE)
            .sort_by_file_name(std::cmp::Ord::cmp)
            .filter_entry(move |e| {
                let path = e.path();
                if left_out.contains(path) {
                    return false;
                }
                // The index and its companions (WAL, shared memory, damaged copies).
                !(path.parent() == Some(store.as_path())
                    && e.file_name().to_string_lossy().starts_with(&index_name))
            });
        b.build()
    };
    for entry in walker {
        let entry = entry.map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(&root) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let Some(rel_text) = rel.to_str().map(str::to_owned) else {
            out.unsendable.push(rel.to_string_lossy().into_owned());
            continue;
        };
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            out.dirs.push(rel_text);
        } else if kind.is_file() {
            let meta = fs_err::metadata(path)?;
            out.files.push(LocalFile {
                path: rel_text,
                abs: path.to_owned(),
                size: meta.len(),
                mode: meta.permissions().mode() & 0o777,
            });
        } else {
            out.unsendable.push(rel_text);
        }
    }
    add_lists_of_holes(&mut out)?;
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.dirs.sort();
    Ok(out)
}

/// Adds the list of holes of each journal sent that got one after the walk
/// passed its folder (`lab gc`, or a run's end, gave back the journal's
/// pages of points meanwhile): a journal with holes is read by its list.
fn add_lists_of_holes(out: &mut Scan) -> Result<(), Error> {
    let listed: BTreeSet<String> = out.files.iter().map(|f| f.path.clone()).collect();
    let mut found = Vec::new();
    for file in out
        .files
        .iter()
        .filter(|f| f.abs.file_name() == Some(JOURNAL_FILE.as_ref()))
    {
        let list = file.abs.with_file_name(format!("{JOURNAL_FILE}.holes"));
        let path = format!("{}.holes", file.path);
        if listed.contains(&path) {
            continue;
        }
        match fs_err::metadata(&list) {
            Ok(meta) => found.push(LocalFile {
                path,
                abs: list,
                size: meta.len(),
                mode: meta.permissions().mode() & 0o777,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.files.extend(found);
    Ok(())
}

/// The SHA-256 (lowercase hex) and size of a file's bytes, read in pieces.
pub fn hash_file(path: &Path) -> Result<(String, u64), Error> {
    let mut f = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Bytes as lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The SHA-256 of `bytes`, as hex.
#[must_use]
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labignore_and_lab_files_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let (project, _) = Project::create(&root).unwrap();
        std::fs::write(root.join(".labignore"), ".venv\n*.tmp\n/data/raw\n").unwrap();
        std::fs::create_dir_all(root.join(".venv/bin")).unwrap();
        std::fs::write(root.join(".venv/bin/python"), "x").unwrap();
        std::fs::create_dir_all(root.join("data/raw")).unwrap();
        std::fs::write(root.join("data/raw/big.bin"), "x").unwrap();
        std::fs::write(root.join("data/keep.csv"), "x").unwrap();
        std::fs::write(root.join("notes.tmp"), "x").unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/.labignore"), "local.txt\n").unwrap();
        std::fs::write(root.join("sub/local.txt"), "x").unwrap();
        std::fs::write(root.join("local.txt"), "x").unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join(".lab/index.sqlite"), "x").unwrap();
        std::fs::write(root.join(".lab/index.sqlite-wal"), "x").unwrap();
        std::fs::write(root.join(".lab/rebuild.lock"), "").unwrap();
        std::fs::create_dir_all(root.join(".lab/trash/x")).unwrap();
        std::fs::create_dir_all(root.join(".lab/spare/1-0123456789abcdef")).unwrap();
        std::fs::write(root.join(".lab/spare/1-0123456789abcdef/journal.lab"), "x").unwrap();
        std::os::unix::fs::symlink("local.txt", root.join("link")).unwrap();
        let scan = scan(&project).unwrap();
        let files: Vec<_> = scan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            files,
            [
                ".lab/project.json",
                ".labignore",
                "data/keep.csv",
                "local.txt",
                "sub/.labignore"
            ]
        );
        assert_eq!(scan.dirs, [".lab", ".lab/runs", "data", "empty", "sub"]);
        assert_eq!(scan.unsendable, ["link"]);
    }

    #[test]
    fn hashes() {
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
