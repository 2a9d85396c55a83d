//! Console bytes into lines: line endings, carriage returns, backspaces,
//! overlong lines, bytes that are not UTF-8, and the bound on what a run
//! keeps. Pure logic, so that every rule has a test.

use std::collections::VecDeque;
use std::fmt::Write as _;

use lab_types::{ConsoleLine, Stream};

/// The most bytes of one line kept; the rest of a longer line is counted and
/// said at its end.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Splits one stream's bytes into lines as a terminal would leave them.
///
/// - `\n` ends a line; a `\r` before it is dropped (`\r\n`).
/// - `\r` alone starts the line over: the line keeps the text written after
///   the last `\r` (a progress bar's final state), or the text before it when
///   nothing followed (`100%\r\n`).
/// - `\x08` (backspace) takes back the character before it.
/// - A line past [`MAX_LINE_BYTES`] keeps its first bytes and ends in
///   `… (N more bytes)`.
/// - Bytes that are not UTF-8 become U+FFFD.
#[derive(Debug, Default)]
pub struct Splitter {
    /// The bytes since the last `\r`.
    current: Vec<u8>,
    /// How many bytes of `current` were past the limit.
    current_cut: u64,
    /// The last non-empty stretch before a `\r`.
    previous: Vec<u8>,
    previous_cut: u64,
}

impl Splitter {
    /// Takes `bytes` and calls `line` with each line they end.
    pub fn push(&mut self, bytes: &[u8], line: &mut impl FnMut(String)) {
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|b| matches!(b, b'\n' | b'\r' | 0x08)) {
            self.add(&rest[..at]);
            match rest[at] {
                b'\n' => line(self.take()),
                b'\r' => {
                    if !self.current.is_empty() || self.current_cut > 0 {
                        std::mem::swap(&mut self.previous, &mut self.current);
                        self.previous_cut = self.current_cut;
                    }
                    self.current.clear();
                    self.current_cut = 0;
                }
                _ => self.backspace(),
            }
            rest = &rest[at + 1..];
        }
        self.add(rest);
    }

    /// The line not yet ended by `\n`, if any: how it stands when the
    /// stream ends.
    pub fn finish(&mut self) -> Option<String> {
        let pending = !self.current.is_empty()
            || !self.previous.is_empty()
            || self.current_cut > 0
            || self.previous_cut > 0;
        pending.then(|| self.take())
    }

    fn add(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.current.len());
        let kept = bytes.len().min(room);
        self.current.extend_from_slice(&bytes[..kept]);
        self.current_cut += (bytes.len() - kept) as u64;
    }

    fn backspace(&mut self) {
        if self.current_cut > 0 {
            self.current_cut -= 1;
            return;
        }
        // A whole character: continuation bytes, then the byte that starts it.
        while let Some(b) = self.current.pop() {
            if b & 0xC0 != 0x80 {
                break;
            }
        }
    }

    fn take(&mut self) -> String {
        let (bytes, cut) = if self.current.is_empty() && self.current_cut == 0 {
            (&self.previous, self.previous_cut)
        } else {
            (&self.current, self.current_cut)
        };
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        if cut > 0 {
            write!(text, "… ({cut} more bytes)").ok();
        }
        self.current.clear();
        self.previous.clear();
        self.current_cut = 0;
        self.previous_cut = 0;
        text
    }
}

/// What a run keeps of its console: the first half of `limit` bytes as the
/// lines come (the head), then the last half (the tail), held in memory and
/// written when the run ends, after a note of what was left out between.
/// A line counts its text and one byte for its line ending.
#[derive(Debug)]
pub struct Bound {
    head_left: u64,
    /// Once a line did not fit in the head, every later line goes to the
    /// tail, so that the head is a prefix of the output.
    head_full: bool,
    tail_limit: u64,
    tail: VecDeque<(Stream, ConsoleLine)>,
    tail_bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

/// What is left to write when the run ends: the note of what was cut, then
/// the tail.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rest {
    /// Lines and bytes left out, when any were.
    pub cut: Option<(u64, u64)>,
    /// The tail, in the order printed.
    pub tail: Vec<(Stream, ConsoleLine)>,
}

impl Bound {
    /// A bound of `limit_bytes` for the whole run, both streams together.
    #[must_use]
    pub fn new(limit_bytes: u64) -> Self {
        let head = limit_bytes / 2;
        Bound {
            head_left: head,
            head_full: false,
            tail_limit: limit_bytes - head,
            tail: VecDeque::new(),
            tail_bytes: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
        }
    }

    fn cost(line: &ConsoleLine) -> u64 {
        line.text.len() as u64 + 1
    }

    /// Whether [`Bound::admit`] would give `line` back to be written now.
    #[must_use]
    pub fn fits_head(&self, line: &ConsoleLine) -> bool {
        !self.head_full && Self::cost(line) <= self.head_left
    }

    /// The bytes the tail keeps.
    #[must_use]
    pub fn tail_limit(&self) -> u64 {
        self.tail_limit
    }

    /// Takes a line: gives it back when it is to be written now (it fits in
    /// the head), else keeps it for the tail.
    pub fn admit(&mut self, stream: Stream, line: ConsoleLine) -> Option<ConsoleLine> {
        let cost = Self::cost(&line);
        if self.fits_head(&line) {
            self.head_left -= cost;
            return Some(line);
        }
        self.head_full = true;
        self.tail_bytes += cost;
        self.tail.push_back((stream, line));
        while self.tail_bytes > self.tail_limit {
            let Some((_, old)) = self.tail.pop_front() else {
                break;
            };
            let c = Self::cost(&old);
            self.tail_bytes -= c;
            self.dropped_lines += 1;
            self.dropped_bytes += c;
        }
        None
    }

