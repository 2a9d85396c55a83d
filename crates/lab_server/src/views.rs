//! The routes of the page's saved views, `/api/v1/views[/{name}]`: each a
//! name and the page's path and query string, kept in the project by
//! [`lab_store::views`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use lab_store::views::{self, View, ViewError};
use serde::Serialize;
use serde_json::Value as J;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Path;

/// A view as the API sends it.
#[derive(Serialize)]
pub(crate) struct ViewBody {
    name: String,
    state: String,
    /// When it was last saved (ISO 8601, UTC).
    updated: String,
}

impl From<View> for ViewBody {
    fn from(v: View) -> Self {
        Self {
            name: v.name,
            state: v.state,
            updated: lab_types::time::iso(v.updated_nanos),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ViewList {
    views: Vec<ViewBody>,
}

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::BadName(_) | ViewError::BadState(_) => ApiError::BadRequest(e.to_string()),
            ViewError::NotFound(_) => ApiError::NotFound(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// Runs `f` on a blocking thread: the views are files.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ViewError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a request's task failed: {e}")))?
        .map_err(ApiError::from)
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<ViewList>, ApiError> {
    let project = state.project().clone();
    let views = blocking(move || views::list(&project)).await?;
    Ok(Json(ViewList {
        views: views.into_iter().map(ViewBody::from).collect(),
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ViewBody>, ApiError> {
    let project = state.project().clone();
    let view = blocking(move || views::get(&project, &name)).await?;
    Ok(Json(view.into()))
}

/// The body of a PUT: `{"state": "/?where=…"}`.
fn state_of(body: &[u8]) -> Result<String, ApiError> {
    let value: J = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not JSON ({e}); expected `{{\"state\": \"/?where=…\"}}`"
        ))
    })?;
    match value.get("state") {
        Some(J::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`state` must be a string (the page's path and query string), got `{}`",
            shorten(&other.to_string())
        ))),
        None => Err(ApiError::BadRequest(
            "the body has no `state`; expected `{\"state\": \"/?where=…\"}`".into(),
        )),
    }
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

pub(crate) async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ViewBody>, ApiError> {
    views::check_name(&name)?;
    let page_state = state_of(&body)?;
    let project = state.project().clone();
    let view =
        blocking(move || views::put(&project, &name, &page_state, lab_types::now_nanos())).await?;
    Ok(Json(view.into()))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let project = state.project().clone();
    blocking(move || views::delete(&project, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
