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

impl SdkError {
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
