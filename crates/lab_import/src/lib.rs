//! `lab import`: runs recorded by other trackers, written into a Lab project
//! as ordinary runs.
//!
//! A tracker's reader implements [`Source`]: it lists its runs cheaply (an
//! identity each, and whether the run has ended), then reads one run at a
//! time into a [`lab_sdk::import::ImportedRun`]. [`import`] does the rest,
//! the same for every tracker:
//!
//! - **Idempotence.** Each imported run carries its origin in the
//!   `imported_from` attribute. A run whose origin the project already holds
//!   is skipped, unless the copy was imported before the source ended it
//!   (the copy is `crashed`, Lab's verdict for a run without an end) and the
//!   source has ended it since: then the run is imported again and the old
//!   copy deleted once the new one is in place.
//! - **Whole or nothing.** Each run is written by
//!   [`lab_sdk::import::write_imported`]; an error while reading or writing
//!   one run leaves nothing of it and the import goes on with the next.
//! - **One import at a time.** An import holds an exclusive lock on
//!   `.lab/import.lock` from the moment it lists the runs already imported
//!   to its end: two imports started together into one project would each
//!   find the other's runs missing and import them twice. The second waits.
//! - **A summary.** [`Summary`] counts what was imported, skipped and
//!   failed (with the reasons), and what was left out of imported runs.

pub mod mlflow;
pub mod tensorboard;
mod values;
pub mod wandb;

use std::collections::HashMap;
use std::path::Path;

use lab_sdk::import::{IMPORTED_FROM, ImportedRun, write_imported};
use lab_store::{Project, Store};
use lab_types::{Status, Value};

pub use values::{flatten_json, json_to_value, text_to_value};

/// An error that stops a whole import: the source cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The source is not what the command expects, or cannot be opened.
    #[error("{0}")]
    Source(String),
    /// The project failed.
    #[error(transparent)]
    Store(#[from] lab_store::Error),
}

impl ImportError {
    /// An error about the source.
    pub fn source(message: impl Into<String>) -> Self {
        Self::Source(message.into())
    }
}

/// One run of a source, as listed before it is read.
#[derive(Clone, Debug)]
pub struct SourceRun {
    /// Where it comes from, as recorded in `imported_from`
    /// (`mlflow:<experiment id>/<run id>`, `wandb:<entity>/<project>/<run id>`).
    pub origin: String,
    /// What to call it in messages (a run name, a folder).
    pub label: String,
    /// Whether the source has ended the run.
    pub ended: bool,
    /// The source's own handle on the run (an index into its listing).
    pub index: usize,
}

/// What one run's reading found, besides the run.
#[derive(Debug, Default)]
pub struct Read {
    /// The run.
    pub run: ImportedRun,
    /// What was left out, each said once per kind and run (a metric with
    /// non-numeric values, a renamed key, an artifact that is not a local
    /// path): kind → count.
    pub left_out: Vec<(String, u64)>,
    /// What is worth saying about this run's reading, each on its own (a
    /// damaged file, named): said with the run's label.
    pub warnings: Vec<String>,
}

/// A tracker's store of runs.
pub trait Source {
    /// Lists the runs (and says which cannot be listed, through
    /// [`SourceRun`]s whose reading then fails).
    fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError>;
    /// Reads one run whole. Files it fetches (artifacts from a server) go into
    /// `scratch`, which is removed after the run is written.
    fn read(&mut self, run: &SourceRun, scratch: &Path) -> Result<Read, String>;
}

/// How the import goes, told as it goes (a progress bar).
pub trait Progress {
    /// The runs are listed: `total` to look at.
    fn begin(&self, total: u64);
    /// One run is done.
    fn advance(&self, label: &str);
    /// All done.
    fn end(&self);
}

/// A [`Progress`] that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&self, _total: u64) {}
    fn advance(&self, _label: &str) {}
    fn end(&self) {}
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Runs imported: origin and new short id (empty on a dry run).
    pub imported: Vec<(String, String)>,
    /// Runs imported again because the source ended them since: origin, new
    /// short id, and the old copy's short id.
    pub replaced: Vec<(String, String, String)>,
    /// Runs already in the project.
    pub skipped: Vec<String>,
    /// Runs that could not be imported: origin or label, and why.
    pub failed: Vec<(String, String)>,
    /// What was left out of imported runs: kind → count, over all runs.
    pub left_out: Vec<(String, u64)>,
    /// Metric points written.
    pub points: u64,
    /// Other things worth saying (artifacts a copy left out).
    pub warnings: Vec<String>,
}

