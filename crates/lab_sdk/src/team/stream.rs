//! The uploader thread: with a server configured, each process that logs
//! runs has one `lab-upload` thread per project, which streams the runs this
//! process starts while they train, and their edits (`meta.lab`) as they are
//! made, then sends what earlier processes left (the project's pending runs:
//! runs not all sent, and runs all sent whose edits grew since). It never
//! touches a run's state or lock: it reads journals with `read(2)`, so a
//! `log_*` call never waits for it. A run of this process all sent is still
//! watched while the process lives: an edit made later (`lab rename` from a
//! shell) is sent too.
//!
//! When the server does not answer, the thread backs off ([`Backoff`]) and
//! says so once per outage; when the server refuses the token it says so
//! once and stops. At exit, [`finish_uploads`] gives it a short grace to
//! send what the process's runs still hold.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lab_store::{Project, RunPaths};

use super::backoff::Backoff;
use super::http::Client;
use super::upload::{self, RunUpload, Stamp, Step, Stop, stamp};
use super::{Error, config};
use crate::per_process::PerProcess;

/// The variable that sets the grace at exit, in seconds.
pub const GRACE_VAR: &str = "LAB_UPLOAD_GRACE_SECS";
/// The grace at exit when [`GRACE_VAR`] is not set.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// How often a caught-up thread looks for new records.
const TICK: Duration = Duration::from_millis(250);
/// The most requests one run gets before the next run's turn.
const TURN: usize = 8;
/// How often the runs of this process all on the server are looked at for
/// edits made since.
const EDITS_LOOK: Duration = Duration::from_secs(1);

/// The uploaders of this process, one per project: a forked child starts
/// with none (the threads are the parent's), whatever lock the parent's
/// threads held at the fork.
static UPLOADERS: PerProcess<Mutex<Vec<Arc<Shared>>>> = PerProcess::new();
/// What has been said, so each thing is said once (in each process).
static TOLD: PerProcess<Mutex<Vec<String>>> = PerProcess::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Prints `message` to stderr the first time `key` is told.
pub(crate) fn tell_once(key: &str, message: &str) {
    let mut told = lock(TOLD.get());
    if !told.iter().any(|k| k == key) {
        told.push(key.to_owned());
        eprintln!("lab: {message}");
    }
}

fn forget_told(key: &str) {
    lock(TOLD.get()).retain(|k| k != key);
}

struct Shared {
    project: Project,
    inner: Mutex<Inner>,
    wake: Condvar,
}

#[derive(Default)]
struct Inner {
    /// Runs started here and not yet handed to the thread.
    incoming: Vec<(String, RunPaths)>,
    /// Runs started here that are not all on the server yet.
    own: HashSet<String>,
    /// The thread stopped (the token was refused): nothing more is sent.
    stopped: bool,
}

/// Streams the run `short` of `project` to the team server, if one is
/// configured. Never fails the run: a problem is said once on stderr.
pub fn watch_run(project: &Project, short: &str, paths: &RunPaths) {
    hand_over(project, short, paths);
}

/// Sends the edits just made to run `short` of `project` (by this process:
/// `Run.name = ...`) to the team server, if one is configured, on the
/// project's `lab-upload` thread (started if this process has none), so
/// that [`finish_uploads`] waits for them at exit. A run another process is
/// sending is left to it; nothing is said unless something goes wrong.
pub fn send_edits(project: &Project, short: &str, paths: &RunPaths) {
    hand_over(project, short, paths);
}

