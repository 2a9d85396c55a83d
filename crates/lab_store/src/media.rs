//! A run's media files (images, tables) as the index knows them: by key, in
//! the order each key was first logged, then by step.

use lab_types::{MediaKind, RunId};
use rusqlite::params;

use crate::{Error, Store};

/// One media file of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaItem {
    /// The step.
    pub step: i64,
    /// The file, relative to the run's folder (`media/<key>/<step>.png`).
    pub path: String,
    /// An image's width in pixels; a table's number of columns.
    pub width: u32,
    /// An image's height in pixels; a table's number of rows.
    pub height: u32,
    /// The file's size.
    pub bytes: u64,
}

/// Every file of one media key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaKey {
    /// The key.
    pub key: String,
    /// What its files hold (a writer keeps one kind to a key).
    pub kind: MediaKind,
    /// Its files, by step.
    pub items: Vec<MediaItem>,
}

/// Media rows, ordered by key (in the order first logged) then step, as
/// one [`MediaKey`] per key. For an index of another kind (a team server's)
/// to answer as this one does.
#[must_use]
pub fn group_media(rows: Vec<(String, MediaKind, MediaItem)>) -> Vec<MediaKey> {
    let mut out: Vec<MediaKey> = Vec::new();
    for (key, kind, item) in rows {
        match out.last_mut() {
            Some(last) if last.key == key => last.items.push(item),
            _ => out.push(MediaKey {
                key,
                kind,
                items: vec![item],
            }),
        }
    }
    out
}

impl Store {
    /// The media of run `id` (a full id), by key in the order first logged,
    /// each key's files by step.
    pub fn media(&self, id: &RunId) -> Result<Vec<MediaKey>, Error> {
        let id = id.to_string();
        self.read(|db| {
            let mut stmt = db.prepare_cached(
                "SELECT key, step, kind, path, width, height, bytes FROM media
                 WHERE run = (SELECT rid FROM runs WHERE id = ?1)
                 ORDER BY (SELECT MIN(seq) FROM media m WHERE m.run = media.run AND m.key = media.key), key, step",
            )?;
            let mut rows = stmt.query(params![id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let kind: String = r.get(2)?;
                out.push((
                    r.get(0)?,
                    MediaKind::parse(&kind).unwrap_or(MediaKind::Image),
                    MediaItem {
                        step: r.get(1)?,
                        path: r.get(3)?,
                        width: r.get(4)?,
                        height: r.get(5)?,
                        bytes: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    },
                ));
            }
            Ok(group_media(out))
        })
    }

    /// Whether `path` (relative to the run's folder) is one of run `id`'s
    /// media files.
    pub fn is_media_path(&self, id: &RunId, path: &str) -> Result<bool, Error> {
        let id = id.to_string();
        self.read(|db| {
            Ok(db
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM media WHERE run = (SELECT rid FROM runs WHERE id = ?1) AND path = ?2)",
                )?
                .query_row(params![id, path], |r| r.get(0))?)
        })
    }
}
