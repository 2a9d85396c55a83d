//! Where `lab export -o` and `lab show --graph` write: a regular file,
//! replaced whole, or standard output.
//!
//! - `-` is standard output; binary formats are refused when it is a terminal.
//! - A regular file, or a name that does not exist yet, is written through a
//!   temporary file beside it (`.<name>.<pid>.tmp`), renamed over it at the
//!   end: the file is either left as it was or holds all of the output. An
//!   existing file keeps its permissions.
//! - A symbolic link to a regular file is written through: the link stays,
//!   the file it points to is replaced the same way, beside itself.
//! - Anything else is refused before anything is written, naming the path and
//!   what it is: a folder, a FIFO, a socket, a device, or a symbolic link to
//!   one of those or to nothing.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{IsTerminal as _, Write as _};
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use crate::output::UserError;
use crate::visible;

/// A checked place to write to.
#[derive(Debug)]
pub enum Target {
    /// `-`: standard output.
    Stdout,
    /// A file to create or replace.
    File {
        /// The path as the user gave it, for messages.
        given: PathBuf,
        /// The file actually written: `given`, or where its link points.
        file: PathBuf,
    },
}

/// What a file system entry is, for messages; `None` for a regular file.
fn kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else {
        Some("not a regular file")
    }
}

/// `cannot write WHAT: REASON: PATH`, with the path made safe to print.
fn refusal(what: &str, reason: &str, path: &Path, hint: &str) -> UserError {
    let mut text = format!(
        "cannot write {what}: {reason}: {}",
        visible::text(&path.display().to_string())
    );
    if !hint.is_empty() {
        text.push_str("\n\nhint: ");
        text.push_str(hint);
    }
    UserError(text)
}

const HINT: &str = "name a regular file, or `-` for standard output";

impl Target {
    /// Checks `path` (`-` for standard output) as a place to write `what`
    /// (`the export`, `the diagram`) to, changing nothing.
    pub fn check(path: &Path, what: &str) -> Result<Self, UserError> {
        if path.as_os_str() == "-" {
            return Ok(Self::Stdout);
        }
        let file = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
                    // `Path` drops a trailing `/`, which would make a file
                    // where a folder was meant.
                    return Err(refusal(
                        what,
                        "the output path names a folder, not a file",
                        path,
                        HINT,
                    ));
                }
                path.to_owned()
            }
            Err(e) => return Err(refusal(what, &e.to_string(), path, "")),
            Ok(meta) if meta.file_type().is_symlink() => Self::through_link(path, what)?,
            Ok(meta) => match kind(&meta) {
                None => path.to_owned(),
                Some(k) => {
                    return Err(refusal(
                        what,
                        &format!("the output path is {k}, not a regular file"),
                        path,
                        HINT,
                    ));
                }
            },
        };
        Ok(Self::File {
            given: path.to_owned(),
            file,
        })
    }

    /// The regular file the symbolic link `path` points to, or why not.
    fn through_link(path: &Path, what: &str) -> Result<PathBuf, UserError> {
        let pointed = std::fs::read_link(path).map_or_else(
            |_| "?".to_owned(),
            |p| visible::text(&p.display().to_string()).into_owned(),
        );
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(refusal(
                what,
                &format!("the output path is a symbolic link to `{pointed}`, which does not exist"),
                path,
                "create the file it points to first, or remove the link",
            )),
            Err(e) => Err(refusal(what, &e.to_string(), path, "")),
            Ok(meta) => match kind(&meta) {
                None => {
                    std::fs::canonicalize(path).map_err(|e| refusal(what, &e.to_string(), path, ""))
                }
                Some(k) => Err(refusal(
                    what,
                    &format!(
                        "the output path is a symbolic link to {k} (`{pointed}`), not to a regular file"
                    ),
                    path,
                    HINT,
                )),
            },
        }
    }

    /// Whether this is standard output.
    #[must_use]
    pub fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout)
    }

    /// The path as given (`-` for standard output), for messages.
    #[must_use]
    pub fn shown(&self) -> String {
        match self {
            Self::Stdout => "-".to_owned(),
            Self::File { given, .. } => visible::text(&given.display().to_string()).into_owned(),
        }
    }

    /// Refuses `format`, a binary one, when this is standard output on a
    /// terminal.
    pub fn refuse_binary_on_terminal(&self, format: &str, what: &str) -> Result<(), UserError> {
        if self.is_stdout() && std::io::stdout().is_terminal() {
            return Err(UserError(format!(
                "cannot write {what}: {format} is binary and standard output is a terminal\n\nhint: redirect it to a file (`> out`), or name the file instead of `-`"
            )));
        }
        Ok(())
    }

    /// Writes `body` whole: to standard output, or to the file through a
    /// temporary file renamed over it. On failure the file is as it was.
    pub fn write(&self, body: &[u8], what: &str) -> anyhow::Result<()> {
        let (given, file) = match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(body)?;
                out.flush()?;
                return Ok(());
            }
            Self::File { given, file } => (given, file),
        };
        let fail = |e: std::io::Error| refusal(what, &e.to_string(), given, "");
        let name = file.file_name().ok_or_else(|| {
            refusal(
                what,
                "the output path names no file",
                given,
                "name a regular file",
            )
        })?;
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let (tmp, mut handle) = create_temp(&dir, &name.to_string_lossy()).map_err(fail)?;
        let result = (|| {
            handle.write_all(body)?;
            if let Ok(meta) = std::fs::metadata(file)
                && meta.is_file()
            {
                handle.set_permissions(meta.permissions())?;
            }
            handle.sync_all()?;
            drop(handle);
            // Something else may have appeared at the file's place since the
            // check: a rename would replace it, so look again.
            if let Ok(meta) = std::fs::symlink_metadata(file)
                && let Some(k) = kind(&meta)
            {
                return Err(std::io::Error::other(format!(
                    "the output path became {k} while writing"
                )));
            }
            std::fs::rename(&tmp, file)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(fail(e).into());
        }
        Ok(())
    }
}

/// A new temporary file `.<name>.<pid>.tmp` in `dir` (with a counter when
/// that name is taken), opened without following links.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last = None;
    for n in 0..100 {
        let tmp = if n == 0 {
            dir.join(format!(".{name}.{pid}.tmp"))
        } else {
            dir.join(format!(".{name}.{pid}.{n}.tmp"))
        };
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name is free")))
}
