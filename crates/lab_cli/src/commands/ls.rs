//! `lab ls`: one row per run, one column per metric with a bar.

use lab_types::fields::attr;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;

use anyhow::Result;
use lab_store::query::{Input, Name, QueryError, Scope, parse_sort};
use lab_store::wire::RunSummary;
use lab_store::{Detail, RunInfo, Selection, Store};
use lab_types::{Status, Value};

use crate::ExitStatus;
use crate::args::{Format, LsArgs};
use crate::output::{self, UserError, paint};
use crate::table::{self, Table};
use crate::visible;

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
    let mut sort = Vec::new();
    if let Some(key) = &args.sort_by {
        // The original Lab's SORT_BY: largest first, `-` for smallest first.
        sort.push(match key.strip_prefix('-') {
            Some(k) => k.to_owned(),
            None => format!("-{key}"),
        });
    }
    sort.extend(args.sort.iter().cloned());
    let statuses: Vec<Status> = args.status.iter().map(|s| Status::from(*s)).collect();
    let (runs, source, next) = if args.remote {
        let remote = super::team_read::open()?;
        let listed = remote
            .runs(&super::team_read::Query {
                filter: args.r#where.as_deref(),
                sort: &sort,
                statuses: statuses.iter().map(ToString::to_string).collect(),
                experiment: args.experiment.as_deref(),
                limit: args.limit,
                after: args.after.as_deref(),
            })
            .map_err(|e| match (e, args.after.as_deref()) {
                (lab_sdk::team::Error::Cursor(message), Some(after)) => {
                    bad_after(after, reason_of(&message))
                }
                (e, _) => super::team_read::error(e, Some(&remote)),
            })?;
        (listed.runs, Source::Remote(listed.names), listed.next)
    } else {
        let store = super::open_fresh()?;
        let selection = Selection {
            experiment: args.experiment.clone(),
            statuses,
            filter: args.r#where.clone(),
            sort,
            limit: args.limit,
            offset: 0,
            after: args.after.clone(),
            detail: Detail::Listing,
        };
        let page = store.page(&selection).map_err(|e| match e {
            lab_store::Error::BadCursor { reason, .. } => {
                bad_after(args.after.as_deref().unwrap_or_default(), &reason)
            }
            e => e.into(),
        })?;
        (page.runs, Source::Local(Box::new(store)), page.next)
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let rows = json_rows(runs);
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
                let any = match &source {
                    Source::Local(store) => store.status_counts()?.values().sum::<i64>() > 0,
                    // A server knows a project from its first run on.
                    Source::Remote(_) => true,
                };
                writeln!(
                    out,
                    "{}",
                    if any {
                        "No runs match."
                    } else {
                        "No runs yet."
                    }
                )?;
            } else {
                let columns = table_columns(&source, &runs, args)?;
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
    }
    out.flush()?;
    if let Some(cursor) = &next {
        // On stderr, after the page and whatever the format: stdout keeps
        // its shape, and a program finds the cursor between the backticks.
        eprintln!("more runs: the next page is `--after {cursor}`");
    }
    Ok(ExitStatus::Success)
}

/// The longest start of a bad `--after` an error shows.
const SHOWN_CURSOR_CHARS: usize = 40;

/// The error for an `--after` that is not a cursor of this listing:
/// `reason` says why, as the store put it.
fn bad_after(given: &str, reason: &str) -> anyhow::Error {
    let chars = given.chars().count();
    let shown = if chars > SHOWN_CURSOR_CHARS {
        let start: String = given.chars().take(SHOWN_CURSOR_CHARS).collect();
        format!("`{start}...` ({chars} characters)")
    } else {
        format!("`{given}`")
    };
    UserError(format!(
        "`--after` must be a cursor a previous `lab ls` printed on stderr (`more runs: the next page is --after CURSOR`) for a listing with the same sort, but {reason}: got {shown}\n\nhint: `lab ls` without `--after` lists the first page"
    ))
    .into()
}

/// Why the store refused a cursor, from its message (`... but REASON: got
/// ...`), or the whole message when it does not read so.
fn reason_of(message: &str) -> &str {
    message
        .split_once(", but ")
        .and_then(|(_, rest)| rest.rsplit_once(": got `"))
        .map_or(message, |(reason, _)| reason)
}

/// Where the listed runs come from: this project, or its copy on the team
/// server (with every name its runs use).
enum Source {
    Local(Box<Store>),
    Remote(super::team_read::Names),
}

/// The runs as `lab ls --format json` and `lab export` write them: each a
/// [`RunSummary`] without the fields these have never shown (`duration_s`,
/// `host`, `user`).
pub(super) fn json_rows(runs: Vec<RunInfo>) -> impl serde::Serialize {
    struct Rows(Vec<RunSummary>);
    impl serde::Serialize for Rows {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(RunSummary::without_listing_extras))
        }
    }
    Rows(runs.into_iter().map(RunSummary::of).collect())
}

