//! `lab show RUN`: everything recorded about one run.

use lab_types::fields::attr;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use lab_store::RunInfo;
use lab_types::Value;

use crate::ExitStatus;
use crate::args::{GraphFormat, ShowArgs};
use crate::output::{self, UserError, paint};
use crate::table::Table;
use crate::target::Target;
use crate::visible;

pub fn run(args: &ShowArgs) -> Result<ExitStatus> {
    if let Some(file) = &args.graph {
        return write_graph(args.run.as_deref(), file, args.graph_format);
    }
    let Some(prefix) = args.run.as_deref() else {
        return Err(UserError(
            "`lab show` needs a run, or `--graph FILE` to draw every run".into(),
        )
        .into());
    };
    if args.remote {
        let remote = super::team_read::open()?;
        let fail = |e| super::team_read::error(e, Some(&remote));
        let run = remote.run(prefix).map_err(fail)?;
        let series = remote.metric_series(&run).map_err(fail)?;
        let text = render(
            &run,
            &remote.run_url(&run.id.to_string()),
            &series,
            output::color_stdout(),
        );
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(ExitStatus::Success);
    }
    let store = super::open_fresh()?;
    let run = store.run(prefix)?;
    let run_dir = store.project().run_paths(&run.short_id).dir;
    // The series behind the sparklines; a journal that cannot be read leaves
    // the report without them rather than failing it.
    let series = store.metric_series(&run).unwrap_or_default();
    let text = render(&run, &run_dir, &series, output::color_stdout());
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

/// The diagram format `file`'s extension names, if any.
fn graph_format_of(file: &std::path::Path) -> Option<GraphFormat> {
    let ext = file.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "svg" => Some(GraphFormat::Svg),
        "png" => Some(GraphFormat::Png),
        "dot" | "gv" => Some(GraphFormat::Dot),
        _ => None,
    }
}

const WHAT: &str = "the diagram";

/// Writes the diagram of one run, or of every run, to `file` (or standard
/// output for `-`), in `format` or the one its extension names.
fn write_graph(
    prefix: Option<&str>,
    file: &std::path::Path,
    format: Option<GraphFormat>,
) -> Result<ExitStatus> {
    let target = Target::check(file, WHAT)?;
    let from_name = (!target.is_stdout())
        .then(|| graph_format_of(file))
        .flatten();
    let format = match (format, from_name) {
        (Some(f), Some(n)) if f != n => {
            output::warn(&format!(
                "writing {} as `--graph-format` says, though the file name ends in `.{}`: {}",
                match f {
                    GraphFormat::Svg => "SVG",
                    GraphFormat::Png => "PNG",
                    GraphFormat::Dot => "DOT",
                },
                file.extension().unwrap_or_default().to_string_lossy(),
                target.shown()
            ));
            f
        }
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) if target.is_stdout() => GraphFormat::Svg,
        (None, None) => {
            output::error(&anyhow::anyhow!(
                "`--graph` writes `.svg`, `.png` or `.dot` files: cannot tell the format from the file name `{}`\n\nhint: `lab show RUN --graph run.svg`, or `--graph-format svg|png|dot`",
                target.shown()
            ));
            return Ok(ExitStatus::Usage);
        }
    };
    if format == GraphFormat::Png {
        target.refuse_binary_on_terminal("PNG", WHAT)?;
    }
    let store = super::open_fresh()?;
    let runs = match prefix {
        Some(p) => vec![store.run(p)?],
        None => store.runs(None)?,
    };
    if runs.is_empty() {
        return Err(UserError("the project has no runs to draw yet".into()).into());
    }
    let body = match format {
        GraphFormat::Svg => crate::graph::svg(&runs).into_bytes(),
        GraphFormat::Png => crate::graph::png(&runs)?,
        GraphFormat::Dot => crate::graph::dot(&runs).into_bytes(),
    };
    target.write(&body, WHAT)?;
    if !target.is_stdout() {
        writeln!(
            std::io::stdout().lock(),
            "Wrote the diagram of {} run(s) to {}",
            runs.len(),
            target.shown()
        )?;
    }
    Ok(ExitStatus::Success)
}

