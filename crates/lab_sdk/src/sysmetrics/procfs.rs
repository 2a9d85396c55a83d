//! What the system sampler reads from Linux's `/proc`: the CPU time and
//! resident memory of a process and its descendants, the machine's memory,
//! and the disk and network byte counters. Each file's parsing takes text
//! (tested on sample files); [`ProcFs`] reads the files, from a root that
//! tests point at a folder of their own.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// What the sampler needs of `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// The parent's process id.
    pub ppid: u32,
    /// User and system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// The user and system CPU time of the children it has waited for
    /// (theirs and their own waited-for children's), in clock ticks.
    pub children_ticks: u64,
    /// When the process started, in clock ticks after boot: with the pid,
    /// it tells a process from a later one that reuses the pid.
    pub start_ticks: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and
/// may hold spaces and parentheses itself, so the fields are counted from the
/// last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (the state) is the first after the name.
    let mut fields = rest.split_ascii_whitespace();
    let field = |fields: &mut std::str::SplitAsciiWhitespace<'_>, skip: usize| {
        fields.nth(skip).and_then(|f| f.parse::<u64>().ok())
    };
    let ppid = field(&mut fields, 1)?; // field 4
    let utime = field(&mut fields, 9)?; // field 14
    let stime = field(&mut fields, 0)?; // field 15
    // Fields 16 and 17 are signed in the kernel's format, never negative.
    let children_user = field(&mut fields, 0)?;
    let children_system = field(&mut fields, 0)?;
    let start_ticks = field(&mut fields, 4)?; // field 22
    let rss_pages = field(&mut fields, 1)?; // field 24 (after vsize)
    Some(ProcStat {
        ppid: u32::try_from(ppid).ok()?,
        cpu_ticks: utime.saturating_add(stime),
        children_ticks: children_user.saturating_add(children_system),
        start_ticks,
        rss_pages,
    })
}

/// Parses `/proc/PID/task/TID/children`: the children's pids, separated by
/// spaces.
pub(crate) fn parse_children(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split_ascii_whitespace().filter_map(|p| p.parse().ok())
}

/// The machine's memory, from `/proc/meminfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Memory {
    pub total_bytes: u64,
    /// What could be given to programs without swapping (`MemAvailable`).
    pub available_bytes: u64,
}

impl Memory {
    /// What is in use: everything not available.
    pub fn used_bytes(self) -> u64 {
        self.total_bytes.saturating_sub(self.available_bytes)
    }

    /// [`Memory::used_bytes`] as a percentage of the total.
    pub fn used_percent(self) -> f64 {
        if self.total_bytes == 0 {
            0.0
        } else {
            self.used_bytes() as f64 * 100.0 / self.total_bytes as f64
        }
    }
}

/// Parses `/proc/meminfo` (`MemTotal:  24684092 kB` lines). A kernel before
/// 3.14 has no `MemAvailable`: then free, buffers and page cache stand in.
pub(crate) fn parse_meminfo(text: &str) -> Option<Memory> {
    let (mut total, mut available) = (None, None);
    let (mut free, mut buffers, mut cached) = (0, 0, 0);
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        let Some(n) = words.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = if words.next() == Some("kB") {
            n.saturating_mul(1024)
        } else {
            n
        };
        match name {
            "MemTotal" => total = Some(bytes),
            "MemAvailable" => available = Some(bytes),
            "MemFree" => free = bytes,
            "Buffers" => buffers = bytes,
            "Cached" => cached = bytes,
            _ => {}
        }
    }
    let total_bytes = total?;
    Some(Memory {
        total_bytes,
        available_bytes: available.unwrap_or(free + buffers + cached),
    })
}

