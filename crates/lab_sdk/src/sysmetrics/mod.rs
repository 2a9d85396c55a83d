//! System metrics: a named background thread that, while a run is live,
//! records what the machine is doing as metrics named `sys/...`.
//!
//! Every [`SystemMetrics::interval`] (5 s by default) it records the CPU and
//! resident memory of the process and its descendants (`DataLoader`
//! workers, `multiprocessing` pools), the machine's memory, its disk and
//! network throughput, and per NVIDIA GPU (through NVML, loaded at run time;
//! absent without a GPU or without the library) utilisation, memory,
//! temperature and power. The thread takes a baseline when the run starts,
//! records a sample at each interval, and a last one when the run ends
//! (unless the previous sample was under [`MIN_END_SAMPLE`] before): a run
//! shorter than the interval still gets one sample, covering all of it.
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
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// What the sampler reads from `/proc`, and the counters of the previous
/// sample that rates are taken against.
struct Collector {
    proc: procfs::ProcFs,
    pid: u32,
    ticks_per_sec: f64,
    page_bytes: u64,
    disks: std::collections::HashSet<String>,
    last: Instant,
    /// Each process of the tree, by pid and start time, to its CPU ticks
    /// and those of the children it has waited for.
    cpu: HashMap<(u32, u64), u64>,
    disk: Option<(u64, u64)>,
    net: Option<(u64, u64)>,
}

impl Collector {
    /// A baseline: what the tree and the machine have done so far.
    fn new(proc_root: &Path, sys_block: &Path, pid: u32) -> Self {
        let mut c = Self {
            proc: procfs::ProcFs::new(proc_root, pid),
            pid,
            ticks_per_sec: rustix::param::clock_ticks_per_second() as f64,
            page_bytes: rustix::param::page_size() as u64,
            disks: procfs::whole_disks(sys_block),
            last: Instant::now(),
            cpu: HashMap::new(),
            disk: None,
            net: None,
        };
        c.sample(&mut Vec::new());
        c
    }

    /// Appends the metrics since the previous sample to `out`.
    fn sample(&mut self, out: &mut Vec<(String, f64)>) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
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
        let tree = self.proc.tree(self.pid);
        let mut cpu = HashMap::with_capacity(tree.len());
        let (mut now_ticks, mut rss_pages) = (0u64, 0u64);
        for (pid, stat) in &tree {
            let total = stat.cpu_ticks.saturating_add(stat.children_ticks);
            now_ticks = now_ticks.saturating_add(total);
            rss_pages += stat.rss_pages;
            // With the start time, a pid reused by a later process is
            // another process.
            cpu.insert((*pid, stat.start_ticks), total);
        }
        // A process not seen before was born into the tree since the
        // previous sample: all its time is new. One that left the tree
        // without being waited for by a process of it (a daemon) takes
        // its time along; what is left cannot go below nothing.
        let before_ticks: u64 = self.cpu.values().sum();
        let ticks = now_ticks.saturating_sub(before_ticks);
        self.cpu = cpu;
        if !tree.is_empty() && secs > 0.0 {
            put(
                "cpu_percent",
                ticks as f64 / self.ticks_per_sec / secs * 100.0,
            );
            put("rss_bytes", (rss_pages * self.page_bytes) as f64);
        }

        if let Some(m) = self.proc.meminfo() {
            put("mem_used_bytes", m.used_bytes() as f64);
            put("mem_percent", m.used_percent());
        }

        let disks = &self.disks;
        let disk = self.proc.diskstats(|name| disks.contains(name));
        if let (Some((r0, w0)), Some((r1, w1))) = (self.disk, disk)
            && secs > 0.0
            && r1 >= r0
            && w1 >= w0
        {
            put("disk_read_bytes_per_s", (r1 - r0) as f64 / secs);
            put("disk_write_bytes_per_s", (w1 - w0) as f64 / secs);
        }
        self.disk = disk;

