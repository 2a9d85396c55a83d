//! The one error type of the API, and its JSON shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered as `{"error": {"code", "message"}}` with its status.
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
        /// Which parameter holds it: `where` or `sort`.
        param: &'static str,
        /// Names that could replace the bad part ("did you mean"), best first.
        suggestions: Vec<String>,
    },
    /// Another bad parameter.
    #[error("{0}")]
    BadRequest(String),
    /// A token is required.
    #[error("a token is required: send `Authorization: Bearer TOKEN` or `?token=TOKEN`")]
    Unauthorized,
    /// A `Host` this server does not answer (see `guard`).
    #[error("{0}")]
    BadHost(String),
    /// A state-changing request from another site's page.
    #[error("{0}")]
    CrossOrigin(String),
    /// An artifact path that leaves the run's folder.
    #[error("{0}")]
    ForbiddenPath(String),
    /// No such run, metric, artifact or model.
    #[error("{0}")]
    NotFound(String),
    /// A method the route does not have.
    #[error("this route does not take `{0}`; the `Allow` header lists the methods it takes")]
    MethodNotAllowed(String),
    /// The request conflicts with the run's state.
    #[error("{0}")]
    Conflict(String),
    /// A `Range` outside the file.
    #[error("the range `{0}` is outside the file")]
    RangeNotSatisfiable(String),
    /// The team server `lab ui` shows the copy of does not answer.
    #[error("{0}")]
    BadGateway(String),
    /// Anything else: logged in full, answered generically.
    #[error("{0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    suggestions: &'a [String],
}

impl ApiError {
    /// The status code and the `code` string.
    #[must_use]
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadQuery { .. } => (StatusCode::BAD_REQUEST, "bad_query"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadHost(_) => (StatusCode::MISDIRECTED_REQUEST, "bad_host"),
            ApiError::CrossOrigin(_) => (StatusCode::FORBIDDEN, "cross_origin"),
            ApiError::ForbiddenPath(_) => (StatusCode::FORBIDDEN, "forbidden_path"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::RangeNotSatisfiable(_) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            ApiError::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad_gateway"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let text = if let ApiError::Internal(detail) = &self {
            // The detail stays in the server's log.
            eprintln!("lab ui: internal error: {detail}");
            "internal error; the server's log has the details".to_owned()
        } else {
            self.to_string()
        };
        let (offset, length, param, suggestions) = match &self {
            ApiError::BadQuery {
                offset,
                length,
                param,
                suggestions,
                ..
            } => (
                Some(*offset),
                Some(*length),
                Some(*param),
                suggestions.as_slice(),
            ),
            _ => (None, None, None, &[][..]),
        };
        let body = Body {
            error: Inner {
                code,
                message: &text,
                offset,
                length,
                param,
                suggestions,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
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
            (
                ErrorKind::NotAProject | ErrorKind::Busy | ErrorKind::Storage | ErrorKind::Internal,
                e,
            ) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A query, sort key or column error, pointing at the bad part.
fn bad_query(q: &lab_store::query::QueryError) -> ApiError {
    // The code says it is a query; a sort key or a column says so.
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
        suggestions: q.suggestions.clone(),
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}
