//! Reading runs back from the index, and metric series from the journals.

use std::collections::HashMap;

use lab_journal::codec;
use lab_types::{ErrorInfo, RunId, Status, Value};
use rusqlite::{Connection, params};

use crate::{Error, MetricEvent, Store};

/// A run, as the index knows it.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The full id.
    pub id: RunId,
    /// Its first 8 hex digits.
    pub short_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// Where it stands.
    pub status: Status,
    /// Start, nanoseconds since the epoch.
    pub start_nanos: i64,
    /// End, if it ended.
    pub end_nanos: Option<i64>,
    /// Every attribute recorded (`source`, `argv`, `user`, `host`, `packages`, ...).
    pub attrs: Vec<(String, Value)>,
    /// Feature names or indices.
    pub features: Vec<Value>,
    /// Parameters in the order they were first logged (latest value of each).
    pub params: Vec<(String, Value)>,
    /// Metric summaries in the order they were first logged.
    pub metrics: Vec<MetricSummary>,
    /// Tags, by name.
    pub tags: Vec<(String, String)>,
    /// Artifacts in logging order.
    pub artifacts: Vec<ArtifactInfo>,
    /// Models in logging order.
    pub models: Vec<ModelInfo>,
    /// The exception of a failed run.
    pub error: Option<ErrorInfo>,
    /// Damage found in the journal, if any.
    pub damage: Option<String>,
}

impl RunInfo {
    /// An attribute by name.
    #[must_use]
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// An attribute as text, if it is a string.
    #[must_use]
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A metric summary by name.
    #[must_use]
    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// A metric's summary.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSummary {
    /// Its name.
    pub name: String,
    /// The last value logged.
    pub last: f64,
    /// The step of the last value.
    pub last_step: i64,
    /// Smallest value (NaN ignored).
    pub min: Option<f64>,
    /// Largest value (NaN ignored).
    pub max: Option<f64>,
    /// How many points.
    pub count: i64,
}

/// An artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// Its name.
    pub name: String,
    /// Where it was logged from.
    pub source: String,
    /// Where it is in the run's folder, once copied (relative to the run folder).
    pub path: Option<String>,
    /// Files copied.
    pub files: Option<u64>,
    /// Bytes copied.
    pub bytes: Option<u64>,
}

/// A model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Its name.
    pub name: String,
    /// The file, relative to the run folder.
    pub path: String,
    /// `joblib` or `pickle`.
    pub format: String,
    /// The object's type, `module.Class`.
    pub class: String,
    /// The library of that type.
    pub library: String,
    /// That library's version.
    pub library_version: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// When it was logged.
    pub logged_nanos: i64,
}

/// How much to load about each run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// Everything.
    #[default]
    Full,
    /// What a listing shows: attributes (but the package list), parameters,
    /// metric summaries and tags; no artifacts or models.
    Listing,
}

pub(crate) const RUN_COLUMNS: &str = "id, short_id, experiment, status, start_nanos, end_nanos, error_type, error_message, traceback, features, damage";

