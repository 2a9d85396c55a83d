//! Random runs written as journals, as `lab_store`'s model test writes them
//! (random parameters, tags, points and batches of points, an end or none,
//! a close or none, a cut or a flipped bit), with more of everything: every
//! kind of value, NaN and infinities, attributes the field table copies into
//! columns, features, artifacts, models, errors, text that globs and
//! substrings and case test, and runs that share a start time.

use std::collections::HashMap;

use lab_journal::JournalWriter;
use lab_store::Project;
use lab_types::{ErrorInfo, MetricPoint, Record, Status, Value};

/// A small deterministic generator (xorshift), so a failure names its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Texts for values: globs, cases, quotes, accents, emptiness, a NUL-free
/// assortment of what users write.
pub const TEXTS: &[&str] = &[
    "adam",
    "Adam",
    "ADAM",
    "sgd",
    "",
    "iris",
    "iris-v2",
    "Iris*",
    "a*b",
    "a?c",
    "[x]",
    "50%",
    "o'brien",
    "é",
    "Ébène",
    "naïve",
    "z",
    "ab",
    "abc",
    "0.5",
    "10",
    "9",
    "-1",
    "true",
    "None",
    "vision",
    "tabular",
    "with space",
    "tab\there",
    "line\nbreak",
    "日本",
    "🙂",
];

pub const EXPERIMENTS: &[&str] = &["iris", "Iris", "mnist", "é", "a*b", "x'y", "iris-v2"];

fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 1 { 8 } else { 10 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => Value::Int(*rng.pick(&[0, 1, -1, 2, 5, 10, 50, 100, i64::MAX, i64::MIN, 1 << 53])),
        3 => Value::Float(*rng.pick(&[
            0.0,
            -0.0,
            0.5,
            0.1,
            1.5,
            -2.25,
            1e300,
            -1e-300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.300_000_000_000_000_04,
            10.0,
        ])),
        4..=6 => Value::Str((*rng.pick(TEXTS)).to_owned()),
        7 => Value::Repr(format!("<object {}>", rng.below(3))),
        8 => Value::List((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => Value::Dict(
            (0..rng.below(3))
                .map(|i| (format!("k{i}"), value(rng, depth + 1)))
                .collect(),
        ),
    }
}

fn metric_value(rng: &mut Rng) -> f64 {
    match rng.below(12) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => -0.0,
        4 => 1.0,
        _ => (rng.below(2001) as f64 - 1000.0) / 100.0,
    }
}

/// How a run's journal ends.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// The writer is kept open: the run is live.
    Live,
    /// The writer closed the journal.
    Closed,
    /// The process died: the lock goes, the reserved space stays.
    Died,
}

/// A run being written.
pub struct Writing {
    pub short: String,
    pub writer: JournalWriter,
    declared: HashMap<String, u32>,
    time: i64,
}

impl Writing {
    fn push(&mut self, record: &Record) {
        self.writer.append(record).unwrap();
    }

    fn key(&mut self, name: &str) -> u32 {
        if let Some(k) = self.declared.get(name) {
            return *k;
        }
        let key = self.declared.len() as u32;
        self.declared.insert(name.to_owned(), key);
        self.push(&Record::MetricKey {
            key,
            name: name.to_owned(),
        });
        key
    }

    /// Appends `n` random records.
    pub fn records(&mut self, rng: &mut Rng, n: u64) {
        for _ in 0..n {
            self.time += 1 + rng.below(1_000_000_000) as i64;
            let t = self.time;
            let record = match rng.below(13) {
                0..=2 => Record::Param {
                    time_nanos: t,
                    key: format!("p{}", rng.below(5)),
                    value: value(rng, 0),
                },
                3 => Record::Tag {
                    time_nanos: t,
                    key: (*rng.pick(&["team", "stage", "note"])).to_owned(),
                    value: (*rng.pick(TEXTS)).to_owned(),
                },
                4..=6 => {
                    let name = format!("m{}", rng.below(4));
                    let key = self.key(&name);
                    Record::Metric {
                        time_nanos: t,
                        point: MetricPoint {
                            key,
                            step: rng.below(100) as i64,
                            value: metric_value(rng),
                        },
                    }
                }
                7 => {
                    let points = (0..=rng.below(4))
                        .map(|_| {
                            let name = format!("m{}", rng.below(4));
                            MetricPoint {
                                key: self.key(&name),
                                step: rng.below(100) as i64,
                                value: metric_value(rng),
                            }
                        })
                        .collect();
                    Record::Metrics {
                        time_nanos: t,
                        points,
                    }
                }
                8 | 9 => {
                    let (key, value) = match rng.below(9) {
                        0 => ("source", Value::Str(format!("train{}.py", rng.below(3)))),
                        1 => (
                            "user",
                            Value::Str((*rng.pick(&["ana", "Bob", "é"])).to_owned()),
                        ),
                        2 => (
                            "host",
                            Value::Str((*rng.pick(&["node-1", "node-2"])).to_owned()),
                        ),
                        3 => ("git_dirty", Value::Bool(rng.chance(50))),
                        4 => ("git_commit", Value::Str(format!("{:040x}", rng.below(5)))),
                        5 => ("dataset", value(rng, 0)),
                        6 => ("packages", Value::List(vec![Value::Str("numpy==2".into())])),
                        7 => ("python_version", Value::Str("3.11.7".into())),
                        _ => ("custom", value(rng, 0)),
                    };
                    Record::Attr {
                        time_nanos: t,
                        key: key.to_owned(),
                        value,
                    }
                }
                10 => Record::Features {
                    time_nanos: t,
                    names: (0..rng.below(4))
                        .map(|i| Value::Str(format!("f{i}")))
                        .collect(),
                },
                11 => {
                    let name = format!("a{}", rng.below(2));
                    if rng.chance(50) {
                        Record::Artifact {
                            time_nanos: t,
                            name,
                            source: "out/cm.csv".into(),
                        }
                    } else {
                        Record::ArtifactStored {
                            time_nanos: t,
                            name,
                            path: "artifacts/cm.csv".into(),
                            files: rng.below(5),
                            bytes: rng.below(1 << 40),
                        }
                    }
                }
                _ => Record::Model {
                    time_nanos: t,
                    name: format!("clf{}", rng.below(2)),
                    path: "models/clf.joblib".into(),
                    format: "joblib".into(),
                    class: "sklearn.tree.DecisionTreeClassifier".into(),
                    library: "sklearn".into(),
                    library_version: "1.9.1".into(),
                    size: rng.below(1 << 30),
                    sha256: format!("{:064x}", rng.next()),
                },
            };
            self.push(&record);
        }
    }

