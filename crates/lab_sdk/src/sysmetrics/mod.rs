//! System metrics: a named background thread that, while runs are live,
//! records what the machine is doing as metrics named `sys/...`.
//!
//! Every [`SystemMetrics::interval`] (5 s by default) it records the CPU and
//! resident memory of the process and its descendants (`DataLoader`
//! workers, `multiprocessing` pools), the machine's memory, its disk and
//! network throughput, and per NVIDIA GPU (through NVML, loaded at run time;
//! absent without a GPU or without the library) utilisation, memory,
//! temperature and power. For each run it takes a baseline when the run
//! starts, records a sample at each interval, and a last one when the run
//! ends (unless the previous sample was under [`MIN_END_SAMPLE`] before): a
//! run shorter than the interval still gets one sample, covering all of it.
//!
//! One thread serves every run of the process, each with its own interval,
//! baseline and sample numbers; it is started with the first run that asks
//! and then waits for the next (a loop of short runs starts no thread per
//! run). Runs whose samples fall due together share one reading of `/proc`,
//! and a run started within [`BASELINE_REUSE`] of the last reading takes
//! that reading as its baseline. A run that ends before a last sample is
//! due (under [`MIN_END_SAMPLE`] since its baseline or its last sample)
//! ends without waiting for the thread at all.
//!
//! All the points of a sample are one journal record, appended through the
//! run's own writer under its lock (held for the append alone, once per
//! interval), at the step that numbers the sample (0, 1, 2, ...). The
//! training thread's `log_metric` never waits for the sampler's reading of
//! `/proc` or NVML: that happens outside the lock.

mod nvml;
mod procfs;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::per_process::PerProcess;
use crate::{Run, SdkError};

/// The prefix of every system metric's name.
pub const PREFIX: &str = "sys/";
/// The variable that turns system metrics off (`0`, `false`, `no`, `off`).
pub const ENABLE_VAR: &str = "LAB_SYSTEM_METRICS";
/// The variable that sets the interval, in seconds.
pub const INTERVAL_VAR: &str = "LAB_SYSTEM_METRICS_INTERVAL";
/// The interval when neither the client nor [`INTERVAL_VAR`] sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The longest interval accepted: a day.
pub const MAX_INTERVAL: Duration = Duration::from_hours(24);
/// A run's end takes a last sample only if the previous one (or the
/// baseline) is at least this old: rates over a shorter span are noise.
pub const MIN_END_SAMPLE: Duration = Duration::from_millis(100);
/// A run started this soon after the thread's last reading of `/proc`
/// takes that reading as its baseline rather than a new one: its first
/// sample covers this much more, at most.
pub const BASELINE_REUSE: Duration = Duration::from_millis(20);
/// The sampler thread's name (what `/proc/PID/task/TID/comm` shows).
pub const THREAD_NAME: &str = "lab-sysmetrics";

/// Whether and how often a run records system metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SystemMetrics {
    pub enabled: bool,
    pub interval: Duration,
}

