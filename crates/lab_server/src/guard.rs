//! Refuses the requests a hostile web page could make a browser send.
//!
//! Any page a browser opens can send requests to `http://127.0.0.1:5050`.
//! Two checks stop it from reading or changing runs:
//!
//! - **DNS rebinding.** A page at `http://evil.example:5050` whose name is
//!   then pointed at 127.0.0.1 is, for the browser, the same origin as the
//!   server, so it may read every answer. Its requests still name
//!   `evil.example` in `Host`: without a token only loopback names and
//!   addresses are answered (`421 bad_host`).
//! - **Cross-site writes.** A page may send a `DELETE` or `POST` it cannot read
//!   the answer of. The browser says where it comes from in `Origin` and
//!   `Sec-Fetch-Site`: a state-changing request from anywhere but the
//!   server's own page is refused (`403 cross_origin`), token or not.
//!
//! With a token, or when the server listens on an address other machines
//! reach (`Options::any_host`), any `Host` is answered: a page without the
//! token reads nothing, and the server cannot know every name it is reached
//! by.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// The middleware: the `Host` check, then the `Origin` check.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let options = &state.inner.options;
    let any_host = options.any_host || options.token.is_some();
    match check(
        request.method(),
        request.version(),
        request
            .uri()
            .authority()
            .map(axum::http::uri::Authority::as_str),
        request.headers(),
        any_host,
    ) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Whether a request may go on.
fn check(
    method: &Method,
    version: Version,
    target_authority: Option<&str>,
    headers: &HeaderMap,
    any_host: bool,
) -> Result<(), ApiError> {
    // A malformed or repeated `Host` is a bad request (RFC 9112, section 3.2).
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(h), None) => match h.to_str() {
            Ok(text) if split(text).is_some() => Some(text),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`Host` must be a host name or address with an optional port: got `{}`",
                    shorten(&String::from_utf8_lossy(h.as_bytes()))
                )));
            }
        },
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "the request has several `Host` headers; it must have one".into(),
            ));
        }
    };
    // A request in absolute form names its host in the target, which wins
    // over `Host` (RFC 9112, section 3.2.2).
    let authority = target_authority.or(host);
    if authority.is_none() && version >= Version::HTTP_11 {
        return Err(ApiError::BadRequest(
            "an HTTP/1.1 request must name the server in a `Host` header".into(),
        ));
    }
    if !any_host {
        // A browser always sends `Host`: a request without one (HTTP/1.0) is
        // not a page's.
        for named in [target_authority, host].into_iter().flatten() {
            if !split(named).is_some_and(|(name, _)| is_loopback(name)) {
                return Err(ApiError::BadHost(format!(
                    "without a token, this server answers only requests for `localhost`, `127.0.0.1` or `[::1]`, not for `{}`",
                    shorten(named)
                )));
            }
        }
    }
    if !method.is_safe() {
        same_origin_only(method, headers, authority)?;
    }
    Ok(())
}

