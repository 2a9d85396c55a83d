//! Reading: the projects, and per project the runs API of `lab ui` (the
//! same query parameters and the same wire types, `lab_store::wire`), read
//! from the index in PostgreSQL. A run with no End record whose client has
//! not been heard from within the heartbeat timeout is `unreachable` rather
//! than `running` (its client may be offline and alive): a status kept in
//! the index, marked before each read ([`mark_unreachable`]).

use std::collections::BTreeSet;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use lab_server::logs::{Lines, LogsQuery};
use lab_server::params::{self, Columns, SeriesQuery, param};
use lab_server::series::Series;
use lab_store::MetricEvent;
use lab_store::wire::RunDetail;
use object_store::ObjectStoreExt as _;
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::ApiError;
use crate::ingest::{project_exists, project_name};
use crate::store::Journal;
use crate::tokens::{Caller, Role};

/// `GET /projects`: the projects the token may see, with their run counts.
pub(crate) async fn projects(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<J>, ApiError> {
    caller.may_do(Role::Reader)?;
    let list = state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            let rows = lease.client().query(
                "SELECT p.name, count(r.id) FROM lab.projects p LEFT JOIN lab.runs r ON r.project_id = p.id
                 WHERE $1::text IS NULL OR p.name = $1 GROUP BY p.name ORDER BY p.name",
                &[&caller.project],
            )?;
            Ok(rows
                .iter()
                .map(|r| json!({ "name": r.get::<_, String>(0), "runs": r.get::<_, i64>(1) }))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({ "projects": list })))
}

/// The query string's pairs, decoded as a form is.
fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    params::parse_query(query.unwrap_or_default()).map_err(ApiError::BadRequest)
}

/// Refuses a project the token may not read, or one the server does not
/// hold, alike.
pub(crate) async fn readable(
    state: &AppState,
    caller: &Caller,
    project: &str,
) -> Result<(), ApiError> {
    project_name(project)?;
    caller.may(Role::Reader, project)?;
    let p = project.to_owned();
    if state.blocking(move |s| project_exists(s, &p)).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no project `{project}`")))
    }
}

/// Marks the runs of `project` that are `unreachable`: indexed `running`
/// (no End record) and not heard from within the heartbeat timeout. The
/// status is kept in the index, so that queries (`status = unreachable`)
/// and every replica see it; a heartbeat or a journal stretch makes the run
/// `running` again (`ingest::touch`), an End record what it says, a crash
/// report `crashed`. Called before each read of the runs.
pub(crate) fn mark_unreachable(s: &AppState, project: &str) -> Result<(), ApiError> {
    let timeout = i64::try_from(s.inner.options.heartbeat_timeout.as_nanos()).unwrap_or(i64::MAX);
    let since = lab_types::now_nanos().saturating_sub(timeout);
    let mut lease = s.inner.db.take()?;
    lease.client().execute(
        "WITH gone AS (
             UPDATE lab.runs r SET status = 'unreachable'
             FROM lab.projects p
             WHERE p.name = $1 AND r.project_id = p.id AND r.status = 'running'
             AND NOT EXISTS (
                 SELECT 1 FROM lab_team.heartbeats h
                 WHERE h.project = $1 AND h.run = r.id COLLATE \"C\" AND h.seen_nanos >= $2
             )
             RETURNING 1
         )
         UPDATE lab.projects SET generation = generation + 1
         WHERE name = $1 AND EXISTS (SELECT 1 FROM gone)",
        &[&project, &since],
    )?;
    Ok(())
}

/// Every name the project's runs have, for columns and query completion.
fn names_json(c: &lab_store::query::Catalog) -> J {
    let sorted = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
    let fields: Vec<&str> = lab_store::fields::queryable().map(|f| f.name).collect();
    json!({
        "fields": fields,
        "params": sorted(&c.params),
        "metrics": sorted(&c.metrics),
        "tags": sorted(&c.tags),
    })
}

/// `GET /projects/{project}/runs`: as `lab ui`'s `GET /runs`.
pub(crate) async fn runs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let params = pairs(query.as_deref())?;
    let selection = params::selection(&params).map_err(ApiError::BadRequest)?;
    let offset = selection.offset;
    let columns = Columns::parse(param(&params, "columns"));
    let body = state
        .blocking(move |s| {
            mark_unreachable(s, &project)?;
            let mut lease = s.inner.indexes.take(&project)?;
            let page = lease.with(|i| i.page(&selection))?;
            let total = lease.with(|i| i.count(&selection))?;
            let names = lease.with(|i| i.catalog()).map(|c| names_json(&c))?;
            let runs: Vec<J> = page
                .runs
                .into_iter()
                .map(|run| {
                    let summary = columns.summary(run);
                    serde_json::to_value(&summary).map_err(|e| ApiError::Internal(e.to_string()))
                })
                .collect::<Result<_, ApiError>>()?;
            Ok(json!({
                "names": names,
                "next": page.next,
                "offset": offset,
                "runs": runs,
                "total": total,
            }))
        })
        .await?;
    Ok(Json(body))
}

