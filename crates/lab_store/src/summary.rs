//! A run's listing summary: the attributes a listing shows, parameters,
//! metric summaries and tags, kept as one blob in its `runs` row. Folds
//! rewrite it; listings read one row per run instead of some fifty rows from
//! four tables.
//!
//! Layout (counts, lengths and integers are LEB128 varints, signed ones
//! zigzag-encoded; strings are a length + UTF-8; values are the journal's
//! value encoding; floats are 8 bytes little-endian):
//!
//! ```text
//! n, n × (string key, value)                          attributes
//! n, n × (string key, value)                          parameters, in logging order
//! n, n × (string name, u8 flags, f64 last,
//!         [i64 last_step], [f64 min], [f64 max],
//!         [i64 count])                                metrics
//! n, n × (string key, string value)                   tags
//! ```
//!
//! A metric's flags say which fields follow `last` (the last value's exact
//! bits): 1 `last_step` (else 0), 2 `min`, 4 `max` (else none), 8 `min` and
//! `max` both equal to `last` (and absent), 16 `count` (else 1). A metric
//! logged once takes a dozen bytes, not fifty.
//!
//! A run with a value longer than [`MAX_LISTED_VALUE`] (a long dataset
//! description, a parameter holding a document) has no summary: its values
//! are then kept once, in their tables, and a listing reads them from there.
//!
//! A fold that makes a run's row (a rebuild folds every run so) keeps a
//! [`Mirror`] of what it writes into the run's tables and encodes the summary
//! from it; a fold on from an earlier one reads the tables back.

use std::collections::{BTreeMap, HashMap};

use lab_journal::codec;
use lab_types::Value;
use rusqlite::{Connection, params};

use crate::{Error, MetricSummary, RunInfo};

/// The longest encoded attribute, parameter or tag a summary copies.
pub(crate) const MAX_LISTED_VALUE: usize = 4096;

/// A `metrics` row: name, last value's bits, last step, min, max, count.
type MetricRow = (String, i64, i64, Option<f64>, Option<f64>, i64);

