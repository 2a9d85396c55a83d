//! Reading a run's console output out of its journal: the Console records
//! the capture wrote, the note of what a bounded capture left out, and
//! whether more can come. `lab logs`, `Run.logs()` and the web page's Logs
//! tab all read it through here; the index keeps none of it.

use std::path::{Path, PathBuf};

use lab_types::{Record, Stream};

use crate::{Error, Store};

/// How the files that hold a capture's tail past its bound start, in the
/// run's folder: `console-tail.<n>.lab`, small journals of Console records
/// after a `ConsoleCut` that counts the tail lines before them. The capture
/// deletes them when it writes the tail into the run's journal; a run that
/// died first still has them.
pub const CONSOLE_TAIL_PREFIX: &str = "console-tail.";

/// What a journal record says about a run's console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// A line the run printed.
    Line {
        /// Where.
        stream: Stream,
        /// When it was read.
        time_nanos: i64,
        /// Its text, without the line ending.
        text: String,
    },
    /// The run printed more than it keeps: this many lines and bytes were
    /// left out here, between the head and the tail.
    Cut {
        /// Lines left out.
        lines: u64,
        /// Bytes left out.
        bytes: u64,
    },
    /// The run ended: what follows in the journal is no console output.
    Ended,
}

/// How far a read got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleRead {
    /// The offset to read on from next time.
    pub next: u64,
    /// Whether the journal can hold no more console output: the run ended,
    /// or its writer is gone.
    pub done: bool,
}

/// Calls `f` with each console event in `record` (none for other records).
pub fn console_events(record: Record, f: &mut impl FnMut(ConsoleEvent)) {
    match record {
        Record::Console { stream, lines } => {
            for line in lines {
                f(ConsoleEvent::Line {
                    stream,
                    time_nanos: line.time_nanos,
                    text: line.text,
                });
            }
        }
        Record::ConsoleCut { lines, bytes, .. } => f(ConsoleEvent::Cut { lines, bytes }),
        Record::End { .. } | Record::Close { .. } => f(ConsoleEvent::Ended),
        _ => {}
    }
}

impl Store {
    /// Reads the console events of run `short_id`'s journal from byte
    /// `from` on (0 for the start), in order.
    pub fn read_console(
        &self,
        short_id: &str,
        from: u64,
        mut f: impl FnMut(ConsoleEvent),
    ) -> Result<ConsoleRead, Error> {
        let paths = self.project.run_paths(short_id);
        let mut ended = false;
        let mut cut = false;
        let scan = lab_journal::read_journal(&paths.journal, from, |_, record| {
            console_events(record, &mut |event| {
                match event {
                    ConsoleEvent::Ended if ended => return,
                    ConsoleEvent::Ended => ended = true,
                    // The capture's note that its tail is in the journal now.
                    ConsoleEvent::Cut { lines: 0, .. } => {
                        cut = true;
                        return;
                    }
                    ConsoleEvent::Cut { .. } => cut = true,
                    ConsoleEvent::Line { .. } => {}
                }
                f(event);
            });
        })?;
        // A journal whose writer is gone takes nothing more, End or not.
        let settled = fs_err::File::open(&paths.journal)
            .is_ok_and(|file| file.file().try_lock_shared().is_ok());
        if (ended || settled) && !cut {
            // A run that died past its bound, before its tail went into the
            // journal: the tail is in files of its own.
            read_tail_files(&paths.dir, &mut f);
        }
        Ok(ConsoleRead {
            next: scan.end.max(from),
            done: ended || settled,
        })
    }
}

/// The tail files in `dir`, oldest first.
fn tail_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name();
                    let n = name
                        .to_str()?
                        .strip_prefix(CONSOLE_TAIL_PREFIX)?
                        .strip_suffix(".lab")?
                        .parse::<u64>()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

/// Reads the tail files of a run that died past its bound: the oldest's
/// count of what came before it, then every line. A file that cannot be
/// read is passed over: what it held is lost, not the rest.
fn read_tail_files(dir: &Path, f: &mut impl FnMut(ConsoleEvent)) {
    for (i, path) in tail_files(dir).iter().enumerate() {
        let _ = lab_journal::read_journal(path, 0, |_, record| match record {
            Record::ConsoleCut { lines, bytes, .. } if i == 0 && lines > 0 => {
                f(ConsoleEvent::Cut { lines, bytes });
            }
            Record::Console { .. } => console_events(record, f),
            _ => {}
        });
    }
}
