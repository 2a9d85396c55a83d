//! The JSON API under `/api/v1` (described in `docs/http-api.md`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab_store::Store;
use lab_store::wire::{RunDetail, RunSummary};
use lab_types::Status;
use serde::Serialize;
use serde_json::{Value as J, json};

use crate::error::ApiError;
use crate::extract::{Params, Path};
use crate::logs::{Lines, LogsQuery};
use crate::params::{self, Columns, SeriesQuery, param};
use crate::series::{self, Series};
use crate::{AppState, events, files};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list_runs))
        .route(
            "/runs/{id}",
            get(get_run).delete(delete_run).patch(edit_run),
        )
        .route("/runs/{id}/metrics/{name}", get(metric))
        .route("/runs/{id}/logs", get(logs))
        .route("/runs/{id}/artifacts", get(artifacts))
        .route("/runs/{id}/artifacts/{*path}", get(artifact_file))
        .route("/runs/{id}/media", get(media))
        .route("/runs/{id}/models/{name}", get(model_file))
        .route("/names", get(names))
        .route("/views", get(crate::views::list))
        .route(
            "/views/{name}",
            get(crate::views::get)
                .put(crate::views::put)
                .delete(crate::views::delete),
        )
        .route("/events", get(events::stream))
        .route("/openapi.json", get(openapi))
        .route("/team-info", get(crate::team::info))
        .route("/team/{*rest}", get(crate::team::proxy))
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed(method.to_string())
        })
}

/// One page of runs.
#[derive(Serialize)]
struct RunList {
    names: J,
    /// The cursor of the page's last run, for `after` (none after the last
    /// page).
    next: Option<String>,
    offset: usize,
    runs: Vec<RunSummary>,
    total: usize,
}

/// Every name runs have, for choosing columns and completing queries.
fn names_of(store: &Store) -> Result<J, ApiError> {
    let c = store.catalog()?;
    let sorted = |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
    let fields: Vec<&str> = lab_store::fields::queryable().map(|f| f.name).collect();
    Ok(json!({
        "fields": fields,
        "params": sorted(&c.params),
        "metrics": sorted(&c.metrics),
        "tags": sorted(&c.tags),
    }))
}

async fn list_runs(
    State(state): State<AppState>,
    Params(params): Params,
) -> Result<Json<RunList>, ApiError> {
    let selection = params::selection(&params).map_err(ApiError::BadRequest)?;
    let offset = selection.offset;
    let columns = Columns::parse(param(&params, "columns"));
    let key = format!(
        "{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
        selection.experiment, selection.statuses, selection.filter, selection.sort
    );
    let cache = state.clone();
    let body = state
        .with_store_at(move |store, epoch| {
            store.refresh()?;
            let stamp = (epoch, store.generation()?);
            // The page alone: a first page of a million runs never lists
            // them all. The count is kept while the index stays the same,
            // so scrolling further pays only for its pages.
            let page = store.page(&selection)?;
            let total = if let Some(total) = cache.cached_total(&key, stamp) {
                total
            } else {
                let total = store.count(&selection)?;
                cache.keep_total(key, stamp, total);
                total
            };
            Ok(RunList {
                names: names_of(store)?,
                next: page.next,
                offset,
                runs: page.runs.into_iter().map(|r| columns.summary(r)).collect(),
                total,
            })
        })
        .await?;
    Ok(Json(body))
}

async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let body = state
        .with_store(move |store| {
            store.refresh()?;
            let mut detail = RunDetail::of(store.run(&id)?);
            detail.sort();
            Ok(detail)
        })
        .await?;
    Ok(Json(body))
}

async fn delete_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.run(&id)?;
            if run.status == Status::Running {
                return Err(ApiError::Conflict(format!(
                    "run `{}` is still running; stop it first",
                    run.short_id
                )));
            }
            store.delete_run(&run)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `PATCH /api/v1/runs/{id}`: any of the fields.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunEdit {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    untag: Vec<String>,
    #[serde(default, deserialize_with = "present")]
    note: Option<String>,
}

