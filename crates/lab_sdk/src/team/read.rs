//! Reading the team's runs: the server's copy of a project, read with its
//! runs API (`lab ls --remote`, `lab show --remote`, `lab.runs(remote=True)`).
//! The server sends the same wire types as `lab ui`; they are made back into
//! [`RunInfo`]s here, so that each surface shows them with the code that
//! shows local runs, and a query error comes back as the local one.

use std::path::{Path, PathBuf};

use lab_store::query::{Input, QueryError};
use lab_store::wire::{RunDetail, RunSummary};
use lab_store::{ConsoleEvent, MetricEvent, RunInfo};
use serde::Deserialize;

use super::http::escape;
use super::{Client, Error, ServerConfig};

/// The most runs one listing request asks for (the server's limit).
const PAGE: usize = 10_000;

/// A project on a team server.
#[derive(Debug)]
pub struct Remote {
    client: Client,
    project: String,
}

/// Which runs to list, and in what order: the options of `lab ls`.
#[derive(Debug, Default)]
pub struct Query<'a> {
    /// A filter in the query language.
    pub filter: Option<&'a str>,
    /// Sort keys, `-` before a key for largest first.
    pub sort: &'a [String],
    /// Only runs with one of these statuses (`finished`, ...).
    pub statuses: Vec<String>,
    /// Only this experiment's runs.
    pub experiment: Option<&'a str>,
    /// At most this many runs.
    pub limit: Option<usize>,
    /// Only the runs after this cursor: the `next` of an earlier listing
    /// with the same sort keys.
    pub after: Option<&'a str>,
}

/// The runs a listing gives, and where the next page starts.
#[derive(Debug, Default)]
pub struct Listed {
    /// The runs, in the listing's order.
    pub runs: Vec<RunInfo>,
    /// Every name the project's runs use.
    pub names: Names,
    /// The cursor of the last run, when the listing stopped at its limit
    /// and more runs follow: `after` of the next page.
    pub next: Option<String>,
}

/// Every name the server's runs use, by kind.
#[derive(Debug, Default, Deserialize)]
pub struct Names {
    /// The run fields queries may use.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Every parameter's name.
    #[serde(default)]
    pub params: Vec<String>,
    /// Every metric's name.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Every tag's name.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct Listing {
    runs: Vec<RunSummary>,
    #[serde(default)]
    names: Names,
    #[serde(default)]
    next: Option<String>,
}

impl Remote {
    /// The project at `root` on the server `config` names: the project goes
    /// by its folder's name there.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when the folder's name cannot name a project on
    /// the server.
    pub fn new(config: &ServerConfig, root: &Path) -> Result<Self, Error> {
        Ok(Self {
            client: Client::new(config),
            project: super::upload::project_name(root)?,
        })
    }

