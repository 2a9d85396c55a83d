//! Sending one run to the server: its journal from the last acknowledged
//! offset, its edits (its meta journal, `meta.lab`, from the last
//! acknowledged offset of that) as soon as the server holds the journal's
//! start, then its artifacts and models as blobs,
//! then the list of its files. Each [`RunUpload::step`] sends at most one
//! request's worth, so one thread can serve several runs (a live one first)
//! and stop at any point. A run all on the server is taken up again when its
//! edits grow (`lab rename` of an old run): only they are sent.
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
    /// The server holds the meta journal (the run's edits) up to here.
    #[serde(default)]
    pub meta_acked: u64,
    /// The server holds the End record.
    #[serde(default)]
    pub end_acked: bool,
    /// The server was told the run crashed.
    #[serde(default)]
    pub crash_reported: bool,
    /// The server took the list of the run's files: the run is all there
    /// but for edits past `meta_acked`.
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

/// How long a live run's edits wait after the server said it does not hold
/// the run's start yet (`no_run`), while its journal goes on.
const NO_RUN_WAIT: Duration = Duration::from_secs(30);

/// What the meta journal looked like when last scanned: its length and
/// modification time, so that it is scanned again only once it changed.
pub(crate) type Stamp = Option<(u64, std::time::SystemTime)>;

