//! Sending one run to the server: its journal from the last acknowledged
//! offset, then its artifacts and models as blobs, then the list of its
//! files. Each [`RunUpload::step`] sends at most one request's worth, so one
//! thread can serve several runs (a live one first) and stop at any point.
//!
//! What the server acknowledged is kept in the run's folder, in
//! `upload.json`, so a later process (`lab sync`, the next run) goes on
//! where this one stopped; the file is also locked (`flock`) by the process
//! sending the run, so two never send one run at once.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab_store::RunPaths;
use serde::{Deserialize, Serialize};

use super::Error;
use super::http::{Client, JournalAnswer, MAX_JOURNAL_REQUEST, UploadStart};
use super::journal::{self, Frames};

/// The file in a run's folder that says what the server holds of it.
pub const STATE_FILE: &str = "upload.json";
/// A live run's heartbeat, when no request has said it is alive meanwhile.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// What the server acknowledged of a run, as kept in [`STATE_FILE`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The server this is about; another server starts from nothing.
    pub server: String,
    /// The project's name on it.
    pub project: String,
    /// The run's full id.
    pub run: String,
    /// The server holds the journal up to here.
    pub acked: u64,
    /// The server holds the End record.
    #[serde(default)]
    pub end_acked: bool,
    /// The server was told the run crashed.
    #[serde(default)]
    pub crash_reported: bool,
    /// The server took the list of the run's files: the run is all there.
    #[serde(default)]
    pub done: bool,
    /// Uploads begun, by SHA-256, so an interrupted one resumes.
    #[serde(default)]
    pub uploads: BTreeMap<String, Upload>,
}

/// A blob upload begun.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The server's id for it.
    pub upload: String,
    /// The size of its parts.
    pub part_size: u64,
}

/// Why a run is not sent any further by this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It is all on the server.
    Done,
    /// Another process is sending it.
    Busy,
    /// Something about this run the server will not take; the message
    /// says what.
    Refused(String),
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Sent something; more may follow at once.
    Sent,
    /// Nothing to send now: the run is live and caught up.
    Waiting,
    /// Nothing more will be sent.
    Stopped(Stop),
}

/// A file of the run, for the server's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct FileEntry {
    path: String,
    sha256: String,
    size: u64,
    #[serde(skip)]
    local: PathBuf,
}

/// A blob upload under way.
#[derive(Debug)]
struct Blob {
    index: usize,
    upload: String,
    part_size: u64,
    missing: Vec<u64>,
}

/// One run being sent.
#[derive(Debug)]
pub struct RunUpload {
    short: String,
    paths: RunPaths,
    project: String,
    state: State,
    state_file: fs_err::File,
    scanned: Frames,
    last_request: Option<Instant>,
    files: Option<Vec<FileEntry>>,
    next_file: usize,
    blob: Option<Blob>,
}

