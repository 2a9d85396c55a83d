//! A whole project to and from an S3-compatible bucket: `lab config minio`,
//! `lab push` and `lab pull`, as the original Lab had them, but incremental
//! by content hash, resumable, and parallel.
//!
//! - [`config`]: the user's remotes (endpoint and credentials by tag), kept
//!   in the user's configuration folder with mode 0600, never in a project;
//! - [`scan`]: which files a push sends (all but `.labignore`'s, the index,
//!   and the folders of runs still logging);
//! - [`hashes`]: the hashes a push remembers, so that an unchanged file is
//!   not read again;
//! - [`manifest`]: the layout in the bucket, a manifest naming each file's
//!   SHA-256 and one blob per distinct content;
//! - [`push()`] and [`pull()`]: the transfers, reporting through [`Progress`].
//!
//! The S3 client is `object_store`'s; all network work runs on a Tokio
//! runtime of its own, made by [`block_on`].

mod client;
pub mod config;
mod error;
pub mod hashes;
pub mod manifest;
mod pull;
mod push;
pub mod scan;

pub use client::Bucket;
pub use error::Error;
pub use pull::{PullReport, pull};
pub use push::{BUFFERS, PART_SIZE, PushOptions, PushReport, push};

/// Told how a transfer goes, for a progress bar and warnings.
pub trait Progress: Send + Sync {
    /// A phase starts (`"hashing"`, `"sending"`, `"fetching"`) over this
    /// many files and bytes.
    fn begin(&self, phase: &str, files: u64, bytes: u64);
    /// This many more bytes are done.
    fn advance(&self, bytes: u64);
    /// The phase is over.
    fn end(&self);
    /// The bucket answered: the remote, its credentials and the bucket are
    /// good (the moment to remember them, before the transfer that may be
    /// interrupted).
    fn answered(&self) {}
    /// `lab push --force` is about to delete these files from the bucket
    /// (they are gone here): the moment to warn.
    fn before_delete(&self, _paths: &[String]) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// Runs a transfer to its end on a runtime made for it.
pub fn block_on<T>(f: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lab-remote")
        .build()?;
    runtime.block_on(f)
}
