//! Receiving journals: byte ranges from an offset, checked, kept in the
//! object store and folded into the index, for a run's journal and for its
//! meta journal (the edits made to it after it started, folded after the
//! journal); heartbeats; a client's word that its run crashed.
//!
//! A request that changes a run's journal holds a session advisory lock on
//! the run (on a connection of its own) while it compares, stores and
//! folds, so two requests for one run, on one server or two, take turns.
//! The stretch is stored before it is folded, and answered only once both
//! are done: a server killed in between has acknowledged nothing, and the
//! client's retry stores the same offset again.

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, TryStreamExt as _};
use lab_store::index::{
    FoldIndex as _, Indexed, check_received, check_received_meta, fold_received, fold_received_meta,
};
use lab_types::RunId;
use object_store::ObjectStoreExt as _;
use serde_json::{Value as J, json};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::indexes::IndexLease;
use crate::store::Journal;
use crate::tokens::{Caller, Role, valid_project};
use crate::{AppState, MAX_JOURNAL_BODY};

/// A project name from the path, checked.
pub(crate) fn project_name(project: &str) -> Result<(), ApiError> {
    if valid_project(project) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "a project name is 1 to 100 letters, digits, `.`, `_` or `-`: got `{project}`"
        )))
    }
}

/// A run's full id from the path.
pub(crate) fn run_id(run: &str) -> Result<RunId, ApiError> {
    let lower = run.to_ascii_lowercase();
    if lower.len() != 32 || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(format!(
            "a run is named by its full id, 32 hexadecimal digits: got `{run}`"
        )));
    }
    lower
        .parse()
        .map_err(|e: lab_types::ParseRunIdError| ApiError::BadRequest(e.to_string()))
}

/// Reads a body of at most `limit` bytes; a longer one is refused with 413
/// without reading it all.
pub(crate) async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::TooLarge(format!(
            "{what} may be at most {limit} bytes\n\nhint: send it in several requests"
        ))
    };
    // Room for the whole body at once when its length is told (and within
    // the limit), rather than growing by doubling to twice its size.
    let told = axum::body::HttpBody::size_hint(&body).upper().unwrap_or(0);
    if told > limit as u64 {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut out = Vec::with_capacity(told as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// The value of query parameter `name`, if given.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The advisory lock of run `run` of `project`: one key, from a hash.
fn lock_key(project: &str, run: &RunId) -> i64 {
    let digest = Sha256::digest(format!("lab journal\0{project}\0{run}"));
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(key)
}

/// Notes that the client of run `run` is alive.
fn touch(client: &mut postgres::Client, project: &str, run: &RunId) -> Result<(), ApiError> {
    client.execute(
        "INSERT INTO lab_team.heartbeats (project, run, seen_nanos) VALUES ($1, $2, $3)
         ON CONFLICT (project, run) DO UPDATE SET seen_nanos = greatest(lab_team.heartbeats.seen_nanos, excluded.seen_nanos)",
        &[&project, &run.to_string(), &lab_types::now_nanos()],
    )?;
    // Heard from again: no longer out of reach.
    client.execute(
        "WITH back AS (
             UPDATE lab.runs r SET status = 'running'
             FROM lab.projects p
             WHERE p.name = $1 AND r.project_id = p.id AND r.id = $2 AND r.status = 'unreachable'
             RETURNING 1
         )
         UPDATE lab.projects SET generation = generation + 1
         WHERE name = $1 AND EXISTS (SELECT 1 FROM back)",
        &[&project, &run.to_string()],
    )?;
    Ok(())
}

/// Runs `f` holding run `run`'s lock.
pub(crate) fn locked<T>(
    s: &AppState,
    project: &str,
    run: &RunId,
    f: impl FnOnce(&mut postgres::Client) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let key = lock_key(project, run);
    let mut lease = s.inner.db.take()?;
    lease
        .client()
        .execute("SELECT pg_advisory_lock($1)", &[&key])?;
    let result = f(lease.client());
    if lease
        .client()
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .is_err()
    {
        // Closing the session lets the lock go.
        lease.discard();
    }
    result
}

/// How many bytes of run `run`'s journal `journal` the index holds: its
/// length on the server. Runs are found by full id: two machines' runs may
/// share a short id.
pub(crate) fn held(
    lease: &mut IndexLease<'_>,
    journal: Journal,
    run: &RunId,
) -> Result<u64, ApiError> {
    let indexed = lease.with(|i| i.indexed_id(&run.to_string()))?;
    Ok(length_of(journal, indexed.as_ref()))
}

/// How many bytes of journal `journal` of a run the index holds, from what
/// it holds of the run (0 when nothing).
fn length_of(journal: Journal, indexed: Option<&Indexed>) -> u64 {
    indexed.map_or(0, |i| match journal {
        Journal::Run => i.offset,
        Journal::Meta => i.meta_len,
    })
}

/// Edits sent for run `run`, whose journal's Start record the server does
/// not hold yet.
fn no_run(run: &RunId) -> ApiError {
    ApiError::NoRun(format!(
        "the server holds no journal of run `{run}` yet; its edits are taken once the journal's Start record is in\n\nhint: send the run's journal first, then its edits"
    ))
}

/// Whether project `project` is in the index (without making it).
pub(crate) fn project_exists(s: &AppState, project: &str) -> Result<bool, ApiError> {
    let mut lease = s.inner.db.take()?;
    Ok(lease
        .client()
        .query_opt("SELECT 1 FROM lab.projects WHERE name = $1", &[&project])?
        .is_some())
}

/// `GET .../journal/length`.
pub(crate) async fn length(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    length_in(Journal::Run, state, caller, path).await
}

/// `GET .../meta/length`.
pub(crate) async fn meta_length(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    length_in(Journal::Meta, state, caller, path).await
}

/// How many bytes of run `run`'s journal `journal` the server holds.
async fn length_in(
    journal: Journal,
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    project_name(&project)?;
    caller.may(Role::Reader, &project)?;
    let run = run_id(&run)?;
    let length = state
        .blocking(move |s| {
            if !project_exists(s, &project)? {
                return Ok(0);
            }
            let mut index = s.inner.indexes.take(&project)?;
            held(&mut index, journal, &run)
        })
        .await?;
    Ok(Json(json!({ "length": length })))
}

/// `PUT .../journal?offset=N`: the journal's bytes from offset N.
pub(crate) async fn put_journal(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    query: RawQuery,
    body: Body,
) -> Result<Json<J>, ApiError> {
    put_in(Journal::Run, state, caller, path, query, body).await
}

/// `PUT .../meta?offset=N`: the meta journal's bytes (the run's edits)
/// from offset N.
pub(crate) async fn put_meta(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    query: RawQuery,
    body: Body,
) -> Result<Json<J>, ApiError> {
    put_in(Journal::Meta, state, caller, path, query, body).await
}

/// Takes the bytes of run `run`'s journal `journal` from offset N.
async fn put_in(
    journal: Journal,
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<J>, ApiError> {
    project_name(&project)?;
    caller.may(Role::Writer, &project)?;
    let run = run_id(&run)?;
    let offset = match query_param(query.as_deref(), "offset") {
        Some(text) => text.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`offset` must be a whole number of bytes: got `{text}`"
            ))
        })?,
        None => {
            return Err(ApiError::BadRequest(format!(
                "`offset` is required: the {} offset of the body's first byte",
                journal.what()
            )));
        }
    };
    let what = format!("a {} stretch", journal.what());
    let bytes = read_body(body, MAX_JOURNAL_BODY, &what).await?;
    let handle = tokio::runtime::Handle::current();
    let length = state
        .blocking(move |s| {
            // Edits of a project the server does not have are of no run it
            // holds: the project is not made for them.
            if journal == Journal::Meta && !project_exists(s, &project)? {
                return Err(no_run(&run));
            }
            locked(s, &project, &run, |client| {
                // An edit says nothing of whether the run's process lives:
                // it may be made long after the run ended.
                if journal == Journal::Run {
                    touch(client, &project, &run)?;
                }
                receive(s, &handle, client, journal, &project, &run, offset, &bytes)
            })
        })
        .await?;
    Ok(Json(json!({ "length": length })))
}

