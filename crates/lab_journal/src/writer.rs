//! Appending to a journal through a shared memory map.
//!
//! The writer maps a window of the file, with the space reserved by
//! `fallocate` first: room for 64 KiB of records in a new journal (beside
//! the reserve kept to end the run), twice as much at each move up to
//! 8 MiB, or more for a larger frame. A short run reserves little, and a long one moves rarely. With the
//! space reserved first, a full disk is then an error
//! returned by `append`, never a `SIGBUS` on a store. Old windows are unmapped as
//! the writer moves on, so memory stays flat however long the run. A frame is
//! written payload first and length last; a reader (or a recovery after
//! `kill -9`) sees either the whole frame or a zero length, and a torn frame
//! fails its CRC.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{Ordering, fence};

use lab_types::{MetricPoint, Record};
use memmap2::{MmapMut, MmapOptions};

use crate::codec::{self, METRIC_PAYLOAD_LEN};
use crate::{FRAME_HEADER_LEN, HEADER_LEN, JournalError, MAX_PAYLOAD, header};

/// How much of the file is mapped at once, at most (a larger frame aside).
const WINDOW: u64 = 8 << 20;
/// The first window of a new journal: each one after is twice as large, up
/// to [`WINDOW`]. Reserving [`WINDOW`] for every new journal made a loop of
/// short runs hold 9 MiB of disk for each run not yet closed.
const FIRST_WINDOW: u64 = 64 << 10;

/// File space kept in reserve for the records that end a run (its artifacts'
/// `ArtifactStored` records, End and Close): ordinary appends fail with a full
/// disk while this much is still reserved, so a run can always be ended.
/// An End record's error text is capped well below this.
pub const END_RESERVE: u64 = 1 << 20;

/// The single writer of one run's journal. It holds an exclusive `flock` on the
/// file for as long as it lives, which is how readers tell a live run from a
/// crashed one.
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    map: Option<MmapMut>,
    /// File offset of the mapped window.
    map_start: u64,
    /// File offset where the next frame goes.
    len: u64,
    /// Bytes reserved in the file.
    allocated: u64,
    scratch: Vec<u8>,
    page: u64,
    /// The size of the next window.
    window: u64,
    /// The file's device and inode.
    id: (u64, u64),
}

impl JournalWriter {
    /// Creates a new journal at `path` (which must not exist), locks it and
    /// writes its header.
    pub fn create(path: &Path) -> Result<Self, JournalError> {
        let mut writer = Self::create_unmapped(path)?;
        writer.map_reserved()?;
        Ok(writer)
    }

    /// [`JournalWriter::create`] without reserving the file's space or
    /// mapping it: a journal made ahead of its run, which holds no more disk
    /// than its header until [`JournalWriter::map_reserved`] is called, as
    /// its run starts.
    pub fn create_unmapped(path: &Path) -> Result<Self, JournalError> {
        let file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?
            .into_parts()
            .0;
        // Lock before anything is written: a reader that sees a header without
        // a lock held knows the writer is gone.
        file.lock()?;
        (&file).write_all(&header())?;
        let meta = file.metadata()?;
        let writer = Self {
            id: (meta.dev(), meta.ino()),
            file,
            path: path.to_owned(),
            map: None,
            map_start: 0,
            len: HEADER_LEN as u64,
            allocated: HEADER_LEN as u64,
            scratch: Vec::with_capacity(256),
            page: rustix::param::page_size() as u64,
            window: FIRST_WINDOW,
        };
        Ok(writer)
    }

    /// Reserves the space of the first window and of the records that end
    /// a run ([`END_RESERVE`]), and maps it, unless that was done: what a
    /// journal needs before its first record.
    pub fn map_reserved(&mut self) -> Result<(), JournalError> {
        if self.map.is_none() {
            self.remap(0, END_RESERVE)?;
        }
        Ok(())
    }

    /// The device and inode of the journal's file: which file a descriptor
    /// of the same number is, in a process forked since, can be checked
    /// against it.
    #[must_use]
    pub fn file_id(&self) -> (u64, u64) {
        self.id
    }

    /// The journal's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells the writer its file was renamed (or its folder moved) to
    /// `path`: the descriptor, the lock and the mapping stay as they are.
    pub fn moved_to(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Bytes written so far, header included.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing but the header has been written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN as u64
    }

