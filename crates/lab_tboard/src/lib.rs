//! Reads the scalars of TensorBoard event files.
//!
//! An event file (`events.out.tfevents.<time>.<host>...`) is a TFRecord file:
//! records of a little-endian `u64` length, the masked CRC32C of those 8
//! bytes, the data, and the masked CRC32C of the data. Each record's data is
//! a `tensorflow.Event` protobuf message; the first says `brain.Event:2`, the
//! others carry a step, a wall time and a `Summary` of tagged values.
//!
//! A scalar is either an old-style `simple_value` (TF1, PyTorch's
//! `SummaryWriter.add_scalar`) or a tensor of one number whose tag belongs to
//! the `scalars` plugin (TF2's `tf.summary.scalar`, Keras's `TensorBoard`
//! callback). The plugin is named in the metadata of a tag's first value
//! only, so the reader remembers it per tag. Images, histograms, text, graphs
//! and the rest are skipped.
//!
//! Damage is reported, never fatal: what was read before it is kept
//! ([`EventFile::damage`]). A record whose data fails its checksum is skipped
//! and reading goes on (the framing is intact); a length that fails its
//! checksum or a record cut short ends the reading. A file whose first record
//! is not framed as a TFRecord is [`ReadError::NotEventFile`].
//!
//! Hostile lengths cost nothing: a record is read as far as the file goes,
//! never allocated from its length, and records longer than
//! [`MAX_EVENT_BYTES`] (graphs, images; no scalar comes near) are checked and
//! skipped in fixed-size chunks without being held in memory.

#[doc(hidden)]
pub mod fuzzing;
pub mod proto;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use prost::Message as _;

/// Records longer than this are checked but not decoded: no event holding
/// scalars comes near it.
pub const MAX_EVENT_BYTES: u64 = 16 << 20;

/// One scalar point.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The summary's tag (`epoch_loss`, `loss/train`, ...), as written.
    pub tag: String,
    /// The step, as written (it may be negative).
    pub step: i64,
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    pub value: f64,
}

/// What a file holds: its scalars, in file order, and any damage found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFile {
    pub scalars: Vec<Scalar>,
    /// In file order; at most [`MAX_DAMAGE`] entries (the count of records
    /// skipped goes on in [`EventFile::skipped_records`]).
    pub damage: Vec<Damage>,
    /// Records read whole, whatever they held.
    pub records: u64,
    /// Records whose data failed its checksum or was not an event.
    pub skipped_records: u64,
}

/// The most damage entries one file reports.
pub const MAX_DAMAGE: usize = 16;

/// A damaged spot of an event file, by byte offset of its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The length fails its checksum: nothing after it can be framed.
    BadLength { offset: u64 },
    /// The data fails its checksum: this record is skipped.
    BadData { offset: u64 },
    /// The data passes its checksum but is not an event message: skipped.
    BadEvent { offset: u64 },
    /// The file ends inside this record (a writer that was killed, or still
    /// writing): it is left out.
    Truncated { offset: u64 },
}

impl Damage {
    /// The offset of the damaged record.
    #[must_use]
    pub fn offset(&self) -> u64 {
        match self {
            Damage::BadLength { offset }
            | Damage::BadData { offset }
            | Damage::BadEvent { offset }
            | Damage::Truncated { offset } => *offset,
        }
    }

    /// Whether reading stopped here.
    #[must_use]
    pub fn ends_reading(&self) -> bool {
        matches!(self, Damage::BadLength { .. } | Damage::Truncated { .. })
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::BadLength { offset } => write!(
                f,
                "the record at byte {offset} has a length that fails its checksum; the rest of the file is unreadable"
            ),
            Damage::BadData { offset } => write!(
                f,
                "the record at byte {offset} fails its checksum and was skipped"
            ),
            Damage::BadEvent { offset } => write!(
                f,
                "the record at byte {offset} is not an event and was skipped"
            ),
            Damage::Truncated { offset } => write!(
                f,
                "the file ends inside the record at byte {offset} (cut short while written?)"
            ),
        }
    }
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading it failed: {error}: {}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("it is not a TensorBoard event file ({reason}): {}", path.display())]
    NotEventFile { path: PathBuf, reason: String },
}

impl ReadError {
    /// The file the error is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. } | ReadError::NotEventFile { path, .. } => path,
        }
    }
}

/// Why reading a stream stopped, before a path is known.
#[derive(Debug)]
pub enum StreamError {
    Io(io::Error),
    NotEventFile(String),
}

