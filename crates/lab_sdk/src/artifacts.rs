//! Copying artifacts into a run when it ends.
//!
//! [`Run::log_artifact`](crate::Run::log_artifact) only records a path; the
//! content is copied by [`copy_artifact`] when the run ends: a file to
//! `artifacts/<name>/<file name>`, a folder's content to `artifacts/<name>/`.
//!
//! What a folder copy leaves out, without a word:
//!
//! - Lab's own folders: this project's `.lab` (so logging `"."` from the
//!   project root copies the project without its runs), every folder between
//!   it and the artifact being written, any other Lab store (a folder holding
//!   `project.json` and `runs/`, as every `.lab` does) and any run folder (one
//!   holding `journal.lab`). Folders are compared by device and inode, so a
//!   symbolic link or a bind mount to them is left out too;
//! - anything that is neither a file, a folder nor a link to one (sockets,
//!   pipes, devices).
//!
//! What it leaves out with a warning, copying the rest:
//!
//! - a symbolic link to a missing file;
//! - a symbolic link loop: a link to a folder that is already being copied
//!   (one of the folders on the way down), or a link that resolves to itself;
//! - a file or folder removed while the copy was under way.
//!
//! Symbolic links to files are copied as files; symbolic links to folders are
//! followed, wherever they point (inside the source or not): a link is how a
//! user says "this belongs here too", and the loop check keeps the walk finite.
//!
//! Anything else that fails (a full disk, a denied permission, an I/O error,
//! the run's folder deleted while the run was live) fails the whole artifact:
//! its partial copy is removed, no `ArtifactStored` record is written, and the
//! error names the cause and the path. Nothing is ever created above
//! `artifacts/<name>` but the `artifacts` folder itself, and only inside a run
//! folder that still exists: a run deleted by `lab rm --force` while it ran is
//! not brought back by its artifacts.
//!
//! A file's data is copied with a reflink (`FICLONE`) where the file system
//! shares blocks between files, else range by range with `copy_file_range`
//! (falling back to `read`/`write` across file systems that refuse it),
//! skipping holes found with `SEEK_DATA`/`SEEK_HOLE`: a sparse file stays
//! sparse. (`copy_file_range` alone does not keep holes on ext4 or tmpfs: it
//! writes them out as zeros.)

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use lab_store::{Project, RunPaths};
use rustix::io::Errno;

use crate::SdkError;

/// What an artifact became in the run: where, and how much.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Relative to the run folder.
    pub path: String,
    pub files: u64,
    pub bytes: u64,
}

/// What was being done when an I/O error struck.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Read,
    Write,
    List,
    Create,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Read => "reading",
            Op::Write => "writing",
            Op::List => "listing",
            Op::Create => "creating",
        }
    }
}

/// Why an artifact was not copied. Each names its cause and, last, the path.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// The source was there when logged and is gone now.
    Gone(PathBuf),
    /// The source is a symbolic link whose target is gone.
    Dangling(PathBuf),
    /// The source is no longer a file or a folder.
    NotFileOrFolder(PathBuf),
    /// The source is Lab's own folder.
    LabOwn(PathBuf),
    /// The run's folder was deleted while the run was live.
    RunGone(PathBuf),
    /// An I/O error.
    Io {
        op: Op,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A failure whose partial copy could not be removed either.
    NotCleaned {
        cause: Box<CopyError>,
        path: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Gone(p) => write!(f, "it was removed before the run ended: {}", p.display()),
            CopyError::Dangling(p) => write!(
                f,
                "it is a symbolic link to a missing file: {}",
                p.display()
            ),
            CopyError::NotFileOrFolder(p) => write!(
                f,
                "it is no longer a regular file or a folder: {}",
                p.display()
            ),
            CopyError::LabOwn(p) => write!(
                f,
                "it is a folder of Lab's own (a project's `.lab` or a run's folder), which is never copied into an artifact: {}",
                p.display()
            ),
            CopyError::RunGone(p) => write!(
                f,
                "the run's folder was deleted while the run was live (by `lab rm --force`?): {}",
                p.display()
            ),
            CopyError::Io { op, path, error } => {
                write!(f, "{}", io_cause(*op, error))?;
                write!(f, "{}", path.display())
            }
            CopyError::NotCleaned { cause, path, error } => write!(
                f,
                "{cause}\n\nhint: its partial copy could not be removed ({error}); `lab gc` removes it: {}",
                path.display()
            ),
        }
    }
}

