//! Extractors for the path and the query string that refuse what they cannot
//! read with the API's own JSON error (axum's answer plain text), and read
//! only UTF-8 text: a percent-encoded byte sequence that is not UTF-8 is
//! refused rather than replaced.

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The route's path parameters, as [`axum::extract::Path`] reads them.
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::BadRequest(match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => format!(
                        "`{key}` in the path `{}` is not UTF-8 text once percent-decoded",
                        parts.uri.path()
                    ),
                    _ => format!("the path `{}` does not fit: {}", parts.uri.path(), e.kind()),
                }))
            }
            // A route without the parameters its handler reads: a bug here.
            Err(e) => Err(ApiError::Internal(e.body_text())),
        }
    }
}

/// The query string's `name=value` pairs in order, decoded as a form is
/// (`+` is a space).
pub(crate) struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Params)
    }
}

/// The pairs of `query`, refusing a name or value that is not UTF-8.
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    crate::params::parse_query(query).map_err(ApiError::BadRequest)
}
