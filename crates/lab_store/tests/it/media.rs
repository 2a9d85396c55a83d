//! Media records folded into the index: in the order keys were first
//! logged, a step logged again replacing its row in place, across folds of
//! a live journal, a rebuild, and a run's removal.

use lab_store::MediaKey;
use lab_types::{MediaKind, Record, Status, now_nanos};

use super::{begin, new_project, open};

fn media(key: &str, step: i64, kind: MediaKind, width: u32) -> Record {
    let ext = if kind == MediaKind::Image {
        "png"
    } else {
        "json"
    };
    Record::Media {
        time_nanos: now_nanos(),
        key: key.into(),
        step,
        kind,
        path: format!("media/{key}/{step}.{ext}"),
        width,
        height: 2,
        bytes: 100 + u64::from(width),
    }
}

/// A key, its kind, and each of its steps with its width.
type Summed = (String, &'static str, Vec<(i64, u32)>);

/// Each key with its steps and the width of each.
fn summed(keys: &[MediaKey]) -> Vec<Summed> {
    keys.iter()
        .map(|k| {
            (
                k.key.clone(),
                k.kind.as_str(),
                k.items.iter().map(|i| (i.step, i.width)).collect(),
            )
        })
        .collect()
}

#[test]
fn media_fold_in_the_order_first_logged_and_a_step_again_replaces_its_row() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "media", now_nanos());
    w.rec(&media("samples", 0, MediaKind::Image, 1));
    w.rec(&media("preds", 0, MediaKind::Table, 3));
    let mut store = open(&project);
    store.refresh().unwrap();
    let id = w.id;
    assert_eq!(
        summed(&store.media(&id).unwrap()),
        vec![
            ("samples".into(), "image", vec![(0, 1)]),
            ("preds".into(), "table", vec![(0, 3)]),
        ]
    );
    // A later fold of the live journal: a new step, and step 0 again.
    w.rec(&media("samples", 1, MediaKind::Image, 4));
    w.rec(&media("samples", 0, MediaKind::Image, 9));
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    w.close();
    store.refresh().unwrap();
    let want = vec![
        ("samples".to_owned(), "image", vec![(0, 9), (1, 4)]),
        ("preds".to_owned(), "table", vec![(0, 3)]),
    ];
    assert_eq!(summed(&store.media(&id).unwrap()), want);
    assert!(store.is_media_path(&id, "media/samples/1.png").unwrap());
    assert!(!store.is_media_path(&id, "media/samples/2.png").unwrap());
    assert!(!store.is_media_path(&id, "journal.lab").unwrap());

    store.reindex().unwrap();
    assert_eq!(
        summed(&store.media(&id).unwrap()),
        want,
        "a rebuild reads the same"
    );

    store.remove_run(&id.to_string()).unwrap();
    std::fs::remove_dir_all(project.run_paths(&short).dir).unwrap();
    store.refresh().unwrap();
    assert!(store.media(&id).unwrap().is_empty());
}
