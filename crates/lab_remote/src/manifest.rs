//! What a pushed project looks like in a bucket.
//!
//! ```text
//! <project>/manifest.json        every file: path, size, SHA-256, mode; every folder; each run's id
//! <project>/blobs/<sha256>       a file's bytes, named by their SHA-256 (hex)
//! ```
//!
//! Files are stored by content: a file already in the bucket (unchanged,
//! renamed, or a copy of another) is never sent again, and a push whose
//! files all arrived is made visible at once by writing the manifest last.
//! The manifest is the truth of what a project holds; a blob no manifest
//! names is a leftover of an interrupted or pruned push.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The manifest format this Lab writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// The largest manifest read: some 2 million files.
pub const MANIFEST_MAX_BYTES: usize = 256 << 20;

/// One file of a pushed project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its path in the project, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its permission bits (`0o644`, `0o755`, ...).
    pub mode: u32,
}

/// The files and folders of a pushed project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The project's name in the bucket.
    pub project: String,
    /// Every file, sorted by path.
    pub files: Vec<Entry>,
    /// Every folder, sorted (so that empty folders come back too).
    pub dirs: Vec<String>,
    /// The full id of the run in each run folder (`.lab/runs/<short id>`),
    /// by short id: two copies of a project can make different runs with
    /// the same short id, and a push must not replace one with the other
    /// unknowingly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runs: BTreeMap<String, String>,
}

/// The key of a project's manifest.
#[must_use]
pub fn manifest_key(project: &str) -> String {
    format!("{project}/manifest.json")
}

/// The prefix under which a project's blobs are.
#[must_use]
pub fn blobs_prefix(project: &str) -> String {
    format!("{project}/blobs")
}

/// The key of the blob holding the bytes whose SHA-256 is `sha256`.
#[must_use]
pub fn blob_key(project: &str, sha256: &str) -> String {
    format!("{project}/blobs/{sha256}")
}

/// Whether `text` is a SHA-256 as the manifest writes one.
#[must_use]
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `path` is a relative path that stays inside the folder it is
/// taken in: `/`-separated plain names, none empty, `.` or `..`.
#[must_use]
pub fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(['\0', '\\'])
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Manifest {
    /// Reads a manifest from the bucket, refusing anything `lab push` would
    /// not have written: another format, a path leaving the project, a path
    /// that is both a file and a folder, a bad hash.
    pub fn parse(bytes: &[u8], key: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::BadRemoteData(format!(
                "the manifest `{key}` is not one `lab push` writes: {why}"
            ))
        };
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(bad(format!(
                "format {}; this Lab reads format {MANIFEST_FORMAT}",
                m.format
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for e in &m.files {
            if !is_inside(&e.path) {
                return Err(bad(format!("the path `{}` leaves the project", e.path)));
            }
            if !is_sha256(&e.sha256) {
                return Err(bad(format!("`{}` has no valid SHA-256", e.path)));
            }
            if e.mode & !0o777 != 0 {
                return Err(bad(format!("`{}` has the mode {:o}", e.path, e.mode)));
            }
            if !seen.insert(e.path.as_str()) {
                return Err(bad(format!("`{}` is listed twice", e.path)));
            }
        }
        for d in &m.dirs {
            if !is_inside(d) {
                return Err(bad(format!("the folder `{d}` leaves the project")));
            }
            if seen.contains(d.as_str()) {
                return Err(bad(format!("`{d}` is both a file and a folder")));
            }
        }
        for short in m.runs.keys() {
            if !is_inside(short) || short.contains('/') {
                return Err(bad(format!("the run folder `{short}` is not a plain name")));
            }
        }
        // A file may not sit where another file's folder is.
        for e in &m.files {
            let mut at = e.path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                if seen.contains(parent) {
                    return Err(bad(format!("`{parent}` is both a file and a folder")));
                }
                at = parent;
            }
        }
        Ok(m)
    }

    /// The manifest as JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        out.push(b'\n');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            path: path.into(),
            size: 1,
            sha256: "a".repeat(64),
            mode: 0o644,
        }
    }

    fn manifest(files: Vec<Entry>, dirs: Vec<&str>) -> Vec<u8> {
        Manifest {
            format: MANIFEST_FORMAT,
            project: "p".into(),
            files,
            dirs: dirs.into_iter().map(String::from).collect(),
            runs: BTreeMap::new(),
        }
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn hostile_manifests_are_refused() {
        Manifest::parse(&manifest(vec![entry("a/b.txt")], vec!["a"]), "k").unwrap();
        for path in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            "a//b",
            "./a",
            "a\\..\\b",
        ] {
            let e = Manifest::parse(&manifest(vec![entry(path)], vec![]), "k").unwrap_err();
            assert!(e.to_string().contains("leaves the project"), "{path}: {e}");
        }
        let e =
            Manifest::parse(&manifest(vec![entry("a"), entry("a/b")], vec![]), "k").unwrap_err();
        assert!(e.to_string().contains("both a file and a folder"), "{e}");
        let e = Manifest::parse(&manifest(vec![entry("a")], vec!["a"]), "k").unwrap_err();
        assert!(e.to_string().contains("both a file and a folder"), "{e}");
        let mut bad = entry("a");
        bad.sha256 = "../../x".into();
        assert!(Manifest::parse(&manifest(vec![bad], vec![]), "k").is_err());
        assert!(Manifest::parse(b"[]", "k").is_err());
    }
}
