//! Terminal output: colour decisions, error reporting, time formatting.

use std::fmt::Write as _;
use std::io::IsTerminal;

use lab_store::{ErrorKind, RunInfo};
use lab_types::Status;
use lab_types::fields::attr;

use crate::ExitStatus;

/// Whether to colour what goes to stdout: only on a terminal, never with `NO_COLOR`.
#[must_use]
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Wraps `text` in an ANSI colour when `on`.
#[must_use]
pub fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Prints an error (and its causes) to stderr as `error: ...`.
pub fn error(e: &anyhow::Error) {
    let head = paint("error", "1;31", color_stderr());
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            let _ = write!(text, "\n  caused by: {c}");
        }
    }
    // Errors may quote what a run recorded (names suggested for a bad sort
    // key, a journal's path): shown safe, keeping the lines of a hint.
    eprintln!("{head}: {}", crate::visible::lines(&text));
}

/// Prints a warning to stderr, shown safe as errors are.
pub fn warn(text: &str) {
    eprintln!(
        "{}: {}",
        paint("warning", "1;33", color_stderr()),
        crate::visible::lines(text)
    );
}

/// A request that cannot be met, for reasons the user can fix (exit status 1).
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// The exit status an error deserves: the user's mistake or Lab's failure.
#[must_use]
pub fn classify(e: &anyhow::Error) -> ExitStatus {
    if e.downcast_ref::<UserError>().is_some() {
        return ExitStatus::Failure;
    }
    if let Some(remote) = e.downcast_ref::<lab_remote::Error>() {
        return if remote.is_user_error() {
            ExitStatus::Failure
        } else {
            ExitStatus::Internal
        };
    }
    match e
        .downcast_ref::<lab_store::Error>()
        .map(lab_store::Error::kind)
    {
        Some(kind) => exit_status(kind),
        None => ExitStatus::Internal,
    }
}

/// The exit status of each kind of store error (see `docs/cli.md`).
fn exit_status(kind: ErrorKind) -> ExitStatus {
    match kind {
        ErrorKind::NotAProject
        | ErrorKind::NotFound(_)
        | ErrorKind::Ambiguous
        | ErrorKind::InvalidInput => ExitStatus::Failure,
        ErrorKind::Busy | ErrorKind::Storage | ErrorKind::Internal => ExitStatus::Internal,
    }
}

/// A run's status as tables show it: coloured when `color`, with ✗ when it
/// went wrong.
#[must_use]
pub fn status_cell(status: Status, color: bool) -> String {
    let code = match status {
        Status::Running => "1;34",
        Status::Finished => "32",
        Status::Failed => "1;31",
        Status::Crashed | Status::Damaged => "1;35",
        Status::Interrupted | Status::Unreachable => "33",
    };
    let text = match status {
        Status::Failed | Status::Crashed | Status::Damaged => format!("{status} ✗"),
        _ => status.to_string(),
    };
    paint(&text, code, color)
}

/// The file name of a run's script, as tables show it.
#[must_use]
pub fn source_name(run: &RunInfo) -> String {
    run.attr_str(attr::SOURCE)
        .map(|s| {
            std::path::Path::new(s)
                .file_name()
                .map_or_else(|| s.to_owned(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

pub use lab_types::time::{iso, utc};

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
#[must_use]
pub fn duration(nanos: i64) -> String {
    let ms = nanos / 1_000_000;
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

/// Bytes for people.
#[must_use]
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A metric value: up to 4 significant decimals, as Python prints NaN and infinities.
#[must_use]
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(0.973_684_2), "0.9737");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(f64::NAN), "nan");
        assert_eq!(number(-f64::INFINITY), "-inf");
        assert_eq!(number(1e-9), "1.000e-9");
        assert_eq!(bytes(1234), "1.2 KB");
        assert_eq!(duration(1_500_000_000), "1.5 s");
    }
}
