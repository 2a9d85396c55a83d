//! The capture on Unix: pipes and pseudo-terminals in place of fds 1 and 2,
//! and the thread that reads them.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use lab_types::{ConsoleLine, Record, Stream, now_nanos};

use super::lines::{Bound, Splitter};
use super::tail::TailFiles;
use crate::Run;
use crate::per_process::PerProcess;
use crate::thread::spawn_quiet;

/// What the calling threads and the `lab-console` thread share.
#[derive(Default)]
struct State {
    /// The write end of the thread's wake pipe, once the thread runs.
    wake: Option<OwnedFd>,
    /// Whether a capture holds fds 1 and 2.
    active: bool,
    next_id: u64,
    /// For the thread, in order.
    commands: Vec<Command>,
    /// Captures whose stop the thread has answered.
    stopped: Vec<u64>,
    /// Captures not yet over: recording, or forwarding what processes
    /// forked during them still write.
    open: usize,
}

enum Command {
    Start(Box<Session>),
    Stop(u64),
}

/// The state and its signal: this process's (a forked child gets new ones,
/// see [`after_fork_in_child`]).
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Rung by the thread when it answers a stop or a capture is over.
    changed: Condvar,
    /// The captures the thread reads, held by it while it reads and
    /// records (not while it waits in `poll`). A run's end takes it, if it
    /// is free, to end the recording itself when nothing waits in the
    /// pipes (see [`Capture::stop`]). Only the thread adds or removes a
    /// session or closes a source. Taken before `state` when both are.
    sessions: Mutex<Vec<Session>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sessions(&self) -> MutexGuard<'_, Vec<Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

static SHARED: PerProcess<Shared> = PerProcess::new();

/// How long ending a run waits for the thread to record what was written
/// before it: only a terminal that takes no output (stopped with Ctrl-S)
/// makes it wait that long.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How long ending a run waits for the thread to let go of the captures
/// before it asks the thread to end the recording instead.
const END_HERE_WAIT: Duration = Duration::from_micros(200);

/// How often the window size of a terminal is looked at.
const WINSIZE_POLL_MILLIS: i32 = 250;

/// Bytes read at a time.
const READ_BYTES: usize = 64 * 1024;

