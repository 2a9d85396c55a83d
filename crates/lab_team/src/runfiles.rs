//! A run's files as `lab ui` serves them, read from the run's file list and
//! the blobs it names: `GET .../artifacts` (the list), `GET .../media` (the
//! run's images and tables, from the index), `GET .../artifacts/{path}`
//! (an artifact's or a media file's bytes) and `GET .../models/{name}` (the
//! bytes, with `lab ui`'s safe headers, `Range` honoured).

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value as J, json};

use crate::AppState;
use crate::blobs::{FileEntry, send_blob};
use crate::error::ApiError;
use crate::read::readable;
use crate::tokens::Caller;

/// The files of run `id` (a short or full id) of `project` under `prefix`
/// of its folder (`artifacts/`, or the whole path of one file), with the
/// run's index entry.
fn files_of(
    s: &AppState,
    project: &str,
    id: &str,
    prefix: &str,
) -> Result<(lab_store::RunInfo, Vec<FileEntry>), ApiError> {
    let mut lease = s.inner.indexes.take(project)?;
    let run = lease.with(|i| i.run(id))?;
    drop(lease);
    let mut db = s.inner.db.take()?;
    let rows = db.client().query(
        "SELECT path, sha256, size FROM lab_team.files
         WHERE project = $1 AND run = $2 AND starts_with(path, $3) ORDER BY path",
        &[&project, &run.id.to_string(), &prefix],
    )?;
    let files = rows
        .iter()
        .map(|r| FileEntry {
            path: r.get(0),
            sha256: r.get(1),
            size: r.get::<_, i64>(2).cast_unsigned(),
        })
        .collect();
    Ok((run, files))
}

/// `GET /projects/{project}/runs/{id}/artifacts`: as `lab ui`'s, each
/// file's path under the run's artifacts folder.
pub(crate) async fn artifacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let files = state
        .blocking(move |s| Ok(files_of(s, &project, &id, "artifacts/")?.1))
        .await?;
    let files: Vec<J> = files
        .into_iter()
        .filter_map(|f| {
            let rel = f.path.strip_prefix("artifacts/")?.to_owned();
            let artifact = rel.split('/').next().unwrap_or_default().to_owned();
            Some(json!({ "path": rel, "size": f.size, "artifact": artifact }))
        })
        .collect();
    Ok(Json(json!({ "files": files })))
}

/// `GET /projects/{project}/runs/{id}/media`: as `lab ui`'s, the run's
/// media by key, each key's files by step.
pub(crate) async fn media(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<J>, ApiError> {
    readable(&state, &caller, &project).await?;
    let keys = state
        .blocking(move |s| {
            let mut lease = s.inner.indexes.take(&project)?;
            lease.with(|i| {
                let run = i.run(&id)?;
                i.media(&run.id)
            })
        })
        .await?;
    let media: Vec<J> = keys
        .into_iter()
        .map(|k| {
            let items: Vec<J> = k
                .items
                .into_iter()
                .map(|i| json!({"step": i.step, "path": i.path, "width": i.width, "height": i.height, "bytes": i.bytes}))
                .collect();
            json!({"key": k.key, "kind": k.kind.as_str(), "items": items})
        })
        .collect();
    Ok(Json(json!({ "media": media })))
}

/// `GET /projects/{project}/runs/{id}/artifacts/{path}`: one file's bytes:
/// a media file's by the path `.../media` gives (`media/<key>/<step>.png`,
/// relative to the run's folder), else an artifact's.
pub(crate) async fn artifact_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    readable(&state, &caller, &project).await?;
    let artifact = format!("artifacts/{path}");
    // Only a run's artifacts, models and media are sent to the server: a
    // file at `media/...` of the run's folder is a media file.
    let media = path.starts_with("media/").then(|| path.clone());
    let wanted = artifact.clone();
    let (run, files) = state
        .blocking(move |s| {
            let (run, mut files) = files_of(s, &project, &id, &wanted)?;
            if let Some(media) = media {
                files.extend(files_of(s, &project, &id, &media)?.1);
            }
            Ok((run, files))
        })
        .await?;
    let whole = if path.starts_with("media/") && files.iter().any(|f| f.path == path) {
        path.clone()
    } else {
        artifact
    };
    let Some(file) = files.into_iter().find(|f| f.path == whole) else {
        return Err(ApiError::NotFound(format!(
            "run `{}` has no artifact file `{path}` on the server",
            run.short_id
        )));
    };
    let name = path.rsplit('/').next().unwrap_or(&path);
    send_blob(&state, &file.sha256, &headers, Some((name, false))).await
}

/// `GET /projects/{project}/runs/{id}/models/{name}`: a model's file, as a
/// download.
pub(crate) async fn model_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((project, id, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    readable(&state, &caller, &project).await?;
    let (run, files) = state
        .blocking(move |s| files_of(s, &project, &id, "models/"))
        .await?;
    let model = run.models.iter().find(|m| m.name == name).ok_or_else(|| {
        ApiError::NotFound(format!("run `{}` has no model `{name}`", run.short_id))
    })?;
    let Some(file) = files.into_iter().find(|f| f.path == model.path) else {
        return Err(ApiError::NotFound(format!(
            "the file of model `{name}` of run `{}` has not reached the server",
            run.short_id
        )));
    };
    let name = model.path.rsplit('/').next().unwrap_or(&model.path);
    send_blob(&state, &file.sha256, &headers, Some((name, true))).await
}
