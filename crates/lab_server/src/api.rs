//! The JSON API under `/api/v1` (described in `docs/http-api.md`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab_store::wire::{RunDetail, RunSummary};
use lab_store::{Detail, RunInfo, Selection, Store};
use lab_types::Status;
use serde::Serialize;
use serde_json::{Value as J, json};

use crate::error::ApiError;
use crate::extract::{Params, Path};
use crate::series::{self, Series, XAxis};
use crate::{AppState, events, files};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run).delete(delete_run))
        .route("/runs/{id}/metrics/{name}", get(metric))
        .route("/runs/{id}/artifacts", get(artifacts))
        .route("/runs/{id}/artifacts/{*path}", get(artifact_file))
        .route("/runs/{id}/models/{name}", get(model_file))
        .route("/names", get(names))
        .route("/events", get(events::stream))
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed(method.to_string())
        })
}

/// The last value of parameter `name`, if given once or more.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    params: &[(String, String)],
    name: &str,
    default: T,
    range: (T, T),
) -> Result<T, ApiError> {
    let Some(text) = param(params, name) else {
        return Ok(default);
    };
    match text.trim().parse::<T>() {
        Ok(n) if n >= range.0 && n <= range.1 => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "`{name}` must be a whole number from {} to {}: got `{text}`",
            range.0, range.1
        ))),
    }
}

/// Items separated by commas; a comma between backticks (a quoted name such
/// as `` `a, b` ``) belongs to its item.
fn list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Which params and metrics a listing includes.
struct Columns {
    all: bool,
    params: Vec<String>,
    metrics: Vec<String>,
}

impl Columns {
    fn parse(text: Option<&str>) -> Self {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Self {
                all: true,
                params: Vec::new(),
                metrics: Vec::new(),
            };
        };
        let mut c = Self {
            all: false,
            params: Vec::new(),
            metrics: Vec::new(),
        };
        for name in list(text) {
            if let Some(p) = name.strip_prefix("params.") {
                c.params.push(p.to_owned());
            } else if let Some(m) = name.strip_prefix("metrics.") {
                c.metrics.push(m.to_owned());
            } else {
                c.params.push(name.clone());
                c.metrics.push(name);
            }
        }
        c
    }

    fn param(&self, name: &str) -> bool {
        self.all || self.params.iter().any(|p| p == name)
    }

    fn metric(&self, name: &str) -> bool {
        self.all || self.metrics.iter().any(|m| m == name)
    }
}

/// A run as the runs list shows it: the params and metrics `columns` asks
/// for, in name order.
fn summary(run: RunInfo, columns: &Columns) -> RunSummary {
    let mut summary = RunSummary::of(run);
    summary.params.retain(|k| columns.param(k));
    summary.metrics.retain(|k| columns.metric(k));
    summary.sort();
    summary
}

/// One page of runs.
#[derive(Serialize)]
struct RunList {
    names: J,
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
    let limit = number(&params, "limit", 100_usize, (0, 10_000))?;
    let offset = number(&params, "offset", 0_usize, (0, usize::MAX / 2))?;
    let statuses = match param(&params, "status") {
        Some(text) => list(text)
            .iter()
            .map(|s| {
                Status::parse(s).ok_or_else(|| {
                    let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::BadRequest(format!(
                        "`status` must be a list of {}: got `{s}`",
                        names.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let selection = Selection {
        experiment: param(&params, "experiment")
            .map(str::to_owned)
            .filter(|e| !e.is_empty()),
        statuses,
        filter: param(&params, "where").map(str::to_owned),
        sort: param(&params, "sort").map(list).unwrap_or_default(),
        limit: Some(limit),
        offset,
        detail: Detail::Listing,
    };
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
            let ids = if let Some(ids) = cache.cached_ids(&key, stamp) {
                ids
            } else {
                let ids = Arc::new(store.select_ids(&selection)?);
                cache.keep_ids(key, stamp, ids.clone());
                ids
            };
            let total = ids.len();
            let page = lab_store::page_of(&ids, offset, Some(limit));
            let runs = store.load_runs(page, Detail::Listing)?;
            Ok(RunList {
                names: names_of(store)?,
                offset,
                runs: runs.into_iter().map(|r| summary(r, &columns)).collect(),
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

async fn metric(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Params(params): Params,
) -> Result<Json<J>, ApiError> {
    let axis = match param(&params, "x").unwrap_or("step") {
        "step" => XAxis::Step,
        "time" => XAxis::Time,
        other => {
            return Err(ApiError::BadRequest(format!(
                "`x` must be `step` or `time`: got `{other}`"
            )));
        }
    };
    let max_points = number(&params, "max_points", 2000_usize, (2, 100_000))?;
    let bound = |key: &str| -> Result<Option<f64>, ApiError> {
        match param(&params, key) {
            None => Ok(None),
            Some(t) => match t.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(ApiError::BadRequest(format!(
                    "`{key}` must be a finite number: got `{t}`"
                ))),
            },
        }
    };
    let (from, to) = (bound("from")?, bound("to")?);
    let cache_state = state.clone();
    let (series, name) = state
        .with_store(move |store| {
            store.refresh()?;
            let run = store.run(&id)?;
            if run.metric(&name).is_none() {
                return Err(ApiError::NotFound(format!(
                    "run `{}` has no metric `{name}`",
                    run.short_id
                )));
            }
            // The index was just refreshed: its point count says whether a
            // kept series is whole (a live journal's file length does not, as
            // its space is reserved ahead).
            let len = run
                .metric(&name)
                .map_or(0, |m| u64::try_from(m.count).unwrap_or(0));
            let id = run.id.to_string();
            let cache = &cache_state.inner.series;
            if let Some(s) = cache.get(&id, &name, len) {
                return Ok((s, name));
            }
            // The count is what the index had; a live run may have logged
            // more since, which the columns grow to hold.
            let mut series = Series::with_capacity(usize::try_from(len).unwrap_or(0));
            store.visit_metric(&run, &name, |step, nanos, value| {
                series.push(step, nanos, run.start_nanos, value);
            })?;
            let s = Arc::new(series);
            cache.put(&id, &name, len, s.clone());
            Ok((s, name))
        })
        .await?;
    let view = tokio::task::spawn_blocking(move || {
        series::downsample(&series, axis, from, to, max_points)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({
        "name": name,
        "x_axis": if axis == XAxis::Step { "step" } else { "time" },
        "total": view.in_range,
        "downsampled": view.downsampled,
        "x": view.x,
        "y": view.y,
    })))
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

async fn artifact_file(
    State(state): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = state
        .with_store(move |store| {
            let run = store.run(&id)?;
            let paths = store.project().run_paths(&run.short_id);
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

#[cfg(test)]
mod tests {
    use super::list;

    #[test]
    fn lists_keep_quoted_commas() {
        assert_eq!(list("-a, b,,c "), vec!["-a", "b", "c"]);
        assert_eq!(list("-params.`x, y`,z"), vec!["-params.`x, y`", "z"]);
    }
}