/// A capture of fds 1 and 2, from [`Capture::start`] to [`Capture::stop`].
pub(crate) struct Capture {
    id: u64,
    /// The fds taken over, with a copy of what they were.
    saved: Vec<(RawFd, OwnedFd)>,
    /// The device and inode of each copy, as `saved`.
    saved_ids: Vec<Option<(u64, u64)>>,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a descriptor a call just returned.
fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A copy of `fd` that children do not inherit.
fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fcntl` with `F_DUPFD_CLOEXEC` reads no memory.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: `fcntl` on a descriptor we own, no memory passed.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) }).map(|_| ())
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: `fcntl` on a descriptor we own, no memory passed. A failure
    // leaves the descriptor blocking, which only makes a drain wait.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: `isatty` reads no memory.
    unsafe { libc::isatty(fd) == 1 }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both were just made by `pipe2`, and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Copies the window size of `from` to `to` when it differs; returns
/// whether it did.
fn copy_winsize(from: RawFd, to: RawFd) -> bool {
    // SAFETY: both `winsize` values are valid for the `ioctl`s that fill or
    // read them.
    unsafe {
        let mut want: libc::winsize = std::mem::zeroed();
        let mut have: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &raw mut want) != 0 {
            return false;
        }
        if libc::ioctl(to, libc::TIOCGWINSZ, &raw mut have) == 0
            && (have.ws_row, have.ws_col, have.ws_xpixel, have.ws_ypixel)
                == (want.ws_row, want.ws_col, want.ws_xpixel, want.ws_ypixel)
        {
            return false;
        }
        libc::ioctl(to, libc::TIOCSWINSZ, &raw const want) == 0
    }
}

/// A pseudo-terminal set up like the terminal `like`: its master (read by
/// the thread) and its slave (to put in place of `like`).
fn pty_like(like: RawFd) -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: plain calls on descriptors we own; `name` has room for the
    // path `ptsname_r` writes and is NUL-terminated by it; `termios` is
    // filled by `tcgetattr` before `tcsetattr` reads it.
    unsafe {
        let master = owned(libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY))?;
        set_cloexec(&master)?;
        check(libc::grantpt(master.as_raw_fd()))?;
        check(libc::unlockpt(master.as_raw_fd()))?;
        let mut name = [0 as libc::c_char; 128];
        let err = libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len());
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
        let slave = owned(libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(like, &raw mut t) == 0 {
            check(libc::tcsetattr(
                slave.as_raw_fd(),
                libc::TCSANOW,
                &raw const t,
            ))?;
        }
        copy_winsize(like, slave.as_raw_fd());
        Ok((master, slave))
    }
}

/// Puts `with` in place of `fd` (children inherit it).
fn replace(fd: RawFd, with: &OwnedFd) -> io::Result<()> {
    loop {
        // SAFETY: `dup2` between two open descriptors reads no memory.
        match check(unsafe { libc::dup2(with.as_raw_fd(), fd) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.map(|_| ()),
        }
    }
}

/// One captured stream, as the thread sees it.
struct Source {
    stream: Stream,
    /// The read end of the pipe, or the pseudo-terminal's master.
    read: Option<OwnedFd>,
    /// A copy of the original, where every byte goes on to.
    forward: Option<OwnedFd>,
    pty: bool,
    splitter: Splitter,
}

/// One capture, as the thread sees it.
struct Session {
    id: u64,
    sources: Vec<Source>,
    /// Where the lines go, until the run ends (or every source closed).
    recorder: Option<Recorder>,
}

/// Writes a byte to the thread's wake pipe (made non-blocking: when full,
/// the thread has wake-ups enough waiting).
fn wake(state: &State) {
    if let Some(fd) = &state.wake {
        // SAFETY: writes one byte from a valid buffer to a pipe we own.
        unsafe {
            libc::write(fd.as_raw_fd(), [1u8].as_ptr().cast(), 1);
        }
    }
}

impl Capture {
    /// Captures fds 1 and 2 for `run`, keeping at most `limit_bytes` of
    /// text. `None` when another capture holds them, or neither is open.
    pub(crate) fn start(run: Weak<Run>, limit_bytes: u64) -> io::Result<Option<Capture>> {
        let shared = SHARED.get();
        {
            let mut state = shared.lock();
            if state.active {
                return Ok(None);
            }
            state.active = true;
        }
        match Self::take_over(shared, run, limit_bytes) {
            Ok(Some(c)) => Ok(Some(c)),
            other => {
                shared.lock().active = false;
                other
            }
        }
    }

    fn take_over(
        shared: &'static Shared,
        run: Weak<Run>,
        limit_bytes: u64,
    ) -> io::Result<Option<Capture>> {
        let mut saved: Vec<(RawFd, OwnedFd)> = Vec::new();
        let mut sources = Vec::new();
        let result = (|| -> io::Result<()> {
            for (fd, stream) in [(1, Stream::Stdout), (2, Stream::Stderr)] {
                let Ok(original) = dup_cloexec(fd) else {
                    // Closed: nothing to capture there.
                    continue;
                };
                let forward = dup_cloexec(fd)?;
                let pty = is_terminal(fd);
                let (read, write) = if pty { pty_like(fd)? } else { pipe()? };
                replace(fd, &write)?;
                saved.push((fd, original));
                sources.push(Source {
                    stream,
                    read: Some(read),
                    forward: Some(forward),
                    pty,
                    splitter: Splitter::default(),
                });
            }
            Ok(())
        })();
        let restore = |saved: &[(RawFd, OwnedFd)]| {
            for (fd, original) in saved {
                // Best effort on a path that already failed.
                replace(*fd, original).ok();
            }
        };
        if let Err(e) = result {
            restore(&saved);
            return Err(e);
        }
        if sources.is_empty() {
            return Ok(None);
        }
        let mut state = shared.lock();
        if state.wake.is_none() {
            let started = pipe().and_then(|(wake_read, wake_write)| {
                set_nonblocking(&wake_read);
                set_nonblocking(&wake_write);
                spawn_quiet("lab-console", move || pump(shared, &wake_read))?;
                Ok(wake_write)
            });
            match started {
                Ok(wake_write) => state.wake = Some(wake_write),
                Err(e) => {
                    drop(state);
                    restore(&saved);
                    return Err(e);
                }
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open += 1;
        state.commands.push(Command::Start(Box::new(Session {
            id,
            sources,
            recorder: Some(Recorder {
                run,
                bound: Bound::new(limit_bytes),
                tail_files: None,
            }),
        })));
        wake(&state);
        let saved_ids = saved
            .iter()
            .map(|(_, original)| crate::per_process::file_id(original.as_fd()))
            .collect();
        Ok(Some(Capture {
            id,
            saved,
            saved_ids,
        }))
    }

    /// In a forked child, which has a copy of the parent's capture: closes
    /// the child's copies of the saved fds (see
    /// [`close_inherited`](crate::per_process::close_inherited)), leaving
    /// fds 1 and 2 as the child has them.
    pub(crate) fn let_go_in_forked_child(self) {
        for ((_, original), id) in self.saved.into_iter().zip(self.saved_ids) {
            crate::per_process::close_inherited(original, id);
        }
    }

    /// Puts the original fds back, waits for the thread to record what was
    /// written before (or records the end itself, see
    /// [`Capture::end_here`]), and lets another capture start.
    pub(crate) fn stop(self) {
        for (fd, original) in &self.saved {
            // Fails only if `fd` was closed and reused meanwhile, when there is
            // nothing better to do.
            replace(*fd, original).ok();
        }
        let shared = SHARED.get();
        if self.end_here(shared) {
            shared.lock().active = false;
            return;
        }
        let deadline = Instant::now() + STOP_WAIT;
        let mut state = shared.lock();
        state.commands.push(Command::Stop(self.id));
        wake(&state);
        loop {
            if let Some(i) = state.stopped.iter().position(|&id| id == self.id) {
                state.stopped.swap_remove(i);
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                // The thread records nothing more for the run once it
                // gets to the stop: the run has ended by then.
                break;
            }
            state = shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.active = false;
    }

    /// Ends the recording on the calling thread, without waking the thread
    /// and waiting for its answer (two trips between threads, most of what
    /// ending a captured run cost), when the thread is not reading or
    /// recording (it waits in `poll`, or has not taken the capture yet),
    /// every source is a pipe and nothing written waits in them: what is
    /// left to record is then only what the thread keeps (an unfinished
    /// last line, the tail of a long output), and that is written here.
    /// `true` too when the thread has already recorded the end (it saw every
    /// source closed, as putting the fds back closes the last copy of each
    /// pipe's write end when no child holds one). Otherwise `false`, and
    /// the thread drains the sources, forwarding what it reads (which may
    /// wait for a terminal; the run's end waits for it no longer than
    /// [`STOP_WAIT`]). A pseudo-terminal always goes to the thread: what was
    /// written to it reaches the master a moment later, so `FIONREAD` on
    /// the master can say nothing waits while a line is still on its way,
    /// where a read waits for it. Either way the thread goes on forwarding
    /// what processes forked during the run write.
    fn end_here(&self, shared: &Shared) -> bool {
        // The thread holds the lock for a moment each time it wakes (to
        // take a capture, to see one's pipes closed, to list what it
        // polls), and longer only while it reads or forwards: a moment's
        // wait here saves the trip to it and back.
        let deadline = Instant::now() + END_HERE_WAIT;
        let mut sessions = loop {
            match shared.sessions.try_lock() {
                Ok(sessions) => break sessions,
                Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::yield_now();
                }
                Err(std::sync::TryLockError::WouldBlock) => return false,
            }
        };
        // Held while the end is recorded: a moment's journal appends (and
        // the removal of the tail files of a long output).
        let mut state = shared.lock();
        let session = match sessions.iter_mut().find(|s| s.id == self.id) {
            Some(session) => session,
            None => match state.commands.iter_mut().find_map(|c| match c {
                Command::Start(s) if s.id == self.id => Some(&mut **s),
                _ => None,
            }) {
                Some(session) => session,
                // Neither taken nor to be taken: the thread saw every
                // source closed and recorded the end.
                None => return true,
            },
        };
        let to_the_thread = session.sources.iter().any(|s| {
            s.pty
                || s.read
                    .as_ref()
                    .is_some_and(|read| unread_bytes(read) != Some(0))
        });
        if to_the_thread {
            return false;
        }
        finish_recording(session, None);
        true
    }
}

/// How many bytes wait to be read from a pipe; `None` when it cannot
/// tell.
fn unread_bytes(fd: &OwnedFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: `FIONREAD` writes one `int` to the valid pointer given.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &raw mut n) };
    (ret == 0).then_some(n as usize)
}

/// Waits, up to `limit`, for the captures of ended runs to pass on what
/// processes forked during those runs wrote after they ended: at exit, the
/// process would otherwise take those bytes with it. (A capture still
/// recording is waited for no longer than `limit` either.)
pub(super) fn wait_for_forwarding(limit: Duration) {
    let shared = SHARED.get();
    let deadline = Instant::now() + limit;
    let mut state = shared.lock();
    while state.open > 0 {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        state = shared
            .changed
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

pub(super) fn after_fork_in_child() {
    // The parent's thread did not come along: its captures are not this
    // process's to stop or wait for, and this process may capture its own
    // runs.
    SHARED.renew();
}

/// Writes all of `bytes` to `fd`, waiting while it is full.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of `bytes.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 {
            bytes = &bytes[n as usize..];
            continue;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid `pollfd`.
                unsafe { libc::poll(&raw mut p, 1, -1) };
            }
            _ => return Err(e),
        }
    }
    Ok(())
}

