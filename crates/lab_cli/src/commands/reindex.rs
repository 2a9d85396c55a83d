//! `lab reindex`: rebuild the index from the journals.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use lab_store::{Project, Store};

use crate::ExitStatus;
use crate::args::current_dir;
use crate::output;

pub fn run() -> Result<ExitStatus> {
    let project = Project::discover(&current_dir())?;
    let index = project.index_path();
    let (mut store, moved) = Store::open_to_rebuild(project)
        .with_context(|| format!("cannot rebuild the index: {}", index.display()))?;
    if let Some(path) = moved {
        output::warn(&format!(
            "the index could not be read as a database; it was moved aside to {}",
            path.display()
        ));
    }
    let issues = store
        .reindex()
        .with_context(|| format!("cannot rebuild the index: {}", index.display()))?;
    for issue in issues {
        output::warn(&issue.to_string());
    }
    // Counted in the index: reading every run back took a quarter of the
    // command's time.
    let runs = store.count(&lab_store::Selection::default())?;
    writeln!(
        std::io::stdout().lock(),
        "Indexed {runs} run(s) from their journals in {}",
        store.project().store_dir().display()
    )?;
    Ok(ExitStatus::Success)
}
