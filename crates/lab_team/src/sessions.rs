//! The web page's sessions. The page asks for a token once and sends it to
//! `POST /session`, which checks it and answers with a cookie holding a
//! random session id: `HttpOnly` (the page's scripts never see it),
//! `SameSite=Strict` (other sites' pages do not send it) and `Secure` when
//! the request came over TLS. The server keeps only the id's SHA-256, with
//! the token it stands for and when it expires; `DELETE /session` (log out)
//! removes it, and revoking the token ends its sessions at once.
//!
//! A request carrying the cookie that changes anything (any method but GET,
//! HEAD and OPTIONS) must also carry the session's CSRF token in header
//! `X-CSRF-Token`: the SHA-256 of `csrf:` and the session id, which the page
//! learns from `POST /session` or `GET /session` (same-origin answers that
//! another site's page cannot read). Programs send `Authorization: Bearer`
//! instead and need neither.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::ApiError;
use crate::tokens::{self, Caller, hex, sha256_hex};

/// The cookie's name.
pub(crate) const COOKIE: &str = "lab_session";
/// The header a session's state-changing requests carry.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of session `id`.
fn csrf_of(id: &str) -> String {
    sha256_hex(format!("csrf:{id}").as_bytes())
}

/// The session id in the request's cookies, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty() && v.len() <= 128)
        .map(|(_, v)| v.to_owned())
}

/// Whether a request of `method` changes anything (and so needs the CSRF
/// token when it comes with the cookie).
pub(crate) fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request's CSRF header is session `id`'s.
pub(crate) fn csrf_ok(headers: &HeaderMap, id: &str) -> bool {
    let expected = csrf_of(id);
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| same(given.as_bytes(), expected.as_bytes()))
}

/// Compares in time that does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller session `id` stands for, if it exists, has not expired and
/// its token is not revoked.
pub(crate) fn caller(client: &mut postgres::Client, id: &str) -> Result<Option<Caller>, ApiError> {
    let row = client.query_opt(
        "SELECT t.name, t.role, t.project FROM lab_team.sessions s
         JOIN lab_team.tokens t ON t.id = s.token_id
         WHERE s.sha256 = $1 AND s.expires_nanos > $2 AND t.revoked_nanos IS NULL",
        &[&sha256_hex(id.as_bytes()), &lab_types::now_nanos()],
    )?;
    Ok(row.and_then(|r| {
        Some(Caller {
            name: r.get(0),
            role: tokens::Role::parse(r.get(1))?,
            project: r.get(2),
        })
    }))
}

/// Whether the request came over TLS: to this server, or to a proxy in
/// front of it that says so in `X-Forwarded-Proto`.
fn over_tls(state: &AppState, headers: &HeaderMap) -> bool {
    state.inner.options.tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value for `id` (an empty id and no age: removes it).
fn cookie(id: &str, max_age_secs: u64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .map_err(|e| ApiError::Internal(format!("a cookie that is not a header value: {e}")))
}

fn who(caller: &Caller, csrf: &str) -> J {
    json!({
        "name": caller.name,
        "role": caller.role.as_str(),
        "project": caller.project,
        "csrf": csrf,
    })
}

/// `POST /session` with `{"token": "..."}`: a new session for a valid
/// token, in a cookie; answers who it is and the session's CSRF token.
pub(crate) async fn login(State(state): State<AppState>, request: Request) -> Response {
    match login_inner(&state, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn login_inner(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let secure = over_tls(state, request.headers());
    let body = axum::body::to_bytes(request.into_body(), 64 << 10)
        .await
        .map_err(|_| {
            ApiError::BadRequest("the body is not a JSON object of at most 64 KiB".into())
        })?;
    let given: J = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not JSON ({e}); expected `{{\"token\": \"...\"}}`"
        ))
    })?;
    let Some(token) = given.get("token").and_then(J::as_str).map(str::trim) else {
        return Err(ApiError::BadRequest(
            "the body has no string `token`; expected `{\"token\": \"...\"}`".into(),
        ));
    };
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::Unauthorized);
    }
    let token = token.to_owned();
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::Internal(format!("no random bytes from the system: {e}")))?;
    let id = hex(&random);
    let ttl = state.inner.options.session_ttl;
    let expires =
        lab_types::now_nanos().saturating_add(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX));
    let hashed = sha256_hex(id.as_bytes());
    let caller = state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            let client = lease.client();
            let Some(caller) = tokens::caller(client, &token)? else {
                return Ok(None);
            };
            client.execute(
                "DELETE FROM lab_team.sessions WHERE expires_nanos <= $1",
                &[&lab_types::now_nanos()],
            )?;
            let n = client.execute(
                "INSERT INTO lab_team.sessions (sha256, token_id, expires_nanos)
                 SELECT $1, id, $3 FROM lab_team.tokens WHERE sha256 = $2 AND revoked_nanos IS NULL",
                &[&hashed, &sha256_hex(token.as_bytes()), &expires],
            )?;
            Ok((n == 1).then_some(caller))
        })
        .await?;
    let Some(caller) = caller else {
        return Err(ApiError::Unauthorized);
    };
    let csrf = csrf_of(&id);
    let mut response = Json(who(&caller, &csrf)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&id, ttl.as_secs(), secure)?);
    Ok(response)
}

/// `GET /session`: who the session cookie stands for and its CSRF token
/// (so a page loaded again need not log in again); 401 without one.
pub(crate) async fn current(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(id) = session_id(&headers) else {
        return ApiError::Unauthorized.into_response();
    };
    let csrf = csrf_of(&id);
    let found = state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            caller(lease.client(), &id)
        })
        .await;
    match found {
        Ok(Some(caller)) => Json(who(&caller, &csrf)).into_response(),
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /session` (with the CSRF token): ends the session and removes
/// the cookie.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let secure = over_tls(&state, &headers);
    let Some(id) = session_id(&headers) else {
        return ApiError::Unauthorized.into_response();
    };
    if !csrf_ok(&headers, &id) {
        return csrf_refused().into_response();
    }
    let hashed = sha256_hex(id.as_bytes());
    let done = state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            lease.client().execute(
                "DELETE FROM lab_team.sessions WHERE sha256 = $1",
                &[&hashed],
            )?;
            Ok(())
        })
        .await;
    if let Err(e) = done {
        return e.into_response();
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    match cookie("", 0, secure) {
        Ok(v) => {
            response.headers_mut().insert(header::SET_COOKIE, v);
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The answer to a session's state-changing request without its CSRF token.
pub(crate) fn csrf_refused() -> ApiError {
    ApiError::Forbidden(
        "a request with the session cookie that changes anything must carry the session's CSRF token in header `X-CSRF-Token`".into(),
    )
}
