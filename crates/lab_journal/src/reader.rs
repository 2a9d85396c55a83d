//! Reading a journal back, with recovery.
//!
//! The reader streams the file with `read(2)` (never a memory map: a writer
//! may shorten the file while a reader is in it) and hands each good record to
//! a visitor. What it does at a torn or corrupt frame depends on whether a
//! writer may still be appending ([`Mode`]):
//!
//! - behind a **live** writer it stops there: the end of a live journal is
//!   where frames appear, and bytes beyond it may be changing under the read;
//! - in a **settled** journal (its writer is gone, nothing will change) it
//!   resynchronises: it looks for the next offset where a whole frame with a
//!   good CRC and a decodable record starts, reports the bytes in between as
//!   damaged, and reads on from there. One flipped bit costs one record, not
//!   everything after it.

use std::fs::TryLockError;
use std::io::Read;
use std::path::Path;

use lab_types::Record;

use crate::codec::{self, DecodeError};
use crate::{FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, JournalError, MAGIC, MAX_PAYLOAD};

/// Reads grow from the first size to the largest as a journal turns out long,
/// so a small journal costs a small buffer.
const FIRST_CHUNK: usize = 64 << 10;
const CHUNK: usize = 4 << 20;

/// When resynchronising, frames longer than this are not looked for: each
/// candidate offset would otherwise cost reading up to [`MAX_PAYLOAD`] bytes.
/// A frame this long right after damage is lost with it; the scan resumes at
/// the next frame.
pub const RESYNC_MAX_PAYLOAD: usize = 16 << 20;

/// Preallocated journal space comes in whole pages, and a journal's writer
/// cuts it off when it closes the journal. A file that ends in zeros and whose
/// length is not a multiple of this was closed and then lost data.
const PAGE_MULTIPLE: u64 = 4096;

/// Whether a writer may still append to the journal being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A writer may be appending: stop at the first frame that is not whole.
    Live,
    /// Nothing will change any more: read past damage to every good frame.
    Settled,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The offset just past the last good frame: where the next frame goes.
    pub end: u64,
    /// How many records were handed to the visitor.
    pub records: u64,
    /// Every damaged stretch, in file order. In [`Mode::Live`] at most one, a
    /// bad frame where the scan stopped (a zero length there is the end of
    /// the data); it may be a frame being written.
    pub damage: Vec<Damage>,
}

impl Scan {
    /// The damage that runs to the end of the data, if any: what recovery may
    /// cut off.
    #[must_use]
    pub fn tail_damage(&self) -> Option<&Damage> {
        self.damage.last().filter(|d| d.tail)
    }
}

/// A torn or corrupt part of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the bad bytes start.
    pub offset: u64,
    /// How many bytes from there on were skipped: up to the next good frame,
    /// or for damage at the tail, up to and including the last non-zero byte.
    pub dropped_bytes: u64,
    /// What was wrong.
    pub reason: String,
    /// Whether no good frame follows.
    pub tail: bool,
}

/// Reads the journal at `path` from byte `from` on (0 or less than the header
/// length means from the first frame), calling `visit(offset, record)` for
/// each good record. Whether a writer may still be appending is told by the
/// journal's lock: a journal nobody holds is read past damage
/// ([`Mode::Settled`]).
pub fn read_journal(
    path: &Path,
    from: u64,
    visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    let file = fs_err::File::open(path)?;
    let mode = match file.file().try_lock_shared() {
        Ok(()) => Mode::Settled,
        Err(TryLockError::WouldBlock) => Mode::Live,
        Err(TryLockError::Error(e)) => return Err(e.into()),
    };
    read_file(file, path, from, mode, None, visit)
}

/// [`read_journal`] with the mode given: for a caller that already knows
/// whether the writer is gone (it holds the lock itself, say).
pub fn read_journal_as(
    path: &Path,
    from: u64,
    mode: Mode,
    visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    read_file(fs_err::File::open(path)?, path, from, mode, None, visit)
}

/// [`read_journal`] (with the mode given, or told by the lock when `None`)
/// stepping over `stretches` rather than those of the journal's list of
/// holes: for a caller that read the list itself, under the journal's lock,
/// and must read the journal by that same list.
pub fn read_journal_skipping(
    path: &Path,
    from: u64,
    mode: Option<Mode>,
    stretches: &[(u64, u64)],
    visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    let file = fs_err::File::open(path)?;
    let mode = match mode {
        Some(mode) => mode,
        None => match file.file().try_lock_shared() {
            Ok(()) => Mode::Settled,
            Err(TryLockError::WouldBlock) => Mode::Live,
            Err(TryLockError::Error(e)) => return Err(e.into()),
        },
    };
    read_file(file, path, from, mode, Some(stretches), visit)
}

