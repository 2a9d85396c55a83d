//! Record payloads: a tag byte, then fixed-width little-endian fields.
//!
//! Strings are `u32` byte length + UTF-8. Values are a tag byte + body
//! (see [`encode_value`]). `docs/journal-format.md` is the normative description;
//! this module and that document change together.

use lab_types::{
    ConsoleLine, ErrorInfo, MediaKind, MetricPoint, Record, RunId, Status, Stream, Value,
};

/// Record tags.
pub mod tag {
    pub const START: u8 = 1;
    pub const ATTR: u8 = 2;
    pub const FEATURES: u8 = 3;
    pub const PARAM: u8 = 4;
    pub const METRIC_KEY: u8 = 5;
    pub const METRIC: u8 = 6;
    pub const METRICS: u8 = 7;
    pub const TAG: u8 = 8;
    pub const ARTIFACT: u8 = 9;
    pub const ARTIFACT_STORED: u8 = 10;
    pub const MODEL: u8 = 11;
    pub const END: u8 = 12;
    pub const CLOSE: u8 = 13;
    pub const CONSOLE: u8 = 14;
    pub const CONSOLE_CUT: u8 = 15;
    pub const RENAME: u8 = 16;
    pub const UNTAG: u8 = 17;
    pub const NOTE: u8 = 18;
    pub const SET_GROUP: u8 = 19;
    pub const MEDIA: u8 = 20;
}

/// Whether `tag` is one of the record tags above.
#[must_use]
pub fn is_known_tag(t: u8) -> bool {
    (tag::START..=tag::MEDIA).contains(&t)
}

/// Value tags.
mod vtag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const INT: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const STR: u8 = 5;
    pub const LIST: u8 = 6;
    pub const DICT: u8 = 7;
    pub const REPR: u8 = 8;
}

/// Values nest at most this deep; deeper input is refused when logged.
pub const MAX_DEPTH: usize = 64;

/// The most items of a list, dict, Features or Metrics record room is made
/// for before they are read: a count is only checked against the bytes left,
/// and a decoded item takes many times the bytes of an encoded one, so
/// damaged bytes read as a count (and the reader tries many when it looks
/// past damage) must not ask for gigabytes up front.
const PREALLOCATED_ITEMS: usize = 4096;

/// Appends the payload of `record` to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Start {
            run,
            time_nanos,
            experiment,
        } => {
            out.push(tag::START);
            out.extend_from_slice(&run.to_bytes());
            put_i64(out, *time_nanos);
            put_str(out, experiment);
        }
        Record::Attr {
            time_nanos,
            key,
            value,
        } => {
            out.push(tag::ATTR);
            put_i64(out, *time_nanos);
            put_str(out, key);
            encode_value(value, out);
        }
        Record::Features { time_nanos, names } => {
            out.push(tag::FEATURES);
            put_i64(out, *time_nanos);
            put_u32(out, names.len() as u32);
            for n in names {
                encode_value(n, out);
            }
        }
        Record::Param {
            time_nanos,
            key,
            value,
        } => {
            out.push(tag::PARAM);
            put_i64(out, *time_nanos);
            put_str(out, key);
            encode_value(value, out);
        }
        Record::MetricKey { key, name } => {
            out.push(tag::METRIC_KEY);
            put_u32(out, *key);
            put_str(out, name);
        }
        Record::Metric { time_nanos, point } => {
            out.push(tag::METRIC);
            put_i64(out, *time_nanos);
            put_point(out, point);
        }
        Record::Metrics { time_nanos, points } => {
            out.push(tag::METRICS);
            put_i64(out, *time_nanos);
            put_u32(out, points.len() as u32);
            for p in points {
                put_point(out, p);
            }
        }
        Record::Tag {
            time_nanos,
            key,
            value,
        } => {
            out.push(tag::TAG);
            put_i64(out, *time_nanos);
            put_str(out, key);
            put_str(out, value);
        }
        Record::Artifact {
            time_nanos,
            name,
            source,
        } => {
            out.push(tag::ARTIFACT);
            put_i64(out, *time_nanos);
            put_str(out, name);
            put_str(out, source);
        }
        Record::ArtifactStored { .. } | Record::Model { .. } | Record::Media { .. } => {
            encode_file(record, out);
        }
        Record::End {
            time_nanos,
            status,
            error,
        } => encode_end(*time_nanos, *status, error.as_ref(), out),
        Record::Close { time_nanos } => {
            out.push(tag::CLOSE);
            put_i64(out, *time_nanos);
        }
        Record::Console { stream, lines } => {
            out.push(tag::CONSOLE);
            out.push(stream.code());
            put_u32(out, lines.len() as u32);
            for line in lines {
                put_i64(out, line.time_nanos);
                put_str(out, &line.text);
            }
        }
        Record::ConsoleCut {
            time_nanos,
            lines,
            bytes,
        } => {
            out.push(tag::CONSOLE_CUT);
            put_i64(out, *time_nanos);
            put_u64(out, *lines);
            put_u64(out, *bytes);
        }
        Record::Rename { .. }
        | Record::Untag { .. }
        | Record::Note { .. }
        | Record::SetGroup { .. } => encode_edit(record, out),
    }
}

