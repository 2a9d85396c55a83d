//! `lab push`: a project into a bucket, incrementally, resumably, in parallel.
//!
//! 1. The project is scanned (see [`crate::scan`]) and every file hashed.
//! 2. The bucket's manifest of the project and its list of blobs say what is
//!    there already: only files whose bytes are in no blob are sent.
//! 3. Files are sent several at a time; a file larger than [`PART_SIZE`] goes
//!    in parts (S3 multipart; larger parts past 10,000 of them), read from
//!    disk a part at a time, so memory holds at most [`BUFFERS`] parts
//!    whatever the file's size. The parts of
//!    an upload are remembered in `.lab/push/uploads/` as they arrive, so an
//!    interrupted push sends only the parts still missing.
//! 4. The manifest is written last: a pull sees the old project or the new
//!    one, never a mix. With `--force` the bucket then loses the files gone
//!    here (and any blob no longer named).
//!
//! A file is hashed as it is sent, and a file whose bytes changed since it
//! was scanned is not stored under the old hash: the push fails naming it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt as _;
use lab_store::{MARKER_FILE, Project, STORE_DIR, Store};
use object_store::ObjectStoreExt as _;
use object_store::multipart::{MultipartStore as _, PartId};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio::sync::Semaphore;

use crate::client::Bucket;
use crate::hashes::{self, Hashed, Hashes};
use crate::manifest::{
    Entry, MANIFEST_FORMAT, MANIFEST_MAX_BYTES, Manifest, blob_key, blobs_prefix, is_sha256,
    manifest_key,
};
use crate::scan::{self, LocalFile, STATE_DIR};
use crate::{Error, Progress};

/// Files larger than this are sent in parts of this size (S3 wants parts
/// of at least 5 MiB, but the last).
pub const PART_SIZE: u64 = 8 << 20;
/// S3 takes at most this many parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// The part size for a file of `size` bytes: [`PART_SIZE`], or more (whole
/// MiB) for a file that would take more than [`MAX_PARTS`] parts of it
/// (past 78 GiB).
#[must_use]
pub fn part_size(size: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    needed.max(PART_SIZE)
}

/// How many parts (or whole small files) may be in memory at once.
pub const BUFFERS: usize = 8;
/// How many files are sent at once.
const FILES_AT_ONCE: usize = 8;
/// How many parts of one file are sent at once.
const PARTS_AT_ONCE: usize = 4;

/// What `lab push` was asked to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct PushOptions {
    /// Delete from the bucket the files that are gone here.
    pub force: bool,
    /// Only say what would be sent and deleted.
    pub dry_run: bool,
}

/// What a push did (or, with `--dry-run`, would do).
#[derive(Debug, Default)]
pub struct PushReport {
    /// The project's name in the bucket.
    pub project: String,
    /// The key of its manifest.
    pub manifest: String,
    /// Files of the project pushed (sent or already there).
    pub files: usize,
    /// Of them, the files whose bytes were sent (would be, in a dry run),
    /// with their sizes.
    pub sent: Vec<(String, u64)>,
    /// The bytes that went over the network: less than the files' sizes
    /// when an interrupted upload was resumed.
    pub sent_bytes: u64,
    /// Files already in the bucket.
    pub unchanged: usize,
    /// Files the bucket lost because they are gone here (`--force`).
    pub deleted: Vec<String>,
    /// Files in the bucket that are gone here, kept there (no `--force`).
    pub kept_remote: usize,
    /// Run folders left out because their run is still logging.
    pub live_runs: Vec<String>,
    /// Files a bucket cannot hold (links, devices, names not UTF-8).
    pub unsendable: Vec<String>,
    /// What bringing the index up to date before the push found wrong.
    pub warnings: Vec<String>,
    /// How many files were read to hash them (the others had not changed
    /// since an earlier push read them).
    pub read: usize,
}

/// Where the parts of an interrupted upload are remembered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct UploadState {
    endpoint: String,
    bucket: String,
    key: String,
    upload_id: String,
    part_size: u64,
    size: u64,
    parts: Vec<Option<PartDone>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PartDone {
    etag: String,
    sha256: String,
}

/// A file to send: its bytes are named by `sha256`.
#[derive(Clone, Debug)]
struct ToSend {
    file: LocalFile,
    sha256: String,
}

