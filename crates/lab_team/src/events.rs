//! Live events of a project, as `lab ui`'s `GET /events` sends them: `run`
//! (a run is new or its status changed, with its summary), `metrics` (new
//! points: the run's id, the metrics' names, how many points) and `removed`.
//!
//! Each stream looks at the index itself about once a second, and reads the
//! runs again only when the project's generation moved (or every few
//! seconds, for runs turning `unreachable` as time passes): whichever server
//! a client's run reaches, every replica's streams see it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use lab_store::wire::RunSummary;
use lab_store::{Detail, Selection};
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::ApiError;
use crate::read::{mark_unreachable, readable};
use crate::tokens::Caller;

/// How often a stream looks.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Every this many looks, the runs are read even if the generation stood.
const READ_EVERY: u32 = 5;

/// What a stream saw the last time it read the runs.
#[derive(Default)]
struct Seen {
    /// Each run's status as shown, and its metrics' point counts.
    runs: HashMap<String, (String, HashMap<String, i64>)>,
    generation: Option<i64>,
    primed: bool,
}

/// Looks at `project`'s runs; returns what changed since `seen`.
fn look(
    s: &AppState,
    project: &str,
    seen: &mut Seen,
    tick: u32,
) -> Result<Vec<(&'static str, J)>, ApiError> {
    mark_unreachable(s, project)?;
    let mut lease = s.inner.indexes.take(project)?;
    let generation = lease.with(|i| i.generation())?;
    if seen.primed && seen.generation == Some(generation) && !tick.is_multiple_of(READ_EVERY) {
        return Ok(Vec::new());
    }
    seen.generation = Some(generation);
    let runs = lease.with(|i| {
        i.select(&Selection {
            detail: Detail::Listing,
            ..Selection::default()
        })
    })?;
    let mut events = Vec::new();
    let mut now = HashMap::with_capacity(runs.len());
    for run in runs {
        let id = run.id.to_string();
        let status = run.status.as_str().to_owned();
        let counts: HashMap<String, i64> = run
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.count))
            .collect();
        let before = seen.runs.get(&id);
        if seen.primed {
            if before.is_none_or(|(s, _)| *s != status) {
                let mut summary = RunSummary::of(run);
                summary.sort();
                let value =
                    serde_json::to_value(summary).map_err(|e| ApiError::Internal(e.to_string()))?;
                events.push(("run", value));
            }
            let mut names = Vec::new();
            let mut points = 0;
            for (name, n) in &counts {
                let was = before.and_then(|(_, c)| c.get(name)).copied().unwrap_or(0);
                if *n > was {
                    names.push(name.clone());
                    points += n - was;
                }
            }
            if !names.is_empty() {
                names.sort();
                events.push((
                    "metrics",
                    json!({"id": id, "names": names, "points": points}),
                ));
            }
        }
        now.insert(id, (status, counts));
    }
    if seen.primed {
        for id in seen.runs.keys().filter(|id| !now.contains_key(*id)) {
            events.push(("removed", json!({ "id": id })));
        }
    }
    seen.runs = now;
    seen.primed = true;
    Ok(events)
}

/// A stream's state between looks.
struct Watch {
    state: AppState,
    project: String,
    seen: Option<Seen>,
    pending: VecDeque<(&'static str, J)>,
    tick: u32,
}

/// `GET /projects/{project}/events`: server-sent events until the client
/// leaves or the server stops.
pub(crate) async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    readable(&state, &caller, &project).await?;
    let stop = state.inner.shutdown.clone();
    let watch = Watch {
        state,
        project,
        seen: Some(Seen::default()),
        pending: VecDeque::new(),
        tick: 0,
    };
    let events = futures_util::stream::unfold((watch, stop), |(mut w, stop)| async move {
        loop {
            if let Some((kind, data)) = w.pending.pop_front() {
                let event = Event::default().event(kind).data(data.to_string());
                return Some((Ok(event), (w, stop)));
            }
            if w.tick > 0 {
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(LOOK_EVERY) => {}
                }
            }
            w.tick = w.tick.wrapping_add(1);
            let (project, tick) = (w.project.clone(), w.tick);
            let mut seen = w.seen.take().unwrap_or_default();
            let looked = w
                .state
                .blocking(move |s| {
                    let events = look(s, &project, &mut seen, tick);
                    Ok((events, seen))
                })
                .await;
            match looked {
                Ok((events, seen)) => {
                    w.seen = Some(seen);
                    match events {
                        Ok(events) => w.pending.extend(events),
                        Err(e) => {
                            eprintln!("lab server: watching project `{}` failed: {e}", w.project);
                        }
                    }
                }
                Err(e) => eprintln!("lab server: watching project `{}` failed: {e}", w.project),
            }
        }
    });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}