impl Default for SystemMetrics {
    /// Off: a client turns it on (Python's `Experiment` does, unless told
    /// otherwise).
    fn default() -> Self {
        Self {
            enabled: false,
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl SystemMetrics {
    /// What a client asked for (`enabled`, and an interval in seconds or
    /// `None` for the default), with the environment's say:
    /// [`ENABLE_VAR`] set to `0` turns it off whatever the client asked,
    /// and [`INTERVAL_VAR`] sets the interval the client left to the
    /// default.
    pub fn resolve(enabled: bool, interval_secs: Option<f64>) -> Result<Self, SdkError> {
        Self::resolve_with(enabled, interval_secs, |name| std::env::var(name).ok())
    }

    fn resolve_with(
        enabled: bool,
        interval_secs: Option<f64>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SdkError> {
        let from_env = match env(ENABLE_VAR).as_deref().map(str::trim) {
            None | Some("") => true,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(SdkError::bad_text(
                        ENABLE_VAR,
                        v,
                        "must be `1` to record system metrics or `0` not to (also true/false, yes/no, on/off)",
                    ));
                }
            },
        };
        let interval = match interval_secs {
            Some(secs) => check_interval("system_metrics_interval", secs, &secs.to_string())?,
            None => match env(INTERVAL_VAR).as_deref().map(str::trim) {
                None | Some("") => DEFAULT_INTERVAL,
                Some(text) => {
                    let secs = text.parse::<f64>().unwrap_or(f64::NAN);
                    check_interval(INTERVAL_VAR, secs, &format!("{text:?}"))?
                }
            },
        };
        Ok(Self {
            enabled: enabled && from_env,
            interval,
        })
    }
}

fn check_interval(argument: &'static str, secs: f64, shown: &str) -> Result<Duration, SdkError> {
    if secs.is_finite() && secs >= MIN_INTERVAL.as_secs_f64() && secs <= MAX_INTERVAL.as_secs_f64()
    {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(SdkError::InvalidArgument {
            argument,
            value: shown.to_owned(),
            problem: format!(
                "must be a number of seconds from {} to {}",
                MIN_INTERVAL.as_secs_f64(),
                MAX_INTERVAL.as_secs()
            ),
        })
    }
}

/// What the sampler reads `/proc` with.
struct Reader {
    proc: procfs::ProcFs,
    pid: u32,
    ticks_per_sec: f64,
    page_bytes: u64,
    disks: std::collections::HashSet<String>,
}

/// One reading of the counters that rates are taken between, and of the
/// levels (memory) reported as they are.
#[derive(Clone)]
struct Counters {
    at: Instant,
    /// Each process of the tree, by pid and start time, to its CPU ticks
    /// and those of the children it has waited for.
    cpu: HashMap<(u32, u64), u64>,
    rss_pages: u64,
    memory: Option<procfs::Memory>,
    disk: Option<(u64, u64)>,
    net: Option<(u64, u64)>,
}

impl Reader {
    fn new(proc_root: &Path, sys_block: &Path, pid: u32) -> Self {
        Self {
            proc: procfs::ProcFs::new(proc_root, pid),
            pid,
            ticks_per_sec: rustix::param::clock_ticks_per_second() as f64,
            page_bytes: rustix::param::page_size() as u64,
            disks: procfs::whole_disks(sys_block),
        }
    }

    /// What the tree and the machine have done so far.
    fn read(&mut self) -> Counters {
        let at = Instant::now();
        let tree = self.proc.tree(self.pid);
        let mut cpu = HashMap::with_capacity(tree.len());
        let mut rss_pages = 0u64;
        for (pid, stat) in &tree {
            // With the start time, a pid reused by a later process is
            // another process.
            cpu.insert(
                (*pid, stat.start_ticks),
                stat.cpu_ticks.saturating_add(stat.children_ticks),
            );
            rss_pages += stat.rss_pages;
        }
        let disks = &self.disks;
        Counters {
            at,
            cpu,
            rss_pages,
            memory: self.proc.meminfo(),
            disk: self.proc.diskstats(|name| disks.contains(name)),
            net: self.proc.net_dev(),
        }
    }

    /// Appends to `out` the metrics of `now`, with rates since `before`.
    fn rates(&self, before: &Counters, now: &Counters, out: &mut Vec<(String, f64)>) {
        let secs = now.at.saturating_duration_since(before.at).as_secs_f64();
        let mut put = |name: &str, v: f64| {
            if v.is_finite() {
                out.push((format!("{PREFIX}{name}"), v));
            }
        };

        // The tree's CPU time is the sum, over its processes, of their own
        // time and that of the children they waited for. When a process
        // exits and its parent waits for it, its time moves into the
        // parent's waited-for time: the sum does not drop, so the work of
        // a worker that ended since the previous sample, or of a
        // subprocess that came and went within it, is counted whole.
        // A process not seen before was born into the tree since the
        // previous sample: all its time is new. One that left the tree
        // without being waited for by a process of it (a daemon) takes
        // its time along; what is left cannot go below nothing.
        let now_ticks = now.cpu.values().fold(0u64, |a, t| a.saturating_add(*t));
        let before_ticks = before.cpu.values().fold(0u64, |a, t| a.saturating_add(*t));
        let ticks = now_ticks.saturating_sub(before_ticks);
        if !now.cpu.is_empty() && secs > 0.0 {
            put(
                "cpu_percent",
                ticks as f64 / self.ticks_per_sec / secs * 100.0,
            );
            put("rss_bytes", (now.rss_pages * self.page_bytes) as f64);
        }

        if let Some(m) = now.memory {
            put("mem_used_bytes", m.used_bytes() as f64);
            put("mem_percent", m.used_percent());
        }

        if let (Some((r0, w0)), Some((r1, w1))) = (before.disk, now.disk)
            && secs > 0.0
            && r1 >= r0
            && w1 >= w0
        {
            put("disk_read_bytes_per_s", (r1 - r0) as f64 / secs);
            put("disk_write_bytes_per_s", (w1 - w0) as f64 / secs);
        }

        if let (Some((r0, s0)), Some((r1, s1))) = (before.net, now.net)
            && secs > 0.0
            && r1 >= r0
            && s1 >= s0
        {
            put("net_recv_bytes_per_s", (r1 - r0) as f64 / secs);
            put("net_sent_bytes_per_s", (s1 - s0) as f64 / secs);
        }
    }
}

/// NVML from the driver's library, loaded once for the process (and never
/// unloaded: unloading a driver's library is asking for trouble).
fn system_nvml() -> Option<&'static nvml::Nvml> {
    static NVML: OnceLock<Option<nvml::Nvml>> = OnceLock::new();
    NVML.get_or_init(|| nvml::Nvml::load(nvml::LIBRARY))
        .as_ref()
}

/// The longest a run's end waits for the sampler's last sample. A sample
/// takes milliseconds; an NVML call on a GPU in a bad state can hang for
/// much longer, and the end of a run must not hang with it.
pub const STOP_WAIT: Duration = Duration::from_millis(500);

/// One run the thread records for.
struct Watch {
    id: u64,
    run: Weak<Run>,
    interval: Duration,
    /// The baseline or the last sample; `None` until the thread took one.
    since: Option<Counters>,
    /// The number of the next sample.
    step: i64,
    /// The run's numbers for the metric names.
    ids: HashMap<String, u32>,
}

/// The runs being sampled, and what their stoppers ask and wait for.
#[derive(Default)]
struct Watches {
    started: bool,
    next_id: u64,
    /// The thread's last reading, which a run started soon after takes as
    /// its baseline.
    latest: Option<Counters>,
    /// Runs the thread is not working on at this moment.
    idle: Vec<Watch>,
    /// Runs the thread is working on, out of the lock, and whether for
    /// their baseline.
    busy: Vec<(u64, bool)>,
    /// Busy runs that ended meanwhile with no last sample due: let go.
    dropped: Vec<u64>,
    /// Runs ending, whose last sample is asked for.
    stopping: Vec<u64>,
    /// Runs ended whose last sample is recorded (or was not due).
    stopped: Vec<u64>,
}

/// The watches and their signals: this process's (a forked child gets new
/// ones, see [`after_fork_in_child`]).
#[derive(Default)]
struct Shared {
    watches: Mutex<Watches>,
    /// Rung for the thread: a run needs a baseline, or is ending.
    wake: Condvar,
    /// Rung by the thread: a last sample was recorded.
    answered: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Watches> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static SHARED: PerProcess<Shared> = PerProcess::new();

/// In a child right after `fork`: the thread is the parent's, and so are
/// the runs it samples.
pub(crate) fn after_fork_in_child() {
    SHARED.renew();
}

/// A run's place with the sampler thread, until the run ends.
pub(crate) struct Sampler {
    id: u64,
}

impl Sampler {
    /// Starts sampling for `run` every `interval`, starting the thread if
    /// it is not running. The thread holds the run weakly, and stops
    /// sampling it by itself when the run is gone or refuses a record (it
    /// ended, or its journal failed).
    pub fn start(run: Weak<Run>, interval: Duration) -> std::io::Result<Self> {
        let shared = SHARED.get();
        let mut w = shared.lock();
        if !w.started {
            crate::thread::spawn_quiet(THREAD_NAME, move || sample_forever(shared))?;
            w.started = true;
        }
        let id = w.next_id;
        w.next_id += 1;
        let since = w
            .latest
            .as_ref()
            .filter(|l| l.at.elapsed() < BASELINE_REUSE)
            .cloned();
        let wake = since.is_none();
        w.idle.push(Watch {
            id,
            run,
            interval,
            since,
            step: 0,
            ids: HashMap::new(),
        });
        drop(w);
        if wake {
            shared.wake.notify_one();
        }
        Ok(Self { id })
    }

