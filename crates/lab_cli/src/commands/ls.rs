//! `lab ls`: one row per run, one column per metric with a bar.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use lab_store::RunInfo;
use lab_types::Status;

use crate::ExitStatus;
use crate::args::{Format, LsArgs};
use crate::output::{self, paint};
use crate::table::{self, Table};

const BAR_WIDTH: usize = 10;

pub fn run(args: &LsArgs) -> Result<ExitStatus> {
    if let Some(flag) = args.sort_by.as_deref().filter(|s| s.starts_with("--")) {
        // SORT_BY takes `-name` for ascending order, so clap lets hyphens
        // through; a long option it does not know is still a usage error.
        crate::output::error(&anyhow::anyhow!(
            "unexpected option `{flag}` for `lab ls`\n\nhint: `lab ls --help` lists the options"
        ));
        return Ok(ExitStatus::Usage);
    }
    let store = super::open_fresh()?;
    let mut runs = store.runs(args.experiment.as_deref())?;
    if let Some(key) = &args.sort_by {
        sort_by_metric(&mut runs, key);
    }
    if let Some(n) = args.limit {
        runs.truncate(n);
    }
    // Columns for the listed runs, in the order they first logged the
    // metrics, oldest run first, whatever order the rows are shown in.
    let mut by_age: Vec<&RunInfo> = runs.iter().collect();
    by_age.sort_by_key(|r| r.start_nanos);
    let columns = metric_columns(&by_age);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let rows: Vec<_> = runs.iter().map(json_row).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        }
        Format::Table => {
            if runs.is_empty() {
                let any = store.status_counts()?.values().sum::<i64>() > 0;
                writeln!(
                    out,
                    "{}",
                    if any {
                        "No runs match."
                    } else {
                        "No runs yet."
                    }
                )?;
                return Ok(ExitStatus::Success);
            }
            let color = output::color_stdout();
            let (text, dropped) = render(&runs, &columns, color).render(table::width(), 4);
            out.write_all(text.as_bytes())?;
            if dropped > 0 {
                output::warn(&format!(
                    "{dropped} metric column(s) did not fit the terminal; `lab ls --format json` shows all"
                ));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Sorts by a metric's last value, largest first (`-name`: smallest first).
/// Runs without the metric, or with NaN, go last either way.
fn sort_by_metric(runs: &mut [RunInfo], key: &str) {
    let (name, ascending) = match key.strip_prefix('-') {
        Some(n) => (n, true),
        None => (key, false),
    };
    runs.sort_by(|a, b| {
        let va = a.metric(name).map(|m| m.last).filter(|v| !v.is_nan());
        let vb = b.metric(name).map(|m| m.last).filter(|v| !v.is_nan());
        match (va, vb) {
            (Some(x), Some(y)) => {
                if ascending {
                    x.total_cmp(&y)
                } else {
                    y.total_cmp(&x)
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
}

/// Metric names in the order `runs` (oldest first) first logged them.
fn metric_columns(runs: &[&RunInfo]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for m in &run.metrics {
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
    }
    names
}

pub fn status_cell(status: Status, color: bool) -> String {
    let code = match status {
        Status::Running => "1;34",
        Status::Finished => "32",
        Status::Failed => "1;31",
        Status::Crashed => "1;35",
        Status::Interrupted => "33",
    };
    let text = match status {
        Status::Failed | Status::Crashed => format!("{status} ✗"),
        _ => status.to_string(),
    };
    paint(&text, code, color)
}

pub fn source_name(run: &RunInfo) -> String {
    run.attr_str("source")
        .map(|s| {
            std::path::Path::new(s)
                .file_name()
                .map_or_else(|| s.to_owned(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

fn render(runs: &[RunInfo], metrics: &[String], color: bool) -> Table {
    let scale: HashMap<&str, f64> = metrics
        .iter()
        .map(|name| {
            let max = runs
                .iter()
                .filter_map(|r| r.metric(name))
                .map(|m| m.last.abs())
                .filter(|v| v.is_finite())
                .fold(0.0_f64, f64::max);
            (name.as_str(), max)
        })
        .collect();
    let mut header = vec![
        "ID".to_owned(),
        "SOURCE".to_owned(),
        "STARTED (UTC)".to_owned(),
        "STATUS".to_owned(),
    ];
    header.extend(metrics.iter().cloned());
    let rows = runs
        .iter()
        .map(|run| {
            let mut row = vec![
                paint(&run.short_id, "33", color),
                table::truncate(&source_name(run), 30),
                output::utc(run.start_nanos)[..16].to_owned(),
                status_cell(run.status, color),
            ];
            for name in metrics {
                row.push(match run.metric(name) {
                    None => String::new(),
                    Some(m) => {
                        let max = scale[name.as_str()];
                        let fraction = if max > 0.0 { m.last.abs() / max } else { 0.0 };
                        format!(
                            "{:<8} {}",
                            output::number(m.last),
                            table::bar(fraction, BAR_WIDTH)
                        )
                    }
                });
            }
            row
        })
        .collect();
    Table { header, rows }
}

/// A metric value as JSON; NaN and infinities as the same strings parameters use.
fn json_number(v: f64) -> serde_json::Value {
    lab_types::Value::Float(v).to_json()
}

fn json_row(run: &RunInfo) -> serde_json::Value {
    serde_json::json!({
        "id": run.id.to_string(),
        "short_id": run.short_id,
        "experiment": run.experiment,
        "source": run.attr_str("source"),
        "status": run.status.as_str(),
        "start_time": output::iso(run.start_nanos),
        "end_time": run.end_nanos.map(output::iso),
        "params": run.params.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>(),
        "metrics": run.metrics.iter().map(|m| (m.name.clone(), json_number(m.last))).collect::<serde_json::Map<_, _>>(),
    })
}