impl Summary {
    fn leave_out(&mut self, kind: &str, n: u64) {
        match self.left_out.iter_mut().find(|(k, _)| k == kind) {
            Some((_, count)) => *count += n,
            None => self.left_out.push((kind.to_owned(), n)),
        }
    }
}

/// Options of an import.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Read and check every run, write nothing.
    pub dry_run: bool,
}

/// A copy of a source run the project holds already.
struct Held {
    short_id: String,
    status: Status,
    info: lab_store::RunInfo,
}

/// Imports every run of `source` into `project` (see the crate docs).
pub fn import(
    project: &Project,
    source: &mut dyn Source,
    options: Options,
    progress: &dyn Progress,
) -> Result<Summary, ImportError> {
    let _lock = lock(project)?;
    let mut store = Store::open(project.clone())?;
    store.refresh()?;
    let mut copies: HashMap<String, Vec<Held>> = HashMap::new();
    for info in store.runs(None)? {
        if let Some(Value::Str(origin)) = info.attr(IMPORTED_FROM) {
            copies.entry(origin.clone()).or_default().push(Held {
                short_id: info.short_id.clone(),
                status: info.status,
                info,
            });
        }
    }
    let runs = source.runs()?;
    let mut summary = Summary::default();
    progress.begin(runs.len() as u64);
    for run in &runs {
        let existing = copies.get(&run.origin);
        // A copy of a run the source had not ended is replaced once it has.
        let stale: Vec<&Held> = existing
            .map(|c| c.iter().filter(|c| c.status == Status::Crashed).collect())
            .unwrap_or_default();
        let whole = existing.is_some_and(|c| c.len() > stale.len());
        if existing.is_some() && (whole || !run.ended) {
            summary.skipped.push(run.origin.clone());
            progress.advance(&run.label);
            continue;
        }
        // Named with the process id, so that `lab gc` can tell the
        // leftovers of an import that was killed.
        let scratch = match tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir_in(project.store_dir())
        {
            Ok(dir) => dir,
            Err(e) => {
                summary.failed.push((
                    run.label.clone(),
                    format!(
                        "cannot make a scratch folder in {}: {e}",
                        project.store_dir().display()
                    ),
                ));
                progress.advance(&run.label);
                continue;
            }
        };
        let read = source.read(run, scratch.path()).map(|mut read| {
            summary.warnings.extend(
                std::mem::take(&mut read.warnings)
                    .into_iter()
                    .map(|w| format!("{}: {w}", run.label)),
            );
            read
        });
        match read {
            Err(why) => summary.failed.push((run.label.clone(), why)),
            Ok(read) if options.dry_run => {
                count_read(&mut summary, &read);
                summary.points += read
                    .run
                    .metrics
                    .iter()
                    .map(|m| m.points.len() as u64)
                    .sum::<u64>();
                summary.imported.push((run.origin.clone(), String::new()));
            }
            Ok(read) => match write_imported(project, &read.run) {
                Err(e) => summary.failed.push((run.label.clone(), e.to_string())),
                Ok(written) => {
                    count_read(&mut summary, &read);
                    summary.points += written.points;
                    summary.warnings.extend(
                        written
                            .warnings
                            .into_iter()
                            .map(|w| format!("{}: {w}", run.label)),
                    );
                    if stale.is_empty() {
                        summary
                            .imported
                            .push((run.origin.clone(), written.short_id));
                    } else {
                        for old in &stale {
                            if let Err(e) = store.delete_run(&old.info) {
                                summary.warnings.push(format!(
                                    "{}: the earlier copy `{}` could not be deleted: {e}",
                                    run.label, old.short_id
                                ));
                            }
                        }
                        let olds: Vec<&str> = stale.iter().map(|c| c.short_id.as_str()).collect();
                        summary.replaced.push((
                            run.origin.clone(),
                            written.short_id,
                            olds.join(", "),
                        ));
                    }
                }
            },
        }
        progress.advance(&run.label);
    }
    progress.end();
    Ok(summary)
}

