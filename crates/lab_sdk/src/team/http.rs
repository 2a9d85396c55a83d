//! The team server's API as the client uses it (see `docs/team.md` and the
//! protocol it follows): one blocking HTTP client with timeouts, each call a
//! method that turns the answer into a typed result or an [`Error`].

use std::fmt::Write as _;
use std::io::Read as _;
use std::time::Duration;

use serde::Deserialize;
use ureq::http;

use super::{Error, ServerConfig};

/// The most journal bytes one request carries.
pub const MAX_JOURNAL_REQUEST: usize = 8 << 20;
/// The most one request carries when a single frame is larger than
/// [`MAX_JOURNAL_REQUEST`]: that frame goes alone (the journal's header, a
/// frame's header and 64 MiB of record; the server's limit).
pub const MAX_FRAME_REQUEST: usize = (64 << 20) + 64;
/// The longest answer body read: a listing of runs, an error.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// Who a token belongs to, as `GET /api/v1/whoami` says.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct WhoAmI {
    /// The token's name.
    pub name: String,
    /// `reader`, `writer` or `admin`.
    pub role: String,
    /// The one project the token is for, or `None` for all.
    #[serde(default)]
    pub project: Option<String>,
}

/// What the server made of journal bytes (of a run's journal or of its meta
/// journal) sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalAnswer {
    /// Stored: the server's copy is now this long.
    Stored(u64),
    /// The bytes started past the server's end: send from this length.
    Gap(u64),
    /// The bytes differ from what the server holds at their offset.
    Conflict(u64),
    /// A frame was refused (a bad CRC, an undecodable record), with the
    /// server's message; nothing was stored.
    BadFrame(u64, String),
    /// Meta journal bytes for a run whose journal's start the server does
    /// not hold yet: the journal goes first.
    NoRun,
}

/// What `POST .../uploads` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadStart {
    /// The server has the blob already.
    Present,
    /// An upload to send parts to, and their size.
    Started {
        /// The upload's id.
        upload: String,
        /// Every part but the last has this size.
        part_size: u64,
    },
}

/// A client of one server.
pub struct Client {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// An answer: status, body, `Retry-After`.
struct Answer {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl Client {
    /// A client of the server `config` names.
    #[must_use]
    pub fn new(config: &ServerConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_mins(2)))
            .max_redirects(0)
            .user_agent(concat!("lab/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            base: config.url.clone(),
            auth: format!("Bearer {}", config.token),
            agent,
        }
    }

