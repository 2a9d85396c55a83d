//! Sizes and removal of files and folders, for the commands that free space.

use std::path::Path;

/// Bytes of the files under `path` (or of the file itself); what cannot be
/// read counts as nothing. Symbolic links are not followed.
#[must_use]
pub fn size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries.flatten().map(|e| size(&e.path())).sum()
}

/// Removes a file or a whole folder.
pub fn remove(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}

/// `path` relative to `root` when inside it, for shorter messages, with
/// control characters in file names shown as escapes.
#[must_use]
pub fn shown(path: &Path, root: &Path) -> String {
    let text = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    crate::visible::text(&text).into_owned()
}
