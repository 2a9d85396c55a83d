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

    /// The run's readable name: the one it was given or renamed to, else the
    /// one generated from its short id.
    #[must_use]
    pub fn name(&self) -> String {
        match self.attr_str(lab_types::fields::attr::NAME) {
            Some(name) => name.to_owned(),
            None => lab_types::names::generated_name(&self.short_id)
                .unwrap_or_else(|| self.short_id.clone()),
        }
    }

    /// The run's note (Markdown), empty when it has none.
    #[must_use]
    pub fn note(&self) -> &str {
        self.attr_str(lab_types::fields::attr::NOTE).unwrap_or("")
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

/// The `runs` columns a [`RunInfo`] is read from, in this order, then (for a
/// listing) its summary. [`col`] names each one's place.
pub(crate) const RUN_COLUMNS: &str = "id, short_id, experiment, status, start_nanos, end_nanos, error_type, error_message, traceback, features, damage, name, source, user, host, git_commit, python_version, git_dirty, run_group, parent";

/// The place of each column of [`RUN_COLUMNS`] (and the `summary` after
/// them) in a row: rows are read by place, which costs no name lookups in a
/// listing of thousands, and these names keep the places readable.
pub(crate) mod col {
    pub const ID: usize = 0;
    pub const SHORT_ID: usize = 1;
    pub const EXPERIMENT: usize = 2;
    pub const STATUS: usize = 3;
    pub const START_NANOS: usize = 4;
    pub const END_NANOS: usize = 5;
    pub const ERROR_TYPE: usize = 6;
    pub const ERROR_MESSAGE: usize = 7;
    pub const TRACEBACK: usize = 8;
    pub const FEATURES: usize = 9;
    pub const DAMAGE: usize = 10;
    /// The first of the attribute columns (`fields::ATTR_COLUMNS_SQL`).
    pub const ATTRS: usize = 11;
    /// After `RUN_COLUMNS`, in a listing's query.
    pub const SUMMARY: usize = 20;
}

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
    /// `(step, time_nanos, value)`, read as [`Store::visit_metric`] reads.
    pub fn metric_history(&self, run: &RunInfo, name: &str) -> Result<Vec<(i64, i64, f64)>, Error> {
        let mut out = Vec::new();
        self.visit_metric(run, name, |step, nanos, value| {
            out.push((step, nanos, value));
        })?;
        Ok(out)
    }

    /// Calls `f(step, time_nanos, value)` for every point of metric `name` of
    /// a run, in logging order, without collecting: from the run's series
    /// file when it has one that matches its journal (that metric's blocks
    /// alone), else reading the journal once.
    pub fn visit_metric(
        &self,
        run: &RunInfo,
        name: &str,
        mut f: impl FnMut(i64, i64, f64),
    ) -> Result<(), Error> {
        let paths = self.project.run_paths(&run.short_id);
        let columns = crate::series::Columns::All;
        if let Some(done) = crate::series::visit(&paths, name, columns, &mut f) {
            return done;
        }
        self.visit_metric_in_journal(run, name, f)
    }

    /// [`Store::visit_metric`] for a reader that needs no times:
    /// `f(step, value)`, without decoding the times of a series file.
    pub fn visit_metric_steps(
        &self,
        run: &RunInfo,
        name: &str,
        mut f: impl FnMut(i64, f64),
    ) -> Result<(), Error> {
        let paths = self.project.run_paths(&run.short_id);
        let columns = crate::series::Columns::StepsAndValues;
        if let Some(done) = crate::series::visit(&paths, name, columns, |s, _, v| f(s, v)) {
            return done;
        }
        self.visit_metric_in_journal(run, name, |s, _, v| f(s, v))
    }

    /// [`Store::visit_metric`] from the journal alone.
    pub fn visit_metric_in_journal(
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

    /// Every metric's values in logging order (for sparklines and summaries
    /// of the whole series): the values columns of the run's series file
    /// when it has one that matches its journal, else the journal in one
    /// pass.
    pub fn metric_series(&self, run: &RunInfo) -> Result<Vec<(String, Vec<f64>)>, Error> {
        if let Some(series) = crate::series::values(&self.project.run_paths(&run.short_id)) {
            return Ok(series);
        }
        self.metric_series_in_journal(run)
    }

    /// [`Store::metric_series`] from the journal alone.
    pub fn metric_series_in_journal(
        &self,
        run: &RunInfo,
    ) -> Result<Vec<(String, Vec<f64>)>, Error> {
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

    /// Every run's id, status and how far its journal and meta journal are
    /// indexed: what a watcher compares between two looks to see what changed.
    pub fn run_states(&self) -> Result<Vec<(String, Status, u64, u64)>, Error> {
        self.read(|db| {
            let mut stmt =
                db.prepare_cached("SELECT id, status, journal_offset, meta_len FROM runs")?;
            let rows = stmt.query_map([], |r| {
                let status: String = r.get(1)?;
                let offset: i64 = r.get(2)?;
                let meta_len: i64 = r.get(3)?;
                Ok((
                    r.get::<_, String>(0)?,
                    Status::parse(&status).ok_or_else(|| damaged_column(1, "status", &status))?,
                    u64::try_from(offset).unwrap_or(0),
                    u64::try_from(meta_len).unwrap_or(0),
                ))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How many points each metric of run `id` (a full id) has.
    pub fn metric_counts(&self, id: &str) -> Result<Vec<(String, u64)>, Error> {
        self.read(|db| {
            let mut stmt = db.prepare_cached(
                "SELECT key, count FROM metrics WHERE run = (SELECT rid FROM runs WHERE id = ?1)",
            )?;
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
/// The full id of the run `given` names: an id prefix first (a name made of
/// hex digits is reached only when no id starts with it), else a name.
fn resolve(conn: &Connection, given: &str) -> Result<String, Error> {
    let ids: Vec<String> = match prefix_range(given) {
        Ok((low, high)) => conn
            .prepare_cached("SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 21")?
            .query_map(params![low, high], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        Err(e) if given.trim().is_empty() => return Err(e),
        Err(_) => Vec::new(),
    };
    if !ids.is_empty() {
        return pick_run(given, ids);
    }
    let named: Vec<String> = conn
        .prepare_cached("SELECT id FROM runs WHERE name = ?1 ORDER BY id LIMIT 21")?
        .query_map([given], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    pick_named(given, named)
}

/// The one run among `ids` (the first 21 runs named `name`, sorted) that
/// `name` names: an error when there is none, or more than one. A text that
/// could be an id prefix and names nothing is an unknown id.
pub fn pick_named(name: &str, ids: Vec<String>) -> Result<String, Error> {
    match ids.len() {
        0 if prefix_range(name).is_ok() => Err(Error::UnknownRun {
            prefix: name.to_owned(),
        }),
        0 => Err(Error::UnknownRunName {
            name: name.to_owned(),
        }),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        _ => Err(Error::AmbiguousRunName {
            name: name.to_owned(),
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

/// A parameter from SQLite's `value` and `text` columns: as
/// [`param_value`], and a NULL `value` for a number or bool its text gives
/// back exactly.
pub(crate) fn sqlite_param(value: Option<&[u8]>, text: Option<String>) -> Value {
    if let Some(value) = value {
        return param_value(value, text);
    }
    let text = text.unwrap_or_default();
    crate::facts::number_from_text(&text)
        .unwrap_or_else(|| Value::Repr(format!("<undecodable value: {text:?}>")))
}

pub(crate) fn decode(bytes: &[u8]) -> Value {
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
    let id: String = r.get(col::ID)?;
    let status: String = r.get(col::STATUS)?;
    let error_type: Option<String> = r.get(col::ERROR_TYPE)?;
    let features: Option<Vec<u8>> = r.get(col::FEATURES)?;
    Ok(RunInfo {
        id: id.parse().map_err(|_| damaged_column(col::ID, "id", &id))?,
        short_id: r.get(col::SHORT_ID)?,
        experiment: r.get(col::EXPERIMENT)?,
        status: Status::parse(&status)
            .ok_or_else(|| damaged_column(col::STATUS, "status", &status))?,
        start_nanos: r.get(col::START_NANOS)?,
        end_nanos: r.get(col::END_NANOS)?,
        error: match error_type {
            Some(kind) => Some(ErrorInfo {
                kind,
                message: r
                    .get::<_, Option<String>>(col::ERROR_MESSAGE)?
                    .unwrap_or_default(),
                traceback: r
                    .get::<_, Option<String>>(col::TRACEBACK)?
                    .unwrap_or_default(),
            }),
            None => None,
        },
        features: match features.map(|b| decode(&b)) {
            Some(Value::List(items)) => items,
            _ => Vec::new(),
        },
        damage: r.get(col::DAMAGE)?,
        attrs: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
        tags: Vec::new(),
        artifacts: Vec::new(),
        models: Vec::new(),
    })
}

/// Loads attributes, params, metrics and tags of `runs` (and for the full
/// detail, artifacts and models), one query per table, whatever the number
/// of runs.
pub(crate) fn fill_details(
    conn: &Connection,
    runs: &mut [RunInfo],
    detail: Detail,
) -> Result<(), Error> {
    if runs.is_empty() {
        return Ok(());
    }
    select(conn, runs)?;
    let mut rows = Rows { conn, runs, detail };
    rows.attrs()?;
    rows.params()?;
    rows.metrics()?;
    rows.tags()?;
    if detail == Detail::Full {
        rows.artifacts()?;
        rows.models()?;
    }
    Ok(())
}

/// Puts the ids of `runs` in the temporary table `selected`, by their place:
/// each table is then read by key for exactly these runs, in one query.
fn select(conn: &Connection, runs: &[RunInfo]) -> Result<(), Error> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS selected (pos INTEGER PRIMARY KEY, id TEXT NOT NULL); DELETE FROM temp.selected;",
    )?;
    // The inserts in one transaction: the read's own, when it is in one.
    let tx = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    {
        let mut insert =
            conn.prepare_cached("INSERT INTO temp.selected (pos, id) VALUES (?1, ?2)")?;
        for (i, r) in runs.iter().enumerate() {
            insert.execute(params![i as i64, r.id.to_string()])?;
        }
    }
    if let Some(tx) = tx {
        tx.commit()?;
    }
    Ok(())
}

/// The rows of one per-run table for the selected runs, each handed to the
/// run it belongs to.
struct Rows<'a> {
    conn: &'a Connection,
    runs: &'a mut [RunInfo],
    detail: Detail,
}

impl Rows<'_> {
    /// Calls `f` with each row of `table` (columns `cols`, as `t.…`) and its
    /// run, runs in order and each run's rows by `order`.
    fn each(
        &mut self,
        table: &str,
        cols: &str,
        order: &str,
        mut f: impl FnMut(&mut RunInfo, &rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), Error> {
        let only = match (table, self.detail) {
            // What a listing summary would carry: the listed attributes.
            ("attrs", Detail::Listing) => format!(
                " AND t.key IN (SELECT id FROM attr_keys WHERE name IN ({}))",
                crate::fields::listed_attrs_sql()
            ),
            _ => String::new(),
        };
        let sql = format!(
            "SELECT s.pos AS pos, {cols} FROM temp.selected s JOIN runs r ON r.id = s.id JOIN {table} t ON t.run = r.rid{only} ORDER BY s.pos, t.{order}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let pos: i64 = row.get("pos")?;
            if let Some(run) = usize::try_from(pos).ok().and_then(|p| self.runs.get_mut(p)) {
                f(run, row)?;
            }
        }
        Ok(())
    }

    fn attrs(&mut self) -> Result<(), Error> {
        let cols = "(SELECT name FROM attr_keys WHERE id = t.key) AS key, coalesce(t.value, (SELECT v.value FROM attr_values v WHERE v.id = t.shared)) AS value";
        self.each("attrs", cols, "key", |run, r| {
            run.attrs
                .push((r.get("key")?, decode(&r.get::<_, Vec<u8>>("value")?)));
            Ok(())
        })?;
        // By name (`t.key` is the name's number), then with those the run's
        // own row holds alone.
        for run in self.runs.iter_mut() {
            run.attrs.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let sql = format!(
            "SELECT s.pos, r.short_id, {} FROM temp.selected s JOIN runs r ON r.id = s.id ORDER BY s.pos",
            crate::fields::ATTR_COLUMNS_SQL
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let pos: i64 = row.get(0)?;
            if let Some(run) = usize::try_from(pos).ok().and_then(|p| self.runs.get_mut(p)) {
                let short_id: String = row.get(1)?;
                let columns = crate::fields::column_attrs(row, 2, &short_id)?;
                crate::fields::add_column_attrs(&mut run.attrs, columns);
            }
        }
        Ok(())
    }

    fn params(&mut self) -> Result<(), Error> {
        self.each("params", "t.key, t.value, t.text", "seq", |run, r| {
            let value = sqlite_param(
                r.get::<_, Option<Vec<u8>>>("value")?.as_deref(),
                r.get("text")?,
            );
            run.params.push((r.get("key")?, value));
            Ok(())
        })
    }

    fn metrics(&mut self) -> Result<(), Error> {
        // `min` and `max` are NULL where they equal `last` (see `unless_last`).
        let cols = "t.key, t.last, t.last_bits, t.last_step, coalesce(t.min, t.last) AS min, coalesce(t.max, t.last) AS max, t.count";
        self.each("metrics", cols, "seq", |run, r| {
            run.metrics.push(MetricSummary {
                name: r.get("key")?,
                last: crate::facts::last_value(r.get("last")?, r.get("last_bits")?),
                last_step: r.get("last_step")?,
                min: r.get("min")?,
                max: r.get("max")?,
                count: r.get("count")?,
            });
            Ok(())
        })
    }

    fn tags(&mut self) -> Result<(), Error> {
        self.each("tags", "t.key, t.value", "key", |run, r| {
            run.tags.push((r.get("key")?, r.get("value")?));
            Ok(())
        })
    }

    fn artifacts(&mut self) -> Result<(), Error> {
        let cols = "t.name, t.source, t.path, t.files, t.bytes";
        self.each("artifacts", cols, "seq", |run, r| {
            run.artifacts.push(ArtifactInfo {
                name: r.get("name")?,
                source: r.get("source")?,
                path: r.get("path")?,
                files: r.get::<_, Option<i64>>("files")?.map(|v| v as u64),
                bytes: r.get::<_, Option<i64>>("bytes")?.map(|v| v as u64),
            });
            Ok(())
        })
    }

    fn models(&mut self) -> Result<(), Error> {
        let cols = "t.name, t.path, t.format, t.class, t.library, t.library_version, t.size, t.sha256, t.logged_nanos";
        self.each("models", cols, "seq", |run, r| {
            run.models.push(ModelInfo {
                name: r.get("name")?,
                path: r.get("path")?,
                format: r.get("format")?,
                class: r.get("class")?,
                library: r.get("library")?,
                library_version: r.get("library_version")?,
                size: r.get::<_, i64>("size")? as u64,
                sha256: r.get("sha256")?,
                logged_nanos: r.get("logged_nanos")?,
            });
            Ok(())
        })
    }
}

/// The ids a run id prefix covers, `low <= id < high` (ids are lower-case
/// hex, so `high` is the prefix and `g`); an error when `prefix` cannot
/// begin a run id.
pub fn prefix_range(prefix: &str) -> Result<(String, String), Error> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 32 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRunId {
            prefix: prefix.to_owned(),
        });
    }
    let high = format!("{p}g");
    Ok((p, high))
}

/// The one run among `ids` (the first 21 ids in [`prefix_range`], sorted)
/// that `prefix` names: an error when there is none, or more than one.
pub fn pick_run(prefix: &str, ids: Vec<String>) -> Result<String, Error> {
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

impl Store {
    /// Reads the metric events of run `short_id`'s journal from byte `from`
    /// on (0 for the start), in order, and returns the offset to read on
    /// from next time.
    pub fn read_metric_events(
        &self,
        short_id: &str,
        from: u64,
        mut f: impl FnMut(MetricEvent),
    ) -> Result<u64, Error> {
        let paths = self.project.run_paths(short_id);
        let journal = &paths.journal;
        let scan = crate::series::read_records(
            journal,
            from,
            |stretches, visit| {
                lab_journal::read_journal_skipping(journal, from, None, stretches, visit)
            },
            |_, record| crate::metric_events(record, &mut f),
        )?;
        Ok(scan.end.max(from))
    }
}

#[cfg(test)]
mod tests {
    use super::{RUN_COLUMNS, col};

    #[test]
    fn the_column_places_name_the_columns() {
        let names: Vec<&str> = RUN_COLUMNS.split(", ").collect();
        for (place, name) in [
            (col::ID, "id"),
            (col::SHORT_ID, "short_id"),
            (col::EXPERIMENT, "experiment"),
            (col::STATUS, "status"),
            (col::START_NANOS, "start_nanos"),
            (col::END_NANOS, "end_nanos"),
            (col::ERROR_TYPE, "error_type"),
            (col::ERROR_MESSAGE, "error_message"),
            (col::TRACEBACK, "traceback"),
            (col::FEATURES, "features"),
            (col::DAMAGE, "damage"),
        ] {
            assert_eq!(names[place], name);
        }
        assert_eq!(
            names[col::ATTRS..].join(", "),
            crate::fields::ATTR_COLUMNS_SQL
        );
        assert_eq!(col::SUMMARY, names.len());
    }
}
