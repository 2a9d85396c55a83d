//! Blobs (artifact and model files) by SHA-256, uploaded in parts that are
//! each kept in the object store as they arrive, so an upload interrupted
//! (by the client, the network or a server killed) resumes with the parts
//! the server lacks, on any replica. Completing an upload streams the parts
//! in order through SHA-256 into one multipart write of the blob, which is
//! made visible only when the hash matches: a blob is never held whole in
//! memory, and a blob under a hash always has that hash.
//!
//! And each run's file list: which blob each of its files is.

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use lab_server::files::{Ranged, parse_range};
use lab_types::RunId;
use object_store::{GetOptions, GetRange, ObjectStoreExt as _, WriteMultipart};
use serde::Deserialize;
use serde_json::{Value as J, json};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::ingest::{project_exists, project_name, read_body, run_id};
use crate::tokens::{Caller, Role, hex};
use crate::{AppState, MAX_JSON_BODY, MAX_PART_BODY};

/// How many parts of a blob being assembled may be on their way at once.
const PARTS_IN_FLIGHT: usize = 4;

/// A SHA-256 from the path, checked.
fn sha256(sha: &str) -> Result<String, ApiError> {
    let lower = sha.to_ascii_lowercase();
    if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(ApiError::BadRequest(format!(
            "a blob is named by its SHA-256, 64 hexadecimal digits: got `{sha}`"
        )))
    }
}

/// Whether the blob is in the object store.
pub(crate) async fn present(state: &AppState, sha: &str) -> Result<bool, ApiError> {
    let bucket = &state.inner.bucket;
    match bucket.store.head(&bucket.blob(sha)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `HEAD /blobs/{sha}`.
pub(crate) async fn head_blob(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sha): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.may_do(Role::Reader)?;
    let sha = sha256(&sha)?;
    if present(&state, &sha).await? {
        Ok(StatusCode::OK)
    } else {
        Ok(StatusCode::NOT_FOUND)
    }
}

/// `GET /blobs/{sha}`: the bytes, streamed (`Range` honoured).
pub(crate) async fn get_blob(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sha): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.may_do(Role::Reader)?;
    let sha = sha256(&sha)?;
    // A token of one project reads only the files its project's runs name:
    // a hash seen elsewhere opens nothing.
    if let Some(project) = caller.project.clone() {
        let wanted = sha.clone();
        let named = state
            .blocking(move |s| {
                let mut lease = s.inner.db.take()?;
                Ok(lease
                    .client()
                    .query_opt(
                        "SELECT 1 FROM lab_team.files WHERE sha256 = $1 AND project = $2 LIMIT 1",
                        &[&wanted, &project],
                    )?
                    .is_some())
            })
            .await?;
        if !named {
            return Err(ApiError::NotFound(format!("no blob `{sha}`")));
        }
    }
    send_blob(&state, &sha, &headers, None).await
}