/// Pushes `project` to `bucket` under the name `name`.
pub async fn push(
    project: &Project,
    bucket: &Bucket,
    name: &str,
    opts: PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport, Error> {
    let plan = plan(project, bucket, name, opts, progress).await?;
    if opts.dry_run {
        return Ok(plan.report);
    }
    let Plan {
        mut report,
        manifest,
        remote,
        to_send,
        blobs,
        remembered,
        hashes_path,
    } = plan;
    if !report.deleted.is_empty() {
        progress.before_delete(&report.deleted);
    }
    let state_dir = project.store_dir().join(STATE_DIR).join("uploads");
    report.sent_bytes = send_all(bucket, name, &state_dir, to_send, progress).await?;
    if remote.as_ref() != Some(&manifest) {
        let mkey = manifest_key(name);
        let bytes = manifest.to_bytes()?;
        bucket
            .store
            .put(&crate::client::key(&mkey)?, bytes.into())
            .await
            .map_err(|e| bucket.error("writing the manifest", &e))?;
    }
    // The uploads are all complete: their folder goes if empty (another
    // push may be using it; then it stays).
    let _ = std::fs::remove_dir(&state_dir);
    remembered.save(&hashes_path)?;
    if opts.force {
        prune(bucket, name, &manifest, &blobs).await?;
    }
    Ok(report)
}

/// What a push will do, found before anything is sent.
struct Plan {
    /// The report so far: what will be sent, kept and deleted.
    report: PushReport,
    /// The manifest to write once every blob is there.
    manifest: Manifest,
    /// The manifest the bucket holds.
    remote: Option<Manifest>,
    /// One upload per distinct content missing from the bucket.
    to_send: BTreeMap<String, ToSend>,
    /// The blobs in the bucket, with their sizes.
    blobs: HashMap<String, u64>,
    /// The hashes to remember for the next push, and where.
    remembered: Hashes,
    hashes_path: std::path::PathBuf,
}

/// Reads the bucket and the project (folding the journals, unless a dry
/// run), hashes what changed, and works out the next manifest and what to
/// send.
async fn plan(
    project: &Project,
    bucket: &Bucket,
    name: &str,
    opts: PushOptions,
    progress: &dyn Progress,
) -> Result<Plan, Error> {
    crate::config::check_project_name("the project's folder name", name)?;
    let mkey = manifest_key(name);
    let remote = match bucket.get_small(&mkey, MANIFEST_MAX_BYTES).await? {
        Some(bytes) => Some(Manifest::parse(&bytes, &bucket.url(&mkey))?),
        None => None,
    };
    let blobs = present_blobs(bucket, name).await?;
    if !opts.dry_run {
        progress.answered();
    }
    let scanned = scan::scan(project)?;
    let marker = format!("{STORE_DIR}/{MARKER_FILE}");
    if !scanned.files.iter().any(|f| f.path == marker) {
        return Err(Error::Invalid(format!(
            "`.labignore` leaves out `{marker}`, without which a pulled copy is no Lab project: {}",
            project.root().display()
        )));
    }
    // The bucket answered and the push can be made: fold what the journals
    // hold, as every reader does, so that a crashed run's journal loses its
    // reserved space (or its damaged tail, into a file of its own) here and
    // now, not in the pulled copy (which would then differ). Then look
    // again: the fold may have made files.
    let (warnings, scanned) = if opts.dry_run {
        (Vec::new(), scanned)
    } else {
        (fold(project), scan::scan(project)?)
    };
    let local_runs = run_ids(project, &scanned.live_runs);
    if let Some(remote) = &remote {
        check_clashes(&local_runs, remote, opts.force)?;
    }
    let hashes_path = project
        .store_dir()
        .join(STATE_DIR)
        .join(hashes::HASHES_FILE);
    let (hashed, remembered, read) = hash_all(
        &scanned.files,
        Arc::new(Hashes::load(&hashes_path)),
        progress,
    )
    .await?;

    let mut report = PushReport {
        project: name.to_owned(),
        manifest: bucket.url(&format!("{name}/")),
        files: hashed.len(),
        live_runs: scanned.live_runs.clone(),
        unsendable: scanned.unsendable.clone(),
        warnings,
        read,
        ..PushReport::default()
    };
    let (mut manifest, deleted, kept_remote) =
        next_manifest(name, &hashed, &scanned, remote.as_ref(), opts.force);
    manifest.runs = next_runs(&manifest, local_runs, remote.as_ref());
    report.deleted = deleted;
    report.kept_remote = kept_remote;

    let mut to_send: BTreeMap<String, ToSend> = BTreeMap::new();
    for (file, sha) in &hashed {
        if blobs.get(sha) == Some(&file.size) {
            report.unchanged += 1;
        } else {
            report.sent.push((file.path.clone(), file.size));
            to_send.entry(sha.clone()).or_insert_with(|| ToSend {
                file: file.clone(),
                sha256: sha.clone(),
            });
        }
    }
    Ok(Plan {
        report,
        manifest,
        remote,
        to_send,
        blobs,
        remembered,
        hashes_path,
    })
}

/// Sends every blob of `to_send`, several at once; returns the bytes sent.
async fn send_all(
    bucket: &Bucket,
    name: &str,
    state_dir: &std::path::Path,
    to_send: BTreeMap<String, ToSend>,
    progress: &dyn Progress,
) -> Result<u64, Error> {
    let total: u64 = to_send.values().map(|t| t.file.size).sum();
    progress.begin("sending", to_send.len() as u64, total);
    let ctx = Arc::new(Ctx {
        bucket: bucket.clone(),
        project: name.to_owned(),
        state_dir: state_dir.to_owned(),
        buffers: Arc::new(Semaphore::new(BUFFERS)),
    });
    let results: Vec<Result<u64, Error>> =
        futures_util::stream::iter(to_send.into_values().map(|t| {
            let ctx = Arc::clone(&ctx);
            async move { ctx.upload(&t, progress).await }
        }))
        .buffer_unordered(FILES_AT_ONCE)
        .collect()
        .await;
    progress.end();
    let mut sent = 0;
    for r in results {
        sent += r?;
    }
    Ok(sent)
}

/// Deletes the blobs no longer named by `manifest` (`--force`).
async fn prune(
    bucket: &Bucket,
    name: &str,
    manifest: &Manifest,
    blobs: &HashMap<String, u64>,
) -> Result<(), Error> {
    let named: BTreeSet<&str> = manifest.files.iter().map(|e| e.sha256.as_str()).collect();
    for sha in blobs.keys().filter(|s| !named.contains(s.as_str())) {
        let key = crate::client::key(&blob_key(name, sha))?;
        bucket
            .store
            .delete(&key)
            .await
            .map_err(|e| bucket.error("deleting files gone here", &e))?;
    }
    Ok(())
}

/// The full id of each run pushed, by short id, as the index has them
/// (runs still logging are left out). A dry run does not make an index to
/// ask.
fn run_ids(project: &Project, live: &[String]) -> BTreeMap<String, String> {
    if !project.index_path().exists() {
        return BTreeMap::new();
    }
    let runs = Store::open(project.clone()).and_then(|s| s.runs(None));
    runs.map(|runs| {
        runs.into_iter()
            .filter(|r| {
                !live
                    .iter()
                    .any(|l| l.ends_with(&format!("/{}", r.short_id)))
            })
            .map(|r| (r.short_id, r.id.to_string()))
            .collect()
    })
    .unwrap_or_default()
}

/// Refuses to replace, without `--force`, a run of the bucket by another
/// run of the same short id.
fn check_clashes(
    local: &BTreeMap<String, String>,
    remote: &Manifest,
    force: bool,
) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    for (short, id) in local {
        if let Some(theirs) = remote.runs.get(short).filter(|t| *t != id) {
            return Err(Error::Invalid(format!(
                "the bucket's run folder `.lab/runs/{short}` holds another run (`{theirs}`) than here (`{id}`): two copies of the project made a run in the same quarter second, and this push would replace the bucket's\n\nhint: pull the bucket's copy into another folder to keep its run, then push with `--force` to replace it"
            )));
        }
    }
    Ok(())
}

