//! Projects pushed to the server's bucket with `lab push`, taken into the
//! index: one truth, the bucket.
//!
//! `lab push` writes a project as `<project>/manifest.json` and
//! `<project>/blobs/<sha256>` (see `lab_remote`). The server looks for such
//! manifests right under its store's prefix (every [`Options::scan_pushed`],
//! and at start) and, for each manifest it has not seen (by its entity tag), takes
//! each run in it as if its client had sent it: the bytes of its journal,
//! then of its meta journal (its edits), that the server lacks go through
//! the same checks, store and fold as a client's (a run that is also
//! streamed, or pushed again, only grows), and the
//! run's artifacts and models become its file list, their blobs copied
//! within the store to where the server keeps blobs.
//!
//! The folders `projects`, `blobs` and `uploads` are the server's own: a
//! pushed project of one of those names is not read.
//!
//! [`Options::scan_pushed`]: crate::Options::scan_pushed

use std::collections::HashMap;

use lab_remote::manifest::{Entry, MANIFEST_MAX_BYTES, Manifest, blob_key, manifest_key};
use lab_store::{JOURNAL_FILE, META_FILE};
use lab_types::RunId;
use object_store::ObjectStoreExt as _;

use crate::blobs::{FileEntry, file_path, keep_file_list, present};
use crate::error::ApiError;
use crate::ingest::{held, locked, receive, run_id};
use crate::store::Journal;
use crate::tokens::valid_project;
use crate::{AppState, MAX_JOURNAL_BODY};

/// The server's own folders in its store.
const OWN_FOLDERS: [&str; 3] = ["projects", "blobs", "uploads"];

/// What a look at the pushed projects took in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Manifests read (new or changed since the last look).
    pub(crate) projects: usize,
    /// Runs whose journal or edits grew.
    pub(crate) runs: usize,
    /// Journal and meta journal bytes taken in.
    pub(crate) bytes: u64,
    /// Runs whose file list was set.
    pub(crate) file_lists: usize,
}

/// The manifests already taken in, by project: their entity tags.
#[derive(Default)]
pub(crate) struct SeenManifests(HashMap<String, String>);

/// Looks for pushed projects in the store and takes in what is new.
/// A project whose manifest or runs cannot be read is told of on stderr and
/// skipped; only the store or the database failing is an error.
pub(crate) async fn look(state: &AppState, seen: &mut SeenManifests) -> Result<Taken, ApiError> {
    let bucket = &state.inner.bucket;
    let mut taken = Taken::default();
    for name in bucket.folders("").await? {
        if OWN_FOLDERS.contains(&name.as_str()) || !valid_project(&name) {
            continue;
        }
        let key = bucket.path(&manifest_key(&name));
        let meta = match bucket.store.head(&key).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let tag = meta
            .e_tag
            .clone()
            .unwrap_or_else(|| format!("{}/{}", meta.last_modified, meta.size));
        if seen.0.get(&name) == Some(&tag) {
            continue;
        }
        if meta.size > MANIFEST_MAX_BYTES as u64 {
            eprintln!(
                "lab server: the manifest of pushed project `{name}` is {} bytes, over the {MANIFEST_MAX_BYTES} read; skipped",
                meta.size
            );
            seen.0.insert(name, tag);
            continue;
        }
        let bytes = bucket.store.get(&key).await?.bytes().await?;
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(manifest) => take_project(state, &name, &manifest, &mut taken).await?,
            Err(e) => eprintln!(
                "lab server: the manifest of pushed project `{name}` is not one `lab push` writes ({e}); skipped"
            ),
        }
        taken.projects += 1;
        seen.0.insert(name, tag);
    }
    Ok(taken)
}

/// Takes in the runs of one pushed project.
async fn take_project(
    state: &AppState,
    name: &str,
    manifest: &Manifest,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    for (short, full) in &manifest.runs {
        let Ok(run) = run_id(full) else {
            eprintln!(
                "lab server: pushed project `{name}` names run `{short}` by `{full}`, not a full run id; skipped"
            );
            continue;
        };
        let folder = format!(".lab/runs/{short}/");
        let journal_path = format!("{folder}{JOURNAL_FILE}");
        let Some(journal) = manifest.files.iter().find(|f| f.path == journal_path) else {
            continue;
        };
        // The files first: a run listed is a run whose files can be read.
        if take_files(state, name, &run, &folder, &manifest.files).await? {
            taken.file_lists += 1;
        }
        let mut grew = take_journal(state, name, &run, Journal::Run, journal).await?;
        // The edits after the journal: they apply to the run it makes.
        let meta_path = format!("{folder}{META_FILE}");
        if let Some(meta) = manifest.files.iter().find(|f| f.path == meta_path) {
            grew += take_journal(state, name, &run, Journal::Meta, meta).await?;
        }
        if grew > 0 {
            taken.runs += 1;
            taken.bytes += grew;
        }
    }
    Ok(())
}