/// Hands run `short` to the project's uploader: this process wants it all
/// on the server before it exits.
fn hand_over(project: &Project, short: &str, paths: &RunPaths) {
    let config = match config::current() {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            tell_once("config", &format!("runs are not sent to the server: {e}"));
            return;
        }
    };
    let name = match upload::project_name(project.root()) {
        Ok(n) => n,
        Err(e) => {
            tell_once("project", &format!("runs are not sent to the server: {e}"));
            return;
        }
    };
    let mut all = lock(UPLOADERS.get());
    if let Some(shared) = all.iter().find(|s| s.project == *project) {
        let mut inner = lock(&shared.inner);
        inner.own.insert(short.to_owned());
        inner.incoming.push((short.to_owned(), paths.clone()));
        drop(inner);
        shared.wake.notify_all();
        return;
    }
    // The run is handed over before the thread starts, so the thread never
    // takes it for one an earlier process left.
    let shared = Arc::new(Shared {
        project: project.clone(),
        inner: Mutex::new(Inner {
            incoming: vec![(short.to_owned(), paths.clone())],
            own: HashSet::from([short.to_owned()]),
            stopped: false,
        }),
        wake: Condvar::new(),
    });
    let for_thread = Arc::clone(&shared);
    let client = Client::new(&config);
    let spawned = crate::thread::spawn_quiet("lab-upload", move || {
        Uploader::new(for_thread, client, name).run();
    });
    match spawned {
        Ok(_) => all.push(shared),
        Err(e) => tell_once(
            "thread",
            &format!("runs are not sent to the server: cannot start the upload thread ({e})"),
        ),
    }
}