/// The run ids of the new manifest: this copy's, and the bucket's for the
/// run folders it keeps.
fn next_runs(
    manifest: &Manifest,
    local: BTreeMap<String, String>,
    remote: Option<&Manifest>,
) -> BTreeMap<String, String> {
    let mut runs = BTreeMap::new();
    if let Some(remote) = remote {
        for (short, id) in &remote.runs {
            let folder = format!("{STORE_DIR}/runs/{short}/");
            if manifest.files.iter().any(|e| e.path.starts_with(&folder)) {
                runs.insert(short.clone(), id.clone());
            }
        }
    }
    runs.extend(local);
    runs
}

/// Folds the journals into the index; returns what went wrong, as warnings
/// (the journals are pushed as they are all the same).
fn fold(project: &Project) -> Vec<String> {
    match Store::open(project.clone()).and_then(|mut s| s.refresh()) {
        Ok(issues) => issues.iter().map(ToString::to_string).collect(),
        Err(e) => vec![format!(
            "could not bring the index up to date before pushing (the journals are pushed as they are): {e}"
        )],
    }
}

/// The blobs in the bucket, by hash, with their sizes.
async fn present_blobs(bucket: &Bucket, name: &str) -> Result<HashMap<String, u64>, Error> {
    let prefix = blobs_prefix(name);
    Ok(bucket
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|(key, size)| {
            let sha = key.rsplit('/').next()?.to_owned();
            is_sha256(&sha).then_some((sha, size))
        })
        .collect())
}

