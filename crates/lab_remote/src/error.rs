//! The errors of `lab config`, `lab push` and `lab pull`.

use std::path::PathBuf;

/// What went wrong with a remote, a bucket or the files being sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument the user gave (or the last one remembered) is not valid.
    #[error("{0}")]
    Invalid(String),
    /// No remote of that tag is configured.
    #[error(
        "`--tag` names no remote: `{tag}` (known: {known})\n\nhint: add it with `lab config minio --tag {tag} --endpoint HOST:PORT --accesskey KEY --secretkey SECRET`"
    )]
    UnknownTag {
        /// The tag asked for.
        tag: String,
        /// The tags there are, in backticks, or `none`.
        known: String,
    },
    /// An option was left out and no earlier push or pull gave it.
    #[error("no `{option}` given, and no earlier push or pull to take it from\n\nhint: {hint}")]
    NothingRemembered {
        /// The option, with its dashes.
        option: &'static str,
        /// What to do.
        hint: String,
    },
    /// The server could not be reached, or answered with an error.
    #[error("{0}")]
    Remote(String),
    /// The bucket holds no project of that name.
    #[error("{0}")]
    NoSuchProject(String),
    /// The bucket holds something that is not what `lab push` writes.
    #[error("{0}")]
    BadRemoteData(String),
    /// A file changed while it was being sent: what was sent is not what was hashed.
    #[error(
        "`{path}` changed while it was being sent, so it was not pushed\n\nhint: run `lab push` again once nothing writes to it"
    )]
    Changed {
        /// The file, relative to the project.
        path: String,
    },
    /// The user's configuration file cannot be read or written.
    #[error("{what}: {}", path.display())]
    Config {
        /// What failed, with the cause.
        what: String,
        /// The file.
        path: PathBuf,
    },
    /// The project could not be opened or reindexed.
    #[error(transparent)]
    Store(#[from] lab_store::Error),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the user can fix it (a bad argument, an unreachable server,
    /// refused credentials), rather than Lab failing.
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Invalid(_)
            | Error::UnknownTag { .. }
            | Error::NothingRemembered { .. }
            | Error::Remote(_)
            | Error::NoSuchProject(_)
            | Error::BadRemoteData(_)
            | Error::Changed { .. }
            | Error::Config { .. } => true,
            Error::Store(e) => matches!(
                e.kind(),
                lab_store::ErrorKind::NotAProject
                    | lab_store::ErrorKind::NotFound(_)
                    | lab_store::ErrorKind::Ambiguous
                    | lab_store::ErrorKind::InvalidInput
            ),
            Error::Io(_) => false,
        }
    }
}
