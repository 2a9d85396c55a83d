//! The team server's copy of the project, shown by `lab ui` beside the
//! local runs: `GET /api/v1/team/...` is sent on to the team server's
//! `GET /api/v1/projects/{project}/...` with the token `lab login` keeps,
//! and its answer streamed back as it comes (live events included). Only
//! reads go through, and `lab ui`'s own token never leaves this machine.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Path;

/// A team server to show the project's copy of.
#[derive(Clone)]
pub struct TeamSource {
    /// Its base URL, without a trailing slash.
    pub url: String,
    /// The bearer token.
    pub token: String,
    /// The project's name on it.
    pub project: String,
}

impl std::fmt::Debug for TeamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token never goes into a log.
        f.debug_struct("TeamSource")
            .field("url", &self.url)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

/// `GET /team-info`: the team server shown at `/team/`, or 404 without one.
pub(crate) async fn info(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let team = state
        .inner
        .options
        .team
        .as_ref()
        .ok_or_else(not_configured)?;
    Ok(Json(json!({ "url": team.url, "project": team.project })))
}

fn not_configured() -> ApiError {
    ApiError::NotFound(
        "no team server to show\n\nhint: `lab login URL`, then `lab ui` again".into(),
    )
}

/// `%`-escapes `text` for one segment of a URL's path.
fn escape(text: &str) -> String {
    use std::fmt::Write as _;
    text.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// The answer headers passed back.
const PASSED: [header::HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_SECURITY_POLICY,
    header::CACHE_CONTROL,
];

/// `GET /team/{rest}`: the team server's `GET /projects/{project}/{rest}`.
pub(crate) async fn proxy(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let team = state
        .inner
        .options
        .team
        .clone()
        .ok_or_else(not_configured)?;
    // The page's own token (`?token=`) is `lab ui`'s: it stays here.
    let query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("token="))
        .collect();
    // `rest` arrives decoded: each segment is escaped again. A `.` or `..`
    // would lead out of the project's routes on the server: refused.
    if rest.split('/').any(|p| p == "." || p == "..") {
        return Err(ApiError::BadRequest(format!(
            "a path under `/api/v1/team/` may not hold `.` or `..` segments: got `{rest}`"
        )));
    }
    let path: Vec<String> = rest.split('/').map(escape).collect();
    let mut url = format!(
        "{}/api/v1/projects/{}/{}",
        team.url,
        escape(&team.project),
        path.join("/")
    );
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let mut request = state.inner.team_client.get(&url).bearer_auth(&team.token);
    for name in [header::RANGE, header::ACCEPT] {
        if let Some(v) = headers.get(&name) {
            request = request.header(name, v);
        }
    }
    let answer = request.send().await.map_err(|e| {
        ApiError::BadGateway(format!(
            "the team server does not answer ({e}): {}",
            team.url
        ))
    })?;
    if matches!(answer.status().as_u16(), 401 | 403) {
        // Not this page's token: the page must not ask for its own again.
        return Err(ApiError::BadGateway(format!(
            "the team server refused the token `lab login` keeps: {}\n\nhint: `lab login {}` again",
            team.url, team.url
        )));
    }
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HeaderMap::new();
    for name in PASSED {
        if let Some(v) = answer.headers().get(name.as_str())
            && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
        {
            out.insert(name, v);
        }
    }
    let body = Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other));
    Ok((status, out, body).into_response())
}