impl RunUpload {
    /// Takes the run in `paths` for sending to `server` under `project`:
    /// `Err(Stop::Busy)` when another process has it, `Err(Stop::Done)` when
    /// it is all there already.
    pub fn open(
        short: &str,
        paths: &RunPaths,
        server: &str,
        project: &str,
    ) -> Result<Result<Self, Stop>, Error> {
        let file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(paths.dir.join(STATE_FILE))
            .map_err(Error::Io)?;
        match file.file().try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(Stop::Busy)),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
        let mut text = Vec::new();
        (&file)
            .take(1 << 20)
            .read_to_end(&mut text)
            .map_err(Error::Io)?;
        // A state cut short or of another server: start from nothing (what
        // the server holds already is taken as a retry).
        let mut state = serde_json::from_slice::<State>(&text)
            .ok()
            .filter(|s| s.server == server && s.project == project)
            .unwrap_or_default();
        if state.done {
            return Ok(Err(Stop::Done));
        }
        if state.run.is_empty() {
            match journal::run_id(&paths.journal) {
                Ok(Some(id)) => state.run = id.to_string(),
                // A run being started this instant: its writer sends it.
                Ok(None) => return Ok(Err(Stop::Busy)),
                Err(e) => return Ok(Err(Stop::Refused(format!("run `{short}`: {e}")))),
            }
            server.clone_into(&mut state.server);
            project.clone_into(&mut state.project);
        }
        let fresh = state.acked == 0;
        let mut run = Self {
            short: short.to_owned(),
            paths: paths.clone(),
            project: project.to_owned(),
            scanned: Frames {
                end: state.acked,
                end_record: None,
            },
            state,
            state_file: file,
            last_request: None,
            files: None,
            next_file: 0,
            blob: None,
        };
        if fresh {
            run.save()?;
        }
        Ok(Ok(run))
    }

    /// The run's short id.
    #[must_use]
    pub fn short_id(&self) -> &str {
        &self.short
    }

    /// What the server acknowledged.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    fn save(&mut self) -> Result<(), Error> {
        let text = serde_json::to_vec(&self.state).map_err(std::io::Error::other)?;
        // Rewritten in place: the file is the lock. A write cut short reads
        // as no state, which costs a resend, never a lost point.
        let f = self.state_file.file();
        f.set_len(0)?;
        f.write_all_at(&text, 0)?;
        Ok(())
    }

    /// Whether the run's journal still has a writer.
    fn live(&self) -> Result<bool, Error> {
        let file = fs_err::File::open(&self.paths.journal)?;
        match file.file().try_lock_shared() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Sends the next request's worth. A transient error (the network, a
    /// busy server) and a refused token come back as errors for the caller
    /// to back off or stop on; what is wrong with this run alone is
    /// [`Stop::Refused`].
    pub fn step(&mut self, client: &Client) -> Result<Step, Error> {
        match self.step_inner(client) {
            Err(e) if !e.is_transient() && !e.is_refusal() => Ok(Step::Stopped(Stop::Refused(
                format!("run `{}`: {e}", self.short),
            ))),
            other => other,
        }
    }

    fn step_inner(&mut self, client: &Client) -> Result<Step, Error> {
        if self.state.done {
            return Ok(Step::Stopped(Stop::Done));
        }
        // Whether the writer is gone is asked before reading: a journal
        // found settled is read to its real end.
        let live = self.live()?;
        let scanned =
            journal::whole_frames(&self.paths.journal, self.scanned.end.max(self.state.acked))
                .map_err(|e| Error::Invalid(e.to_string()))?;
        self.scanned = Frames {
            end: scanned.end,
            end_record: scanned.end_record.or(self.scanned.end_record),
        };
        if self.state.acked < self.scanned.end {
            return self.send_journal(client);
        }
        if live {
            if self.last_request.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
                client.heartbeat(&self.project, &self.state.run)?;
                self.last_request = Some(Instant::now());
                return Ok(Step::Sent);
            }
            return Ok(Step::Waiting);
        }
        if !self.state.end_acked && !self.state.crash_reported {
            // Settled, all sent, and no End record: its writer died.
            client.crashed(&self.project, &self.state.run)?;
            self.state.crash_reported = true;
            self.save()?;
            return Ok(Step::Sent);
        }
        self.send_files(client)
    }

    fn send_journal(&mut self, client: &Client) -> Result<Step, Error> {
        let from = self.state.acked;
        let bytes = journal::read_frames(
            &self.paths.journal,
            from,
            self.scanned.end,
            MAX_JOURNAL_REQUEST,
        )?;
        let answer = client.put_journal(&self.project, &self.state.run, from, &bytes)?;
        self.last_request = Some(Instant::now());
        match answer {
            JournalAnswer::Stored(length) if length > from => {
                self.state.acked = length;
                if self.scanned.end_record.is_some_and(|at| at < length) {
                    self.state.end_acked = true;
                }
                self.save()?;
                Ok(Step::Sent)
            }
            JournalAnswer::Stored(length) => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server stored nothing of {} bytes sent from offset {from} (it holds {length})",
                self.short,
                bytes.len()
            )))),
            JournalAnswer::Gap(length) => {
                // The server holds less than this process thought: go on
                // from its end (a frame boundary it chose).
                self.state.acked = length;
                self.scanned.end = self.scanned.end.max(length);
                self.save()?;
                Ok(Step::Sent)
            }
            JournalAnswer::Conflict(length) => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server holds other bytes for this run's journal (it holds {length} bytes, they differ from offset {from} on)",
                self.short
            )))),
            JournalAnswer::BadFrame(_, message) => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server refused its journal: {message}",
                self.short
            )))),
        }
    }

    fn send_files(&mut self, client: &Client) -> Result<Step, Error> {
        if self.files.is_none() {
            self.files = Some(list_files(&self.paths.dir)?);
            self.next_file = 0;
        }
        let files = self.files.as_deref().unwrap_or_default();
        if let Some(blob) = self.blob.as_mut() {
            let entry = &files[blob.index];
            if let Some(n) = blob.missing.first().copied() {
                let bytes = read_part(&entry.local, n, blob.part_size, entry.size)?;
                client.put_part(&entry.sha256, &blob.upload, n, &bytes)?;
                blob.missing.remove(0);
                return Ok(Step::Sent);
            }
            let (sha, upload) = (entry.sha256.clone(), blob.upload.clone());
            self.blob = None;
            match client.complete_upload(&sha, &upload) {
                Ok(()) => {}
                // Changed while it was sent: hash the files again.
                Err(Error::Status { status: 422, .. }) => self.files = None,
                Err(e) => return Err(e),
            }
            self.state.uploads.remove(&sha);
            self.save()?;
            return Ok(Step::Sent);
        }
        if let Some(index) = (self.next_file < files.len()).then_some(self.next_file) {
            let entry = files[index].clone();
            self.next_file += 1;
            // An upload this or an earlier process began goes on.
            if let Some(begun) = self.state.uploads.get(&entry.sha256).cloned()
                && let Some(held) = client.upload_parts(&entry.sha256, &begun.upload)?
            {
                self.blob = Some(Blob {
                    index,
                    missing: missing_parts(entry.size, begun.part_size, &held),
                    part_size: begun.part_size,
                    upload: begun.upload,
                });
                return Ok(Step::Sent);
            }
            match client.start_upload(&entry.sha256, entry.size)? {
                UploadStart::Present => {}
                UploadStart::Started { upload, part_size } => {
                    self.state.uploads.insert(
                        entry.sha256.clone(),
                        Upload {
                            upload: upload.clone(),
                            part_size,
                        },
                    );
                    self.save()?;
                    self.blob = Some(Blob {
                        index,
                        missing: missing_parts(entry.size, part_size, &[]),
                        part_size,
                        upload,
                    });
                }
            }
            return Ok(Step::Sent);
        }
        let list = serde_json::json!({ "files": files });
        let missing = client.put_files(&self.project, &self.state.run, &list)?;
        if missing.is_empty() {
            self.state.done = true;
            self.state.uploads.clear();
            self.save()?;
            return Ok(Step::Stopped(Stop::Done));
        }
        // Some blob went missing meanwhile: send the files again.
        self.files = None;
        Ok(Step::Sent)
    }
}