/// The cause of an I/O error in words, ending where the path goes.
fn io_cause(op: Op, error: &std::io::Error) -> String {
    let verb = op.verb();
    match error.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::NOSPC) => format!("the disk is full while {verb} "),
        Some(Errno::DQUOT) => format!("the disk quota is used up while {verb} "),
        Some(Errno::LOOP) => "a symbolic link loop at ".to_owned(),
        Some(Errno::ACCESS | Errno::PERM) => format!("permission denied {verb} "),
        Some(Errno::IO) => format!("an I/O error while {verb} "),
        Some(Errno::ROFS) => format!("the file system is read-only while {verb} "),
        Some(Errno::NAMETOOLONG) => format!("a path is too long while {verb} "),
        Some(Errno::NOENT) => format!("a file or folder was removed while {verb} "),
        _ => format!("{error} while {verb} "),
    }
}

fn io(op: Op, path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |error| CopyError::Io {
        op,
        path: path.to_owned(),
        error,
    }
}

/// A folder's identity: device and inode. Paths can be spelled many ways
/// (links, bind mounts, `..`); this cannot.
type Identity = (u64, u64);

fn identity(meta: &Metadata) -> Identity {
    (meta.dev(), meta.ino())
}

/// Lab's own folders, which no artifact may contain.
struct LabFolders {
    ids: Vec<Identity>,
}

impl LabFolders {
    /// The project's store and its `runs` and `trash` folders, and the run's
    /// folder and `artifacts` folder: every folder above an artifact's copy.
    fn of(project: &Project, run: &RunPaths) -> Self {
        let store = project.store_dir();
        let ids = [
            store.clone(),
            project.runs_dir(),
            store.join("trash"),
            run.dir.clone(),
            run.artifacts.clone(),
        ]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| identity(&m))
        .collect();
        Self { ids }
    }

    fn add(&mut self, path: &Path) {
        if let Ok(m) = std::fs::metadata(path) {
            self.ids.push(identity(&m));
        }
    }

    /// Whether the folder at `path` (with metadata `meta`) is Lab's: one of
    /// this project's, another Lab store, or a run folder.
    fn contains(&self, path: &Path, meta: &Metadata) -> bool {
        self.ids.contains(&identity(meta)) || is_lab_store(path) || is_run_folder(path)
    }
}

fn is_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// A Lab store: `project.json` beside `runs/`, as in every `.lab`.
fn is_lab_store(dir: &Path) -> bool {
    is_file(&dir.join(lab_store::MARKER_FILE)) && dir.join("runs").is_dir()
}

/// A run folder: it holds a journal.
fn is_run_folder(dir: &Path) -> bool {
    is_file(&dir.join(lab_store::JOURNAL_FILE))
}

/// Checks, when an artifact is logged, that `source` can be copied when the
/// run ends: a regular file or a folder, and not a folder of Lab's own.
pub(crate) fn check_source(
    project: &Project,
    run: &RunPaths,
    source: &Path,
) -> Result<(), SdkError> {
    let shown = || format!("{:?}", source.display().to_string());
    match std::fs::metadata(source) {
        Ok(m) if m.is_dir() && LabFolders::of(project, run).contains(source, &m) => {
            Err(SdkError::InvalidArgument {
                argument: "path",
                value: shown(),
                problem: "must not be a folder of Lab's own (a project's `.lab`, a folder inside it, or a run's folder)".into(),
            })
        }
        Ok(m) if m.is_file() || m.is_dir() => Ok(()),
        Ok(_) => Err(SdkError::InvalidArgument {
            argument: "path",
            value: shown(),
            problem: "must be a regular file or a folder".into(),
        }),
        Err(e) => Err(SdkError::InvalidArgument {
            argument: "path",
            value: shown(),
            problem: format!("must be an existing file or folder ({})", io_reason(&e)),
        }),
    }
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "no such file or folder".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => "a symbolic link loop".into(),
        _ => e.to_string(),
    }
}

