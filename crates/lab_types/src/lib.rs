//! Lab's shared vocabulary: run ids, parameter values, run status and the
//! records a run journal holds. Nothing here touches the disk.

pub mod fields;
mod id;
pub mod names;
mod record;
pub mod time;
mod value;

pub use id::{ParseRunIdError, RunId};
pub use record::{ConsoleLine, ErrorInfo, MediaKind, MetricPoint, Record, Status, Stream};
pub use value::Value;

/// Nanoseconds since the Unix epoch, UTC, as journals store time.
#[must_use]
pub fn now_nanos() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}
