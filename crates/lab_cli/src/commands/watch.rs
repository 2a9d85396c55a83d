//! `lab watch [RUN]`: follow a live run in the terminal.
//!
//! The journal is read incrementally (from where the last read stopped), so a
//! refresh costs what arrived since, however long the run.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use lab_store::{MetricEvent, Selection, Store};
use lab_types::Status;

use crate::ExitStatus;
use crate::args::{WatchArgs, current_dir};
use crate::output::{self, UserError, paint};
use crate::table;
use crate::visible;

/// How many recent values each sparkline shows.
const RECENT: usize = 60;

#[derive(Default)]
struct Series {
    name: String,
    last: f64,
    step: i64,
    count: u64,
    recent: Vec<f64>,
    /// When watching saw the metric first, and how many points it had then:
    /// the rate counts only what arrived while watching.
    first_seen: Option<(Instant, u64)>,
}

/// What has been read of the journal so far.
#[derive(Default)]
struct Follow {
    offset: u64,
    keys: HashMap<u32, usize>,
    series: Vec<Series>,
    ended: Option<Status>,
}

impl Follow {
    fn point(&mut self, key: u32, step: i64, value: f64) {
        let Some(&i) = self.keys.get(&key) else {
            return;
        };
        let s = &mut self.series[i];
        s.last = value;
        s.step = step;
        s.count += 1;
        s.recent.push(value);
        if s.recent.len() > RECENT * 2 {
            s.recent.drain(..RECENT);
        }
    }

    fn read(&mut self, store: &Store, short_id: &str) -> Result<bool> {
        if lab_store::series::moved_after(&store.project().run_paths(short_id), self.offset) {
            // The run ended and its points went to its series file: read
            // them all again from there.
            *self = Follow::default();
        }
        let before: u64 = self.series.iter().map(|s| s.count).sum();
        self.offset = store.read_metric_events(short_id, self.offset, |event| match event {
            MetricEvent::Declared { key, name } => {
                self.keys.insert(key, self.series.len());
                self.series.push(Series {
                    name,
                    ..Series::default()
                });
            }
            MetricEvent::Point { point, .. } => self.point(point.key, point.step, point.value),
            MetricEvent::Ended(status) => self.ended = Some(status),
        })?;
        for s in &mut self.series {
            s.first_seen
                .get_or_insert_with(|| (Instant::now(), s.count));
        }
        Ok(self.series.iter().map(|s| s.count).sum::<u64>() != before)
    }
}

pub fn run(args: &WatchArgs) -> Result<ExitStatus> {
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(UserError(format!(
            "`--interval` must be a positive number of seconds: got {}",
            args.interval
        ))
        .into());
    }
    let mut store = super::open_fresh()?;
    let run = match &args.run {
        Some(prefix) => store.run(prefix)?,
        None => store
            .select(&Selection { statuses: vec![Status::Running], limit: Some(1), ..Selection::default() })?
            .into_iter()
            .next()
            .ok_or_else(|| UserError("no run is running in this project\n\nhint: `lab watch RUN` follows a given run".into()))?,
    };
    let tty = std::io::stdout().is_terminal();
    let color = output::color_stdout();
    let mut follow = Follow::default();
    let mut out = std::io::stdout().lock();
    loop {
        let changed = follow.read(&store, &run.short_id)?;
        // The index says whether a run without an end record is still alive.
        let status = if let Some(s) = follow.ended {
            s
        } else {
            store.refresh()?;
            store.run(&run.id.to_string())?.status
        };
        if tty {
            write!(out, "\x1b[H\x1b[2J")?;
            draw(
                &mut out,
                &run.short_id,
                &run.experiment,
                status,
                &follow,
                color,
            )?;
        } else if changed || status != Status::Running {
            lines(&mut out, &follow)?;
        }
        out.flush()?;
        if status != Status::Running {
            if follow.read(&store, &run.short_id)? && !tty {
                lines(&mut out, &follow)?;
            }
            writeln!(
                out,
                "run {} {}",
                run.short_id,
                output::status_cell(status, color)
            )?;
            return Ok(ExitStatus::Success);
        }
        std::thread::sleep(Duration::from_secs_f64(args.interval));
        // A fresh store each round sees what other processes committed.
        store = Store::discover(&current_dir())?;
    }
}

fn rate(s: &Series) -> String {
    match s.first_seen {
        Some((since, at)) if since.elapsed().as_secs_f64() > 0.5 && s.count > at => {
            format!(
                "{:.1}/s",
                (s.count - at) as f64 / since.elapsed().as_secs_f64()
            )
        }
        _ => String::new(),
    }
}

fn lines(out: &mut impl Write, follow: &Follow) -> std::io::Result<()> {
    let parts: Vec<String> = follow
        .series
        .iter()
        .filter(|s| s.count > 0)
        .map(|s| {
            format!(
                "{} {} (step {})",
                visible::text(&s.name),
                output::number(s.last),
                s.step
            )
        })
        .collect();
    if !parts.is_empty() {
        writeln!(out, "{}", parts.join("  "))?;
    }
    Ok(())
}

fn draw(
    out: &mut impl Write,
    short: &str,
    experiment: &str,
    status: Status,
    f: &Follow,
    color: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} {}  {}  {}",
        paint("Run", "1", color),
        paint(short, "33", color),
        visible::text(experiment),
        output::status_cell(status, color)
    )?;
    writeln!(out)?;
    let t = table::Table {
        header: ["METRIC", "LAST", "STEP", "POINTS", "RATE", "RECENT"]
            .map(String::from)
            .to_vec(),
        rows: f
            .series
            .iter()
            .map(|s| {
                let recent = &s.recent[s.recent.len().saturating_sub(RECENT)..];
                vec![
                    visible::text(&s.name).into_owned(),
                    output::number(s.last),
                    s.step.to_string(),
                    s.count.to_string(),
                    rate(s),
                    table::sparkline(recent, 30),
                ]
            })
            .collect(),
    };
    out.write_all(t.render(table::width(), 2).0.as_bytes())?;
    writeln!(out, "\n(Ctrl-C to stop watching; the run goes on)")
}
