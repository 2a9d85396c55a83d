//! One run, from start to end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use lab_journal::{JournalWriter, WRITER_ATTR, WriterIdentity};
use lab_store::{Project, RunPaths};
use lab_types::fields::attr;
use lab_types::{ErrorInfo, MetricPoint, Record, RunId, Status, Value, now_nanos};

use crate::console::Capture;
use crate::env_thread::Gathered;
use crate::media::{self, RawImage};
use crate::per_process::PerProcess;
use crate::sysmetrics::Sampler;
use crate::validate::{check_key, check_name, check_value};
use crate::{EnvRequest, SdkError, SystemMetrics, artifacts, tboard};

/// What a client knows when a run starts.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// The experiment's name, which must pass [`check_key`](crate::check_key).
    pub experiment: String,
    /// Facts known at once: `source`, `argv`, `user`, `host`, `pid`,
    /// `python_version`, `dataset`, ... Each becomes a [`Record::Attr`].
    pub attrs: Vec<(String, Value)>,
    /// What the background thread should look at.
    pub env: EnvRequest,
    /// Whether a thread records system metrics while the run is live, and
    /// how often (off by default).
    pub system_metrics: SystemMetrics,
}

/// What [`Run::end`] has to say.
#[derive(Debug, Default)]
pub struct EndReport {
    /// Artifacts that could not be copied, and why; what a folder copy left
    /// out with a warning (a dangling link, a link loop).
    pub warnings: Vec<String>,
}

/// A live run. Shared between the caller and the background threads.
pub struct Run {
    /// The fork generation the run was started in.
    generation: u64,
    id: RunId,
    short_id: String,
    /// The name it started with (an edit from outside may change it since).
    name: String,
    project: Project,
    paths: RunPaths,
    state: Mutex<State>,
    /// Whether the `lab-env` thread has recorded the run's slow facts.
    gathered: Mutex<Gathered>,
    /// The system metrics thread, until the run ends.
    sampler: Mutex<Option<Sampler>>,
    /// The capture of the process's console, while this run has it.
    capture: Mutex<Option<Capture>>,
}

struct Key {
    next_step: i64,
}

struct State {
    /// `None` once the journal is closed.
    journal: Option<JournalWriter>,
    /// Metric names to their numbers; `steps[number]` is the metric's next step.
    names: HashMap<String, u32>,
    steps: Vec<Key>,
    artifacts: Vec<(String, PathBuf)>,
    media_steps: media::Steps,
    ended: Option<Status>,
    points: Vec<MetricPoint>,
}

fn bad_step(s: i64) -> SdkError {
    SdkError::InvalidArgument {
        argument: "step",
        value: s.to_string(),
        problem: "must be a non-negative integer".into(),
    }
}

impl State {
    fn journal(&mut self) -> Result<&mut JournalWriter, SdkError> {
        self.journal
            .as_mut()
            .ok_or(SdkError::Journal(lab_journal::JournalError::Closed))
    }

    /// The number of metric `name`, declaring it in the journal the first time.
    fn key(&mut self, name: &str) -> Result<u32, SdkError> {
        if let Some(&id) = self.names.get(name) {
            return Ok(id);
        }
        check_key("key", name)?;
        let id = self.steps.len() as u32;
        self.journal()?.append(&Record::MetricKey {
            key: id,
            name: name.to_owned(),
        })?;
        self.names.insert(name.to_owned(), id);
        self.steps.push(Key { next_step: 0 });
        Ok(id)
    }

    /// Logs points of metric `name` with their own steps and times.
    fn log_points(&mut self, name: &str, points: &[(i64, i64, f64)]) -> Result<(), SdkError> {
        let key = self.key(name)?;
        for &(step, time_nanos, value) in points {
            let step = self.step(key, Some(step))?;
            self.journal()?
                .append_metric(time_nanos, &MetricPoint { key, step, value })?;
        }
        Ok(())
    }