/// Streams blob `sha`, honouring one `Range`: as bytes, or (`file`: its
/// name and whether to download it) as a run's file is sent to a browser,
/// with `lab ui`'s safe headers.
pub(crate) async fn send_blob(
    state: &AppState,
    sha: &str,
    headers: &HeaderMap,
    file: Option<(&str, bool)>,
) -> Result<Response, ApiError> {
    let bucket = &state.inner.bucket;
    let path = bucket.blob(sha);
    let size = match bucket.store.head(&path).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::NotFound(format!("no blob `{sha}`")));
        }
        Err(e) => return Err(e.into()),
    };
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let wanted = match asked.map_or(Ranged::Whole, |v| parse_range(v, size)) {
        Ranged::Whole => None,
        Ranged::Part(a, b) => Some(a..b + 1),
        Ranged::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable(
                asked.unwrap_or_default().to_owned(),
            ));
        }
    };
    let r = wanted.clone().unwrap_or(0..size);
    let options = GetOptions::new().with_range(wanted.clone().map(GetRange::Bounded));
    let got = bucket.store.get_opts(&path, options).await?;
    let status = if wanted.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, (r.end - r.start).to_string()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
        ],
        Body::from_stream(got.into_stream()),
    )
        .into_response();
    if let Some((name, download)) = file {
        lab_server::files::dress(response.headers_mut(), name, download);
    }
    if wanted.is_some()
        && let Ok(v) = format!("bytes {}-{}/{size}", r.start, r.end - 1).parse()
    {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct NewUpload {
    size: u64,
}

/// An upload as the database holds it.
struct Upload {
    size: u64,
    part_size: u64,
}

impl Upload {
    /// How many parts it has (a blob of no bytes has one, empty).
    fn parts(&self) -> u32 {
        self.size.div_ceil(self.part_size).max(1) as u32
    }

    /// How many bytes part `n` holds.
    fn part_len(&self, n: u32) -> u64 {
        if n < self.parts() {
            self.part_size
        } else {
            self.size - self.part_size * u64::from(self.parts() - 1)
        }
    }
}

/// Upload `id` of blob `sha`.
fn upload(state: &AppState, sha: &str, id: &str) -> Result<Upload, ApiError> {
    let mut lease = state.inner.db.take()?;
    let row = lease.client().query_opt(
        "SELECT size, part_size FROM lab_team.uploads WHERE id = $1 AND sha256 = $2",
        &[&id, &sha],
    )?;
    let row = row.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no upload `{id}` of blob `{sha}` (completed, dropped, or never started)"
        ))
    })?;
    Ok(Upload {
        size: row.get::<_, i64>(0) as u64,
        part_size: row.get::<_, i64>(1) as u64,
    })
}

/// `POST /blobs/{sha}/uploads` with `{"size": BYTES}`.
pub(crate) async fn start_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sha): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    caller.may_do(Role::Writer)?;
    let sha = sha256(&sha)?;
    let body = read_body(body, 4096, "an upload's description").await?;
    let new: NewUpload = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be `{{\"size\": BYTES}}`: {e}"))
    })?;
    if new.size > i64::MAX as u64 {
        return Err(ApiError::BadRequest(format!(
            "`size` is too large: got `{}`",
            new.size
        )));
    }
    if present(&state, &sha).await? {
        return Ok((StatusCode::OK, Json(json!({ "present": true }))).into_response());
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::Internal(format!("no random bytes from the system: {e}")))?;
    let id = hex(&random);
    let part_size = state.inner.options.part_size;
    let (id2, sha2) = (id.clone(), sha.clone());
    state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            lease.client().execute(
                "INSERT INTO lab_team.uploads (id, sha256, size, part_size, created_nanos) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id2,
                    &sha2,
                    &(new.size as i64),
                    &(part_size as i64),
                    &lab_types::now_nanos(),
                ],
            )?;
            Ok(())
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "upload": id, "part_size": part_size })),
    )
        .into_response())
}

/// An upload id from the path: 32 hex digits (it names a folder).
fn upload_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no upload `{id}`")))
    }
}

/// `PUT /blobs/{sha}/uploads/{id}/parts/{n}`.
pub(crate) async fn put_part(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sha, id, n)): Path<(String, String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    caller.may_do(Role::Writer)?;
    let sha = sha256(&sha)?;
    upload_id(&id)?;
    let (sha2, id2) = (sha.clone(), id.clone());
    let up = state.blocking(move |s| upload(s, &sha2, &id2)).await?;
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=up.parts()).contains(n))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "a part number of this upload is from 1 to {}: got `{n}`",
                up.parts()
            ))
        })?;
    let bytes = read_body(body, MAX_PART_BODY, "a part").await?;
    let want = up.part_len(n);
    if bytes.len() as u64 != want {
        return Err(ApiError::BadRequest(format!(
            "part {n} of this upload holds {want} bytes: got {}",
            bytes.len()
        )));
    }
    let bucket = &state.inner.bucket;
    bucket.store.put(&bucket.part(&id, n), bytes.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The parts of upload `id` the object store holds whole.
async fn held_parts(state: &AppState, id: &str, up: &Upload) -> Result<Vec<u32>, ApiError> {
    let bucket = &state.inner.bucket;
    let mut listing = bucket.store.list(Some(&bucket.upload_dir(id)));
    let mut parts = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        if let Some(n) = meta
            .location
            .filename()
            .and_then(|f| f.parse::<u32>().ok())
            .filter(|n| (1..=up.parts()).contains(n) && meta.size == up.part_len(*n))
        {
            parts.push(n);
        }
    }
    parts.sort_unstable();
    Ok(parts)
}

