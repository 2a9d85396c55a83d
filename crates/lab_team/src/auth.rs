//! Every route but `/health` and `/session` needs a token (`Authorization:
//! Bearer TOKEN`) or the web page's session cookie (see `sessions`).
//! The token's hash is looked up on each request (revoking takes effect at
//! once, on every replica), and the caller it names goes into the request
//! for the handlers, which check its role and project. Each token may make
//! so many requests a second on each server (a token bucket per token, in
//! memory: replicas count apart); beyond that, 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as J, json};

use crate::AppState;
use crate::error::ApiError;
use crate::sessions;
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
    let found = if let Some(token) = given {
        if token.is_empty() || token.len() > 256 {
            return ApiError::Unauthorized.into_response();
        }
        state
            .blocking(move |s| {
                let mut lease = s.inner.db.take()?;
                tokens::caller(lease.client(), &token)
            })
            .await
    } else if let Some(id) = sessions::session_id(request.headers()) {
        // The page's session: what changes anything needs the CSRF token.
        if sessions::changes_state(request.method()) && !sessions::csrf_ok(request.headers(), &id) {
            return sessions::csrf_refused().into_response();
        }
        state
            .blocking(move |s| {
                let mut lease = s.inner.db.take()?;
                sessions::caller(lease.client(), &id)
            })
            .await
    } else {
        return ApiError::Unauthorized.into_response();
    };
    match found {
        Ok(Some(caller)) => {
            let rate = state.inner.options.rate_per_sec;
            if let Some(wait_secs) = state.inner.limits.take(&caller.name, rate) {
                return ApiError::RateLimited {
                    token: caller.name,
                    retry_after_secs: wait_secs,
                }
                .into_response();
            }
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

/// Each token's bucket of requests on this server: `(requests left, when
/// last filled)`.
#[derive(Default)]
pub(crate) struct Limits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limits {
    /// Takes one request from token `name`'s bucket, which holds up to
    /// `2 × rate` and refills at `rate` a second; when it is empty, the
    /// whole seconds to wait instead. A rate of 0 is no limit.
    pub(crate) fn take(&self, name: &str, rate: u32) -> Option<u64> {
        if rate == 0 {
            return None;
        }
        let rate = f64::from(rate);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > 100_000 {
            // Tokens are few; this bounds memory whatever happens.
            buckets.clear();
        }
        let (left, at) = buckets.entry(name.to_owned()).or_insert((2.0 * rate, now));
        *left = (*left + now.duration_since(*at).as_secs_f64() * rate).min(2.0 * rate);
        *at = now;
        if *left >= 1.0 {
            *left -= 1.0;
            None
        } else {
            Some(((1.0 - *left) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;

    #[test]
    fn a_token_gets_twice_its_rate_in_a_burst_then_waits() {
        let limits = Limits::default();
        for _ in 0..10 {
            assert_eq!(limits.take("a", 5), None);
        }
        assert_eq!(limits.take("a", 5), Some(1));
        // Another token has a bucket of its own; no rate, no limit.
        assert_eq!(limits.take("b", 5), None);
        for _ in 0..100 {
            assert_eq!(limits.take("c", 0), None);
        }
    }
}
