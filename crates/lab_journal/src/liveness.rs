//! Telling a live writer from a dead one.
//!
//! The writer holds an exclusive `flock` on its journal for as long as it
//! lives, so a journal whose lock is free has no writer. The converse does not
//! hold: a child process forked by the writer (a data-loader worker, or a
//! helper caught between `fork` and `exec`) shares the locked file description
//! and keeps the lock after the writer dies. So the writer also records who it
//! is — [`WriterIdentity`] — and a reader asks the kernel whether that process
//! still runs, but only where the answer is certain: on the same machine, in
//! the same boot, and in the same PID namespace. A writer in a container
//! (`unshare --pid`, `docker --network host`, a batch scheduler's sandbox) has
//! process ids that mean nothing to a reader outside it; there, and wherever
//! the writer's `/proc` was not its own, only the lock speaks.
//!
//! Whatever this module says, a journal whose lock is held is never
//! truncated, moved or rewritten by a reader: a wrong verdict may at worst
//! mark a run crashed early, never cost a live writer its file.

use lab_types::Value;

/// The process that writes a journal: recorded as the `writer` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterIdentity {
    /// Its process id.
    pub pid: i64,
    /// When it started, in clock ticks since boot (`/proc/<pid>/stat` field 22),
    /// which tells it from a later process that reuses the id.
    pub start_ticks: i64,
    /// The kernel's boot id: a reboot kills every writer.
    pub boot_id: String,
    /// The machine's name.
    pub host: String,
    /// The writer's PID namespace (the inode of `/proc/self/ns/pid`): process
    /// ids are only comparable within one. `None` in journals of older Labs.
    pub pid_ns: Option<i64>,
}

/// The attribute key the identity is recorded under.
pub const WRITER_ATTR: &str = lab_types::fields::attr::WRITER;

impl WriterIdentity {
    /// This process, where the platform can say (Linux); `None` elsewhere.
    #[must_use]
    pub fn current() -> Option<Self> {
        let pid = i64::from(std::process::id());
        // In a PID namespace whose `/proc` belongs to another (`unshare --pid`
        // without `--mount-proc`), `/proc/<pid>` is some other process: then
        // this process cannot describe itself, and says nothing.
        if proc_self_pid()? != pid {
            return None;
        }
        Some(Self {
            pid,
            start_ticks: start_ticks(pid)?.0,
            boot_id: boot_id()?,
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            pid_ns: pid_namespace(),
        })
    }

    /// As a journal value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut items = vec![
            ("pid".into(), Value::Int(self.pid)),
            ("start_ticks".into(), Value::Int(self.start_ticks)),
            ("boot_id".into(), Value::Str(self.boot_id.clone())),
            ("host".into(), Value::Str(self.host.clone())),
        ];
        if let Some(ns) = self.pid_ns {
            items.push(("pid_ns".into(), Value::Int(ns)));
        }
        Value::Dict(items)
    }

    /// From a journal value.
    #[must_use]
    pub fn from_value(v: &Value) -> Option<Self> {
        let Value::Dict(items) = v else { return None };
        let get = |k: &str| items.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        match (get("pid"), get("start_ticks"), get("boot_id"), get("host")) {
            (
                Some(Value::Int(pid)),
                Some(Value::Int(start)),
                Some(Value::Str(boot)),
                Some(Value::Str(host)),
            ) => Some(Self {
                pid: *pid,
                start_ticks: *start,
                boot_id: boot.clone(),
                host: host.clone(),
                pid_ns: match get("pid_ns") {
                    Some(Value::Int(ns)) => Some(*ns),
                    _ => None,
                },
            }),
            _ => None,
        }
    }

    /// `Some(true)` when the process is certainly gone (exited, a zombie, or
    /// its id reused), `Some(false)` when it runs, `None` when this process
    /// cannot tell (another host, another boot id, another PID namespace, an
    /// identity from a Lab that did not record its namespace, no `/proc`).
    #[must_use]
    pub fn is_dead(&self) -> Option<bool> {
        let here = Self::current()?;
        if here.host != self.host {
            return None;
        }
        // A lock held across a reboot is impossible on a local file system:
        // another boot id behind a held lock is another machine (of the same
        // name, sharing the project), whose processes this one cannot see.
        if here.boot_id != self.boot_id {
            return None;
        }
        if self.pid_ns.is_none() || here.pid_ns != self.pid_ns {
            return None;
        }
        match start_ticks(self.pid) {
            Some((ticks, state)) => Some(ticks != self.start_ticks || state == 'Z' || state == 'X'),
            // No `/proc/<pid>` to read: the process is gone, or `/proc` hides
            // it from this reader (mounted with `hidepid`, and the writer is
            // another user's). Only the kernel's answer tells which; a hidden
            // process's start time cannot be compared, so then the lock speaks.
            None => match process_exists(self.pid) {
                Some(false) => Some(true),
                _ => None,
            },
        }
    }
}

/// Whether a process with this id exists in this PID namespace (`kill(pid, 0)`:
/// `ESRCH` when none does, success or `EPERM` when one does).
fn process_exists(pid: i64) -> Option<bool> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok().filter(|p| *p > 0)?)?;
    match rustix::process::test_kill_process(pid) {
        Err(e) if e == rustix::io::Errno::SRCH => Some(false),
        Ok(()) | Err(_) => Some(true),
    }
}

/// Field 22 (start time) and field 3 (state) of `/proc/<pid>/stat`.
fn start_ticks(pid: i64) -> Option<(i64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((ticks, state))
}

/// The process id `/proc/self` names: this process's id in the namespace of
/// the mounted `/proc`.
fn proc_self_pid() -> Option<i64> {
    std::fs::read_link("/proc/self")
        .ok()?
        .to_str()?
        .parse()
        .ok()
}

/// The inode of this process's PID namespace (`pid:[4026531836]`).
fn pid_namespace() -> Option<i64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    link.to_str()?
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_round_trips() {
        let me = WriterIdentity::current().expect("Linux has /proc");
        assert_eq!(me.is_dead(), Some(false));
        assert_eq!(WriterIdentity::from_value(&me.to_value()), Some(me.clone()));
        let reused = WriterIdentity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert_eq!(reused.is_dead(), Some(true));
        // A held lock cannot outlive a reboot: another boot id is another
        // machine of the same name, which this one cannot look into.
        let other_boot = WriterIdentity {
            boot_id: "another boot".into(),
            ..me.clone()
        };
        assert_eq!(other_boot.is_dead(), None);
        let elsewhere = WriterIdentity {
            host: format!("{}-other", me.host),
            ..me.clone()
        };
        assert_eq!(elsewhere.is_dead(), None);
        // A dead pid in another PID namespace, or from a Lab that did not say
        // which namespace, tells nothing.
        let gone = WriterIdentity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert_eq!(gone.is_dead(), Some(true));
        let contained = WriterIdentity {
            pid_ns: me.pid_ns.map(|ns| ns + 1),
            ..gone.clone()
        };
        assert_eq!(contained.is_dead(), None);
        let older = WriterIdentity {
            pid_ns: None,
            ..gone
        };
        assert_eq!(older.is_dead(), None);
        assert_eq!(WriterIdentity::from_value(&older.to_value()), Some(older));
    }

    #[test]
    fn an_exited_process_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        let ticks = start_ticks(pid).map_or(0, |t| t.0);
        child.wait().unwrap();
        let me = WriterIdentity::current().unwrap();
        let gone = WriterIdentity {
            pid,
            start_ticks: ticks,
            ..me
        };
        assert_eq!(gone.is_dead(), Some(true));
    }
}
