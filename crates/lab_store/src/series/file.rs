//! The series file's layout: a header, the blocks of every metric, an index
//! of the blocks of each metric, and a footer that says where the index is
//! and which journal the file was made from. Written by [`FileWriter`] under
//! a temporary name and renamed; read by [`SeriesFile`], which refuses a file
//! that does not match the journal beside it or whose checksums fail.

use std::collections::HashMap;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::codec::{self, BLOCK_POINTS, BlockSummary, Columns, Decoded};

/// The first 8 bytes, and the last 8.
pub const MAGIC: &[u8; 8] = b"labseri\n";
/// The layout's version, after the magic.
pub const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
const FOOTER_LEN: usize = 40;
/// Bytes of one block's entry in the index.
const ENTRY_LEN: usize = 8 + 4 + 2 + 8 * 6;
/// How much of the journal's end the file's checksum of it covers.
pub const JOURNAL_TAIL: u64 = 4096;

/// Why a series file is not used (the journal is read instead).
#[derive(Debug)]
pub enum Unusable {
    /// Reading it failed.
    Io(std::io::Error),
    /// It was made from a journal other than the one beside it now.
    Stale,
    /// Its bytes are not what Lab writes: damaged, cut short.
    Damaged(&'static str),
}

impl From<std::io::Error> for Unusable {
    fn from(e: std::io::Error) -> Self {
        Unusable::Io(e)
    }
}

impl From<codec::Malformed> for Unusable {
    fn from(_: codec::Malformed) -> Self {
        Unusable::Damaged("a block does not decode")
    }
}

/// One block's place and summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockEntry {
    /// Offset of its first byte in the file.
    pub offset: u64,
    /// Its bytes, with the checksum that ends it.
    pub len: u32,
    /// What it holds.
    pub summary: BlockSummary,
}

/// One metric's entry in the index.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricEntry {
    /// Its name.
    pub name: String,
    /// Its points.
    pub count: u64,
    /// Its blocks, in logging order.
    pub blocks: Vec<BlockEntry>,
}