/// The length and modification time of the file at `path` (`None` when it
/// does not exist).
pub(crate) fn stamp(path: &Path) -> Result<Stamp, Error> {
    match fs_err::metadata(path) {
        Ok(m) => Ok(Some((m.len(), m.modified()?))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the meta journal at `path` holds edits past `acked`.
pub(crate) fn edits_unsent(path: &Path, acked: u64) -> Result<bool, Error> {
    // Most runs are never edited, or not since: a `stat` says so.
    if stamp(path)?.is_none_or(|(len, _)| len <= acked) {
        return Ok(false);
    }
    Ok(journal::meta_end(path)? > acked)
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
    /// The meta journal as last scanned, and where its whole frames ended.
    meta_seen: Stamp,
    meta_end: u64,
    /// Edits of a live run wait until then (see [`NO_RUN_WAIT`]).
    meta_wait_until: Option<Instant>,
    /// Whether this took edits to the server.
    edits_sent: bool,
    /// Whether the server had lost what it acknowledged of the run, so
    /// that this sends it again.
    sent_again: bool,
    /// The server has no route for edits (a `lab server` older than this
    /// client): they stay here.
    edits_unsupported: bool,
    last_request: Option<Instant>,
    files: Option<Vec<FileEntry>>,
    next_file: usize,
    blob: Option<Blob>,
}

impl RunUpload {
    /// Takes the run in `paths` for sending to `server` under `project`:
    /// `Err(Stop::Busy)` when another process has it, `Err(Stop::Done)` when
    /// it is all there already, its edits too.
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
            match edits_unsent(&paths.meta, state.meta_acked) {
                Ok(true) => {}
                Ok(false) => return Ok(Err(Stop::Done)),
                Err(e) => return Ok(Err(Stop::Refused(format!("run `{short}`: {e}")))),
            }
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
            meta_seen: None,
            meta_end: 0,
            meta_wait_until: None,
            edits_sent: false,
            sent_again: false,
            edits_unsupported: false,
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

    /// The run's files.
    #[must_use]
    pub fn paths(&self) -> &RunPaths {
        &self.paths
    }

    /// Whether this took some of the run's edits to the server.
    #[must_use]
    pub fn edits_sent(&self) -> bool {
        self.edits_sent
    }

    /// Whether the server had lost some of the journal it acknowledged
    /// (found when it did not know the run its edits were for), so that
    /// this sends the run again from what it holds.
    #[must_use]
    pub fn sent_again(&self) -> bool {
        self.sent_again
    }

    /// The meta journal as this last looked at it: a later change of it is
    /// an edit this did not see.
    pub(crate) fn meta_seen(&self) -> Stamp {
        self.meta_seen
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
            // All there but, perhaps, edits made since.
            if self.edits_pending()? {
                return self.send_meta(client);
            }
            return Ok(Step::Stopped(Stop::Done));
        }
        // A journal whose pages of points were given back (it was never
        // sent while a server was configured) reads as zeros there.
        if lab_store::series::has_holes(&self.paths) {
            return Err(Error::Invalid(
                "its journal's points were moved to its series file (series.lab) before a team server was configured, so the journal cannot be sent; `lab push` copies the run whole".into(),
            ));
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
        // The edits go once the server holds the journal's start (its first
        // request holds the Start record), ahead of the rest of it: a rename
        // shows while the run trains, however fast it logs (the server lets
        // an edit have the last word whatever order the two arrive in). A
        // meta journal that cannot be read holds up neither the journal nor
        // the files: it is said once they are sent.
        if self.state.acked > 0
            && self.meta_wait_until.is_none_or(|t| t <= Instant::now())
            && self.edits_pending().unwrap_or(false)
        {
            return self.send_meta(client);
        }
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
            JournalAnswer::NoRun => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server answered `no_run` to its journal from offset {from}",
                self.short
            )))),
        }
    }

    /// Whether the meta journal holds edits the server lacks. Scanned only
    /// when its length or time changed since the last look.
    fn edits_pending(&mut self) -> Result<bool, Error> {
        if self.edits_unsupported {
            return Ok(false);
        }
        let now = stamp(&self.paths.meta)?;
        if now != self.meta_seen {
            self.meta_end = journal::meta_end(&self.paths.meta)?;
            self.meta_seen = now;
        }
        Ok(self.meta_end > self.state.meta_acked)
    }

    fn send_meta(&mut self, client: &Client) -> Result<Step, Error> {
        let from = self.state.meta_acked;
        let bytes =
            journal::read_frames(&self.paths.meta, from, self.meta_end, MAX_JOURNAL_REQUEST)?;
        let answer = match client.put_meta(&self.project, &self.state.run, from, &bytes) {
            Err(Error::Status {
                status: 404 | 405, ..
            }) => return Ok(self.edits_not_taken()),
            other => other?,
        };
        self.last_request = Some(Instant::now());
        match answer {
            JournalAnswer::Stored(length) if length > from => {
                self.state.meta_acked = length;
                self.edits_sent = true;
                self.save()?;
                Ok(Step::Sent)
            }
            JournalAnswer::Stored(length) => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server stored nothing of {} bytes of its edits sent from offset {from} (it holds {length})",
                self.short,
                bytes.len()
            )))),
            JournalAnswer::Gap(length) => {
                // The server holds less than this process thought: go on
                // from its end.
                self.state.meta_acked = length;
                self.save()?;
                Ok(Step::Sent)
            }
            JournalAnswer::Conflict(length) => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server holds other bytes for this run's edits (`meta.lab`; it holds {length} bytes, they differ from offset {from} on)",
                self.short
            )))),
            JournalAnswer::BadFrame(_, message) => Ok(Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server refused its edits (`meta.lab`): {message}",
                self.short
            )))),
            JournalAnswer::NoRun => self.edits_without_run(client),
        }
    }

    /// The server has no route for edits: the rest of the run goes on
    /// without them; a run with only its edits left is refused, saying why.
    fn edits_not_taken(&mut self) -> Step {
        self.edits_unsupported = true;
        if self.state.done {
            Step::Stopped(Stop::Refused(format!(
                "run `{}`: the server does not take runs' edits (a `lab server` older than this `lab`): they stay on this machine",
                self.short
            )))
        } else {
            Step::Sent
        }
    }

    /// The server does not hold the run's start, though it acknowledged
    /// its journal: either it lost some of it (sent again from what it
    /// holds), or it has not taken it in yet (the edits wait).
    fn edits_without_run(&mut self, client: &Client) -> Result<Step, Error> {
        let held = client.journal_length(&self.project, &self.state.run)?;
        if held < self.state.acked {
            self.sent_again = true;
            self.state.acked = held;
            self.state.end_acked = false;
            self.state.done = false;
            self.scanned = Frames {
                end: held,
                end_record: None,
            };
            self.files = None;
            self.save()?;
            return Ok(Step::Sent);
        }
        if self.live()? {
            // The journal goes on meanwhile.
            self.meta_wait_until = Some(Instant::now() + NO_RUN_WAIT);
            return Ok(Step::Sent);
        }
        Ok(Step::Stopped(Stop::Refused(format!(
            "run `{}`: the server has not taken in its journal's start yet (it answered `no_run`), so its edits wait; `lab sync` sends them later",
            self.short
        ))))
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
            // Edits made while the files went are sent next.
            return Ok(Step::Sent);
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
pub(crate) mod tests {
    use lab_journal::JournalWriter;
    use lab_store::Project;
    use lab_types::{Record, RunId, Status};

    use super::*;

    pub(crate) const SERVER: &str = "http://127.0.0.1:9";

    /// A project with an ended run, and the run's short id.
    pub(crate) fn project_with_run(bump: u32) -> (tempfile::TempDir, Project, String) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("iris");
        std::fs::create_dir(&root).unwrap();
        let (project, _) = Project::create(&root).unwrap();
        let short = add_run(&project, bump);
        (dir, project, short)
    }

    pub(crate) fn add_run(project: &Project, bump: u32) -> String {
        let run = RunId::new(1_800_000_000_000_000_000, bump);
        let paths = project.run_paths(&run.short());
        std::fs::create_dir_all(&paths.dir).unwrap();
        let mut w = JournalWriter::create(&paths.journal).unwrap();
        w.append(&Record::Start {
            run,
            time_nanos: 1,
            experiment: "e".into(),
        })
        .unwrap();
        w.append_final(&Record::End {
            time_nanos: 2,
            status: Status::Finished,
            error: None,
        })
        .unwrap();
        w.close().unwrap();
        run.short()
    }

    /// Writes the state of a run all on the server, its edits up to
    /// `meta_acked`.
    pub(crate) fn all_sent(project: &Project, short: &str, meta_acked: u64) {
        let paths = project.run_paths(short);
        let state = State {
            server: SERVER.into(),
            project: "iris".into(),
            run: journal::run_id(&paths.journal)
                .unwrap()
                .unwrap()
                .to_string(),
            acked: std::fs::metadata(&paths.journal).unwrap().len(),
            meta_acked,
            end_acked: true,
            crash_reported: false,
            done: true,
            uploads: BTreeMap::new(),
        };
        std::fs::write(
            paths.dir.join(STATE_FILE),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    }

    pub(crate) fn rename(project: &Project, short: &str, name: &str) -> u64 {
        lab_journal::append_edits(
            &project.run_paths(short).meta,
            &[Record::Rename {
                time_nanos: 3,
                name: name.into(),
            }],
        )
        .unwrap()
    }

    fn opened(project: &Project, short: &str) -> Result<RunUpload, Stop> {
        RunUpload::open(short, &project.run_paths(short), SERVER, "iris").unwrap()
    }

    #[test]
    fn a_state_without_meta_acked_has_sent_no_edit() {
        let old = br#"{"server":"s","project":"p","run":"r","acked":7,"done":true}"#;
        let state: State = serde_json::from_slice(old).unwrap();
        assert_eq!((state.acked, state.meta_acked, state.done), (7, 0, true));
    }

    #[test]
    fn a_run_all_sent_is_taken_up_again_when_its_edits_grow() {
        let (_dir, project, short) = project_with_run(0);
        all_sent(&project, &short, 0);
        assert_eq!(opened(&project, &short).unwrap_err(), Stop::Done);
        let len = rename(&project, &short, "better");
        let run = opened(&project, &short).unwrap();
        assert!(run.state().done && run.state().meta_acked == 0);
        assert!(!run.edits_sent());
        drop(run);
        // Edits the server acknowledged: all there again.
        all_sent(&project, &short, len);
        assert_eq!(opened(&project, &short).unwrap_err(), Stop::Done);
        let more = rename(&project, &short, "best");
        assert!(more > len);
        assert!(opened(&project, &short).is_ok());
        // Another process has it: busy.
        let held = opened(&project, &short).unwrap();
        assert_eq!(opened(&project, &short).unwrap_err(), Stop::Busy);
        drop(held);
    }

    #[test]
    fn a_meta_journal_that_cannot_be_read_is_said() {
        let (_dir, project, short) = project_with_run(0);
        all_sent(&project, &short, 0);
        std::fs::write(
            project.run_paths(&short).meta,
            b"this is no journal of edits",
        )
        .unwrap();
        let Stop::Refused(message) = opened(&project, &short).unwrap_err() else {
            panic!("not refused");
        };
        assert!(message.contains(&format!("run `{short}`")), "{message}");
        assert!(message.contains("meta.lab"), "{message}");
    }

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
