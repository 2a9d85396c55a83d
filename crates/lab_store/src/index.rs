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
//! that fold a project into any index ([`fold_project`], [`fold_one`]), and
//! the read side's seam, [`RunIndex`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use lab_journal::{Damage, codec};
use lab_types::{RunId, Status, Value};

pub use crate::delta::{
    ArtifactLogged, ArtifactStored, Delta, End, MetricDelta, MetricKey, ModelLogged, ParamSet,
    Start,
};
pub use crate::fold::{UNKNOWN_EXPERIMENT, lost_start_id, slot_nanos};
pub use crate::select::selection_sql_in;
use crate::{Error, Issue, Project, RunInfo, RunPaths, Selection};

/// What an index knows of a run before a fold reads its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indexed {
    /// The id the run is indexed under.
    pub id: String,
    /// How far its journal has been folded.
    pub offset: u64,
    /// Whether its writer was gone at the last fold: nothing more to read.
    pub complete: bool,
}

/// What a fold found out about a journal as a whole.
pub struct Folded<'a> {
    /// Just past the last good frame: where the next fold starts.
    pub end_offset: u64,
    /// Whether the writer is gone: nothing more will be written.
    pub settled: bool,
    /// The damaged stretches read past.
    pub damage: &'a [Damage],
    /// The id the Start record names, when it is not this folder's run (a
    /// copied folder).
    pub misfiled: Option<&'a RunId>,
}

/// Everything one fold writes about one run.
pub struct FoldWrite<'a> {
    /// The run's short id (its folder's name).
    pub short_id: &'a str,
    /// The id it is indexed under.
    pub id: &'a str,
    /// What its journal said since the last fold.
    pub delta: &'a Delta,
    /// What the fold found out about the journal.
    pub folded: Folded<'a>,
    /// The run's files (for notes on pieces cut off its journal).
    pub paths: &'a RunPaths,
}

/// Whether a fold was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// It was; a damaged tail was cut off into this piece, if it was.
    Done {
        /// Where the tail was kept.
        kept: Option<PathBuf>,
    },
    /// Another fold moved the run on first: read again from where it got.
    Raced,
}

/// What the fold needs of an index. Each write is one transaction.
pub trait FoldIndex {
    /// What the index holds of run `short_id`, if anything.
    fn indexed(&self, short_id: &str) -> Result<Option<Indexed>, Error>;

    /// The metric numbering of run `id`'s journal as folded so far.
    fn metric_names(&self, id: &str) -> Result<HashMap<u32, String>, Error>;

    /// An attribute of run `id`, if it has one.
    fn attr(&self, id: &str, key: &str) -> Result<Option<Value>, Error>;

    /// Writes what one fold read, in one transaction — unless the run's
    /// progress is no longer `expected` (another fold got there first), in
    /// which case nothing is written. `cut_tail` runs inside the
    /// transaction, once the progress is checked, and cuts a damaged tail
    /// off the journal if there is one to cut, so two folds never cut one
    /// tail twice; the piece it kept goes into the run's damage note.
    fn write_fold(
        &mut self,
        expected: Option<&Indexed>,
        write: &FoldWrite<'_>,
        cut_tail: &mut dyn FnMut() -> Option<PathBuf>,
    ) -> Result<Written, Error>;

    /// Lists a run whose journal holds nothing readable, as damaged with
    /// `reason` (unless the index holds the run already).
    fn write_unreadable(&mut self, short_id: &str, reason: &str) -> Result<(), Error>;

    /// The short ids of every run whose writer was gone at its last fold.
    fn complete_runs(&self) -> Result<HashSet<String>, Error>;

    /// Whether any run is still to fold again.
    fn any_incomplete(&self) -> Result<bool, Error>;

    /// The runs folder's modification time when a refresh last found every
    /// run complete.
    fn settled_dir_mtime(&self) -> Result<Option<i64>, Error>;

    /// Remembers it.
    fn set_settled_dir_mtime(&mut self, mtime: Option<i64>) -> Result<(), Error>;

    /// Drops the runs whose folder is gone (see `remove::forget_vanished`).
    fn forget_vanished(
        &mut self,
        project: &Project,
        complete_vanished: bool,
        listed_pending: &[String],
    ) -> Result<(), Error>;
}

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

/// How many damaged stretches a run's damage note spells out.
const NOTED_DAMAGE: usize = 5;

/// The longest text of a list or dict parameter kept for queries to compare
/// and match; a longer one is kept only in its encoded form.
pub const MAX_COMPOUND_TEXT: usize = 4096;