    /// The server's base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        self.client.base()
    }

    fn path(&self, rest: &str) -> String {
        format!("/projects/{}{rest}", escape(&self.project))
    }

    /// The URL of a run on the server, to show where it is.
    #[must_use]
    pub fn run_url(&self, id: &str) -> PathBuf {
        PathBuf::from(format!(
            "{}/api/v1{}",
            self.client.base(),
            self.path(&format!("/runs/{id}"))
        ))
    }

    /// The runs `query` selects, in its order (newest first by default), as
    /// far as a listing tells (see [`RunSummary::into_info`]), every name
    /// the project's runs use, and the cursor of the next page when the
    /// limit stopped the listing. Pages through the server's listing, each
    /// request after the cursor of the one before.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] for a bad query, as the local one; any other error
    /// of the server or the network (a bad cursor: `400` `bad_request`).
    pub fn runs(&self, query: &Query<'_>) -> Result<Listed, Error> {
        let mut params = Vec::new();
        if let Some(filter) = query.filter {
            params.push(format!("where={}", escape(filter)));
        }
        if !query.sort.is_empty() {
            params.push(format!("sort={}", escape(&query.sort.join(","))));
        }
        if !query.statuses.is_empty() {
            params.push(format!("status={}", escape(&query.statuses.join(","))));
        }
        if let Some(experiment) = query.experiment {
            params.push(format!("experiment={}", escape(experiment)));
        }
        if let Some(cursor) = query.after {
            // What can be told here is told without asking the server.
            lab_store::check_cursor(cursor, query.sort)
                .map_err(|e| Error::Cursor(e.to_string()))?;
        }
        let mut runs = Vec::new();
        let mut after = query.after.map(str::to_owned);
        // Runs already read after `after`: a server that gives no `next`
        // is paged by offset from the same cursor.
        let mut skip = 0;
        loop {
            let want = query.limit.map_or(PAGE, |l| (l - runs.len()).min(PAGE));
            if want == 0 {
                return Ok(Listed {
                    runs,
                    ..Listed::default()
                });
            }
            let mut page = params.clone();
            if let Some(cursor) = &after {
                page.push(format!("after={}", escape(cursor)));
            }
            page.push(format!("limit={want}"));
            page.push(format!("offset={skip}"));
            let path = self.path(&format!("/runs?{}", page.join("&")));
            let value = self
                .client
                .get_json(&path)
                .map_err(|e| Self::error(e, query))?;
            let listing: Listing = serde_json::from_value(value)
                .map_err(|e| self.bad_answer(&path, &e.to_string()))?;
            let got = listing.runs.len();
            for summary in listing.runs {
                runs.push(
                    summary
                        .into_info()
                        .map_err(|e| self.bad_answer(&path, &e))?,
                );
            }
            if query.limit == Some(runs.len()) || got < want {
                return Ok(Listed {
                    runs,
                    names: listing.names,
                    next: listing.next.filter(|_| got == want),
                });
            }
            match listing.next {
                Some(next) => {
                    after = Some(next);
                    skip = 0;
                }
                None => skip += got,
            }
        }
    }

    /// One run, whole, by its id or a unique prefix of it.
    ///
    /// # Errors
    ///
    /// `404` `not_found` for a run the server does not have; any other
    /// error of the server or the network.
    pub fn run(&self, prefix: &str) -> Result<RunInfo, Error> {
        let path = self.path(&format!("/runs/{}", escape(prefix)));
        let value = self
            .client
            .get_json(&path)
            .map_err(|e| Self::error(e, &Query::default()))?;
        let detail: RunDetail =
            serde_json::from_value(value).map_err(|e| self.bad_answer(&path, &e.to_string()))?;
        detail.into_info().map_err(|e| self.bad_answer(&path, &e))
    }

    /// Each metric's values, for the sparklines of `lab show`: as many
    /// points as the server gives (100,000 a metric; a longer series comes
    /// as the smallest and largest point of each stretch).
    ///
    /// # Errors
    ///
    /// Any error of the server or the network.
    pub fn metric_series(&self, run: &RunInfo) -> Result<Vec<(String, Vec<f64>)>, Error> {
        #[derive(Deserialize)]
        struct Series {
            y: Vec<Option<f64>>,
        }
        let mut series = Vec::with_capacity(run.metrics.len());
        for m in &run.metrics {
            let path = self.path(&format!(
                "/runs/{}/metrics/{}?max_points=100000",
                run.id,
                escape(&m.name)
            ));
            let value = self
                .client
                .get_json(&path)
                .map_err(|e| Self::error(e, &Query::default()))?;
            let points: Series = serde_json::from_value(value)
                .map_err(|e| self.bad_answer(&path, &e.to_string()))?;
            let values: Vec<f64> = points
                .y
                .into_iter()
                .map(|y| y.unwrap_or(f64::NAN))
                .collect();
            if !values.is_empty() {
                series.push((m.name.clone(), values));
            }
        }
        Ok(series)
    }

    /// Every point of metric `name` of `run`, in logging order, as
    /// `(step, time_nanos, value)`: read from the run's journal as the
    /// server holds it, so nothing is downsampled.
    ///
    /// # Errors
    ///
    /// Any error of the server or the network, or a journal that does not
    /// read.
    pub fn metric_history(&self, run: &RunInfo, name: &str) -> Result<Vec<(i64, i64, f64)>, Error> {
        let path = self.path(&format!("/runs/{}/journal", run.id));
        let mut journal = Vec::new();
        self.client.get_to(&path, &mut journal)?;
        let mut key = None;
        let mut out = Vec::new();
        lab_store::index::received_metric_events(0, &journal, |event| match event {
            MetricEvent::Declared { key: k, name: n } if n == name => key = Some(k),
            MetricEvent::Point { time_nanos, point } if Some(point.key) == key => {
                out.push((point.step, time_nanos, point.value));
            }
            _ => {}
        })
        .map_err(|e| self.bad_answer(&path, &e.to_string()))?;
        Ok(out)
    }

    /// What `run` printed, in order, as console events: read from the
    /// run's journal as the server holds it.
    ///
    /// # Errors
    ///
    /// Any error of the server or the network, or a journal that does not
    /// read.
    pub fn console(&self, run: &RunInfo) -> Result<Vec<ConsoleEvent>, Error> {
        let path = self.path(&format!("/runs/{}/journal", run.id));
        let mut journal = Vec::new();
        self.client.get_to(&path, &mut journal)?;
        let mut out = Vec::new();
        lab_store::index::received_console_events(0, &journal, |event| out.push(event))
            .map_err(|e| self.bad_answer(&path, &e.to_string()))?;
        Ok(out)
    }

    /// Fetches the file whose SHA-256 is `sha256` (a model's, an
    /// artifact's) into `path`, checking the hash as it arrives: the file
    /// appears only whole and right (written beside it, then renamed).
    ///
    /// # Errors
    ///
    /// Any error of the server or the network; [`Error::Invalid`] when the
    /// bytes do not have that hash; the disk's.
    pub fn fetch_blob(&self, sha256: &str, path: &Path) -> Result<u64, Error> {
        use sha2::Digest as _;
        struct Hashing<W> {
            out: W,
            hash: sha2::Sha256,
        }
        impl<W: std::io::Write> std::io::Write for Hashing<W> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let n = self.out.write(buf)?;
                self.hash.update(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.out.flush()
            }
        }
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Error::Invalid(format!(
                "a file is fetched by its SHA-256, 64 lowercase hexadecimal digits: got `{sha256}`"
            )));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{sha256}.{}.part", std::process::id()));
        let fetch = || -> Result<u64, Error> {
            let file = fs_err::File::create(&tmp)?;
            let mut out = Hashing {
                out: std::io::BufWriter::new(file),
                hash: sha2::Sha256::new(),
            };
            let size = self.client.get_to(&format!("/blobs/{sha256}"), &mut out)?;
            let Hashing { out, hash } = out;
            let file = out
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            let got = crate::hash::hex(&hash.finalize());
            if got != sha256 {
                return Err(Error::Invalid(format!(
                    "the server sent bytes whose SHA-256 is {got} for the file {sha256}; nothing was kept"
                )));
            }
            file.sync_all()?;
            fs_err::rename(&tmp, path)?;
            Ok(size)
        };
        fetch().inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    fn bad_answer(&self, path: &str, why: &str) -> Error {
        Error::Status {
            status: 200,
            code: "bad_answer".into(),
            message: format!("the answer is not what Lab expects ({why})"),
            url: format!("{}/api/v1{path}", self.client.base()),
            retry_after: None,
            body: serde_json::Value::Null,
        }
    }

    /// A server's error: a query error made again into the local one (the
    /// query with a caret under the bad part).
    fn error(e: Error, query: &Query<'_>) -> Error {
        if let Error::Status { code, body, .. } = &e
            && code == "bad_query"
            && let Some(q) = query_error(body, query)
        {
            return Error::Query(q);
        }
        if let Error::Status {
            status: 400,
            code,
            message,
            ..
        } = &e
            && code == "bad_request"
            && query.after.is_some()
            && message.starts_with("`after`")
        {
            return Error::Cursor(message.clone());
        }
        e
    }
}