        let net = self.proc.net_dev();
        if let (Some((r0, s0)), Some((r1, s1))) = (self.net, net)
            && secs > 0.0
            && r1 >= r0
            && s1 >= s0
        {
            put("net_recv_bytes_per_s", (r1 - r0) as f64 / secs);
            put("net_sent_bytes_per_s", (s1 - s0) as f64 / secs);
        }
        self.net = net;
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

/// Tells the sampler to take its last sample and stop, and tells its
/// stopper when it has.
#[derive(Default)]
struct Stop {
    flags: Mutex<Flags>,
    wake: Condvar,
}

#[derive(Default)]
struct Flags {
    stopped: bool,
    done: bool,
}

impl Stop {
    fn flags(&self) -> std::sync::MutexGuard<'_, Flags> {
        self.flags.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `deadline` or a stop; true on a stop.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut flags = self.flags();
        while !flags.stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            flags = self
                .wake
                .wait_timeout(flags, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        flags.stopped
    }
}

/// Marks the sampler done when its thread leaves, however it leaves.
struct Done<'a>(&'a Stop);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.flags().done = true;
        self.0.wake.notify_all();
    }
}

/// A run's sampler thread.
pub(crate) struct Sampler {
    stop: Arc<Stop>,
    handle: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling for `run` every `interval`. The thread holds the run
    /// weakly, and stops by itself when the run is gone or refuses a record
    /// (it ended, or its journal failed).
    pub fn start(run: Weak<Run>, interval: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(Stop::default());
        let for_thread = Arc::clone(&stop);
        let handle = crate::thread::spawn_quiet(THREAD_NAME, move || {
            let _done = Done(&for_thread);
            sample_until_stopped(&run, interval, &for_thread);
        })?;
        Ok(Self { stop, handle })
    }

    /// Asks for the last sample and waits for it to be recorded, up to
    /// [`STOP_WAIT`]. A sampler still busy then is left to finish on its
    /// own: the run's end refuses anything it appends later.
    pub fn stop(self) {
        let deadline = Instant::now() + STOP_WAIT;
        let mut flags = self.stop.flags();
        flags.stopped = true;
        self.stop.wake.notify_all();
        while !flags.done {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            flags = self
                .stop
                .wake
                .wait_timeout(flags, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(flags);
        // A panic in the sampler lost system metrics, nothing else.
        let _ = self.handle.join();
    }
}

fn sample_until_stopped(run: &Weak<Run>, interval: Duration, stop: &Stop) {
    let mut collector = Collector::new(
        Path::new("/proc"),
        Path::new("/sys/block"),
        std::process::id(),
    );
    let gpus = system_nvml().and_then(nvml::Nvml::session);
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut points: Vec<(String, f64)> = Vec::new();
    let mut batch: Vec<(u32, f64)> = Vec::new();
    let mut sample_number = 0;
    loop {
        let stopping = stop.wait_until(collector.last + interval);
        if stopping && collector.last.elapsed() < MIN_END_SAMPLE {
            return;
        }
        points.clear();
        collector.sample(&mut points);
        if let Some(gpus) = &gpus {
            for (index, reading) in gpus.read() {
                reading.points(index, &mut points);
            }
        }
        let Some(run) = run.upgrade() else {
            return;
        };
        if record(&run, &mut ids, &points, &mut batch, sample_number).is_err() || stopping {
            return;
        }
        sample_number += 1;
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

    #[test]
    fn a_stuck_sampler_delays_the_end_by_stop_wait_at_most() {
        let stop = Arc::new(Stop::default());
        let for_thread = Arc::clone(&stop);
        // A sampler stuck in a call that ignores the stop for 3 s.
        let handle = std::thread::Builder::new()
            .name("stuck".into())
            .spawn(move || {
                let _done = Done(&for_thread);
                std::thread::sleep(Duration::from_secs(3));
            })
            .unwrap();
        let t = Instant::now();
        Sampler { stop, handle }.stop();
        let waited = t.elapsed();
        assert!(
            waited >= STOP_WAIT && waited < Duration::from_secs(2),
            "{waited:?}"
        );

        // One that answers is joined at once.
        let stop = Arc::new(Stop::default());
        let for_thread = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("prompt".into())
            .spawn(move || {
                let _done = Done(&for_thread);
                for_thread.wait_until(Instant::now() + Duration::from_mins(1));
            })
            .unwrap();
        let t = Instant::now();
        Sampler { stop, handle }.stop();
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
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