/// Bytes read and written, summed over the devices of `/proc/diskstats`
/// that `is_disk` accepts. Sectors there are always 512 bytes, whatever the
/// device's own sector size.
pub(crate) fn parse_diskstats(text: &str, is_disk: impl Fn(&str) -> bool) -> Option<(u64, u64)> {
    let mut seen = false;
    let (mut read, mut written) = (0u64, 0u64);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        // major minor name reads merged sectors_read ms writes merged sectors_written ...
        let (Some(name), Some(r), Some(w)) = (fields.get(2), fields.get(5), fields.get(9)) else {
            continue;
        };
        if !is_disk(name) {
            continue;
        }
        let (Ok(r), Ok(w)) = (r.parse::<u64>(), w.parse::<u64>()) else {
            continue;
        };
        seen = true;
        read = read.wrapping_add(r.wrapping_mul(512));
        written = written.wrapping_add(w.wrapping_mul(512));
    }
    seen.then_some((read, written))
}

/// Bytes received and sent, summed over the interfaces of `/proc/net/dev`
/// but the loopback, which carries the machine's talk with itself.
pub(crate) fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut seen = false;
    let (mut received, mut sent) = (0u64, 0u64);
    // Two lines of headings, then `  eth0: rx_bytes rx_packets ... tx_bytes ...`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_ascii_whitespace().collect();
        let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) else {
            continue;
        };
        let (Ok(rx), Ok(tx)) = (rx.parse::<u64>(), tx.parse::<u64>()) else {
            continue;
        };
        seen = true;
        received = received.wrapping_add(rx);
        sent = sent.wrapping_add(tx);
    }
    seen.then_some((received, sent))
}

/// A `/proc` to read, and a buffer to read its files into.
pub(crate) struct ProcFs {
    root: PathBuf,
    buf: String,
    /// Whether the kernel lists a task's children
    /// (`/proc/PID/task/TID/children`, `CONFIG_PROC_CHILDREN`); without it,
    /// finding a process's descendants takes a scan of every process.
    children_files: bool,
}

impl ProcFs {
    /// The `/proc` under `root` (`/proc` itself, or a test's folder).
    pub fn new(root: impl Into<PathBuf>, pid: u32) -> Self {
        let root = root.into();
        let children_files = root
            .join(format!("{pid}/task/{pid}/children"))
            .try_exists()
            .unwrap_or(false);
        Self {
            root,
            buf: String::new(),
            children_files,
        }
    }

    /// The file at `rel` under the root, or `None` when it cannot be read
    /// (a process that has just exited).
    fn read(&mut self, rel: &Path) -> Option<&str> {
        self.buf.clear();
        let mut f = fs_err::File::open(self.root.join(rel)).ok()?;
        f.read_to_string(&mut self.buf).ok()?;
        Some(&self.buf)
    }

    pub fn meminfo(&mut self) -> Option<Memory> {
        self.read(Path::new("meminfo")).and_then(parse_meminfo)
    }

    pub fn diskstats(&mut self, is_disk: impl Fn(&str) -> bool) -> Option<(u64, u64)> {
        self.read(Path::new("diskstats"))
            .and_then(|t| parse_diskstats(t, is_disk))
    }

    pub fn net_dev(&mut self) -> Option<(u64, u64)> {
        self.read(Path::new("net/dev")).and_then(parse_net_dev)
    }

    pub fn stat(&mut self, pid: u32) -> Option<ProcStat> {
        self.read(Path::new(&format!("{pid}/stat")))
            .and_then(parse_stat)
    }

    /// `pid` and every process descended from it, each with its
    /// `/proc/PID/stat`. A process that exits while it is read is left out.
    pub fn tree(&mut self, pid: u32) -> Vec<(u32, ProcStat)> {
        if self.children_files {
            self.tree_by_children(pid)
        } else {
            self.tree_by_scan(pid)
        }
    }

