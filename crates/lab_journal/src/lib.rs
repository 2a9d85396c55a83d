//! The run journal: the only write path of Lab.
//!
//! A journal is one file per run: a [header](HEADER_LEN) followed by frames
//! `len: u32 LE | crc32c(payload): u32 LE | payload`. Payloads encode
//! [`lab_types::Record`]s (see [`codec`]). A frame length of zero marks the end
//! of the written part (the rest of the file is space reserved ahead).
//!
//! [`JournalWriter`] appends through a shared memory map, so the bytes of a
//! record belong to the kernel as soon as `append` returns, and a `kill -9` one
//! instant later loses nothing. [`read_journal`] decodes a journal, reporting
//! every torn or corrupt stretch it skipped: behind a live writer it stops at
//! the first, in a settled journal it reads on from the next good frame.

pub mod codec;
#[doc(hidden)]
pub mod fuzzing;
pub mod holes;
mod liveness;
mod meta;
mod reader;
mod writer;

pub use codec::DecodeError;
pub use liveness::{WRITER_ATTR, WriterIdentity};
pub use meta::{append_edits, read_edits};
pub use reader::{
    Damage, Mode, RESYNC_MAX_PAYLOAD, Scan, read_frames, read_journal, read_journal_as,
    read_journal_skipping, scan_from, scan_from_as,
};
pub use writer::{END_RESERVE, JournalWriter, append_to_settled};

/// The magic bytes a journal starts with.
pub const MAGIC: &[u8; 8] = b"LABJRNL\0";
/// The format version this crate writes and the only one it reads. Records
/// may be added within a version (readers skip tags they do not know); any
/// other change to the layout takes a new version.
pub const FORMAT_VERSION: u16 = 1;
/// Header length in bytes: magic, version (u16 LE), flags (u16 LE), reserved (u32).
pub const HEADER_LEN: usize = 16;
/// A frame's header: length and CRC.
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload a frame may carry.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// Errors of journal I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file system said no.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not a Lab journal, or of a version this build cannot read.
    #[error("{path} is not a Lab journal: {reason}")]
    BadHeader {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A record too large for one frame.
    #[error(
        "a record of {size} bytes is larger than the {MAX_PAYLOAD}-byte limit of one journal frame"
    )]
    TooLarge {
        /// Its encoded size.
        size: usize,
    },
    /// The journal was already closed.
    #[error("the journal is closed")]
    Closed,
    /// Another process holds the journal's lock: its writer, or a reader.
    #[error("another process holds the journal (its writer, or a reader): {path}")]
    InUse {
        /// The file.
        path: String,
    },
}

/// The 16 header bytes of a journal of this version.
#[must_use]
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}
