//! `lab export`: the runs, one row each, written to a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use lab_store::{Detail, Selection};

use crate::ExitStatus;
use crate::args::{ExportArgs, ExportFormat};
use crate::output;

use super::ls;

pub fn run(args: &ExportArgs) -> Result<ExitStatus> {
    let path = &args.output;
    if path.is_dir() {
        output::error(&anyhow!(
            "cannot write the export: the output path is a folder, not a file: {}",
            path.display()
        ));
        return Ok(ExitStatus::Failure);
    }
    let store = super::open_fresh()?;
    let runs = store.select(&Selection {
        experiment: args.experiment.clone(),
        filter: args.r#where.clone(),
        sort: args.sort.clone(),
        detail: Detail::Listing,
        ..Selection::default()
    })?;
    let mut body = Vec::new();
    match args.format {
        ExportFormat::Csv => ls::write_csv(&mut body, &runs, &ls::all_columns(&runs))?,
        ExportFormat::Json => {
            let rows: Vec<ls::JsonRow<'_>> = runs.iter().map(ls::JsonRow).collect();
            serde_json::to_writer(&mut body, &rows)?;
            body.push(b'\n');
        }
        ExportFormat::Parquet => body = super::parquet::write(&runs, &ls::all_columns(&runs))?,
    }
    if let Err(e) = write_atomically(path, &body) {
        output::error(&anyhow!("cannot write the export: {e}: {}", path.display()));
        return Ok(ExitStatus::Failure);
    }
    writeln!(
        std::io::stdout().lock(),
        "Exported {} run(s) to {}",
        runs.len(),
        path.display()
    )?;
    Ok(ExitStatus::Success)
}

/// Writes `body` to a temporary file beside `path`, then renames it into
/// place: `path` is either left as it was or holds all of `body`.
fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the output path names no file"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
