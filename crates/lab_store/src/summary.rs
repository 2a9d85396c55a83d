//! A run's listing summary: the attributes a listing shows, parameters,
//! metric summaries and tags, kept as one blob in its `runs` row. Folds
//! rewrite it; listings read one row per run instead of some fifty rows from
//! four tables.
//!
//! Layout (little-endian; strings are `u32` length + UTF-8; values are the
//! journal's value encoding):
//!
//! ```text
//! u32 n, n × (string key, value)                      attributes
//! u32 n, n × (string key, value)                      parameters, in logging order
//! u32 n, n × (string name, f64 last, i64 last_step,
//!             f64 min, f64 max, i64 count)            metrics (min/max NaN when none)
//! u32 n, n × (string key, string value)               tags
//! ```
//!
//! A run with a value longer than [`MAX_LISTED_VALUE`] (a long dataset
//! description, a parameter holding a document) has no summary: its values
//! are then kept once, in their tables, and a listing reads them from there.

use lab_journal::codec;
use lab_types::Value;
use rusqlite::{Connection, params};

use crate::{Error, MetricSummary, RunInfo};

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The longest encoded attribute, parameter or tag a summary copies.
pub(crate) const MAX_LISTED_VALUE: usize = 4096;

/// A `metrics` row: name, last value's bits, last step, min, max, count.
type MetricRow = (String, i64, i64, Option<f64>, Option<f64>, i64);

/// Rebuilds the summary of run `rid` from the index tables.
pub(crate) fn write(tx: &Connection, rid: i64) -> Result<(), Error> {
    let summary = build(tx, rid)?;
    tx.prepare_cached("UPDATE runs SET summary = ?2 WHERE rid = ?1")?
        .execute(params![rid, summary])?;
    Ok(())
}

/// The summary of run `rid`, or `None` when one of its values is too long to
/// copy into it.
fn build(tx: &Connection, rid: i64) -> Result<Option<Vec<u8>>, Error> {
    let mut blob = Vec::with_capacity(1024);
    let whole = attrs(tx, rid, &mut blob)? && params(tx, rid, &mut blob)? && {
        metrics(tx, rid, &mut blob)?;
        tags(tx, rid, &mut blob)?
    };
    Ok(whole.then_some(blob))
}

/// The sections, each written after the count of its entries. Each returns
/// false when a value is too long to copy, and the run then has no summary.
fn attrs(tx: &Connection, rid: i64, blob: &mut Vec<u8>) -> Result<bool, Error> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT key, coalesce(value, (SELECT value FROM attr_values WHERE id = shared)) AS value FROM attrs WHERE run = ?1 AND key IN ({}) ORDER BY key",
        crate::fields::listed_attrs_sql()
    ))?;
    let rows: Vec<(String, Vec<u8>)> = stmt
        .query_map([rid], |r| Ok((r.get("key")?, r.get("value")?)))?
        .collect::<Result<_, _>>()?;
    blob.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (k, v) in rows {
        if v.len() > MAX_LISTED_VALUE {
            return Ok(false);
        }
        put_str(blob, &k);
        // Already in the value encoding: copy it as it is.
        blob.extend_from_slice(&v);
    }
    Ok(true)
}

fn params(tx: &Connection, rid: i64, blob: &mut Vec<u8>) -> Result<bool, Error> {
    let mut stmt =
        tx.prepare_cached("SELECT key, value, text FROM params WHERE run = ?1 ORDER BY seq")?;
    let rows: Vec<(String, Vec<u8>, Option<String>)> = stmt
        .query_map([rid], |r| {
            Ok((r.get("key")?, r.get("value")?, r.get("text")?))
        })?
        .collect::<Result<_, _>>()?;
    blob.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (k, v, text) in rows {
        if v.len().max(text.as_ref().map_or(0, String::len)) > MAX_LISTED_VALUE {
            return Ok(false);
        }
        put_str(blob, &k);
        if v.is_empty() {
            // A string, kept in the table as its text alone.
            codec::encode_value(&Value::Str(text.unwrap_or_default()), blob);
        } else {
            blob.extend_from_slice(&v);
        }
    }
    Ok(true)
}

