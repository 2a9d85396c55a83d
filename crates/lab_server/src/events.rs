//! Live events: a watcher looks at the project a few times a second and
//! announces new runs, status changes, edits, new points and removed runs to every
//! open `GET /api/v1/events` stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use lab_store::Store;
use lab_store::wire::RunSummary;
use lab_types::Status;
use serde_json::{Value as J, json};
use tokio::sync::broadcast;

use crate::AppState;
use crate::error::ApiError;

/// One thing that changed.
#[derive(Clone, Debug)]
pub struct Event {
    /// `run`, `metrics` or `removed`.
    pub kind: &'static str,
    /// Its JSON data.
    pub data: J,
}

/// What the watcher saw of each run the last time.
#[derive(Default)]
struct Seen {
    /// Each run's status, journal offset and meta journal length.
    runs: HashMap<String, (Status, u64, u64)>,
    counts: HashMap<String, HashMap<String, u64>>,
    primed: bool,
}

/// Looks at the project and returns what changed since `seen`.
fn look(store: &mut Store, seen: &mut Seen) -> Result<Vec<Event>, ApiError> {
    store.refresh()?;
    let states = store.run_states()?;
    let mut events = Vec::new();
    let mut now: HashMap<String, (Status, u64, u64)> = HashMap::with_capacity(states.len());
    for (id, status, offset, meta_len) in states {
        let before = seen.runs.get(&id).copied();
        // A new status, or an edit (a new name, tags, note): the run's
        // summary is sent again.
        let changed = before.is_none_or(|(s, _, m)| s != status || m != meta_len);
        let grew = before.is_some_and(|(_, o, _)| o != offset);
        if seen.primed
            && changed
            && let Ok(run) = store.run(&id)
        {
            let mut summary = RunSummary::of(run);
            summary.sort();
            events.push(Event {
                kind: "run",
                data: serde_json::to_value(summary)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            });
        }
        if grew || (seen.primed && before.is_none()) || status == Status::Running {
            let counts: HashMap<String, u64> = store.metric_counts(&id)?.into_iter().collect();
            let old = seen.counts.get(&id);
            let mut names = Vec::new();
            let mut points = 0;
            for (name, n) in &counts {
                let was = old.and_then(|o| o.get(name)).copied().unwrap_or(0);
                if *n > was {
                    names.push(name.clone());
                    points += n - was;
                }
            }
            if seen.primed && !names.is_empty() {
                names.sort();
                events.push(Event {
                    kind: "metrics",
                    data: json!({"id": id, "names": names, "points": points}),
                });
            }
            seen.counts.insert(id.clone(), counts);
        }
        now.insert(id, (status, offset, meta_len));
    }
    if seen.primed {
        for id in seen.runs.keys().filter(|id| !now.contains_key(*id)) {
            events.push(Event {
                kind: "removed",
                data: json!({ "id": id }),
            });
        }
    }
    seen.counts.retain(|id, _| now.contains_key(id));
    seen.runs = now;
    seen.primed = true;
    Ok(events)
}

/// How many intervals pass between two looks while nobody listens: the
/// watcher keeps looking, less often, so that what it has seen is current
/// when someone connects and the first change after that is announced.
const IDLE_EVERY: u32 = 8;

/// The watcher: runs while the server does.
pub(crate) async fn watch(state: AppState) {
    let mut seen = Some(Seen::default());
    let interval = state.inner.options.poll_interval;
    let mut tick: u32 = 0;
    loop {
        // The first look is at once, so the watcher is primed from the start.
        if tick > 0 {
            tokio::time::sleep(interval).await;
        }
        tick = tick.wrapping_add(1);
        if state.inner.events.receiver_count() == 0 && tick % IDLE_EVERY != 1 {
            continue;
        }
        let mut s = seen.take().unwrap_or_default();
        let result = state
            .with_store(move |store| {
                let events = look(store, &mut s);
                Ok((events, s))
            })
            .await;
        match result {
            Ok((events, s)) => {
                seen = Some(s);
                match events {
                    Ok(events) => {
                        for e in events {
                            let _ = state.inner.events.send(e);
                        }
                    }
                    Err(e) => eprintln!("lab ui: watching the project failed: {e}"),
                }
            }
            Err(e) => eprintln!("lab ui: watching the project failed: {e}"),
        }
    }
}

/// `GET /api/v1/events`: server-sent events until the client leaves or the
/// server stops.
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.inner.events.subscribe();
    let stop = state.inner.shutdown.clone();
    let events = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        let got = tokio::select! {
            () = stop.cancelled() => return None,
            got = rx.recv() => got,
        };
        let event = match got {
            Ok(e) => SseEvent::default().event(e.kind).data(e.data.to_string()),
            // Too slow a reader: say so, so it reloads what it shows.
            Err(broadcast::error::RecvError::Lagged(n)) => SseEvent::default()
                .event("lagged")
                .data(json!({ "missed": n }).to_string()),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, stop)))
    });
    Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
}
