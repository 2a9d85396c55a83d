//! The user's own configuration folder, outside any project: where `lab
//! login` keeps the team server's address and token and `lab config minio`
//! the buckets' keys. What is kept there is secret: files are written
//! readable by their owner only.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Lab's configuration folder: `$XDG_CONFIG_HOME/lab`, else
/// `~/.config/lab`; `None` when neither variable is set (a relative
/// `XDG_CONFIG_HOME` is ignored, as the XDG rules say).
#[must_use]
pub fn dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return Some(dir.join("lab"));
        }
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("lab"))
}

/// Why [`write_private`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The folder could not be made.
    #[error("{0}")]
    Folder(std::io::Error),
    /// The file could not be written.
    #[error("{0}")]
    File(std::io::Error),
}

/// Writes `bytes` to `path` with mode 0600, in a folder made with mode 0700
/// if it is missing, replacing the file whole (through a temporary file
/// that is removed if anything fails: it may hold a secret).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(WriteError::Folder)?;
    let name = path
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // A file left by an earlier process of the same id may have other
        // bits: the mode above applies only to a new file.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        WriteError::File(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_in_a_private_folder_and_replaced_whole() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("lab").join("secret.json");
        write_private(&path, b"one").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
        // A folder that cannot be made is told apart from a file.
        let blocked = root.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        assert!(matches!(
            write_private(&blocked.join("x.json"), b"x"),
            Err(WriteError::Folder(_))
        ));
    }
}
