//! Reading a run's console output out of its journal: the Console records
//! the capture wrote, the note of what a bounded capture left out, and
//! whether more can come. `lab logs`, `Run.logs()` and the web page's Logs
//! tab all read it through here; the index keeps none of it.

use lab_types::{Record, Stream};

use crate::{Error, Store};

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
        let scan = lab_journal::read_journal(&paths.journal, from, |_, record| {
            console_events(record, &mut |event| {
                if event == ConsoleEvent::Ended {
                    if ended {
                        return;
                    }
                    ended = true;
                }
                f(event);
            });
        })?;
        // A journal whose writer is gone takes nothing more, End or not.
        let settled = fs_err::File::open(&paths.journal)
            .is_ok_and(|file| file.file().try_lock_shared().is_ok());
        Ok(ConsoleRead {
            next: scan.end.max(from),
            done: ended || settled,
        })
    }
}