fn read_file(
    mut file: fs_err::File,
    path: &Path,
    from: u64,
    mode: Mode,
    stretches: Option<&[(u64, u64)]>,
    mut visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    let mut head = [0u8; HEADER_LEN];
    let got = read_full(&mut file, &mut head)?;
    if got == 0 {
        // Created but not written yet: a run that is only starting.
        return Ok(Scan {
            end: 0,
            records: 0,
            damage: Vec::new(),
        });
    }
    let version = u16::from_le_bytes([head[8], head[9]]);
    let header_damage = if got < HEADER_LEN {
        Some("the file ends inside the header")
    } else if &head[..8] != MAGIC {
        Some("the magic bytes are missing")
    } else if version != FORMAT_VERSION {
        // A journal of another version is not damaged: it is not ours to read.
        return Err(JournalError::BadHeader {
            path: path.display().to_string(),
            reason: format!("format version {version}; this Lab reads version {FORMAT_VERSION}"),
        });
    } else {
        None
    };
    if let Some(reason) = header_damage {
        // A damaged header in a settled journal: read the frames after it
        // anyway, if there are any. Behind a live writer (or with no frame to
        // be found) it is not a journal this reader can make sense of.
        if mode == Mode::Live || got < HEADER_LEN {
            return Err(JournalError::BadHeader {
                path: path.display().to_string(),
                reason: reason.into(),
            });
        }
        let mut scan = scan_from_as(file, HEADER_LEN as u64, mode, &mut visit)?;
        if scan.records == 0 {
            return Err(JournalError::BadHeader {
                path: path.display().to_string(),
                reason: reason.into(),
            });
        }
        if from <= HEADER_LEN as u64 {
            scan.damage.insert(
                0,
                Damage {
                    offset: 0,
                    dropped_bytes: HEADER_LEN as u64,
                    reason: format!("the header is damaged ({reason})"),
                    tail: false,
                },
            );
        }
        return Ok(scan);
    }
    let start = from.max(HEADER_LEN as u64);
    if let Some(stretches) = stretches {
        return scan_around(file, start, mode, stretches, visit);
    }
    let len = file.metadata()?.len();
    // A list that cannot be read leaves its holes to be found as zeros, and
    // reported as damage, as any zeroed stretch is.
    let holes = crate::holes::read_holes(path, len).ok().flatten();
    let stretches = holes.map(|h| h.stretches).unwrap_or_default();
    scan_around(file, start, mode, &stretches, visit)
}

/// Scans `file` from `start`, stepping over `stretches` (whole frames not to
/// be read, see [`crate::holes`]).
fn scan_around(
    mut file: fs_err::File,
    start: u64,
    mode: Mode,
    stretches: &[(u64, u64)],
    mut visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    use std::io::{Seek, SeekFrom};
    let mut at = start;
    let mut scan = Scan {
        end: start,
        records: 0,
        damage: Vec::new(),
    };
    for &(hole_start, hole_end) in stretches.iter().filter(|&&(_, end)| end > start) {
        if hole_start > at {
            file.seek(SeekFrom::Start(at))?;
            let part = scan_from_as(file.by_ref().take(hole_start - at), at, mode, &mut visit)?;
            scan.records += part.records;
            // Damage before a hole has good frames after it.
            scan.damage
                .extend(part.damage.into_iter().map(|d| Damage { tail: false, ..d }));
        }
        at = at.max(hole_end);
        scan.end = at;
    }
    if at > HEADER_LEN as u64 {
        file.seek(SeekFrom::Start(at))?;
    }
    let rest = scan_from_as(file, at, mode, &mut visit)?;
    scan.records += rest.records;
    scan.damage.extend(rest.damage);
    scan.end = rest.end;
    Ok(scan)
}

/// Scans frames from `input`, whose first byte is at file offset `start`, as
/// a settled journal (resynchronising after damage).
pub fn scan_from(
    input: impl Read,
    start: u64,
    visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    scan_from_as(input, start, Mode::Settled, visit)
}