/// Refuses a state-changing request a browser says comes from another page.
fn same_origin_only(
    method: &Method,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Result<(), ApiError> {
    let refuse = |from: &str| {
        ApiError::CrossOrigin(format!(
            "`{method}` from {from} is refused: only this server's own page may change runs"
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        // `same-site` includes another port of the same host: another origin.
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            let site = String::from_utf8_lossy(site.as_bytes()).into_owned();
            return Err(refuse(&format!("a `{}` page", shorten(&site))));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    if authority.is_some_and(|a| same_origin(&origin, a)) {
        Ok(())
    } else {
        Err(refuse(&format!("the page at `{}`", shorten(&origin))))
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the server reached at
/// `authority` (`host[:port]`): the same host, and the same port once an
/// absent one is read as the scheme's default (a server behind an HTTPS
/// proxy that passes `Host` on is reached at port 443).
fn same_origin(origin: &str, authority: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return false;
    };
    match (split(rest), split(authority)) {
        (Some((a, a_port)), Some((b, b_port))) => {
            a.eq_ignore_ascii_case(b) && a_port.unwrap_or(default) == b_port.unwrap_or(default)
        }
        _ => false,
    }
}

/// The host and port of `host[:port]` (an IPv6 address between brackets),
/// or `None` if it is not of that form.
fn split(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        match &authority[end..] {
            "" => (&authority[..end], None),
            rest => (&authority[..end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid = if let Some(inside) = host.strip_prefix('[') {
        let inside = &inside[..inside.len() - 1];
        !inside.is_empty()
            && inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    if !valid {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// Whether `host` names this machine whatever the DNS says: `localhost`
/// (also fully qualified, `localhost.`), an address of 127.0.0.0/8, or
/// `[::1]` (or 127.x.y.z mapped into IPv6). Names that merely start with
/// these (`localhost.evil.example`, `127.0.0.1.nip.io`) are not.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|a| {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// `text` cut to a length fit for a message.
fn shorten(text: &str) -> String {
    const MAX: usize = 100;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_are_loopback() {
        for good in [
            "localhost",
            "LocalHost",
            "localhost.",
            "127.0.0.1",
            "127.1.2.3",
            "127.255.255.255",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[::ffff:127.0.0.1]",
            "[::FFFF:7f00:1]",
        ] {
            assert!(is_loopback(good), "{good}");
        }
        for bad in [
            "localhost.evil.example",
            "evil.localhost",
            "localhost..",
            "127.0.0.1.nip.io",
            "127.0.0.1.",
            "127.1",
            "0177.0.0.1",
            "2130706433",
            "0x7f.0.0.1",
            "128.0.0.1",
            "0.0.0.0",
            "[::]",
            "[::ffff:10.0.0.1]",
            "[::1%25lo]",
            "::1",
            "",
            "evil.example",
        ] {
            assert!(!is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split("localhost"), Some(("localhost", None)));
        assert_eq!(split("localhost:5050"), Some(("localhost", Some(5050))));
        assert_eq!(split("localhost:"), Some(("localhost", None)));
        assert_eq!(split("[::1]:80"), Some(("[::1]", Some(80))));
        assert_eq!(split("[::1]"), Some(("[::1]", None)));
        for bad in [
            "",
            ":80",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]]:80",
            "a:b",
            "a:99999",
            "a:123456",
            "a:80:80",
            "user@localhost",
            "local host",
            "localhost/x",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn origins_match_the_host_they_were_sent_to() {
        for (origin, host) in [
            ("http://127.0.0.1:5050", "127.0.0.1:5050"),
            ("http://LOCALHOST:5050", "localhost:5050"),
            ("http://[::1]:5050", "[::1]:5050"),
            ("http://box", "box:80"),
            ("http://box:80", "box"),
            ("https://lab.example", "lab.example"),
        ] {
            assert!(same_origin(origin, host), "{origin} {host}");
        }
        for (origin, host) in [
            ("null", "127.0.0.1:5050"),
            ("http://127.0.0.1:5051", "127.0.0.1:5050"),
            ("http://localhost:5050", "127.0.0.1:5050"),
            ("http://evil.example", "127.0.0.1:5050"),
            ("https://127.0.0.1:5050", "127.0.0.1"),
            ("file://", "127.0.0.1:5050"),
            ("http://127.0.0.1:5050/x", "127.0.0.1:5050"),
            ("ftp://127.0.0.1:5050", "127.0.0.1:5050"),
        ] {
            assert!(!same_origin(origin, host), "{origin} {host}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn code(result: Result<(), ApiError>) -> &'static str {
        result.map_or_else(|e| e.status().1, |()| "ok")
    }

    #[test]
    fn requests_are_checked_for_their_host_and_origin() {
        let v11 = Version::HTTP_11;
        let get = &Method::GET;
        let delete = &Method::DELETE;
        // Hosts, without a token.
        assert_eq!(
            code(check(
                get,
                v11,
                None,
                &headers(&[("host", "127.0.0.1:5050")]),
                false
            )),
            "ok"
        );
        assert_eq!(
            code(check(
                get,
                v11,
                None,
                &headers(&[("host", "evil.example:5050")]),
                false
            )),
            "bad_host"
        );
        assert_eq!(
            code(check(
                get,
                v11,
                None,
                &headers(&[("host", "localhost.evil.example")]),
                false
            )),
            "bad_host"
        );
        assert_eq!(
            code(check(
                get,
                v11,
                None,
                &headers(&[("host", "localhost"), ("host", "evil.example")]),
                false
            )),
            "bad_request",
            "two Host headers"
        );
        for any in [false, true] {
            for bad in ["local host", "user@localhost", "localhost:80:80", "[::1"] {
                let h = headers(&[("host", bad)]);
                assert_eq!(code(check(get, v11, None, &h, any)), "bad_request", "{bad}");
            }
            let mut h = HeaderMap::new();
            h.insert(
                header::HOST,
                axum::http::HeaderValue::from_bytes(b"local\xffhost").unwrap(),
            );
            assert_eq!(code(check(get, v11, None, &h, any)), "bad_request");
        }
        assert_eq!(
            code(check(
                get,
                v11,
                Some("evil.example"),
                &headers(&[("host", "localhost")]),
                false
            )),
            "bad_host",
            "the target's host counts"
        );
        assert_eq!(
            code(check(get, Version::HTTP_10, None, &headers(&[]), false)),
            "ok"
        );
        assert_eq!(
            code(check(get, v11, None, &headers(&[]), false)),
            "bad_request"
        );
        assert_eq!(
            code(check(get, v11, None, &headers(&[]), true)),
            "bad_request"
        );
        // Any host with a token or on an open address.
        assert_eq!(
            code(check(
                get,
                v11,
                None,
                &headers(&[("host", "evil.example:5050")]),
                true
            )),
            "ok"
        );
        // Origins of writes, whatever the host rule.
        for any in [false, true] {
            let local = ("host", "127.0.0.1:5050");
            assert_eq!(
                code(check(delete, v11, None, &headers(&[local]), any)),
                "ok"
            );
            assert_eq!(
                code(check(
                    delete,
                    v11,
                    None,
                    &headers(&[
                        local,
                        ("origin", "http://127.0.0.1:5050"),
                        ("sec-fetch-site", "same-origin")
                    ]),
                    any
                )),
                "ok"
            );
            for refused in [
                vec![("origin", "http://evil.example")],
                vec![("origin", "null")],
                vec![("origin", "http://localhost:3000")],
                vec![("sec-fetch-site", "cross-site")],
                vec![("sec-fetch-site", "same-site")],
                vec![
                    ("origin", "http://127.0.0.1:5050"),
                    ("sec-fetch-site", "cross-site"),
                ],
            ] {
                let mut pairs = vec![local];
                pairs.extend(refused.iter().copied());
                assert_eq!(
                    code(check(delete, v11, None, &headers(&pairs), any)),
                    "cross_origin",
                    "{refused:?}"
                );
                assert_eq!(
                    code(check(&Method::POST, v11, None, &headers(&pairs), any)),
                    "cross_origin",
                    "{refused:?}"
                );
                assert_eq!(
                    code(check(get, v11, None, &headers(&pairs), any)),
                    "ok",
                    "reads are not writes"
                );
            }
        }
        // An origin with nothing to compare it to.
        assert_eq!(
            code(check(
                delete,
                Version::HTTP_10,
                None,
                &headers(&[("origin", "http://127.0.0.1:5050")]),
                false
            )),
            "cross_origin"
        );
    }
}