/// Sends the bytes of a pushed journal `journal` (the file `file`) the
/// server lacks through the checks, store and fold of a client's; returns
/// how many bytes it took.
async fn take_journal(
    state: &AppState,
    project: &str,
    run: &RunId,
    journal: Journal,
    file: &Entry,
) -> Result<u64, ApiError> {
    let blob = state.inner.bucket.path(&blob_key(project, &file.sha256));
    let size = file.size;
    let (project, run) = (project.to_owned(), *run);
    let handle = tokio::runtime::Handle::current();
    state
        .blocking(move |s| {
            let mut lease = s.inner.indexes.take(&project)?;
            let start = held(&mut lease, journal, &run)?;
            drop(lease);
            let mut length = start;
            while length < size {
                let end = size.min(length + MAX_JOURNAL_BODY as u64);
                let bytes = handle.block_on(s.inner.bucket.store.get_range(&blob, length..end))?;
                let after = locked(s, &project, &run, |client| {
                    receive(s, &handle, client, journal, &project, &run, length, &bytes)
                });
                match after {
                    Ok(after) if after > length => length = after,
                    // A torn last frame (the run was writing when pushed).
                    Ok(_) => break,
                    Err(
                        e @ (ApiError::JournalConflict { .. }
                        | ApiError::BadFrame { .. }
                        | ApiError::Gap { .. }
                        | ApiError::NoRun(_)),
                    ) => {
                        eprintln!(
                            "lab server: the {} of run `{run}` pushed in project `{project}` does not go on from the server's: {e}; skipped",
                            journal.what()
                        );
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(length.saturating_sub(start))
        })
        .await
}

/// Makes the run's artifacts and models, as pushed, its file list, their
/// blobs copied to the server's place for blobs. Returns whether the list
/// was set.
async fn take_files(
    state: &AppState,
    project: &str,
    run: &RunId,
    folder: &str,
    files: &[Entry],
) -> Result<bool, ApiError> {
    let bucket = &state.inner.bucket;
    let mut list = Vec::new();
    for f in files {
        let Some(rel) = f.path.strip_prefix(folder) else {
            continue;
        };
        let kept = rel.starts_with("artifacts/")
            || rel
                .strip_prefix("models/")
                .is_some_and(|m| !m.rsplit('/').next().unwrap_or(m).starts_with('.'));
        if !kept || file_path(rel).is_err() || !lab_remote::manifest::is_sha256(&f.sha256) {
            continue;
        }
        if !present(state, &f.sha256).await? {
            let from = bucket.path(&blob_key(project, &f.sha256));
            if let Err(e) = bucket.store.copy(&from, &bucket.blob(&f.sha256)).await {
                eprintln!(
                    "lab server: cannot copy file `{rel}` of run `{run}` pushed in project `{project}`: {e}; its file list is left as it was"
                );
                return Ok(false);
            }
        }
        list.push(FileEntry {
            path: rel.to_owned(),
            sha256: f.sha256.clone(),
            size: f.size,
        });
    }
    if list.is_empty() {
        return Ok(false);
    }
    let (project, run) = (project.to_owned(), *run);
    state
        .blocking(move |s| keep_file_list(s, &project, &run, &list))
        .await?;
    Ok(true)
}

/// Looks for pushed projects every `every` until the server stops.
pub(crate) async fn keep_looking(state: AppState, every: std::time::Duration) {
    let mut seen = SeenManifests::default();
    let stop = state.inner.shutdown.clone();
    loop {
        match look(&state, &mut seen).await {
            Ok(t) if t.runs > 0 || t.file_lists > 0 => eprintln!(
                "lab server: took in {} pushed run(s) of {} project(s), {} journal bytes",
                t.runs, t.projects, t.bytes
            ),
            Ok(_) => {}
            Err(e) => eprintln!("lab server: looking at pushed projects failed: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
