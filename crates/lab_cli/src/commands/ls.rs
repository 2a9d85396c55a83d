//! `lab ls`: one row per run, one column per metric with a bar.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use lab_store::query::{Input, Name, QueryError, Scope, parse_sort};
use lab_store::{Detail, RunInfo, Selection, Store};
use lab_types::{Status, Value};

use crate::ExitStatus;
use crate::args::{Format, LsArgs};
use crate::output::{self, paint};
use crate::table::{self, Table};

const BAR_WIDTH: usize = 10;

/// A column after the run's own (id, source, date, status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Column {
    Metric(String),
    Param(String),
    Tag(String),
    Field(String),
}

impl Column {
    fn title(&self) -> String {
        match self {
            Column::Metric(k) | Column::Field(k) => k.clone(),
            Column::Param(k) => format!("params.{k}"),
            Column::Tag(k) => format!("tags.{k}"),
        }
    }
}

pub fn run(args: &LsArgs) -> Result<ExitStatus> {
    if let Some(flag) = args.sort_by.as_deref().filter(|s| s.starts_with("--")) {
        // SORT_BY takes `-name` for ascending order, so clap lets hyphens
        // through; a long option it does not know is still a usage error.
        output::error(&anyhow::anyhow!(
            "unexpected option `{flag}` for `lab ls`\n\nhint: `lab ls --help` lists the options"
        ));
        return Ok(ExitStatus::Usage);
    }
    let store = super::open_fresh()?;
    let mut sort = Vec::new();
    if let Some(key) = &args.sort_by {
        // The original Lab's SORT_BY: largest first, `-` for smallest first.
        sort.push(match key.strip_prefix('-') {
            Some(k) => k.to_owned(),
            None => format!("-{key}"),
        });
    }
    sort.extend(args.sort.iter().cloned());
    let selection = Selection {
        experiment: args.experiment.clone(),
        statuses: args.status.iter().map(|s| Status::from(*s)).collect(),
        filter: args.r#where.clone(),
        sort,
        limit: args.limit,
        offset: 0,
        detail: Detail::Listing,
    };
    let runs = store.select(&selection)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let rows: Vec<JsonRow<'_>> = runs.iter().map(JsonRow).collect();
            let mut buffered = std::io::BufWriter::new(&mut out);
            // Indented for a person at a terminal, compact for a program.
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                serde_json::to_writer_pretty(&mut buffered, &rows)?;
            } else {
                serde_json::to_writer(&mut buffered, &rows)?;
            }
            writeln!(buffered)?;
            buffered.flush()?;
        }
        Format::Csv => {
            let columns = all_columns(&runs);
            write_csv(&mut out, &runs, &columns)?;
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
            let columns = table_columns(&store, &runs, args)?;
            let color = output::color_stdout();
            let (text, dropped) = render(&runs, &columns, color).render(table::width(), 4);
            out.write_all(text.as_bytes())?;
            if dropped > 0 {
                output::warn(&format!(
                    "{dropped} column(s) did not fit the terminal; choose some with `--columns`, or use `--format csv`"
                ));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Metric names in the order `runs` (oldest first) first logged them.
fn metric_names(runs: &[&RunInfo]) -> Vec<String> {
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

fn param_names(runs: &[&RunInfo]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for (k, _) in &run.params {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    names
}

fn oldest_first(runs: &[RunInfo]) -> Vec<&RunInfo> {
    let mut by_age: Vec<&RunInfo> = runs.iter().collect();
    by_age.sort_by_key(|r| r.start_nanos);
    by_age
}

/// The table's columns: those asked for with `--columns`, else (with
/// `--params`) every parameter, then every metric, of the listed runs in the
/// order they were first logged, oldest run first.
fn table_columns(store: &Store, runs: &[RunInfo], args: &LsArgs) -> Result<Vec<Column>> {
    if !args.columns.is_empty() {
        let catalog = store.catalog()?;
        return args
            .columns
            .iter()
            .map(|text| {
                let key = parse_sort(text)?;
                let Name { key: name, .. } = key.name.clone();
                Ok(match catalog.scope_of(&key.name, text)? {
                    Scope::Metrics => Column::Metric(name),
                    Scope::Params => Column::Param(name),
                    Scope::Tags => Column::Tag(name),
                    Scope::Run => Column::Field(name),
                })
            })
            .collect::<Result<_, QueryError>>()
            .map_err(|e| lab_store::Error::Query(e.about(Input::Column)).into());
    }
    let by_age = oldest_first(runs);
    let mut columns = Vec::new();
    if args.params {
        columns.extend(param_names(&by_age).into_iter().map(Column::Param));
    }
    columns.extend(metric_names(&by_age).into_iter().map(Column::Metric));
    Ok(columns)
}

/// Every parameter and metric of the listed runs, for CSV.
pub(super) fn all_columns(runs: &[RunInfo]) -> Vec<Column> {
    let by_age = oldest_first(runs);
    let mut columns: Vec<Column> = param_names(&by_age)
        .into_iter()
        .map(Column::Param)
        .collect();
    columns.extend(metric_names(&by_age).into_iter().map(Column::Metric));
    columns
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

/// A run field's value as text.
fn field_text(run: &RunInfo, field: &str) -> String {
    match field {
        "id" => run.id.to_string(),
        "short_id" => run.short_id.clone(),
        "experiment" => run.experiment.clone(),
        "status" => run.status.to_string(),
        "start_time" => output::utc(run.start_nanos),
        "end_time" => run.end_nanos.map(output::utc).unwrap_or_default(),
        "duration" => run
            .end_nanos
            .map(|e| output::duration(e - run.start_nanos))
            .unwrap_or_default(),
        other => match run.attr(other) {
            Some(Value::Str(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        },
    }
}

fn render(runs: &[RunInfo], columns: &[Column], color: bool) -> Table {
    let scale: HashMap<&str, f64> = columns
        .iter()
        .filter_map(|c| match c {
            Column::Metric(name) => {
                let max = runs
                    .iter()
                    .filter_map(|r| r.metric(name))
                    .map(|m| m.last.abs())
                    .filter(|v| v.is_finite())
                    .fold(0.0_f64, f64::max);
                Some((name.as_str(), max))
            }
            _ => None,
        })
        .collect();
    let mut header = vec![
        "ID".to_owned(),
        "SOURCE".to_owned(),
        "STARTED (UTC)".to_owned(),
        "STATUS".to_owned(),
    ];
    header.extend(columns.iter().map(Column::title));
    let rows = runs
        .iter()
        .map(|run| {
            let mut row = vec![
                paint(&run.short_id, "33", color),
                table::truncate(&source_name(run), 30),
                output::utc(run.start_nanos)[..16].to_owned(),
                status_cell(run.status, color),
            ];
            for column in columns {
                row.push(match column {
                    Column::Metric(name) => match run.metric(name) {
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
                    },
                    Column::Param(name) => run
                        .params
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| table::truncate(&v.to_string(), 30))
                        .unwrap_or_default(),
                    Column::Tag(name) => run
                        .tags
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                    Column::Field(name) => table::truncate(&field_text(run, name), 40),
                });
            }
            row
        })
        .collect();
    Table { header, rows }
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(super) fn write_csv(
    out: &mut impl Write,
    runs: &[RunInfo],
    columns: &[Column],
) -> std::io::Result<()> {
    let mut header: Vec<String> = [
        "id",
        "experiment",
        "source",
        "status",
        "start_time",
        "end_time",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    header.extend(columns.iter().map(|c| match c {
        Column::Metric(k) => format!("metrics.{k}"),
        other => other.title(),
    }));
    writeln!(
        out,
        "{}",
        header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(",")
    )?;
    for run in runs {
        let mut row = vec![
            run.id.to_string(),
            run.experiment.clone(),
            run.attr_str("source").unwrap_or_default().to_owned(),
            run.status.to_string(),
            output::iso(run.start_nanos),
            run.end_nanos.map(output::iso).unwrap_or_default(),
        ];
        for c in columns {
            row.push(match c {
                Column::Metric(k) => run
                    .metric(k)
                    .map(|m| format!("{}", m.last))
                    .unwrap_or_default(),
                Column::Param(k) => run
                    .params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default(),
                Column::Tag(k) => run
                    .tags
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                Column::Field(k) => field_text(run, k),
            });
        }
        writeln!(
            out,
            "{}",
            row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",")
        )?;
    }
    Ok(())
}

/// One run of `lab ls --format json`, serialised straight from the run.
pub(super) struct JsonRow<'a>(pub(super) &'a RunInfo);

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Pairs<'a, V>(&'a [(String, V)]);
        impl<V: serde::Serialize> serde::Serialize for Pairs<'_, V> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        struct Metrics<'a>(&'a [lab_store::MetricSummary]);
        impl serde::Serialize for Metrics<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for m in self.0 {
                    // NaN and infinities as the same strings parameters use.
                    map.serialize_entry(&m.name, &Value::Float(m.last))?;
                }
                map.end()
            }
        }
        let run = self.0;
        let mut map = s.serialize_map(Some(10))?;
        map.serialize_entry("end_time", &run.end_nanos.map(output::iso))?;
        map.serialize_entry("experiment", &run.experiment)?;
        map.serialize_entry("id", &run.id.to_string())?;
        map.serialize_entry("metrics", &Metrics(&run.metrics))?;
        map.serialize_entry("params", &Pairs(&run.params))?;
        map.serialize_entry("short_id", &run.short_id)?;
        map.serialize_entry("source", &run.attr_str("source"))?;
        map.serialize_entry("start_time", &output::iso(run.start_nanos))?;
        map.serialize_entry("status", run.status.as_str())?;
        map.serialize_entry("tags", &Pairs(&run.tags))?;
        map.end()
    }
}
