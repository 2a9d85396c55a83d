//! One module per subcommand; each returns an [`ExitStatus`].

mod compare;
mod disk;
mod doctor;
mod edit;
mod export;
mod gc;
mod import;
mod info;
mod logs;
mod ls;
mod parquet;
mod reindex;
mod remote;
mod rm;
mod server;
mod show;
mod team;
mod team_read;
mod ui;
mod watch;
mod workspace;

use anyhow::Result;
use lab_store::Store;

use crate::args::{Cli, Command, current_dir};
use crate::output;

/// Runs the parsed command; returns its exit status.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let status = match cli.command {
        Command::Ls(args) => ls::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Reindex => reindex::run(),
        Command::Doctor(args) => doctor::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Rm(args) => rm::run(&args),
        Command::Rename(args) => edit::rename(&args),
        Command::Tag(args) => edit::tag(&args),
        Command::Untag(args) => edit::untag(&args),
        Command::Note(args) => edit::note(&args),
        Command::Gc(args) => gc::run(&args),
        Command::Info => info::run(),
        Command::Export(args) => export::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Logs(args) => logs::run(&args),
        Command::Ui(args) => ui::run(&args),
        Command::Server(args) => server::run(&args),
        Command::Init(args) => workspace::init(&args),
        // The script's own exit status is `lab run`'s.
        Command::Run(args) => return workspace::run(&args),
        Command::Update => workspace::update(),
        Command::Notebook => workspace::notebook(),
        Command::Import(args) => import::run(&args),
        Command::Login(args) => team::login(&args),
        Command::Logout => team::logout(),
        Command::Sync => team::sync(),
        Command::Config(args) => remote::config(&args),
        Command::Push(args) => remote::push(&args),
        Command::Pull(args) => remote::pull(&args),
    };
    status.map(|s| s as i32)
}

/// Opens the current project's index and folds in what the journals hold
/// beyond it, warning about damaged journals.
fn open_fresh() -> Result<Store> {
    let mut store = Store::discover(&current_dir())?;
    for issue in store.refresh()? {
        output::warn(&issue.to_string());
    }
    if let Some(why) = store.in_memory() {
        output::warn(&format!(
            "the index cannot be used as it is, so the runs were read from their journals into memory: {why}"
        ));
    }
    Ok(store)
}
