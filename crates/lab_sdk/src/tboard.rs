//! TensorBoard scalars as metrics: the event files of a logged artifact, and
//! the names their tags take (shared with `lab import tensorboard`).
//!
//! A scalar of tag `T` in an event file in folder `F` (relative to the
//! artifact, or to the run folder of an import) becomes metric `F/T`, or `T`
//! for a file at the top: Keras's `TensorBoard` callback writes `train/` and
//! `validation/` folders, so its `epoch_loss` becomes `train/epoch_loss` and
//! `validation/epoch_loss`. A name the run already has from another source
//! (a `log_metric` call, an earlier artifact) gets a `tb/` prefix instead, so
//! nothing the user logged is mixed with a file's points. A name Lab refuses
//! (control characters, too long) is made valid ([`valid_metric_name`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The prefix of a TensorBoard metric whose name the run already had.
pub const COLLISION_PREFIX: &str = "tb/";

/// The metric name of tag `tag` in folder `folder` (relative, `/`-separated
/// whatever the platform), before it is made valid.
#[must_use]
pub fn metric_name(folder: &Path, tag: &str) -> String {
    let folder: Vec<String> = folder
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if folder.is_empty() {
        tag.to_owned()
    } else {
        format!("{}/{tag}", folder.join("/"))
    }
}

/// `name` if Lab accepts it as a metric name; else a valid name close to it
/// (see [`valid_key`](crate::import::valid_key)).
#[must_use]
pub fn valid_metric_name(name: &str) -> String {
    crate::import::valid_key(name).unwrap_or_else(|| name.to_owned())
}

/// The points of one metric, in file order: `(step, time_nanos, value)`.
pub type Points = Vec<(i64, i64, f64)>;

/// What a tree of event files holds, as metrics.
#[derive(Debug, Default)]
pub struct TreeScalars {
    /// Metric name (before any collision prefix) to its points, in the order
    /// the names were first met.
    pub metrics: Vec<(String, Points)>,
    /// Event files read (damaged ones included).
    pub files: usize,
    /// Each unreadable or damaged file, with what is wrong, path last.
    pub problems: Vec<String>,
    /// Tags whose name Lab refused, with the name they took.
    pub renamed: Vec<(String, String)>,
    /// Points with a negative step, left out (Lab's steps start at 0).
    pub negative_steps: u64,
    /// The smallest and largest wall time of any point, in nanoseconds.
    pub first_nanos: Option<i64>,
    pub last_nanos: Option<i64>,
}

/// Seconds since the epoch as nanoseconds, saturating; NaN as 0.
#[must_use]
pub fn wall_nanos(seconds: f64) -> i64 {
    // `as` saturates and turns NaN into 0.
    (seconds * 1e9) as i64
}

/// Reads every event file under `dir` into metrics.
pub fn read_tree(dir: &Path) -> Result<TreeScalars, lab_tboard::ReadError> {
    Ok(read_files(dir, &lab_tboard::event_files(dir)?))
}

/// Reads the event files `files`, all under `base`, into metrics named after
/// their folders relative to `base`.
#[must_use]
pub fn read_files(base: &Path, files: &[PathBuf]) -> TreeScalars {
    let mut out = TreeScalars::default();
    // Valid metric names to their place in `out.metrics`.
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for path in files {
        out.files += 1;
        let folder = path
            .parent()
            .and_then(|p| p.strip_prefix(base).ok())
            .unwrap_or_else(|| Path::new(""));
        // This file's tags to their place: one name made per tag, not per point.
        let mut by_tag: HashMap<String, usize> = HashMap::new();
        let read = lab_tboard::visit_file(path, |tag, step, wall_time, value| {
            if step < 0 {
                out.negative_steps += 1;
                return;
            }
            let i = if let Some(&i) = by_tag.get(tag) {
                i
            } else {
                let raw = metric_name(folder, tag);
                let name = valid_metric_name(&raw);
                if name != raw && !out.renamed.iter().any(|(r, _)| *r == raw) {
                    out.renamed.push((raw, name.clone()));
                }
                // Two raw names may become one valid name: they share it.
                let i = *by_name.entry(name.clone()).or_insert_with(|| {
                    out.metrics.push((name, Vec::new()));
                    out.metrics.len() - 1
                });
                by_tag.insert(tag.to_owned(), i);
                i
            };
            let nanos = wall_nanos(wall_time);
            out.first_nanos = Some(out.first_nanos.map_or(nanos, |f| f.min(nanos)));
            out.last_nanos = Some(out.last_nanos.map_or(nanos, |l| l.max(nanos)));
            out.metrics[i].1.push((step, nanos, value));
        });
        match read {
            Ok(read) => {
                if let Some(d) = read.damage.first() {
                    let more = read.damage.len() - 1;
                    let more = if more > 0 {
                        format!(" (and {more} more damaged spot(s))")
                    } else {
                        String::new()
                    };
                    out.problems.push(format!(
                        "{d}{more}; its other scalars were kept: {}",
                        path.display()
                    ));
                }
            }
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    out
}

/// One run of a TensorBoard log folder: a folder directly under it holding
/// event files at any depth, or the log folder itself for the event files
/// directly in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRun {
    /// The folder's name (the log folder's own name for its top files).
    pub name: String,
    pub dir: PathBuf,
    /// Its event files, sorted by path.
    pub files: Vec<PathBuf>,
}

/// The runs of the TensorBoard log folder `dir`, sorted by name: `logs/a/train`
/// and `logs/a/validation` both belong to run `a`.
pub fn log_runs(dir: &Path) -> Result<Vec<LogRun>, lab_tboard::ReadError> {
    let own_name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tensorboard".to_owned());
    let mut runs: Vec<LogRun> = Vec::new();
    for path in lab_tboard::event_files(dir)? {
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        let mut parts = rel.components();
        let first = parts.next();
        let (name, run_dir) = match (first, parts.next()) {
            (Some(first), Some(_)) => (
                first.as_os_str().to_string_lossy().into_owned(),
                dir.join(first),
            ),
            _ => (own_name.clone(), dir.to_owned()),
        };
        match runs.iter_mut().find(|r| r.dir == run_dir) {
            Some(r) => r.files.push(path),
            None => runs.push(LogRun {
                name,
                dir: run_dir,
                files: vec![path],
            }),
        }
    }
    runs.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(runs)
}

/// A fingerprint of a run's event files: the SHA-256 of each file's path
/// (relative to the run's folder), size and SHA-256, as `sha256:<hex>`.
pub fn fingerprint(run: &LogRun) -> std::io::Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut all = Sha256::new();
    for path in &run.files {
        let rel = path.strip_prefix(&run.dir).unwrap_or(path);
        let (size, sha) = crate::hash::file(path)?;
        all.update(rel.to_string_lossy().as_bytes());
        all.update([0]);
        all.update(size.to_le_bytes());
        all.update(sha.as_bytes());
    }
    Ok(format!("sha256:{}", crate::hash::hex(&all.finalize())))
}