    /// The server's base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<Answer, Error> {
        let url = self.url(path);
        let unreachable = |reason: String| Error::Unreachable {
            reason,
            url: url.clone(),
        };
        let builder = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", &self.auth);
        let result = if let Some((bytes, content_type)) = body {
            let request = builder
                .header("Content-Type", content_type)
                .body(bytes)
                .map_err(|e| unreachable(e.to_string()))?;
            self.agent.run(request)
        } else {
            let request = builder.body(()).map_err(|e| unreachable(e.to_string()))?;
            self.agent.run(request)
        };
        let mut response = result.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// The error an answer that is not one of `expected` stands for.
    fn error(&self, path: &str, answer: &Answer) -> Error {
        let body: serde_json::Value =
            serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        let field = |name: &str| {
            body.get("error")
                .and_then(|e| e.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let reason = http::StatusCode::from_u16(answer.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_lowercase()
            .replace(' ', "_");
        Error::Status {
            status: answer.status,
            code: field("code").unwrap_or(reason),
            message: field("message").unwrap_or_else(|| "no message".into()),
            url: self.url(path),
            retry_after: answer.retry_after,
            body,
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        answer: &Answer,
    ) -> Result<T, Error> {
        serde_json::from_slice(&answer.body).map_err(|e| Error::Status {
            status: answer.status,
            code: "bad_answer".into(),
            message: format!("the answer is not what Lab expects ({e})"),
            url: self.url(path),
            retry_after: None,
            body: serde_json::Value::Null,
        })
    }

    /// `GET /whoami`: checks the token.
    pub fn whoami(&self) -> Result<WhoAmI, Error> {
        let path = "/whoami";
        let answer = self.call(http::Method::GET, path, None)?;
        match answer.status {
            200 => self.json(path, &answer),
            _ => Err(self.error(path, &answer)),
        }
    }

    fn run_path(project: &str, run: &str, rest: &str) -> String {
        format!("/projects/{project}/runs/{run}{rest}")
    }

    /// `PUT .../journal?offset=N`: journal bytes from `offset`.
    pub fn put_journal(
        &self,
        project: &str,
        run: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<JournalAnswer, Error> {
        self.put_stretch(
            &Self::run_path(project, run, &format!("/journal?offset={offset}")),
            bytes,
        )
    }

    /// `PUT .../meta?offset=N`: the bytes of the run's meta journal (its
    /// edits, `meta.lab`) from `offset`.
    pub fn put_meta(
        &self,
        project: &str,
        run: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<JournalAnswer, Error> {
        self.put_stretch(
            &Self::run_path(project, run, &format!("/meta?offset={offset}")),
            bytes,
        )
    }

    /// `GET .../journal/length`: how many bytes of the run's journal the
    /// server holds.
    pub fn journal_length(&self, project: &str, run: &str) -> Result<u64, Error> {
        #[derive(Deserialize)]
        struct Length {
            length: u64,
        }
        let path = Self::run_path(project, run, "/journal/length");
        let answer = self.call(http::Method::GET, &path, None)?;
        match answer.status {
            200 => Ok(self.json::<Length>(&path, &answer)?.length),
            _ => Err(self.error(&path, &answer)),
        }
    }

    /// A stretch of a journal (the training journal or the meta journal)
    /// sent to `path`, and what the server made of it.
    fn put_stretch(&self, path: &str, bytes: &[u8]) -> Result<JournalAnswer, Error> {
        let answer = self.call(
            http::Method::PUT,
            path,
            Some((bytes, "application/octet-stream")),
        )?;
        let length = || -> Option<u64> {
            serde_json::from_slice::<serde_json::Value>(&answer.body)
                .ok()?
                .get("length")?
                .as_u64()
        };
        let err = self.error(path, &answer);
        let code = match &err {
            Error::Status { code, .. } => code.as_str(),
            _ => "",
        };
        match (answer.status, length()) {
            (200, Some(l)) => Ok(JournalAnswer::Stored(l)),
            (409, Some(l)) if code == "gap" => Ok(JournalAnswer::Gap(l)),
            (409, Some(l)) if matches!(code, "conflict" | "journal_conflict") => {
                Ok(JournalAnswer::Conflict(l))
            }
            (409, _) if code == "no_run" => Ok(JournalAnswer::NoRun),
            (400, Some(l)) if code == "bad_frame" => {
                Ok(JournalAnswer::BadFrame(l, err.to_string()))
            }
            _ => Err(err),
        }
    }

    fn expect_empty(
        &self,
        method: http::Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<(), Error> {
        let answer = self.call(method, path, body)?;
        match answer.status {
            200 | 204 => Ok(()),
            _ => Err(self.error(path, &answer)),
        }
    }

    /// `POST .../heartbeat`: the client streaming the run is alive.
    pub fn heartbeat(&self, project: &str, run: &str) -> Result<(), Error> {
        self.expect_empty(
            http::Method::POST,
            &Self::run_path(project, run, "/heartbeat"),
            None,
        )
    }

    /// `POST .../crashed`: the run's writer died without ending it.
    pub fn crashed(&self, project: &str, run: &str) -> Result<(), Error> {
        self.expect_empty(
            http::Method::POST,
            &Self::run_path(project, run, "/crashed"),
            None,
        )
    }

    /// `POST /blobs/{sha256}/uploads`: starts sending a blob of `size` bytes.
    pub fn start_upload(&self, sha256: &str, size: u64) -> Result<UploadStart, Error> {
        #[derive(Deserialize)]
        struct Started {
            #[serde(default)]
            present: bool,
            #[serde(default)]
            upload: Option<String>,
            #[serde(default)]
            part_size: Option<u64>,
        }
        let path = format!("/blobs/{sha256}/uploads");
        let body = serde_json::json!({ "size": size }).to_string();
        let answer = self.call(
            http::Method::POST,
            &path,
            Some((body.as_bytes(), "application/json")),
        )?;
        if !matches!(answer.status, 200 | 201) {
            return Err(self.error(&path, &answer));
        }
        let started: Started = self.json(&path, &answer)?;
        match (started.present, started.upload, started.part_size) {
            (true, _, _) => Ok(UploadStart::Present),
            (false, Some(upload), Some(part_size)) if part_size > 0 => {
                Ok(UploadStart::Started { upload, part_size })
            }
            _ => Err(Error::Status {
                status: answer.status,
                code: "bad_answer".into(),
                message: "the answer names no upload and part size".into(),
                url: self.url(&path),
                retry_after: None,
                body: serde_json::Value::Null,
            }),
        }
    }

    /// `GET /blobs/{sha256}/uploads/{id}`: the parts the server holds;
    /// `None` when it knows no such upload (finished, dropped or expired).
    pub fn upload_parts(&self, sha256: &str, upload: &str) -> Result<Option<Vec<u64>>, Error> {
        #[derive(Deserialize)]
        struct Parts {
            parts: Vec<u64>,
        }
        let path = format!("/blobs/{sha256}/uploads/{upload}");
        let answer = self.call(http::Method::GET, &path, None)?;
        match answer.status {
            200 => Ok(Some(self.json::<Parts>(&path, &answer)?.parts)),
            404 => Ok(None),
            _ => Err(self.error(&path, &answer)),
        }
    }

    /// `PUT /blobs/{sha256}/uploads/{id}/parts/{n}`.
    pub fn put_part(&self, sha256: &str, upload: &str, n: u64, bytes: &[u8]) -> Result<(), Error> {
        self.expect_empty(
            http::Method::PUT,
            &format!("/blobs/{sha256}/uploads/{upload}/parts/{n}"),
            Some((bytes, "application/octet-stream")),
        )
    }

    /// `POST /blobs/{sha256}/uploads/{id}/complete`.
    pub fn complete_upload(&self, sha256: &str, upload: &str) -> Result<(), Error> {
        self.expect_empty(
            http::Method::POST,
            &format!("/blobs/{sha256}/uploads/{upload}/complete"),
            None,
        )
    }

    /// `PUT .../files`: the run's files by hash. `Ok(missing)` lists the
    /// blobs the server still lacks (empty when it took the list).
    pub fn put_files(
        &self,
        project: &str,
        run: &str,
        files: &serde_json::Value,
    ) -> Result<Vec<String>, Error> {
        let path = Self::run_path(project, run, "/files");
        let body = files.to_string();
        let answer = self.call(
            http::Method::PUT,
            &path,
            Some((body.as_bytes(), "application/json")),
        )?;
        match answer.status {
            200 | 204 => Ok(Vec::new()),
            409 => {
                let err = self.error(&path, &answer);
                if let Error::Status { body, .. } = &err
                    && let Some(missing) = body.get("missing").and_then(|m| m.as_array())
                {
                    return Ok(missing
                        .iter()
                        .filter_map(|m| m.as_str().map(str::to_owned))
                        .collect());
                }
                Err(err)
            }
            _ => Err(self.error(&path, &answer)),
        }
    }

    /// `GET` of bytes under `/api/v1` (a journal, a blob), written to `out`
    /// as they arrive, however many: returns how many. An answer other than
    /// 200 is read (its first bytes) for its error.
    pub fn get_to(&self, path: &str, out: &mut dyn std::io::Write) -> Result<u64, Error> {
        let url = self.url(path);
        let unreachable = |reason: String| Error::Unreachable {
            reason,
            url: url.clone(),
        };
        let request = http::Request::builder()
            .method(http::Method::GET)
            .uri(&url)
            .header("Authorization", &self.auth)
            .body(())
            .map_err(|e| unreachable(e.to_string()))?;
        // A long body takes what it takes: no time limit past the answer's
        // start (Ctrl-C stops a download that hangs).
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(None)
            .timeout_recv_response(Some(Duration::from_mins(2)))
            .build();
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        if status == 200 {
            return std::io::copy(&mut reader, out).map_err(|e| unreachable(e.to_string()));
        }
        let mut body = Vec::new();
        reader
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| unreachable(e.to_string()))?;
        Err(self.error(
            path,
            &Answer {
                status,
                body,
                retry_after: None,
            },
        ))
    }

    /// `GET` of a read endpoint under `/api/v1` (the path with its query,
    /// already escaped), as JSON.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, Error> {
        let answer = self.call(http::Method::GET, path, None)?;
        match answer.status {
            200 => self.json(path, &answer),
            _ => Err(self.error(path, &answer)),
        }
    }
}

/// Escapes `text` for a URL's query or path segment.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_but_unreserved_characters() {
        assert_eq!(
            escape("loss < 0.5 & x=é/"),
            "loss%20%3C%200.5%20%26%20x%3D%C3%A9%2F"
        );
        assert_eq!(escape("a-b.c_d~"), "a-b.c_d~");
    }
}