fn section(out: &mut String, title: &str, color: bool) {
    let _ = writeln!(out, "\n{}", paint(title, "1", color));
}

/// A line `  NAME  VALUE`, both made safe to print.
fn field(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "  {:<11} {}",
        visible::text(name),
        visible::text(value)
    );
}

const TREE_DEPTH: usize = 4;
const TREE_ENTRIES: usize = 20;

/// A folder's files and folders with their sizes, as a tree (bounded in
/// depth and entries per folder, saying what was left out).
fn tree(out: &mut String, dir: &std::path::Path, indent: &str, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let total = entries.len();
    for (i, entry) in entries.iter().take(TREE_ENTRIES).enumerate() {
        let last = i + 1 == total.min(TREE_ENTRIES) && total <= TREE_ENTRIES;
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let name = visible::text(&entry.file_name().to_string_lossy()).into_owned();
        let path = entry.path();
        // A link is shown as itself, never followed: a link back up the
        // tree would otherwise never end.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let (files, bytes) = folder_size(&path);
            let _ = writeln!(
                out,
                "{indent}{branch}{name}/  ({files} file(s), {})",
                output::bytes(bytes)
            );
            if depth + 1 < TREE_DEPTH {
                tree(out, &path, &format!("{indent}{next}"), depth + 1);
            }
        } else {
            let size = entry.metadata().map_or(0, |m| m.len());
            let _ = writeln!(out, "{indent}{branch}{name}  ({})", output::bytes(size));
        }
    }
    if total > TREE_ENTRIES {
        let _ = writeln!(out, "{indent}└── … {} more", total - TREE_ENTRIES);
    }
}

/// Files and bytes under `dir`, not following links (see [`tree`]).
fn folder_size(dir: &std::path::Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries.filter_map(Result::ok).fold((0, 0), |(f, b), e| {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let (f2, b2) = folder_size(&p);
            (f + f2, b + b2)
        } else {
            (f + 1, b + e.metadata().map_or(0, |m| m.len()))
        }
    })
}

/// The whole report, as text.
pub fn render(
    run: &RunInfo,
    run_dir: &std::path::Path,
    series: &[(String, Vec<f64>)],
    color: bool,
) -> String {
    let mut out = String::new();
    summary(&mut out, run, color);
    provenance(&mut out, run, run_dir);
    features(&mut out, run, color);
    parameters(&mut out, run, color);
    metrics(&mut out, run, series, color);
    tags(&mut out, run, color);
    note(&mut out, run, color);
    artifacts(&mut out, run, run_dir, color);
    models(&mut out, run, color);
    system(&mut out, run, series, color);
    traceback(&mut out, run, color);
    out
}

/// The heading, then what the run is and how it went: experiment, status
/// (with the error), start and end.
fn summary(out: &mut String, run: &RunInfo, color: bool) {
    let _ = writeln!(
        out,
        "{} {}",
        paint("Run", "1", color),
        paint(&run.id.to_string(), "33", color)
    );
    field(out, "name", &run.name());
    field(out, "experiment", &run.experiment);
    if let Some(group) = run.attr_str(attr::GROUP) {
        field(out, "group", group);
    }
    if let Some(parent) = run.attr_str(attr::PARENT) {
        field(out, "parent", parent);
    }
    // The status is painted: only the error's text goes through `visible`.
    let mut status = output::status_cell(run.status, color);
    if let Some(e) = &run.error {
        let _ = write!(status, "  {}", visible::text(&e.kind));
        if !e.message.is_empty() {
            let _ = write!(status, ": {}", visible::text(&e.message));
        }
    }
    let _ = writeln!(out, "  {:<11} {status}", "status");
    field(
        out,
        "started",
        &format!("{} UTC", output::utc(run.start_nanos)),
    );
    if let Some(end) = run.end_nanos {
        field(
            out,
            "ended",
            &format!(
                "{} UTC ({})",
                output::utc(end),
                output::duration(end - run.start_nanos)
            ),
        );
    }
}

