//! A run's media: listed by `/media` in the order keys were first logged,
//! served by the artifact-file route by the path it gives, without
//! shadowing an artifact that happens to be called `media`.

use axum::http::StatusCode;
use lab_sdk::media::{PixelType, RawImage};
use lab_store::Project;
use lab_types::{Status, Value};

use super::{SDK, error_code, get, start, state};

#[tokio::test]
async fn media_are_listed_and_served_by_their_path() {
    let guard = SDK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let (project, _) = Project::create(dir.path()).unwrap();
    let run = start(&project, "media");
    let pixels: Vec<u8> = (0..4 * 6 * 3).map(|i| (i * 3) as u8).collect();
    let image = RawImage {
        height: 4,
        width: 6,
        channels: 3,
        pixel: PixelType::U8,
        data: &pixels,
    };
    assert_eq!(
        run.log_image("samples", &image, None).unwrap(),
        ("media/samples/0.png".to_owned(), 0)
    );
    run.log_table(
        "preds",
        &["x".into(), "y".into()],
        &[vec![Value::Int(1), Value::Float(f64::INFINITY)]],
        Some(7),
    )
    .unwrap();
    run.log_image("samples", &image, Some(5)).unwrap();
    // Logged again at step 0: the later image replaces the first.
    run.log_image("samples", &image, Some(0)).unwrap();
    // An artifact whose name is `media` keeps its own files.
    let src = dir.path().join("media-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("notes.txt"), "an artifact").unwrap();
    run.log_artifact("media", &src).unwrap();
    let id = run.id().to_string();
    run.end(Status::Finished, None).unwrap();
    assert!(lab_sdk::wait_for_background().is_empty());
    drop(guard);

    let s = state(&project, None);
    let list = get(&s, &format!("/api/v1/runs/{id}/media")).await;
    assert_eq!(list.status, StatusCode::OK);
    let json = list.json();
    let keys = json["media"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{json}");
    assert_eq!(keys[0]["key"], "samples");
    assert_eq!(keys[0]["kind"], "image");
    let steps: Vec<i64> = keys[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, vec![0, 5]);
    let first = &keys[0]["items"][0];
    assert_eq!(first["path"], "media/samples/0.png");
    assert_eq!(
        (first["width"].as_i64(), first["height"].as_i64()),
        (Some(6), Some(4))
    );
    assert_eq!(keys[1]["key"], "preds");
    assert_eq!(keys[1]["kind"], "table");
    assert_eq!(keys[1]["items"][0]["path"], "media/preds/7.json");
    assert_eq!(
        (
            keys[1]["items"][0]["width"].as_i64(),
            keys[1]["items"][0]["height"].as_i64()
        ),
        (Some(2), Some(1))
    );

    let png = get(
        &s,
        &format!("/api/v1/runs/{id}/artifacts/media/samples/0.png"),
    )
    .await;
    assert_eq!(png.status, StatusCode::OK);
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(png.header("content-type"), "image/png");
    assert_eq!(
        png.body.len() as i64,
        first["bytes"].as_i64().unwrap(),
        "the listed size is the file's"
    );
    let table = get(
        &s,
        &format!("/api/v1/runs/{id}/artifacts/media/preds/7.json"),
    )
    .await;
    assert_eq!(
        table.json(),
        serde_json::json!({"columns": ["x", "y"], "rows": [[1, "Infinity"]]})
    );
    let artifact = get(&s, &format!("/api/v1/runs/{id}/artifacts/media/notes.txt")).await;
    assert_eq!(artifact.status, StatusCode::OK);
    assert_eq!(artifact.body, b"an artifact");
    // A file of the run's folder that is no media file is not served.
    let journal = get(
        &s,
        &format!("/api/v1/runs/{id}/artifacts/media/../journal.lab"),
    )
    .await;
    assert_ne!(journal.status, StatusCode::OK);
    let missing = get(
        &s,
        &format!("/api/v1/runs/{id}/artifacts/media/samples/9.png"),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "not_found");

    let none = get(&s, "/api/v1/runs/ffffffff/media").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}
