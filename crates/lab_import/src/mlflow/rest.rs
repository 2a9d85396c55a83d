//! An MLflow tracking server, through its REST API 2.0: experiments and runs
//! by search (paged), each metric's full history (paged), and the artifacts
//! listed by `artifacts/list` and fetched from `/get-artifact`.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use lab_sdk::team::http::escape;
use serde_json::{Value as J, json};

use super::{MlRun, Point, listing, pick_experiments, to_imported};
use crate::{ImportError, Read, Source, SourceRun};

/// Results asked for per page.
const PAGE: u64 = 1000;
/// Metric points asked for per page of a history.
const HISTORY_PAGE: u64 = 25_000;
/// The largest JSON answer read.
const MAX_ANSWER_BYTES: u64 = 1 << 30;

pub(crate) struct Server {
    base: String,
    /// The `Authorization` header, from MLflow's own variables.
    auth: Option<String>,
    agent: ureq::Agent,
    only: Option<String>,
    runs: Vec<MlRun>,
}

impl Server {
    /// A client of the server at `url`, which must answer as MLflow does.
    pub(crate) fn open(url: &str, only: Option<String>) -> Result<Self, ImportError> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_mins(10)))
            .user_agent(concat!("lab/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let server = Self {
            base: url.trim_end_matches('/').to_owned(),
            auth: auth_header(
                std::env::var("MLFLOW_TRACKING_TOKEN").ok().as_deref(),
                std::env::var("MLFLOW_TRACKING_USERNAME").ok().as_deref(),
                std::env::var("MLFLOW_TRACKING_PASSWORD").ok().as_deref(),
            ),
            agent,
            only,
            runs: Vec::new(),
        };
        // Asked once now, so that a wrong URL is said before anything is made.
        server
            .json(
                "/api/2.0/mlflow/experiments/search",
                Some(&json!({"max_results": 1})),
            )
            .map_err(|why| {
                ImportError::source(format!(
                    "`{url}` is not an MLflow tracking server Lab can read: {why}\n\nhint: is `mlflow server` running there?"
                ))
            })?;
        Ok(server)
    }

    /// Sends a request; the answer's body, or why there is none.
    fn call(&self, path: &str, body: Option<&J>) -> Result<Vec<u8>, String> {
        let url = format!("{}{path}", self.base);
        let auth = self.auth.as_deref().unwrap_or_default();
        let result = match (body, self.auth.is_some()) {
            (Some(b), with_auth) => {
                let request = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                let request = if with_auth {
                    request.header("Authorization", auth)
                } else {
                    request
                };
                request.send(b.to_string().as_bytes())
            }
            (None, true) => self.agent.get(&url).header("Authorization", auth).call(),
            (None, false) => self.agent.get(&url).call(),
        };
        let mut response = result.map_err(|e| format!("{e}: {url}"))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .reader()
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{e}: {url}"))?;
        if status != 200 {
            let message = serde_json::from_slice::<J>(&bytes)
                .ok()
                .and_then(|j| j.get("message").and_then(J::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(format!("the server answered {status} ({message}): {url}"));
        }
        Ok(bytes)
    }

    fn json(&self, path: &str, body: Option<&J>) -> Result<J, String> {
        let bytes = self.call(path, body)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the answer is not the JSON of an MLflow server ({e}): {}{path}",
                self.base
            )
        })
    }

    fn experiments(&self) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut body = json!({"max_results": PAGE, "view_type": "ACTIVE_ONLY"});
            if !token.is_empty() {
                body["page_token"] = J::String(token.clone());
            }
            let page = self.json("/api/2.0/mlflow/experiments/search", Some(&body))?;
            for e in page["experiments"].as_array().into_iter().flatten() {
                out.push((text(&e["experiment_id"]), text(&e["name"])));
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    fn runs_of(&self, id: &str, name: &str) -> Result<Vec<MlRun>, String> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut body = json!({
                "experiment_ids": [id],
                "max_results": PAGE,
                "run_view_type": "ACTIVE_ONLY",
                "order_by": ["attributes.start_time ASC"],
            });
            if !token.is_empty() {
                body["page_token"] = J::String(token.clone());
            }
            let page = self.json("/api/2.0/mlflow/runs/search", Some(&body))?;
            for r in page["runs"].as_array().into_iter().flatten() {
                let info = &r["info"];
                let data = &r["data"];
                let pairs = |list: &J| -> Vec<(String, String)> {
                    list.as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| (text(&p["key"]), text(&p["value"])))
                        .collect()
                };
                out.push(MlRun {
                    experiment_id: id.to_owned(),
                    experiment: name.to_owned(),
                    run_id: text(&info["run_id"]),
                    run_name: text(&info["run_name"]),
                    status: text(&info["status"]),
                    start_ms: int(&info["start_time"]),
                    end_ms: int(&info["end_time"]),
                    user: text(&info["user_id"]),
                    artifact_uri: text(&info["artifact_uri"]),
                    params: pairs(&data["params"]),
                    tags: pairs(&data["tags"]),
                    // The names only: the histories are read with the run.
                    metrics: data["metrics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| (text(&m["key"]), Vec::new()))
                        .collect(),
                });
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    fn history(&self, run_id: &str, key: &str) -> Result<Vec<Point>, String> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut path = format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={}&metric_key={}&max_results={HISTORY_PAGE}",
                escape(run_id),
                escape(key)
            );
            if !token.is_empty() {
                let _ = write!(path, "&page_token={}", escape(&token));
            }
            let page = self.json(&path, None)?;
            for m in page["metrics"].as_array().into_iter().flatten() {
                out.push((
                    int(&m["step"]).unwrap_or(0),
                    float(&m["value"]),
                    int(&m["timestamp"]).unwrap_or(0),
                ));
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                out.sort_by_key(|(step, _, ts)| (*ts, *step));
                return Ok(out);
            }
        }
    }

    /// Every file under artifact `path` of the run, fetched into `into`.
    fn fetch_artifacts(&self, run_id: &str, path: &str, into: &Path) -> Result<(), String> {
        let mut token = String::new();
        loop {
            let mut url = format!("/api/2.0/mlflow/artifacts/list?run_id={}", escape(run_id));
            if !path.is_empty() {
                let _ = write!(url, "&path={}", escape(path));
            }
            if !token.is_empty() {
                let _ = write!(url, "&page_token={}", escape(&token));
            }
            let page = self.json(&url, None)?;
            for f in page["files"].as_array().into_iter().flatten() {
                let file = text(&f["path"]);
                // Never outside the scratch folder.
                if file
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..")
                {
                    return Err(format!(
                        "the server lists an artifact path Lab refuses: `{file}`"
                    ));
                }
                let dest = into.join(&file);
                if f["is_dir"].as_bool() == Some(true) {
                    fs_err::create_dir_all(&dest).map_err(|e| e.to_string())?;
                    self.fetch_artifacts(run_id, &file, into)?;
                } else {
                    if let Some(parent) = dest.parent() {
                        fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
                    }
                    let bytes = self.call(
                        &format!(
                            "/get-artifact?path={}&run_uuid={}",
                            escape(&file),
                            escape(run_id)
                        ),
                        None,
                    )?;
                    fs_err::write(&dest, bytes).map_err(|e| e.to_string())?;
                }
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(());
            }
        }
    }
}

