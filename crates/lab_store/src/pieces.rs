//! The pieces cut off damaged journals (`journal.lab.damaged.N`), and giving
//! back the space a crashed writer reserved.

use std::path::{Path, PathBuf};

use lab_journal::Damage;

use crate::Error;

/// The prefix of the pieces cut off a journal: `journal.lab.damaged.1`, `.2`, ...
/// (an older Lab wrote one, unnumbered `journal.lab.damaged`).
const DAMAGED_SUFFIX: &str = ".damaged";

/// A piece cut off a journal, as its file name tells.
pub(crate) struct PieceName {
    /// Its number (0 for the unnumbered piece of an older Lab).
    pub number: u64,
    /// Its file.
    pub path: PathBuf,
    /// Whether its records were put back (`….salvaged`).
    pub salvaged: bool,
}

/// Every piece cut off `journal` so far, oldest first.
pub(crate) fn pieces(journal: &Path) -> Result<Vec<PieceName>, Error> {
    let Some(dir) = journal.parent() else {
        return Ok(Vec::new());
    };
    let base = format!(
        "{}{DAMAGED_SUFFIX}",
        journal.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut found = Vec::new();
    let entries = match fs_err::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&base) else {
            continue;
        };
        let (rest, salvaged) = match rest.strip_suffix(".salvaged") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let number = if rest.is_empty() {
            Some(0)
        } else {
            rest.strip_prefix('.').and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(number) = number {
            found.push(PieceName {
                number,
                path: entry.path(),
                salvaged,
            });
        }
    }
    found.sort_by_key(|p| p.number);
    Ok(found)
}

/// The pieces cut off `journal` whose records are not put back yet, oldest
/// first.
pub(crate) fn damaged_pieces(journal: &Path) -> Result<Vec<PathBuf>, Error> {
    Ok(pieces(journal)?
        .into_iter()
        .filter(|p| !p.salvaged)
        .map(|p| p.path)
        .collect())
}

/// Moves the unreadable tail of a settled journal into the next numbered
/// piece beside it and cuts it off, so the journal ends at its last good
/// frame. Only the bytes that held data are kept, not the zeros reserved
/// after them. An earlier piece is never overwritten. Returns the piece.
pub(crate) fn cut_damaged_tail(journal: &Path, d: &Damage) -> Result<PathBuf, Error> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut tail = Vec::new();
    {
        let mut f = fs_err::File::open(journal)?;
        f.seek(SeekFrom::Start(d.offset))?;
        f.take(d.dropped_bytes).read_to_end(&mut tail)?;
    }
    let mut number = pieces(journal)?.iter().map(|p| p.number).max().unwrap_or(0);
    let kept = loop {
        number += 1;
        let path = journal.with_file_name(format!(
            "{}{DAMAGED_SUFFIX}.{number}",
            journal.file_name().unwrap_or_default().to_string_lossy()
        ));
        match fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                if let Err(e) = f.write_all(&tail).and_then(|()| f.sync_all()) {
                    drop(f);
                    let _ = fs_err::remove_file(&path);
                    return Err(e.into());
                }
                break path;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    };
    let f = fs_err::OpenOptions::new().write(true).open(journal)?;
    f.set_len(d.offset)?;
    f.sync_all()?;
    Ok(kept)
}

/// Gives back the space a crashed writer reserved past its last record: the
/// journal then ends at its last frame, as a closed one does. Only called by
/// a fold that holds the journal's lock.
pub(crate) fn trim_reserved_space(journal: &Path, end: u64) -> Result<(), Error> {
    let f = fs_err::OpenOptions::new().write(true).open(journal)?;
    if end > 0 && f.metadata()?.len() > end {
        f.set_len(end)?;
    }
    Ok(())
}
