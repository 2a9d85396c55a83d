//! A run's console as the HTTP API answers it (`GET /runs/{id}/logs`), for
//! `lab ui` and the team server alike: the query's `after` and `stream`,
//! and the answer's lines.

use lab_store::ConsoleEvent;
use lab_types::Stream;
use serde::Serialize;
use serde_json::{Value as J, json};

use crate::params::{self, param};

/// What a logs request asks for: the journal offset to read on from (0, or
/// what an earlier answer gave as `next`), and one stream or both.
#[derive(Clone, Copy, Debug)]
pub struct LogsQuery {
    /// The offset.
    pub after: u64,
    /// Only this stream, or both.
    pub only: Option<Stream>,
}

impl LogsQuery {
    /// Reads `after` and `stream`; the error names the parameter.
    pub fn parse(params: &[(String, String)]) -> Result<Self, String> {
        let after = params::number(params, "after", 0u64, (0, i64::MAX as u64))?;
        let only = match param(params, "stream") {
            None | Some("") => None,
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            Some(other) => {
                return Err(format!(
                    "`stream` must be `stdout` or `stderr`: got `{other}`"
                ));
            }
        };
        Ok(Self { after, only })
    }

    /// The error for an `after` past the `len` bytes of the run's journal.
    #[must_use]
    pub fn past_the_end(&self, len: u64) -> Option<String> {
        (self.after > len).then(|| {
            format!(
                "`after` must be an offset an earlier answer gave: got {}, past the end of the run's journal ({len} bytes)",
                self.after
            )
        })
    }
}

/// One line of a run's console in the API; a cut is a line of stream
/// `cut` saying how much was left out there.
#[derive(Serialize)]
struct LogLine {
    time: Option<String>,
    stream: &'static str,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_lines: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_bytes: Option<u64>,
}

/// The lines of an answer, gathered from console events.
pub struct Lines {
    only: Option<Stream>,
    lines: Vec<LogLine>,
}

impl Lines {
    /// No lines yet, keeping those of `only` (both streams for None).
    #[must_use]
    pub fn new(only: Option<Stream>) -> Self {
        Self {
            only,
            lines: Vec::new(),
        }
    }

    /// Takes one event.
    pub fn push(&mut self, event: ConsoleEvent) {
        match event {
            ConsoleEvent::Line {
                stream,
                time_nanos,
                text,
            } if self.only.is_none_or(|s| s == stream) => self.lines.push(LogLine {
                time: Some(lab_types::time::iso(time_nanos)),
                stream: stream.as_str(),
                text,
                dropped_lines: None,
                dropped_bytes: None,
            }),
            // A cut of nothing only says the tail is in the journal.
            ConsoleEvent::Cut { lines: 0, .. } => {}
            ConsoleEvent::Cut { lines: n, bytes } => self.lines.push(LogLine {
                time: None,
                stream: "cut",
                text: format!("{n} lines ({bytes} bytes) left out here"),
                dropped_lines: Some(n),
                dropped_bytes: Some(bytes),
            }),
            _ => {}
        }
    }

    /// The answer: the lines, where to read on from, and whether more can come.
    #[must_use]
    pub fn to_json(self, next: u64, done: bool) -> J {
        json!({ "lines": self.lines, "next": next, "done": done })
    }
}
