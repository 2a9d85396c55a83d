//! Live events of a project, as `lab ui`'s `GET /events` sends them: `run`
//! (a run is new, its status changed or it was edited, with its summary), `metrics` (new
//! points: the run's id, the metrics' names, how many points), `removed`,
//! and `lagged` (a reader too slow missed events: it reads again).
//!
//! One watcher per project with listeners, per server, looks at the index
//! and sends what changed since its last look to every stream of the
//! project. It looks when told the project changed, by a notification from
//! the database (`listen`: every server's changes, announced on commit), and
//! on a timer besides: every 5 s while the server listens (runs turn
//! `unreachable` as time passes, with nothing committed to announce), every
//! second while its listening connection is down. A look compares the
//! index with what the watcher saw before, so a notification missed (or
//! many coalesced) loses no event: the next look finds every change, and
//! a reconnected listener has every watcher look at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use lab_store::wire::RunSummary;
use lab_store::{Detail, Selection};
use serde_json::{Value as J, json};
use tokio::sync::{Notify, broadcast, watch};

use crate::AppState;
use crate::error::ApiError;
use crate::read::{mark_unreachable, readable};
use crate::tokens::Caller;

/// How often a watcher looks while the server listens to the database.
const LISTENING_EVERY: Duration = Duration::from_secs(5);

/// How often a watcher looks while it does not (its connection is down).
const POLLING_EVERY: Duration = Duration::from_secs(1);

/// The least time between two looks of one watcher: changes coming faster
/// are sent together.
const MIN_GAP: Duration = Duration::from_millis(200);

/// Runs are marked `unreachable` at most this often by one watcher.
const MARK_EVERY: Duration = Duration::from_secs(1);

/// Events kept for a stream that reads slowly, before it is told it lagged.
const BACKLOG: usize = 1024;

/// How long a new stream waits for its watcher's first look.
const PRIMING: Duration = Duration::from_secs(10);

/// One event, as sent to every stream of a project.
#[derive(Clone, Debug)]
struct Ev {
    kind: &'static str,
    data: Arc<str>,
}

/// The watchers of the projects that have listeners on this server.
#[derive(Default)]
pub(crate) struct Hub {
    watchers: Mutex<HashMap<String, Arc<Watcher>>>,
    /// Whether the database's notifications reach this server now.
    listening: AtomicBool,
}

/// A project's watcher, as its streams and the listener see it.
struct Watcher {
    events: broadcast::Sender<Ev>,
    /// Told to look (a permit is kept when it is busy: nothing is missed).
    wake: Notify,
    /// True once it has looked once: what changes from then on is sent.
    primed: watch::Sender<bool>,
}

impl Hub {
    /// Whether notifications reach this server.
    pub(crate) fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Notes whether notifications reach this server, and has every
    /// watcher look at once: after a reconnection, for what changed while
    /// none came; after a loss, to wait on the shorter timer.
    pub(crate) fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::Relaxed);
        self.wake_all();
    }

    /// Tells project `project`'s watcher (if any) to look.
    pub(crate) fn wake(&self, project: &str) {
        if let Some(w) = self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(project)
        {
            w.wake.notify_one();
        }
    }

    /// Tells every watcher to look.
    pub(crate) fn wake_all(&self) {
        for w in self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            w.wake.notify_one();
        }
    }

    /// A receiver of project `project`'s events, and its watcher (`true`
    /// when new: it is to be started).
    fn subscribe(&self, project: &str) -> (Arc<Watcher>, broadcast::Receiver<Ev>, bool) {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = watchers.get(project) {
            return (Arc::clone(w), w.events.subscribe(), false);
        }
        let (events, rx) = broadcast::channel(BACKLOG);
        let w = Arc::new(Watcher {
            events,
            wake: Notify::new(),
            primed: watch::Sender::new(false),
        });
        watchers.insert(project.to_owned(), Arc::clone(&w));
        (w, rx, true)
    }

    /// Removes `w`, project `project`'s watcher, if no stream listens to it
    /// any more; whether it did. Under the same lock as [`Hub::subscribe`]:
    /// a new stream either finds the watcher before it goes or makes another.
    fn retire(&self, project: &str, w: &Arc<Watcher>) -> bool {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if w.events.receiver_count() > 0 {
            return false;
        }
        if watchers.get(project).is_some_and(|x| Arc::ptr_eq(x, w)) {
            watchers.remove(project);
        }
        true
    }
}

