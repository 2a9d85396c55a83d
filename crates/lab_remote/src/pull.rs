//! `lab pull`: a pushed project out of a bucket, into a new folder.
//!
//! The files are fetched into a hidden folder beside the new one
//! (`.NAME.pulling`), each checked against its SHA-256 before it takes its
//! place, so an interrupted pull starts again where it stopped and a
//! damaged download never passes for a file. When every file is in, the
//! folder is renamed NAME, and its index is built from its journals (the
//! index is never pushed: it is derived).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use lab_store::{Project, Store};
use object_store::ObjectStoreExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::client::Bucket;
use crate::manifest::{Entry, MANIFEST_MAX_BYTES, Manifest, blob_key, manifest_key};
use crate::{Error, Progress, scan};

/// How many files are fetched at once.
const FILES_AT_ONCE: usize = 8;

/// What a pull did.
#[derive(Debug, Default)]
pub struct PullReport {
    /// The new project folder.
    pub root: PathBuf,
    /// The key of the manifest it came from.
    pub manifest: String,
    /// How many files it holds, and their bytes.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Files an interrupted pull had fetched already.
    pub resumed: usize,
    /// Runs in its rebuilt index.
    pub runs: usize,
    /// What the rebuild of the index found wrong in journals.
    pub issues: Vec<String>,
}

/// Pulls the project `name` from `bucket` into the new folder `cwd/name`.
pub async fn pull(
    cwd: &Path,
    bucket: &Bucket,
    name: &str,
    progress: &dyn Progress,
) -> Result<PullReport, Error> {
    crate::config::check_project_name("--project", name)?;
    let dest = cwd.join(name);
    if dest.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "`--project` names something that exists already in the current folder: `{name}` at {}\n\nhint: pull from another folder, or move it away first",
            dest.display()
        )));
    }
    let mkey = manifest_key(name);
    let Some(bytes) = bucket.get_small(&mkey, MANIFEST_MAX_BYTES).await? else {
        let there = bucket.projects().await?;
        let known = if there.is_empty() {
            "it holds none".to_owned()
        } else {
            format!(
                "it holds {}",
                there
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Error::NoSuchProject(format!(
            "`--project` names no project in bucket `{}` of remote `{}`: `{name}` ({known})",
            bucket.name, bucket.tag
        )));
    };
    let manifest = Manifest::parse(&bytes, &bucket.url(&mkey))?;
    progress.answered();
    let work = cwd.join(format!(".{name}.pulling"));
    fs_err::create_dir_all(&work)?;
    remove_strays(&work, &manifest)?;
    for d in &manifest.dirs {
        fs_err::create_dir_all(work.join(d))?;
    }
    for e in &manifest.files {
        if let Some(parent) = work.join(&e.path).parent() {
            fs_err::create_dir_all(parent)?;
        }
    }

    let mut report = PullReport {
        manifest: bucket.url(&format!("{name}/")),
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|e| e.size).sum(),
        ..PullReport::default()
    };
    // Files with the same bytes are fetched once, then copied.
    let mut by_hash: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in &manifest.files {
        by_hash.entry(e.sha256.as_str()).or_default().push(e);
    }
    progress.begin("fetching", manifest.files.len() as u64, report.bytes);
    let results: Vec<Result<usize, Error>> =
        futures_util::stream::iter(by_hash.values().map(|entries| {
            let work = work.clone();
            async move { fetch(bucket, name, &work, entries, progress).await }
        }))
        .buffer_unordered(FILES_AT_ONCE)
        .collect()
        .await;
    progress.end();
    for r in results {
        report.resumed += r?;
    }

    // `rename` would replace an empty folder made meanwhile: look again.
    if dest.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "`--project` names something made in the current folder during the pull: `{name}` at {}; the files are in {}",
            dest.display(),
            work.display()
        )));
    }
    fs_err::rename(&work, &dest)?;
    let project = Project::at(&dest)?;
    let (mut store, _) = Store::open_to_rebuild(project)?;
    report.issues = store.reindex()?.iter().map(ToString::to_string).collect();
    report.runs = store.runs(None)?.len();
    report.root = dest;
    Ok(report)
}