/// Copies the artifact `name` from `source` into the run. What was left out
/// with a warning is added to `notes`, one sentence each, path last. On error
/// nothing of this artifact is left in the run.
pub(crate) fn copy_artifact(
    project: &Project,
    run: &RunPaths,
    name: &str,
    source: &Path,
    notes: &mut Vec<String>,
) -> Result<Stored, CopyError> {
    // Look at the source first: a vanished one leaves no empty folder behind.
    let meta = match std::fs::metadata(source) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(
                if std::fs::symlink_metadata(source).is_ok_and(|m| m.is_symlink()) {
                    CopyError::Dangling(source.to_owned())
                } else {
                    CopyError::Gone(source.to_owned())
                },
            );
        }
        Err(e) => return Err(io(Op::Read, source)(e)),
    };
    let mut lab = LabFolders::of(project, run);
    if meta.is_dir() && lab.contains(source, &meta) {
        return Err(CopyError::LabOwn(source.to_owned()));
    }
    if !meta.is_file() && !meta.is_dir() {
        return Err(CopyError::NotFileOrFolder(source.to_owned()));
    }
    let dest = make_dest(run, name)?;
    lab.add(&dest);
    let copied = if meta.is_file() {
        let file_name = source
            .file_name()
            .map_or_else(|| name.into(), std::ffi::OsStr::to_os_string);
        let mut buf = Vec::new();
        match copy_file(source, &dest.join(&file_name), &mut buf) {
            Ok(Some(bytes)) => Ok(Stored {
                path: format!("artifacts/{name}/{}", file_name.to_string_lossy()),
                files: 1,
                bytes,
            }),
            Ok(None) => Err(CopyError::Gone(source.to_owned())),
            Err(e) => Err(e),
        }
    } else {
        copy_tree(source, &meta, &dest, &lab, notes).map(|(files, bytes)| Stored {
            path: format!("artifacts/{name}"),
            files,
            bytes,
        })
    };
    copied.map_err(|cause| {
        if !run.dir.exists() {
            return CopyError::RunGone(run.dir.clone());
        }
        match remove_all(&dest) {
            Ok(()) => cause,
            Err(error) => CopyError::NotCleaned {
                cause: Box::new(cause),
                path: dest,
                error,
            },
        }
    })
}

/// Makes `artifacts/<name>` afresh, inside a run folder that must exist.
fn make_dest(run: &RunPaths, name: &str) -> Result<PathBuf, CopyError> {
    // `create_dir`, never `create_dir_all`: a run folder deleted meanwhile
    // must stay deleted.
    match std::fs::create_dir(&run.artifacts) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(CopyError::RunGone(run.dir.clone()));
        }
        Err(e) => return Err(io(Op::Create, &run.artifacts)(e)),
    }
    let dest = run.artifacts.join(name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        remove_all(&dest).map_err(io(Op::Write, &dest))?;
    }
    match std::fs::create_dir(&dest) {
        Ok(()) => Ok(dest),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(CopyError::RunGone(run.dir.clone())),
        Err(e) => Err(io(Op::Create, &dest)(e)),
    }
}

fn remove_all(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// One folder being copied: its entries still to do, and where they go.
struct Level {
    entries: std::fs::ReadDir,
    from: PathBuf,
    to: PathBuf,
    id: Identity,
}

/// Copies the content of folder `from` into the (empty) folder `to`.
/// Returns the files and bytes copied. A loop of explicit levels rather than
/// recursion: a deep tree cannot overflow the caller's stack.
fn copy_tree(
    from: &Path,
    meta: &Metadata,
    to: &Path,
    lab: &LabFolders,
    notes: &mut Vec<String>,
) -> Result<(u64, u64), CopyError> {
    let mut files = 0;
    let mut bytes = 0;
    let mut buf = Vec::new();
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(CopyError::Gone(from.to_owned())),
        Err(e) => return Err(io(Op::List, from)(e)),
    };
    let mut stack = vec![Level {
        entries,
        from: from.to_owned(),
        to: to.to_owned(),
        id: identity(meta),
    }];
    while let Some(level) = stack.last_mut() {
        let entry = match level.entries.next() {
            None => {
                stack.pop();
                continue;
            }
            Some(Ok(entry)) => entry,
            Some(Err(e)) => return Err(io(Op::List, &level.from)(e)),
        };
        let src = entry.path();
        let dst = level.to.join(entry.file_name());
        let Some(meta) = entry_metadata(&entry, &src, notes)? else {
            continue;
        };
        if meta.is_dir() {
            if let Some(level) = enter_folder(src, dst, &meta, &stack, lab, notes)? {
                stack.push(level);
            }
        } else if meta.is_file() {
            match copy_file(&src, &dst, &mut buf)? {
                Some(n) => {
                    files += 1;
                    bytes += n;
                }
                None => notes.push(removed(&src)),
            }
        }
    }
    Ok((files, bytes))
}