/// Hashes every file, a few at a time on the blocking pool, taking the
/// remembered hash of a file that cannot have changed; returns the hashes
/// to remember next time and how many files were read.
async fn hash_all(
    files: &[LocalFile],
    known: Arc<Hashes>,
    progress: &dyn Progress,
) -> Result<(Vec<(LocalFile, String)>, Hashes, usize), Error> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    progress.begin("hashing", files.len() as u64, total);
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let results: Vec<Result<(LocalFile, Hashed, Hashes), Error>> =
        futures_util::stream::iter(files.iter().cloned().map(|file| {
            let known = Arc::clone(&known);
            async move {
                let (rel, abs) = (file.path.clone(), file.abs.clone());
                let (hashed, learnt) = tokio::task::spawn_blocking(move || {
                    let mut learnt = Hashes::default();
                    known.hash(&rel, &abs, &mut learnt).map(|h| (h, learnt))
                })
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
                progress.advance(hashed.size);
                Ok((file, hashed, learnt))
            }
        }))
        .buffered(threads)
        .collect()
        .await;
    progress.end();
    let mut out = Vec::with_capacity(files.len());
    let mut remembered = Hashes::default();
    let mut read = 0;
    for r in results {
        let (file, hashed, learnt) = r?;
        remembered.extend(learnt);
        read += usize::from(hashed.read);
        out.push((
            LocalFile {
                size: hashed.size,
                ..file
            },
            hashed.sha256,
        ));
    }
    Ok((out, remembered, read))
}

