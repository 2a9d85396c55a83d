//! The run lifecycle: start, log, end, for any client (Python today).
//!
//! [`Run::start`] claims a run folder, creates the journal (or moves into
//! place a folder and journal made ahead: the `spare` module) and writes
//! what is known at once (experiment, source, user, host, ...). Slow facts
//! (the git commit, the installed packages) are gathered by a named
//! background thread and appended when ready. Every `log_*` validates its
//! input, then appends one record and returns: the record is then the
//! kernel's. [`Run::end`] copies
//! artifacts (the `artifacts` module: never Lab's own folders, sparse files
//! kept sparse, a failed copy removed) and writes the end record (an error's
//! text cut to [`MAX_ERROR_MESSAGE_BYTES`] and [`MAX_ERROR_TRACEBACK_BYTES`]);
//! closing, syncing and indexing the journal happen on a background thread
//! (one per process, for every run that ends: the `finish` module) that
//! [`wait_for_background`] waits for. While a run is live, another thread
//! may record what the machine is doing as `sys/` metrics (the `sysmetrics`
//! module, when [`StartOptions::system_metrics`] asks for it). The scalars of
//! TensorBoard event files in an artifact become metrics of the run
//! ([`tboard`]).
//!
//! [`import::write_imported`] writes a run recorded by another tracker, whole
//! or not at all, with the source's times.

mod artifacts;
pub mod console;
mod cut;
mod env;
mod env_thread;
mod error;
mod finish;
mod hash;
pub mod import;
pub mod media;
mod per_process;
mod run;
mod spare;
pub mod sysmetrics;
pub mod tboard;
pub mod team;
mod thread;
mod validate;

pub use cut::{
    MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_TRACEBACK_BYTES, MAX_ERROR_TYPE_BYTES, cut_error, cut_text,
};
pub use env::EnvRequest;
pub use error::{SdkError, SdkErrorKind};
pub use run::{EndReport, Run, StartOptions, after_fork_in_child, wait_for_background};
pub use sysmetrics::SystemMetrics;
pub use validate::{
    MAX_KEY_LEN, MAX_VALUE_DEPTH, check_key, check_name, check_value, is_invisible_format,
};