    /// The step a point of metric `id` takes, moving the metric's next step on.
    fn step(&mut self, id: u32, step: Option<i64>) -> Result<i64, SdkError> {
        let k = self
            .steps
            .get_mut(id as usize)
            .ok_or_else(|| SdkError::InvalidArgument {
                argument: "key",
                value: id.to_string(),
                problem: "must be a metric number this run declared".into(),
            })?;
        let step = step.unwrap_or(k.next_step);
        k.next_step = k.next_step.max(step.saturating_add(1));
        Ok(step)
    }
}

/// The most journal space the End record (with the longest error text it
/// keeps) and the Close record after it take: what recording stored
/// artifacts leaves of the space kept in reserve for ending a run.
const END_AND_CLOSE_BYTES: u64 = {
    let frame = lab_journal::FRAME_HEADER_LEN;
    // Tag, time, status, error flag, three string lengths, the texts.
    let end = 11
        + 3 * 4
        + crate::MAX_ERROR_TYPE_BYTES
        + crate::MAX_ERROR_MESSAGE_BYTES
        + crate::MAX_ERROR_TRACEBACK_BYTES;
    // Tag and time; then the zero length that ends the data.
    let close = 9;
    (frame + end + frame + close + 4) as u64
};
const _: () = assert!(END_AND_CLOSE_BYTES < lab_journal::END_RESERVE);

/// Bumped in a forked child: runs started before the fork belong to the parent.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Runs between their journal's creation and their place in [`LIVE_RUNS`]:
/// a journal a forked child cannot find there.
static STARTING: AtomicUsize = AtomicUsize::new(0);

/// Counts a run as starting until dropped.
struct Starting;

