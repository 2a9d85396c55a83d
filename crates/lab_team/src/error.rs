//! The one error type of the team server's API, answered in `lab ui`'s JSON
//! shape, `{"error": {"code", "message"}}`, with the fields the protocol
//! adds beside it (`length` for journal refusals, `missing` for blobs).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as J, json};

/// An error answered as JSON with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A `where` or `sort` that does not parse or resolve.
    #[error("{message}")]
    BadQuery {
        /// What is wrong.
        message: String,
        /// Where the bad part starts, in characters.
        offset: usize,
        /// How long it is, in characters.
        length: usize,
        /// Which parameter holds it.
        param: &'static str,
    },
    /// Another bad parameter or body.
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one that is unknown or revoked.
    #[error("a valid token is required: send `Authorization: Bearer TOKEN`")]
    Unauthorized,
    /// A token whose role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such project (or not one the token may see), run or blob.
    #[error("{0}")]
    NotFound(String),
    /// A method the route does not have.
    #[error("this route does not take `{0}`")]
    MethodNotAllowed(String),
    /// Journal bytes from past the end of what the server holds.
    #[error("the server holds {length} bytes of this journal; send from offset {length}")]
    Gap {
        /// What the server holds.
        length: u64,
    },
    /// Journal bytes that differ from those the server holds at their offset.
    #[error("{message}")]
    JournalConflict {
        /// What differs.
        message: String,
        /// What the server holds.
        length: u64,
    },
    /// Journal bytes that are not good frames.
    #[error("{message}")]
    BadFrame {
        /// What is wrong, and where.
        message: String,
        /// What the server holds.
        length: u64,
    },
    /// A run's edits (its meta journal) sent before its journal's Start
    /// record: the client sends the journal first.
    #[error("{0}")]
    NoRun(String),
    /// The request conflicts with what the server holds.
    #[error("{0}")]
    Conflict(String),
    /// Files whose blobs are not uploaded yet.
    #[error("{} of the files' blobs are not on the server yet; upload them first", .0.len())]
    MissingBlobs(Vec<String>),
    /// An upload whose bytes do not have the hash it was named by.
    #[error("{0}")]
    HashMismatch(String),
    /// A body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// A `Range` outside the blob.
    #[error("the range `{0}` is outside the blob")]
    RangeNotSatisfiable(String),
    /// A token over its rate: try again after the seconds given.
    #[error("token `{token}` has made too many requests; try again in {retry_after_secs} s")]
    RateLimited {
        /// The token's name.
        token: String,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// The database or the object store cannot be reached: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged in full, answered generically.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The status code and the `code` string.
    #[must_use]
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadQuery { .. } => (StatusCode::BAD_REQUEST, "bad_query"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Gap { .. } => (StatusCode::CONFLICT, "gap"),
            ApiError::JournalConflict { .. } | ApiError::Conflict(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::BadFrame { .. } => (StatusCode::BAD_REQUEST, "bad_frame"),
            ApiError::NoRun(_) => (StatusCode::CONFLICT, "no_run"),
            ApiError::MissingBlobs(_) => (StatusCode::CONFLICT, "missing_blobs"),
            ApiError::HashMismatch(_) => (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::RangeNotSatisfiable(_) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// Logs that the database or the object store cannot be reached: the first
/// time, then at most every 10 s with how many requests were refused since,
/// so that an outage under many clients is a few lines, not one per request.
fn log_unavailable(detail: &str) {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &mut *last {
        Some((at, quiet)) if at.elapsed() < Duration::from_secs(10) => *quiet += 1,
        Some((at, quiet)) => {
            eprintln!(
                "lab server: unavailable: {detail} (and {quiet} more request(s) refused in the last {} s)",
                at.elapsed().as_secs()
            );
            *at = Instant::now();
            *quiet = 0;
        }
        None => {
            eprintln!("lab server: unavailable: {detail}");
            *last = Some((Instant::now(), 0));
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let message = match &self {
            // The detail stays in the server's log.
            ApiError::Internal(detail) => {
                eprintln!("lab server: internal error: {detail}");
                "internal error; the server's log has the details".to_owned()
            }
            ApiError::Unavailable(detail) => {
                log_unavailable(detail);
                "the server cannot reach its database or object store; try again later".to_owned()
            }
            other => other.to_string(),
        };
        let mut error = Map::new();
        error.insert("code".into(), json!(code));
        error.insert("message".into(), json!(message));
        let mut body = Map::new();
        match &self {
            ApiError::BadQuery {
                offset,
                length,
                param,
                ..
            } => {
                error.insert("offset".into(), json!(offset));
                error.insert("length".into(), json!(length));
                error.insert("param".into(), json!(param));
            }
            ApiError::Gap { length }
            | ApiError::JournalConflict { length, .. }
            | ApiError::BadFrame { length, .. } => {
                body.insert("length".into(), json!(length));
            }
            ApiError::NoRun(_) => {
                body.insert("length".into(), json!(0));
            }
            ApiError::MissingBlobs(missing) => {
                body.insert("missing".into(), json!(missing));
            }
            _ => {}
        }
        body.insert("error".into(), J::Object(error));
        let mut response = (status, Json(J::Object(body))).into_response();
        match self {
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::RateLimited {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

impl From<lab_store::Error> for ApiError {
    fn from(e: lab_store::Error) -> Self {
        use lab_store::ErrorKind;
        match (e.kind(), e) {
            (ErrorKind::InvalidInput, lab_store::Error::Query(q)) => bad_query(&q),
            (ErrorKind::NotFound(_), e) => ApiError::NotFound(e.to_string()),
            (ErrorKind::InvalidInput | ErrorKind::Ambiguous, e) => {
                ApiError::BadRequest(e.to_string())
            }
            (ErrorKind::Busy | ErrorKind::Storage, e) => ApiError::Unavailable(e.to_string()),
            (ErrorKind::NotAProject | ErrorKind::Internal, e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<postgres::Error> for ApiError {
    fn from(e: postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return ApiError::Unavailable(format!("PostgreSQL: {e}"));
        };
        let code = db.code().code();
        let message = format!("PostgreSQL: {} (SQLSTATE {code})", db.message());
        match &code[..2] {
            // The database going away or unable to go on now (its
            // shutdown ends every session with 57P01), out of resources,
            // or a transaction to try again: the client comes back later.
            "08" | "40" | "53" | "57" | "58" => ApiError::Unavailable(message),
            _ => ApiError::Internal(message),
        }
    }
}

impl From<object_store::Error> for ApiError {
    fn from(e: object_store::Error) -> Self {
        ApiError::Unavailable(format!("object store: {e}"))
    }
}

/// A query, sort key or column error, pointing at the bad part.
fn bad_query(q: &lab_store::query::QueryError) -> ApiError {
    let mut message = match q.input {
        lab_store::query::Input::Filter => q.message.clone(),
        other => format!("bad {}: {}", other.noun(), q.message),
    };
    for hint in q.hints() {
        message = format!("{message}; {hint}");
    }
    ApiError::BadQuery {
        message,
        offset: q.column(),
        length: q.width(),
        param: match q.input {
            lab_store::query::Input::SortKey => "sort",
            lab_store::query::Input::Column => "columns",
            lab_store::query::Input::Filter => "where",
        },
    }
}