/// Compares, checks, stores and folds a stretch of run `run`'s journal
/// `journal`, holding the run's lock (on `client`'s session); returns the
/// journal's length on the server after it. Edits are taken only for a run
/// whose journal's Start record is folded: they are applied to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn receive(
    s: &AppState,
    handle: &tokio::runtime::Handle,
    client: &mut postgres::Client,
    journal: Journal,
    project: &str,
    run: &RunId,
    offset: u64,
    bytes: &Bytes,
) -> Result<u64, ApiError> {
    let bucket = &s.inner.bucket;
    let mut lease = s.inner.indexes.take(project)?;
    let run_text = run.to_string();
    let indexed = lease.with(|i| i.indexed_id(&run_text))?;
    if journal == Journal::Meta && indexed.is_none() {
        return Err(no_run(run));
    }
    let length = length_of(journal, indexed.as_ref());
    if offset > length {
        return Err(ApiError::Gap { length });
    }
    let end_of_body = offset + bytes.len() as u64;
    if offset < length {
        // The overlap must be what the server holds: a retry.
        let upto = length.min(end_of_body);
        let held = handle
            .block_on(bucket.journal_range(journal, project, &run_text, length, offset, upto))?;
        let sent = &bytes[..(upto - offset) as usize];
        if let Some(at) = held.iter().zip(sent).position(|(a, b)| a != b) {
            return Err(ApiError::JournalConflict {
                message: format!(
                    "byte {} of the {} of run `{run}` differs from the one the server holds; nothing was stored",
                    offset + at as u64,
                    journal.what()
                ),
                length,
            });
        }
    }
    if end_of_body <= length {
        return Ok(length);
    }
    let new = bytes.slice((length - offset) as usize..);
    let checked = match journal {
        Journal::Run => check_received(run, length, &new),
        Journal::Meta => check_received_meta(length, &new),
    };
    let end = checked.map_err(|e| ApiError::BadFrame {
        message: format!("{e}; nothing was stored"),
        length,
    })?;
    if end == length {
        // Only the start of a frame: it comes again, whole.
        return Ok(length);
    }
    let kept = new.slice(..(end - length) as usize);
    handle.block_on(bucket.store.put(
        &bucket.stretch(journal, project, &run_text, length),
        kept.clone().into(),
    ))?;
    match journal {
        Journal::Run => {
            let mut edits = held_edits(s, handle, project, &run_text);
            lease.with(|index| fold_received(index, run, length, &kept, false, &mut edits))?;
            drop(lease);
            // Stored and folded: a merge that fails costs reading speed,
            // not data, and is tried again at the next stretch.
            if let Err(e) =
                crate::compact::stretch_added(s, handle, client, project, &run_text, end)
            {
                eprintln!(
                    "lab server: merging the journal of run `{run}` of project `{project}` failed: {e}"
                );
            }
        }
        Journal::Meta => {
            // Every edit is applied again (they are few): the whole of it.
            let mut meta = handle.block_on(bucket.journal_range(
                Journal::Meta,
                project,
                &run_text,
                length,
                0,
                length,
            ))?;
            meta.extend_from_slice(&kept);
            lease.with(|index| fold_received_meta(index, run, &meta))?;
        }
    }
    Ok(end)
}