/// Each name once, in the order first met.
fn first_seen<'a>(lists: impl Iterator<Item = impl Iterator<Item = &'a str>>) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut names = Vec::new();
    for name in lists.flatten() {
        if seen.insert(name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Metric names in the order `runs` (oldest first) first logged them.
fn metric_names(runs: &[&RunInfo]) -> Vec<String> {
    first_seen(
        runs.iter()
            .map(|r| r.metrics.iter().map(|m| m.name.as_str())),
    )
}

fn param_names(runs: &[&RunInfo]) -> Vec<String> {
    first_seen(
        runs.iter()
            .map(|r| r.params.iter().map(|(k, _)| k.as_str())),
    )
}

/// A run's metrics, parameters and tags by name: filling a row of N columns
/// then costs N lookups rather than N scans of the run's lists.
pub(super) struct Named<'a> {
    metrics: HashMap<&'a str, &'a lab_store::MetricSummary>,
    params: HashMap<&'a str, &'a Value>,
    tags: HashMap<&'a str, &'a str>,
}

impl<'a> Named<'a> {
    pub(super) fn new(run: &'a RunInfo) -> Self {
        // The first of a name wins, as a scan from the front would find it.
        let mut metrics = HashMap::with_capacity(run.metrics.len());
        for m in &run.metrics {
            metrics.entry(m.name.as_str()).or_insert(m);
        }
        let mut params = HashMap::with_capacity(run.params.len());
        for (k, v) in &run.params {
            params.entry(k.as_str()).or_insert(v);
        }
        let mut tags = HashMap::with_capacity(run.tags.len());
        for (k, v) in &run.tags {
            tags.entry(k.as_str()).or_insert(v.as_str());
        }
        Self {
            metrics,
            params,
            tags,
        }
    }

    pub(super) fn metric(&self, name: &str) -> Option<&'a lab_store::MetricSummary> {
        self.metrics.get(name).copied()
    }

    pub(super) fn param(&self, name: &str) -> Option<&'a Value> {
        self.params.get(name).copied()
    }

    pub(super) fn tag(&self, name: &str) -> Option<&'a str> {
        self.tags.get(name).copied()
    }
}

fn oldest_first(runs: &[RunInfo]) -> Vec<&RunInfo> {
    let mut by_age: Vec<&RunInfo> = runs.iter().collect();
    by_age.sort_by_key(|r| r.start_nanos);
    by_age
}

