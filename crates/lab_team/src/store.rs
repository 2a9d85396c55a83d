//! The object store, which holds the truth: each run's journal and meta
//! journal (its edits), as the stretches the server received (each kept
//! once, named by the offset it starts at), and every blob, named by its
//! SHA-256.
//!
//! ```text
//! PREFIX/projects/{project}/runs/{run id}/journal/{offset, 20 digits}
//! PREFIX/projects/{project}/runs/{run id}/meta/{offset, 20 digits}
//! PREFIX/blobs/{first two hex digits}/{sha256}
//! PREFIX/uploads/{upload id}/{part number, 6 digits}
//! ```
//!
//! A journal is its stretches from offset 0, each starting where the one
//! before ends. A stretch is written before the index learns of it, so one
//! written by a request that then failed may lie past the end the index
//! holds; the next request writes the same offset again.

use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};

use crate::error::ApiError;

/// Which of a run's two journals: the one its process writes, or the meta
/// journal of the edits made to it after it started (`meta.lab`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Journal {
    /// `journal.lab`.
    Run,
    /// `meta.lab`.
    Meta,
}

impl Journal {
    /// The folder of its stretches, in the run's folder.
    fn folder(self) -> &'static str {
        match self {
            Journal::Run => "journal",
            Journal::Meta => "meta",
        }
    }

    /// What it is called in messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Journal::Run => "journal",
            Journal::Meta => "meta journal",
        }
    }
}

/// The object store and the prefix under which the server keeps its objects.
#[derive(Clone)]
pub(crate) struct Bucket {
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: String,
}

/// Why an `--artifacts` URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadStoreUrl(String);

impl Bucket {
    /// The store `url` names: `s3://bucket/prefix` (configured by the
    /// standard `AWS_*` variables, `AWS_ENDPOINT_URL` included; an `http://`
    /// endpoint is allowed) or `file:///path` (a folder, made if missing).
    pub(crate) fn open(url: &str) -> Result<Self, BadStoreUrl> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BadStoreUrl(format!(
                    "`--artifacts` names no bucket: got `{url}`; expected `s3://BUCKET/PREFIX`"
                )));
            }
            // A store that does not answer fails a request in seconds (503,
            // and the client backs off), not after object_store's default
            // three minutes of retries, with the client's request open.
            let retry = object_store::RetryConfig {
                max_retries: 4,
                retry_timeout: std::time::Duration::from_secs(10),
                ..object_store::RetryConfig::default()
            };
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry);
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok();
            if let Some(endpoint) = endpoint {
                if endpoint.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
                builder = builder.with_endpoint(endpoint);
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                builder = builder.with_region("us-east-1");
            }
            let store = builder
                .build()
                .map_err(|e| BadStoreUrl(format!("cannot use `{url}`: {e}")))?;
            Ok(Self {
                store: Arc::new(store),
                prefix: prefix.trim_matches('/').to_owned(),
            })
        } else if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(BadStoreUrl(format!(
                    "`--artifacts` must name an absolute folder: got `{url}`; expected `file:///PATH`"
                )));
            }
            std::fs::create_dir_all(path)
                .map_err(|e| BadStoreUrl(format!("cannot make the folder `{path}`: {e}")))?;
            let store = LocalFileSystem::new_with_prefix(path)
                .map_err(|e| BadStoreUrl(format!("cannot use `{url}`: {e}")))?;
            Ok(Self {
                store: Arc::new(store),
                prefix: String::new(),
            })
        } else {
            Err(BadStoreUrl(format!(
                "`--artifacts` must be an `s3://BUCKET/PREFIX` or `file:///PATH` URL: got `{url}`"
            )))
        }
    }

    pub(crate) fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// The folder of the stretches of run `run`'s journal `journal`.
    pub(crate) fn journal_dir(&self, journal: Journal, project: &str, run: &str) -> Path {
        self.path(&format!(
            "projects/{project}/runs/{run}/{}",
            journal.folder()
        ))
    }

    /// The stretch of run `run`'s journal `journal` that starts at `offset`.
    pub(crate) fn stretch(&self, journal: Journal, project: &str, run: &str, offset: u64) -> Path {
        self.path(&format!(
            "projects/{project}/runs/{run}/{}/{offset:020}",
            journal.folder()
        ))
    }

    /// The blob whose SHA-256 is `sha`.
    pub(crate) fn blob(&self, sha: &str) -> Path {
        self.path(&format!("blobs/{}/{sha}", &sha[..2]))
    }

    /// Part `n` of upload `id`.
    pub(crate) fn part(&self, id: &str, n: u32) -> Path {
        self.path(&format!("uploads/{id}/{n:06}"))
    }

    /// The folder of upload `id`'s parts.
    pub(crate) fn upload_dir(&self, id: &str) -> Path {
        self.path(&format!("uploads/{id}"))
    }

    /// The names of the folders right under `rest` (a folder of this
    /// store's prefix), sorted.
    pub(crate) async fn folders(&self, rest: &str) -> Result<Vec<String>, ApiError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.path(rest)))
            .await?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The stretches of run `run`'s journal `journal` that make it up to
    /// `length`: `(start, size)` from offset 0, each starting where the one
    /// before ended. A `length` of `u64::MAX` takes every stretch so chained.
    pub(crate) async fn stretches(
        &self,
        journal: Journal,
        project: &str,
        run: &str,
        length: u64,
    ) -> Result<Vec<(u64, u64)>, ApiError> {
        let found = self.all_stretches(journal, project, run).await?;
        let mut chain = Vec::new();
        let mut at = 0;
        for (start, size) in found {
            if at >= length {
                break;
            }
            if start == at {
                chain.push((start, size));
                at += size;
            }
        }
        if at < length && length != u64::MAX {
            return Err(ApiError::Internal(format!(
                "the object store holds {at} bytes of the {} of run `{run}` of project `{project}`, the index {length}",
                journal.what()
            )));
        }
        Ok(chain)
    }

    /// Every stretch object of run `run`'s journal `journal`, chained or not
    /// (a merge leaves the ones it covered for the next to delete), as
    /// `(start, size)`, sorted.
    pub(crate) async fn all_stretches(
        &self,
        journal: Journal,
        project: &str,
        run: &str,
    ) -> Result<Vec<(u64, u64)>, ApiError> {
        let dir = self.journal_dir(journal, project, run);
        let mut found: Vec<(u64, u64)> = Vec::new();
        let mut listing = self.store.list(Some(&dir));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(start) = meta.location.filename().and_then(|n| n.parse::<u64>().ok()) {
                found.push((start, meta.size));
            }
        }
        found.sort_unstable();
        Ok(found)
    }

    /// The whole of run `run`'s journal `journal` as the store chains it:
    /// every stretch from offset 0, each where the one before ended.
    pub(crate) async fn whole_journal(
        &self,
        journal: Journal,
        project: &str,
        run: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        for (start, size) in self.stretches(journal, project, run, u64::MAX).await? {
            let bytes = self
                .store
                .get_range(&self.stretch(journal, project, run, start), 0..size)
                .await?;
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// Bytes `[from, to)` of run `run`'s journal `journal`, which is
    /// `length` long.
    pub(crate) async fn journal_range(
        &self,
        journal: Journal,
        project: &str,
        run: &str,
        length: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::with_capacity((to - from) as usize);
        for (start, size) in self.stretches(journal, project, run, length).await? {
            let end = start + size;
            if end <= from || start >= to {
                continue;
            }
            let lo = from.max(start) - start;
            let hi = to.min(end) - start;
            let bytes = self
                .store
                .get_range(&self.stretch(journal, project, run, start), lo..hi)
                .await?;
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }
}