/// The server's `bad_query` error made again into the error a local query
/// gives: the server names the parameter, and where the bad part is in
/// characters; hints follow its message after `; `.
fn query_error(body: &serde_json::Value, query: &Query<'_>) -> Option<QueryError> {
    let error = body.get("error")?;
    let message = error.get("message")?.as_str()?;
    let offset = usize::try_from(error.get("offset")?.as_u64()?).ok()?;
    let length = usize::try_from(error.get("length")?.as_u64()?).ok()?;
    let (input, text, message) = match error.get("param")?.as_str()? {
        "where" => (Input::Filter, query.filter?.to_owned(), message),
        "sort" => {
            let message = message.strip_prefix("bad sort key: ").unwrap_or(message);
            // The server points into the one bad key; the first key long
            // enough to hold the bad part is it when the keys are alike.
            let key = query
                .sort
                .iter()
                .find(|k| {
                    k.chars().count() >= offset + length
                        && message.contains(k.trim_start_matches('-'))
                })
                .or_else(|| {
                    query
                        .sort
                        .iter()
                        .find(|k| k.chars().count() >= offset + length)
                })
                .or_else(|| query.sort.first())?;
            (Input::SortKey, key.clone(), message)
        }
        _ => return None,
    };
    let mut parts = message.split("; ");
    let message = parts.next()?.to_owned();
    let hints: Vec<&str> = parts.collect();
    let byte = |chars: usize| {
        text.char_indices()
            .nth(chars)
            .map_or(text.len(), |(i, _)| i)
    };
    let start = byte(offset);
    let end = byte(offset + length);
    Some(QueryError {
        input,
        offset: start,
        len: end - start,
        message,
        suggestions: Vec::new(),
        hint: (!hints.is_empty()).then(|| hints.join("\nhint: ")),
        query: text,
    })
}
