//! The tail of a console past its bound, kept on disk as it comes, so that a
//! run killed with `kill -9` still shows the last lines it printed.
//!
//! The tail goes into small journals of their own beside the run's,
//! `console-tail.<n>.lab` (numbered from 0), each holding up to half the
//! tail's bytes: when one is full the next is begun and the one before the
//! last is deleted, so the two newest always hold at least the last half of
//! the tail and at most all of it. Each begins with a `ConsoleCut` record
//! counting the tail lines printed before it. They are written through the
//! same memory-mapped writer as the run's journal, so a line is in the
//! kernel's hands once it is appended.
//!
//! When the run ends, the tail goes into the run's journal behind a
//! `ConsoleCut` record and the files are deleted. A reader uses them only for
//! a run whose journal holds no `ConsoleCut` ([`lab_store::Store::read_console`]):
//! one that died before its end.

use std::path::{Path, PathBuf};

use lab_journal::JournalWriter;
use lab_types::{ConsoleLine, Record, Stream, now_nanos};

/// The name of tail file number `n` in the run's folder.
#[must_use]
fn file_name(n: u64) -> String {
    format!("{}{n}.lab", lab_store::CONSOLE_TAIL_PREFIX)
}

/// The tail files of one run's capture.
pub(super) struct TailFiles {
    dir: PathBuf,
    segment_bytes: u64,
    current: Option<(u64, JournalWriter, u64)>,
    next: u64,
    lines_before: u64,
    bytes_before: u64,
    failed: bool,
}

impl TailFiles {
    /// Tail files in `dir` for a tail of `tail_limit` bytes.
    pub(super) fn new(dir: &Path, tail_limit: u64) -> Self {
        TailFiles {
            dir: dir.to_owned(),
            segment_bytes: (tail_limit / 2).max(1),
            current: None,
            next: 0,
            lines_before: 0,
            bytes_before: 0,
            failed: false,
        }
    }

    /// Appends lines of `stream` that went to the tail. A file that cannot
    /// be written (a full disk) stops the tail files for the run: the tail
    /// is still kept in memory and written to the journal at the end.
    pub(super) fn push(&mut self, stream: Stream, lines: Vec<ConsoleLine>) {
        if self.failed || lines.is_empty() {
            return;
        }
        let cost_of = |l: &ConsoleLine| l.text.len() as u64 + 1;
        let mut lines = lines;
        let mut cost: u64 = lines.iter().map(cost_of).sum();
        // One read can bring more than a file holds: its first lines are
        // then cut before they are written, counted with what came before.
        let mut skip = 0;
        while cost > self.segment_bytes && skip + 1 < lines.len() {
            let c = cost_of(&lines[skip]);
            cost -= c;
            self.lines_before += 1;
            self.bytes_before += c;
            skip += 1;
        }
        lines.drain(..skip);
        let n = lines.len() as u64;
        let full = self
            .current
            .as_ref()
            .is_none_or(|(_, _, used)| *used > 0 && used + cost > self.segment_bytes);
        if full && self.begin().is_err() {
            self.failed = true;
            return;
        }
        if let Some((_, writer, used)) = self.current.as_mut() {
            if writer.append(&Record::Console { stream, lines }).is_err() {
                self.failed = true;
                return;
            }
            *used += cost;
        }
        self.lines_before += n;
        self.bytes_before += cost;
    }

    /// Begins the next file, and deletes the one before the last.
    fn begin(&mut self) -> Result<(), lab_journal::JournalError> {
        let n = self.next;
        self.next += 1;
        let path = self.dir.join(file_name(n));
        let _ = std::fs::remove_file(&path);
        let mut writer = JournalWriter::create(&path)?;
        // Every tail line printed before this file began: what a reader
        // that finds this file the oldest has lost.
        writer.append(&Record::ConsoleCut {
            time_nanos: now_nanos(),
            lines: self.lines_before,
            bytes: self.bytes_before,
        })?;
        self.current = Some((n, writer, 0));
        if let Some(old) = n.checked_sub(2) {
            let _ = std::fs::remove_file(self.dir.join(file_name(old)));
        }
        Ok(())
    }

    /// Deletes the files: their lines are in the run's journal now.
    pub(super) fn remove(mut self) {
        if let Some((n, writer, _)) = self.current.take() {
            drop(writer);
            for k in [Some(n), n.checked_sub(1)].into_iter().flatten() {
                let _ = std::fs::remove_file(self.dir.join(file_name(k)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: u32) -> ConsoleLine {
        ConsoleLine {
            time_nanos: 1,
            text: format!("line {i:05}"),
        }
    }

    /// What the files in `dir` hold: each file's count of the tail lines
    /// before it, and its lines.
    fn read(dir: &Path) -> Vec<(u64, Vec<String>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.trim_start_matches("console-tail.")
                .trim_end_matches(".lab")
                .parse::<u64>()
                .unwrap()
        });
        files
            .iter()
            .map(|path| {
                let mut before = None;
                let mut lines = Vec::new();
                lab_journal::read_journal(path, 0, |_, record| match record {
                    Record::ConsoleCut { lines: n, .. } => before = Some(n),
                    Record::Console { lines: got, .. } => {
                        lines.extend(got.into_iter().map(|l| l.text));
                    }
                    _ => {}
                })
                .unwrap();
                (before.unwrap(), lines)
            })
            .collect()
    }

    #[test]
    fn the_two_newest_files_hold_the_last_lines_and_count_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        // Lines of 11 bytes, files of 50: four lines a file.
        let mut files = TailFiles::new(dir.path(), 100);
        for i in 0..30 {
            files.push(Stream::Stdout, vec![line(i)]);
        }
        let got = read(dir.path());
        assert_eq!(got.len(), 2, "{got:?}");
        let (before, _) = &got[0];
        let kept: Vec<String> = got.iter().flat_map(|(_, l)| l.clone()).collect();
        let first = 30 - u32::try_from(kept.len()).unwrap();
        assert_eq!(*before, u64::from(first));
        assert_eq!(kept, (first..30).map(|i| line(i).text).collect::<Vec<_>>());
        assert!((5..=8).contains(&kept.len()), "{kept:?}");
        files.remove();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_read_larger_than_a_file_keeps_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = TailFiles::new(dir.path(), 100);
        files.push(Stream::Stderr, (0..1000).map(line).collect());
        let got = read(dir.path());
        assert_eq!(got.len(), 1);
        let (before, kept) = &got[0];
        assert_eq!(*before, 1000 - kept.len() as u64);
        assert_eq!(kept.last().unwrap(), "line 00999");
        assert!(kept.len() <= 4, "{kept:?}");
    }
}