impl Store {
    /// Every run (of `experiment`, if given), newest first, with everything
    /// indexed about it. Call [`Store::refresh`] first for up-to-date results.
    pub fn runs(&self, experiment: Option<&str>) -> Result<Vec<RunInfo>, Error> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR experiment = ?1) ORDER BY start_nanos DESC, id DESC"
        );
        self.read(|db| {
            let mut runs: Vec<RunInfo> = db
                .prepare(&sql)?
                .query_map([experiment], run_row)?
                .collect::<Result<_, _>>()?;
            fill_details(db, &mut runs, Detail::Full)?;
            Ok(runs)
        })
    }

    /// The run whose id starts with `prefix` (case-insensitive).
    pub fn run(&self, prefix: &str) -> Result<RunInfo, Error> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        self.read(|db| {
            let id = resolve(db, prefix)?;
            let mut runs = vec![db.query_row(&sql, [&id], run_row)?];
            fill_details(db, &mut runs, Detail::Full)?;
            Ok(runs.remove(0))
        })
    }

    /// The full id of the run whose id starts with `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<String, Error> {
        self.read(|db| resolve(db, prefix))
    }

    /// Every point of metric `name` of a run, in logging order, as
    /// `(step, time_nanos, value)`, read from the journal.
    pub fn metric_history(&self, run: &RunInfo, name: &str) -> Result<Vec<(i64, i64, f64)>, Error> {
        let mut out = Vec::new();
        self.visit_metric(run, name, |step, nanos, value| {
            out.push((step, nanos, value));
        })?;
        Ok(out)
    }

    /// Calls `f(step, time_nanos, value)` for every point of metric `name` of
    /// a run, in logging order, reading the journal once without collecting.
    pub fn visit_metric(
        &self,
        run: &RunInfo,
        name: &str,
        mut f: impl FnMut(i64, i64, f64),
    ) -> Result<(), Error> {
        let mut key = None;
        self.read_metric_events(&run.short_id, 0, |event| match event {
            MetricEvent::Declared { key: k, name: n } if n == name => key = Some(k),
            MetricEvent::Point { time_nanos, point } if Some(point.key) == key => {
                f(point.step, time_nanos, point.value);
            }
            _ => {}
        })?;
        Ok(())
    }

    /// Every metric's values in logging order, read from the journal in one
    /// pass (for sparklines and summaries of the whole series).
    pub fn metric_series(&self, run: &RunInfo) -> Result<Vec<(String, Vec<f64>)>, Error> {
        let mut names: HashMap<u32, usize> = HashMap::new();
        let mut series: Vec<(String, Vec<f64>)> = Vec::new();
        self.read_metric_events(&run.short_id, 0, |event| match event {
            MetricEvent::Declared { key, name } => {
                names.insert(key, series.len());
                series.push((name, Vec::new()));
            }
            MetricEvent::Point { point, .. } => {
                if let Some(&i) = names.get(&point.key) {
                    series[i].1.push(point.value);
                }
            }
            MetricEvent::Ended(_) => {}
        })?;
        series.retain(|(_, v)| !v.is_empty());
        Ok(series)
    }

    /// Every run's id, status and how far its journal is indexed: what a
    /// watcher compares between two looks to see what changed.
    pub fn run_states(&self) -> Result<Vec<(String, Status, u64)>, Error> {
        self.read(|db| {
            let mut stmt = db.prepare_cached("SELECT id, status, journal_offset FROM runs")?;
            let rows = stmt.query_map([], |r| {
                let status: String = r.get(1)?;
                let offset: i64 = r.get(2)?;
                Ok((
                    r.get::<_, String>(0)?,
                    Status::parse(&status).ok_or_else(|| damaged_column(1, "status", &status))?,
                    u64::try_from(offset).unwrap_or(0),
                ))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How many points each metric of run `id` (a full id) has.
    pub fn metric_counts(&self, id: &str) -> Result<Vec<(String, u64)>, Error> {
        self.read(|db| {
            let mut stmt = db.prepare_cached("SELECT key, count FROM metrics WHERE run_id = ?1")?;
            let rows = stmt.query_map([id], |r| {
                let n: i64 = r.get(1)?;
                Ok((r.get::<_, String>(0)?, u64::try_from(n).unwrap_or(0)))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The names of the project's experiments, sorted.
    pub fn experiments(&self) -> Result<Vec<String>, Error> {
        self.read(|db| {
            let mut stmt =
                db.prepare_cached("SELECT DISTINCT experiment FROM runs ORDER BY experiment")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How many runs have each status.
    pub fn status_counts(&self) -> Result<HashMap<String, i64>, Error> {
        self.read(|db| {
            Ok(db
                .prepare("SELECT status, count(*) FROM runs GROUP BY status")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?)
        })
    }
}

/// [`Store::resolve`] on the index open on `conn`.
fn resolve(conn: &Connection, prefix: &str) -> Result<String, Error> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 32 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRunId {
            prefix: prefix.to_owned(),
        });
    }
    let upper = format!("{p}{}", "g");
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 21")?
        .query_map(params![p, upper], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    match ids.len() {
        0 => Err(Error::UnknownRun {
            prefix: prefix.to_owned(),
        }),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        _ => Err(Error::AmbiguousRun {
            prefix: prefix.to_owned(),
            candidates: ids,
        }),
    }
}

/// A parameter from its `value` and `text` columns: a string is kept as its
/// text alone, with an empty `value`.
pub(crate) fn param_value(value: &[u8], text: Option<String>) -> Value {
    if value.is_empty() {
        Value::Str(text.unwrap_or_default())
    } else {
        decode(value)
    }
}

fn decode(bytes: &[u8]) -> Value {
    codec::decode_value(bytes).unwrap_or_else(|e| Value::Repr(format!("<undecodable value: {e}>")))
}

/// The error for a value that Lab never writes in its column: the index is
/// damaged there, and reads go to the journals instead.
fn damaged_column(column: usize, name: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("{value:?} is no run's {name}").into(),
    )
}

pub(crate) fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    let id: String = r.get(0)?;
    let status: String = r.get(3)?;
    let error_type: Option<String> = r.get(6)?;
    let features: Option<Vec<u8>> = r.get(9)?;
    Ok(RunInfo {
        id: id.parse().map_err(|_| damaged_column(0, "id", &id))?,
        short_id: r.get(1)?,
        experiment: r.get(2)?,
        status: Status::parse(&status).ok_or_else(|| damaged_column(3, "status", &status))?,
        start_nanos: r.get(4)?,
        end_nanos: r.get(5)?,
        error: match error_type {
            Some(kind) => Some(ErrorInfo {
                kind,
                message: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                traceback: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            }),
            None => None,
        },
        features: match features.map(|b| decode(&b)) {
            Some(Value::List(items)) => items,
            _ => Vec::new(),
        },
        damage: r.get(10)?,
        attrs: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
        tags: Vec::new(),
        artifacts: Vec::new(),
        models: Vec::new(),
    })
}

/// Loads params, metrics, tags, artifacts, models and attributes of `runs`,
/// one query per table.
pub(crate) fn fill_details(
    conn: &Connection,
    runs: &mut [RunInfo],
    detail: Detail,
) -> Result<(), Error> {
    if runs.is_empty() {
        return Ok(());
    }
    // The runs to fill, by their place in `runs`: each table is then read by
    // key for exactly these runs, in one query, whatever their number.
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS selected (pos INTEGER PRIMARY KEY, id TEXT NOT NULL); DELETE FROM temp.selected;",
    )?;
    {
        let tx = conn.unchecked_transaction()?;
        let mut insert =
            tx.prepare_cached("INSERT INTO temp.selected (pos, id) VALUES (?1, ?2)")?;
        for (i, r) in runs.iter().enumerate() {
            insert.execute(params![i as i64, r.id.to_string()])?;
        }
        drop(insert);
        tx.commit()?;
    }
    let filter = |table: &str, cols: &str, order: &str| {
        let only = match (table, detail) {
            // What a listing summary would carry: the listed attributes.
            ("attrs", Detail::Listing) => {
                format!(" AND t.key IN ({})", crate::fields::listed_attrs_sql())
            }
            _ => String::new(),
        };
        format!(
            "SELECT s.pos, {cols} FROM temp.selected s JOIN {table} t ON t.run_id = s.id{only} ORDER BY s.pos, t.{order}"
        )
    };
    let mut each = |sql: String,
                    f: &mut dyn FnMut(&mut RunInfo, &rusqlite::Row<'_>) -> rusqlite::Result<()>|
     -> Result<(), Error> {
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let pos: i64 = row.get(0)?;
            if let Some(run) = usize::try_from(pos).ok().and_then(|p| runs.get_mut(p)) {
                f(run, row)?;
            }
        }
        Ok(())
    };
    each(filter("attrs", "t.key, t.value", "key"), &mut |run, r| {
        run.attrs
            .push((r.get(1)?, decode(&r.get::<_, Vec<u8>>(2)?)));
        Ok(())
    })?;
    each(
        filter("params", "t.key, t.value, t.text", "seq"),
        &mut |run, r| {
            let value = param_value(&r.get::<_, Vec<u8>>(2)?, r.get(3)?);
            run.params.push((r.get(1)?, value));
            Ok(())
        },
    )?;
    each(
        filter(
            "metrics",
            "t.key, t.last_bits, t.last_step, t.min, t.max, t.count",
            "seq",
        ),
        &mut |run, r| {
            run.metrics.push(MetricSummary {
                name: r.get(1)?,
                last: f64::from_bits(r.get::<_, i64>(2)? as u64),
                last_step: r.get(3)?,
                min: r.get(4)?,
                max: r.get(5)?,
                count: r.get(6)?,
            });
            Ok(())
        },
    )?;
    each(filter("tags", "t.key, t.value", "key"), &mut |run, r| {
        run.tags.push((r.get(1)?, r.get(2)?));
        Ok(())
    })?;
    if detail == Detail::Listing {
        return Ok(());
    }
    each(
        filter(
            "artifacts",
            "t.name, t.source, t.path, t.files, t.bytes",
            "seq",
        ),
        &mut |run, r| {
            run.artifacts.push(ArtifactInfo {
                name: r.get(1)?,
                source: r.get(2)?,
                path: r.get(3)?,
                files: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                bytes: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
            });
            Ok(())
        },
    )?;
    each(
        filter(
            "models",
            "t.name, t.path, t.format, t.class, t.library, t.library_version, t.size, t.sha256, t.logged_nanos",
            "seq",
        ),
        &mut |run, r| {
            run.models.push(ModelInfo {
                name: r.get(1)?,
                path: r.get(2)?,
                format: r.get(3)?,
                class: r.get(4)?,
                library: r.get(5)?,
                library_version: r.get(6)?,
                size: r.get::<_, i64>(7)? as u64,
                sha256: r.get(8)?,
                logged_nanos: r.get(9)?,
            });
            Ok(())
        },
    )?;
    Ok(())
}