    /// Asks for the last sample and waits for it to be recorded, up to
    /// [`STOP_WAIT`]; returns at once when none is due. A sampler still
    /// busy then is left to finish on its own: the run's end refuses
    /// anything it appends later.
    pub fn stop(self) {
        stop(SHARED.get(), self.id, STOP_WAIT);
    }
}

/// Whether a run sampled `since` is due a last sample at its end.
fn last_sample_due(since: Option<&Counters>) -> bool {
    since.is_some_and(|s| s.at.elapsed() >= MIN_END_SAMPLE)
}

fn stop(shared: &Shared, id: u64, wait: Duration) {
    let mut w = shared.lock();
    if let Some(i) = w.idle.iter().position(|x| x.id == id) {
        if !last_sample_due(w.idle[i].since.as_ref()) {
            w.idle.swap_remove(i);
            return;
        }
    } else if let Some(&(_, baseline)) = w.busy.iter().find(|(x, _)| *x == id) {
        if baseline {
            // The baseline being taken is younger than the shortest span.
            w.dropped.push(id);
            return;
        }
    } else {
        // Gone: the run refused a record.
        return;
    }
    w.stopping.push(id);
    drop(w);
    shared.wake.notify_one();
    let deadline = Instant::now() + wait;
    let mut w = shared.lock();
    loop {
        if let Some(i) = w.stopped.iter().position(|&x| x == id) {
            w.stopped.swap_remove(i);
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            // Busy still: the thread drops the run when it gets back to it.
            w.stopping.retain(|&x| x != id);
            if let Some(i) = w.idle.iter().position(|x| x.id == id) {
                w.idle.swap_remove(i);
            } else {
                w.dropped.push(id);
            }
            return;
        }
        w = shared
            .answered
            .wait_timeout(w, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// Takes out of `w.idle` the runs due a baseline, a sample or their last
/// sample (marking them busy), answers the ending ones due none, and
/// returns the earliest time another is due.
fn take_due(w: &mut Watches, work: &mut Vec<(Watch, bool)>) -> (bool, Option<Instant>) {
    let now = Instant::now();
    let mut next: Option<Instant> = None;
    let mut answered = false;
    let mut i = 0;
    while i < w.idle.len() {
        let watch = &w.idle[i];
        let last = w.stopping.contains(&watch.id);
        if last && !last_sample_due(watch.since.as_ref()) {
            let id = w.idle.swap_remove(i).id;
            w.stopping.retain(|&x| x != id);
            w.stopped.push(id);
            answered = true;
            continue;
        }
        let due = match &watch.since {
            _ if last => true,
            None => true,
            Some(s) if now >= s.at + watch.interval => true,
            Some(s) => {
                let at = s.at + watch.interval;
                next = Some(next.map_or(at, |n| n.min(at)));
                false
            }
        };
        if due {
            let watch = w.idle.swap_remove(i);
            w.busy.push((watch.id, watch.since.is_none()));
            work.push((watch, last));
        } else {
            i += 1;
        }
    }
    (answered, next)
}

/// The thread: waits for the next run due a baseline, a sample or its last
/// sample; takes them out of the lock, reads `/proc` (and NVML) once for
/// all of them, records, and puts them back.
fn sample_forever(shared: &Shared) {
    let mut reader = Reader::new(
        Path::new("/proc"),
        Path::new("/sys/block"),
        std::process::id(),
    );
    let nvml = system_nvml();
    let mut gpus = None;
    let mut points: Vec<(String, f64)> = Vec::new();
    let mut batch: Vec<(u32, f64)> = Vec::new();
    let mut work: Vec<(Watch, bool)> = Vec::new();
    let mut w = shared.lock();
    loop {
        let (answered, next) = take_due(&mut w, &mut work);
        if answered {
            shared.answered.notify_all();
        }
        if work.is_empty() {
            if let Some(next) = next {
                let left = next.saturating_duration_since(Instant::now());
                w = shared
                    .wake
                    .wait_timeout(w, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            } else {
                // Nothing to sample: the GPUs are let go until there is.
                gpus = None;
                w = shared.wake.wait(w).unwrap_or_else(PoisonError::into_inner);
            }
            continue;
        }
        drop(w);

        let reading = reader.read();
        let mut keep = Vec::with_capacity(work.len());
        for (mut watch, last) in work.drain(..) {
            let mut alive = true;
            if let Some(since) = &watch.since
                && (!last || reading.at.duration_since(since.at) >= MIN_END_SAMPLE)
            {
                points.clear();
                reader.rates(since, &reading, &mut points);
                if gpus.is_none() {
                    gpus = nvml.and_then(nvml::Nvml::session);
                }
                if let Some(gpus) = &gpus {
                    for (index, reading) in gpus.read() {
                        reading.points(index, &mut points);
                    }
                }
                alive = watch.run.upgrade().is_some_and(|run| {
                    record(&run, &mut watch.ids, &points, &mut batch, watch.step).is_ok()
                });
                watch.step += 1;
            }
            watch.since = Some(reading.clone());
            if !last && alive && watch.run.strong_count() > 0 {
                keep.push(watch);
            }
        }

        w = shared.lock();
        let Watches {
            latest,
            idle,
            busy,
            dropped,
            stopping,
            stopped,
            ..
        } = &mut *w;
        *latest = Some(reading);
        busy.clear();
        keep.retain(|x| !dropped.contains(&x.id));
        dropped.clear();
        idle.extend(keep);
        // Ending runs no longer sampled (recorded last, or gone) are
        // answered.
        let before = stopped.len();
        stopping.retain(|&id| {
            let sampled = idle.iter().any(|x| x.id == id);
            if !sampled {
                stopped.push(id);
            }
            sampled
        });
        if stopped.len() > before {
            shared.answered.notify_all();
        }
    }
}

/// Appends one sample to the run's journal as one record.
fn record(
    run: &Run,
    ids: &mut HashMap<String, u32>,
    points: &[(String, f64)],
    batch: &mut Vec<(u32, f64)>,
    step: i64,
) -> Result<(), SdkError> {
    batch.clear();
    for (name, value) in points {
        let id = if let Some(&id) = ids.get(name) {
            id
        } else {
            let id = run.metric_key(name)?;
            ids.insert(name.clone(), id);
            id
        };
        batch.push((id, *value));
    }
    run.log_metrics_ids(batch.iter().copied(), Some(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// A baseline and the samples after it, as the thread takes them.
    struct Collector {
        reader: Reader,
        last: Counters,
        ticks_per_sec: f64,
    }

    impl Collector {
        fn new(proc_root: &Path, sys_block: &Path, pid: u32) -> Self {
            let mut reader = Reader::new(proc_root, sys_block, pid);
            let last = reader.read();
            let ticks_per_sec = reader.ticks_per_sec;
            Self {
                reader,
                last,
                ticks_per_sec,
            }
        }

        fn sample(&mut self, out: &mut Vec<(String, f64)>) {
            let now = self.reader.read();
            self.reader.rates(&self.last, &now, out);
            self.last = now;
        }
    }

    fn watch(id: u64, since: Option<Instant>) -> Watch {
        Watch {
            id,
            run: Weak::new(),
            interval: DEFAULT_INTERVAL,
            since: since.map(|at| Counters {
                at,
                cpu: HashMap::new(),
                rss_pages: 0,
                memory: None,
                disk: None,
                net: None,
            }),
            step: 0,
            ids: HashMap::new(),
        }
    }

    #[test]
    fn a_stuck_sampler_delays_the_end_by_stop_wait_at_most() {
        // The thread took the run's sample out of the lock, and is stuck in
        // a call that ignores the stop (NVML on a GPU in a bad state).
        let shared = Shared::default();
        shared.lock().busy.push((7, false));
        let t = Instant::now();
        stop(&shared, 7, STOP_WAIT);
        let waited = t.elapsed();
        assert!(
            waited >= STOP_WAIT && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        // The thread lets the run go when it gets back to it.
        let w = shared.lock();
        assert_eq!((&w.dropped[..], w.stopping.len()), (&[7][..], 0));
    }

    #[test]
    fn a_run_ending_with_no_last_sample_due_ends_without_the_thread() {
        // No thread here at all: none of these waits for one.
        let shared = Shared::default();
        {
            let mut w = shared.lock();
            // Before its baseline; just after it; while the thread takes it.
            w.idle.push(watch(1, None));
            w.idle.push(watch(2, Some(Instant::now())));
            w.busy.push((3, true));
        }
        let t = Instant::now();
        for id in [1, 2, 3] {
            stop(&shared, id, Duration::from_secs(10));
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let w = shared.lock();
        assert!(w.idle.is_empty() && w.stopping.is_empty());
        assert_eq!(w.dropped, [3]);
    }

    #[test]
    fn a_run_ending_a_while_after_its_last_sample_asks_for_one() {
        let shared = Shared::default();
        let old = Instant::now().checked_sub(MIN_END_SAMPLE * 2).unwrap();
        shared.lock().idle.push(watch(1, Some(old)));
        let t = Instant::now();
        stop(&shared, 1, Duration::from_millis(300));
        // Nobody answered: it waited, then let the run go.
        assert!(t.elapsed() >= Duration::from_millis(300));
        let w = shared.lock();
        assert!(w.idle.is_empty() && w.stopping.is_empty());
    }

    #[test]
    fn the_client_and_the_environment_decide_together() {
        let on = |a, i, e: &[(&str, &str)]| SystemMetrics::resolve_with(a, i, env(e)).unwrap();
        assert_eq!(
            on(true, None, &[]),
            SystemMetrics {
                enabled: true,
                interval: DEFAULT_INTERVAL
            }
        );
        assert!(!on(false, None, &[]).enabled);
        for off in ["0", "false", "No", " off "] {
            assert!(!on(true, None, &[(ENABLE_VAR, off)]).enabled, "{off}");
        }
        // The variable turns it off, never on against the client.
        assert!(!on(false, None, &[(ENABLE_VAR, "1")]).enabled);
        assert!(on(true, None, &[(ENABLE_VAR, "")]).enabled);
        let i = on(true, None, &[(INTERVAL_VAR, "0.5")]).interval;
        assert_eq!(i, Duration::from_millis(500));
        // The client's interval wins over the variable's.
        let i = on(true, Some(2.0), &[(INTERVAL_VAR, "0.5")]).interval;
        assert_eq!(i, Duration::from_secs(2));
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_value() {
        let err = |a, i, e: &[(&str, &str)]| {
            SystemMetrics::resolve_with(a, i, env(e))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(true, None, &[(ENABLE_VAR, "maybe")]),
            "`LAB_SYSTEM_METRICS` must be `1` to record system metrics or `0` not to (also true/false, yes/no, on/off): got \"maybe\""
        );
        assert_eq!(
            err(true, None, &[(INTERVAL_VAR, "5s")]),
            "`LAB_SYSTEM_METRICS_INTERVAL` must be a number of seconds from 0.1 to 86400: got \"5s\""
        );
        for bad in [0.0, 0.05, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            let e = err(true, Some(bad), &[]);
            assert!(e.starts_with("`system_metrics_interval` must be"), "{e}");
        }
    }

    fn value(out: &[(String, f64)], name: &str) -> f64 {
        match out.iter().find(|(n, _)| n == name) {
            Some((_, v)) => *v,
            None => panic!("no {name} in {out:?}"),
        }
    }

    /// CPU seconds of this process's children it has waited for.
    fn waited_children_cpu_secs() -> f64 {
        // SAFETY: `getrusage` fills the struct it is given.
        let r = unsafe {
            let mut r: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut r), 0);
            r
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(r.ru_utime) + secs(r.ru_stime)
    }

    /// A shell that starts a grandchild spinning in a loop, until killed.
    fn spinning_grandchild() -> std::process::Child {
        use std::os::unix::process::CommandExt as _;
        std::process::Command::new("sh")
            .args(["-c", "sh -c 'while :; do :; done' & wait"])
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[test]
    fn the_tree_cpu_counts_live_grandchildren() {
        let me = std::process::id();
        let mut c = Collector::new(Path::new("/proc"), Path::new("/sys/block"), me);
        let child = spinning_grandchild();
        std::thread::sleep(Duration::from_millis(700));
        let mut out = Vec::new();
        c.sample(&mut out);
        // What the spinning shells used, read from their own files.
        let mut fs = procfs::ProcFs::new("/proc", me);
        let spun: u64 = fs.tree(child.id()).iter().map(|(_, s)| s.cpu_ticks).sum();
        // SAFETY: a plain system call on the test's own process group.
        unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
        let mut child = child;
        child.wait().unwrap();
        let spun_percent = spun as f64 / c.ticks_per_sec / 0.7 * 100.0;
        // However busy the machine, the loop got some of a core; the tree
        // counted it (the files were read a moment after the sample).
        assert!(spun_percent > 5.0, "{spun_percent}");
        let tree = value(&out, "sys/cpu_percent");
        assert!(
            tree > 0.8 * spun_percent,
            "{tree} < {spun_percent}: {out:?}"
        );
        assert!(value(&out, "sys/rss_bytes") > 1e6);
        let mem = value(&out, "sys/mem_percent");
        assert!(mem > 0.0 && mem < 100.0);
        assert!(value(&out, "sys/mem_used_bytes") > 0.0);
        for n in ["sys/net_recv_bytes_per_s", "sys/net_sent_bytes_per_s"] {
            assert!(value(&out, n) >= 0.0);
        }
        // No GPU metric comes from the collector itself.
        assert!(out.iter().all(|(n, _)| !n.starts_with("sys/gpu")));
    }

    #[test]
    fn the_tree_cpu_counts_children_that_came_and_went_between_samples() {
        let me = std::process::id();
        let mut c = Collector::new(Path::new("/proc"), Path::new("/sys/block"), me);
        let before = waited_children_cpu_secs();
        let started = Instant::now();
        // A child that runs a hundred short processes, and is gone (waited
        // for) before the sample.
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 100 ]; do i=$((i+1)); /bin/true; done",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let used = waited_children_cpu_secs() - before;
        let mut out = Vec::new();
        c.sample(&mut out);
        let secs = started.elapsed().as_secs_f64();
        let used_percent = used / secs * 100.0;
        assert!(used > 0.01, "{used}");
        let tree = value(&out, "sys/cpu_percent");
        // Tick-sized rounding aside, all of it.
        let tick_percent = 100.0 / c.ticks_per_sec / secs;
        assert!(
            tree + 2.0 * tick_percent >= used_percent,
            "{tree} < {used_percent}: {out:?}"
        );
    }
}
