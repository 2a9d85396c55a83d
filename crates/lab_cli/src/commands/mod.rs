//! One module per subcommand; each returns an [`ExitStatus`].

mod ls;
mod reindex;
mod show;

use anyhow::Result;
use lab_store::Store;

use crate::args::{Cli, Command, current_dir};
use crate::{ExitStatus, output};

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<ExitStatus> {
    match cli.command {
        Command::Ls(args) => ls::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Reindex => reindex::run(),
    }
}

/// Opens the current project's index and folds in what the journals hold
/// beyond it, warning about damaged journals.
fn open_fresh() -> Result<Store> {
    let mut store = Store::discover(&current_dir())?;
    for issue in store.refresh()? {
        output::warn(&issue.to_string());
    }
    Ok(store)
}