impl Starting {
    fn new() -> Self {
        STARTING.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        STARTING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs that may be live, so a forked child can let go of their journals.
static LIVE_RUNS: PerProcess<Mutex<Vec<Weak<Run>>>> = PerProcess::new();

/// To be called in a child process right after `fork`. The child gets a copy
/// of every live run, but the runs stay the parent's: the child closes its
/// copies of their journals (so it does not keep their writer lock) and any
/// log call on them raises. Runs the child starts itself work as usual.
pub fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
    // Whether a journal may have been open at the fork where no list below
    // finds it: a run starting on another thread, a batch the `lab-finish`
    // thread was closing, a spare being made, a lock held.
    let mut unsure = STARTING.swap(0, Ordering::SeqCst) > 0;
    crate::team::stream::after_fork_in_child();
    // The finishing and sampling threads exist only in the parent, which
    // keeps their queues and locks: the child gets its own.
    unsure |= crate::finish::after_fork_in_child();
    crate::sysmetrics::after_fork_in_child();
    crate::env::after_fork_in_child();
    crate::env_thread::after_fork_in_child();
    crate::console::after_fork_in_child();
    unsure |= crate::spare::after_fork_in_child();
    // Held at the fork by a thread starting a run, the parent's list is
    // left alone (and those runs' copies with it).
    let inherited = if let Ok(mut live) = LIVE_RUNS.get().try_lock() {
        std::mem::take(&mut *live)
    } else {
        unsure = true;
        Vec::new()
    };
    LIVE_RUNS.renew();
    WRITER.renew();
    for run in inherited.iter().filter_map(Weak::upgrade) {
        // A lock held by a thread that did not survive the fork stays held;
        // such a run keeps its copy, which only delays the crash verdict.
        if let Ok(mut st) = run.state.try_lock() {
            // Unmapped and closed, the file never changed.
            if let Some(journal) = st.journal.take() {
                let id = journal.file_id();
                crate::per_process::close_inherited(journal.into_file().into(), Some(id));
            }
        } else {
            unsure = true;
        }
        if let Ok(mut sampler) = run.sampler.try_lock() {
            // Its place is with the parent's sampler, not the child's.
            sampler.take();
        }
        if let Ok(mut capture) = run.capture.try_lock() {
            // Closes the child's copies; the originals stay the parent's.
            if let Some(capture) = capture.take() {
                capture.let_go_in_forked_child();
            }
        }
    }
    // Last, what no list above holds, looked for by path only when there
    // may be some: the look costs a fresh child a few hundred µs.
    if unsure {
        crate::per_process::close_inherited_journals();
    }
}

/// Waits until every ended run is closed, synced and indexed. Returns what
/// failed since the last call.
#[allow(clippy::must_use_candidate)] // Called for the wait, often.
pub fn wait_for_background() -> Vec<String> {
    // Nothing of the process is left open in the project: the folders
    // made ahead for its next runs go too (the next run makes more).
    crate::spare::discard();
    // A child forked during a run may have printed after it ended: give
    // the console thread a moment to pass that on before the process exits.
    crate::console::wait_for_forwarding(std::time::Duration::from_secs(1));
    crate::finish::wait()
}

/// The pid of the process that read [`WriterIdentity::current`], and what
/// it read.
type KnownWriter = Option<(u32, Option<WriterIdentity>)>;

/// This process's identity as a journal writer, and its pid.
static WRITER: PerProcess<Mutex<KnownWriter>> = PerProcess::new();

/// This process as its journals' writer, read from `/proc` once per
/// process (a forked child, with a pid of its own, reads it again); the
/// machine's name, which may change, each time.
fn writer_identity() -> Option<Value> {
    let pid = std::process::id();
    let mut known = WRITER.get().lock().unwrap_or_else(PoisonError::into_inner);
    let me = match &mut *known {
        Some((of, me)) if *of == pid => {
            if let Some(me) = me.as_mut() {
                me.host = rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned();
            }
            me.clone()
        }
        _ => {
            let me = WriterIdentity::current();
            *known = Some((pid, me.clone()));
            me
        }
    };
    me.map(|me| me.to_value())
}

/// Whether `attrs` give the run a name, checked as an edit's name is.
fn check_given_name(attrs: &[(String, Value)]) -> Result<bool, SdkError> {
    match attrs.iter().find(|(k, _)| k == attr::NAME) {
        Some((_, Value::Str(name))) => match lab_store::check_name(name) {
            Err(lab_store::Error::BadEdit { expected, .. }) => Err(SdkError::bad_text(
                "name",
                name,
                format!("must be {expected}"),
            )),
            Err(other) => Err(SdkError::bad_text("name", name, other.to_string())),
            Ok(()) => Ok(true),
        },
        Some((_, other)) => Err(SdkError::bad_text(
            "name",
            &other.to_string(),
            "must be a string",
        )),
        None => Ok(false),
    }
}

impl Run {
    /// Starts a run in `project`. Its name is the `name` attribute when
    /// `options.attrs` has one, else the one generated from its short id.
    pub fn start(project: &Project, options: StartOptions) -> Result<Arc<Run>, SdkError> {
        check_key("experiment", &options.experiment)?;
        // Checked before anything is written: a bad name makes no run.
        let given_name = check_given_name(&options.attrs)?;
        let starting = Starting::new();
        let time_nanos = now_nanos();
        let (id, paths, mut journal) =
            if let Some(claimed) = crate::spare::claim(project, time_nanos) {
                claimed?
            } else {
                let (id, paths) = project.claim_run(time_nanos)?;
                let journal = JournalWriter::create(&paths.journal)?;
                (id, paths, journal)
            };
        journal.map_reserved()?;
        journal.append(&Record::Start {
            run: id,
            time_nanos,
            experiment: options.experiment,
        })?;
        if let Some(me) = writer_identity() {
            journal.append(&Record::Attr {
                time_nanos,
                key: WRITER_ATTR.to_owned(),
                value: me,
            })?;
        }
        let attrs = options.attrs;
        // A generated name is not recorded: every reader derives it from the
        // short id, so the attribute stands for a name that was given.
        let name = match attrs.iter().find(|(k, _)| k == attr::NAME) {
            Some((_, Value::Str(name))) if given_name => name.clone(),
            _ => lab_types::names::generated_name(&id.short()).unwrap_or_else(|| id.short()),
        };
        for (key, value) in attrs {
            journal.append(&Record::Attr {
                time_nanos,
                key,
                value,
            })?;
        }
        let run = Arc::new(Run {
            generation: FORK_GENERATION.load(Ordering::SeqCst),
            id,
            short_id: id.short(),
            name,
            project: project.clone(),
            paths,
            state: Mutex::new(State {
                journal: Some(journal),
                names: HashMap::new(),
                steps: Vec::new(),
                artifacts: Vec::new(),
                media_steps: media::Steps::default(),
                ended: None,
                points: Vec::new(),
            }),
            gathered: Mutex::new(Gathered::Pending),
            sampler: Mutex::new(None),
            capture: Mutex::new(None),
        });
        crate::env_thread::gather_for(Arc::clone(&run), options.env, crate::spare::epoch())?;
        if options.system_metrics.enabled {
            let sampler = Sampler::start(Arc::downgrade(&run), options.system_metrics.interval)?;
            *run.sampler.lock().unwrap_or_else(PoisonError::into_inner) = Some(sampler);
        }
        let mut live = LIVE_RUNS
            .get()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&run));
        drop(live);
        drop(starting);
        // With a team server configured, a background thread sends the
        // journal as it grows; nothing on the logging path waits for it.
        crate::team::watch_run(project, &run.short_id, &run.paths);
        Ok(run)
    }

    /// The run's id.
    #[must_use]
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The first 8 hex digits of the id.
    #[must_use]
    pub fn short_id(&self) -> &str {
        &self.short_id
    }

    /// The name the run started with: given, or generated.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run's folder and files.
    #[must_use]
    pub fn paths(&self) -> &RunPaths {
        &self.paths
    }

    /// The project the run belongs to.
    #[must_use]
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Whether this process started the run (false in a child forked after
    /// the run started: the run is the parent's).
    #[must_use]
    pub fn owned_by_this_process(&self) -> bool {
        self.generation == FORK_GENERATION.load(Ordering::Relaxed)
    }

    /// How the run ended, if it has.
    #[must_use]
    pub fn ended(&self) -> Option<Status> {
        self.lock().ended
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, for a log call: refused once the run has ended.
    fn live(&self) -> Result<MutexGuard<'_, State>, SdkError> {
        if self.generation != FORK_GENERATION.load(Ordering::Relaxed) {
            return Err(SdkError::ForkedChild {
                run: self.short_id.clone(),
            });
        }
        let st = self.lock();
        match st.ended {
            Some(status) => Err(SdkError::RunEnded {
                run: self.short_id.clone(),
                status: status.to_string(),
            }),
            None => Ok(st),
        }
    }

    /// Starts recording what the process prints on fds 1 and 2 (see the
    /// `console` module), keeping at most `limit_bytes` of text. Returns
    /// whether it did: not when another run of the process is being
    /// captured, nor when both fds are closed.
    pub fn start_capture(self: &Arc<Self>, limit_bytes: u64) -> Result<bool, SdkError> {
        drop(self.live()?);
        let mut slot = self.capture.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return Ok(true);
        }
        *slot = Capture::start(Arc::downgrade(self), limit_bytes)?;
        Ok(slot.is_some())
    }

    /// Puts fds 1 and 2 back and records the last of what was printed. Ending
    /// the run does it first; a client may do it earlier.
    pub fn stop_capture(&self) {
        let capture = self
            .capture
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(c) = capture {
            c.stop();
        }
    }

    /// Appends console lines from the capture thread. Nothing is written
    /// once the run has ended; a failure (a full disk) loses the lines and
    /// shows at the next log call.
    pub(crate) fn append_console(&self, record: &Record) {
        let mut st = self.lock();
        if st.ended.is_some() {
            return;
        }
        if let Some(journal) = st.journal.as_mut() {
            // Nothing to tell the printing code of a failure; see above.
            let _ = journal.append(record);
        }
    }

    /// The number metric `name` goes by in this run, declaring it the first
    /// time. Clients that see the same name often may keep the number and log
    /// with [`Run::log_metric_id`].
    pub fn metric_key(&self, name: &str) -> Result<u32, SdkError> {
        self.live()?.key(name)
    }

    /// Logs one metric point. Without a step, the point takes the step after
    /// the largest one of that metric so far (0 for the first).
    pub fn log_metric(&self, key: &str, value: f64, step: Option<i64>) -> Result<(), SdkError> {
        let id = self.metric_key(key)?;
        self.log_metric_id(id, value, step)
    }

    /// Logs one point of the metric numbered `id` (see [`Run::metric_key`]).
    pub fn log_metric_id(&self, id: u32, value: f64, step: Option<i64>) -> Result<(), SdkError> {
        if let Some(s) = step.filter(|s| *s < 0) {
            return Err(bad_step(s));
        }
        let mut st = self.live()?;
        let step = st.step(id, step)?;
        st.journal()?.append_metric(
            now_nanos(),
            &MetricPoint {
                key: id,
                step,
                value,
            },
        )?;
        Ok(())
    }

    /// Logs several metrics as one record. Every key is checked before any
    /// point is written (a new valid key may be declared before a later bad
    /// one is found; a declaration without points shows nowhere).
    pub fn log_metrics<'a>(
        &self,
        values: impl Iterator<Item = (&'a str, f64)>,
        step: Option<i64>,
    ) -> Result<(), SdkError> {
        let mut ids = Vec::new();
        for (key, value) in values {
            ids.push((self.metric_key(key)?, value));
        }
        self.log_metrics_ids(ids.into_iter(), step)
    }

    /// Logs several points of metrics given by number, as one record.
    pub fn log_metrics_ids(
        &self,
        values: impl Iterator<Item = (u32, f64)>,
        step: Option<i64>,
    ) -> Result<(), SdkError> {
        if let Some(s) = step.filter(|s| *s < 0) {
            return Err(bad_step(s));
        }
        let mut st = self.live()?;
        let mut points = std::mem::take(&mut st.points);
        points.clear();
        for (key, value) in values {
            match st.step(key, step) {
                Ok(step) => points.push(MetricPoint { key, step, value }),
                Err(e) => {
                    st.points = points;
                    return Err(e);
                }
            }
        }
        let record = Record::Metrics {
            time_nanos: now_nanos(),
            points,
        };
        let result = st.journal()?.append(&record);
        if let Record::Metrics { points, .. } = record {
            st.points = points;
        }
        Ok(result?)
    }

    /// Logs a hyperparameter; logging the same key again replaces its value.
    pub fn log_param(&self, key: &str, value: Value) -> Result<(), SdkError> {
        check_key("key", key)?;
        check_value("value", &value)?;
        let mut st = self.live()?;
        st.journal()?.append(&Record::Param {
            time_nanos: now_nanos(),
            key: key.to_owned(),
            value,
        })?;
        Ok(())
    }

    /// Records a run attribute (`dataset`, ...).
    pub fn log_attr(&self, key: &str, value: Value) -> Result<(), SdkError> {
        check_key("key", key)?;
        check_value("value", &value)?;
        let mut st = self.live()?;
        st.journal()?.append(&Record::Attr {
            time_nanos: now_nanos(),
            key: key.to_owned(),
            value,
        })?;
        Ok(())
    }

    /// Logs the feature names (strings) or column indices (integers).
    pub fn log_features(&self, names: Vec<Value>) -> Result<(), SdkError> {
        let mut st = self.live()?;
        st.journal()?.append(&Record::Features {
            time_nanos: now_nanos(),
            names,
        })?;
        Ok(())
    }

    /// Sets a tag.
    pub fn set_tag(&self, key: &str, value: &str) -> Result<(), SdkError> {
        check_key("key", key)?;
        let mut st = self.live()?;
        st.journal()?.append(&Record::Tag {
            time_nanos: now_nanos(),
            key: key.to_owned(),
            value: value.to_owned(),
        })?;
        Ok(())
    }

    /// Replaces the run's note (Markdown; empty removes it).
    pub fn log_note(&self, text: &str) -> Result<(), SdkError> {
        if text.len() > lab_store::MAX_NOTE_BYTES {
            return Err(SdkError::bad_text(
                "note",
                &text[..text.floor_char_boundary(40)],
                format!(
                    "must be at most {} bytes long (it has {})",
                    lab_store::MAX_NOTE_BYTES,
                    text.len()
                ),
            ));
        }
        let mut st = self.live()?;
        st.journal()?.append(&Record::Note {
            time_nanos: now_nanos(),
            text: text.to_owned(),
        })?;
        Ok(())
    }

    /// Logs an artifact: the file or folder at `source` is copied into the run
    /// when it ends (see the `artifacts` module for what a folder copy leaves
    /// out and how links are followed). Logging a name again replaces its
    /// source. A folder of Lab's own (a project's `.lab`, a folder inside it,
    /// a run's folder) is refused.
    pub fn log_artifact(&self, name: &str, source: &Path) -> Result<(), SdkError> {
        check_name("name", name)?;
        artifacts::check_source(&self.project, &self.paths, source)?;
        let source = std::path::absolute(source)?;
        let mut st = self.live()?;
        st.journal()?.append(&Record::Artifact {
            time_nanos: now_nanos(),
            name: name.to_owned(),
            source: source.display().to_string(),
        })?;
        st.artifacts.retain(|(n, _)| n != name);
        st.artifacts.push((name.to_owned(), source));
        Ok(())
    }

    /// The folder models are written to; made on first use.
    pub fn models_dir(&self) -> Result<PathBuf, SdkError> {
        // `create_dir`, never `create_dir_all`: a run folder deleted while the
        // run is live (`lab rm --force`) must stay deleted.
        match fs_err::create_dir(&self.paths.models) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SdkError::RunFolderGone {
                    run: self.short_id.clone(),
                    path: self.paths.dir.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(self.paths.models.clone())
    }

    /// A new path in [`Run::models_dir`] to serialise model `name` into before
    /// [`Run::add_model`] takes it. Each call gets its own, so threads saving
    /// models of the same name at once do not write into one file; the name
    /// holds the process id (`.<name>.<pid>-<n>.tmp`), so that `lab gc` can
    /// tell the leftovers of a process that died.
    pub fn model_temp_path(&self, name: &str) -> Result<PathBuf, SdkError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        check_name("name", name)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .models_dir()?
            .join(format!(".{name}.{}-{n}.tmp", std::process::id())))
    }

    /// Takes a serialised model at `file` (inside [`Run::models_dir`], named by
    /// [`Run::model_temp_path`]), hashes it, moves it to its final name and
    /// records it. Of calls with the same name, the last to record wins: the
    /// move and the record are made together under the run's lock, so the
    /// file in place is always the one the latest record describes.
    pub fn add_model(
        &self,
        name: &str,
        file: &Path,
        format: &str,
        class: &str,
        library: &str,
        library_version: &str,
    ) -> Result<(String, u64, String), SdkError> {
        check_name("name", name)?;
        drop(self.live()?);
        let (size, sha256) = hash_file(file)?;
        let ext = if format == "pickle" { "pkl" } else { format };
        let rel = format!("models/{name}.{ext}");
        let mut st = self.live()?;
        fs_err::rename(file, self.paths.dir.join(&rel))?;
        st.journal()?.append(&Record::Model {
            time_nanos: now_nanos(),
            name: name.to_owned(),
            path: rel.clone(),
            format: format.to_owned(),
            class: class.to_owned(),
            library: library.to_owned(),
            library_version: library_version.to_owned(),
            size,
            sha256: sha256.clone(),
        })?;
        Ok((rel, size, sha256))
    }

    /// Logs an image given as raw pixels under media `key` at `step` (the
    /// key's next step when `None`), encoded as a PNG. Returns the file's
    /// path relative to the run's folder and the step.
    pub fn log_image(
        &self,
        key: &str,
        image: &RawImage<'_>,
        step: Option<i64>,
    ) -> Result<(String, i64), SdkError> {
        check_name("key", key)?;
        check_media_step(step)?;
        drop(self.live()?);
        let encoded = media::encode_png(image)?;
        self.add_media(key, &encoded, step)
    }

    /// Logs an image a library already encoded as a PNG (Pillow,
    /// matplotlib); it must decode whole.
    pub fn log_png(
        &self,
        key: &str,
        png: Vec<u8>,
        step: Option<i64>,
    ) -> Result<(String, i64), SdkError> {
        check_name("key", key)?;
        check_media_step(step)?;
        drop(self.live()?);
        let encoded = media::checked_png(png)?;
        self.add_media(key, &encoded, step)
    }

    /// Logs a table: column names, and rows of one value per column.
    pub fn log_table(
        &self,
        key: &str,
        columns: &[String],
        rows: &[Vec<Value>],
        step: Option<i64>,
    ) -> Result<(String, i64), SdkError> {
        check_name("key", key)?;
        check_media_step(step)?;
        drop(self.live()?);
        let encoded = media::encode_table(columns, rows)?;
        self.add_media(key, &encoded, step)
    }

    /// Writes an encoded media file into a temporary file, then, under the
    /// run's lock, takes its step, moves it to its name and records it: of
    /// two threads logging the same key and step, the file in place is the
    /// one the later record describes.
    fn add_media(
        &self,
        key: &str,
        encoded: &media::Encoded,
        step: Option<i64>,
    ) -> Result<(String, i64), SdkError> {
        let media_dir = self.paths.dir.join("media");
        media::make_dir(&media_dir, &self.short_id, &self.paths.dir)?;
        let key_dir = media_dir.join(key);
        media::make_dir(&key_dir, &self.short_id, &self.paths.dir)?;
        let temp = media::temp_path(&key_dir);
        if let Err(e) = fs_err::write(&temp, &encoded.bytes) {
            // A partial file is no use to anyone; its removal failing too
            // leaves it to `lab gc`, and the write's error is the one to tell.
            drop(fs_err::remove_file(&temp));
            return Err(e.into());
        }
        let mut st = match self.live() {
            Ok(st) => st,
            Err(e) => {
                drop(fs_err::remove_file(&temp));
                return Err(e);
            }
        };
        let step = match st.media_steps.take(key, encoded.kind, step) {
            Ok(step) => step,
            Err(e) => {
                drop(fs_err::remove_file(&temp));
                return Err(e);
            }
        };
        let rel = media::relative_path(key, step, encoded.kind);
        fs_err::rename(&temp, self.paths.dir.join(&rel))?;
        st.journal()?.append(&Record::Media {
            time_nanos: now_nanos(),
            key: key.to_owned(),
            step,
            kind: encoded.kind,
            path: rel.clone(),
            width: encoded.width,
            height: encoded.height,
            bytes: encoded.bytes.len() as u64,
        })?;
        Ok((rel, step))
    }

    /// Ends the run: copies its artifacts, writes the end record, and leaves
    /// closing, syncing and indexing the journal to a background thread.
    ///
    /// The error's type, message and traceback are kept up to
    /// [`MAX_ERROR_TYPE_BYTES`](crate::MAX_ERROR_TYPE_BYTES),
    /// [`MAX_ERROR_MESSAGE_BYTES`](crate::MAX_ERROR_MESSAGE_BYTES) and
    /// [`MAX_ERROR_TRACEBACK_BYTES`](crate::MAX_ERROR_TRACEBACK_BYTES) bytes
    /// (head and tail; see [`cut_text`](crate::cut_text)), so an error of any
    /// size ends the run.
    pub fn end(
        self: &Arc<Self>,
        status: Status,
        error: Option<ErrorInfo>,
    ) -> Result<EndReport, SdkError> {
        let error = error.map(crate::cut_error);
        drop(self.live()?);
        self.stop_capture();
        let artifacts = std::mem::take(&mut self.live()?.artifacts);
        // The last sample, taken as the run's own work ends; it needs the
        // run's lock, which is not held here.
        let sampler = self
            .sampler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sampler) = sampler {
            sampler.stop();
        }
        let mut report = EndReport::default();
        for (name, source) in artifacts {
            let mut notes = Vec::new();
            let copied =
                artifacts::copy_artifact(&self.project, &self.paths, &name, &source, &mut notes);
            report
                .warnings
                .extend(notes.iter().map(|n| format!("artifact `{name}`: {n}")));
            match copied {
                Ok(stored) => {
                    // From the reserve, but never from the part the End
                    // record needs: on a full disk, an artifact goes
                    // unrecorded (its copy is left for `lab gc`) rather than
                    // the run unended.
                    let recorded = self.lock().journal()?.append_final_keeping(
                        &Record::ArtifactStored {
                            time_nanos: now_nanos(),
                            name: name.clone(),
                            path: stored.path,
                            files: stored.files,
                            bytes: stored.bytes,
                        },
                        END_AND_CLOSE_BYTES,
                    );
                    if let Err(e) = recorded {
                        report.warnings.push(format!(
                            "artifact `{name}` was copied, but recording it failed: {e}"
                        ));
                    }
                    let copy = self.paths.artifacts.join(&name);
                    self.artifact_scalars(&name, &copy, &mut report.warnings);
                }
                Err(e) => report
                    .warnings
                    .push(format!("artifact `{name}` was not copied: {e}")),
            }
        }
        {
            let mut st = self.lock();
            // From the space kept in reserve: a full disk still ends the run.
            st.journal()?.append_final(&Record::End {
                time_nanos: now_nanos(),
                status,
                error,
            })?;
            st.ended = Some(status);
        }
        crate::finish::hand_over(Arc::clone(self))?;
        Ok(report)
    }

    /// The scalars of the TensorBoard event files in an artifact's copy
    /// `dir`, logged as metrics of the run (see the `tboard` module for their
    /// names). Nothing here fails the run: an unreadable file, a damaged one,
    /// a full disk are warnings.
    fn artifact_scalars(&self, artifact: &str, dir: &Path, warnings: &mut Vec<String>) {
        let tree = match tboard::read_tree(dir) {
            Ok(tree) => tree,
            Err(e) => {
                warnings.push(format!(
                    "artifact `{artifact}`: its TensorBoard event files could not be looked for: {e}"
                ));
                return;
            }
        };
        warnings.extend(
            tboard::notes(&tree)
                .into_iter()
                .map(|n| format!("artifact `{artifact}`: {n}")),
        );
        let mut st = self.lock();
        for (raw, points) in tree.metrics {
            let name = if st.names.contains_key(&raw) {
                tboard::valid_metric_name(&format!("{}{raw}", tboard::COLLISION_PREFIX))
            } else {
                raw
            };
            if st.names.contains_key(&name) {
                warnings.push(format!(
                    "artifact `{artifact}`: the TensorBoard scalars of `{name}` were left out: the run already has metrics of that name with and without the `{}` prefix",
                    tboard::COLLISION_PREFIX
                ));
                continue;
            }
            if let Err(e) = st.log_points(&name, &points) {
                warnings.push(format!(
                    "artifact `{artifact}`: logging its TensorBoard scalars stopped at `{name}`: {e}"
                ));
                return;
            }
        }
    }

    /// Waits for the environment thread, whose records must come before the
    /// Close record.
    pub(crate) fn join_env(&self) -> Result<(), String> {
        match crate::env_thread::wait(self) {
            Gathered::Panicked => Err("the environment thread of Lab panicked".to_owned()),
            Gathered::Done | Gathered::Pending => Ok(()),
        }
    }

    pub(crate) fn gathered(&self) -> MutexGuard<'_, Gathered> {
        self.gathered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends the facts the environment thread gathered. A failure here
    /// (a full disk) shows at the next log call.
    pub(crate) fn append_env(&self, attrs: Vec<(String, Value)>) {
        let mut st = self.lock();
        let time_nanos = now_nanos();
        if let Some(journal) = st.journal.as_mut() {
            for (key, value) in attrs {
                if journal
                    .append(&Record::Attr {
                        time_nanos,
                        key,
                        value,
                    })
                    .is_err()
                {
                    break;
                }
            }
        }
    }

    /// The journal, to close: no record can be appended after this.
    pub(crate) fn take_journal(&self) -> Option<JournalWriter> {
        self.lock().journal.take()
    }
}

/// A media step, if given, must not be negative.
fn check_media_step(step: Option<i64>) -> Result<(), SdkError> {
    match step {
        Some(s) if s < 0 => Err(bad_step(s)),
        _ => Ok(()),
    }
}

fn hash_file(path: &Path) -> Result<(u64, String), SdkError> {
    Ok(crate::hash::file(path)?)
}
