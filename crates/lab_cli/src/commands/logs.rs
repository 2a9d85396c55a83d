//! `lab logs RUN`: what a run printed on its standard output and error.
//!
//! On a terminal the lines are shown safe (`visible`): their colours are
//! kept (only with colour on), every other control character shows as an
//! escape. Piped, each line is written as the run printed it: it is data.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use lab_store::{ConsoleEvent, Store};
use lab_types::Stream;

use crate::ExitStatus;
use crate::args::{LogsArgs, current_dir};
use crate::output::{self, paint};
use crate::visible;

/// How often `--follow` looks at the journal.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// The colour sequences (SGR, `ESC [ … m`) of `text`, with where each is.
fn sgr_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == 0x1b && bytes[i + 1] == b'[' {
            let mut j = i + 2;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b';') {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'm' {
                spans.push((i, j + 1));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    spans
}

/// `text` without its colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in sgr_spans(text) {
        out.push_str(&text[at..start]);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// `text` made safe for a terminal: colours kept when `color`, tabs kept,
/// other control characters shown as escapes.
fn for_terminal(text: &str, color: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut coloured = false;
    let safe = |part: &str, out: &mut String| {
        for (i, piece) in part.split('\t').enumerate() {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(&visible::text(piece));
        }
    };
    for (start, end) in sgr_spans(text) {
        safe(&text[at..start], &mut out);
        if color {
            out.push_str(&text[start..end]);
            coloured = true;
        }
        at = end;
    }
    safe(&text[at..], &mut out);
    if coloured {
        // A line that leaves a colour on must not colour what follows.
        out.push_str("\x1b[0m");
    }
    out
}

struct Printer {
    /// Only this stream's lines.
    only: Option<Stream>,
    grep: Option<String>,
    terminal: bool,
    color: bool,
    timestamps: bool,
    shown: u64,
}

impl Printer {
    fn event(&mut self, out: &mut impl Write, event: ConsoleEvent) -> std::io::Result<()> {
        match event {
            ConsoleEvent::Line {
                stream,
                time_nanos,
                text,
            } => {
                if self.only.is_some_and(|s| s != stream) {
                    return Ok(());
                }
                if let Some(g) = &self.grep
                    && !plain(&text).contains(g.as_str())
                {
                    return Ok(());
                }
                if self.timestamps {
                    write!(out, "{} ", lab_types::time::iso(time_nanos))?;
                }
                if self.terminal {
                    writeln!(out, "{}", for_terminal(&text, self.color))?;
                } else {
                    writeln!(out, "{text}")?;
                }
                self.shown += 1;
            }
            ConsoleEvent::Cut { lines, bytes } => {
                let note = format!(
                    "[lab: {lines} lines ({}) left out here: the run printed more than it keeps]",
                    output::bytes(bytes)
                );
                writeln!(out, "{}", paint(&note, "2", self.color))?;
            }
            ConsoleEvent::Ended => {}
        }
        Ok(())
    }
}

pub fn run(args: &LogsArgs) -> Result<ExitStatus> {
    let store = super::open_fresh()?;
    let run = store.run(&args.run)?;
    let terminal = std::io::stdout().is_terminal();
    let mut printer = Printer {
        only: args.stderr.then_some(Stream::Stderr),
        grep: args.grep.clone(),
        terminal,
        color: output::color_stdout(),
        timestamps: args.timestamps,
        shown: 0,
    };
    let mut out = std::io::stdout().lock();
    let mut offset = 0;
    let mut store = store;
    loop {
        let mut events = Vec::new();
        let read = store.read_console(&run.short_id, offset, |e| events.push(e))?;
        offset = read.next;
        for e in events {
            printer.event(&mut out, e)?;
        }
        out.flush()?;
        if !args.follow || read.done {
            break;
        }
        std::thread::sleep(FOLLOW_INTERVAL);
        store = Store::discover(&current_dir())?;
    }
    if printer.shown == 0 && !args.follow && args.grep.is_none() {
        output::warn(&format!(
            "run `{}` recorded no console output{}",
            run.short_id,
            if args.stderr { " on stderr" } else { "" }
        ));
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_kept_only_when_asked_and_other_controls_are_escaped() {
        let t = "\x1b[31mred\x1b[0m\tok \x1b]0;title\x07 \x1b[2J";
        assert_eq!(
            for_terminal(t, true),
            "\x1b[31mred\x1b[0m\tok \\x1b]0;title\\x07 \\x1b[2J\x1b[0m"
        );
        assert_eq!(
            for_terminal(t, false),
            "red\tok \\x1b]0;title\\x07 \\x1b[2J"
        );
        assert_eq!(plain("\x1b[1;32mgreen\x1b[m"), "green");
    }
}