/// The run's damage note: what an earlier fold noted (`earlier`), what this
/// one read past, and the pieces cut off its journal (`kept` now, or by an
/// earlier fold, found beside `journal`).
pub fn damage_note(
    earlier: Option<String>,
    folded: &Folded<'_>,
    kept: Option<&Path>,
    journal: &Path,
) -> Result<Option<String>, Error> {
    let mut parts: Vec<String> = earlier.into_iter().collect();
    if let Some(other) = folded.misfiled {
        parts.push(format!(
            "the journal's Start record names run {other}, not one of this folder (a copy?)"
        ));
    }
    for d in folded.damage.iter().take(NOTED_DAMAGE) {
        parts.push(format!(
            "{} bytes skipped at offset {}: {}",
            d.dropped_bytes, d.offset, d.reason
        ));
    }
    if folded.damage.len() > NOTED_DAMAGE {
        parts.push(format!(
            "and {} more damaged stretches",
            folded.damage.len() - NOTED_DAMAGE
        ));
    }
    if let Some(kept) = kept {
        parts.push(format!("the damaged tail is kept in {}", kept.display()));
    } else if parts.is_empty() && folded.settled {
        // Rebuilding the index of a journal an earlier fold cut: say where
        // the pieces are.
        let kept = crate::fold::pieces(journal)?;
        if !kept.is_empty() {
            let names: Vec<String> = kept.iter().map(|p| p.path.display().to_string()).collect();
            let salvaged = if kept.iter().all(|p| p.salvaged) {
                " (their good records were put back)"
            } else {
                ""
            };
            parts.push(format!(
                "damaged bytes cut off the journal are kept in {}{salvaged}",
                names.join(", ")
            ));
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("; ")))
}

/// The status of a run whose writer is gone without ending it: crashed, or
/// damaged when the journal may have lost how it ended (its Start record is
/// lost, it was closed, damage was read past or noted). An index writes it
/// only over `running`.
#[must_use]
pub fn settled_status(d: &Delta, folded: &Folded<'_>, noted: bool) -> Status {
    let lost_end = d.lost_start.is_some() || d.closed || !folded.damage.is_empty() || noted;
    if lost_end {
        Status::Damaged
    } else {
        Status::Crashed
    }
}

/// A parameter's `value` and `text` columns, holding it once: a string is
/// its text, with an empty `value`; anything else is its encoding, with its
/// text for queries (and none for a list or dict too long to compare).
#[must_use]
pub fn param_columns(value: &Value) -> (Vec<u8>, Option<String>) {
    match value {
        Value::Str(s) => (Vec::new(), Some(s.clone())),
        Value::List(_) | Value::Dict(_) => {
            let text = value.to_string();
            (
                encode_value(value),
                (text.len() <= MAX_COMPOUND_TEXT).then_some(text),
            )
        }
        other => (encode_value(other), Some(other.to_string())),
    }
}

/// A parameter from its `value` and `text` columns (see [`param_columns`]).
#[must_use]
pub fn param_value(value: &[u8], text: Option<String>) -> Value {
    crate::read::param_value(value, text)
}

/// A value in the journal's encoding, as indexes keep attributes, features
/// and parameters.
#[must_use]
pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_value(v, &mut out);
    out
}

/// A value from [`encode_value`]'s bytes; bytes that do not decode read as
/// a `Repr` saying so.
#[must_use]
pub fn decode_value(bytes: &[u8]) -> Value {
    crate::read::decode(bytes)
}

/// A number as indexes keep it for queries: NaN as missing (SQLite has no
/// NaN, and PostgreSQL's sorts above every number); exact bits are kept
/// beside it.
#[must_use]
pub fn real(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// Whether run `short_id`, indexed but not seen in the runs folder's listing
/// (`listed_pending`, sorted: what `FoldIndex::forget_vanished` is given), is
/// gone from disk: its rows are then to go.
#[must_use]
pub fn vanished(project: &Project, short_id: &str, listed_pending: &[String]) -> bool {
    listed_pending
        .binary_search_by(|s| s.as_str().cmp(short_id))
        .is_err()
        && !project.run_paths(short_id).dir.exists()
}

/// The ids a run id prefix covers, `low <= id < high` (ids are lower-case
/// hex, so `high` is the prefix and `g`); an error when `prefix` cannot
/// begin a run id.
pub fn prefix_range(prefix: &str) -> Result<(String, String), Error> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 32 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRunId {
            prefix: prefix.to_owned(),
        });
    }
    let high = format!("{p}g");
    Ok((p, high))
}

/// The one run among `ids` (the first 21 ids in [`prefix_range`], sorted)
/// that `prefix` names: an error when there is none, or more than one.
pub fn pick_run(prefix: &str, ids: Vec<String>) -> Result<String, Error> {
    match ids.len() {
        0 => Err(Error::UnknownRun {
            prefix: prefix.to_owned(),
        }),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        _ => Err(Error::AmbiguousRun {
            prefix: prefix.to_owned(),
            candidates: ids,
        }),
    }
}