    /// Appends one record. When this returns, the record is in the kernel's page cache.
    ///
    /// Fails with a full disk while [`END_RESERVE`] bytes are still reserved:
    /// those are for [`JournalWriter::append_final`].
    pub fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        self.append_with(record, END_RESERVE)
    }

    /// Appends one of the records that end a run (`ArtifactStored`, End, Close),
    /// which may use the space [`JournalWriter::append`] leaves in reserve.
    pub fn append_final(&mut self, record: &Record) -> Result<(), JournalError> {
        self.append_with(record, 0)
    }

    /// [`JournalWriter::append_final`] for a record that other ending records
    /// follow (an `ArtifactStored` before the End record): it fails rather
    /// than leave less than `keep` bytes of the reserve for them.
    pub fn append_final_keeping(&mut self, record: &Record, keep: u64) -> Result<(), JournalError> {
        self.append_with(record, keep.min(END_RESERVE))
    }

    fn append_with(&mut self, record: &Record, keep: u64) -> Result<(), JournalError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        codec::encode(record, &mut scratch);
        let result = self.append_payload_with(&scratch, keep);
        self.scratch = scratch;
        result
    }

    /// Appends a [`Record::Metric`] without building it: the hot path of `log_metric`.
    pub fn append_metric(
        &mut self,
        time_nanos: i64,
        point: &MetricPoint,
    ) -> Result<(), JournalError> {
        let at = self.reserve(METRIC_PAYLOAD_LEN, END_RESERVE)?;
        let frame = self.frame_mut(at, METRIC_PAYLOAD_LEN)?;
        codec::encode_metric_into(&mut frame[FRAME_HEADER_LEN..], time_nanos, point);
        self.seal_frame(at, METRIC_PAYLOAD_LEN)
    }

    /// Appends an already encoded payload as one frame.
    pub fn append_payload(&mut self, payload: &[u8]) -> Result<(), JournalError> {
        self.append_payload_with(payload, END_RESERVE)
    }

    fn append_payload_with(&mut self, payload: &[u8], keep: u64) -> Result<(), JournalError> {
        let at = self.reserve(payload.len(), keep)?;
        let frame = self.frame_mut(at, payload.len())?;
        frame[FRAME_HEADER_LEN..].copy_from_slice(payload);
        self.seal_frame(at, payload.len())
    }

    /// Makes room for a frame, with `keep` more bytes reserved after it, and
    /// returns its offset in the window.
    fn reserve(&mut self, payload_len: usize, keep: u64) -> Result<usize, JournalError> {
        if payload_len > MAX_PAYLOAD {
            return Err(JournalError::TooLarge { size: payload_len });
        }
        // Keep 4 spare bytes so the zero length after the last frame is mapped too.
        let needed = (FRAME_HEADER_LEN + payload_len) as u64 + 4;
        let window_end = self.map_start + self.map.as_ref().map_or(0, |m| m.len() as u64);
        if self.map.is_none()
            || self.len + needed > window_end
            || self.len + needed + keep > self.allocated
        {
            self.remap(needed, keep)?;
        }
        Ok((self.len - self.map_start) as usize)
    }

    fn frame_mut(&mut self, at: usize, payload_len: usize) -> Result<&mut [u8], JournalError> {
        let map = self.map.as_mut().ok_or(JournalError::Closed)?;
        Ok(&mut map[at..at + FRAME_HEADER_LEN + payload_len])
    }

    /// Writes the CRC, then the length: the frame becomes visible as a whole.
    fn seal_frame(&mut self, at: usize, payload_len: usize) -> Result<(), JournalError> {
        let map = self.map.as_mut().ok_or(JournalError::Closed)?;
        let payload = &map[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + payload_len];
        let crc = crc32c::crc32c(payload);
        map[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        fence(Ordering::Release);
        map[at..at + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        self.len += (FRAME_HEADER_LEN + payload_len) as u64;
        Ok(())
    }

    /// Maps a window that starts at the page holding `len` and has room for
    /// `needed` more bytes, with `keep` more reserved in the file after them,
    /// reserving file space first. When the file system has no room for a
    /// whole window, what is reserved already is mapped, if it is enough.
    fn remap(&mut self, needed: u64, keep: u64) -> Result<(), JournalError> {
        let start = self.len - self.len % self.page;
        let round = |n: u64| n.div_ceil(self.page) * self.page;
        let mut end = start + round((self.len - start + needed).max(self.window) + keep);
        self.window = (self.window * 2).min(WINDOW);
        if end > self.allocated {
            match reserve_space(&self.file, self.allocated, end - self.allocated) {
                Ok(()) => self.allocated = end,
                Err(e) => {
                    let least = round(self.len + needed + keep);
                    if self.allocated < least {
                        return Err(e);
                    }
                    end = self.allocated - self.allocated % self.page;
                }
            }
        }
        let size = end - start;
        self.map = None;
        // SAFETY: the mapping covers space `reserve_space` made part of the file,
        // and only this writer changes the file's length (it truncates in
        // `close`, after unmapping). Other processes may read the file but
        // never write it.
        let map = unsafe {
            MmapOptions::new()
                .offset(start)
                .len(size as usize)
                .map_mut(&self.file)?
        };
        self.map = Some(map);
        self.map_start = start;
        Ok(())
    }

    /// Flushes the mapped window and the file to stable storage.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if let Some(map) = &self.map {
            map.flush()?;
        }
        self.file.sync_all()?;
        Ok(())
    }

    /// Appends [`Record::Close`], cuts the reserved space off, syncs the file to
    /// disk and releases the lock.
    pub fn close(self) -> Result<(), JournalError> {
        Self::close_all(vec![self])
            .pop()
            .unwrap_or(Err(JournalError::Closed))
    }

    /// Unmaps the journal and gives back its file, unchanged and still
    /// locked, without a Close record: for a forked child letting go of its
    /// copies of the parent's writers, which must not touch the journal.
    #[must_use]
    pub fn into_file(self) -> File {
        drop(self.map);
        self.file
    }

    /// Closes several journals together: each gets its Close record and is
    /// cut to its written length, then each is synced to disk and closed
    /// (which releases its lock). The journals are shared among up to
    /// [`SYNC_THREADS`] threads, each cutting its share, starting the
    /// writing back of their pages (on Linux) and then syncing them: most
    /// of a journal's close is waiting for the disk (the sync, and giving
    /// back the reserved blocks, which a file system mounted with `discard`
    /// tells the disk of at once), and the disk serves several waits at
    /// once, as file systems with a journal commit the metadata of
    /// concurrent syncs together. A loop of short runs spent 330 µs closing
    /// each journal on one thread and 130–175 µs on four to eight (ext4,
    /// batches of 256 journals of 3 KB). Returns each journal's result, in
    /// the order given.
    #[must_use]
    pub fn close_all(writers: Vec<JournalWriter>) -> Vec<Result<(), JournalError>> {
        let threads = writers.len().min(SYNC_THREADS);
        if threads <= 1 {
            return close_in_turn(writers);
        }
        let per = writers.len().div_ceil(threads);
        let mut shares = Vec::with_capacity(threads);
        let mut rest = writers;
        while !rest.is_empty() {
            let next = rest.split_off(per.min(rest.len()));
            shares.push(std::mem::replace(&mut rest, next));
        }
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(shares.len());
            for share in shares {
                // A share whose thread cannot be started is closed here.
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let spawned = std::thread::Builder::new()
                    .name("lab-sync".to_owned())
                    .spawn_scoped(scope, move || {
                        let share: Vec<JournalWriter> = rx.recv().unwrap_or_default();
                        close_in_turn(share)
                    });
                // The thread is given its share once it runs, so that a
                // failed spawn leaves the share here.
                let Ok(handle) = spawned else {
                    handles.push(Err(share));
                    continue;
                };
                match tx.send(share) {
                    Ok(()) => handles.push(Ok(handle)),
                    // The thread ends at once, with nothing to close.
                    Err(std::sync::mpsc::SendError(share)) => handles.push(Err(share)),
                }
            }
            handles
                .into_iter()
                .flat_map(|handle| match handle {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(share) => close_in_turn(share),
                })
                .collect()
        })
    }

    /// Appends [`Record::Close`] and cuts the reserved space off.
    fn cut(mut self) -> Result<Self, JournalError> {
        self.append_final(&Record::Close {
            time_nanos: lab_types::now_nanos(),
        })?;
        if let Some(map) = self.map.take() {
            // On Linux the map shares the page cache with the file, so the
            // `fsync` that follows writes back what was stored through it,
            // once it is unmapped; an `msync` first would sync it twice.
            #[cfg(not(target_os = "linux"))]
            map.flush()?;
            drop(map);
        }
        self.file.set_len(self.len)?;
        Ok(self)
    }
}

