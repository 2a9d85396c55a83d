//! `lab show RUN`: everything recorded about one run.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use lab_store::RunInfo;
use lab_types::Value;

use crate::ExitStatus;
use crate::args::ShowArgs;
use crate::output::{self, paint};
use crate::table::Table;

pub fn run(args: &ShowArgs) -> Result<ExitStatus> {
    let store = super::open_fresh()?;
    let Some(prefix) = args.run.as_deref() else {
        anyhow::bail!("`lab show` needs a run, or `--graph FILE` to draw every run");
    };
    let run = store.run(prefix)?;
    let run_dir = store.project().run_paths(&run.short_id).dir;
    let text = render(&run, &run_dir, output::color_stdout());
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

fn section(out: &mut String, title: &str, color: bool) {
    let _ = writeln!(out, "\n{}", paint(title, "1", color));
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "  {name:<11} {value}");
}

/// The whole report, as text.
pub fn render(run: &RunInfo, run_dir: &std::path::Path, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        paint("Run", "1", color),
        paint(&run.id.to_string(), "33", color)
    );
    field(&mut out, "experiment", &run.experiment);
    let mut status = super::ls::status_cell(run.status, color);
    if let Some(e) = &run.error {
        let _ = write!(status, "  {}", e.kind);
        if !e.message.is_empty() {
            let _ = write!(status, ": {}", e.message);
        }
    }
    field(&mut out, "status", &status);
    field(
        &mut out,
        "started",
        &format!("{} UTC", output::utc(run.start_nanos)),
    );
    if let Some(end) = run.end_nanos {
        field(
            &mut out,
            "ended",
            &format!(
                "{} UTC ({})",
                output::utc(end),
                output::duration(end - run.start_nanos)
            ),
        );
    }
    let mut source = run.attr_str("source").unwrap_or("").to_owned();
    if let Some(Value::List(argv)) = run.attr("argv") {
        for a in argv {
            let _ = write!(source, " {a}");
        }
    }
    field(&mut out, "source", &source);
    if let (Some(user), Some(host)) = (run.attr_str("user"), run.attr_str("host")) {
        field(&mut out, "user", &format!("{user}@{host}"));
    }
    if let Some(v) = run.attr_str("python_version") {
        field(&mut out, "python", v);
    }
    if let Some(commit) = run.attr_str("git_commit") {
        let dirty = matches!(run.attr("git_dirty"), Some(Value::Bool(true)));
        let branch = run
            .attr_str("git_branch")
            .map(|b| format!(" on {b}"))
            .unwrap_or_default();
        field(
            &mut out,
            "git",
            &format!(
                "{commit}{branch}{}",
                if dirty { " (uncommitted changes)" } else { "" }
            ),
        );
    }
    if let Some(Value::List(p)) = run.attr("packages") {
        field(&mut out, "packages", &format!("{} installed", p.len()));
    }
    if let Some(d) = run.attr("dataset").filter(|d| **d != Value::Null) {
        field(&mut out, "dataset", &d.to_string());
    }
    field(&mut out, "folder", &run_dir.display().to_string());
    if let Some(d) = &run.damage {
        field(&mut out, "damage", d);
    }

    if !run.features.is_empty() {
        section(
            &mut out,
            &format!("Features ({})", run.features.len()),
            color,
        );
        let names: Vec<String> = run.features.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  {}", names.join(", "));
    }
    if !run.params.is_empty() {
        section(&mut out, "Parameters", color);
        let t = Table {
            header: vec!["  NAME".into(), "VALUE".into()],
            rows: run
                .params
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        // Stored as the object's str(): say so.
                        Value::Repr(s) => format!("{s}  (as text)"),
                        other => other.to_string(),
                    };
                    vec![format!("  {k}"), text]
                })
                .collect(),
        };
        out.push_str(&t.render(None, 2).0);
    }
    if !run.metrics.is_empty() {
        section(&mut out, "Metrics", color);
        let opt = |v: Option<f64>| v.map(output::number).unwrap_or_default();
        let t = Table {
            header: ["  NAME", "LAST", "STEP", "MIN", "MAX", "POINTS"]
                .map(String::from)
                .to_vec(),
            rows: run
                .metrics
                .iter()
                .map(|m| {
                    vec![
                        format!("  {}", m.name),
                        output::number(m.last),
                        m.last_step.to_string(),
                        opt(m.min),
                        opt(m.max),
                        m.count.to_string(),
                    ]
                })
                .collect(),
        };
        out.push_str(&t.render(None, 6).0);
    }
    if !run.tags.is_empty() {
        section(&mut out, "Tags", color);
        for (k, v) in &run.tags {
            field(&mut out, k, v);
        }
    }
    if !run.artifacts.is_empty() {
        section(&mut out, "Artifacts", color);
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
            field(&mut out, &a.name, &where_);
        }
    }
    if !run.models.is_empty() {
        section(&mut out, "Models", color);
        for m in &run.models {
            let lib = if m.library_version.is_empty() {
                m.library.clone()
            } else {
                format!("{} {}", m.library, m.library_version)
            };
            field(
                &mut out,
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
    if let Some(e) = &run.error
        && !e.traceback.is_empty()
    {
        section(&mut out, "Traceback", color);
        for line in e.traceback.trim_end().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}
