//! Reading a journal back, with recovery.
//!
//! The reader streams the file with `read(2)` (never a memory map: a writer
//! may shorten the file while a reader is in it). It hands each good record to
//! a visitor and stops at the first frame that is torn or fails its CRC,
//! reporting where, why, and how many bytes it left unread.

use std::io::Read;
use std::path::Path;

use lab_types::Record;

use crate::codec::{self, DecodeError};
use crate::{FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, JournalError, MAGIC, MAX_PAYLOAD};

/// Reads grow from the first size to the largest as a journal turns out long,
/// so a small journal costs a small buffer.
const FIRST_CHUNK: usize = 64 << 10;
const CHUNK: usize = 4 << 20;

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The offset just past the last good frame: where the next frame goes.
    pub end: u64,
    /// How many records were handed to the visitor.
    pub records: u64,
    /// The damage that stopped the scan, if any.
    pub damage: Option<Damage>,
}

/// A torn or corrupt part of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the bad frame starts.
    pub offset: u64,
    /// How many bytes from there on hold data that was not read.
    pub dropped_bytes: u64,
    /// What was wrong.
    pub reason: String,
}

/// Reads the journal at `path` from byte `from` on (0 or less than the header
/// length means from the first frame), calling `visit(offset, record)` for
/// each good record.
pub fn read_journal(
    path: &Path,
    from: u64,
    visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    let mut file = fs_err::File::open(path)?;
    let mut head = [0u8; HEADER_LEN];
    let got = read_full(&mut file, &mut head)?;
    if got == 0 {
        // Created but not written yet: a run that is only starting.
        return Ok(Scan {
            end: 0,
            records: 0,
            damage: None,
        });
    }
    if got < HEADER_LEN || &head[..8] != MAGIC {
        return Err(JournalError::BadHeader {
            path: path.display().to_string(),
            reason: "the magic bytes are missing".into(),
        });
    }
    let version = u16::from_le_bytes([head[8], head[9]]);
    if version != FORMAT_VERSION {
        return Err(JournalError::BadHeader {
            path: path.display().to_string(),
            reason: format!("format version {version}; this Lab reads version {FORMAT_VERSION}"),
        });
    }
    let start = from.max(HEADER_LEN as u64);
    if start > HEADER_LEN as u64 {
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
    }
    scan_from(file, start, visit)
}

/// Scans frames from `input`, whose first byte is at file offset `start`.
pub fn scan_from(
    mut input: impl Read,
    start: u64,
    mut visit: impl FnMut(u64, Record),
) -> Result<Scan, JournalError> {
    let mut buf: Vec<u8> = Vec::new();
    // File offset of buf[0].
    let mut base = start;
    let mut pos = 0usize;
    let mut eof = false;
    let mut records = 0u64;
    loop {
        // Make sure a frame header is buffered, then its payload.
        let need_header = FRAME_HEADER_LEN;
        if buf.len() - pos < need_header && !eof {
            eof = refill(&mut input, &mut buf, &mut pos, &mut base, need_header)?;
        }
        let offset = base + pos as u64;
        let avail = buf.len() - pos;
        if avail == 0 {
            return Ok(Scan {
                end: offset,
                records,
                damage: None,
            });
        }
        if avail < 4 {
            return damaged(
                &mut input,
                &buf[pos..],
                offset,
                records,
                "the file ends inside a frame header",
            );
        }
        let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        if len == 0 {
            // The end of the written part; what follows must be reserved zeros.
            return end_of_data(&mut input, &buf[pos..], offset, records);
        }
        if avail < FRAME_HEADER_LEN {
            return damaged(
                &mut input,
                &buf[pos..],
                offset,
                records,
                "the file ends inside a frame header",
            );
        }
        if len > MAX_PAYLOAD {
            return damaged(
                &mut input,
                &buf[pos..],
                offset,
                records,
                &format!("frame length {len} is over the limit"),
            );
        }
        if buf.len() - pos < FRAME_HEADER_LEN + len && !eof {
            eof = refill(
                &mut input,
                &mut buf,
                &mut pos,
                &mut base,
                FRAME_HEADER_LEN + len,
            )?;
        }
        let offset = base + pos as u64;
        if buf.len() - pos < FRAME_HEADER_LEN + len {
            return damaged(
                &mut input,
                &buf[pos..],
                offset,
                records,
                "the file ends inside a frame (a torn write)",
            );
        }
        let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().unwrap_or_default());
        let payload = &buf[pos + FRAME_HEADER_LEN..pos + FRAME_HEADER_LEN + len];
        if crc32c::crc32c(payload) != crc {
            return damaged(&mut input, &buf[pos..], offset, records, "CRC mismatch");
        }
        match codec::decode(payload) {
            Ok(record) => {
                visit(offset, record);
                records += 1;
            }
            // A record added by a later Lab of the same format version: its
            // frame is sound, so skip it and go on.
            Err(DecodeError::UnknownTag(_)) => {}
            Err(e) => {
                return damaged(
                    &mut input,
                    &buf[pos..],
                    offset,
                    records,
                    &format!("undecodable record: {e}"),
                );
            }
        }
        pos += FRAME_HEADER_LEN + len;
    }
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

/// How many bytes from the start of `rest` (then the unread input) up to and
/// including the last non-zero byte.
fn data_extent(input: &mut impl Read, rest: &[u8]) -> Result<u64, JournalError> {
    let mut extent = rest
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i as u64 + 1);
    let mut seen = rest.len() as u64;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = read_full(input, &mut chunk)?;
        if n == 0 {
            return Ok(extent);
        }
        if let Some(i) = chunk[..n].iter().rposition(|b| *b != 0) {
            extent = seen + i as u64 + 1;
        }
        seen += n as u64;
    }
}

fn end_of_data(
    input: &mut impl Read,
    rest: &[u8],
    offset: u64,
    records: u64,
) -> Result<Scan, JournalError> {
    let extent = data_extent(input, rest)?;
    let damage = (extent > 0).then(|| Damage {
        offset,
        dropped_bytes: extent,
        reason: "a zero frame length with data after it".into(),
    });
    Ok(Scan {
        end: offset,
        records,
        damage,
    })
}

fn damaged(
    input: &mut impl Read,
    rest: &[u8],
    offset: u64,
    records: u64,
    reason: &str,
) -> Result<Scan, JournalError> {
    let extent = data_extent(input, rest)?;
    Ok(Scan {
        end: offset,
        records,
        damage: Some(Damage {
            offset,
            dropped_bytes: extent,
            reason: reason.to_owned(),
        }),
    })
}
