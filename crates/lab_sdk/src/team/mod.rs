//! The team client: runs streamed to a `lab server` while they train,
//! offline first.
//!
//! - [`config`]: the server and token `lab login` keeps in the user's
//!   configuration folder (mode 0600), with `LAB_SERVER` and `LAB_TOKEN`
//!   over them;
//! - [`http`]: the server's API as the client uses it;
//! - [`journal`]: a journal's whole frames from an offset, as the server
//!   takes them;
//! - [`read`]: the server's copy of a project, read back as local runs;
//! - [`upload`]: one run sent step by step, resumable from what the server
//!   acknowledged (kept in the run's folder);
//! - [`stream`]: the `lab-upload` thread of a process that logs runs, and
//!   its grace at exit;
//! - [`sync()`]: `lab sync`, every pending run of a project;
//! - [`backoff`]: how long to wait for a server that does not answer.
//!
//! The training thread only ever writes its journal: nothing here is on the
//! path of a `log_*` call.

pub mod backoff;
pub mod config;
mod error;
pub mod http;
pub mod journal;
pub mod read;
pub mod stream;
mod sync;
pub mod upload;

pub use config::ServerConfig;
pub use error::Error;
pub use http::Client;
pub use stream::{finish_uploads, grace, send_edits, watch_run};
pub use sync::{SyncReport, sync};