/// The notes a tree's reading leaves for the user, each on its own.
#[must_use]
pub fn notes(tree: &TreeScalars) -> Vec<String> {
    let mut notes: Vec<String> = tree
        .problems
        .iter()
        .map(|p| format!("a TensorBoard event file was skipped or cut short: {p}"))
        .collect();
    if !tree.renamed.is_empty() {
        let shown: Vec<String> = tree
            .renamed
            .iter()
            .take(5)
            .map(|(from, to)| format!("{from:?} → `{to}`"))
            .collect();
        let more = tree.renamed.len().saturating_sub(5);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        notes.push(format!(
            "{} TensorBoard tag(s) are not valid Lab metric names and were renamed: {}{more}",
            tree.renamed.len(),
            shown.join(", ")
        ));
    }
    if tree.negative_steps > 0 {
        notes.push(format!(
            "{} TensorBoard scalar(s) with a negative step were left out (Lab's steps start at 0)",
            tree.negative_steps
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_KEY_LEN;

    #[test]
    fn names_take_the_folder_as_a_prefix() {
        assert_eq!(metric_name(Path::new(""), "loss"), "loss");
        assert_eq!(
            metric_name(Path::new("train"), "epoch_loss"),
            "train/epoch_loss"
        );
        assert_eq!(metric_name(Path::new("a/b"), "x/y"), "a/b/x/y");
    }

    #[test]
    fn a_log_folder_has_a_run_per_folder_below_it_and_one_for_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        for f in [
            "events.out.tfevents.1.h",
            "run1/train/events.out.tfevents.1.h",
            "run1/validation/events.out.tfevents.2.h",
            "run2/events.out.tfevents.1.h",
            "run3/notes.txt",
        ] {
            let path = logs.join(f);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(&path, b"").unwrap();
        }
        let runs = log_runs(&logs).unwrap();
        let got: Vec<(&str, &Path, usize)> = runs
            .iter()
            .map(|r| (r.name.as_str(), r.dir.as_path(), r.files.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("logs", logs.as_path(), 1),
                ("run1", logs.join("run1").as_path(), 2),
                ("run2", logs.join("run2").as_path(), 1),
            ]
        );
        // The top run reads only its own files, not its subfolders'.
        let second = &runs[1];
        let before = fingerprint(second).unwrap();
        assert!(before.starts_with("sha256:"), "{before}");
        assert_eq!(fingerprint(second).unwrap(), before);
        fs_err::write(&second.files[0], b"more").unwrap();
        assert_ne!(fingerprint(second).unwrap(), before);
    }

    #[test]
    fn invalid_names_are_made_valid() {
        assert_eq!(valid_metric_name("loss"), "loss");
        assert_eq!(valid_metric_name("a\tb\u{202e}c"), "a_b_c");
        assert_eq!(valid_metric_name(""), "_");
        assert_eq!(valid_metric_name("   "), "   _");
        let long = "é".repeat(200);
        let v = valid_metric_name(&long);
        assert!(v.len() <= MAX_KEY_LEN && v.chars().all(|c| c == 'é'), "{v}");
        assert_eq!(wall_nanos(1.5), 1_500_000_000);
        assert_eq!(wall_nanos(f64::NAN), 0);
        assert_eq!(wall_nanos(f64::INFINITY), i64::MAX);
    }
}