/// A field that, when given, holds a value: `null` is refused (an absent
/// field changes nothing; an empty note removes the note).
fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `PATCH /api/v1/runs/{id}`: renames, tags, untags, notes a run in any
/// state; answers with the run as edited, and tells the event stream.
async fn edit_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<RunDetail>, ApiError> {
    let edit: RunEdit = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be a JSON object of `name`, `tags`, `untag` and `note`: {e}"
        ))
    })?;
    let edit = lab_store::Edit {
        name: edit.name,
        tags: edit.tags.into_iter().collect(),
        untag: edit.untag,
        note: edit.note,
        group: None,
    };
    let events = state.inner.events.clone();
    let detail = state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.edit(&id, &edit)?;
            let mut summary = RunSummary::of(run.clone());
            summary.sort();
            let mut detail = RunDetail::of(run);
            detail.sort();
            // At once, for every open page; the watcher's next look sees
            // the same edit and sends the summary again, which a page
            // takes as it takes any `run` event.
            let data =
                serde_json::to_value(summary).map_err(|e| ApiError::Internal(e.to_string()))?;
            let _ = events.send(events::Event { kind: "run", data });
            Ok(detail)
        })
        .await?;
    Ok(Json(detail))
}

async fn metric(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Params(params): Params,
) -> Result<Json<J>, ApiError> {
    let query = SeriesQuery::parse(&params).map_err(ApiError::BadRequest)?;
    let x_axis = query.x_axis();
    let SeriesQuery {
        axis,
        x_metric,
        max_points,
        from,
        to,
    } = query;
    let cache_state = state.clone();
    let whole = x_metric.is_none() && from.is_none() && to.is_none();
    let (read, name) = state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.run(&id)?;
            let cache = &cache_state.inner.series;
            if whole && let Some(view) = streamed(store, cache, &run, &name, axis, max_points)? {
                return Ok((Read::Streamed(view, Box::new(run)), name));
            }
            let series = cached_series(store, cache, &run, &name)?;
            let x_series = match x_metric {
                Some(x) => Some(cached_series(store, cache, &run, &x)?),
                None => None,
            };
            Ok((Read::Whole(series, x_series), name))
        })
        .await?;
    let view = match read {
        Read::Streamed(view, run) => {
            fill_in_background(&state, *run, name.clone());
            view
        }
        Read::Whole(series, x_series) => tokio::task::spawn_blocking(move || match x_series {
            Some(x) => series::downsample(&series.against(&x), axis, from, to, max_points),
            None => series::downsample(&series, axis, from, to, max_points),
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    Ok(Json(view.to_json(&name, &x_axis)))
}

/// How a series request was read.
enum Read {
    /// Downsampled as its points streamed from the run's series file.
    Streamed(series::View, Box<lab_store::RunInfo>),
    /// The whole series (and the x metric's), from the cache or read into it.
    Whole(Arc<Series>, Option<Arc<Series>>),
}

/// The view of the whole of metric `name` when it is not cached and the
/// run has a series file: downsampled as its points are decoded, without
/// building the series' columns (for 10,000,000 points, 240 MB the first
/// request would wait for).
fn streamed(
    store: &Store,
    cache: &series::Cache,
    run: &lab_store::RunInfo,
    name: &str,
    axis: series::XAxis,
    max_points: usize,
) -> Result<Option<series::View>, ApiError> {
    let Some(summary) = run.metric(name) else {
        return Ok(None);
    };
    let len = u64::try_from(summary.count).unwrap_or(0);
    if cache.get(&run.id.to_string(), name, len).is_some() {
        return Ok(None);
    }
    let paths = store.project().run_paths(&run.short_id);
    let Some(count) = lab_store::series::open(&paths)
        .and_then(|file| file.metric(name).map(|m| m.count))
        .and_then(|c| usize::try_from(c).ok())
    else {
        return Ok(None);
    };
    let mut view = series::Streamed::new(count, axis, run.start_nanos, max_points);
    if axis == series::XAxis::Step {
        store.visit_metric_steps(run, name, |step, value| view.push(step, 0, value))?;
    } else {
        store.visit_metric(run, name, |step, nanos, value| {
            view.push(step, nanos, value);
        })?;
    }
    Ok(view.finish())
}

/// Reads metric `name` of `run` into the cache after a streamed answer, so
/// that the requests that follow (a zoom, another axis) find it there.
fn fill_in_background(state: &AppState, run: lab_store::RunInfo, name: String) {
    let id = run.id.to_string();
    if !state.inner.series.start_filling(&id, &name) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let cache_state = state.clone();
        let metric = name.clone();
        // A failure here is met again, and answered, by the next request
        // that needs the series: it reads it itself.
        let filled = state
            .with_store(move |store| {
                cached_series(store, &cache_state.inner.series, &run, &metric).map(drop)
            })
            .await;
        drop(filled);
        state.inner.series.stop_filling(&id, &name);
    });
}