/// What a watcher saw the last time it read the runs.
#[derive(Default)]
struct Seen {
    /// Each run's status as shown, how much of its meta journal (its
    /// edits) is folded, and its metrics' point counts.
    runs: HashMap<String, (String, u64, HashMap<String, i64>)>,
    /// The project's generation when the runs were read.
    generation: Option<i64>,
    primed: bool,
}

/// Looks at `project`'s runs (marking the unreachable first with `mark`;
/// reading them even if the generation stood with `anyway`); returns what
/// changed since `seen`. `seen` changes only if the look succeeds.
fn look(
    s: &AppState,
    project: &str,
    seen: &mut Seen,
    mark: bool,
    anyway: bool,
) -> Result<Vec<Ev>, ApiError> {
    if mark {
        mark_unreachable(s, project)?;
    }
    let mut lease = s.inner.indexes.take(project)?;
    let generation = lease.with(|i| i.generation())?;
    if seen.primed && seen.generation == Some(generation) && !anyway {
        return Ok(Vec::new());
    }
    let runs = lease.with(|i| {
        i.select(&Selection {
            detail: Detail::Listing,
            ..Selection::default()
        })
    })?;
    let meta_lens = lease.with(|i| i.meta_lens())?;
    let mut events = Vec::new();
    let mut push = |kind: &'static str, value: J| {
        events.push(Ev {
            kind,
            data: value.to_string().into(),
        });
    };
    let mut now = HashMap::with_capacity(runs.len());
    for run in runs {
        let id = run.id.to_string();
        let status = run.status.as_str().to_owned();
        let counts: HashMap<String, i64> = run
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.count))
            .collect();
        let meta_len = meta_lens.get(&id).copied().unwrap_or(0);
        let before = seen.runs.get(&id);
        if seen.primed {
            // A new status, or an edit (a new name, tags, note): the run's
            // summary is sent again.
            if before.is_none_or(|(s, m, _)| *s != status || *m != meta_len) {
                let mut summary = RunSummary::of(run);
                summary.sort();
                let value =
                    serde_json::to_value(summary).map_err(|e| ApiError::Internal(e.to_string()))?;
                push("run", value);
            }
            let mut names = Vec::new();
            let mut points = 0;
            for (name, n) in &counts {
                let was = before
                    .and_then(|(_, _, c)| c.get(name))
                    .copied()
                    .unwrap_or(0);
                if *n > was {
                    names.push(name.clone());
                    points += n - was;
                }
            }
            if !names.is_empty() {
                names.sort();
                push(
                    "metrics",
                    json!({"id": id, "names": names, "points": points}),
                );
            }
        }
        now.insert(id, (status, meta_len, counts));
    }
    if seen.primed {
        let mut gone: Vec<&String> = seen
            .runs
            .keys()
            .filter(|id| !now.contains_key(*id))
            .collect();
        gone.sort();
        for id in gone {
            push("removed", json!({ "id": id }));
        }
    }
    seen.runs = now;
    seen.generation = Some(generation);
    seen.primed = true;
    Ok(events)
}