/// `GET /blobs/{sha}/uploads/{id}`: the parts the server holds.
pub(crate) async fn upload_parts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sha, id)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    caller.may_do(Role::Writer)?;
    let sha = sha256(&sha)?;
    upload_id(&id)?;
    let (sha2, id2) = (sha.clone(), id.clone());
    let up = state.blocking(move |s| upload(s, &sha2, &id2)).await?;
    let parts = held_parts(&state, &id, &up).await?;
    Ok(Json(json!({ "parts": parts })))
}

/// Forgets the uploads begun longer ago than the server's upload time to
/// live (a client that gave up, or never came back): their rows and their
/// parts. Returns how many.
pub(crate) async fn expire_uploads(state: &AppState) -> Result<usize, ApiError> {
    let ttl = i64::try_from(state.inner.options.upload_ttl.as_nanos()).unwrap_or(i64::MAX);
    let before = lab_types::now_nanos().saturating_sub(ttl);
    let old = state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            let rows = lease.client().query(
                "SELECT id, size, part_size FROM lab_team.uploads WHERE created_nanos < $1",
                &[&before],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let up = Upload {
                        size: r.get::<_, i64>(1).cast_unsigned(),
                        part_size: r.get::<_, i64>(2).cast_unsigned().max(1),
                    };
                    (r.get::<_, String>(0), up.parts())
                })
                .collect::<Vec<_>>())
        })
        .await?;
    for (id, parts) in &old {
        drop_upload(state, id, *parts).await?;
    }
    Ok(old.len())
}

/// Forgets upload `id`: its row and its parts.
async fn drop_upload(state: &AppState, id: &str, parts: u32) -> Result<(), ApiError> {
    let bucket = &state.inner.bucket;
    for n in 1..=parts {
        match bucket.store.delete(&bucket.part(id, n)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let id = id.to_owned();
    state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            lease
                .client()
                .execute("DELETE FROM lab_team.uploads WHERE id = $1", &[&id])?;
            Ok(())
        })
        .await
}

/// `POST /blobs/{sha}/uploads/{id}/complete`.
pub(crate) async fn complete_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((sha, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.may_do(Role::Writer)?;
    let sha = sha256(&sha)?;
    upload_id(&id)?;
    let (sha2, id2) = (sha.clone(), id.clone());
    let up = state.blocking(move |s| upload(s, &sha2, &id2)).await?;
    let held = held_parts(&state, &id, &up).await?;
    let missing: Vec<u32> = (1..=up.parts()).filter(|n| !held.contains(n)).collect();
    if !missing.is_empty() {
        return Err(ApiError::Conflict(format!(
            "upload `{id}` lacks parts {missing:?}; send them, then complete it"
        )));
    }
    let bucket = &state.inner.bucket;
    let target = bucket.blob(&sha);
    let writer = bucket.store.put_multipart(&target).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(writer, 8 << 20);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    for n in 1..=up.parts() {
        let got = match bucket.store.get(&bucket.part(&id, n)).await {
            Ok(g) => g,
            Err(e) => {
                writer.abort().await?;
                return Err(e.into());
            }
        };
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    writer.abort().await?;
                    return Err(e.into());
                }
            };
            hasher.update(&chunk);
            size += chunk.len() as u64;
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            writer.put(chunk);
        }
    }
    let got = hex(&hasher.finalize());
    if got != sha || size != up.size {
        writer.abort().await?;
        drop_upload(&state, &id, up.parts()).await?;
        return Err(ApiError::HashMismatch(format!(
            "the {size} bytes uploaded have SHA-256 `{got}`, not `{sha}`; the upload is dropped"
        )));
    }
    writer.finish().await?;
    drop_upload(&state, &id, up.parts()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct FileList {
    files: Vec<FileEntry>,
}

/// One file of a run: its path in the run's folder and its blob.
#[derive(Deserialize, serde::Serialize)]
pub(crate) struct FileEntry {
    pub(crate) path: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
}

/// A file's path in a run's folder: relative, no `..`, no empty part.
pub(crate) fn file_path(path: &str) -> Result<(), ApiError> {
    let ok = !path.is_empty()
        && path.len() <= 4096
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "a file's path is relative to the run's folder, without `..`, `.` or empty parts: got `{path}`"
        )))
    }
}

