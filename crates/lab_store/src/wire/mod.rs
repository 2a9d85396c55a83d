//! The shapes a run takes outside the process, one type per view, each built
//! by one function from a [`RunInfo`](crate::RunInfo):
//!
//! - [`RunSummary`]: what a listing shows of a run (`lab ls --format json`,
//!   `lab export` to JSON, `GET /api/v1/runs`, the live `run` event);
//! - [`RunDetail`]: everything about one run (`GET /api/v1/runs/{id}`, and
//!   the dicts `lab._lab.list_runs` and `lab._lab.get_run` hand to
//!   `lab.Run`).
//!
//! They serialize with serde and read back with it. In a human-readable
//! format (JSON) times are ISO 8601 text and NaN and infinities the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"`; other formats (the Python
//! objects of `lab._lab`) keep times as nanoseconds and floats as floats.
//! Their OpenAPI schemas (`utoipa::ToSchema`) are what the HTTP API's
//! document says of runs (`crates/lab_server/src/openapi.json`, generated).
//!
//! Where the surfaces differ, the difference is made in one place by the
//! surface: `lab ls --format json` leaves out `duration_s`, `host` and
//! `user` ([`RunSummary::without_listing_extras`]); the HTTP API puts
//! params, metrics and attributes in name order ([`RunSummary::sort`],
//! [`RunDetail::sort`]), the others keep the order runs logged them in.

mod run;
mod values;

pub use run::{Artifact, Git, MetricSummary, Model, Package, RunDetail, RunError, RunSummary};
pub use values::{Float, Named, StatusSchema, Time, sort_dicts};