/// The edits of a run's meta journal: `Rename`, `Untag`, `Note`, `SetGroup`
/// (nothing for the others).
fn encode_edit(record: &Record, out: &mut Vec<u8>) {
    let (tag, time_nanos, text) = match record {
        Record::Rename { time_nanos, name } => (tag::RENAME, time_nanos, Some(name)),
        Record::Untag { time_nanos, key } => (tag::UNTAG, time_nanos, Some(key)),
        Record::Note { time_nanos, text } => (tag::NOTE, time_nanos, Some(text)),
        Record::SetGroup { time_nanos, .. } => (tag::SET_GROUP, time_nanos, None),
        _ => return,
    };
    out.push(tag);
    put_i64(out, *time_nanos);
    match (record, text) {
        (Record::SetGroup { group, .. }, _) => match group {
            None => out.push(0),
            Some(g) => {
                out.push(1);
                put_str(out, g);
            }
        },
        (_, Some(text)) => put_str(out, text),
        (_, None) => {}
    }
}

/// The records about files copied or saved into the run: `ArtifactStored`,
/// `Model` and `Media` (nothing for the others).
fn encode_file(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::ArtifactStored {
            time_nanos,
            name,
            path,
            files,
            bytes,
        } => {
            out.push(tag::ARTIFACT_STORED);
            put_i64(out, *time_nanos);
            put_str(out, name);
            put_str(out, path);
            put_u64(out, *files);
            put_u64(out, *bytes);
        }
        Record::Model {
            time_nanos,
            name,
            path,
            format,
            class,
            library,
            library_version,
            size,
            sha256,
        } => {
            out.push(tag::MODEL);
            put_i64(out, *time_nanos);
            for s in [name, path, format, class, library, library_version] {
                put_str(out, s);
            }
            put_u64(out, *size);
            put_str(out, sha256);
        }
        Record::Media {
            time_nanos,
            key,
            step,
            kind,
            path,
            width,
            height,
            bytes,
        } => {
            out.push(tag::MEDIA);
            put_i64(out, *time_nanos);
            put_str(out, key);
            put_i64(out, *step);
            out.push(kind.code());
            put_str(out, path);
            put_u32(out, *width);
            put_u32(out, *height);
            put_u64(out, *bytes);
        }
        _ => {}
    }
}

/// The End record: its time, its status, and the exception of a failed run.
fn encode_end(time_nanos: i64, status: Status, error: Option<&ErrorInfo>, out: &mut Vec<u8>) {
    out.push(tag::END);
    put_i64(out, time_nanos);
    out.push(status.code());
    match error {
        None => out.push(0),
        Some(e) => {
            out.push(1);
            put_str(out, &e.kind);
            put_str(out, &e.message);
            put_str(out, &e.traceback);
        }
    }
}