/// Metric `name` of `run`, from the cache when it holds all of it.
fn cached_series(
    store: &Store,
    cache: &series::Cache,
    run: &lab_store::RunInfo,
    name: &str,
) -> Result<Arc<Series>, ApiError> {
    if run.metric(name).is_none() {
        return Err(ApiError::NotFound(format!(
            "run `{}` has no metric `{name}`",
            run.short_id
        )));
    }
    // The index was just refreshed: its point count says whether a
    // kept series is whole (a live journal's file length does not, as
    // its space is reserved ahead).
    let len = run
        .metric(name)
        .map_or(0, |m| u64::try_from(m.count).unwrap_or(0));
    let id = run.id.to_string();
    if let Some(s) = cache.get(&id, name, len) {
        return Ok(s);
    }
    // The count is what the index had; a live run may have logged
    // more since, which the columns grow to hold.
    let mut series = Series::with_capacity(usize::try_from(len).unwrap_or(0));
    store.visit_metric(run, name, |step, nanos, value| {
        series.push(step, nanos, run.start_nanos, value);
    })?;
    let s = Arc::new(series);
    cache.put(&id, name, len, s.clone());
    Ok(s)
}

/// What a run printed from journal offset `after` on, and where to ask
/// from next time: the page follows a running run by asking again.
async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params,
) -> Result<Json<J>, ApiError> {
    let query = LogsQuery::parse(&params).map_err(ApiError::BadRequest)?;
    let body = state
        .with_store(move |store| {
            let run = store.run(&id)?;
            // Only offsets an answer gave are readable: past the end, a read
            // would seek where no file reaches.
            let journal = store.project().run_paths(&run.short_id).journal;
            let len = fs_err::metadata(&journal).map_or(0, |m| m.len());
            if let Some(error) = query.past_the_end(len) {
                return Err(ApiError::BadRequest(error));
            }
            let mut lines = Lines::new(query.only);
            let read = store.read_console(&run.short_id, query.after, |event| lines.push(event))?;
            Ok(lines.to_json(read.next, read.done))
        })
        .await?;
    Ok(Json(body))
}

async fn artifacts(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<J>, ApiError> {
    let body = state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.run(&id)?;
            let paths = store.project().run_paths(&run.short_id);
            Ok(json!({ "files": files::list(&paths.artifacts, &paths.dir) }))
        })
        .await?;
    Ok(Json(body))
}

/// The run's media by key, each key's files by step.
async fn media(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<J>, ApiError> {
    let body = state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.run(&id)?;
            let media: Vec<J> = store
                .media(&run.id)?
                .into_iter()
                .map(|k| {
                    let items: Vec<J> = k
                        .items
                        .into_iter()
                        .map(|i| {
                            json!({
                                "step": i.step,
                                "path": i.path,
                                "width": i.width,
                                "height": i.height,
                                "bytes": i.bytes,
                            })
                        })
                        .collect();
                    json!({ "key": k.key, "kind": k.kind.as_str(), "items": items })
                })
                .collect();
            Ok(json!({ "media": media }))
        })
        .await?;
    Ok(Json(body))
}

/// A file under the run's artifacts, or one of its media files by the path
/// `/media` gives (relative to the run's folder).
async fn artifact_file(
    State(state): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = state
        .with_store(move |store| {
            let run = store.run(&id)?;
            let paths = store.project().run_paths(&run.short_id);
            if path.starts_with("media/") {
                // A run still logging may have written the file since the
                // index last looked.
                store.refresh()?;
                if store.is_media_path(&run.id, &path)? {
                    return files::resolve(&paths.dir, &paths.dir, &path);
                }
            }
            files::resolve(&paths.artifacts, &paths.dir, &path)
        })
        .await?;
    files::send(&file, &headers, false).await
}

async fn model_file(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.run(&id)?;
            let model = run.models.iter().find(|m| m.name == name).ok_or_else(|| {
                ApiError::NotFound(format!("run `{}` has no model `{name}`", run.short_id))
            })?;
            let paths = store.project().run_paths(&run.short_id);
            files::resolve(&paths.dir, &paths.dir, &model.path)
        })
        .await?;
    files::send(&file, &headers, true).await
}

async fn names(State(state): State<AppState>) -> Result<Json<J>, ApiError> {
    let body = state
        .with_store(|store| {
            store.refresh()?;
            let mut names = names_of(store)?;
            let experiments = store.experiments()?;
            if let J::Object(map) = &mut names {
                map.insert("experiments".into(), json!(experiments));
            }
            Ok(names)
        })
        .await?;
    Ok(Json(body))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::COMMITTED,
    )
        .into_response()
}