/// What the fold of a journal stretch asks for when the stretch sets what
/// the run's edits set: the first `n` bytes of run `run`'s meta journal,
/// read from the object store.
pub(crate) fn held_edits<'a>(
    s: &'a AppState,
    handle: &'a tokio::runtime::Handle,
    project: &'a str,
    run: &'a str,
) -> impl FnMut(u64) -> Result<Vec<u8>, lab_store::Error> + 'a {
    move |n| {
        handle
            .block_on(
                s.inner
                    .bucket
                    .journal_range(Journal::Meta, project, run, n, 0, n),
            )
            .map_err(|e| lab_store::Error::OtherIndex {
                database: "object store",
                message: e.to_string(),
                kind: lab_store::ErrorKind::Storage,
            })
    }
}

/// `GET .../journal`: the journal's bytes as the server holds them (for a
/// reader that rebuilds an index, or checks a copy).
pub(crate) async fn get_journal(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Response, ApiError> {
    get_in(Journal::Run, state, caller, path).await
}

/// `GET .../meta`: the meta journal's bytes (the run's edits) as the
/// server holds them.
pub(crate) async fn get_meta(
    state: State<AppState>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
) -> Result<Response, ApiError> {
    get_in(Journal::Meta, state, caller, path).await
}

/// The bytes of run `run`'s journal `journal` as the server holds them.
async fn get_in(
    journal: Journal,
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    project_name(&project)?;
    caller.may(Role::Reader, &project)?;
    let run = run_id(&run)?;
    let (project2, run2) = (project.clone(), run);
    let length = state
        .blocking(move |s| {
            if !project_exists(s, &project2)? {
                return Err(ApiError::NotFound(format!("no project `{project2}`")));
            }
            let mut index = s.inner.indexes.take(&project2)?;
            held(&mut index, journal, &run2)
        })
        .await?;
    if length == 0 {
        return Err(ApiError::NotFound(match journal {
            Journal::Run => format!("the server holds nothing of run `{run}`"),
            Journal::Meta => format!("the server holds no edits of run `{run}`"),
        }));
    }
    let bucket = state.inner.bucket.clone();
    let run_text = run.to_string();
    let paths: Vec<_> = bucket
        .stretches(journal, &project, &run_text, length)
        .await?
        .into_iter()
        .map(|(start, _)| bucket.stretch(journal, &project, &run_text, start))
        .collect();
    let store = bucket.store.clone();
    let stream = futures_util::stream::iter(paths)
        .then(move |p| {
            let store = store.clone();
            async move {
                store
                    .get(&p)
                    .await
                    .map(object_store::GetResult::into_stream)
            }
        })
        .try_flatten();
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST .../heartbeat`: the client is alive.
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    project_name(&project)?;
    caller.may(Role::Writer, &project)?;
    let run = run_id(&run)?;
    state
        .blocking(move |s| {
            let mut lease = s.inner.db.take()?;
            touch(lease.client(), &project, &run)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../crashed`: the client found its run crashed; the server shows
/// it so, unless an End record says otherwise.
pub(crate) async fn crashed(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, run)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    project_name(&project)?;
    caller.may(Role::Writer, &project)?;
    let run = run_id(&run)?;
    state
        .blocking(move |s| {
            locked(s, &project, &run, |client| {
                touch(client, &project, &run)?;
                let mut lease = s.inner.indexes.take(&project)?;
                let length = held(&mut lease, Journal::Run, &run)?;
                if length == 0 {
                    return Err(ApiError::NotFound(format!(
                        "the server holds nothing of run `{run}`; send its journal first"
                    )));
                }
                let run_text = run.to_string();
                let handle = tokio::runtime::Handle::current();
                let mut edits = held_edits(s, &handle, &project, &run_text);
                lease.with(|index| fold_received(index, &run, length, &[], true, &mut edits))?;
                Ok(())
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