/// Where the run came from: its command, user, Python, commit, packages and
/// dataset, then its folder and any damage to its journal.
fn provenance(out: &mut String, run: &RunInfo, run_dir: &std::path::Path) {
    let mut source = run.attr_str(attr::SOURCE).unwrap_or("").to_owned();
    if let Some(Value::List(argv)) = run.attr(attr::ARGV) {
        for a in argv {
            let _ = write!(source, " {a}");
        }
    }
    field(out, "source", &source);
    if let (Some(user), Some(host)) = (run.attr_str(attr::USER), run.attr_str(attr::HOST)) {
        field(out, "user", &format!("{user}@{host}"));
    }
    if let Some(v) = run.attr_str(attr::PYTHON_VERSION) {
        field(out, "python", v);
    }
    if let Some(commit) = run.attr_str(attr::GIT_COMMIT) {
        let dirty = matches!(run.attr(attr::GIT_DIRTY), Some(Value::Bool(true)));
        let branch = run
            .attr_str(attr::GIT_BRANCH)
            .map(|b| format!(" on {b}"))
            .unwrap_or_default();
        field(
            out,
            "git",
            &format!(
                "{commit}{branch}{}",
                if dirty { " (uncommitted changes)" } else { "" }
            ),
        );
    }
    if let Some(Value::List(p)) = run.attr(attr::PACKAGES) {
        field(out, "packages", &format!("{} installed", p.len()));
    }
    if let Some(d) = run.attr(attr::DATASET).filter(|d| **d != Value::Null) {
        field(out, "dataset", &d.to_string());
    }
    field(out, "folder", &run_dir.display().to_string());
    if let Some(d) = &run.damage {
        field(out, "damage", d);
    }
}

/// The feature names, on one line.
fn features(out: &mut String, run: &RunInfo, color: bool) {
    if run.features.is_empty() {
        return;
    }
    section(out, &format!("Features ({})", run.features.len()), color);
    let names: Vec<String> = run.features.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "  {}", visible::text(&names.join(", ")));
}

/// The parameters, as a table of names and values.
fn parameters(out: &mut String, run: &RunInfo, color: bool) {
    if run.params.is_empty() {
        return;
    }
    section(out, "Parameters", color);
    let t = Table {
        header: vec!["  NAME".into(), "VALUE".into()],
        rows: run
            .params
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    // Stored as the object's str(): say so.
                    Value::Repr(s) => format!("{}  (as text)", visible::text(s)),
                    other => visible::text(&other.to_string()).into_owned(),
                };
                vec![format!("  {}", visible::text(k)), text]
            })
            .collect(),
    };
    out.push_str(&t.render(None, 2).0);
}

/// Whether `name` is one of the system metrics Lab records by itself
/// (`sys/cpu_percent`, ...), listed apart from the script's own.
fn is_system(name: &str) -> bool {
    name.starts_with(lab_sdk::sysmetrics::PREFIX)
}

/// The series of each metric, by name (the first of a name wins).
fn series_by_name(series: &[(String, Vec<f64>)]) -> HashMap<&str, &[f64]> {
    let mut by_name: HashMap<&str, &[f64]> = HashMap::with_capacity(series.len());
    for (name, values) in series {
        by_name.entry(name.as_str()).or_insert(values.as_slice());
    }
    by_name
}

