//! SDK errors. Bad input names the argument, the value and what was expected.

/// Anything a logging call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// An argument with a bad value.
    #[error("`{argument}` {problem}: got {value}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// The value, as shown to the user (already quoted if text).
        value: String,
        /// What is wrong, as "must ...".
        problem: String,
    },
    /// A log call after the run ended.
    #[error(
        "run `{run}` has already ended ({status}); start a new run with `@e.start_run` or `with e.start_run():`"
    )]
    RunEnded {
        /// The run's short id.
        run: String,
        /// How it ended.
        status: String,
    },
    /// A log call in a forked child on a run its parent started.
    #[error(
        "run `{run}` belongs to the parent process; a forked child cannot log to it (start a run in the child, or log from the parent)"
    )]
    ForkedChild {
        /// The run's short id.
        run: String,
    },
    /// The run's folder was deleted while the run was live.
    #[error(
        "the folder of run `{run}` was deleted while the run was live (by `lab rm --force`?), so nothing more can be saved into it: {}",
        path.display()
    )]
    RunFolderGone {
        /// The run's short id.
        run: String,
        /// The folder that is gone.
        path: std::path::PathBuf,
    },
    /// The journal failed (a full disk, say).
    #[error("cannot write to the run journal: {0}")]
    Journal(#[from] lab_journal::JournalError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] lab_store::Error),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What kind of failure an [`SdkError`] is, for the edges to map.
#[derive(Clone, Copy, Debug)]
pub enum SdkErrorKind<'a> {
    /// An argument with a bad value.
    InvalidArgument,
    /// A log call on a run this process can no longer log to (it ended, or
    /// it is a forked child's copy of its parent's run).
    RunEnded,
    /// The store failed; its own kind says how.
    Store(&'a lab_store::Error),
    /// The journal or a file failed (a full disk, a folder gone).
    Storage,
}

impl SdkError {
    /// What kind of failure this is. Every variant is named here, so a new
    /// one cannot fall through to a default at an edge.
    #[must_use]
    pub fn kind(&self) -> SdkErrorKind<'_> {
        match self {
            SdkError::InvalidArgument { .. } => SdkErrorKind::InvalidArgument,
            SdkError::RunEnded { .. } | SdkError::ForkedChild { .. } => SdkErrorKind::RunEnded,
            SdkError::Store(e) => SdkErrorKind::Store(e),
            SdkError::RunFolderGone { .. } | SdkError::Journal(_) | SdkError::Io(_) => {
                SdkErrorKind::Storage
            }
        }
    }

    /// An [`SdkError::InvalidArgument`] whose value is text, shown quoted.
    pub(crate) fn bad_text(
        argument: &'static str,
        value: &str,
        problem: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            argument,
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }
}
