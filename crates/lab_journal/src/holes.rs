//! A settled journal's holes: stretches of whole frames that hold metric
//! points alone, whose points are kept elsewhere (the run's series file),
//! and whose pages were given back to the file system.
//!
//! The list is `journal.lab.holes` beside the journal, written (synced and
//! renamed into place) before any page is punched, so that a reader never
//! meets a punched page it was not told of. [`crate::read_journal`] steps
//! over every listed stretch and reads the frames around them as before;
//! the journal keeps its length and every frame its offset, so offsets kept
//! elsewhere (the index's progress, console positions, uploads) still hold.
//!
//! Layout, integers little-endian: the magic `LABHOLE1`; the journal's
//! length when the holes were made (`covered`: every point in a frame before
//! it is in the series file); the checksum of the journal's end the series
//! file was made from (a `u32`, tying the two together); the number of
//! stretches; each stretch's start
//! and end offsets (both frame boundaries, in order, not overlapping); a
//! crc32c of everything before it.

use std::path::{Path, PathBuf};

/// The magic bytes the list starts with.
const MAGIC: &[u8; 8] = b"LABHOLE1";

/// The bytes before the stretches: magic, covered length, checksum, count.
const HEAD: usize = 8 + 8 + 4 + 8;

/// Journals shorter than this never get holes, so a reader of one does not
/// look for a list.
pub const MIN_JOURNAL_BYTES: u64 = 256 * 1024;

/// Where the list of holes of the journal at `journal` is.
#[must_use]
pub fn holes_path(journal: &Path) -> PathBuf {
    let mut name = journal.file_name().unwrap_or_default().to_os_string();
    name.push(".holes");
    journal.with_file_name(name)
}

/// A journal's holes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holes {
    /// The journal's length when they were made: the points of every frame
    /// before this offset are kept in the series file.
    pub covered: u64,
    /// The checksum of the journal's end that its series file records.
    pub journal_crc: u32,
    /// The stretches not to read, `[start, end)`, in order.
    pub stretches: Vec<(u64, u64)>,
}

/// Why a list of holes cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HolesError {
    /// Reading it failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It is not a whole, well-formed list.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Holes {
    /// The list's bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + 4 + 16 * self.stretches.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.covered.to_le_bytes());
        out.extend_from_slice(&self.journal_crc.to_le_bytes());
        out.extend_from_slice(&(self.stretches.len() as u64).to_le_bytes());
        for &(start, end) in &self.stretches {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A list from its bytes; `Err` names what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let body_len = bytes.len().checked_sub(4).ok_or("it is cut short")?;
        let (body, crc) = bytes.split_at(body_len);
        if body.len() < HEAD || &body[..8] != MAGIC {
            return Err("no magic bytes");
        }
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return Err("its checksum fails");
        }
        let word = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&body[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let covered = word(8);
        let journal_crc = u32::from_le_bytes([body[16], body[17], body[18], body[19]]);
        let n = word(20);
        if Some(body.len() as u64) != n.checked_mul(16).and_then(|b| b.checked_add(HEAD as u64)) {
            return Err("its length does not match its count");
        }
        let mut stretches = Vec::with_capacity(n as usize);
        let mut last_end = crate::HEADER_LEN as u64;
        for i in 0..n as usize {
            let (start, end) = (word(HEAD + 16 * i), word(HEAD + 8 + 16 * i));
            if start < last_end || end <= start || end > covered {
                return Err("its stretches are out of order or past its end");
            }
            stretches.push((start, end));
            last_end = end;
        }
        Ok(Self {
            covered,
            journal_crc,
            stretches,
        })
    }
}

/// The holes of the journal at `journal`: `Ok(None)` when it has none (no
/// list, or a journal too short to have one, `len` bytes long).
pub fn read_holes(journal: &Path, len: u64) -> Result<Option<Holes>, HolesError> {
    if len < MIN_JOURNAL_BYTES {
        return Ok(None);
    }
    let path = holes_path(journal);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Holes::decode(&bytes)
        .map(Some)
        .map_err(|reason| HolesError::Damaged {
            path: path.display().to_string(),
            reason,
        })
}

/// Writes `holes` as the list of the journal at `journal`: under a
/// temporary name, synced, renamed into place, and the folder synced, so
/// that the list is on disk before any page it names is punched.
pub fn write_holes(journal: &Path, holes: &Holes) -> std::io::Result<()> {
    use std::io::Write;
    let path = holes_path(journal);
    let temp = path.with_file_name(format!(
        ".{}.{}-0.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&holes.encode())?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    sync_dir(&path)
}

/// Removes the list of the journal at `journal`, if any, and syncs the
/// folder: for holes that were listed but never punched.
pub fn remove_holes(journal: &Path) -> std::io::Result<()> {
    let path = holes_path(journal);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Gives the pages of `[start, end)` of `file` back to the file system,
/// keeping its length: reads of them give zeros. `Err` with
/// [`std::io::ErrorKind::Unsupported`] where the file system cannot.
pub fn punch(file: &std::fs::File, start: u64, end: u64) -> std::io::Result<()> {
    use rustix::fs::FallocateFlags;
    match rustix::fs::fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        start,
        end - start,
    ) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_back_and_any_flipped_bit_is_caught() {
        let holes = Holes {
            covered: 1 << 20,
            journal_crc: 0xdead_beef,
            stretches: vec![(16, 8192), (9000, 700_000)],
        };
        let bytes = holes.encode();
        assert_eq!(Holes::decode(&bytes), Ok(holes));
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(Holes::decode(&bad).is_err(), "bit {i}");
        }
        for cut in 0..bytes.len() {
            assert!(Holes::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn stretches_out_of_order_or_past_the_covered_length_are_refused() {
        for stretches in [
            vec![(100, 50)],
            vec![(0, 4096)],
            vec![(16, 200), (100, 300)],
            vec![(16, 2 << 20)],
        ] {
            let bytes = Holes {
                covered: 1 << 20,
                journal_crc: 7,
                stretches,
            }
            .encode();
            assert!(Holes::decode(&bytes).is_err());
        }
    }

    #[test]
    fn a_short_journal_has_no_holes_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.lab");
        write_holes(&journal, &Holes::default()).unwrap();
        assert!(read_holes(&journal, 1000).unwrap().is_none());
        assert!(read_holes(&journal, MIN_JOURNAL_BYTES).unwrap().is_some());
        remove_holes(&journal).unwrap();
        assert!(read_holes(&journal, MIN_JOURNAL_BYTES).unwrap().is_none());
        remove_holes(&journal).unwrap();
    }
}