/// How many threads [`JournalWriter::close_all`] closes journals on, at
/// most.
const SYNC_THREADS: usize = 8;

/// Closes `writers` one after the other on this thread: every one is cut
/// and has its pages' writing back started before the first is synced, so
/// each sync mostly waits for writes already under way (a batch of 256
/// journals of 3 KB on ext4 spent 130 µs syncing each rather than 260).
fn close_in_turn(writers: Vec<JournalWriter>) -> Vec<Result<(), JournalError>> {
    let cut: Vec<_> = writers.into_iter().map(JournalWriter::cut).collect();
    #[cfg(target_os = "linux")]
    for writer in cut.iter().flatten() {
        start_writeback(&writer.file);
    }
    cut.into_iter()
        .map(|writer| {
            let writer = writer?;
            writer.file.sync_all()?;
            Ok(())
        })
        .collect()
}

/// Starts writing `file`'s dirty pages back to disk without waiting for
/// them (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`). Only a hint: what
/// makes the file durable is the `fsync` after it, which reports any error,
/// so a failure here is ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: the descriptor is open for the call (`file` is borrowed), and
    // `sync_file_range` reads no memory of this process.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Reserves `len` bytes at `offset`, the end of the file. File systems
/// without `fallocate` get a plain `ftruncate`, which extends the file
/// without reserving blocks.
fn reserve_space(file: &File, offset: u64, len: u64) -> Result<(), JournalError> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), offset, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            file.set_len(offset + len)?;
            Ok(())
        }
        Err(e) => {
            // ext4 keeps what it could allocate before it ran out of room,
            // and the file's length with it (to a whole block, not a page):
            // give it back, so that the file of a writer killed now still
            // ends in whole pages of reserved space, as readers expect.
            if file.metadata()?.len() > offset {
                file.set_len(offset)?;
            }
            Err(JournalError::Io(e.into()))
        }
    }
}