/// Crc32c of the last [`JOURNAL_TAIL`] bytes of a journal `len` bytes long.
pub fn journal_tail_crc(file: &mut std::fs::File, len: u64) -> std::io::Result<u32> {
    let from = len.saturating_sub(JOURNAL_TAIL);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity((len - from) as usize);
    file.take(len - from).read_to_end(&mut tail)?;
    if tail.len() as u64 != len - from {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(crc32c::crc32c(&tail))
}

/// Writes a series file: points go in metric by metric as the journal
/// gives them, a block is written whenever a metric has a full one.
pub struct FileWriter {
    out: BufWriter<fs_err::File>,
    offset: u64,
    metrics: Vec<Pending>,
    scratch: Vec<u8>,
}

struct Pending {
    entry: MetricEntry,
    steps: Vec<i64>,
    times: Vec<i64>,
    bits: Vec<u64>,
}

impl FileWriter {
    /// Starts the file at `path` (created, or emptied).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, fs_err::File::create(path)?);
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        Ok(Self {
            out,
            offset: HEADER_LEN,
            metrics: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Adds a metric (its number is its place in the order of adding).
    pub fn add_metric(&mut self, name: String) -> usize {
        self.metrics.push(Pending {
            entry: MetricEntry {
                name,
                count: 0,
                blocks: Vec::new(),
            },
            steps: Vec::with_capacity(BLOCK_POINTS),
            times: Vec::with_capacity(BLOCK_POINTS),
            bits: Vec::with_capacity(BLOCK_POINTS),
        });
        self.metrics.len() - 1
    }

    /// Adds a point to metric `metric`.
    pub fn push(
        &mut self,
        metric: usize,
        step: i64,
        time_nanos: i64,
        value: f64,
    ) -> std::io::Result<()> {
        let Some(m) = self.metrics.get_mut(metric) else {
            return Ok(());
        };
        m.steps.push(step);
        m.times.push(time_nanos);
        m.bits.push(value.to_bits());
        if m.bits.len() == BLOCK_POINTS {
            self.flush(metric)?;
        }
        Ok(())
    }

    fn flush(&mut self, metric: usize) -> std::io::Result<()> {
        let m = &mut self.metrics[metric];
        if m.bits.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        let summary = codec::encode_block(&m.steps, &m.times, &m.bits, &mut self.scratch);
        let crc = crc32c::crc32c(&self.scratch);
        self.scratch.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(&self.scratch)?;
        m.entry.count += m.bits.len() as u64;
        m.entry.blocks.push(BlockEntry {
            offset: self.offset,
            len: self.scratch.len() as u32,
            summary,
        });
        self.offset += self.scratch.len() as u64;
        m.steps.clear();
        m.times.clear();
        m.bits.clear();
        Ok(())
    }

    /// Writes the last blocks, the index and the footer for a journal
    /// `journal_len` bytes long whose tail has checksum `journal_crc`, and
    /// syncs the file.
    pub fn finish(mut self, journal_len: u64, journal_crc: u32) -> std::io::Result<u64> {
        for i in 0..self.metrics.len() {
            self.flush(i)?;
        }
        let mut index = Vec::new();
        index.extend_from_slice(&(self.metrics.len() as u32).to_le_bytes());
        for m in &self.metrics {
            let name = m.entry.name.as_bytes();
            index.extend_from_slice(&(name.len() as u32).to_le_bytes());
            index.extend_from_slice(name);
            index.extend_from_slice(&m.entry.count.to_le_bytes());
            index.extend_from_slice(&(m.entry.blocks.len() as u32).to_le_bytes());
            for b in &m.entry.blocks {
                let s = &b.summary;
                index.extend_from_slice(&b.offset.to_le_bytes());
                index.extend_from_slice(&b.len.to_le_bytes());
                index.extend_from_slice(&s.count.to_le_bytes());
                index.extend_from_slice(&s.min.to_bits().to_le_bytes());
                index.extend_from_slice(&s.max.to_bits().to_le_bytes());
                index.extend_from_slice(&s.first_bits.to_le_bytes());
                index.extend_from_slice(&s.last_bits.to_le_bytes());
                index.extend_from_slice(&s.first_step.to_le_bytes());
                index.extend_from_slice(&s.last_step.to_le_bytes());
            }
        }
        let index_offset = self.offset;
        self.out.write_all(&index)?;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        footer.extend_from_slice(&index_offset.to_le_bytes());
        footer.extend_from_slice(&(index.len() as u32).to_le_bytes());
        footer.extend_from_slice(&crc32c::crc32c(&index).to_le_bytes());
        footer.extend_from_slice(&journal_len.to_le_bytes());
        footer.extend_from_slice(&journal_crc.to_le_bytes());
        footer.extend_from_slice(&0u32.to_le_bytes());
        footer.extend_from_slice(MAGIC);
        self.out.write_all(&footer)?;
        let file = self
            .out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(index_offset + index.len() as u64 + FOOTER_LEN as u64)
    }
}

/// An open series file that matches its journal.
pub struct SeriesFile {
    map: memmap2::Mmap,
    metrics: Vec<MetricEntry>,
    by_name: HashMap<String, usize>,
    whole: bool,
    journal_crc: u32,
    /// The file, for reads of every block once ([`SeriesFile::read_past_damage`]).
    file: std::fs::File,
}

impl std::fmt::Debug for SeriesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesFile")
            .field("bytes", &self.map.len())
            .field("metrics", &self.metrics.len())
            .finish_non_exhaustive()
    }
}

/// Little-endian numbers out of a slice, every read checked.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unusable> {
        if n > self.0.len() {
            return Err(Unusable::Damaged("the index is cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, Unusable> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Unusable> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, Unusable> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

impl SeriesFile {
    /// The series file at `path` if there is one and it was made from the
    /// journal at `journal` as it is now: `Ok(None)` when there is none, an
    /// error when it cannot be used.
    pub fn open(path: &Path, journal: &Path) -> Result<Option<Self>, Unusable> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // SAFETY: Lab never changes a series file in place: it is written
        // under a temporary name, synced and renamed over the old one, so
        // the mapped file keeps its length while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let len = map.len();
        if len < HEADER_LEN as usize + FOOTER_LEN || &map[..8] != MAGIC || &map[len - 8..] != MAGIC
        {
            return Err(Unusable::Damaged("no series file's header and footer"));
        }
        if map[8..12] != VERSION.to_le_bytes() || map[12..16] != [0; 4] {
            return Err(Unusable::Damaged("a version this build does not read"));
        }
        let mut footer = Bytes(&map[len - FOOTER_LEN..]);
        let index_offset = footer.u64()?;
        let index_len = footer.u32()? as usize;
        let index_crc = footer.u32()?;
        let journal_len = footer.u64()?;
        let journal_crc = footer.u32()?;
        if footer.u32()? != 0 {
            return Err(Unusable::Damaged("no series file's footer"));
        }
        let mut journal_file = std::fs::File::open(journal)?;
        let actual_len = journal_file.metadata()?.len();
        let whole = actual_len == journal_len
            && journal_tail_crc(&mut journal_file, actual_len).ok() == Some(journal_crc);
        // A journal whose points were given back (see `lab_journal::holes`)
        // may have changed at its end since (a damaged tail cut off, records
        // salvaged): its list of holes names this file by what it recorded.
        if !whole
            && !matches!(
                lab_journal::holes::read_holes(journal, u64::MAX),
                Ok(Some(h)) if h.covered == journal_len && h.journal_crc == journal_crc
            )
        {
            return Err(Unusable::Stale);
        }
        let index_start =
            usize::try_from(index_offset).map_err(|_| Unusable::Damaged("index offset"))?;
        if index_start < HEADER_LEN as usize
            || index_start.checked_add(index_len) != Some(len - FOOTER_LEN)
        {
            return Err(Unusable::Damaged("the index is not where the footer says"));
        }
        let index = &map[index_start..index_start + index_len];
        if crc32c::crc32c(index) != index_crc {
            return Err(Unusable::Damaged("the index's checksum fails"));
        }
        let metrics = parse_index(index, index_offset)?;
        let mut by_name = HashMap::with_capacity(metrics.len());
        for (i, m) in metrics.iter().enumerate() {
            if by_name.insert(m.name.clone(), i).is_some() {
                return Err(Unusable::Damaged("a metric is listed twice"));
            }
        }
        Ok(Some(Self {
            map,
            metrics,
            by_name,
            whole,
            journal_crc,
            file,
        }))
    }

    /// Every metric, in the order the journal declared them.
    /// Whether the journal is as it was when this file was made, so that
    /// the file holds every one of its points. A journal with holes that
    /// changed since has points after the holes' covered length too.
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// The checksum of the journal's end that this file was made from.
    #[must_use]
    pub fn journal_crc(&self) -> u32 {
        self.journal_crc
    }

    #[must_use]
    pub fn metrics(&self) -> &[MetricEntry] {
        &self.metrics
    }

    /// The metric named `name`, if the run logged it.
    #[must_use]
    pub fn metric(&self, name: &str) -> Option<&MetricEntry> {
        self.by_name.get(name).map(|&i| &self.metrics[i])
    }

    /// Hands `f` the points of `metric`, block by block, in the `columns`
    /// asked for; `Err` without handing any when a block's checksum fails.
    pub fn read(
        &self,
        metric: &MetricEntry,
        columns: Columns,
        mut f: impl FnMut(&Decoded),
    ) -> Result<(), Unusable> {
        let bodies = metric
            .blocks
            .iter()
            .map(|b| self.block_body(b))
            .collect::<Result<Vec<_>, _>>()?;
        let mut decoded = Decoded::default();
        for (body, b) in bodies.into_iter().zip(&metric.blocks) {
            codec::decode_block(body, b.summary.count, columns, &mut decoded)?;
            f(&decoded);
        }
        Ok(())
    }

    /// [`SeriesFile::read`] past damage: a block whose checksum fails or
    /// that does not decode is left out, and the points lost with it are
    /// counted in what it returns.
    pub fn read_past_damage(
        &self,
        metric: &MetricEntry,
        columns: Columns,
        mut f: impl FnMut(&Decoded),
    ) -> u64 {
        let mut lost = 0;
        let mut decoded = Decoded::default();
        let mut buf = Vec::new();
        for i in 0..metric.blocks.len() {
            match self.read_block(&mut buf, metric, i, columns, &mut decoded) {
                Ok(()) => f(&decoded),
                Err(_) => lost += u64::from(metric.blocks[i].summary.count),
            }
        }
        lost
    }

    /// Decodes block `i` of `metric` into `into`, checking its checksum,
    /// with `read(2)` into `buf` rather than through the map: a reader of
    /// every block once (the check against the journal, a fold) does not
    /// keep the whole file resident.
    pub fn read_block(
        &self,
        buf: &mut Vec<u8>,
        metric: &MetricEntry,
        i: usize,
        columns: Columns,
        into: &mut Decoded,
    ) -> Result<(), Unusable> {
        use std::os::unix::fs::FileExt;
        let b = metric
            .blocks
            .get(i)
            .ok_or(Unusable::Damaged("no such block"))?;
        if b.offset.saturating_add(u64::from(b.len)) > self.map.len() as u64 {
            return Err(Unusable::Damaged("a block is outside the file"));
        }
        buf.resize(b.len as usize, 0);
        self.file.read_exact_at(buf, b.offset)?;
        codec::decode_block(checked(buf)?, b.summary.count, columns, into)?;
        Ok(())
    }

    /// A block's bytes, without its checksum, once the checksum holds.
    fn block_body(&self, b: &BlockEntry) -> Result<&[u8], Unusable> {
        let start = usize::try_from(b.offset).map_err(|_| Unusable::Damaged("block offset"))?;
        let bytes = start
            .checked_add(b.len as usize)
            .and_then(|end| self.map.get(start..end))
            .ok_or(Unusable::Damaged("a block is outside the file"))?;
        checked(bytes)
    }
}

/// A block's bytes (its body, then a CRC-32C of it) without the checksum,
/// once it holds.
fn checked(bytes: &[u8]) -> Result<&[u8], Unusable> {
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or(Unusable::Damaged("a block is outside the file"))?;
    let (body, crc) = bytes.split_at(body_len);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(Unusable::Damaged("a block's checksum fails"));
    }
    Ok(body)
}

fn parse_index(index: &[u8], blocks_end: u64) -> Result<Vec<MetricEntry>, Unusable> {
    let mut b = Bytes(index);
    let n = b.u32()? as usize;
    let mut metrics = Vec::with_capacity(n.min(index.len() / 16));
    for _ in 0..n {
        let name_len = b.u32()? as usize;
        let name = std::str::from_utf8(b.take(name_len)?)
            .map_err(|_| Unusable::Damaged("a metric's name is not UTF-8"))?
            .to_owned();
        let count = b.u64()?;
        let blocks = b.u32()? as usize;
        if blocks > b.0.len() / ENTRY_LEN {
            return Err(Unusable::Damaged("the index is cut short"));
        }
        let mut entries = Vec::with_capacity(blocks);
        let mut total = 0u64;
        for _ in 0..blocks {
            let offset = b.u64()?;
            let len = b.u32()?;
            let summary = BlockSummary {
                count: b.u16()?,
                min: f64::from_bits(b.u64()?),
                max: f64::from_bits(b.u64()?),
                first_bits: b.u64()?,
                last_bits: b.u64()?,
                first_step: b.u64()? as i64,
                last_step: b.u64()? as i64,
            };
            if offset < HEADER_LEN || offset.saturating_add(u64::from(len)) > blocks_end {
                return Err(Unusable::Damaged("a block is outside the file"));
            }
            total += u64::from(summary.count);
            entries.push(BlockEntry {
                offset,
                len,
                summary,
            });
        }
        if total != count {
            return Err(Unusable::Damaged("a metric's count is not its blocks'"));
        }
        metrics.push(MetricEntry {
            name,
            count,
            blocks: entries,
        });
    }
    if !b.0.is_empty() {
        return Err(Unusable::Damaged("bytes after the index"));
    }
    Ok(metrics)
}