/// The metrics the script logged, as a table of their summaries, each with
/// a sparkline of its series.
fn metrics(out: &mut String, run: &RunInfo, series: &[(String, Vec<f64>)], color: bool) {
    let mine: Vec<_> = run.metrics.iter().filter(|m| !is_system(&m.name)).collect();
    if mine.is_empty() {
        return;
    }
    section(out, "Metrics", color);
    let opt = |v: Option<f64>| v.map(output::number).unwrap_or_default();
    let by_name = series_by_name(series);
    let t = Table {
        header: ["  NAME", "LAST", "STEP", "MIN", "MAX", "POINTS", "SERIES"]
            .map(String::from)
            .to_vec(),
        rows: mine
            .iter()
            .map(|m| {
                vec![
                    format!("  {}", visible::text(&m.name)),
                    output::number(m.last),
                    m.last_step.to_string(),
                    opt(m.min),
                    opt(m.max),
                    m.count.to_string(),
                    by_name
                        .get(m.name.as_str())
                        .map(|values| crate::table::sparkline(values, 24))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    };
    out.push_str(&t.render(None, 7).0);
}

/// A system metric's value in the unit its name ends with.
fn system_value(name: &str, v: f64) -> String {
    if !v.is_finite() {
        return output::number(v);
    }
    if name.ends_with("_bytes_per_s") {
        format!("{}/s", output::bytes(v.max(0.0).round() as u64))
    } else if name.ends_with("_bytes") {
        output::bytes(v.max(0.0).round() as u64)
    } else if name.ends_with("_percent") {
        format!("{v:.1} %")
    } else if name.ends_with("_watts") {
        format!("{v:.1} W")
    } else if name.ends_with("_c") {
        format!("{v:.0} °C")
    } else {
        output::number(v)
    }
}

/// Where a system metric goes in the list, whatever the order they were
/// first logged in: the process, the machine, then each GPU by number; in
/// each, the order Lab records them in, then any other name.
fn system_order(name: &str) -> (u32, usize, &str) {
    const MACHINE: [&str; 8] = [
        "cpu_percent",
        "rss_bytes",
        "mem_used_bytes",
        "mem_percent",
        "disk_read_bytes_per_s",
        "disk_write_bytes_per_s",
        "net_recv_bytes_per_s",
        "net_sent_bytes_per_s",
    ];
    const GPU: [&str; 5] = [
        "util_percent",
        "mem_used_bytes",
        "mem_percent",
        "temp_c",
        "power_watts",
    ];
    let rest = &name[lab_sdk::sysmetrics::PREFIX.len()..];
    if let Some((gpu, what)) = rest
        .strip_prefix("gpu")
        .and_then(|r| r.split_once('/'))
        .and_then(|(n, what)| Some((n.parse::<u32>().ok()?, what)))
    {
        let at = GPU.iter().position(|g| *g == what).unwrap_or(GPU.len());
        return (gpu.saturating_add(1), at, what);
    }
    let at = MACHINE
        .iter()
        .position(|m| *m == rest)
        .unwrap_or(MACHINE.len());
    (0, at, rest)
}

/// The system metrics Lab recorded while the run was live (CPU, memory,
/// disk, network, GPUs), in their units, apart from the script's metrics.
fn system(out: &mut String, run: &RunInfo, series: &[(String, Vec<f64>)], color: bool) {
    let mut sys: Vec<_> = run.metrics.iter().filter(|m| is_system(&m.name)).collect();
    if sys.is_empty() {
        return;
    }
    sys.sort_by(|a, b| system_order(&a.name).cmp(&system_order(&b.name)));
    section(out, "System", color);
    let opt = |name: &str, v: Option<f64>| v.map(|v| system_value(name, v)).unwrap_or_default();
    let by_name = series_by_name(series);
    let t = Table {
        header: ["  NAME", "LAST", "MIN", "MAX", "SAMPLES", "SERIES"]
            .map(String::from)
            .to_vec(),
        rows: sys
            .iter()
            .map(|m| {
                vec![
                    format!("  {}", visible::text(&m.name)),
                    system_value(&m.name, m.last),
                    opt(&m.name, m.min),
                    opt(&m.name, m.max),
                    m.count.to_string(),
                    by_name
                        .get(m.name.as_str())
                        .map(|values| crate::table::sparkline(values, 24))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
    };
    out.push_str(&t.render(None, 6).0);
}

/// The tags, a line each.
fn tags(out: &mut String, run: &RunInfo, color: bool) {
    if run.tags.is_empty() {
        return;
    }
    section(out, "Tags", color);
    for (k, v) in &run.tags {
        field(out, k, v);
    }
}

/// The run's note, as written (Markdown), each line made safe to print.
fn note(out: &mut String, run: &RunInfo, color: bool) {
    if run.note().is_empty() {
        return;
    }
    section(out, "Note", color);
    for line in run.note().lines() {
        let _ = writeln!(out, "  {}", visible::text(line));
    }
}

/// Each artifact: where it was copied to, with the tree of a copied folder,
/// or why it was not (yet) copied.
fn artifacts(out: &mut String, run: &RunInfo, run_dir: &std::path::Path, color: bool) {
    if run.artifacts.is_empty() {
        return;
    }
    section(out, "Artifacts", color);
    for a in &run.artifacts {
        let where_ = match (&a.path, a.files, a.bytes) {
            (Some(p), Some(f), Some(b)) => format!("{p} ({f} file(s), {})", output::bytes(b)),
            _ if run.status == lab_types::Status::Running => {
                format!("to be copied at the end from {}", a.source)
            }
            _ => format!(
                "not copied (the source was gone when the run ended): {}",
                a.source
            ),
        };
        field(out, &a.name, &where_);
        if let Some(p) = &a.path {
            let root = run_dir.join(p);
            if root.is_dir() {
                tree(out, &root, "    ", 0);
            }
        }
    }
}

/// Each saved model: its class, format, library, size and the start of its
/// checksum.
fn models(out: &mut String, run: &RunInfo, color: bool) {
    if run.models.is_empty() {
        return;
    }
    section(out, "Models", color);
    for m in &run.models {
        let lib = if m.library_version.is_empty() {
            m.library.clone()
        } else {
            format!("{} {}", m.library, m.library_version)
        };
        field(
            out,
            &m.name,
            &format!(
                "{}  {}  {}  {}  sha256 {}…",
                m.class,
                m.format,
                lib,
                output::bytes(m.size),
                &m.sha256[..m.sha256.len().min(12)]
            ),
        );
    }
}

/// The traceback of a run that failed, if it left one.
fn traceback(out: &mut String, run: &RunInfo, color: bool) {
    if let Some(e) = &run.error
        && !e.traceback.is_empty()
    {
        section(out, "Traceback", color);
        for line in e.traceback.trim_end().lines() {
            let _ = writeln!(out, "  {}", visible::text(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_values_are_shown_in_their_units() {
        assert_eq!(system_value("sys/cpu_percent", 153.26), "153.3 %");
        assert_eq!(system_value("sys/rss_bytes", 61_500_000.0), "61.5 MB");
        assert_eq!(
            system_value("sys/net_recv_bytes_per_s", 1_400_000.4),
            "1.4 MB/s"
        );
        assert_eq!(system_value("sys/gpu0/temp_c", 71.4), "71 °C");
        assert_eq!(system_value("sys/gpu0/power_watts", 215.5), "215.5 W");
        assert_eq!(system_value("sys/made_up", 2.5), "2.5");
        assert_eq!(system_value("sys/rss_bytes", f64::NAN), "nan");
    }

    #[test]
    fn system_metrics_are_listed_in_lab_order() {
        let mut names = vec![
            "sys/gpu10/util_percent",
            "sys/gpu2/power_watts",
            "sys/net_sent_bytes_per_s",
            "sys/gpu2/util_percent",
            "sys/zzz",
            "sys/rss_bytes",
            "sys/cpu_percent",
        ];
        names.sort_by_key(|n| system_order(n));
        assert_eq!(
            names,
            [
                "sys/cpu_percent",
                "sys/rss_bytes",
                "sys/net_sent_bytes_per_s",
                "sys/zzz",
                "sys/gpu2/util_percent",
                "sys/gpu2/power_watts",
                "sys/gpu10/util_percent",
            ]
        );
    }
}