/// Whether the pseudo-terminal turns each `\n` written into `\r\n`
/// (`OPOST` and `ONLCR`, as terminals do by default).
fn adds_carriage_returns(fd: &OwnedFd) -> bool {
    // SAFETY: `t` is valid for `tcgetattr` to fill.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(fd.as_raw_fd(), &raw mut t) == 0
            && t.c_oflag & libc::OPOST != 0
            && t.c_oflag & libc::ONLCR != 0
    }
}

/// `bytes` as they were before the pseudo-terminal put a `\r` before each
/// `\n`: the original terminal puts it there again. (A pair split between
/// two reads keeps its `\r`, which a terminal shows as nothing.)
fn without_added_carriage_returns(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

/// What a read gave.
enum Read {
    Bytes(usize),
    Nothing,
    Closed,
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Read {
    loop {
        // SAFETY: reads into a valid buffer of `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Read::Bytes(n as usize);
        }
        if n == 0 {
            return Read::Closed;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Read::Nothing,
            // EIO: every copy of a pseudo-terminal's slave is closed.
            _ => return Read::Closed,
        }
    }
}

/// Where the lines go while the run is being recorded.
struct Recorder {
    run: Weak<Run>,
    bound: Bound,
    /// The tail on disk as it comes, once there is one.
    tail_files: Option<TailFiles>,
}

impl Recorder {
    fn write(&self, record: &Record) {
        if let Some(run) = self.run.upgrade() {
            run.append_console(record);
        }
    }

    fn lines(&mut self, stream: Stream, texts: Vec<String>) {
        let time_nanos = now_nanos();
        let mut lines: Vec<ConsoleLine> = Vec::new();
        let mut tail: Vec<ConsoleLine> = Vec::new();
        for text in texts {
            let line = ConsoleLine { time_nanos, text };
            if !self.bound.fits_head(&line) {
                tail.push(line.clone());
            }
            lines.extend(self.bound.admit(stream, line));
        }
        if !lines.is_empty() {
            self.write(&Record::Console { stream, lines });
        }
        if !tail.is_empty() {
            if self.tail_files.is_none()
                && let Some(run) = self.run.upgrade()
            {
                self.tail_files = Some(TailFiles::new(&run.paths().dir, self.bound.tail_limit()));
            }
            if let Some(files) = self.tail_files.as_mut() {
                files.push(stream, tail);
            }
        }
    }

    /// The cut and the tail, at the end of the run.
    fn finish(&mut self) {
        let rest = self.bound.finish();
        // With tail files, a cut note is written even when nothing was cut:
        // it tells readers the tail is in the journal, not in the files.
        let cut = rest
            .cut
            .or_else(|| self.tail_files.as_ref().map(|_| (0, 0)));
        if let Some((lines, bytes)) = cut {
            self.write(&Record::ConsoleCut {
                time_nanos: now_nanos(),
                lines,
                bytes,
            });
        }
        let mut batch: Vec<ConsoleLine> = Vec::new();
        let mut batch_stream = Stream::Stdout;
        for (stream, line) in rest.tail {
            if stream != batch_stream && !batch.is_empty() {
                self.write(&Record::Console {
                    stream: batch_stream,
                    lines: std::mem::take(&mut batch),
                });
            }
            batch_stream = stream;
            batch.push(line);
        }
        if !batch.is_empty() {
            self.write(&Record::Console {
                stream: batch_stream,
                lines: batch,
            });
        }
        if let Some(files) = self.tail_files.take() {
            files.remove();
        }
    }
}

/// Reads once from `source`: forwards, then records.
fn pump_one(source: &mut Source, buf: &mut [u8], recorder: Option<&mut Recorder>) -> Read {
    let Some(read) = source.read.as_ref() else {
        return Read::Closed;
    };
    let got = read_some(read, buf);
    let Some(read) = source.read.as_ref() else {
        return Read::Closed;
    };
    match got {
        Read::Bytes(n) => {
            let bytes = &buf[..n];
            let undone;
            let out = if source.pty && adds_carriage_returns(read) {
                undone = without_added_carriage_returns(bytes);
                &undone[..]
            } else {
                bytes
            };
            if let Some(forward) = source.forward.as_ref()
                && let Err(e) = write_all(forward, out)
            {
                source.forward = None;
                if e.kind() == io::ErrorKind::BrokenPipe {
                    // The reader of the original went away (`| head`): close
                    // ours too, so the writer learns it as it would have.
                    source.read = None;
                }
            }
            if let Some(recorder) = recorder {
                let mut texts = Vec::new();
                source.splitter.push(bytes, &mut |l| texts.push(l));
                recorder.lines(source.stream, texts);
            }
        }
        Read::Closed => source.read = None,
        Read::Nothing => {}
    }
    got
}

/// Records what was left to read when `session`'s run ends (the fds are
/// back in place: what this process wrote is in the buffers), read with
/// `buf` (`None`: nothing is left, see [`Capture::end_here`]), and the rest
/// of its lines; from then on its sources are only forwarded.
fn finish_recording(session: &mut Session, mut buf: Option<&mut [u8]>) {
    let Some(mut rec) = session.recorder.take() else {
        return;
    };
    for s in &mut session.sources {
        if let Some(buf) = buf.as_deref_mut() {
            if let Some(read) = &s.read {
                set_nonblocking(read);
            }
            while let Read::Bytes(_) = pump_one(s, buf, Some(&mut rec)) {}
        }
        if let Some(text) = s.splitter.finish() {
            rec.lines(s.stream, vec![text]);
        }
    }
    rec.finish();
}

/// The `lab-console` thread: reads the sources of every capture not yet
/// over, and takes the callers' commands when woken through `wake`.
fn pump(shared: &Shared, wake: &OwnedFd) {
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        // Each source to poll, by its session's id and its place there
        // (a run's end may take the sessions while this waits, but adds
        // none, removes none and closes no source).
        let (live, mut fds, ptys) = {
            let sessions = shared.sessions();
            let live: Vec<(u64, usize, RawFd)> = sessions
                .iter()
                .flat_map(|s| {
                    s.sources.iter().enumerate().filter_map(move |(i, src)| {
                        src.read.as_ref().map(|r| (s.id, i, r.as_raw_fd()))
                    })
                })
                .collect();
            let fds: Vec<libc::pollfd> = live
                .iter()
                .map(|&(_, _, fd)| fd)
                .chain(std::iter::once(wake.as_raw_fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let ptys = sessions
                .iter()
                .flat_map(|s| &s.sources)
                .any(|src| src.pty && src.read.is_some());
            (live, fds, ptys)
        };
        let timeout = if ptys { WINSIZE_POLL_MILLIS } else { -1 };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            // EINTR; anything else (ENOMEM) is tried again, less often.
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        let mut sessions = shared.sessions();
        if n == 0 {
            for s in sessions.iter().flat_map(|s| &s.sources) {
                if let (true, Some(read), Some(fwd)) = (s.pty, &s.read, &s.forward) {
                    copy_winsize(fwd.as_raw_fd(), read.as_raw_fd());
                }
            }
            continue;
        }
        for (slot, &(id, i, _)) in live.iter().enumerate() {
            if fds[slot].revents != 0
                && let Some(session) = sessions.iter_mut().find(|s| s.id == id)
            {
                pump_one(&mut session.sources[i], &mut buf, session.recorder.as_mut());
            }
        }
        let mut answered = false;
        if fds.last().is_some_and(|p| p.revents != 0) {
            while let Read::Bytes(_) = read_some(wake, &mut buf) {}
            let commands = std::mem::take(&mut shared.lock().commands);
            let mut stops = Vec::new();
            for command in commands {
                match command {
                    Command::Start(session) => sessions.push(*session),
                    Command::Stop(id) => {
                        if let Some(session) = sessions.iter_mut().find(|s| s.id == id) {
                            finish_recording(session, Some(&mut buf));
                        }
                        stops.push(id);
                    }
                }
            }
            if !stops.is_empty() {
                shared.lock().stopped.extend(stops);
                answered = true;
            }
        }
        // Every source of a capture closed: before its run ended (the
        // script closed fds 1 and 2), the rest is recorded; after, the
        // processes forked during it are gone, and it is over.
        let before = sessions.len();
        sessions.retain_mut(|s| {
            if s.sources.iter().any(|src| src.read.is_some()) {
                return true;
            }
            if let Some(mut rec) = s.recorder.take() {
                for src in &mut s.sources {
                    if let Some(text) = src.splitter.finish() {
                        rec.lines(src.stream, vec![text]);
                    }
                }
                rec.finish();
            }
            false
        });
        let over = before - sessions.len();
        drop(sessions);
        if over > 0 {
            shared.lock().open -= over;
        }
        if answered || over > 0 {
            shared.changed.notify_all();
        }
    }
}