/// The payload of a single metric point, written without building a [`Record`].
/// It is byte for byte what [`encode`] writes for [`Record::Metric`].
pub const METRIC_PAYLOAD_LEN: usize = 1 + 8 + 4 + 8 + 8;

/// Writes a [`Record::Metric`] payload into `out`, which must be
/// [`METRIC_PAYLOAD_LEN`] bytes long.
pub fn encode_metric_into(out: &mut [u8], time_nanos: i64, point: &MetricPoint) {
    out[0] = tag::METRIC;
    out[1..9].copy_from_slice(&time_nanos.to_le_bytes());
    out[9..13].copy_from_slice(&point.key.to_le_bytes());
    out[13..21].copy_from_slice(&point.step.to_le_bytes());
    out[21..29].copy_from_slice(&point.value.to_le_bytes());
}

/// Appends the encoding of a value.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(vtag::NULL),
        Value::Bool(false) => out.push(vtag::FALSE),
        Value::Bool(true) => out.push(vtag::TRUE),
        Value::Int(i) => {
            out.push(vtag::INT);
            put_i64(out, *i);
        }
        Value::Float(f) => {
            out.push(vtag::FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(vtag::STR);
            put_str(out, s);
        }
        Value::List(items) => {
            out.push(vtag::LIST);
            put_u32(out, items.len() as u32);
            for v in items {
                encode_value(v, out);
            }
        }
        Value::Dict(items) => {
            out.push(vtag::DICT);
            put_u32(out, items.len() as u32);
            for (k, v) in items {
                put_str(out, k);
                encode_value(v, out);
            }
        }
        Value::Repr(s) => {
            out.push(vtag::REPR);
            put_str(out, s);
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}
fn put_point(out: &mut Vec<u8>, p: &MetricPoint) {
    put_u32(out, p.key);
    put_i64(out, p.step);
    out.extend_from_slice(&p.value.to_le_bytes());
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload ended inside a field.
    #[error("payload ends early, at byte {0}")]
    Truncated(usize),
    /// A record tag this version does not know.
    #[error("unknown record tag {0}")]
    UnknownTag(u8),
    /// A value tag this version does not know.
    #[error("unknown value tag {0} at byte {1}")]
    UnknownValueTag(u8, usize),
    /// A string that is not UTF-8.
    #[error("invalid UTF-8 at byte {0}")]
    Utf8(usize),
    /// A status code this version does not know.
    #[error("unknown status code {0}")]
    UnknownStatus(u8),
    /// A console stream code other than 1 (stdout) or 2 (stderr).
    #[error("unknown console stream {0}")]
    UnknownStream(u8),
    /// A media kind code other than 1 (image) or 2 (table).
    #[error("unknown media kind {0}")]
    UnknownMediaKind(u8),
    /// A flag byte other than 0 or 1.
    #[error("flag byte {0} is neither 0 nor 1")]
    BadFlag(u8),
    /// Values nested deeper than [`MAX_DEPTH`].
    #[error("values nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Bytes left over after the record.
    #[error("{0} bytes left over after the record")]
    Trailing(usize),
}

/// Decodes one payload.
pub fn decode(payload: &[u8]) -> Result<Record, DecodeError> {
    let (record, used) = decode_prefix(payload)?;
    if used != payload.len() {
        return Err(DecodeError::Trailing(payload.len() - used));
    }
    Ok(record)
}

/// Decodes the record at the start of `bytes`; returns it and the bytes it
/// took. Every record says how long it is, so this is the only length at
/// which [`decode`] could succeed on a prefix of `bytes`.
#[inline]
pub fn decode_prefix(bytes: &[u8]) -> Result<(Record, usize), DecodeError> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    let record = match c.u8()? {
        tag::START => Record::Start {
            run: RunId::from_bytes(c.array::<16>()?),
            time_nanos: c.i64()?,
            experiment: c.string()?,
        },
        tag::ATTR => Record::Attr {
            time_nanos: c.i64()?,
            key: c.string()?,
            value: c.value(0)?,
        },
        tag::FEATURES => Record::Features {
            time_nanos: c.i64()?,
            names: c.items(1, |c| c.value(0))?,
        },
        tag::PARAM => Record::Param {
            time_nanos: c.i64()?,
            key: c.string()?,
            value: c.value(0)?,
        },
        tag::METRIC_KEY => Record::MetricKey {
            key: c.u32()?,
            name: c.string()?,
        },
        tag::METRIC => Record::Metric {
            time_nanos: c.i64()?,
            point: c.point()?,
        },
        tag::METRICS => Record::Metrics {
            time_nanos: c.i64()?,
            points: c.items(20, Cursor::point)?,
        },
        tag::TAG => Record::Tag {
            time_nanos: c.i64()?,
            key: c.string()?,
            value: c.string()?,
        },
        tag::ARTIFACT => Record::Artifact {
            time_nanos: c.i64()?,
            name: c.string()?,
            source: c.string()?,
        },
        tag::ARTIFACT_STORED => Record::ArtifactStored {
            time_nanos: c.i64()?,
            name: c.string()?,
            path: c.string()?,
            files: c.u64()?,
            bytes: c.u64()?,
        },
        tag::MODEL => Record::Model {
            time_nanos: c.i64()?,
            name: c.string()?,
            path: c.string()?,
            format: c.string()?,
            class: c.string()?,
            library: c.string()?,
            library_version: c.string()?,
            size: c.u64()?,
            sha256: c.string()?,
        },
        tag::END => c.end()?,
        tag::MEDIA => c.media()?,
        tag::CLOSE => Record::Close {
            time_nanos: c.i64()?,
        },
        tag::CONSOLE => {
            let code = c.u8()?;
            Record::Console {
                stream: Stream::from_code(code).ok_or(DecodeError::UnknownStream(code))?,
                lines: c.items(12, |c| {
                    Ok(ConsoleLine {
                        time_nanos: c.i64()?,
                        text: c.string()?,
                    })
                })?,
            }
        }
        tag::CONSOLE_CUT => Record::ConsoleCut {
            time_nanos: c.i64()?,
            lines: c.u64()?,
            bytes: c.u64()?,
        },
        tag::RENAME => Record::Rename {
            time_nanos: c.i64()?,
            name: c.string()?,
        },
        tag::UNTAG => Record::Untag {
            time_nanos: c.i64()?,
            key: c.string()?,
        },
        tag::NOTE => Record::Note {
            time_nanos: c.i64()?,
            text: c.string()?,
        },
        tag::SET_GROUP => {
            let time_nanos = c.i64()?;
            let group = match c.u8()? {
                0 => None,
                1 => Some(c.string()?),
                other => return Err(DecodeError::BadFlag(other)),
            };
            Record::SetGroup { time_nanos, group }
        }
        other => return Err(DecodeError::UnknownTag(other)),
    };
    Ok((record, c.pos))
}

