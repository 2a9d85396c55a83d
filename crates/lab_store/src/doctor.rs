//! Looking a project over for damage, and putting back what can be saved.
//!
//! [`Store::examine`] reads every journal whole, as a settled reader would,
//! and lists its damaged stretches and the pieces cut off it
//! (`journal.lab.damaged.N`, see the fold). [`Store::salvage`] reads those
//! pieces past their damage and appends the good records they hold back to
//! the journal, newest cut first (a later cut is always from further up the
//! journal), then folds the run again from scratch. A salvaged piece is kept,
//! renamed `….salvaged`: no byte is ever thrown away.

use std::fs::TryLockError;
use std::path::PathBuf;

use lab_journal::{Damage, Mode, scan_from};
use lab_types::Record;

use crate::pieces::damaged_pieces;
use crate::{Error, Store};

/// A piece cut off a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Its file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// How many good records it holds past its damage.
    pub records: u64,
}

/// What a look at one run's journal found.
#[derive(Clone, Debug)]
pub struct Health {
    /// The run's short id (its folder's name).
    pub short_id: String,
    /// Whether a writer holds the journal (its damage, if any, is not final).
    pub live: bool,
    /// Damaged stretches read past.
    pub damage: Vec<Damage>,
    /// Pieces cut off it that are not salvaged yet.
    pub pieces: Vec<Piece>,
    /// Why it could not be read at all, if so.
    pub unreadable: Option<String>,
}

impl Health {
    /// Whether anything is wrong.
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.damage.is_empty() && self.pieces.is_empty() && self.unreadable.is_none()
    }
}

/// Suffix a salvaged piece gets.
const SALVAGED: &str = ".salvaged";

impl Store {
    /// What SQLite's `quick_check` says of the index: empty when sound.
    pub fn check_index(&self) -> Result<Vec<String>, Error> {
        let lines: rusqlite::Result<Vec<String>> = self
            .conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut check| check.query_map([], |r| r.get(0))?.collect());
        match lines {
            Ok(lines) => Ok(lines.into_iter().filter(|l| l != "ok").collect()),
            // Damaged past checking: that is the answer.
            Err(e) if crate::is_sqlite_damage(&e) => Ok(vec![e.to_string()]),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads every run's journal whole and reports its health, by short id.
    pub fn examine(&self) -> Result<Vec<Health>, Error> {
        let mut shorts: Vec<String> = match fs_err::read_dir(self.project.runs_dir()) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        shorts.sort();
        shorts.into_iter().map(|s| self.examine_run(&s)).collect()
    }

    fn examine_run(&self, short: &str) -> Result<Health, Error> {
        let paths = self.project.run_paths(short);
        let mut health = Health {
            short_id: short.to_owned(),
            live: false,
            damage: Vec::new(),
            pieces: Vec::new(),
            unreadable: None,
        };
        for path in damaged_pieces(&paths.journal)? {
            let bytes = fs_err::read(&path)?;
            let scan = scan_from(&bytes[..], 0, |_, _| {})?;
            health.pieces.push(Piece {
                path,
                bytes: bytes.len() as u64,
                records: scan.records,
            });
        }
        let file = match std::fs::File::open(&paths.journal) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(health),
            Err(e) => return Err(e.into()),
        };
        health.live = match file.try_lock_shared() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => return Err(e.into()),
        };
        let mode = if health.live {
            Mode::Live
        } else {
            Mode::Settled
        };
        // A journal with holes has its points checked in the series file.
        let journal = &paths.journal;
        match crate::series::read_records(
            journal,
            0,
            |stretches, visit| {
                lab_journal::read_journal_skipping(journal, 0, Some(mode), stretches, visit)
            },
            |_, _| {},
        ) {
            // Behind a live writer, what looks damaged may be a frame on its way.
            Ok(scan) if !health.live => health.damage = scan.damage,
            Ok(_) => {}
            Err(Error::Journal(e @ lab_journal::JournalError::BadHeader { .. })) => {
                health.unreadable = Some(e.to_string());
            }
            Err(e) => return Err(e),
        }
        Ok(health)
    }

    /// Puts the good records of the pieces cut off run `short`'s journal back
    /// into it and folds the run again. Returns how many records came back.
    /// Refused while a writer holds the journal.
    pub fn salvage(&mut self, short: &str) -> Result<u64, Error> {
        let paths = self.project.run_paths(short);
        let mut pieces = damaged_pieces(&paths.journal)?;
        if pieces.is_empty() {
            return Ok(0);
        }
        // The newest cut came from furthest up the journal: it goes back first.
        pieces.reverse();
        // The run is read again from its journal, start to end. Its rows go
        // first: should the salvage stop halfway, the next refresh reads the
        // journal whole, whatever it holds by then.
        if let Ok(id) = self.resolve(short) {
            self.remove_run(&id)?;
        }
        let mut restored = 0;
        for piece in pieces {
            let bytes = fs_err::read(&piece)?;
            let mut records: Vec<Record> = Vec::new();
            scan_from(&bytes[..], 0, |_, r| records.push(r))?;
            if !records.is_empty() && lab_journal::append_to_settled(&paths.journal, &records)? > 0
            {
                restored += records.len() as u64;
            }
            let mut done = piece.clone().into_os_string();
            done.push(SALVAGED);
            fs_err::rename(&piece, PathBuf::from(done))?;
        }
        self.fold_run(short)?;
        Ok(restored)
    }
}