    /// The tree, from each task's list of the children it started.
    fn tree_by_children(&mut self, root: u32) -> Vec<(u32, ProcStat)> {
        let mut out = Vec::new();
        let mut todo = vec![root];
        let mut seen = HashSet::new();
        let mut kids = Vec::new();
        while let Some(pid) = todo.pop() {
            if !seen.insert(pid) {
                continue;
            }
            let Some(stat) = self.stat(pid) else {
                continue;
            };
            out.push((pid, stat));
            let Ok(tasks) = fs_err::read_dir(self.root.join(format!("{pid}/task"))) else {
                continue;
            };
            let tasks: Vec<_> = tasks
                .filter_map(|t| t.ok()?.file_name().into_string().ok())
                .collect();
            for tid in tasks {
                kids.clear();
                if let Some(text) = self.read(Path::new(&format!("{pid}/task/{tid}/children"))) {
                    kids.extend(parse_children(text));
                }
                todo.extend_from_slice(&kids);
            }
        }
        out
    }

    /// The tree, from every process's parent in a scan of `/proc`.
    fn tree_by_scan(&mut self, root: u32) -> Vec<(u32, ProcStat)> {
        let Ok(entries) = fs_err::read_dir(&self.root) else {
            return Vec::new();
        };
        let pids: Vec<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let mut stats = HashMap::with_capacity(pids.len());
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for pid in pids {
            if let Some(stat) = self.stat(pid) {
                stats.insert(pid, stat);
                children.entry(stat.ppid).or_default().push(pid);
            }
        }
        let mut out = Vec::new();
        let mut todo = vec![root];
        let mut seen = HashSet::new();
        while let Some(pid) = todo.pop() {
            if !seen.insert(pid) {
                continue;
            }
            if let Some(stat) = stats.get(&pid) {
                out.push((pid, *stat));
                if let Some(kids) = children.get(&pid) {
                    todo.extend_from_slice(kids);
                }
            }
        }
        out
    }
}