/// Scans frames from `input`, whose first byte is at file offset `start`.
pub fn scan_from_as(
    input: impl Read,
    start: u64,
    mode: Mode,
    mut visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    scan_frames(input, start, mode, |at, _, record| {
        if let Some(record) = record {
            visit(at, record);
        }
    })
}

/// Reads the settled journal at `path` frame by frame from its first frame,
/// calling `visit(start, end, record)` for each good frame, with `None` for
/// a record of a kind this build does not know. Its holes are not looked
/// for: this is for a journal that has none.
pub fn read_frames(
    path: &Path,
    mut visit: impl FnMut(u64, u64, Option<Record>),
) -> Result<Scan, JournalError> {
    let mut file = fs_err::File::open(path)?;
    let mut head = [0u8; HEADER_LEN];
    if read_full(&mut file, &mut head)? < HEADER_LEN
        || &head[..8] != MAGIC
        || u16::from_le_bytes([head[8], head[9]]) != FORMAT_VERSION
    {
        return Err(JournalError::BadHeader {
            path: path.display().to_string(),
            reason: "not a whole journal header of this version".into(),
        });
    }
    scan_frames(file, HEADER_LEN as u64, Mode::Settled, &mut visit)
}

/// [`scan_from_as`], frame by frame: `visit(start, end, record)`.
fn scan_frames(
    input: impl Read,
    start: u64,
    mode: Mode,
    mut visit: impl FnMut(u64, u64, Option<Record>),
) -> Result<Scan, JournalError> {
    let mut s = Stream {
        input,
        buf: Vec::new(),
        base: start,
        pos: 0,
        eof: false,
    };
    let mut scan = Scan {
        end: start,
        records: 0,
        damage: Vec::new(),
    };
    loop {
        let at = s.offset();
        let bad = match s.frame()? {
            Frame::EndOfFile => {
                scan.end = at;
                return Ok(scan);
            }
            Frame::Good(len, record) => {
                let end = at + (FRAME_HEADER_LEN + len) as u64;
                if record.is_some() {
                    scan.records += 1;
                }
                visit(at, end, record);
                s.pos += FRAME_HEADER_LEN + len;
                scan.end = s.offset();
                continue;
            }
            Frame::Zero if mode == Mode::Settled => {
                // A writer stopped between storing a frame and storing its
                // length (killed mid-append, or its last page written back
                // without the one before): the frame is whole but for it.
                if let Some((len, record)) = s.unsealed()? {
                    visit(at, at + (FRAME_HEADER_LEN + len) as u64, Some(record));
                    scan.records += 1;
                    s.pos += FRAME_HEADER_LEN + len;
                    scan.end = s.offset();
                    continue;
                }
                None
            }
            Frame::Zero => None,
            Frame::Bad(reason) => Some(reason),
        };
        if mode == Mode::Live {
            // The end of a live journal, or a frame on its way: stop here and
            // leave the rest for a later look. The reserved space after the
            // end (megabytes of zeros) is not read at all.
            if let Some(reason) = bad {
                let extent = s.data_extent()?;
                scan.damage.push(Damage {
                    offset: at,
                    dropped_bytes: extent,
                    reason,
                    tail: true,
                });
            }
            return Ok(scan);
        }
        match s.resync()? {
            Resync::Found(next) => scan.damage.push(Damage {
                offset: at,
                dropped_bytes: next - at,
                reason: bad.unwrap_or_else(|| {
                    "zero bytes where frames should be (a zero frame length with frames after it)"
                        .into()
                }),
                tail: false,
            }),
            Resync::NotFound { last_nonzero } => {
                scan.damage
                    .extend(tail_damage(at, bad, last_nonzero, s.offset()));
                return Ok(scan);
            }
        }
    }
}