/// `GET /projects/{project}/runs/{id}`: as `lab ui`'s `GET /runs/{id}`.
pub(crate) async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let body = state
        .blocking(move |s| {
            mark_unreachable(s, &project)?;
            let mut lease = s.inner.indexes.take(&project)?;
            let run = lease.with(|i| i.run(&id))?;
            let mut detail = RunDetail::of(run);
            detail.sort();
            serde_json::to_value(&detail).map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
    Ok(Json(body))
}

/// `GET /projects/{project}/names`: as `lab ui`'s `GET /names`.
pub(crate) async fn names(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let body = state
        .blocking(move |s| {
            let mut lease = s.inner.indexes.take(&project)?;
            let mut names = lease.with(|i| i.catalog()).map(|c| names_json(&c))?;
            let mut db = s.inner.db.take()?;
            let experiments: Vec<String> = db
                .client()
                .query(
                    "SELECT DISTINCT r.experiment FROM lab.runs r JOIN lab.projects p ON p.id = r.project_id
                     WHERE p.name = $1 ORDER BY 1",
                    &[&project],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if let J::Object(map) = &mut names {
                map.insert("experiments".into(), json!(experiments));
            }
            Ok(names)
        })
        .await?;
    Ok(Json(body))
}

/// `GET /projects/{project}/runs/{id}/metrics/{name}`: as `lab ui`'s
/// `GET /runs/{id}/metrics/{name}`, the points read from the journal in the
/// object store, one stretch at a time, and downsampled alike.
pub(crate) async fn metric(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let params = pairs(query.as_deref())?;
    let query = SeriesQuery::parse(&params).map_err(ApiError::BadRequest)?;
    let x_axis = query.x_axis();
    let SeriesQuery {
        axis,
        x_metric,
        max_points,
        from,
        to,
    } = query;
    let p = project.clone();
    let n = name.clone();
    let xn = x_metric.clone();
    let (run, length) = state
        .blocking(move |s| {
            let mut lease = s.inner.indexes.take(&p)?;
            let run = lease.with(|i| i.run(&id))?;
            for n in std::iter::once(&n).chain(xn.as_ref()) {
                if run.metric(n).is_none() {
                    return Err(ApiError::NotFound(format!(
                        "run `{}` has no metric `{n}`",
                        run.short_id
                    )));
                }
            }
            let length = lease
                .with(|i| lab_store::index::FoldIndex::indexed_id(i, &run.id.to_string()))?
                .map_or(0, |i| i.offset);
            Ok((run, length))
        })
        .await?;
    let bucket = &state.inner.bucket;
    let run_id = run.id.to_string();
    let mut series = Series::new();
    let mut x_series = Series::new();
    let mut key = None;
    let mut x_key = None;
    for (start, size) in bucket
        .stretches(Journal::Run, &project, &run_id, length)
        .await?
    {
        let bytes = bucket
            .store
            .get_range(
                &bucket.stretch(Journal::Run, &project, &run_id, start),
                0..size,
            )
            .await?;
        lab_store::index::received_metric_events(start, &bytes, |event| match event {
            MetricEvent::Declared { key: k, name: n } => {
                if n == name {
                    key = Some(k);
                }
                if x_metric.as_deref() == Some(n.as_str()) {
                    x_key = Some(k);
                }
            }
            MetricEvent::Point { time_nanos, point } => {
                if Some(point.key) == key {
                    series.push(point.step, time_nanos, run.start_nanos, point.value);
                }
                if Some(point.key) == x_key {
                    x_series.push(point.step, time_nanos, run.start_nanos, point.value);
                }
            }
            MetricEvent::Ended(_) => {}
        })?;
    }
    let view = tokio::task::spawn_blocking(move || {
        if x_key.is_some() {
            let paired = series.against(&x_series);
            lab_server::series::downsample(&paired, axis, from, to, max_points)
        } else {
            lab_server::series::downsample(&series, axis, from, to, max_points)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(view.to_json(&name, &x_axis)))
}

/// `GET /projects/{project}/runs/{id}/logs`: as `lab ui`'s
/// `GET /runs/{id}/logs`, what the run printed from journal offset `after`
/// on, read from the journal in the object store, one stretch at a time.
/// More can come while the run is running or out of reach.
pub(crate) async fn logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let params = pairs(query.as_deref())?;
    let query = LogsQuery::parse(&params).map_err(ApiError::BadRequest)?;
    let p = project.clone();
    let (run, length) = state
        .blocking(move |s| {
            let mut lease = s.inner.indexes.take(&p)?;
            let run = lease.with(|i| i.run(&id))?;
            let length = lease
                .with(|i| lab_store::index::FoldIndex::indexed_id(i, &run.id.to_string()))?
                .map_or(0, |i| i.offset);
            Ok((run, length))
        })
        .await?;
    if let Some(error) = query.past_the_end(length) {
        return Err(ApiError::BadRequest(error));
    }
    let bucket = &state.inner.bucket;
    let run_id = run.id.to_string();
    let mut lines = Lines::new(query.only);
    for (start, size) in bucket
        .stretches(Journal::Run, &project, &run_id, length)
        .await?
    {
        if start + size <= query.after {
            continue;
        }
        let skip = query.after.saturating_sub(start);
        let bytes = bucket
            .store
            .get_range(
                &bucket.stretch(Journal::Run, &project, &run_id, start),
                skip..size,
            )
            .await?;
        lab_store::index::received_console_events(start + skip, &bytes, |event| {
            lines.push(event);
        })?;
    }
    let done = !matches!(
        run.status,
        lab_types::Status::Running | lab_types::Status::Unreachable
    );
    Ok(Json(lines.to_json(length, done)))
}