impl StreamError {
    fn at(self, path: &Path) -> ReadError {
        match self {
            StreamError::Io(error) => ReadError::Io {
                path: path.to_owned(),
                error,
            },
            StreamError::NotEventFile(reason) => ReadError::NotEventFile {
                path: path.to_owned(),
                reason,
            },
        }
    }
}

/// TensorFlow's checksum: CRC32C, rotated and offset so that a checksum of
/// data holding checksums does not degenerate.
#[must_use]
pub fn masked_crc(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Whether a file name is an event file's: TensorBoard's own rule, `tfevents`
/// anywhere in the name.
#[must_use]
pub fn is_event_file_name(name: &str) -> bool {
    name.contains("tfevents")
}

/// Reads as many bytes as `buf` holds unless the stream ends first; returns
/// how many were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One record's data, or why there is none.
enum Framed {
    /// The data (in the buffer), when it is short enough to decode.
    Data,
    /// Longer than [`MAX_EVENT_BYTES`]: checked, not kept. Its data's length.
    Large(u64),
    /// The data fails its checksum. Its length.
    BadData(u64),
    Truncated,
    BadLength,
    End,
}

/// Reads the next record into `buf`.
fn next_record(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Framed> {
    let mut header = [0u8; 12];
    let n = read_full(r, &mut header)?;
    if n == 0 {
        return Ok(Framed::End);
    }
    if n < header.len() {
        return Ok(Framed::Truncated);
    }
    let len_bytes: [u8; 8] = header[..8].try_into().unwrap_or_default();
    let len_crc = u32::from_le_bytes(header[8..].try_into().unwrap_or_default());
    if masked_crc(&len_bytes) != len_crc {
        return Ok(Framed::BadLength);
    }
    let len = u64::from_le_bytes(len_bytes);
    buf.clear();
    let large = len > MAX_EVENT_BYTES;
    let crc = if large {
        // Checked chunk by chunk, never held.
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = len;
        let mut crc = 0;
        while left > 0 {
            let want = left.min(chunk.len() as u64) as usize;
            let got = read_full(r, &mut chunk[..want])?;
            crc = crc32c::crc32c_append(crc, &chunk[..got]);
            if got < want {
                return Ok(Framed::Truncated);
            }
            left -= got as u64;
        }
        crc
    } else {
        // `take` reads as far as the stream goes: the length allocates nothing.
        let got = r.by_ref().take(len).read_to_end(buf)?;
        if (got as u64) < len {
            return Ok(Framed::Truncated);
        }
        crc32c::crc32c(buf)
    };
    let mut trailer = [0u8; 4];
    if read_full(r, &mut trailer)? < trailer.len() {
        return Ok(Framed::Truncated);
    }
    if mask(crc) != u32::from_le_bytes(trailer) {
        return Ok(Framed::BadData(len));
    }
    Ok(if large {
        Framed::Large(len)
    } else {
        Framed::Data
    })
}

/// Whether a tag's values are scalars, from the metadata of its first value.
fn plugin_is_scalars(meta: &proto::SummaryMetadata) -> bool {
    match &meta.plugin_data {
        Some(p) if !p.plugin_name.is_empty() => p.plugin_name == "scalars",
        _ => meta.data_class == proto::DATA_CLASS_SCALAR,
    }
}

/// Reads the scalars of an event file from a stream.
pub fn read_stream(r: impl Read) -> Result<EventFile, StreamError> {
    let mut scalars = Vec::new();
    let mut file = visit_stream(r, |tag, step, wall_time, value| {
        scalars.push(Scalar {
            tag: tag.to_owned(),
            step,
            wall_time,
            value,
        });
    })?;
    file.scalars = scalars;
    Ok(file)
}

/// Reads an event file from a stream, handing each scalar to `f` as `(tag,
/// step, wall time, value)` instead of keeping it: what a large file costs
/// is then what `f` keeps. The answer's `scalars` is empty.
pub fn visit_stream(
    r: impl Read,
    mut f: impl FnMut(&str, i64, f64, f64),
) -> Result<EventFile, StreamError> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut out = EventFile::default();
    let mut buf = Vec::new();
    let mut offset = 0u64;
    // Tags whose first value named their plugin: scalars or not.
    let mut scalar_tags: HashMap<String, bool> = HashMap::new();
    loop {
        let framed = next_record(&mut r, &mut buf).map_err(StreamError::Io)?;
        let mut record_len = 16 + buf.len() as u64;
        let damage = match framed {
            Framed::End => break,
            Framed::BadLength if offset == 0 => {
                return Err(StreamError::NotEventFile(
                    "its first bytes are not a TFRecord length and checksum".to_owned(),
                ));
            }
            Framed::BadLength => Damage::BadLength { offset },
            Framed::Truncated => Damage::Truncated { offset },
            Framed::BadData(len) => {
                record_len = len.saturating_add(16);
                Damage::BadData { offset }
            }
            Framed::Large(len) => {
                out.records += 1;
                offset = offset.saturating_add(len.saturating_add(16));
                continue;
            }
            Framed::Data => match proto::Event::decode(&buf[..]) {
                Ok(event) => {
                    out.records += 1;
                    collect(&event, &mut scalar_tags, &mut f);
                    offset = offset.saturating_add(record_len);
                    continue;
                }
                Err(_) if offset == 0 => {
                    return Err(StreamError::NotEventFile(
                        "its first record is not an event".to_owned(),
                    ));
                }
                Err(_) => Damage::BadEvent { offset },
            },
        };
        let ends = damage.ends_reading();
        if !ends {
            out.skipped_records += 1;
            offset = offset.saturating_add(record_len);
        }
        if out.damage.len() < MAX_DAMAGE {
            out.damage.push(damage);
        }
        if ends {
            break;
        }
    }
    Ok(out)
}

/// The scalars of one event.
fn collect(
    event: &proto::Event,
    scalar_tags: &mut HashMap<String, bool>,
    f: &mut impl FnMut(&str, i64, f64, f64),
) {
    let Some(summary) = &event.summary else {
        return;
    };
    for v in &summary.value {
        let tag = if v.tag.is_empty() {
            &v.node_name
        } else {
            &v.tag
        };
        if let Some(meta) = &v.metadata
            && !scalar_tags.contains_key(tag)
        {
            scalar_tags.insert(tag.clone(), plugin_is_scalars(meta));
        }
        let value = if let Some(x) = v.simple_value {
            Some(f64::from(x))
        } else if let Some(t) = &v.tensor
            && scalar_tags.get(tag) == Some(&true)
        {
            t.scalar()
        } else {
            None
        };
        if let Some(value) = value {
            f(tag, event.step, event.wall_time, value);
        }
    }
}

/// Reads the event file at `path`, handing each scalar to `f` (see
/// [`visit_stream`]).
pub fn visit_file(path: &Path, f: impl FnMut(&str, i64, f64, f64)) -> Result<EventFile, ReadError> {
    let file = std::fs::File::open(path).map_err(|error| ReadError::Io {
        path: path.to_owned(),
        error,
    })?;
    visit_stream(file, f).map_err(|e| e.at(path))
}

/// Reads the scalars of the event file at `path`.
pub fn read_file(path: &Path) -> Result<EventFile, ReadError> {
    let file = std::fs::File::open(path).map_err(|error| ReadError::Io {
        path: path.to_owned(),
        error,
    })?;
    read_stream(file).map_err(|e| e.at(path))
}

/// The event files under `dir` (any depth), sorted by path: the files of a
/// folder in the order TensorBoard reads them (their names start with the
/// time they were created). Symbolic links to files are followed, links to
/// folders are not (no loops).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let io_err = |error| ReadError::Io {
            path: d.clone(),
            error,
        };
        for entry in std::fs::read_dir(&d).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let kind = entry.file_type().map_err(io_err)?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if is_event_file_name(&entry.file_name().to_string_lossy())
                && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One event file of a folder, read.
#[derive(Debug)]
pub struct FolderFile {
    pub path: PathBuf,
    /// The file's folder relative to the folder read (empty at its top).
    pub folder: PathBuf,
    pub read: Result<EventFile, ReadError>,
}

/// Reads every event file under `dir`. A file that cannot be read is in the
/// answer with its error; only a folder that cannot be listed is an error.
pub fn read_folder(dir: &Path) -> Result<Vec<FolderFile>, ReadError> {
    Ok(event_files(dir)?
        .into_iter()
        .map(|path| {
            let folder = path
                .parent()
                .and_then(|p| p.strip_prefix(dir).ok())
                .map(Path::to_owned)
                .unwrap_or_default();
            let read = read_file(&path);
            FolderFile { path, folder, read }
        })
        .collect())
}

#[cfg(test)]
mod tests;
