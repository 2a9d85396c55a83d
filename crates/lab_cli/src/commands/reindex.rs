//! `lab reindex`: rebuild the index from the journals.

use std::io::Write as _;

use anyhow::Result;
use lab_store::{Project, Store};

use crate::ExitStatus;
use crate::args::current_dir;
use crate::output;

pub fn run() -> Result<ExitStatus> {
    let (mut store, moved) = Store::open_to_rebuild(Project::discover(&current_dir())?)?;
    if let Some(path) = moved {
        output::warn(&format!(
            "the index could not be read as a database; it was moved aside to {}",
            path.display()
        ));
    }
    for issue in store.reindex()? {
        output::warn(&issue.to_string());
    }
    let runs = store.runs(None)?.len();
    writeln!(
        std::io::stdout().lock(),
        "Indexed {runs} run(s) from their journals in {}",
        store.project().store_dir().display()
    )?;
    Ok(ExitStatus::Success)
}
