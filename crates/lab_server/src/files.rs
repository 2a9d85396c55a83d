//! Artifact and model files: listing, safe paths and ranged responses.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::ApiError;

/// One file of a run's artifacts.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct FileEntry {
    /// Its path under the artifacts folder, with `/`.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// The artifact it belongs to (the first part of the path).
    pub artifact: String,
}

/// Every regular file under `root` (which is inside `run_dir`), sorted by
/// path. Symbolic links are listed only when they stay inside `run_dir`.
pub(crate) fn list(root: &Path, run_dir: &Path) -> Vec<FileEntry> {
    let Ok(run_dir) = run_dir.canonicalize() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(target) = path.canonicalize() else {
                continue;
            };
            if !target.starts_with(&run_dir) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&target) else {
                continue;
            };
            if meta.is_dir() {
                // A link to a folder inside the run is listed through its target.
                if entry.file_type().is_ok_and(|t| !t.is_symlink()) {
                    stack.push(path);
                }
            } else if meta.is_file() {
                let Ok(inside) = path.strip_prefix(root) else {
                    continue;
                };
                let parts: Vec<String> = inside
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(FileEntry {
                    artifact: parts.first().cloned().unwrap_or_default(),
                    path: parts.join("/"),
                    size: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The file `requested` (already percent-decoded) under `root`, refusing
/// anything that leaves `jail`: `..`, absolute paths, and symbolic links whose
/// target is outside.
pub(crate) fn resolve(root: &Path, jail: &Path, requested: &str) -> Result<PathBuf, ApiError> {
    let refuse =
        || ApiError::ForbiddenPath(format!("the path `{requested}` leaves the run's folder"));
    if requested.is_empty() {
        return Err(ApiError::BadRequest("the file path is empty".into()));
    }
    if requested.contains('\0') || requested.contains('\\') {
        return Err(refuse());
    }
    let wanted = Path::new(requested);
    if wanted.is_absolute()
        || !wanted
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refuse());
    }
    let Ok(real) = root.join(wanted).canonicalize() else {
        return Err(ApiError::NotFound(format!("no file `{requested}`")));
    };
    let jail = jail
        .canonicalize()
        .map_err(|_| ApiError::NotFound(format!("no file `{requested}`")))?;
    if !real.starts_with(&jail) {
        return Err(refuse());
    }
    if !real.is_file() {
        return Err(ApiError::NotFound(format!("`{requested}` is not a file")));
    }
    Ok(real)
}

/// Types a browser would run as a page: sent as downloads only.
fn active(mime: &str) -> bool {
    mime.starts_with("text/html")
        || mime.starts_with("image/svg")
        || mime.contains("xml")
        || mime.contains("javascript")
        || mime.starts_with("text/xsl")
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    /// No range, or one to ignore: the whole file.
    Whole,
    /// The bytes from the first to the second, inclusive.
    Part(u64, u64),
    /// A well-formed range with no byte of the file in it.
    Unsatisfiable,
}

/// One `bytes=` range of a file of `len` bytes (RFC 9110, section 14). A
/// header that does not parse, names another unit or asks for several ranges
/// is ignored, as the RFC allows: the whole file is sent.
#[must_use]
pub fn parse_range(value: &str, len: u64) -> Ranged {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return Ranged::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // More digits than a u64 holds are past the end of any file.
    let number = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    if first.is_empty() {
        // The last `last` bytes.
        if !digits(last) {
            return Ranged::Whole;
        }
        let n = number(last);
        if n == 0 || len == 0 {
            return Ranged::Unsatisfiable;
        }
        return Ranged::Part(len.saturating_sub(n), len - 1);
    }
    if !digits(first) || !(last.is_empty() || digits(last)) {
        return Ranged::Whole;
    }
    let start = number(first);
    let end = if last.is_empty() {
        u64::MAX
    } else {
        number(last)
    };
    if end < start {
        // Invalid by the RFC's grammar.
        return Ranged::Whole;
    }
    if start >= len {
        return Ranged::Unsatisfiable;
    }
    Ranged::Part(start, end.min(len - 1))
}

/// Streams `path`, honouring one `Range`, with safe headers: `nosniff`, a
/// sandboxing policy, and active content as a download.
pub(crate) async fn send(
    path: &Path,
    headers: &HeaderMap,
    download: bool,
) -> Result<Response, ApiError> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match asked.map_or(Ranged::Whole, |v| parse_range(v, len)) {
        Ranged::Whole => None,
        Ranged::Part(a, b) => Some((a, b)),
        Ranged::Unsatisfiable => {
            let mut refused =
                ApiError::RangeNotSatisfiable(asked.unwrap_or_default().to_owned()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(refused);
        }
    };
    let (status, start, count) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, len),
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await?;
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let h = response.headers_mut();
    dress(h, &name, download);
    if let Some((a, b)) = range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// The safe headers of a run's file named `name` sent to a browser: its
/// type (from the name), `nosniff`, a sandboxing policy, no caching, and
/// active content (or any file, with `download`) as a download.
pub fn dress(h: &mut HeaderMap, name: &str, download: bool) {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let mime = mime.essence_str().to_owned();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if active(&mime) {
        // Shown as plain bytes if opened at all, never rendered in the app's origin.
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    } else {
        let with_charset = if mime.starts_with("text/") {
            format!("{mime}; charset=utf-8")
        } else {
            mime.clone()
        };
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&with_charset)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
    }
    if download || active(&mime) {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use Ranged::{Part, Unsatisfiable, Whole};
        for (value, len, want) in [
            ("bytes=0-9", 100, Part(0, 9)),
            ("bytes=90-", 100, Part(90, 99)),
            ("bytes=-10", 100, Part(90, 99)),
            ("bytes=-500", 100, Part(0, 99)),
            ("bytes=50-500", 100, Part(50, 99)),
            (" Bytes=1-1 ", 100, Part(1, 1)),
            ("bytes=0-99999999999999999999999", 100, Part(0, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=99999999999999999999999-", 100, Unsatisfiable),
            ("bytes=9-3", 100, Whole),
            ("bytes=x-3", 100, Whole),
            ("bytes=abc", 100, Whole),
            ("bytes=", 100, Whole),
            ("bytes=-", 100, Whole),
            ("bytes=1-2-3", 100, Whole),
            ("bytes=0-1,5-6", 100, Whole),
            ("items=0-1", 100, Whole),
            ("", 100, Whole),
        ] {
            assert_eq!(parse_range(value, len), want, "`{value}` of {len} bytes");
        }
    }

    #[test]
    fn paths_that_leave_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let root = run.join("artifacts");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/ok.txt"), "ok").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("a/link.txt")).unwrap();
        assert!(resolve(&root, &run, "a/ok.txt").is_ok());
        for bad in [
            "../../secret.txt",
            "/etc/passwd",
            "a/../../../secret.txt",
            "a/link.txt",
            "a\\..\\x",
        ] {
            assert!(
                matches!(resolve(&root, &run, bad), Err(ApiError::ForbiddenPath(_))),
                "{bad} must be refused"
            );
        }
        let listed: Vec<String> = list(&root, &run).into_iter().map(|f| f.path).collect();
        assert_eq!(
            listed,
            vec!["a/ok.txt"],
            "links out of the run are not listed"
        );
    }
}