/// How long [`append_to_settled`] waits for readers to let go of a journal.
const SETTLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Appends `records` to a journal whose writer is gone (its lock is free;
/// this takes it while it works, waiting up to two seconds for readers), as one `write(2)` of whole frames after its
/// last good frame, then syncs it. Used to put back records salvaged from
/// pieces cut off the journal. Refused when another process holds the
/// journal, or when the journal does not end cleanly. Returns how many bytes it appended:
/// none when the journal ends with these very frames already (put back by a
/// salvage that stopped before it could rename its piece, or cut off twice).
pub fn append_to_settled(path: &Path, records: &[Record]) -> Result<u64, JournalError> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileExt as _;
    let mut file = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?
        .into_parts()
        .0;
    // A reader holds the lock for as long as it reads: wait a little for it.
    let deadline = std::time::Instant::now() + SETTLED_LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::InUse {
                    path: path.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
    let scan = crate::read_journal_as(path, 0, crate::Mode::Settled, |_, _| {})?;
    if let Some(d) = scan.tail_damage() {
        return Err(JournalError::BadHeader {
            path: path.display().to_string(),
            reason: format!(
                "it is damaged at byte {} ({}); fold it first so the damage is cut off",
                d.offset, d.reason
            ),
        });
    }
    let frames = frames_of(records)?;
    if let Some(at) = scan.end.checked_sub(frames.len() as u64) {
        let mut last = vec![0; frames.len()];
        file.read_exact_at(&mut last, at)?;
        if last == frames {
            return Ok(0);
        }
    }
    // Reserved zeros after the last frame go: the frames follow it directly.
    file.set_len(scan.end)?;
    file.seek(SeekFrom::Start(scan.end))?;
    file.write_all(&frames)?;
    file.sync_all()?;
    Ok(frames.len() as u64)
}

/// `records` as the frames a journal holds them in (length, CRC-32C,
/// payload), for a caller that writes them in one `write`.
pub(crate) fn frames_of(records: &[Record]) -> Result<Vec<u8>, JournalError> {
    let mut frames = Vec::new();
    let mut payload = Vec::new();
    for record in records {
        payload.clear();
        codec::encode(record, &mut payload);
        if payload.len() > MAX_PAYLOAD {
            return Err(JournalError::TooLarge {
                size: payload.len(),
            });
        }
        frames.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frames.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        frames.extend_from_slice(&payload);
    }
    Ok(frames)
}
