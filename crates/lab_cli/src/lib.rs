//! The `lab` command line: list, show, compare and export runs; maintain the
//! project (`rm`, `gc`, `reindex`, `info`); send it to a bucket and back
//! (`config minio`, `push`, `pull`).
//!
//! [`run`] parses arguments and dispatches to one module per subcommand. Data
//! goes to stdout, diagnostics to stderr; colour only on a terminal and never
//! with `NO_COLOR`; a closed pipe ends the command quietly with success.

mod args;
mod commands;
mod graph;
mod output;
mod progress;
mod table;
mod target;
mod visible;

use std::ffi::OsString;

use clap::Parser;

pub use args::Cli;

/// Exit codes scripts can rely on (see `docs/cli.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It worked.
    Success = 0,
    /// The user asked for something that cannot be done (unknown run, not a project, ...).
    Failure = 1,
    /// The command line itself was wrong.
    Usage = 2,
    /// Lab failed (a broken index, an I/O error).
    Internal = 3,
}

/// Runs the command line `argv` (program name first) and returns the exit code.
pub fn run<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            // Printing help or a usage error; a closed pipe is no failure.
            let _ = e.print();
            return code as i32;
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitStatus::Success as i32;
            }
            let status = output::classify(&e);
            output::error(&e);
            status as i32
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}
