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
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the query parameter name `{raw_name}` is not UTF-8 text once percent-decoded"
            ))
        })?;
        let value = decode(raw_value).ok_or_else(|| {
            // The name is UTF-8 here; shown in its decoded form, as documented.
            ApiError::BadRequest(format!(
                "`{name}` is not UTF-8 text once percent-decoded: got `{raw_value}`"
            ))
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `text` with `+` as a space and `%XX` as the byte XX (a `%` not followed
/// by two hex digits stays as it is), if the bytes are UTF-8.
fn decode(text: &str) -> Option<String> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_forms_do_but_only_to_utf8() {
        let pairs = parse_query("a=1&&b=x+y%2B%C3%A9&c&d=%&e=%4&=v").unwrap();
        let want = [
            ("a", "1"),
            ("b", "x y+é"),
            ("c", ""),
            ("d", "%"),
            ("e", "%4"),
            ("", "v"),
        ];
        assert_eq!(
            pairs,
            want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        for bad in ["a=%FF", "a=%C3%28", "%FF=1", "a=1&b=%ED%A0%80"] {
            assert!(
                matches!(parse_query(bad), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