/// The parts (numbered from 1) of a blob of `size` bytes not in `held`.
fn missing_parts(size: u64, part_size: u64, held: &[u64]) -> Vec<u64> {
    let count = size.div_ceil(part_size).max(1);
    (1..=count).filter(|n| !held.contains(n)).collect()
}

fn read_part(path: &Path, n: u64, part_size: u64, size: u64) -> Result<Vec<u8>, Error> {
    let start = (n - 1) * part_size;
    let len = part_size.min(size.saturating_sub(start));
    let mut f = fs_err::File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = vec![0u8; len as usize];
    f.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The run's artifacts, models and media: every regular file under
/// `artifacts/`, `models/` and `media/` but the temporary files of models
/// and media being written, with their SHA-256, in path order.
fn list_files(run_dir: &Path) -> Result<Vec<FileEntry>, Error> {
    let mut out = Vec::new();
    for top in ["artifacts", "models", "media"] {
        let mut stack = vec![run_dir.join(top)];
        while let Some(dir) = stack.pop() {
            let entries = match fs_err::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                let path = entry.path();
                let name = entry.file_name();
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file()
                    && !(top != "artifacts" && name.to_string_lossy().starts_with('.'))
                {
                    let rel = path
                        .strip_prefix(run_dir)
                        .map_err(std::io::Error::other)?
                        .to_string_lossy()
                        .into_owned();
                    let (size, sha256) = hash(&path)?;
                    out.push(FileEntry {
                        path: rel,
                        sha256,
                        size,
                        local: path,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn hash(path: &Path) -> Result<(u64, String), Error> {
    Ok(crate::hash::file(path)?)
}

/// The name a project goes by on the server: its folder's name, which must
/// be 1 to 100 letters, digits, `.`, `_` or `-`.
pub fn project_name(root: &Path) -> Result<String, Error> {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ok = (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(Error::Invalid(format!(
            "the project folder's name `{name}` cannot name a project on the server: it must be 1 to 100 letters, digits, `.`, `_` or `-`: {}",
            root.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_numbered_from_one() {
        assert_eq!(missing_parts(0, 8, &[]), [1]);
        assert_eq!(missing_parts(16, 8, &[]), [1, 2]);
        assert_eq!(missing_parts(17, 8, &[2]), [1, 3]);
    }

    #[test]
    fn project_names() {
        assert_eq!(
            project_name(Path::new("/w/iris-2.v1")).unwrap(),
            "iris-2.v1"
        );
        for bad in ["/w/with space", "/", "/w/é"] {
            let e = project_name(Path::new(bad)).unwrap_err().to_string();
            assert!(e.contains("cannot name a project on the server"), "{e}");
        }
    }
}
