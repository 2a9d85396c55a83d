//! `lab reindex`: rebuild the index from the journals.

use anyhow::Result;
use lab_store::Store;

use crate::ExitStatus;
use crate::args::current_dir;
use crate::output;

pub fn run() -> Result<ExitStatus> {
    let mut store = Store::discover(&current_dir())?;
    let damages = store.reindex()?;
    for (short, d) in &damages {
        output::warn(&format!(
            "the journal of run `{short}` is damaged at byte {}: {}; {} bytes were cut off and kept beside it",
            d.offset, d.reason, d.dropped_bytes
        ));
    }
    let runs = store.runs(None)?.len();
    println!("Indexed {runs} run(s) from their journals in {}", store.project().store_dir().display());
    Ok(ExitStatus::Success)
}