/// What a summary holds, in its order.
#[derive(Default)]
struct Parts {
    /// Listed attributes by key, encoded.
    attrs: Vec<(String, Vec<u8>)>,
    /// Parameters in logging order: key, stored value, text (see
    /// `facts::param_columns`).
    params: Vec<(String, Vec<u8>, Option<String>)>,
    /// Metrics in the order first logged.
    metrics: Vec<MetricRow>,
    /// Tags by key.
    tags: Vec<(String, String)>,
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

const HAS_STEP: u8 = 1;
const HAS_MIN: u8 = 2;
const HAS_MAX: u8 = 4;
const MIN_MAX_ARE_LAST: u8 = 8;
const HAS_COUNT: u8 = 16;

impl Parts {
    /// The summary, or `None` when a value is too long to copy into it.
    fn encode(&self) -> Option<Vec<u8>> {
        let mut blob = Vec::with_capacity(512);
        put_varint(&mut blob, self.attrs.len() as u64);
        for (k, v) in &self.attrs {
            if v.len() > MAX_LISTED_VALUE {
                return None;
            }
            put_str(&mut blob, k);
            // Already in the value encoding: copy it as it is.
            blob.extend_from_slice(v);
        }
        put_varint(&mut blob, self.params.len() as u64);
        for (k, v, text) in &self.params {
            if v.len().max(text.as_ref().map_or(0, String::len)) > MAX_LISTED_VALUE {
                return None;
            }
            put_str(&mut blob, k);
            if v.is_empty() {
                // A string, kept in the table as its text alone.
                codec::encode_value(&Value::Str(text.clone().unwrap_or_default()), &mut blob);
            } else {
                blob.extend_from_slice(v);
            }
        }
        put_varint(&mut blob, self.metrics.len() as u64);
        for (name, last_bits, step, min, max, count) in &self.metrics {
            put_str(&mut blob, name);
            let last = f64::from_bits(*last_bits as u64);
            let mut flags = 0;
            if *step != 0 {
                flags |= HAS_STEP;
            }
            let same = |m: &Option<f64>| m.is_some_and(|m| m.to_bits() == last.to_bits());
            if same(min) && same(max) {
                flags |= MIN_MAX_ARE_LAST;
            } else {
                if min.is_some() {
                    flags |= HAS_MIN;
                }
                if max.is_some() {
                    flags |= HAS_MAX;
                }
            }
            if *count != 1 {
                flags |= HAS_COUNT;
            }
            blob.push(flags);
            blob.extend_from_slice(&last_bits.to_le_bytes());
            if flags & HAS_STEP != 0 {
                put_signed(&mut blob, *step);
            }
            for (flag, m) in [(HAS_MIN, min), (HAS_MAX, max)] {
                if flags & flag != 0 {
                    blob.extend_from_slice(&m.unwrap_or(f64::NAN).to_le_bytes());
                }
            }
            if flags & HAS_COUNT != 0 {
                put_signed(&mut blob, *count);
            }
        }
        put_varint(&mut blob, self.tags.len() as u64);
        for (k, v) in &self.tags {
            if v.len() > MAX_LISTED_VALUE {
                return None;
            }
            put_str(&mut blob, k);
            put_str(&mut blob, v);
        }
        Some(blob)
    }
}

/// What a fold wrote into the tables of a run whose row it made, kept as it
/// writes, with the tables' rules (a later attribute, parameter or tag
/// replaces an earlier; metric summaries merge), so that its summary needs
/// no reading back.
#[derive(Default)]
pub(crate) struct Mirror {
    attrs: BTreeMap<String, Vec<u8>>,
    /// Parameters in the order first written, as `seq` orders them.
    params: Vec<(String, Vec<u8>, Option<String>)>,
    /// Where each parameter is in `params`.
    param_at: HashMap<String, usize>,
    /// Metrics with the `seq` of their first row.
    metrics: Vec<(u64, MetricRow)>,
    /// Where each metric is in `metrics`.
    metric_at: HashMap<String, usize>,
    tags: BTreeMap<String, String>,
}

impl Mirror {
    /// An attribute written: kept if a listing shows it, unless its `runs`
    /// column holds it alone (`None`), which the listing reads instead.
    pub(crate) fn attr(&mut self, key: &str, encoded: Option<&[u8]>) {
        match encoded {
            Some(encoded) if crate::fields::listed_attrs().any(|a| a == key) => {
                self.attrs.insert(key.to_owned(), encoded.to_vec());
            }
            _ => {
                self.attrs.remove(key);
            }
        }
    }

    /// A parameter written: replaces the value of one already there, which
    /// keeps its place.
    pub(crate) fn param(&mut self, key: &str, stored: &[u8], text: Option<&str>) {
        let value = (stored.to_vec(), text.map(str::to_owned));
        if let Some(&at) = self.param_at.get(key) {
            (self.params[at].1, self.params[at].2) = value;
        } else {
            self.param_at.insert(key.to_owned(), self.params.len());
            self.params.push((key.to_owned(), value.0, value.1));
        }
    }

    /// A metric summary written, merged into one already there as the
    /// `metrics` upsert merges it.
    pub(crate) fn metric(&mut self, seq: u64, mut row: MetricRow) {
        // As a REAL column keeps them: SQLite stores -0.0 as 0.
        let real = |v: Option<f64>| v.map(|v| if v == 0.0 { 0.0 } else { v });
        (row.3, row.4) = (real(row.3), real(row.4));
        if let Some(&at) = self.metric_at.get(&row.0) {
            let m = &mut self.metrics[at].1;
            let merge = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
                (a, None) => a,
                (None, b) => b,
                (Some(a), Some(b)) => Some(f(a, b)),
            };
            *m = (
                row.0,
                row.1,
                row.2,
                merge(m.3, row.3, f64::min),
                merge(m.4, row.4, f64::max),
                m.5 + row.5,
            );
        } else {
            self.metric_at.insert(row.0.clone(), self.metrics.len());
            self.metrics.push((seq, row));
        }
    }

    pub(crate) fn untag(&mut self, key: &str) {
        self.tags.remove(key);
    }

    pub(crate) fn tag(&mut self, key: &str, value: &str) {
        self.tags.insert(key.to_owned(), value.to_owned());
    }

    /// The summary of what was written, as [`write`] would read it back.
    pub(crate) fn encode(mut self) -> Option<Vec<u8>> {
        self.metrics.sort_by_key(|(seq, _)| *seq);
        Parts {
            attrs: self.attrs.into_iter().collect(),
            params: self.params,
            metrics: self.metrics.into_iter().map(|(_, m)| m).collect(),
            tags: self.tags.into_iter().collect(),
        }
        .encode()
    }
}

