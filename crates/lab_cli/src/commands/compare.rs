//! `lab compare`: runs side by side, one column per run.

use std::collections::HashSet;
use std::io::Write as _;

use anyhow::Result;
use lab_store::RunInfo;
use lab_types::Value;

use crate::ExitStatus;
use crate::args::CompareArgs;
use crate::output::{self, paint};
use crate::table::{self, Table};
use crate::visible;

use super::ls::Named;

/// What a cell shows when the run lacks the value.
const MISSING: &str = "-";

pub fn run(args: &CompareArgs) -> Result<ExitStatus> {
    let store = super::open_fresh()?;
    let runs: Vec<RunInfo> = args
        .runs
        .iter()
        .map(|prefix| store.run(prefix))
        .collect::<Result<_, _>>()?;
    let color = output::color_stdout();
    let table = render(&runs, color);
    // Every column is a run: none may be left out to fit the terminal.
    let (text, _) = table.render(None, table.header.len());
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    // The runs' names below the table, which they would widen.
    writeln!(out, "{}", paint("Names", "1", color))?;
    for run in &runs {
        writeln!(
            out,
            "  {}  {}",
            paint(&run.short_id, "33", color),
            visible::text(&run.name())
        )?;
    }
    Ok(ExitStatus::Success)
}

/// The table: a column per run, and a section each for the parameters, the
/// metrics and the features (the names follow it).
fn render(runs: &[RunInfo], color: bool) -> Table {
    let mut header = vec![String::new()];
    header.extend(runs.iter().map(|r| paint(&r.short_id, "33", color)));
    let section = |title: &str| {
        let mut row = vec![paint(title, "1", color)];
        row.extend(runs.iter().map(|_| String::new()));
        row
    };
    let named: Vec<Named<'_>> = runs.iter().map(Named::new).collect();
    let mut rows = vec![section("Parameters")];
    rows.extend(parameter_rows(runs, &named));
    rows.push(section("Metrics"));
    rows.extend(metric_rows(runs, &named));
    rows.push(section("Features"));
    rows.extend(feature_rows(runs));
    Table { header, rows }
}

/// A row per parameter: those whose values differ first (`  name`), then
/// those every run shares (`= name`).
fn parameter_rows(runs: &[RunInfo], named: &[Named<'_>]) -> Vec<Vec<String>> {
    let mut differ = Vec::new();
    let mut same = Vec::new();
    for key in names(
        runs.iter()
            .map(|r| r.params.iter().map(|(k, _)| k.as_str())),
    ) {
        let values: Vec<Option<&Value>> = named.iter().map(|r| r.param(&key)).collect();
        let cells: Vec<String> = values
            .iter()
            .map(|v| {
                v.map_or_else(
                    || MISSING.to_owned(),
                    |v| table::truncate(&visible::text(&v.to_string()), 30),
                )
            })
            .collect();
        let key = visible::text(&key);
        if values.iter().all(|v| *v == values[0]) {
            same.push((format!("= {key}"), cells));
        } else {
            differ.push((format!("  {key}"), cells));
        }
    }
    differ
        .into_iter()
        .chain(same)
        .map(|(key, cells)| {
            let mut row = vec![key];
            row.extend(cells);
            row
        })
        .collect()
}

/// A row per metric: each run's last value, and after the first run's, the
/// difference from it. The system metrics Lab records by itself (`sys/...`)
/// come after the script's own.
fn metric_rows(runs: &[RunInfo], named: &[Named<'_>]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut keys = names(
        runs.iter()
            .map(|r| r.metrics.iter().map(|m| m.name.as_str())),
    );
    keys.sort_by_key(|k| k.starts_with(lab_sdk::sysmetrics::PREFIX));
    for key in keys {
        let first = named[0].metric(&key).map(|m| m.last);
        let mut row = vec![format!("  {}", visible::text(&key))];
        for (i, run) in named.iter().enumerate() {
            row.push(match (run.metric(&key).map(|m| m.last), first) {
                (None, _) => MISSING.to_owned(),
                (Some(v), Some(f)) if i > 0 && (v - f).is_finite() => {
                    format!("{} ({})", output::number(v), signed(v - f))
                }
                (Some(v), _) => output::number(v),
            });
        }
        rows.push(row);
    }
    rows
}

/// How many features each run has, then a row per feature that not every
/// run has: added or removed compared with the first run.
fn feature_rows(runs: &[RunInfo]) -> Vec<Vec<String>> {
    let features: Vec<HashSet<String>> = runs
        .iter()
        .map(|r| r.features.iter().map(Value::to_string).collect())
        .collect();
    let mut count = vec!["  (count)".to_owned()];
    count.extend(runs.iter().map(|r| r.features.len().to_string()));
    let mut rows = vec![count];
    let all = names(
        runs.iter()
            .map(|r| r.features.iter().map(Value::to_string).collect::<Vec<_>>()),
    );
    for feature in all {
        let in_first = features[0].contains(&feature);
        let has: Vec<bool> = features.iter().map(|f| f.contains(&feature)).collect();
        if has.iter().all(|&h| h == in_first) {
            continue;
        }
        let mut row = vec![format!(
            "  {}",
            table::truncate(&visible::text(&feature), 40)
        )];
        for (i, &h) in has.iter().enumerate() {
            row.push(
                match (i > 0, h, in_first) {
                    (true, true, false) => "added",
                    (true, false, true) => "removed",
                    (_, true, _) => "yes",
                    (_, false, _) => MISSING,
                }
                .to_owned(),
            );
        }
        rows.push(row);
    }
    rows
}

/// The names of each run's list, first run first, each once, in order.
fn names<I, N>(lists: I) -> Vec<String>
where
    I: IntoIterator<Item = N>,
    N: IntoIterator,
    N::Item: AsRef<str>,
{
    let mut seen: HashSet<String> = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for name in list {
            let name = name.as_ref();
            if !seen.contains(name) {
                seen.insert(name.to_owned());
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// A difference with its sign: `+0.05`, `-0.1`, `+0`.
fn signed(d: f64) -> String {
    let text = output::number(d);
    if text.starts_with('-') {
        text
    } else {
        format!("+{text}")
    }
}