/// Project `project`'s watcher: looks, sends what changed, and waits to be
/// told to look again (or for its timer), until no stream listens or the
/// server stops.
async fn run_watcher(state: AppState, project: String, w: Arc<Watcher>) {
    let stop = state.inner.shutdown.clone();
    let mut seen = Some(Seen::default());
    let mut marked: Option<Instant> = None;
    let mut anyway = false;
    let mut failing = false;
    loop {
        let started = Instant::now();
        let mark = marked.is_none_or(|t| t.elapsed() >= MARK_EVERY);
        let mut s = seen.take().unwrap_or_default();
        let p = project.clone();
        let looked = state
            .blocking(move |st| {
                let events = look(st, &p, &mut s, mark, anyway);
                Ok((events, s))
            })
            .await;
        let result = match looked {
            Ok((events, s)) => {
                seen = Some(s);
                events
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(events) => {
                if mark {
                    marked = Some(started);
                }
                if failing {
                    eprintln!("lab server: watching project `{project}` again");
                    failing = false;
                }
                w.primed.send_replace(true);
                for e in events {
                    // No stream listening is not an error: the watcher
                    // retires below.
                    let _ = w.events.send(e);
                }
            }
            Err(e) => {
                if !failing {
                    eprintln!(
                        "lab server: watching project `{project}` failed (trying again every second): {e}"
                    );
                    failing = true;
                }
            }
        }
        let every = if state.inner.hub.listening() && !failing {
            LISTENING_EVERY
        } else {
            POLLING_EVERY
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = w.wake.notified() => anyway = false,
            () = tokio::time::sleep(every) => anyway = true,
        }
        let rest = MIN_GAP.saturating_sub(started.elapsed());
        if !rest.is_zero() {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(rest) => {}
            }
        }
        if state.inner.hub.retire(&project, &w) {
            break;
        }
    }
}

/// `GET /projects/{project}/events`: server-sent events until the client
/// leaves or the server stops.
/// How often a live stream looks again at its token.
const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// Whether token `name` is still valid (not revoked). A database that does
/// not answer keeps the stream: the next look decides.
async fn token_valid(state: &AppState, name: &str) -> bool {
    let name = name.to_owned();
    state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            Ok(lease
                .client()
                .query_opt(
                    "SELECT 1 FROM lab_team.tokens WHERE name = $1 AND revoked_nanos IS NULL",
                    &[&name],
                )?
                .is_some())
        })
        .await
        .unwrap_or(true)
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    readable(&state, &caller, &project).await?;
    let (w, rx, new) = state.inner.hub.subscribe(&project);
    if new {
        tokio::spawn(run_watcher(state.clone(), project.clone(), Arc::clone(&w)));
    }
    // What changes once the watcher has looked is sent: wait for that, so
    // that what a client does after the answer's head is never missed.
    let mut primed = w.primed.subscribe();
    drop(w);
    if !matches!(
        tokio::time::timeout(PRIMING, primed.wait_for(|p| *p)).await,
        Ok(Ok(_))
    ) {
        return Err(ApiError::Unavailable(format!(
            "cannot watch project `{project}` now: the index does not answer"
        )));
    }
    let stop = state.inner.shutdown.clone();
    // A stream is one long request: its token is looked at again now and
    // then, and the stream ends once it is revoked.
    let mut recheck = tokio::time::interval(TOKEN_RECHECK);
    recheck.tick().await;
    let token = caller.name.clone();
    let start = (rx, stop, recheck, state.clone(), token);
    let events = futures_util::stream::unfold(
        start,
        |(mut rx, stop, mut recheck, state, token)| async move {
            let got = loop {
                tokio::select! {
                    () = stop.cancelled() => return None,
                    _ = recheck.tick() => {
                        if !token_valid(&state, &token).await {
                            return None;
                        }
                    }
                    got = rx.recv() => break got,
                }
            };
            let event = match got {
                Ok(e) => Event::default().event(e.kind).data(&*e.data),
                // Too slow a reader: say so, so it reads again what it shows.
                Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                    .event("lagged")
                    .data(json!({ "missed": n }).to_string()),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), (rx, stop, recheck, state, token)))
        },
    );
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}