/// The grace at exit: [`GRACE_VAR`] if set to a number of seconds, else
/// [`DEFAULT_GRACE`].
#[must_use]
pub fn grace() -> Duration {
    std::env::var(GRACE_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_GRACE, |s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// Waits up to `grace` for this process's runs to be all on the server
/// (call it after [`wait_for_background`](crate::wait_for_background), when
/// the runs' journals are closed). Returns what is left to say.
pub fn finish_uploads(grace: Duration) -> Vec<String> {
    let deadline = Instant::now() + grace;
    let uploaders: Vec<_> = lock(UPLOADERS.get()).clone();
    let mut left = 0;
    for shared in uploaders {
        let mut inner = lock(&shared.inner);
        while !inner.own.is_empty() && !inner.stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            inner = shared
                .wake
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        left += inner.own.len();
    }
    if left == 0 {
        return Vec::new();
    }
    let runs = if left == 1 { "1 run is" } else { "runs are" };
    vec![format!(
        "{runs} not all on the server yet; `lab sync` sends the rest, and so does the next run in this project"
    )]
}

/// In a child after `fork`: the uploader threads are the parent's, and so
/// are the locks they may have held at the fork. The child gets a list of
/// its own, empty, and starts its own thread for the first run it streams;
/// the parent's list is left as it is (never dropped here).
pub(crate) fn after_fork_in_child() {
    UPLOADERS.renew();
    TOLD.renew();
}

struct Uploader {
    shared: Arc<Shared>,
    client: Client,
    project: String,
    backoff: Backoff,
    /// The runs being sent, and whether this process started each.
    runs: Vec<(RunUpload, bool)>,
    /// The project's runs that earlier processes left to send.
    backlog: Option<Vec<String>>,
    /// This process's runs all on the server, watched for edits.
    sent: Vec<Watched>,
    /// When they were last looked at.
    looked: Option<Instant>,
    outage_told: bool,
}

impl Uploader {
    fn new(shared: Arc<Shared>, client: Client, project: String) -> Self {
        Self {
            shared,
            client,
            project,
            backoff: Backoff::default(),
            runs: Vec::new(),
            backlog: None,
            sent: Vec::new(),
            looked: None,
            outage_told: false,
        }
    }

    /// Takes up again, as this process's own, the runs all on the server
    /// whose meta journal changed since: an edit made since they were sent.
    fn look_for_edits(&mut self) {
        if self.looked.is_some_and(|t| t.elapsed() < EDITS_LOOK) {
            return;
        }
        self.looked = Some(Instant::now());
        let mut i = 0;
        while i < self.sent.len() {
            let watched = &mut self.sent[i];
            let now = stamp(&watched.paths.meta).unwrap_or(watched.seen);
            if now == watched.seen {
                i += 1;
                continue;
            }
            watched.seen = now;
            if now.is_none() {
                // No meta journal (the run deleted): nothing to send.
                i += 1;
                continue;
            }
            let (short, paths) = (watched.short.clone(), watched.paths.clone());
            lock(&self.shared.inner).own.insert(short.clone());
            self.open(&short, &paths, true);
            if self.runs.iter().any(|(r, _)| r.short_id() == short) {
                // Watched again once it is all sent again.
                self.sent.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn done_with(&self, short: &str) {
        lock(&self.shared.inner).own.remove(short);
        self.shared.wake.notify_all();
    }

    fn open(&mut self, short: &str, paths: &RunPaths, own: bool) {
        // A run of this process this thread already took up as one left
        // by an earlier process (it saw the run's folder first).
        if let Some((_, was_own)) = self.runs.iter_mut().find(|(r, _)| r.short_id() == short) {
            *was_own |= own;
            return;
        }
        match RunUpload::open(short, paths, self.client.base(), &self.project) {
            Ok(Ok(run)) => self.runs.push((run, own)),
            Ok(Err(Stop::Refused(message))) => {
                tell_once(&format!("run {short}"), &message);
                self.done_with(short);
            }
            Ok(Err(Stop::Done | Stop::Busy)) => self.done_with(short),
            Err(e) => {
                tell_once(
                    &format!("run {short}"),
                    &format!("run `{short}` is not sent: {e}"),
                );
                self.done_with(short);
            }
        }
    }

    fn run(mut self) {
        let mut wait_until: Option<Instant> = None;
        loop {
            let incoming = std::mem::take(&mut lock(&self.shared.inner).incoming);
            for (short, paths) in incoming {
                self.open(&short, &paths, true);
            }
            if let Some(t) = wait_until.filter(|t| *t > Instant::now()) {
                self.sleep(t - Instant::now());
                continue;
            }
            wait_until = None;
            match self.round() {
                Ok(sent) => {
                    if self.backoff.failures() > 0 {
                        self.backoff.succeed();
                        if self.outage_told {
                            eprintln!("lab: the server answers again: {}", self.client.base());
                            forget_told("outage");
                            self.outage_told = false;
                        }
                    }
                    if !sent {
                        self.sleep(TICK);
                    }
                }
                Err(e) if e.is_refusal() => {
                    tell_once(
                        "refused",
                        &format!(
                            "the server refused the token; training goes on and runs stay here: {e}\n\nhint: `lab login {}` with a valid token, then `lab sync`",
                            self.client.base()
                        ),
                    );
                    lock(&self.shared.inner).stopped = true;
                    self.shared.wake.notify_all();
                    return;
                }
                Err(e) => {
                    let wait = self.backoff.fail(e.retry_after());
                    wait_until = Some(Instant::now() + wait);
                    if !self.outage_told {
                        tell_once(
                            "outage",
                            &format!(
                                "the server does not answer; training goes on, and runs are sent when it does: {e}"
                            ),
                        );
                        self.outage_told = true;
                    }
                }
            }
        }
    }

    fn sleep(&self, wait: Duration) {
        let inner = lock(&self.shared.inner);
        if inner.incoming.is_empty() {
            drop(
                self.shared
                    .wake
                    .wait_timeout(inner, wait)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }

    /// One turn of every run, this process's first. Whether anything was
    /// sent.
    fn round(&mut self) -> Result<bool, Error> {
        self.look_for_edits();
        let mut sent = false;
        let mut caught_up = true;
        let mut i = 0;
        while i < self.runs.len() {
            let (run, own) = &mut self.runs[i];
            let mut stop = None;
            for _ in 0..TURN {
                match run.step(&self.client)? {
                    Step::Sent => sent = true,
                    Step::Waiting => break,
                    Step::Stopped(s) => {
                        stop = Some(s);
                        break;
                    }
                }
            }
            if *own && stop.is_none() {
                caught_up = false;
            }
            if let Some(stop) = stop {
                let short = run.short_id().to_owned();
                if let Stop::Refused(message) = &stop {
                    tell_once(&format!("run {short}"), message);
                }
                if *own && stop == Stop::Done {
                    self.sent.push(Watched {
                        short: short.clone(),
                        paths: run.paths().clone(),
                        seen: run.meta_seen(),
                    });
                }
                self.runs.remove(i);
                self.done_with(&short);
            } else {
                i += 1;
            }
        }
        // What earlier processes left goes once this process's runs are
        // caught up, one run at a time.
        if (caught_up || !sent) && !self.runs.iter().any(|(_, own)| !own) {
            self.next_from_backlog();
        }
        Ok(sent)
    }

    fn next_from_backlog(&mut self) {
        let project = self.shared.project.clone();
        let mut backlog = self
            .backlog
            .take()
            .unwrap_or_else(|| pending_runs(&project, self.client.base(), &self.project));
        let mine: HashSet<String> = self
            .runs
            .iter()
            .map(|(r, _)| r.short_id().to_owned())
            .collect();
        while let Some(short) = backlog.pop() {
            if mine.contains(&short) || lock(&self.shared.inner).own.contains(&short) {
                continue;
            }
            self.open(&short, &project.run_paths(&short), false);
            if self.runs.iter().any(|(_, own)| !own) {
                break;
            }
        }
        self.backlog = Some(backlog);
    }
}

/// A run of this process all on the server, and its meta journal as last
/// seen.
struct Watched {
    short: String,
    paths: RunPaths,
    seen: Stamp,
}

/// The short ids of the runs of `local` that are not known to be all on
/// `server` under `project`, their edits too, newest first.
pub fn pending_runs(local: &Project, server: &str, project: &str) -> Vec<String> {
    let runs_dir = local.runs_dir();
    let Ok(entries) = std::fs::read_dir(&runs_dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(lab_store::JOURNAL_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|short| {
            let state = std::fs::read(runs_dir.join(short).join(upload::STATE_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<upload::State>(&b).ok());
            let all_there = |s: upload::State| {
                s.done
                    && s.server == server
                    && s.project == project
                    // A meta journal that cannot be read: the run's upload
                    // says why.
                    && upload::edits_unsent(&local.run_paths(short).meta, s.meta_acked)
                        .is_ok_and(|unsent| !unsent)
            };
            !state.is_some_and(all_there)
        })
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::upload::tests::{SERVER, add_run, all_sent, project_with_run, rename};

    #[test]
    fn a_child_forked_while_a_thread_held_the_uploaders_has_its_own() {
        // A thread of the parent holds the uploaders' list and what has
        // been said (handing a run over, saying something) at the fork.
        let (held, release) = std::sync::mpsc::sync_channel::<()>(0);
        let (go, wait) = std::sync::mpsc::sync_channel::<()>(0);
        let holder = std::thread::Builder::new()
            .name("parent-thread".into())
            .spawn(move || {
                let _all = lock(UPLOADERS.get());
                let _told = lock(TOLD.get());
                held.send(()).unwrap();
                go.send(()).unwrap();
            })
            .unwrap();
        release.recv().unwrap();
        // As in the child: the holder is a thread it does not have.
        after_fork_in_child();
        let all = UPLOADERS.get().try_lock();
        assert!(
            all.is_ok_and(|a| a.is_empty()),
            "the child's list is free and empty"
        );
        assert!(TOLD.get().try_lock().is_ok(), "and so is what it said");
        wait.recv().unwrap();
        holder.join().unwrap();
    }

    #[test]
    fn a_run_all_sent_is_pending_again_once_edited() {
        let (_dir, project, old) = project_with_run(0);
        let new = add_run(&project, 1);
        // Neither sent: both pending, newest first.
        assert_eq!(
            pending_runs(&project, SERVER, "iris"),
            [new.clone(), old.clone()]
        );
        all_sent(&project, &old, 0);
        all_sent(&project, &new, 0);
        assert!(pending_runs(&project, SERVER, "iris").is_empty());
        // `lab rename` of the old run.
        let len = rename(&project, &old, "better");
        assert_eq!(
            pending_runs(&project, SERVER, "iris"),
            std::slice::from_ref(&old)
        );
        // For another server, or project, every run is pending.
        assert_eq!(pending_runs(&project, "http://other", "iris").len(), 2);
        assert_eq!(pending_runs(&project, SERVER, "other").len(), 2);
        // Its edits acknowledged: all there.
        all_sent(&project, &old, len);
        assert!(pending_runs(&project, SERVER, "iris").is_empty());
        // A torn edit (its editor killed) is no edit to send.
        let meta = project.run_paths(&old).meta;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&meta)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[9, 0, 0, 0, 1, 2], len).unwrap();
        assert!(std::fs::metadata(&meta).unwrap().len() > len);
        assert!(pending_runs(&project, SERVER, "iris").is_empty());
        // A meta journal that cannot be read: pending, so its upload says why.
        std::fs::write(&meta, "this is no journal of edits ".repeat(10)).unwrap();
        assert_eq!(pending_runs(&project, SERVER, "iris"), [old]);
    }
}
