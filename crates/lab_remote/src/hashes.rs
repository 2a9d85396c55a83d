//! The hashes a push remembers, so that the next push reads a file again
//! only when it may have changed.
//!
//! Each file's SHA-256 is kept with what the file system says about it
//! (size, modification and change times, inode, device), in
//! `.lab/push/hashes.json` (never pushed). A later push takes the hash as it
//! is when all of these are the same and both times were at least
//! [`MARGIN_NANOS`] older than the moment the file was read: a write during
//! or just after the read (whose times the kernel may round down to before
//! it) would then show. The change time cannot be set back by anyone, so a
//! file rewritten with the same size and its old modification time is read
//! again all the same.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, scan};

/// The file in `.lab/push` holding the hashes.
pub const HASHES_FILE: &str = "hashes.json";
/// How much older than its reading a file's times must be for its hash to be
/// taken again unread: file systems round times, some to seconds.
pub const MARGIN_NANOS: i64 = 2_000_000_000;
const FORMAT: u32 = 1;

/// What the file system says about a file, enough to tell it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    size: u64,
    mtime_nanos: i64,
    ctime_nanos: i64,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            size: meta.len(),
            mtime_nanos: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_nanos: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Known {
    stamp: Stamp,
    sha256: String,
    read_nanos: i64,
}

/// The remembered hashes, by path in the project.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Hashes {
    format: u32,
    files: BTreeMap<String, Known>,
}

/// A file's hash, and whether it was read for it.
#[derive(Debug)]
pub struct Hashed {
    /// The SHA-256 of its bytes.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// Whether the file was read (rather than its hash remembered).
    pub read: bool,
}

impl Hashes {
    /// The hashes kept at `path`; none when it is missing or not readable
    /// (they are only a shortcut).
    #[must_use]
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Hashes>(&b).ok())
            .filter(|h| h.format == FORMAT)
            .unwrap_or_default()
    }

    /// Writes them to `path`, replacing the file whole.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        let bytes = serde_json::to_vec(&Hashes {
            format: FORMAT,
            files: self.files.clone(),
        })
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        fs_err::write(&tmp, bytes)?;
        fs_err::rename(&tmp, path)?;
        Ok(())
    }

    /// Takes in what `other` remembers.
    pub fn extend(&mut self, other: Hashes) {
        self.files.extend(other.files);
    }

    /// The hash of the file at `abs` (`rel` in the project): remembered when
    /// it cannot have changed since it was read, else read now. `into`
    /// learns it, when the file held still while it was read.
    pub fn hash(&self, rel: &str, abs: &Path, into: &mut Hashes) -> Result<Hashed, Error> {
        let before = Stamp::of(&fs_err::metadata(abs)?);
        if let Some(known) = self.files.get(rel)
            && known.stamp == before
            && before.mtime_nanos < known.read_nanos - MARGIN_NANOS
            && before.ctime_nanos < known.read_nanos - MARGIN_NANOS
        {
            into.files.insert(rel.to_owned(), known.clone());
            return Ok(Hashed {
                sha256: known.sha256.clone(),
                size: before.size,
                read: false,
            });
        }
        let read_nanos = now_nanos();
        let (sha256, size) = scan::hash_file(abs)?;
        let after = Stamp::of(&fs_err::metadata(abs)?);
        if after == before && size == before.size {
            into.files.insert(
                rel.to_owned(),
                Known {
                    stamp: before,
                    sha256: sha256.clone(),
                    read_nanos,
                },
            );
        }
        Ok(Hashed {
            sha256,
            size,
            read: true,
        })
    }
}

/// Now, in nanoseconds since the epoch, by the clock file times come from.
fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_taken_unread_only_from_a_file_that_held_still() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "one").unwrap();
        let mut first = Hashes::default();
        let h = Hashes::default().hash("f", &file, &mut first).unwrap();
        assert!(h.read);
        // Just written: too fresh to be trusted next time.
        let mut second = Hashes::default();
        assert!(first.hash("f", &file, &mut second).unwrap().read);
        // As if read long after it was written.
        for known in second.files.values_mut() {
            known.read_nanos += 10 * MARGIN_NANOS;
        }
        let mut third = Hashes::default();
        let h = second.hash("f", &file, &mut third).unwrap();
        assert!(!h.read);
        assert_eq!(h.sha256, scan::sha256(b"one"));
        // Rewritten with the same size and its old modification time: the
        // change time tells.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let mut fourth = Hashes::default();
        let h = third.hash("f", &file, &mut fourth).unwrap();
        assert!(h.read);
        assert_eq!(h.sha256, scan::sha256(b"two"));
    }
}
