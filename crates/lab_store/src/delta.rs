//! What a stretch of journal says about a run, summed up: the fold reads
//! records into a [`Delta`] and an index writes the delta in one go. A new
//! record kind is added here (in [`Delta::add`], which names every kind) and
//! in the index's writer.

use std::collections::HashMap;

use lab_types::fields::attr;
use lab_types::{ErrorInfo, MediaKind, MetricPoint, Record, RunId, Status, Value};

use crate::metrics::{MetricEvent, metric_events};

/// The Start record.
pub struct Start {
    /// The run's id.
    pub run: RunId,
    /// When it started.
    pub time_nanos: i64,
    /// Its experiment.
    pub experiment: String,
}

/// A parameter as logged.
pub struct ParamSet {
    /// The record's offset: parameters are listed in the order first logged.
    pub offset: u64,
    /// Its name.
    pub key: String,
    /// Its value.
    pub value: Value,
}

/// An artifact as logged (its source is copied when the run ends).
pub struct ArtifactLogged {
    /// The record's offset.
    pub offset: u64,
    /// Its name.
    pub name: String,
    /// Where it was logged from.
    pub source: String,
}

/// An artifact once copied into the run.
pub struct ArtifactStored {
    /// Its name.
    pub name: String,
    /// Where it is, relative to the run's folder.
    pub path: String,
    /// Files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// A model as logged.
pub struct ModelLogged {
    /// The record's offset.
    pub offset: u64,
    /// When it was logged.
    pub time_nanos: i64,
    /// Its name.
    pub name: String,
    /// The file, relative to the run's folder.
    pub path: String,
    /// `joblib`, `pickle`, ...
    pub format: String,
    /// The object's type.
    pub class: String,
    /// Its library and that library's version.
    pub library: String,
    /// The library's version.
    pub library_version: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// A media file as recorded.
pub struct MediaLogged {
    /// The record's offset: keys are listed in the order first logged.
    pub offset: u64,
    /// Its key.
    pub key: String,
    /// Its step.
    pub step: i64,
    /// What it holds.
    pub kind: MediaKind,
    /// The file, relative to the run's folder.
    pub path: String,
    /// An image's width; a table's columns.
    pub width: u32,
    /// An image's height; a table's rows.
    pub height: u32,
    /// The file's size.
    pub bytes: u64,
}

/// The End record.
pub struct End {
    /// When the run ended.
    pub time_nanos: i64,
    /// How.
    pub status: Status,
    /// The exception of a failed run.
    pub error: Option<ErrorInfo>,
}

/// One metric's points in the stretch, summed up.
#[derive(Clone, Copy)]
pub struct MetricDelta {
    /// Where the metric first appears: listings order metrics by it.
    pub first_seq: u64,
    /// The last value.
    pub last: f64,
    /// Its step.
    pub last_step: i64,
    /// Its time.
    pub last_nanos: i64,
    /// Smallest value (NaN ignored).
    pub min: Option<f64>,
    /// Largest value (NaN ignored).
    pub max: Option<f64>,
    /// How many points.
    pub count: i64,
}

/// A metric's name and the number its points use in this journal.
pub struct MetricKey {
    /// The number.
    pub key: u32,
    /// The name.
    pub name: String,
}

/// What a stretch of journal says, summed up.
#[derive(Default)]
pub struct Delta {
    /// The Start record, if the stretch holds it.
    pub start: Option<Start>,
    /// Attributes, in the order recorded (a later one replaces an earlier).
    pub attrs: Vec<(String, Value)>,
    /// The last Features record.
    pub features: Option<Vec<Value>>,
    /// Parameters, in the order logged.
    pub params: Vec<ParamSet>,
    /// Metrics declared in the stretch.
    pub new_keys: Vec<MetricKey>,
    /// Points summed up, by the metric's number.
    pub metrics: HashMap<u32, MetricDelta>,
    /// Tags, in the order set (without those removed after).
    pub tags: Vec<(String, String)>,
    /// Tags removed (and not set again after).
    pub untags: Vec<String>,
    /// Artifacts as logged.
    pub artifacts: Vec<ArtifactLogged>,
    /// Artifacts as copied.
    pub stored: Vec<ArtifactStored>,
    /// Models.
    pub models: Vec<ModelLogged>,
    /// Media files, in the order recorded.
    pub media: Vec<MediaLogged>,
    /// The End record.
    pub end: Option<End>,
    /// A Close record was read: the journal was closed by its writer.
    pub closed: bool,
    /// The earliest time any record carries.
    pub first_nanos: Option<i64>,
    /// The id and start time a run whose Start record is lost is listed with.
    pub lost_start: Option<(String, i64)>,
}

impl Delta {
    /// Whether the stretch touched what a run's meta journal also edits
    /// (tags, the name, the note, the group): the meta journal's edits are
    /// then applied again after it, so that they keep the last word.
    #[must_use]
    pub fn touches_edited(&self) -> bool {
        !self.tags.is_empty()
            || !self.untags.is_empty()
            || self
                .attrs
                .iter()
                .any(|(k, _)| EDITED_ATTRS.contains(&k.as_str()))
    }