/// Writes `summary` (see [`Mirror::encode`]) as run `rid`'s.
pub(crate) fn put(tx: &Connection, rid: i64, summary: Option<&[u8]>) -> Result<(), Error> {
    tx.prepare_cached("UPDATE runs SET summary = ?2 WHERE rid = ?1")?
        .execute(params![rid, summary])?;
    Ok(())
}

/// Rebuilds the summary of run `rid` from the index tables.
pub(crate) fn write(tx: &Connection, rid: i64) -> Result<(), Error> {
    put(tx, rid, read_parts(tx, rid)?.encode().as_deref())
}

/// What the tables hold of run `rid` for its summary.
fn read_parts(tx: &Connection, rid: i64) -> Result<Parts, Error> {
    let attrs = tx
        .prepare_cached(&format!(
            "SELECT k.name AS key, coalesce(a.value, (SELECT value FROM attr_values WHERE id = a.shared)) AS value FROM attrs a JOIN attr_keys k ON k.id = a.key WHERE a.run = ?1 AND k.name IN ({}) ORDER BY k.name",
            crate::fields::listed_attrs_sql()
        ))?
        .query_map([rid], |r| Ok((r.get("key")?, r.get("value")?)))?
        .collect::<Result<_, _>>()?;
    let params = tx
        .prepare_cached("SELECT key, value, text FROM params WHERE run = ?1 ORDER BY seq")?
        .query_map([rid], |r| {
            let text: Option<String> = r.get("text")?;
            let value = match r.get::<_, Option<Vec<u8>>>("value")? {
                Some(value) => value,
                // A number kept as its text alone.
                None => crate::facts::encode_value(&crate::read::sqlite_param(None, text.clone())),
            };
            Ok((r.get("key")?, value, text))
        })?
        .collect::<Result<_, _>>()?;
    let metrics = tx
        .prepare_cached(
            "SELECT key, last, last_bits, last_step, coalesce(min, last) AS min, coalesce(max, last) AS max, count FROM metrics WHERE run = ?1 ORDER BY seq",
        )?
        .query_map([rid], |r| {
            Ok((
                r.get("key")?,
                crate::facts::last_value(r.get("last")?, r.get("last_bits")?).to_bits() as i64,
                r.get("last_step")?,
                r.get("min")?,
                r.get("max")?,
                r.get("count")?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let tags = tx
        .prepare_cached("SELECT key, value FROM tags WHERE run = ?1 ORDER BY key")?
        .query_map([rid], |r| Ok((r.get("key")?, r.get("value")?)))?
        .collect::<Result<_, _>>()?;
    Ok(Parts {
        attrs,
        params,
        metrics,
        tags,
    })
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
    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }
    fn signed(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }
    fn f64(&mut self) -> Option<f64> {
        self.bytes::<8>().map(f64::from_le_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.len()?;
        let s = std::str::from_utf8(self.buf.get(self.pos..self.pos.checked_add(n)?)?)
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
        let n = self.len()?;
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
        let n = r.len()?;
        run.metrics = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let name = r.string()?;
            let flags = *r.buf.get(r.pos)?;
            r.pos += 1;
            let last = r.f64()?;
            let last_step = if flags & HAS_STEP != 0 {
                r.signed()?
            } else {
                0
            };
            let (min, max) = if flags & MIN_MAX_ARE_LAST != 0 {
                (Some(last), Some(last))
            } else {
                let min = if flags & HAS_MIN != 0 {
                    Some(r.f64()?)
                } else {
                    None
                };
                let max = if flags & HAS_MAX != 0 {
                    Some(r.f64()?)
                } else {
                    None
                };
                (min, max)
            };
            let count = if flags & HAS_COUNT != 0 {
                r.signed()?
            } else {
                1
            };
            run.metrics.push(MetricSummary {
                name,
                last,
                last_step,
                min,
                max,
                count,
            });
        }
        let n = r.len()?;
        run.tags = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            run.tags.push((r.string()?, r.string()?));
        }
        Some(())
    };
    read().is_some() && r.pos == blob.len()
}

#[cfg(test)]
mod tests {
    use lab_journal::JournalWriter;
    use lab_types::{MetricPoint, Record, Status};

    use super::*;
    use crate::{Project, Store};

    /// A run of experiment `e` started at `t`, and its journal's writer.
    fn started(project: &Project, t: i64) -> (lab_types::RunId, JournalWriter) {
        let (id, paths) = project.claim_run(t).unwrap();
        let mut w = JournalWriter::create(&paths.journal).unwrap();
        w.append(&Record::Start {
            run: id,
            time_nanos: t,
            experiment: "e".into(),
        })
        .unwrap();
        (id, w)
    }

    /// A run that exercises every rule the tables apply: an attribute, a
    /// parameter and a tag set twice, a tag removed, two metric numbers
    /// with one name, NaN, a long attribute kept in `attr_values`.
    fn write_run(project: &Project, start: i64) {
        let (_, mut w) = started(project, start);
        let t = start;
        let str_value = |s: &str| Value::Str(s.into());
        let records = [
            Record::Attr {
                time_nanos: t,
                key: "user".into(),
                value: str_value("ada"),
            },
            Record::Attr {
                time_nanos: t,
                key: "host".into(),
                value: str_value("box"),
            },
            Record::Attr {
                time_nanos: t,
                key: "packages".into(),
                value: str_value(&"p==1 ".repeat(100)),
            },
            Record::Attr {
                time_nanos: t,
                key: "user".into(),
                value: str_value("bob"),
            },
            Record::Param {
                time_nanos: t,
                key: "lr".into(),
                value: Value::Float(0.1),
            },
            Record::Param {
                time_nanos: t,
                key: "name".into(),
                value: str_value("a run"),
            },
            Record::Param {
                time_nanos: t,
                key: "lr".into(),
                value: Value::Float(0.01),
            },
            Record::Param {
                time_nanos: t,
                key: "layers".into(),
                value: Value::List(vec![Value::Int(1)]),
            },
            Record::MetricKey {
                key: 0,
                name: "loss".into(),
            },
            Record::MetricKey {
                key: 1,
                name: "acc".into(),
            },
            Record::MetricKey {
                key: 2,
                name: "loss".into(),
            },
            Record::MetricKey {
                key: 3,
                name: "nan".into(),
            },
            Record::Tag {
                time_nanos: t,
                key: "stage".into(),
                value: "dev".into(),
            },
            Record::Tag {
                time_nanos: t,
                key: "gone".into(),
                value: "x".into(),
            },
            Record::Untag {
                time_nanos: t,
                key: "gone".into(),
            },
            Record::Tag {
                time_nanos: t,
                key: "stage".into(),
                value: "prod".into(),
            },
        ];
        for r in &records {
            w.append(r).unwrap();
        }
        for (key, step, value) in [
            (0, 0, 1.0),
            (0, 5, 0.5),
            (1, 0, f64::NAN),
            (2, 7, 0.25),
            (1, 1, -0.0),
            (3, 0, f64::NAN),
        ] {
            w.append_metric(t, &MetricPoint { key, step, value })
                .unwrap();
        }
        w.append(&Record::End {
            time_nanos: t + 1,
            status: Status::Finished,
            error: None,
        })
        .unwrap();
        w.close().unwrap();
    }

    /// Attributes its `runs` columns give back are kept there alone, and
    /// every way of reading a run gives them back as they were written.
    #[test]
    fn attributes_their_columns_give_back_are_kept_there_alone() {
        use lab_types::fields::attr::{GIT_COMMIT, GIT_DIRTY, HOST, NAME, SOURCE, USER};
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let t = lab_types::now_nanos();
        let (id, mut w) = started(&project, t);
        let short = id.to_string()[..8].to_owned();
        let generated = lab_types::names::generated_name(&short).unwrap();
        let attr = |key: &str, value: Value| Record::Attr {
            time_nanos: t,
            key: key.into(),
            value,
        };
        let text = |s: &str| Value::Str(s.into());
        for r in [
            // Long enough to be kept once, in `attr_values`.
            attr(SOURCE, Value::List(vec![text(&"x".repeat(200))])),
            attr(SOURCE, text("train.py")),
            attr(GIT_COMMIT, Value::Int(5)),
            attr(USER, text("ada")),
            attr(USER, Value::Int(7)),
            attr(HOST, Value::Null),
            attr(GIT_DIRTY, Value::Bool(false)),
            attr(GIT_COMMIT, text("c0ffee")),
            attr(NAME, text(&generated)),
            attr("argv", text("train.py")),
        ] {
            w.append(&r).unwrap();
        }
        w.close().unwrap();
        let mut store = Store::open(project).unwrap();
        store.refresh().unwrap();
        let expected: Vec<(String, Value)> = vec![
            ("argv".into(), text("train.py")),
            (GIT_COMMIT.into(), text("c0ffee")),
            (GIT_DIRTY.into(), Value::Bool(false)),
            (HOST.into(), Value::Null),
            (NAME.into(), text(&generated)),
            (SOURCE.into(), text("train.py")),
            (USER.into(), Value::Int(7)),
        ];
        let full = store.run(&short).unwrap();
        assert_eq!(full.attrs, expected);
        let listed: Vec<(String, Value)> = expected
            .iter()
            .filter(|(k, _)| k != "argv")
            .cloned()
            .collect();
        let listing = store
            .select(&crate::Selection {
                detail: crate::Detail::Listing,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(listing[0].attrs, listed);
        // Only what no column gives back has a row: a number in a text
        // column, a null, the generated name, and an attribute with no column.
        let mut rows = attr_rows(&store);
        rows.sort();
        assert_eq!(rows, ["argv", HOST, NAME, USER]);
        // The long value the source held first went with its row.
        assert_eq!(orphan_values(&store), 0);
        let blob: Vec<u8> = store
            .conn
            .query_row("SELECT summary FROM runs", [], |r| r.get(0))
            .unwrap();
        let mut bare = full.clone();
        assert!(apply(&mut bare, &blob));
        let keys: Vec<&str> = bare.attrs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [HOST, NAME, USER]);
        // The fold's own look-up of one attribute reads the column too.
        let run_id = id.to_string();
        let index = crate::sqlite::SqliteIndex::new(&mut store.conn);
        for (key, value) in &expected {
            use crate::index::FoldIndex;
            assert_eq!(
                index.attr(&run_id, key).unwrap().as_ref(),
                Some(value),
                "{key}"
            );
        }
    }

    /// A name given is kept in its column alone, and read back from there.
    #[test]
    fn a_name_given_is_kept_in_its_column_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let t = lab_types::now_nanos();
        let (_, mut w) = started(&project, t);
        w.append(&Record::Attr {
            time_nanos: t,
            key: "name".into(),
            value: Value::Str("baseline".into()),
        })
        .unwrap();
        w.close().unwrap();
        let mut store = Store::open(project).unwrap();
        store.refresh().unwrap();
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM attrs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
        let run = store.run("baseline").unwrap();
        assert_eq!(
            run.attrs,
            [("name".to_owned(), Value::Str("baseline".into()))]
        );
        let blob: Vec<u8> = store
            .conn
            .query_row("SELECT summary FROM runs", [], |r| r.get(0))
            .unwrap();
        let mut bare = run.clone();
        assert!(apply(&mut bare, &blob));
        assert!(bare.attrs.is_empty());
    }

    #[test]
    fn a_summary_made_while_folding_is_the_one_the_tables_give() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let t0 = lab_types::now_nanos();
        write_run(&project, t0);
        write_run(&project, t0 + 1_000_000_000);
        let mut store = Store::open(project).unwrap();
        store.refresh().unwrap();
        let rows: Vec<(i64, Vec<u8>)> = store
            .conn
            .prepare("SELECT rid, summary FROM runs")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        for (rid, folded) in rows {
            let read = read_parts(&store.conn, rid).unwrap().encode().unwrap();
            assert_eq!(folded, read);
            let mut run = store.runs(None).unwrap().remove(0);
            assert!(apply(&mut run, &folded));
            assert_eq!(run.tags, [("stage".to_owned(), "prod".to_owned())]);
            let metric = |n: &str| run.metrics.iter().find(|m| m.name == n).unwrap();
            let loss = metric("loss");
            // Two numbers named alike merge (which one's last wins is the
            // fold's order, in the tables as here).
            assert_eq!(loss.count, 3);
            assert_eq!((loss.min, loss.max), (Some(0.25), Some(1.0)));
            assert!(metric("nan").last.is_nan());
            let acc = metric("acc");
            // The last value keeps its sign; min and max are REAL columns, where
            // SQLite keeps -0.0 as 0.
            assert_eq!(acc.last.to_bits(), (-0.0f64).to_bits());
            assert_eq!(
                (acc.min.map(f64::to_bits), acc.max.map(f64::to_bits)),
                (Some(0.0f64.to_bits()), Some(0.0f64.to_bits()))
            );
        }
    }

    /// A long attribute kept in `attr_values` and set again to another long
    /// value, in the same fold or in a later one, leaves no value that no
    /// row names.
    #[test]
    fn a_long_attribute_set_again_leaves_no_orphan_value() {
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let t = lab_types::now_nanos();
        let (id, mut w) = started(&project, t);
        let short = id.to_string()[..8].to_owned();
        let long = |c: &str| Value::List(vec![Value::Str(c.repeat(200))]);
        let argv = |value: Value| Record::Attr {
            time_nanos: t,
            key: "argv".into(),
            value,
        };
        w.append(&argv(long("a"))).unwrap();
        w.append(&argv(long("b"))).unwrap();
        let mut store = Store::open(project).unwrap();
        // The run is live: folded now, and again once more is written.
        store.refresh().unwrap();
        assert_eq!(
            store.run(&short).unwrap().attrs,
            [("argv".to_owned(), long("b"))]
        );
        assert_eq!(orphan_values(&store), 0);
        w.append(&argv(long("c"))).unwrap();
        w.append(&argv(long("c"))).unwrap();
        w.close().unwrap();
        store.refresh().unwrap();
        assert_eq!(
            store.run(&short).unwrap().attrs,
            [("argv".to_owned(), long("c"))]
        );
        assert_eq!(orphan_values(&store), 0);
        assert_eq!(count(&store, "SELECT count(*) FROM attr_values"), 1);
    }

    /// A run folded for the first time with edits: an attribute its journal
    /// gave a row, renamed or noted again by an edit, keeps only the edit's
    /// value, and no long value is left that no row names.
    #[test]
    fn an_edit_in_the_first_fold_replaces_what_the_journal_set() {
        use lab_types::fields::attr::{NAME, NOTE};
        let dir = tempfile::tempdir().unwrap();
        let (project, _) = Project::create(dir.path()).unwrap();
        let t = lab_types::now_nanos();
        let (id, mut w) = started(&project, t);
        let short = id.to_string()[..8].to_owned();
        let attr = |key: &str, value: Value| Record::Attr {
            time_nanos: t,
            key: key.into(),
            value,
        };
        // A name its column cannot give back (a number), and a long note.
        w.append(&attr(NAME, Value::Int(5))).unwrap();
        w.append(&attr(NOTE, Value::Str("n".repeat(300)))).unwrap();
        w.close().unwrap();
        let meta = project.run_paths(&short).meta;
        lab_journal::append_edits(
            &meta,
            &[
                Record::Rename {
                    time_nanos: t,
                    name: "renamed".into(),
                },
                Record::Note {
                    time_nanos: t,
                    text: "m".repeat(300),
                },
            ],
        )
        .unwrap();
        let mut store = Store::open(project).unwrap();
        store.refresh().unwrap();
        let run = store.run(&short).unwrap();
        assert_eq!(run.name(), "renamed");
        let attrs: Vec<(String, Value)> = run.attrs.clone();
        assert_eq!(
            attrs,
            [
                (NAME.to_owned(), Value::Str("renamed".into())),
                (NOTE.to_owned(), Value::Str("m".repeat(300))),
            ]
        );
        let rows = attr_rows(&store);
        assert_eq!(rows, [NOTE]);
        assert_eq!(count(&store, "SELECT count(*) FROM attr_values"), 1);
    }

    /// The attributes that have an `attrs` row, by name.
    fn attr_rows(store: &Store) -> Vec<String> {
        store
            .conn
            .prepare("SELECT k.name FROM attrs a JOIN attr_keys k ON k.id = a.key ORDER BY k.name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Long values kept in `attr_values` that no `attrs` row names.
    fn orphan_values(store: &Store) -> i64 {
        count(
            store,
            "SELECT count(*) FROM attr_values WHERE id NOT IN (SELECT shared FROM attrs WHERE shared IS NOT NULL)",
        )
    }
}
