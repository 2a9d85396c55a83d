//! What can go wrong between a client and a team server.

use std::path::PathBuf;
use std::time::Duration;

/// An error of the team client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server file cannot be read or written.
    #[error("{what}: {}", path.display())]
    Config {
        /// What went wrong.
        what: String,
        /// The file.
        path: PathBuf,
    },
    /// A bad argument, named in the message.
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached, or did not answer in time.
    #[error("cannot reach the server ({reason}): {url}")]
    Unreachable {
        /// What the network said.
        reason: String,
        /// The request's URL.
        url: String,
    },
    /// The server answered with an error.
    #[error("the server answered {status} `{code}`: {message}: {url}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The error's code (`unauthorized`, `gap`, ...), or the status's
        /// reason when the body said none.
        code: String,
        /// The error's message.
        message: String,
        /// The request's URL.
        url: String,
        /// How long the server asked the client to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The whole JSON body, for fields beside the error (`length`,
        /// `missing`).
        body: serde_json::Value,
    },
    /// The server refused a query (`where`, `sort`): the same error a
    /// local query gives, pointing at the bad part.
    #[error(transparent)]
    Query(lab_store::query::QueryError),
    /// The cursor `after` is not one of this listing's (checked here, or
    /// refused by the server): the store's message, which says why.
    #[error("{0}")]
    Cursor(String),
    /// A local file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether trying again later may work: the network, `408`, `429`,
    /// `503` and every other `5xx`.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// Whether the server refused the token (`401`) or its role (`403`):
    /// nothing will work until the user logs in again.
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    /// The wait the server asked for, if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