    /// Sums up one record, read at offset `at`. `keys` holds the journal's
    /// metric numbering so far, and learns its new declarations.
    pub fn add(&mut self, at: u64, record: Record, keys: &mut HashMap<u32, String>) {
        if let Some(t) = record_time(&record) {
            self.first_nanos = Some(self.first_nanos.map_or(t, |f| f.min(t)));
        }
        match record {
            Record::Start {
                run,
                time_nanos,
                experiment,
            } => {
                self.start = Some(Start {
                    run,
                    time_nanos,
                    experiment,
                });
            }
            Record::Attr { key, value, .. } => self.attrs.push((key, value)),
            Record::Features { names, .. } => self.features = Some(names),
            Record::Param { key, value, .. } => self.params.push(ParamSet {
                offset: at,
                key,
                value,
            }),
            record
            @ (Record::MetricKey { .. } | Record::Metric { .. } | Record::Metrics { .. }) => {
                self.metric_record(at, record, keys);
            }
            Record::Tag { key, value, .. } => {
                self.untags.retain(|k| *k != key);
                self.tags.push((key, value));
            }
            // The edits of a run's meta journal.
            Record::Untag { key, .. } => {
                self.tags.retain(|(k, _)| *k != key);
                self.untags.push(key);
            }
            Record::Rename { name, .. } => self.attrs.push((attr::NAME.into(), Value::Str(name))),
            Record::Note { text, .. } => self.attrs.push((attr::NOTE.into(), Value::Str(text))),
            Record::SetGroup { group, .. } => self
                .attrs
                .push((attr::GROUP.into(), group.map_or(Value::Null, Value::Str))),
            Record::Artifact { name, source, .. } => self.artifacts.push(ArtifactLogged {
                offset: at,
                name,
                source,
            }),
            Record::ArtifactStored {
                name,
                path,
                files,
                bytes,
                ..
            } => self.stored.push(ArtifactStored {
                name,
                path,
                files,
                bytes,
            }),
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
            } => self.models.push(ModelLogged {
                offset: at,
                time_nanos,
                name,
                path,
                format,
                class,
                library,
                library_version,
                size,
                sha256,
            }),
            Record::Media {
                key,
                step,
                kind,
                path,
                width,
                height,
                bytes,
                ..
            } => self.media.push(MediaLogged {
                offset: at,
                key,
                step,
                kind,
                path,
                width,
                height,
                bytes,
            }),
            Record::End {
                time_nanos,
                status,
                error,
            } => {
                self.end = Some(End {
                    time_nanos,
                    status,
                    error,
                });
            }
            Record::Close { .. } => self.closed = true,
            // Console output is read from the journal (`Store::read_console`),
            // never indexed.
            Record::Console { .. } | Record::ConsoleCut { .. } => {}
        }
    }

    /// A metric declaration or points.
    fn metric_record(&mut self, at: u64, record: Record, keys: &mut HashMap<u32, String>) {
        // `seq` orders metrics by first appearance: the record's offset, then
        // the point's place in it (records are far below 2^47 bytes).
        let mut place = 0u64;
        metric_events(record, &mut |event| match event {
            MetricEvent::Declared { key, name } => {
                keys.insert(key, name.clone());
                self.new_keys.push(MetricKey { key, name });
            }
            MetricEvent::Point { time_nanos, point } => {
                self.point((at << 16) | place.min(0xffff), time_nanos, point);
                place += 1;
            }
            MetricEvent::Ended(_) => {}
        });
    }

    fn point(&mut self, seq: u64, time_nanos: i64, p: MetricPoint) {
        let finite = (!p.value.is_nan()).then_some(p.value);
        let s = self.metrics.entry(p.key).or_insert(MetricDelta {
            first_seq: seq,
            last: p.value,
            last_step: p.step,
            last_nanos: time_nanos,
            min: None,
            max: None,
            count: 0,
        });
        s.last = p.value;
        s.last_step = p.step;
        s.last_nanos = time_nanos;
        s.count += 1;
        if let Some(v) = finite {
            s.min = Some(s.min.map_or(v, |m| m.min(v)));
            s.max = Some(s.max.map_or(v, |m| m.max(v)));
        }
    }
}

/// The attributes a run's meta journal edits.
pub const EDITED_ATTRS: [&str; 3] = [attr::NAME, attr::NOTE, attr::GROUP];

/// The time a record carries, if it carries one.
fn record_time(record: &Record) -> Option<i64> {
    match record {
        Record::Start { time_nanos, .. }
        | Record::Attr { time_nanos, .. }
        | Record::Features { time_nanos, .. }
        | Record::Param { time_nanos, .. }
        | Record::Metric { time_nanos, .. }
        | Record::Metrics { time_nanos, .. }
        | Record::Tag { time_nanos, .. }
        | Record::Artifact { time_nanos, .. }
        | Record::ArtifactStored { time_nanos, .. }
        | Record::Model { time_nanos, .. }
        | Record::Media { time_nanos, .. }
        | Record::End { time_nanos, .. }
        | Record::ConsoleCut { time_nanos, .. }
        | Record::Rename { time_nanos, .. }
        | Record::Untag { time_nanos, .. }
        | Record::Note { time_nanos, .. }
        | Record::SetGroup { time_nanos, .. }
        | Record::Close { time_nanos } => Some(*time_nanos),
        Record::Console { lines, .. } => lines.first().map(|l| l.time_nanos),
        Record::MetricKey { .. } => None,
    }
}