/// What the tail of a settled journal is, from the offset `at` where good
/// frames stop (at a bad frame, its reason in `bad`, or at a zero length),
/// given its last non-zero byte and where the file ends: damage, or nothing
/// (reserved space, or an append cut short before its record was
/// acknowledged).
fn tail_damage(
    at: u64,
    bad: Option<String>,
    last_nonzero: Option<u64>,
    file_end: u64,
) -> Option<Damage> {
    let extent = last_nonzero.map_or(0, |l| l + 1 - at);
    let damage = |dropped_bytes, reason| {
        Some(Damage {
            offset: at,
            dropped_bytes,
            reason,
            tail: true,
        })
    };
    match bad {
        Some(reason) => damage(extent, reason),
        // A writer killed in the middle of an append (before the frame's
        // CRC) leaves part of one frame after the zero length and nothing
        // after it, in a journal never closed: a record whose call never
        // returned, not damage.
        None if extent > 0
            && extent <= (FRAME_HEADER_LEN + MAX_PAYLOAD) as u64
            && file_end.is_multiple_of(PAGE_MULTIPLE) =>
        {
            None
        }
        None if extent > 0 => damage(extent, "a zero frame length with data after it".into()),
        // Only zeros to the end of the file: reserved space, unless the file
        // was cut to its length when it was closed.
        None if file_end > at && !file_end.is_multiple_of(PAGE_MULTIPLE) => damage(
            file_end - at,
            format!(
                "the journal ends in {} zero bytes, where a closed journal has records",
                file_end - at
            ),
        ),
        None => None,
    }
}

enum Frame {
    /// The input ends exactly here.
    EndOfFile,
    /// A zero length: the end of the written data, or zeroed damage.
    Zero,
    /// A whole frame with this payload length and a good CRC; its record,
    /// unless the tag is one a later Lab added.
    Good(usize, Option<Record>),
    /// Not a good frame, and why.
    Bad(String),
}

/// A buffered window over the input, by file offset.
struct Stream<R> {
    input: R,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    pos: usize,
    eof: bool,
}