/// The whole disks under `sys_block` (`/sys/block`): those backed by a
/// device. Partitions are not there, and loop, RAM, device-mapper and RAID
/// devices have no `device` link, so no byte is counted twice.
pub(crate) fn whole_disks(sys_block: &Path) -> HashSet<String> {
    let Ok(entries) = fs_err::read_dir(sys_block) else {
        return HashSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (python3 (worker) x) S 4100 4242 4100 34816 4242 4194304 \
        13190 0 3 0 1520 377 7 9 20 0 12 0 3368857 2147483648 51234 \
        18446744073709551615 1 1 0 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_counts_fields_after_the_last_parenthesis() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            ProcStat {
                ppid: 4100,
                cpu_ticks: 1520 + 377,
                children_ticks: 7 + 9,
                start_ticks: 3_368_857,
                rss_pages: 51234,
            }
        );
    }

    #[test]
    fn stat_of_a_truncated_or_odd_file_is_none() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
        let negative_ppid = STAT.replace(") S 4100", ") S -1");
        assert_eq!(parse_stat(&negative_ppid), None);
    }

    #[test]
    fn children_are_pids_between_spaces() {
        assert_eq!(
            parse_children("26342 26400 \n").collect::<Vec<_>>(),
            [26342, 26400]
        );
        assert_eq!(parse_children("").count(), 0);
    }

    const MEMINFO: &str = "MemTotal:       24684092 kB\n\
        MemFree:        16682876 kB\n\
        MemAvailable:   23055816 kB\n\
        Buffers:          123456 kB\n\
        Cached:          4000000 kB\n\
        HugePages_Total:       0\n";

    #[test]
    fn meminfo_used_is_total_less_available() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total_bytes, 24_684_092 * 1024);
        assert_eq!(m.available_bytes, 23_055_816 * 1024);
        assert_eq!(m.used_bytes(), (24_684_092 - 23_055_816) * 1024);
        let p = m.used_percent();
        assert!((p - 6.596).abs() < 0.01, "{p}");
    }

    #[test]
    fn meminfo_without_memavailable_uses_free_buffers_and_cache() {
        let old = MEMINFO.replace("MemAvailable", "Other");
        let m = parse_meminfo(&old).unwrap();
        assert_eq!(m.available_bytes, (16_682_876 + 123_456 + 4_000_000) * 1024);
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    }

    const DISKSTATS: &str = "   7       0 loop0 511 0 9082 77 1103 627 1105846 2234 0 900 2863 0 0 0 0 279 551\n\
         253       0 vda 83005 1560 5330422 36049 410155 276345 9126298 374617 0 371940 437054 0 0 0 0 94371 26387\n\
         253       1 vda1 82000 1500 5300000 36000 410000 276000 9120000 374000 0 371000 436000 0 0 0 0 0 0\n\
         259       0 nvme0n1 10 0 100 1 20 0 200 2 0 3 3\n";

    #[test]
    fn diskstats_sums_whole_disks_in_bytes() {
        let disks = ["vda", "nvme0n1"];
        let (r, w) = parse_diskstats(DISKSTATS, |n| disks.contains(&n)).unwrap();
        assert_eq!(r, (5_330_422 + 100) * 512);
        assert_eq!(w, (9_126_298 + 200) * 512);
        assert_eq!(parse_diskstats(DISKSTATS, |_| false), None);
    }

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo: 94505153729 18803821    0    0    0     0          0         0 94505153729 18803821    0    0    0     0       0          0\n  \
eth0: 19527695699  470087    0    0    0     0          0         0 30077717  303010    0    0    0     0       0          0\n\
wlan0:1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n";

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let (rx, tx) = parse_net_dev(NET_DEV).unwrap();
        assert_eq!(rx, 19_527_695_699 + 1000);
        assert_eq!(tx, 30_077_717 + 2000);
        let only_lo: String = NET_DEV.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_net_dev(&only_lo), None);
    }

    /// A fake process: pid, parent, CPU ticks, and each task's children.
    type FakeProc<'a> = (u32, u32, u64, &'a [(u32, &'a str)]);

    /// Writes a fake `/proc` with `procs`.
    fn fake_proc(procs: &[FakeProc<'_>], children_files: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, ppid, ticks, tasks) in procs {
            let stat = format!(
                "{pid} (p) S {ppid} 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {pid}00 1000 10 0"
            );
            let p = dir.path().join(pid.to_string());
            fs_err::create_dir_all(p.join("task")).unwrap();
            fs_err::write(p.join("stat"), stat).unwrap();
            for (tid, kids) in *tasks {
                let t = p.join(format!("task/{tid}"));
                fs_err::create_dir_all(&t).unwrap();
                if children_files {
                    fs_err::write(t.join("children"), kids).unwrap();
                }
            }
        }
        dir
    }

    #[test]
    fn tree_follows_every_tasks_children() {
        // 10 started 11 from its main thread and 12 from another; 12
        // started 13; 20 is no relative.
        let procs: &[FakeProc<'_>] = &[
            (10, 1, 100, &[(10, "11 "), (15, "12")]),
            (11, 10, 5, &[(11, "")]),
            (12, 10, 7, &[(12, "13\n")]),
            (13, 12, 9, &[(13, "")]),
            (20, 1, 1000, &[(20, "")]),
        ];
        for children_files in [true, false] {
            let dir = fake_proc(procs, children_files);
            let mut fs = ProcFs::new(dir.path(), 10);
            assert_eq!(fs.children_files, children_files);
            let mut tree = fs.tree(10);
            tree.sort_by_key(|(pid, _)| *pid);
            let pids: Vec<u32> = tree.iter().map(|(p, _)| *p).collect();
            assert_eq!(pids, [10, 11, 12, 13], "children files: {children_files}");
            let ticks: u64 = tree.iter().map(|(_, s)| s.cpu_ticks).sum();
            assert_eq!(ticks, 121);
            assert!(fs.tree(99).is_empty());
        }
    }

    #[test]
    fn the_real_proc_has_this_process() {
        let me = std::process::id();
        let mut fs = ProcFs::new("/proc", me);
        let tree = fs.tree(me);
        assert_eq!(tree.first().map(|(p, _)| *p), Some(me));
        assert!(tree[0].1.rss_pages > 0);
        let m = fs.meminfo().unwrap();
        assert!(m.total_bytes > 0 && m.used_bytes() <= m.total_bytes);
        assert!(fs.net_dev().is_some() || !Path::new("/proc/net/dev").exists());
    }
}