/// The table's columns: those asked for with `--columns`, else the group
/// when a listed run has one, then (with `--params`) every parameter, then
/// every metric, of the listed runs in the order they were first logged,
/// oldest run first. The system metrics Lab
/// records by itself (`sys/...`) are left to `--columns`: they would crowd
/// out the script's own.
fn table_columns(source: &Source, runs: &[RunInfo], args: &LsArgs) -> Result<Vec<Column>> {
    if let (Source::Remote(names), false) = (source, args.columns.is_empty()) {
        return args
            .columns
            .iter()
            .map(|text| remote_column(names, text))
            .collect();
    }
    if let (Source::Local(store), false) = (source, args.columns.is_empty()) {
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
    if runs.iter().any(|r| r.attr(attr::GROUP).is_some()) {
        columns.push(Column::Field(attr::GROUP.to_owned()));
    }
    if args.params {
        columns.extend(param_names(&by_age).into_iter().map(Column::Param));
    }
    columns.extend(
        metric_names(&by_age)
            .into_iter()
            .filter(|name| !name.starts_with(lab_sdk::sysmetrics::PREFIX))
            .map(Column::Metric),
    );
    Ok(columns)
}

/// A `--columns` name, placed among the names the server's runs use as
/// the local catalog places it among the project's (without its
/// suggestions of names near a misspelt one).
fn remote_column(names: &super::team_read::Names, text: &str) -> Result<Column> {
    let bad = |e: QueryError| lab_store::Error::Query(e.about(Input::Column));
    let key = parse_sort(text).map_err(bad)?;
    let Name { key: name, scope } = key.name;
    let has = |list: &[String]| list.contains(&name);
    let column = match scope {
        Some(Scope::Params) => has(&names.params).then(|| Column::Param(name.clone())),
        Some(Scope::Tags) => has(&names.tags).then(|| Column::Tag(name.clone())),
        Some(Scope::Metrics) => has(&names.metrics).then(|| Column::Metric(name.clone())),
        Some(Scope::Run) => has(&names.fields).then(|| Column::Field(name.clone())),
        None if has(&names.fields) => Some(Column::Field(name.clone())),
        None if has(&names.metrics) => Some(Column::Metric(name.clone())),
        None if has(&names.params) => Some(Column::Param(name.clone())),
        None if has(&names.tags) => Some(Column::Tag(name.clone())),
        None => None,
    };
    column.ok_or_else(|| {
        let what = match scope {
            Some(Scope::Run) => "run field",
            Some(Scope::Metrics) => "metric",
            Some(Scope::Params) => "parameter",
            Some(Scope::Tags) => "tag",
            None => "metric, parameter, tag or run field",
        };
        let offset = text.rfind(name.as_str()).unwrap_or(0);
        bad(QueryError {
            query: text.to_owned(),
            input: Input::Column,
            offset,
            len: name.len(),
            message: format!("no run has a {what} named `{name}`"),
            suggestions: Vec::new(),
            hint: None,
        })
        .into()
    })
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

/// A run field's value as text, exact (for CSV).
fn field_text(run: &RunInfo, field: &str) -> String {
    match field {
        "id" => run.id.to_string(),
        "short_id" => run.short_id.clone(),
        "name" => run.name(),
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

/// Text from a run for a table cell: control characters shown as escapes,
/// then cut to `max` columns.
fn cell(text: &str, max: usize) -> String {
    table::truncate(&visible::text(text), max)
}

/// A run's name for a table: as wide as the longest generated name, so that
/// the columns after it line up the same whatever the runs are named (a
/// longer name is cut).
pub(super) fn name_cell(name: &str) -> String {
    let width = lab_types::names::GENERATED_MAX_CHARS;
    let text = cell(name, width);
    let shown = table::text_width(&text);
    format!("{text}{}", " ".repeat(width.saturating_sub(shown)))
}

fn render(runs: &[RunInfo], columns: &[Column], color: bool) -> Table {
    let named: Vec<Named<'_>> = runs.iter().map(Named::new).collect();
    let scale: HashMap<&str, f64> = columns
        .iter()
        .filter_map(|c| match c {
            Column::Metric(name) => {
                let max = named
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
        "NAME".to_owned(),
        "SOURCE".to_owned(),
        "STARTED (UTC)".to_owned(),
        "STATUS".to_owned(),
    ];
    header.extend(
        columns
            .iter()
            .map(|c| visible::text(&c.title()).into_owned()),
    );
    let rows = runs
        .iter()
        .zip(&named)
        .map(|(run, named)| {
            let mut row = vec![
                paint(&run.short_id, "33", color),
                name_cell(&run.name()),
                cell(&output::source_name(run), 30),
                output::utc(run.start_nanos)[..16].to_owned(),
                output::status_cell(run.status, color),
            ];
            for column in columns {
                row.push(match column {
                    Column::Metric(name) => match named.metric(name) {
                        None => String::new(),
                        Some(m) => {
                            let max = scale.get(name.as_str()).copied().unwrap_or(0.0);
                            let fraction = if max > 0.0 { m.last.abs() / max } else { 0.0 };
                            format!(
                                "{:<8} {}",
                                output::number(m.last),
                                table::bar(fraction, BAR_WIDTH)
                            )
                        }
                    },
                    Column::Param(name) => named
                        .param(name)
                        .map(|v| cell(&v.to_string(), 30))
                        .unwrap_or_default(),
                    Column::Tag(name) => named.tag(name).map(|v| cell(v, 40)).unwrap_or_default(),
                    Column::Field(name) => cell(&field_text(run, name), 40),
                });
            }
            row
        })
        .collect();
    Table { header, rows }
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// A metric value in CSV, in the shortest form that reads back exactly, and
/// NaN and infinities as Python spells them, so that Python's `float()` and
/// pandas read every value back: `0.25`, `1.0`, `1e-9`, `nan`, `inf`, `-inf`.
fn csv_number(v: f64) -> String {
    if v.is_nan() {
        "nan".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{v:?}")
    }
}

/// The run's own columns of CSV and Parquet, in the order of the Python
/// data frame (`lab.runs(as_frame=True)`).
pub(super) use lab_store::fields::TABLE_FIELDS as RUN_FIELDS;

fn write_row<'a>(
    out: &mut impl Write,
    fields: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&csv_field(f));
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

pub(super) fn write_csv(
    out: &mut impl Write,
    runs: &[RunInfo],
    columns: &[Column],
) -> std::io::Result<()> {
    let mut header: Vec<String> = RUN_FIELDS.iter().map(|s| (*s).to_owned()).collect();
    header.extend(columns.iter().map(|c| match c {
        Column::Metric(k) => format!("metrics.{k}"),
        other => other.title(),
    }));
    write_row(out, header.iter().map(String::as_str))?;
    for run in runs {
        let named = Named::new(run);
        let mut row = vec![
            run.id.to_string(),
            run.short_id.clone(),
            run.name(),
            run.experiment.clone(),
            run.status.to_string(),
            output::iso(run.start_nanos),
            run.end_nanos.map(output::iso).unwrap_or_default(),
            run.attr_str(attr::SOURCE).unwrap_or_default().to_owned(),
        ];
        for c in columns {
            row.push(match c {
                Column::Metric(k) => named
                    .metric(k)
                    .map(|m| csv_number(m.last))
                    .unwrap_or_default(),
                Column::Param(k) => named.param(k).map(ToString::to_string).unwrap_or_default(),
                Column::Tag(k) => named.tag(k).map(str::to_owned).unwrap_or_default(),
                Column::Field(k) => field_text(run, k),
            });
        }
        write_row(out, row.iter().map(String::as_str))?;
    }
    Ok(())
}