/// Decodes the value at the start of `bytes`; returns it and the bytes it took.
pub fn decode_value_prefix(bytes: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    let v = c.value(0)?;
    Ok((v, c.pos))
}

/// Decodes a value written by [`encode_value`] (as the index stores them).
pub fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    let v = c.value(0)?;
    if c.pos != bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - c.pos));
    }
    Ok(v)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array::<8>().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array::<8>().map(i64::from_le_bytes)
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        self.array::<8>().map(f64::from_le_bytes)
    }
    /// A count of items of at least `min_size` bytes each, checked against
    /// what is left so that a corrupt count cannot ask for a huge allocation.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() - self.pos {
            return Err(DecodeError::Truncated(at));
        }
        Ok(n)
    }
    /// A count, then that many items read by `item`, each of at least
    /// `min_size` bytes.
    fn items<T>(
        &mut self,
        min_size: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.count(min_size)?;
        let mut out = Vec::with_capacity(n.min(PREALLOCATED_ITEMS));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
    /// The End record after its tag: time, status, and the exception of a
    /// failed run.
    fn end(&mut self) -> Result<Record, DecodeError> {
        let time_nanos = self.i64()?;
        let code = self.u8()?;
        let status = Status::from_code(code).ok_or(DecodeError::UnknownStatus(code))?;
        let error = match self.u8()? {
            0 => None,
            1 => Some(ErrorInfo {
                kind: self.string()?,
                message: self.string()?,
                traceback: self.string()?,
            }),
            other => return Err(DecodeError::BadFlag(other)),
        };
        Ok(Record::End {
            time_nanos,
            status,
            error,
        })
    }
    /// The Media record after its tag.
    fn media(&mut self) -> Result<Record, DecodeError> {
        let time_nanos = self.i64()?;
        let key = self.string()?;
        let step = self.i64()?;
        let code = self.u8()?;
        Ok(Record::Media {
            time_nanos,
            key,
            step,
            kind: MediaKind::from_code(code).ok_or(DecodeError::UnknownMediaKind(code))?,
            path: self.string()?,
            width: self.u32()?,
            height: self.u32()?,
            bytes: self.u64()?,
        })
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let at = self.pos;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8(at))
    }
    fn point(&mut self) -> Result<MetricPoint, DecodeError> {
        Ok(MetricPoint {
            key: self.u32()?,
            step: self.i64()?,
            value: self.f64()?,
        })
    }
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let at = self.pos;
        Ok(match self.u8()? {
            vtag::NULL => Value::Null,
            vtag::FALSE => Value::Bool(false),
            vtag::TRUE => Value::Bool(true),
            vtag::INT => Value::Int(self.i64()?),
            vtag::FLOAT => Value::Float(self.f64()?),
            vtag::STR => Value::Str(self.string()?),
            vtag::REPR => Value::Repr(self.string()?),
            vtag::LIST => {
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n.min(PREALLOCATED_ITEMS));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            vtag::DICT => {
                let n = self.count(5)?;
                let mut items = Vec::with_capacity(n.min(PREALLOCATED_ITEMS));
                for _ in 0..n {
                    let k = self.string()?;
                    items.push((k, self.value(depth + 1)?));
                }
                Value::Dict(items)
            }
            other => return Err(DecodeError::UnknownValueTag(other, at)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: &Record) {
        let mut buf = Vec::new();
        encode(r, &mut buf);
        let back = decode(&buf).unwrap();
        // NaN != NaN, so compare encodings.
        let mut again = Vec::new();
        encode(&back, &mut again);
        assert_eq!(buf, again, "{r:?}");
    }

    #[test]
    fn every_record_round_trips() {
        let v = Value::Dict(vec![
            (
                "a".into(),
                Value::List(vec![Value::Int(i64::MIN), Value::Float(f64::NAN)]),
            ),
            ("ü".into(), Value::Repr("<object>".into())),
            ("n".into(), Value::Null),
            ("b".into(), Value::Bool(true)),
        ]);
        let records = [
            Record::Start {
                run: RunId::new(1, 0),
                time_nanos: 5,
                experiment: "exp".into(),
            },
            Record::Attr {
                time_nanos: 1,
                key: "k".into(),
                value: v.clone(),
            },
            Record::Features {
                time_nanos: 1,
                names: vec![Value::Str("x".into()), Value::Int(3)],
            },
            Record::Param {
                time_nanos: 1,
                key: "p".into(),
                value: v,
            },
            Record::MetricKey {
                key: 7,
                name: "loss".into(),
            },
            Record::Metric {
                time_nanos: 1,
                point: MetricPoint {
                    key: 7,
                    step: 3,
                    value: f64::INFINITY,
                },
            },
            Record::Metrics {
                time_nanos: 1,
                points: vec![
                    MetricPoint {
                        key: 1,
                        step: 0,
                        value: 1e-308
                    };
                    3
                ],
            },
            Record::Tag {
                time_nanos: 1,
                key: "t".into(),
                value: "v".into(),
            },
            Record::Artifact {
                time_nanos: 1,
                name: "a".into(),
                source: "/tmp/x".into(),
            },
            Record::ArtifactStored {
                time_nanos: 1,
                name: "a".into(),
                path: "artifacts/a".into(),
                files: 2,
                bytes: 9,
            },
            Record::Model {
                time_nanos: 1,
                name: "m".into(),
                path: "models/m.joblib".into(),
                format: "joblib".into(),
                class: "sklearn.Foo".into(),
                library: "sklearn".into(),
                library_version: "1.0".into(),
                size: 10,
                sha256: "ab".into(),
            },
            Record::End {
                time_nanos: 2,
                status: Status::Failed,
                error: Some(ErrorInfo {
                    kind: "NameError".into(),
                    message: "m".into(),
                    traceback: "tb".into(),
                }),
            },
            Record::End {
                time_nanos: 2,
                status: Status::Finished,
                error: None,
            },
            Record::Console {
                stream: Stream::Stderr,
                lines: vec![
                    ConsoleLine {
                        time_nanos: 4,
                        text: "epoch 1 \u{1b}[32mok\u{1b}[0m".into(),
                    },
                    ConsoleLine {
                        time_nanos: 5,
                        text: String::new(),
                    },
                ],
            },
            Record::ConsoleCut {
                time_nanos: 6,
                lines: 7,
                bytes: 8,
            },
            Record::Media {
                time_nanos: 7,
                key: "samples".into(),
                step: 3,
                kind: MediaKind::Image,
                path: "media/samples/3.png".into(),
                width: 64,
                height: 32,
                bytes: 1234,
            },
            Record::Media {
                time_nanos: 8,
                key: "preds".into(),
                step: 0,
                kind: MediaKind::Table,
                path: "media/preds/0.json".into(),
                width: 3,
                height: 10,
                bytes: 99,
            },
            Record::Close { time_nanos: 3 },
            Record::Rename {
                time_nanos: 9,
                name: "brisk-otter-42".into(),
            },
            Record::Untag {
                time_nanos: 9,
                key: "t".into(),
            },
            Record::Note {
                time_nanos: 9,
                text: "# why\n\nü".into(),
            },
            Record::SetGroup {
                time_nanos: 9,
                group: Some("lr-sweep".into()),
            },
            Record::SetGroup {
                time_nanos: 9,
                group: None,
            },
        ];
        for r in &records {
            round_trip(r);
        }
    }

    #[test]
    fn fast_metric_encoding_matches_the_general_one() {
        let point = MetricPoint {
            key: 3,
            step: 9,
            value: 0.25,
        };
        let mut general = Vec::new();
        encode(
            &Record::Metric {
                time_nanos: 42,
                point,
            },
            &mut general,
        );
        let mut fast = [0u8; METRIC_PAYLOAD_LEN];
        encode_metric_into(&mut fast, 42, &point);
        assert_eq!(general, fast);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[99]).is_err());
        assert!(decode(&[tag::FEATURES, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).is_err());
        let mut deep = vec![tag::PARAM];
        deep.extend_from_slice(&0i64.to_le_bytes());
        deep.extend_from_slice(&0u32.to_le_bytes());
        for _ in 0..100 {
            deep.extend_from_slice(&[vtag::LIST, 1, 0, 0, 0]);
        }
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        assert_eq!(
            decode(&[tag::CONSOLE, 3, 0, 0, 0, 0]),
            Err(DecodeError::UnknownStream(3))
        );
        assert!(decode(&[tag::CONSOLE, 1, 255, 255, 255, 255]).is_err());
        let mut media = vec![tag::MEDIA];
        media.extend_from_slice(&0i64.to_le_bytes());
        media.extend_from_slice(&0u32.to_le_bytes());
        media.extend_from_slice(&0i64.to_le_bytes());
        media.push(9);
        assert_eq!(decode(&media), Err(DecodeError::UnknownMediaKind(9)));
        assert!(is_known_tag(tag::MEDIA));
    }
}