/// The `Authorization` header MLflow's client would send: a bearer token
/// (`MLFLOW_TRACKING_TOKEN`) or a user and password
/// (`MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`), as MLflow reads
/// them.
fn auth_header(token: Option<&str>, user: Option<&str>, password: Option<&str>) -> Option<String> {
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        return Some(format!("Bearer {token}"));
    }
    match (user, password) {
        (Some(u), Some(p)) if !u.is_empty() => {
            Some(format!("Basic {}", base64(format!("{u}:{p}").as_bytes())))
        }
        _ => None,
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn text(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn int(v: &J) -> Option<i64> {
    match v {
        J::Number(n) => n.as_i64(),
        J::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A metric value: a number, or the text protobuf's JSON gives NaN and the
/// infinities.
fn float(v: &J) -> f64 {
    match v {
        J::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        J::String(s) => match s.as_str() {
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or(f64::NAN),
        },
        _ => f64::NAN,
    }
}

impl Source for Server {
    fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError> {
        let unreachable = |why: String| {
            ImportError::source(format!(
                "cannot list the runs of the MLflow tracking server: {why}\n\nhint: is `mlflow server` running there?"
            ))
        };
        let experiments = self.experiments().map_err(unreachable)?;
        let picked = pick_experiments(experiments, self.only.as_deref(), &self.base)?;
        let mut runs = Vec::new();
        for (id, name) in picked {
            runs.extend(self.runs_of(&id, &name).map_err(unreachable)?);
        }
        self.runs = runs;
        Ok(listing(&self.runs))
    }

    fn read(&mut self, run: &SourceRun, scratch: &Path) -> Result<Read, String> {
        let mut ml = self
            .runs
            .get(run.index)
            .cloned()
            .ok_or_else(|| format!("no run at {}", run.index))?;
        let keys: Vec<String> = ml.metrics.iter().map(|(k, _)| k.clone()).collect();
        ml.metrics = keys
            .into_iter()
            .map(|k| Ok((k.clone(), self.history(&ml.run_id, &k)?)))
            .collect::<Result<_, String>>()?;
        let folder = scratch.join("artifacts");
        fs_err::create_dir_all(&folder).map_err(|e| e.to_string())?;
        self.fetch_artifacts(&ml.run_id, "", &folder)
            .map_err(|e| format!("cannot fetch the artifacts: {e}"))?;
        let artifacts = super::folder_artifacts(&folder)?;
        Ok(to_imported(ml, artifacts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_protobuf_json_spells_them() {
        assert!(float(&json!("NaN")).is_nan());
        assert_eq!(
            float(&json!("-Infinity")).to_bits(),
            f64::NEG_INFINITY.to_bits()
        );
        assert_eq!(float(&json!(0.5)).to_bits(), 0.5f64.to_bits());
        assert_eq!(int(&json!("1700000000000")), Some(1_700_000_000_000));
        assert_eq!(escape("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn credentials_as_mlflow_sends_them() {
        assert_eq!(base64(b"admin:pw"), "YWRtaW46cHc=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
        assert_eq!(
            auth_header(Some("t0k"), Some("u"), Some("p")).as_deref(),
            Some("Bearer t0k")
        );
        assert_eq!(
            auth_header(None, Some("u"), Some("p")).as_deref(),
            Some("Basic dTpw")
        );
        assert_eq!(auth_header(None, Some("u"), None), None);
    }
}
