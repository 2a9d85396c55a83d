//! Command-line arguments. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Lab tracks machine-learning experiments: every run of a script that uses
/// `Experiment` is recorded with its features, parameters, metrics, artifacts
/// and models. These commands list, show and maintain those runs.
///
/// Lab works on the project found from the current folder upward (the folder
/// holding `.lab/`), or on the one `LAB_PROJECT` names.
#[derive(Debug, Parser)]
#[command(name = "lab", version, max_term_width = 100)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Lab's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runs, newest first, with one column per metric.
    ///
    /// Each metric column shows the run's last value and a bar scaled to the
    /// largest value in the column. Runs that lack a metric show a blank.
    Ls(LsArgs),
    /// Show everything recorded about one run.
    Show(ShowArgs),
    /// Rebuild the index from the run journals alone.
    ///
    /// The index is derived data; this is safe at any time, also while runs
    /// are logging.
    Reindex,
}

/// `lab ls`.
#[derive(Debug, Parser)]
pub struct LsArgs {
    /// Sort by this metric, largest first (a leading `-` sorts smallest first).
    #[arg(value_name = "SORT_BY", allow_hyphen_values = true)]
    pub sort_by: Option<String>,
    /// Only runs of this experiment.
    #[arg(long, short = 'e', value_name = "NAME")]
    pub experiment: Option<String>,
    /// Show at most this many runs.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Print this format instead of a table.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Output formats of `lab ls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON object per run, in an array.
    Json,
}

/// `lab show`.
#[derive(Debug, Parser)]
pub struct ShowArgs {
    /// The run: its id or any unique prefix of it (as `lab ls` shows).
    #[arg(value_name = "RUN")]
    pub run: String,
}

/// Where a command should look for the project.
#[must_use]
pub fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}
