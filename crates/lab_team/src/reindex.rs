//! `lab server reindex`: the index in PostgreSQL made again from the object
//! store alone. Each project's runs are cleared from the index, then every
//! journal in the store is folded again, stretch after stretch from offset
//! 0, with the same fold as when it was received, and after it the run's
//! meta journal (its edits), which keep the last word. Tokens, heartbeats and
//! file lists (the server's own state, schema `lab_team`) are left as they
//! are.
//!
//! Run it with the servers stopped: a journal stretch received meanwhile
//! would be folded twice or not at all.

use lab_pg::PgIndex;
use lab_store::index::{FoldIndex as _, fold_received, fold_received_meta};
use object_store::ObjectStoreExt as _;

use crate::error::ApiError;
use crate::ingest::run_id;
use crate::store::{Bucket, Journal};
use crate::tokens::valid_project;

/// What a reindex did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Projects indexed.
    pub projects: usize,
    /// Runs indexed.
    pub runs: usize,
    /// Journal bytes read.
    pub bytes: u64,
}

/// Rebuilds the index at `database` from the object store at `artifacts`
/// (every project, or only `project`). Blocks; call it outside an async
/// runtime.
pub fn reindex(
    database: &str,
    artifacts: &str,
    project: Option<&str>,
) -> Result<Reindexed, ApiError> {
    let bucket = Bucket::open(artifacts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ApiError::Internal(format!("cannot start a runtime: {e}")))?;
    PgIndex::migrate(database)?;
    let projects = match project {
        Some(p) => vec![p.to_owned()],
        None => runtime.block_on(bucket.folders("projects"))?,
    };
    let mut done = Reindexed::default();
    for name in projects.iter().filter(|p| valid_project(p)) {
        let mut index = PgIndex::connect(database, name)?;
        index.clear()?;
        done.projects += 1;
        for run in runtime.block_on(bucket.folders(&format!("projects/{name}/runs")))? {
            let Ok(id) = run_id(&run) else { continue };
            let text = id.to_string();
            let stretches =
                runtime.block_on(bucket.stretches(Journal::Run, name, &text, u64::MAX))?;
            for (start, size) in stretches {
                let bytes = runtime.block_on(
                    bucket
                        .store
                        .get_range(&bucket.stretch(Journal::Run, name, &text, start), 0..size),
                )?;
                // No edits are folded yet: they come after the journal.
                fold_received(&mut index, &id, start, &bytes, false, &mut |_| {
                    Ok(Vec::new())
                })?;
                done.bytes += size;
            }
            // Edits of a run whose journal has no Start record have nothing
            // to apply to (the server never took them).
            let meta = runtime.block_on(bucket.whole_journal(Journal::Meta, name, &text))?;
            if !meta.is_empty() && index.indexed_id(&text)?.is_some() {
                fold_received_meta(&mut index, &id, &meta)?;
                done.bytes += meta.len() as u64;
            }
            done.runs += 1;
        }
    }
    Ok(done)
}
