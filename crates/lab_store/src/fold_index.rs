//! What the fold asks of an index and hands it to write: [`FoldIndex`] and
//! its types. Public as `lab_store::index`, which also holds what a second
//! index shares with SQLite's; this module is apart so that the fold, which
//! uses it, and that facade, which uses the fold, make no circle.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use lab_journal::Damage;
use lab_types::{RunId, Value};

use crate::delta::Delta;
use crate::{Error, Project, RunPaths};

/// What an index knows of a run before a fold reads its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indexed {
    /// The id the run is indexed under.
    pub id: String,
    /// How far its journal has been folded.
    pub offset: u64,
    /// Whether its writer was gone at the last fold: nothing more to read.
    pub complete: bool,
    /// How much of its meta journal (its edits) has been folded: 0 without
    /// one.
    pub meta_len: u64,
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
    /// Every edit of the run's meta journal and the journal's length, when
    /// they are to be applied after the delta (which set what they edit).
    pub edits: Option<(&'a Delta, u64)>,
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

    /// What the index holds of the run whose full id is `id`, if anything:
    /// how a received journal is found (runs of two machines may share a
    /// short id, never an id).
    fn indexed_id(&self, id: &str) -> Result<Option<Indexed>, Error>;

    /// Whether runs are keyed by their full id, so that two may share a
    /// short id (a team's index, fed by many machines). Otherwise a short
    /// id is one run, as it is one folder.
    fn keys_by_id(&self) -> bool {
        false
    }

    /// The metric numbering of run `id`'s journal as folded so far.
    fn metric_names(&self, id: &str) -> Result<HashMap<u32, String>, Error>;

    /// An attribute of run `id`, if it has one.
    fn attr(&self, id: &str, key: &str) -> Result<Option<Value>, Error>;

    /// Starts a batch: the writes until [`FoldIndex::end_batch`] go into one
    /// transaction (each write still whole or not at all within it), so
    /// that folding many runs commits a few times, not once a run. The
    /// transaction begins at the first write. An index without batches
    /// writes each at once.
    fn begin_batch(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Ends the batch begun: commits its writes, or drops them when
    /// `commit` is false (a fold in it failed).
    fn end_batch(&mut self, commit: bool) -> Result<(), Error> {
        let _ = commit;
        Ok(())
    }

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