/// `PUT /projects/{project}/runs/{run}/files`.
pub(crate) async fn put_files(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    project_name(&project)?;
    caller.may(Role::Writer, &project)?;
    let run = run_id(&run)?;
    let body = read_body(body, MAX_JSON_BODY, "a file list").await?;
    let list: FileList = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be `{{\"files\": [{{\"path\", \"sha256\", \"size\"}}, ...]}}`: {e}"
        ))
    })?;
    let mut blobs = Vec::new();
    for f in &list.files {
        file_path(&f.path)?;
        blobs.push(sha256(&f.sha256)?);
    }
    blobs.sort_unstable();
    blobs.dedup();
    let mut missing = Vec::new();
    for sha in blobs {
        if !present(&state, &sha).await? {
            missing.push(sha);
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::MissingBlobs(missing));
    }
    state
        .blocking(move |s| keep_file_list(s, &project, &run, &list.files))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes `files` the file list of run `run` of `project`, in place of the
/// one before.
pub(crate) fn keep_file_list(
    s: &AppState,
    project: &str,
    run: &RunId,
    files: &[FileEntry],
) -> Result<(), ApiError> {
    let mut lease = s.inner.db.take()?;
    let mut tx = lease.client().transaction()?;
    let run = run.to_string();
    tx.execute(
        "DELETE FROM lab_team.files WHERE project = $1 AND run = $2",
        &[&project, &run],
    )?;
    for f in files {
        tx.execute(
            "INSERT INTO lab_team.files (project, run, path, sha256, size) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project, run, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size",
            &[&project, &run, &f.path, &f.sha256.to_ascii_lowercase(), &(f.size as i64)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// `GET /projects/{project}/runs/{run}/files`: the run's file list.
pub(crate) async fn get_files(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    project_name(&project)?;
    caller.may(Role::Reader, &project)?;
    let run = run_id(&run)?;
    let files = state
        .blocking(move |s| {
            if !project_exists(s, &project)? {
                return Err(ApiError::NotFound(format!("no project `{project}`")));
            }
            let mut lease = s.inner.db.take()?;
            let rows = lease.client().query(
                "SELECT path, sha256, size FROM lab_team.files WHERE project = $1 AND run = $2 ORDER BY path",
                &[&project, &run.to_string()],
            )?;
            Ok(rows
                .iter()
                .map(|r| FileEntry {
                    path: r.get(0),
                    sha256: r.get(1),
                    size: r.get::<_, i64>(2) as u64,
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({ "files": files })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_stay_in_the_run() {
        file_path("artifacts/code/train.py").unwrap();
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(file_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_cover_the_blob() {
        let up = Upload {
            size: 10,
            part_size: 4,
        };
        assert_eq!(up.parts(), 3);
        assert_eq!((up.part_len(1), up.part_len(2), up.part_len(3)), (4, 4, 2));
        let empty = Upload {
            size: 0,
            part_size: 4,
        };
        assert_eq!((empty.parts(), empty.part_len(1)), (1, 0));
    }
}