/// Removes what an earlier, interrupted pull of another version left in
/// `work` that this manifest does not name.
fn remove_strays(work: &Path, manifest: &Manifest) -> Result<(), Error> {
    let files: BTreeSet<&str> = manifest.files.iter().map(|e| e.path.as_str()).collect();
    let dirs: BTreeSet<&str> = manifest.dirs.iter().map(String::as_str).collect();
    let mut stack = vec![work.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let rel = path
                .strip_prefix(work)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = entry.file_type()?;
            if kind.is_dir() && !kind.is_symlink() {
                let needed = dirs.contains(rel.as_str())
                    || files.iter().any(|f| f.starts_with(&format!("{rel}/")));
                if needed {
                    stack.push(path);
                } else {
                    fs_err::remove_dir_all(&path)?;
                }
            } else if !files.contains(rel.as_str()) {
                fs_err::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// Whether `path` holds the file `e` describes already.
fn is_in_place(path: &Path, e: &Entry) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == e.size => {
            scan::hash_file(path).is_ok_and(|(sha, _)| sha == e.sha256)
        }
        _ => false,
    }
}

/// Fetches the blob shared by `entries` into each of their places; returns
/// how many were there already.
async fn fetch(
    bucket: &Bucket,
    name: &str,
    work: &Path,
    entries: &[&Entry],
    progress: &dyn Progress,
) -> Result<usize, Error> {
    let mut resumed = 0;
    let mut source: Option<PathBuf> = None;
    let mut missing = Vec::new();
    for e in entries {
        let path = work.join(&e.path);
        let (in_place, path) = {
            let p = path.clone();
            let e2 = (*e).clone();
            (
                tokio::task::spawn_blocking(move || is_in_place(&p, &e2))
                    .await
                    .map_err(|e| Error::Io(std::io::Error::other(e)))?,
                path,
            )
        };
        if in_place {
            resumed += 1;
            progress.advance(e.size);
            set_mode(&path, e.mode)?;
            source.get_or_insert(path);
        } else {
            missing.push((*e, path));
        }
    }
    for (e, path) in missing {
        let part = part_path(&path);
        match &source {
            Some(from) => {
                fs_err::tokio::copy(from, &part).await?;
            }
            None => download(bucket, name, e, &part).await?,
        }
        set_mode(&part, e.mode)?;
        fs_err::tokio::rename(&part, &path).await?;
        progress.advance(e.size);
        source.get_or_insert(path);
    }
    Ok(resumed)
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lab-part");
    path.with_file_name(name)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Streams a blob into `to`, checking its size and SHA-256.
async fn download(bucket: &Bucket, name: &str, e: &Entry, to: &Path) -> Result<(), Error> {
    let key = crate::client::key(&blob_key(name, &e.sha256))?;
    let doing = format!("fetching `{}`", e.path);
    let got = bucket
        .store
        .get(&key)
        .await
        .map_err(|err| match err {
            object_store::Error::NotFound { .. } => Error::BadRemoteData(format!(
                "the bucket lacks the bytes of `{}` ({}), which the manifest names\n\nhint: push the project again from a copy that has the file",
                e.path,
                bucket.url(&blob_key(name, &e.sha256))
            )),
            other => bucket.error(&doing, &other),
        })?;
    let mut out = fs_err::tokio::File::create(to).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| bucket.error(&doing, &err))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.sync_all().await?;
    drop(out);
    if size != e.size || scan::hex(&hasher.finalize()) != e.sha256 {
        let _ = fs_err::tokio::remove_file(to).await;
        return Err(Error::BadRemoteData(format!(
            "the bytes of `{}` in the bucket are not the ones the manifest names (SHA-256 `{}`, {} bytes): {}",
            e.path,
            e.sha256,
            e.size,
            bucket.url(&blob_key(name, &e.sha256))
        )));
    }
    Ok(())
}