/// The manifest after this push; the paths it drops (`--force`); how many
/// files only the bucket has and keeps.
fn next_manifest(
    name: &str,
    hashed: &[(LocalFile, String)],
    scanned: &scan::Scan,
    remote: Option<&Manifest>,
    force: bool,
) -> (Manifest, Vec<String>, usize) {
    let mut files: BTreeMap<String, Entry> = hashed
        .iter()
        .map(|(f, sha)| {
            (
                f.path.clone(),
                Entry {
                    path: f.path.clone(),
                    size: f.size,
                    sha256: sha.clone(),
                    mode: f.mode,
                },
            )
        })
        .collect();
    let mut dirs: BTreeSet<String> = scanned.dirs.iter().cloned().collect();
    let local_files: BTreeSet<String> = files.keys().cloned().collect();
    let local_dirs = dirs.clone();
    // Runs still logging were left out, not deleted: whatever the bucket
    // has of them stays, `--force` or not.
    let live: Vec<String> = scanned.live_runs.iter().map(|r| format!("{r}/")).collect();
    let is_live = |p: &str| live.iter().any(|l| p.starts_with(l.as_str()));
    // A path the bucket has that clashes with the tree here (a file where a
    // folder now is, or the reverse) gives way to the tree here.
    let clashes = |p: &str| {
        local_dirs.contains(p)
            || ancestors(p).any(|a| local_files.contains(a))
            || local_files.contains(p)
    };
    let mut deleted = Vec::new();
    let mut kept = 0;
    if let Some(remote) = remote {
        for e in &remote.files {
            if files.contains_key(&e.path) {
                continue;
            }
            if is_live(&e.path) {
                files.insert(e.path.clone(), e.clone());
            } else if force || clashes(&e.path) {
                deleted.push(e.path.clone());
            } else {
                files.insert(e.path.clone(), e.clone());
                kept += 1;
            }
        }
        for d in &remote.dirs {
            if (is_live(&format!("{d}/")) || !force)
                && !local_files.contains(d)
                && !ancestors(d).any(|a| local_files.contains(a))
            {
                dirs.insert(d.clone());
            }
        }
    }
    // Folders of files kept from the bucket.
    let parents: Vec<String> = files
        .keys()
        .flat_map(|p| ancestors(p).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    dirs.extend(parents);
    let dirs: Vec<String> = dirs
        .into_iter()
        .filter(|d| !files.contains_key(d))
        .collect();
    (
        Manifest {
            format: MANIFEST_FORMAT,
            project: name.to_owned(),
            files: files.into_values().collect(),
            dirs,
            runs: BTreeMap::new(),
        },
        deleted,
        kept,
    )
}

/// The result of a task, or the task's panic as an error.
fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, Error> {
    r.map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// `a/b/c` gives `a/b`, then `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut at = path;
    std::iter::from_fn(move || {
        let (parent, _) = at.rsplit_once('/')?;
        at = parent;
        Some(parent)
    })
}

struct Ctx {
    bucket: Bucket,
    project: String,
    state_dir: PathBuf,
    buffers: Arc<Semaphore>,
}

impl Ctx {
    /// Sends one file's bytes; returns how many bytes went over the network.
    async fn upload(&self, t: &ToSend, progress: &dyn Progress) -> Result<u64, Error> {
        if t.file.size <= PART_SIZE {
            self.upload_whole(t, progress).await
        } else {
            match self.upload_parts(t, progress, true).await {
                // The remembered upload is gone from the server (aborted,
                // expired): start it again.
                Err(Error::Remote(why)) if why.contains("NoSuchUpload") => {
                    self.upload_parts(t, progress, false).await
                }
                other => other,
            }
        }
    }

    async fn upload_whole(&self, t: &ToSend, progress: &dyn Progress) -> Result<u64, Error> {
        let _buffer = self
            .buffers
            .acquire()
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let bytes = fs_err::tokio::read(&t.file.abs).await?;
        if scan::sha256(&bytes) != t.sha256 {
            return Err(Error::Changed {
                path: t.file.path.clone(),
            });
        }
        let n = bytes.len() as u64;
        let key = crate::client::key(&blob_key(&self.project, &t.sha256))?;
        self.bucket
            .store
            .put(&key, bytes.into())
            .await
            .map_err(|e| self.bucket.error(&format!("sending `{}`", t.file.path), &e))?;
        progress.advance(n);
        Ok(n)
    }

    fn state_path(&self, sha: &str) -> PathBuf {
        self.state_dir.join(format!("{sha}.json"))
    }

    fn load_state(&self, sha: &str, key: &str, size: u64) -> Option<UploadState> {
        let bytes = std::fs::read(self.state_path(sha)).ok()?;
        let state: UploadState = serde_json::from_slice(&bytes).ok()?;
        let same = state.endpoint == self.bucket.endpoint
            && state.bucket == self.bucket.name
            && state.key == key
            && state.part_size == part_size(size)
            && state.size == size
            && state.parts.len() as u64 == size.div_ceil(part_size(size));
        same.then_some(state)
    }

    fn save_state(&self, sha: &str, state: &UploadState) -> Result<(), Error> {
        fs_err::create_dir_all(&self.state_dir)?;
        let path = self.state_path(sha);
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        let bytes = serde_json::to_vec(state).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        fs_err::write(&tmp, bytes)?;
        fs_err::rename(&tmp, &path)?;
        Ok(())
    }

    /// Sends a large file in parts, resuming a remembered upload when `resume`.
    async fn upload_parts(
        &self,
        t: &ToSend,
        progress: &dyn Progress,
        resume: bool,
    ) -> Result<u64, Error> {
        let key_text = blob_key(&self.project, &t.sha256);
        let key = crate::client::key(&key_text)?;
        let size = t.file.size;
        let part = part_size(size);
        let count = size.div_ceil(part) as usize;
        let doing = format!("sending `{}`", t.file.path);
        let mut state = self
            .upload_state(t, &key_text, &key, resume, &doing)
            .await?;
        let upload_id = state.upload_id.clone();
        let mut file = fs_err::tokio::File::open(&t.file.abs).await?;
        let mut whole = Sha256::new();
        let mut sent = 0u64;
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        for index in 0..count {
            let permit = Arc::clone(&self.buffers)
                .acquire_owned()
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?;
            let len = (size - index as u64 * part).min(part) as usize;
            let mut buf = vec![0u8; len];
            file.read_exact(&mut buf).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::Changed {
                        path: t.file.path.clone(),
                    }
                } else {
                    Error::Io(e)
                }
            })?;
            whole.update(&buf);
            let part_sha = scan::sha256(&buf);
            if state.parts[index]
                .as_ref()
                .is_some_and(|p| p.sha256 == part_sha)
            {
                // Sent by an earlier push, and the same bytes.
                progress.advance(len as u64);
                continue;
            }
            let store = Arc::clone(&self.bucket.store);
            let key = key.clone();
            let id = upload_id.clone();
            // A task of its own: it goes on (and gives its buffer back)
            // while this file waits for a buffer for its next part, which
            // another file's parts may hold.
            in_flight.push(tokio::spawn(async move {
                let r = store.put_part(&key, &id, index, buf.into()).await;
                drop(permit);
                (index, part_sha, len as u64, r)
            }));
            while in_flight.len() >= PARTS_AT_ONCE {
                if let Some(done) = in_flight.next().await {
                    sent += self.record_part(t, &mut state, joined(done)?, &doing, progress)?;
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            sent += self.record_part(t, &mut state, joined(done)?, &doing, progress)?;
        }
        // Nothing may be stored under a hash its bytes do not have.
        let mut extra = [0u8; 1];
        let longer = file.read(&mut extra).await? > 0;
        if longer || scan::hex(&whole.finalize()) != t.sha256 {
            let _ = self.bucket.store.abort_multipart(&key, &upload_id).await;
            let _ = fs_err::remove_file(self.state_path(&t.sha256));
            return Err(Error::Changed {
                path: t.file.path.clone(),
            });
        }
        self.complete(t, &key, &state, &doing).await?;
        Ok(sent)
    }

    /// The multipart upload of `t`: the one an earlier push left (with
    /// `resume`, when its state file still fits), else a new one, whose
    /// state is saved before any part is sent.
    async fn upload_state(
        &self,
        t: &ToSend,
        key_text: &str,
        key: &object_store::path::Path,
        resume: bool,
        doing: &str,
    ) -> Result<UploadState, Error> {
        let size = t.file.size;
        if resume && let Some(s) = self.load_state(&t.sha256, key_text, size) {
            return Ok(s);
        }
        let part = part_size(size);
        let upload_id = self
            .bucket
            .store
            .create_multipart(key)
            .await
            .map_err(|e| self.bucket.error(doing, &e))?;
        let s = UploadState {
            endpoint: self.bucket.endpoint.clone(),
            bucket: self.bucket.name.clone(),
            key: key_text.to_owned(),
            upload_id,
            part_size: part,
            size,
            parts: vec![None; size.div_ceil(part) as usize],
        };
        self.save_state(&t.sha256, &s)?;
        Ok(s)
    }

    /// Completes the upload whose parts `state` names, and forgets it.
    async fn complete(
        &self,
        t: &ToSend,
        key: &object_store::path::Path,
        state: &UploadState,
        doing: &str,
    ) -> Result<(), Error> {
        let parts: Vec<PartId> = state
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.as_ref().map(|p| p.etag.clone()).unwrap_or_default(),
            })
            .collect();
        self.bucket
            .store
            .complete_multipart(key, &state.upload_id, parts)
            .await
            .map_err(|e| self.bucket.error(doing, &e))?;
        let _ = fs_err::remove_file(self.state_path(&t.sha256));
        Ok(())
    }

    fn record_part(
        &self,
        t: &ToSend,
        state: &mut UploadState,
        (index, sha256, len, result): (usize, String, u64, object_store::Result<PartId>),
        doing: &str,
        progress: &dyn Progress,
    ) -> Result<u64, Error> {
        let part = result.map_err(|e| self.bucket.error(doing, &e))?;
        state.parts[index] = Some(PartDone {
            etag: part.content_id,
            sha256,
        });
        self.save_state(&t.sha256, state)?;
        progress.advance(len);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_what_s3_takes() {
        assert_eq!(part_size(1), PART_SIZE);
        assert_eq!(part_size(64 << 20), PART_SIZE);
        assert_eq!(part_size(MAX_PARTS * PART_SIZE), PART_SIZE);
        for size in [MAX_PARTS * PART_SIZE + 1, 1 << 40, 5 << 40] {
            let part = part_size(size);
            assert!(size.div_ceil(part) <= MAX_PARTS, "{size}");
            assert_eq!(part % (1 << 20), 0);
        }
    }
}