    /// The cut and the tail, to be written when the run ends.
    pub fn finish(&mut self) -> Rest {
        let cut = (self.dropped_lines > 0).then_some((self.dropped_lines, self.dropped_bytes));
        self.tail_bytes = 0;
        Rest {
            cut,
            tail: std::mem::take(&mut self.tail).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn lines_end_at_newlines_in_any_chunking() {
        assert_eq!(lines(&[b"a\nbc\n"]), ["a", "bc"]);
        assert_eq!(lines(&[b"a", b"b\n", b"c"]), ["ab", "c"]);
        assert_eq!(lines(&[b"\n\n"]), ["", ""]);
        assert_eq!(lines(&[b""]), Vec::<String>::new());
        assert_eq!(lines(&[b"crlf\r\n", b"x\r", b"\n"]), ["crlf", "x"]);
    }

    #[test]
    fn a_progress_bar_is_kept_as_its_final_state() {
        let mut bar = Vec::new();
        for i in 0..=1000 {
            bar.extend_from_slice(format!("\r{i:>4}/1000 |").as_bytes());
        }
        bar.extend_from_slice(b"\n");
        assert_eq!(lines(&[&bar]), ["1000/1000 |"]);
        // tqdm's last refresh ends in `\r` before its newline.
        assert_eq!(lines(&[b"\r 50%", b"\r100%\r", b"\n"]), ["100%"]);
        // A bar cut off by the end of the stream keeps where it got to.
        assert_eq!(lines(&[b"\r 10%\r 20%"]), [" 20%"]);
    }

    #[test]
    fn backspaces_take_back_characters() {
        assert_eq!(lines(&[b"ab\x08c\n"]), ["ac"]);
        assert_eq!(lines(&["é\x08e\n".as_bytes()]), ["e"]);
        assert_eq!(lines(&[b"\x08\x08x\n"]), ["x"]);
        // Keras rewrites its bar with backspaces and a carriage return.
        assert_eq!(
            lines(&[
                b"1/3 [=>..]",
                b"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\r3/3 [===]\n"
            ]),
            ["3/3 [===]"]
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        assert_eq!(lines(&[b"ok \xff\xfe end\n"]), ["ok \u{fffd}\u{fffd} end"]);
        // A character split between two reads is whole again.
        let e = "é".as_bytes();
        assert_eq!(lines(&[&e[..1], &e[1..], b"\n"]), ["é"]);
    }

    #[test]
    fn an_overlong_line_keeps_its_start_and_says_how_much_was_left_out() {
        let chunk = vec![b'x'; 1 << 20];
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for _ in 0..100 {
            s.push(&chunk, &mut |l| out.push(l));
        }
        assert!(out.is_empty());
        s.push(b"\nnext\n", &mut |l| out.push(l));
        assert_eq!(out.len(), 2);
        let kept = "x".repeat(MAX_LINE_BYTES);
        assert_eq!(
            out[0],
            format!("{kept}… ({} more bytes)", 100 * (1 << 20) - MAX_LINE_BYTES)
        );
        assert_eq!(out[1], "next");
        // The splitter holds no more than one line's limit.
        assert!(s.current.capacity() <= 2 * MAX_LINE_BYTES);
    }

    fn line(text: &str) -> ConsoleLine {
        ConsoleLine {
            time_nanos: 0,
            text: text.into(),
        }
    }

    #[test]
    fn within_the_bound_every_line_is_written_at_once() {
        let mut b = Bound::new(100);
        for _ in 0..10 {
            assert!(b.admit(Stream::Stdout, line("1234")).is_some());
        }
        assert_eq!(b.finish(), Rest::default());
    }

    #[test]
    fn past_the_bound_the_head_and_tail_are_kept_and_the_cut_counted() {
        // Head and tail of 50 bytes each; a line "NNNN" costs 5.
        let mut b = Bound::new(100);
        let mut written = Vec::new();
        for i in 0..1000 {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            if let Some(l) = b.admit(stream, line(&format!("{i:04}"))) {
                written.push(l.text);
            }
        }
        assert_eq!(
            written,
            (0..10).map(|i| format!("{i:04}")).collect::<Vec<_>>()
        );
        let rest = b.finish();
        assert_eq!(rest.cut, Some((980, 980 * 5)));
        let tail: Vec<_> = rest.tail.iter().map(|(_, l)| l.text.clone()).collect();
        assert_eq!(
            tail,
            (990..1000).map(|i| format!("{i:04}")).collect::<Vec<_>>()
        );
        assert_eq!(rest.tail[0].0, Stream::Stdout);
        assert_eq!(rest.tail[1].0, Stream::Stderr);
    }

    #[test]
    fn once_a_line_misses_the_head_later_small_lines_do_not_jump_ahead() {
        let mut b = Bound::new(20);
        assert!(b.admit(Stream::Stdout, line("12345678")).is_some());
        assert!(b.admit(Stream::Stdout, line("too long for it")).is_none());
        assert!(b.admit(Stream::Stdout, line("a")).is_none());
        let rest = b.finish();
        assert_eq!(rest.cut, Some((1, 16)));
        assert_eq!(rest.tail.len(), 1);
    }

    #[test]
    fn a_bound_of_zero_keeps_nothing_and_says_so() {
        let mut b = Bound::new(0);
        assert!(b.admit(Stream::Stdout, line("x")).is_none());
        assert_eq!(b.finish().cut, Some((1, 2)));
    }
}