fn tags(tx: &Connection, rid: i64, blob: &mut Vec<u8>) -> Result<bool, Error> {
    let mut stmt = tx.prepare_cached("SELECT key, value FROM tags WHERE run = ?1 ORDER BY key")?;
    let rows: Vec<(String, String)> = stmt
        .query_map([rid], |r| Ok((r.get("key")?, r.get("value")?)))?
        .collect::<Result<_, _>>()?;
    blob.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (k, v) in rows {
        if v.len() > MAX_LISTED_VALUE {
            return Ok(false);
        }
        put_str(blob, &k);
        put_str(blob, &v);
    }
    Ok(true)
}

/// Metric summaries: numbers, never too long.
fn metrics(tx: &Connection, rid: i64, blob: &mut Vec<u8>) -> Result<(), Error> {
    let mut stmt = tx.prepare_cached(
        "SELECT key, last_bits, last_step, min, max, count FROM metrics WHERE run = ?1 ORDER BY seq",
    )?;
    let rows: Vec<MetricRow> = stmt
        .query_map([rid], |r| {
            Ok((
                r.get("key")?,
                r.get("last_bits")?,
                r.get("last_step")?,
                r.get("min")?,
                r.get("max")?,
                r.get("count")?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    blob.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (name, last_bits, step, min, max, count) in rows {
        put_str(blob, &name);
        blob.extend_from_slice(&last_bits.to_le_bytes());
        blob.extend_from_slice(&step.to_le_bytes());
        blob.extend_from_slice(&min.unwrap_or(f64::NAN).to_le_bytes());
        blob.extend_from_slice(&max.unwrap_or(f64::NAN).to_le_bytes());
        blob.extend_from_slice(&count.to_le_bytes());
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b = self.buf.get(self.pos..self.pos + N)?.try_into().ok()?;
        self.pos += N;
        Some(b)
    }
    fn u32(&mut self) -> Option<usize> {
        self.bytes::<4>().map(|b| u32::from_le_bytes(b) as usize)
    }
    fn i64(&mut self) -> Option<i64> {
        self.bytes::<8>().map(i64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.bytes::<8>().map(f64::from_le_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()?;
        let s = std::str::from_utf8(self.buf.get(self.pos..self.pos + n)?)
            .ok()?
            .to_owned();
        self.pos += n;
        Some(s)
    }
    fn value(&mut self) -> Option<Value> {
        let (v, used) = codec::decode_value_prefix(self.buf.get(self.pos..)?).ok()?;
        self.pos += used;
        Some(v)
    }
    fn pairs(&mut self) -> Option<Vec<(String, Value)>> {
        let n = self.u32()?;
        let mut out = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            out.push((self.string()?, self.value()?));
        }
        Some(out)
    }
}

/// Fills `run` from a summary; false if the summary is not one.
pub(crate) fn apply(run: &mut RunInfo, blob: &[u8]) -> bool {
    let mut r = Reader { buf: blob, pos: 0 };
    let mut read = || -> Option<()> {
        run.attrs = r.pairs()?;
        run.params = r.pairs()?;
        let n = r.u32()?;
        run.metrics = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let name = r.string()?;
            let last = f64::from_bits(r.i64()? as u64);
            let last_step = r.i64()?;
            let (min, max) = (r.f64()?, r.f64()?);
            let count = r.i64()?;
            run.metrics.push(MetricSummary {
                name,
                last,
                last_step,
                min: (!min.is_nan()).then_some(min),
                max: (!max.is_nan()).then_some(max),
                count,
            });
        }
        let n = r.u32()?;
        run.tags = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            run.tags.push((r.string()?, r.string()?));
        }
        Some(())
    };
    read().is_some() && r.pos == blob.len()
}