/// The metadata of the entry `src`, a symbolic link followed: `None`, with a
/// note, for an entry removed meanwhile, a link to a missing file or a link
/// that resolves to itself.
fn entry_metadata(
    entry: &std::fs::DirEntry,
    src: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<Metadata>, CopyError> {
    let link = match entry.file_type() {
        Ok(t) => t.is_symlink(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            notes.push(removed(src));
            return Ok(None);
        }
        Err(e) => return Err(io(Op::Read, src)(e)),
    };
    match std::fs::metadata(src) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            notes.push(if link {
                format!(
                    "skipped a symbolic link to a missing file: {}",
                    src.display()
                )
            } else {
                removed(src)
            });
            Ok(None)
        }
        Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
            notes.push(format!("skipped a symbolic link loop: {}", src.display()));
            Ok(None)
        }
        Err(e) => Err(io(Op::Read, src)(e)),
    }
}

/// The level for the folder `src` (with metadata `meta`), its copy `dst`
/// made: `None` for a folder of Lab's own, a link back to a folder on the
/// way down (with a note) or a folder removed meanwhile (with a note).
fn enter_folder(
    src: PathBuf,
    dst: PathBuf,
    meta: &Metadata,
    stack: &[Level],
    lab: &LabFolders,
    notes: &mut Vec<String>,
) -> Result<Option<Level>, CopyError> {
    if lab.contains(&src, meta) {
        return Ok(None);
    }
    let id = identity(meta);
    if stack.iter().any(|l| l.id == id) {
        notes.push(format!(
            "skipped a symbolic link loop (a link to a folder that holds it): {}",
            src.display()
        ));
        return Ok(None);
    }
    let entries = match std::fs::read_dir(&src) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            notes.push(removed(&src));
            return Ok(None);
        }
        Err(e) => return Err(io(Op::List, &src)(e)),
    };
    std::fs::create_dir(&dst).map_err(io(Op::Create, &dst))?;
    Ok(Some(Level {
        entries,
        from: src,
        to: dst,
        id,
    }))
}

fn removed(path: &Path) -> String {
    format!(
        "skipped a file or folder removed while the artifact was being copied: {}",
        path.display()
    )
}

/// Copies one file's data and permissions to the new file `dst`, keeping
/// holes. Returns its size, or `None` if `src` was removed before it could be
/// opened.
fn copy_file(src: &Path, dst: &Path, buf: &mut Vec<u8>) -> Result<Option<u64>, CopyError> {
    let from = match File::open(src) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(Op::Read, src)(e)),
    };
    let meta = from.metadata().map_err(io(Op::Read, src))?;
    let to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(io(Op::Create, dst))?;
    let len = meta.len();
    // Shares the blocks on file systems that can (Btrfs, XFS, bcachefs); any
    // failure only means this one cannot, and the data is copied instead.
    let size = if len > 0 && rustix::fs::ioctl_ficlone(&to, &from).is_ok() {
        len
    } else {
        let size = copy_data(&from, &to, len, src, dst, buf)?;
        // Leaves a hole where the source ends in one.
        to.set_len(size).map_err(io(Op::Write, dst))?;
        size
    };
    to.set_permissions(meta.permissions())
        .map_err(io(Op::Write, dst))?;
    Ok(Some(size))
}