/// How the scratch folders of an import in `.lab` start: then the process
/// id, a `-` and a random part. A run's fetched artifacts wait there until the
/// run is written.
pub const SCRATCH_PREFIX: &str = ".import-";

/// The name of the lock file in `.lab` that imports take turns on.
pub const LOCK_FILE: &str = "import.lock";

/// Takes the project's import lock, waiting for another import to end.
/// Released when the file is closed (dropped, or the process dies).
fn lock(project: &Project) -> Result<std::fs::File, ImportError> {
    let path = project.store_dir().join(LOCK_FILE);
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lab_store::Error::Io)?
        .into_parts()
        .0;
    file.lock().map_err(|e| {
        lab_store::Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot lock {}: {e}", path.display()),
        ))
    })?;
    Ok(file)
}

fn count_read(summary: &mut Summary, read: &Read) {
    for (kind, n) in &read.left_out {
        summary.leave_out(kind, *n);
    }
}

/// Counts of what a reader left out of one run, by kind.
#[derive(Debug, Default)]
pub struct LeftOut(Vec<(String, u64)>);

impl LeftOut {
    /// One more of `kind`.
    pub fn add(&mut self, kind: &str) {
        self.add_n(kind, 1);
    }

    /// `n` more of `kind`.
    pub fn add_n(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.0.iter_mut().find(|(k, _)| k == kind) {
            Some((_, count)) => *count += n,
            None => self.0.push((kind.to_owned(), n)),
        }
    }

    /// The counts.
    #[must_use]
    pub fn into_vec(self) -> Vec<(String, u64)> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use lab_sdk::import::{ImportedEnd, ImportedRun};
    use lab_store::{Project, Store};
    use lab_types::Status;

    use super::*;

    /// A source of `n` finished runs whose reading takes a while.
    struct Slow(usize);

    impl Source for Slow {
        fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError> {
            Ok((0..self.0)
                .map(|index| SourceRun {
                    origin: format!("test:{index}"),
                    label: format!("run {index}"),
                    ended: true,
                    index,
                })
                .collect())
        }

        fn read(&mut self, run: &SourceRun, _scratch: &Path) -> Result<Read, String> {
            std::thread::sleep(Duration::from_millis(30));
            Ok(Read {
                run: ImportedRun {
                    origin: run.origin.clone(),
                    experiment: "exp".into(),
                    start_nanos: 1_000,
                    end: Some(ImportedEnd {
                        time_nanos: 2_000,
                        status: Status::Finished,
                        error: None,
                    }),
                    ..ImportedRun::default()
                },
                left_out: Vec::new(),
                warnings: Vec::new(),
            })
        }
    }

    #[test]
    fn imports_started_together_import_each_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let project = Arc::new(project);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let project = Arc::clone(&project);
                std::thread::Builder::new()
                    .name("import".into())
                    .spawn(move || {
                        import(&project, &mut Slow(4), Options::default(), &Quiet).unwrap()
                    })
                    .unwrap()
            })
            .collect();
        let summaries: Vec<Summary> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let imported: usize = summaries.iter().map(|s| s.imported.len()).sum();
        let skipped: usize = summaries.iter().map(|s| s.skipped.len()).sum();
        assert_eq!((imported, skipped), (4, 4));
        let store = Store::open((*project).clone()).unwrap();
        assert_eq!(store.runs(None).unwrap().len(), 4);
    }

    #[test]
    fn importing_twice_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let first = import(&project, &mut Slow(2), Options::default(), &Quiet).unwrap();
        assert_eq!(first.imported.len(), 2);
        let again = import(&project, &mut Slow(2), Options::default(), &Quiet).unwrap();
        assert_eq!((again.imported.len(), again.skipped.len()), (0, 2));
        let dry = import(&project, &mut Slow(3), Options { dry_run: true }, &Quiet).unwrap();
        assert_eq!((dry.imported.len(), dry.skipped.len()), (1, 2));
        let store = Store::open(project).unwrap();
        assert_eq!(store.runs(None).unwrap().len(), 2);
    }
}
