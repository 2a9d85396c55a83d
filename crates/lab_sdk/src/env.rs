//! The slow facts about a run's environment: git state and installed
//! packages. Gathered on a background thread so the run starts at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lab_types::Value;
use lab_types::fields::attr;

/// What to look at.
#[derive(Clone, Debug, Default)]
pub struct EnvRequest {
    /// A folder inside the git work tree of the script, if any.
    pub git_dir: Option<PathBuf>,
    /// Folders to scan for installed distributions (Python's `sys.path`).
    pub site_dirs: Vec<PathBuf>,
}

impl EnvRequest {
    /// The attributes found: `git_commit`, `git_branch`, `git_dirty` (inside a
    /// work tree) and `packages` (a sorted list of `name==version`).
    #[must_use]
    pub fn gather(&self) -> Vec<(String, Value)> {
        let mut attrs = Vec::new();
        if let Some(dir) = &self.git_dir
            && let Some(git) = git_state(dir)
        {
            attrs.extend(git);
        }
        let packages = installed_packages(&self.site_dirs);
        attrs.push((
            attr::PACKAGES.to_owned(),
            Value::List(packages.into_iter().map(Value::Str).collect()),
        ));
        attrs
    }
}

/// `git status --porcelain=v2 --branch` gives the commit, the branch and the
/// changes in one process.
fn git_state(dir: &Path) -> Option<Vec<(String, Value)>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=no",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut commit = None;
    let mut branch = None;
    let mut dirty = false;
    for line in text.lines() {
        if let Some(oid) = line.strip_prefix("# branch.oid ") {
            commit = (oid != "(initial)").then(|| oid.to_owned());
        } else if let Some(head) = line.strip_prefix("# branch.head ") {
            branch = (head != "(detached)").then(|| head.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            dirty = true;
        }
    }
    let mut attrs = vec![(attr::GIT_DIRTY.to_owned(), Value::Bool(dirty))];
    if let Some(c) = commit {
        attrs.push((attr::GIT_COMMIT.to_owned(), Value::Str(c)));
    }
    if let Some(b) = branch {
        attrs.push((attr::GIT_BRANCH.to_owned(), Value::Str(b)));
    }
    Some(attrs)
}

/// `name==version` of every distribution found in `dirs`, the first of each
/// name winning (as Python's import order does), sorted by name.
fn installed_packages(dirs: &[PathBuf]) -> Vec<String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for entry in names {
            let Some((stem, is_dist)) = entry
                .strip_suffix(".dist-info")
                .map(|s| (s, true))
                .or_else(|| entry.strip_suffix(".egg-info").map(|s| (s, false)))
            else {
                continue;
            };
            let (name, version) = match stem.split_once('-') {
                Some((n, rest)) => {
                    // egg-info names may end in -pyX.Y.
                    let v = if is_dist {
                        rest
                    } else {
                        rest.split("-py").next().unwrap_or(rest)
                    };
                    (n.to_owned(), v.to_owned())
                }
                None => (
                    stem.to_owned(),
                    metadata_version(&dir.join(&entry)).unwrap_or_default(),
                ),
            };
            let key = name.to_ascii_lowercase().replace(['-', '.'], "_");
            found
                .entry(key)
                .or_insert_with(|| format!("{name}=={version}"));
        }
    }
    found.into_values().collect()
}

fn metadata_version(info: &Path) -> Option<String> {
    let text = std::fs::read_to_string(info.join("PKG-INFO"))
        .or_else(|_| std::fs::read_to_string(info))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_read_from_folder_names() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "numpy-2.4.6.dist-info",
            "scikit_learn-1.9.1.dist-info",
            "six-1.16.0-py3.11.egg-info",
            "notapackage",
        ] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let second = tempfile::tempdir().unwrap();
        std::fs::create_dir(second.path().join("numpy-1.0.dist-info")).unwrap();
        let found = installed_packages(&[dir.path().to_owned(), second.path().to_owned()]);
        assert_eq!(
            found,
            ["numpy==2.4.6", "scikit_learn==1.9.1", "six==1.16.0"]
        );
    }

    #[test]
    fn git_state_outside_a_work_tree_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(git_state(dir.path()).is_none());
    }
}