/// Copies the data of the first `len` bytes of `from`, segment by segment,
/// skipping holes. Returns the size copied (less than `len` if the file
/// shrank meanwhile).
fn copy_data(
    from: &File,
    to: &File,
    len: u64,
    src: &Path,
    dst: &Path,
    buf: &mut Vec<u8>,
) -> Result<u64, CopyError> {
    let mut kernel = true;
    let mut pos = 0;
    while pos < len {
        let start = match rustix::fs::seek(from, rustix::fs::SeekFrom::Data(pos)) {
            Ok(at) => at,
            // Only a hole from here to the end.
            Err(Errno::NXIO) => break,
            // No hole support: all of it is data.
            Err(Errno::INVAL | Errno::OPNOTSUPP) => pos,
            Err(e) => return Err(io(Op::Read, src)(e.into())),
        };
        if start >= len {
            break;
        }
        let end = match rustix::fs::seek(from, rustix::fs::SeekFrom::Hole(start)) {
            Ok(at) => at.min(len),
            Err(Errno::NXIO) => break,
            Err(Errno::INVAL | Errno::OPNOTSUPP) => len,
            Err(e) => return Err(io(Op::Read, src)(e.into())),
        };
        let reached = copy_range(from, to, start, end, &mut kernel, src, dst, buf)?;
        if reached < end {
            return Ok(reached);
        }
        pos = end;
    }
    Ok(len)
}

/// Copies bytes `start..end` of `from` to the same place in `to`. Returns
/// where it stopped: `end`, or earlier at the end of a file that shrank.
#[allow(clippy::too_many_arguments)]
fn copy_range(
    from: &File,
    to: &File,
    start: u64,
    end: u64,
    kernel: &mut bool,
    src: &Path,
    dst: &Path,
    buf: &mut Vec<u8>,
) -> Result<u64, CopyError> {
    let mut off_in = start;
    let mut off_out = start;
    while off_in < end {
        let want = (end - off_in).min(1 << 30) as usize;
        if *kernel {
            match rustix::fs::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), want)
            {
                Ok(0) => return Ok(off_in),
                Ok(_) => continue,
                // Not between these two files (another file system, an old
                // kernel): copy through memory from here on.
                Err(Errno::XDEV | Errno::NOSYS | Errno::OPNOTSUPP | Errno::INVAL) => {
                    *kernel = false;
                }
                Err(e @ (Errno::NOSPC | Errno::DQUOT | Errno::FBIG | Errno::ROFS)) => {
                    return Err(io(Op::Write, dst)(e.into()));
                }
                Err(e) => return Err(io(Op::Read, src)(e.into())),
            }
        }
        if buf.is_empty() {
            buf.resize(1 << 20, 0);
        }
        let chunk = want.min(buf.len());
        let n = from
            .read_at(&mut buf[..chunk], off_in)
            .map_err(io(Op::Read, src))?;
        if n == 0 {
            return Ok(off_in);
        }
        to.write_all_at(&buf[..n], off_out)
            .map_err(io(Op::Write, dst))?;
        off_in += n as u64;
        off_out += n as u64;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn io_errors_name_their_cause_then_the_path() {
        let shown = |op, errno| {
            CopyError::Io {
                op,
                path: PathBuf::from("/p/x"),
                error: os(errno),
            }
            .to_string()
        };
        assert_eq!(
            shown(Op::Write, Errno::NOSPC),
            "the disk is full while writing /p/x"
        );
        assert_eq!(shown(Op::Read, Errno::LOOP), "a symbolic link loop at /p/x");
        assert_eq!(
            shown(Op::Read, Errno::ACCESS),
            "permission denied reading /p/x"
        );
        assert_eq!(
            shown(Op::List, Errno::IO),
            "an I/O error while listing /p/x"
        );
        assert!(
            shown(Op::Read, Errno::BUSY).ends_with(" while reading /p/x"),
            "{}",
            shown(Op::Read, Errno::BUSY)
        );
    }

    #[test]
    fn a_failure_that_left_a_partial_copy_says_so_in_a_hint() {
        let e = CopyError::NotCleaned {
            cause: Box::new(CopyError::Gone(PathBuf::from("/src"))),
            path: PathBuf::from("/run/artifacts/a"),
            error: os(Errno::BUSY),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("it was removed before the run ended: /src\n\nhint: its partial copy could not be removed ("),
            "{text}"
        );
        assert!(
            text.ends_with("); `lab gc` removes it: /run/artifacts/a"),
            "{text}"
        );
    }
}