    /// Keeps a live run as it is (`Ending::Live`), or ends it as [`finish`].
    pub fn finish_or_keep(self, rng: &mut Rng, ending: Ending) -> Option<Writing> {
        match ending {
            Ending::Live => Some(self),
            other => self.finish(rng, other),
        }
    }

    /// Ends the run (or not) and closes or drops the writer as `ending` says.
    pub fn finish(mut self, rng: &mut Rng, ending: Ending) -> Option<Writing> {
        if rng.chance(70) {
            let status = *rng.pick(&[Status::Finished, Status::Failed, Status::Interrupted]);
            let error = (status == Status::Failed).then(|| ErrorInfo {
                kind: "ValueError".into(),
                message: (*rng.pick(TEXTS)).to_owned(),
                traceback: "Traceback (most recent call last):\n  ...".into(),
            });
            self.time += 1 + rng.below(100_000_000_000) as i64;
            let end = Record::End {
                time_nanos: self.time,
                status,
                error,
            };
            self.push(&end);
        }
        match ending {
            Ending::Live => return Some(self),
            Ending::Closed => self.writer.close().unwrap(),
            Ending::Died => drop(self.writer),
        }
        None
    }
}

/// Starts run number `n` of `project` with a Start record.
pub fn start(project: &Project, rng: &mut Rng, n: i64) -> Writing {
    // Each run in a time slot of its own (a quarter of a second); some start
    // at the same time as another, for the order's tie-breaker.
    let (id, paths) = project.claim_run(1_000_000_000 + n * 250_000_000).unwrap();
    let mut writer = JournalWriter::create(&paths.journal).unwrap();
    let time = if rng.chance(20) {
        1_000
    } else {
        1_000 + n * 1_000
    };
    writer
        .append(&Record::Start {
            run: id,
            time_nanos: time,
            experiment: (*rng.pick(EXPERIMENTS)).to_owned(),
        })
        .unwrap();
    Writing {
        short: id.short(),
        writer,
        declared: HashMap::new(),
        time,
    }
}

/// Damages a settled journal: cuts it at a random byte, or flips a bit.
pub fn damage(project: &Project, short: &str, rng: &mut Rng) {
    let journal = project.run_paths(short).journal;
    let mut bytes = std::fs::read(&journal).unwrap();
    // Past the 16-byte header; the reserved space of a dead writer's
    // journal is zeros at the end, where damage would hit nothing.
    let written = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(16, |p| p + 1)
        .max(17);
    let at = 16 + rng.below(written as u64 - 16) as usize;
    if rng.chance(50) {
        bytes.truncate(at);
    } else {
        bytes[at] ^= 1 << rng.below(8);
    }
    std::fs::write(&journal, &bytes).unwrap();
}

/// Writes `count` settled runs into `project`: ended or not, closed or
/// died, some damaged.
pub fn settled_runs(project: &Project, rng: &mut Rng, count: i64) {
    runs(project, rng, count, true);
}

/// [`settled_runs`], damaged or not.
pub fn runs(project: &Project, rng: &mut Rng, count: i64, damaged: bool) {
    for n in 0..count {
        let mut w = start(project, rng, n);
        let records = rng.below(30);
        w.records(rng, records);
        let short = w.short.clone();
        let ending = if rng.chance(50) {
            Ending::Closed
        } else {
            Ending::Died
        };
        let _ = w.finish(rng, ending);
        if damaged && rng.chance(15) {
            damage(project, &short, rng);
        }
    }
}
