//! Every route but `/health` needs a token: `Authorization: Bearer TOKEN`.
//! The token's hash is looked up on each request (revoking takes effect at
//! once, on every replica), and the caller it names goes into the request
//! for the handlers, which check its role and project.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::ApiError;
use crate::tokens::{self, Caller};

/// Refuses requests without a valid token; hands the caller on.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let Some(token) = given.filter(|t| !t.is_empty() && t.len() <= 256) else {
        return ApiError::Unauthorized.into_response();
    };
    let found = state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            tokens::caller(lease.client(), &token)
        })
        .await;
    match found {
        Ok(Some(caller)) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /whoami`: the token's name, role and project.
pub(crate) async fn whoami(axum::Extension(caller): axum::Extension<Caller>) -> Json<J> {
    Json(json!({
        "name": caller.name,
        "role": caller.role.as_str(),
        "project": caller.project,
    }))
}
