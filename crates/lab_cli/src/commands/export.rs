//! `lab export`: the runs, one row each, written to a file or to stdout.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Result, anyhow};
use lab_store::{Detail, Selection};

use crate::ExitStatus;
use crate::args::{ExportArgs, ExportFormat};
use crate::output;
use crate::target::Target;

use super::ls;

const WHAT: &str = "the export";

/// The format a file name's extension names, if any.
fn format_of(path: &Path) -> Option<ExportFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(ExportFormat::Csv),
        "json" => Some(ExportFormat::Json),
        "parquet" | "pq" => Some(ExportFormat::Parquet),
        _ => None,
    }
}

fn name(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Json => "json",
        ExportFormat::Parquet => "parquet",
    }
}

pub fn run(args: &ExportArgs) -> Result<ExitStatus> {
    let path = &args.output;
    let target = Target::check(path, WHAT)?;
    let from_name = (!target.is_stdout()).then(|| format_of(path)).flatten();
    let format = match (args.format, from_name) {
        (Some(f), Some(n)) if f != n => {
            output::warn(&format!(
                "writing {} as `--format {}` says, though the file name ends in `.{}`: {}",
                name(f).to_ascii_uppercase(),
                name(f),
                path.extension().unwrap_or_default().to_string_lossy(),
                target.shown()
            ));
            f
        }
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => {
            output::error(&anyhow!(if target.is_stdout() {
                "`-o -` (standard output) needs `--format csv|json|parquet`\n\nhint: `lab export --format csv -o -`".to_owned()
            } else {
                format!(
                    "cannot tell the format from the file name `{0}`: expected a name ending in `.csv`, `.json`, `.parquet` or `.pq`, or `--format csv|json|parquet`\n\nhint: `lab export -o runs.csv`, or `lab export --format csv -o {0}`",
                    target.shown()
                )
            }));
            return Ok(ExitStatus::Usage);
        }
    };
    if format == ExportFormat::Parquet {
        target.refuse_binary_on_terminal("Parquet", WHAT)?;
    }
    let store = super::open_fresh()?;
    let runs = store.select(&Selection {
        experiment: args.experiment.clone(),
        filter: args.r#where.clone(),
        sort: args.sort.clone(),
        detail: Detail::Listing,
        ..Selection::default()
    })?;
    let count = runs.len();
    let mut body = Vec::new();
    match format {
        ExportFormat::Csv => ls::write_csv(&mut body, &runs, &ls::all_columns(&runs))?,
        ExportFormat::Json => {
            serde_json::to_writer(&mut body, &ls::json_rows(runs))?;
            body.push(b'\n');
        }
        ExportFormat::Parquet => body = super::parquet::write(&runs, &ls::all_columns(&runs))?,
    }
    target.write(&body, WHAT)?;
    if !target.is_stdout() {
        writeln!(
            std::io::stdout().lock(),
            "Exported {count} run(s) to {}",
            target.shown()
        )?;
    }
    Ok(ExitStatus::Success)
}
