//! The seam between folding journals and the database that holds the index.
//!
//! The fold (`fold/`) reads journals, sums up what they say into a
//! [`Delta`], and decides what is true of each run
//! (crashed, damaged, complete); it asks an index only what it has folded so
//! far and hands it what to write, through [`FoldIndex`]. SQLite implements it
//! for a project on disk (`sqlite/`); a second database (PostgreSQL, for a
//! team's server) implements the same trait, and its query SQL comes from the
//! query compiler through a [`Dialect`](crate::query::Dialect), so neither the
//! fold nor the compiler is copied.
//!
//! Besides the trait, this module holds what any index's writer works out the
//! same way whatever its SQL (a run's damage note, the status of a run whose
//! writer is gone, how a parameter is kept for queries), the entry points
//! that fold a project into any index ([`fold_project`], [`fold_one`]), those
//! that check and fold journal bytes received from another machine
//! ([`check_received`], [`fold_received`], and for a run's edits
//! [`check_received_meta`], [`fold_received_meta`]: a team's server), and the read
//! side's seam, [`RunIndex`].

use lab_types::Value;

pub use crate::delta::{
    ArtifactLogged, ArtifactStored, Delta, End, MediaLogged, MetricDelta, MetricKey, ModelLogged,
    ParamSet, Start,
};
pub use crate::facts::{
    MAX_COMPOUND_TEXT, damage_note, encode_value, param_columns, real, settled_status,
};
pub use crate::fold::{UNKNOWN_EXPERIMENT, lost_start_id, slot_nanos};
pub use crate::fold_index::{FoldIndex, FoldWrite, Folded, Indexed, Written};
pub use crate::read::{pick_named, pick_run, prefix_range};
pub use crate::received::{
    BadFrame, FoldedReceived, check_received, check_received_meta, fold_received,
    fold_received_meta, received_console_events, received_metric_events,
};
pub use crate::remove::vanished;
pub use crate::select::{cursor_sql_in, cursor_text, selection_sql_in};
use crate::{Error, Issue, Project, RunInfo, Selection};

/// Folds every run of `project` that `index` does not hold complete, as
/// `Store::refresh` does for SQLite: the same fold, into any index.
pub fn fold_project(project: &Project, index: &mut dyn FoldIndex) -> Result<Vec<Issue>, Error> {
    crate::fold::refresh(project, index)
}

/// Folds run `short_id` of `project` into `index`, as `Store::fold_run` does
/// for SQLite.
pub fn fold_one(
    project: &Project,
    index: &mut dyn FoldIndex,
    short_id: &str,
) -> Result<Vec<Issue>, Error> {
    crate::fold::fold_run(project, index, short_id)
}

/// What a reader of runs asks of an index: the SQLite store of a project and
/// a team's PostgreSQL index answer alike, with the same [`RunInfo`] (from
/// which `wire::RunSummary` and `wire::RunDetail` are made).
pub trait RunIndex {
    /// The runs `selection` asks for (filter, sort, limit and offset in the
    /// query language), with what its `detail` asks to load.
    fn select_runs(&self, selection: &Selection) -> Result<Vec<RunInfo>, Error>;

    /// The run whose id starts with `prefix` (case-insensitive), with
    /// everything indexed about it.
    fn run_by_prefix(&self, prefix: &str) -> Result<RunInfo, Error>;
}

impl RunIndex for crate::Store {
    fn select_runs(&self, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
        self.select(selection)
    }

    fn run_by_prefix(&self, prefix: &str) -> Result<RunInfo, Error> {
        self.run(prefix)
    }
}

/// A parameter from its `value` and `text` columns (see [`param_columns`]).
#[must_use]
pub fn param_value(value: &[u8], text: Option<String>) -> Value {
    crate::read::param_value(value, text)
}

/// A value from [`encode_value`]'s bytes; bytes that do not decode read as
/// a `Repr` saying so.
#[must_use]
pub fn decode_value(bytes: &[u8]) -> Value {
    crate::read::decode(bytes)
}