impl<R: Read> Stream<R> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Makes sure `want` bytes are buffered from `pos`, or as many as are left.
    /// Returns how many are.
    fn ensure(&mut self, want: usize) -> Result<usize, JournalError> {
        if self.buf.len() - self.pos < want && !self.eof {
            self.eof = refill(
                &mut self.input,
                &mut self.buf,
                &mut self.pos,
                &mut self.base,
                want,
            )?;
        }
        Ok(self.buf.len() - self.pos)
    }

    /// The frame at `pos`.
    fn frame(&mut self) -> Result<Frame, JournalError> {
        let avail = self.ensure(FRAME_HEADER_LEN)?;
        if avail == 0 {
            return Ok(Frame::EndOfFile);
        }
        if avail < 4 {
            return Ok(Frame::Bad("the file ends inside a frame header".into()));
        }
        let len = u32_at(&self.buf, self.pos) as usize;
        if len == 0 {
            return Ok(Frame::Zero);
        }
        if avail < FRAME_HEADER_LEN {
            return Ok(Frame::Bad("the file ends inside a frame header".into()));
        }
        if len > MAX_PAYLOAD {
            return Ok(Frame::Bad(format!("frame length {len} is over the limit")));
        }
        if self.ensure(FRAME_HEADER_LEN + len)? < FRAME_HEADER_LEN + len {
            return Ok(Frame::Bad(
                "the file ends inside a frame (a torn write)".into(),
            ));
        }
        let crc = u32_at(&self.buf, self.pos + 4);
        let payload = &self.buf[self.pos + FRAME_HEADER_LEN..self.pos + FRAME_HEADER_LEN + len];
        if crc32c::crc32c(payload) != crc {
            return Ok(Frame::Bad("CRC mismatch".into()));
        }
        match codec::decode(payload) {
            Ok(record) => Ok(Frame::Good(len, Some(record))),
            // A record added by a later Lab of the same format version: its
            // frame is sound, so skip it and go on.
            Err(DecodeError::UnknownTag(_)) => Ok(Frame::Good(len, None)),
            Err(e) => Ok(Frame::Bad(format!("undecodable record: {e}"))),
        }
    }

    /// At a zero length: the frame that starts here if only its length were
    /// stored, when its CRC and record check out and nothing follows it.
    fn unsealed(&mut self) -> Result<Option<(usize, Record)>, JournalError> {
        let avail = self.ensure(FRAME_HEADER_LEN + 1)?;
        if avail < FRAME_HEADER_LEN + 1
            || !codec::is_known_tag(self.buf[self.pos + FRAME_HEADER_LEN])
        {
            return Ok(None);
        }
        let avail = self.ensure(FRAME_HEADER_LEN + RESYNC_MAX_PAYLOAD + 4)?;
        let crc = u32_at(&self.buf, self.pos + 4);
        let bytes = &self.buf[self.pos + FRAME_HEADER_LEN..self.pos + avail];
        // A record says how long it is: the one length the frame can have.
        // (Trying every length against the CRC instead costs megabytes of
        // work at each zero length.)
        let Ok((record, len)) = codec::decode_prefix(&bytes[..bytes.len().min(RESYNC_MAX_PAYLOAD)])
        else {
            return Ok(None);
        };
        // What follows an unsealed frame is reserved space: zeros.
        let after = &bytes[len..bytes.len().min(len + 4)];
        if after.iter().any(|b| *b != 0) || crc32c::crc32c(&bytes[..len]) != crc {
            return Ok(None);
        }
        Ok(Some((len, record)))
    }

    /// Looks for the next offset after `pos` where a good frame of a record
    /// this Lab knows starts, and moves there. When there is none, the input
    /// is read to its end and the offset of its last non-zero byte from the
    /// old `pos` on is returned instead.
    fn resync(&mut self) -> Result<Resync, JournalError> {
        let mut last_nonzero = None;
        loop {
            let avail = self.ensure(FRAME_HEADER_LEN + 1)?;
            if avail < FRAME_HEADER_LEN + 1 {
                // Too few bytes left for a frame: note what they hold.
                if let Some(i) = self.buf[self.pos..].iter().rposition(|b| *b != 0) {
                    last_nonzero = Some(self.offset() + i as u64);
                }
                self.pos = self.buf.len();
                return Ok(Resync::NotFound { last_nonzero });
            }
            if self.buf[self.pos] != 0 {
                last_nonzero = Some(self.offset());
            }
            self.pos += 1;
            // Zeros cannot start a frame: skip a run of them at once (the
            // last three may still be the low bytes of a length).
            let window = &self.buf[self.pos..];
            let zeros = window.iter().position(|b| *b != 0).unwrap_or(window.len());
            if zeros > 3 {
                self.pos += zeros - 3;
                continue;
            }
            if self.buf.len() - self.pos < FRAME_HEADER_LEN + 1 {
                continue;
            }
            let len = u32_at(&self.buf, self.pos) as usize;
            let plausible = (1..=RESYNC_MAX_PAYLOAD).contains(&len)
                && codec::is_known_tag(self.buf[self.pos + FRAME_HEADER_LEN]);
            if plausible
                && self.ensure(FRAME_HEADER_LEN + len)? >= FRAME_HEADER_LEN + len
                && self.holds_record(len)
            {
                return Ok(Resync::Found(self.offset()));
            }
        }
    }

    /// Whether the whole frame at `pos`, with a payload of `len` bytes, holds
    /// a record this Lab knows under a matching CRC: what [`Stream::frame`]
    /// calls good. The record is decoded first: damaged bytes seldom make
    /// one, and fail within a few bytes, where the CRC reads all `len` (and
    /// a damaged stretch can offer a plausible length every few bytes).
    fn holds_record(&self, len: usize) -> bool {
        let payload = &self.buf[self.pos + FRAME_HEADER_LEN..self.pos + FRAME_HEADER_LEN + len];
        codec::decode(payload).is_ok() && crc32c::crc32c(payload) == u32_at(&self.buf, self.pos + 4)
    }

    /// How many bytes from `pos` up to and including the last non-zero byte
    /// of the input. Reads the input to its end.
    fn data_extent(&mut self) -> Result<u64, JournalError> {
        let from = self.offset();
        let mut last_nonzero: Option<u64> = None;
        loop {
            if let Some(i) = self.buf[self.pos..].iter().rposition(|b| *b != 0) {
                last_nonzero = Some(self.offset() + i as u64);
            }
            self.pos = self.buf.len();
            if self.eof || self.ensure(1)? == 0 {
                break;
            }
        }
        Ok(last_nonzero.map_or(0, |l| l + 1 - from))
    }
}

enum Resync {
    /// A good frame starts at this offset.
    Found(u64),
    /// None does; the input is read to its end.
    NotFound {
        /// The last non-zero byte passed over.
        last_nonzero: Option<u64>,
    },
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Reads until at least `want` bytes are buffered past `pos`, or the end.
/// Returns whether the input is exhausted.
fn refill(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    pos: &mut usize,
    base: &mut u64,
    want: usize,
) -> Result<bool, JournalError> {
    buf.drain(..*pos);
    *base += *pos as u64;
    *pos = 0;
    while buf.len() < want {
        let old = buf.len();
        let chunk = buf.capacity().clamp(FIRST_CHUNK, CHUNK);
        let grow = chunk.max(want - old);
        buf.resize(old + grow, 0);
        let n = read_full(input, &mut buf[old..])?;
        buf.truncate(old + n);
        if n < grow {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
