//! Reading runs back from the index in PostgreSQL: listing them with the
//! query language (compiled by `lab_store`'s compiler through the
//! [`Postgres`] dialect) and reading one, as the same `RunInfo` the SQLite
//! store gives for the same journals.
//!
//! The compiler writes SQL over tables named `runs`, `params`, `metrics` and
//! `tags`; here those are names for the project's rows of `lab.runs`, ...
//! (`WITH runs AS NOT MATERIALIZED (SELECT * FROM lab.runs WHERE project_id
//! = ?)`), which the planner folds into each subquery, keys and all.

use std::collections::HashMap;

use lab_store::index::{
    RunIndex, cursor_sql_in, cursor_text, decode_value, param_value, pick_named, pick_run,
    prefix_range, selection_sql_in,
};
use lab_store::query::{Bound, Catalog};
use lab_store::{
    ArtifactInfo, Detail, Error, ErrorKind, MetricSummary, ModelInfo, Page, RunInfo, Selection,
};
use lab_types::{ErrorInfo, Status, Value};
use postgres::types::{ToSql, Type};
use postgres::{IsolationLevel, Row, Transaction};

use crate::records::{Prepared, prepare};
use crate::{Pg as _, PgIndex, Postgres, text};

/// The `lab.runs` columns a [`RunInfo`] is read from, in this order.
const RUN_COLUMNS: &str = "runs.id, runs.short_id, runs.experiment, runs.status, runs.start_nanos, runs.end_nanos, runs.error_type, runs.error_message, runs.traceback, runs.features, runs.damage";

/// The compiler's table names, as the project's rows. The compiler joins a
/// per-run table to its run as SQLite keys them (`run = runs.rid`); here
/// both are the run's full id.
const PROJECT_TABLES: &str =
    "WITH runs AS NOT MATERIALIZED (SELECT *, id AS rid FROM lab.runs WHERE project_id = ?),
 params AS NOT MATERIALIZED (SELECT *, run_id AS run FROM lab.params WHERE project_id = ?),
 metrics AS NOT MATERIALIZED (SELECT *, run_id AS run FROM lab.metrics WHERE project_id = ?),
 tags AS NOT MATERIALIZED (SELECT *, run_id AS run FROM lab.tags WHERE project_id = ?) ";

/// A value bound to a statement, with the type it is declared as.
enum Param {
    Int4(i32),
    Int8(i64),
    Float8(f64),
    Text(String),
}

impl Param {
    fn sql_type(&self) -> Type {
        match self {
            Param::Int4(_) => Type::INT4,
            Param::Int8(_) => Type::INT8,
            Param::Float8(_) => Type::FLOAT8,
            Param::Text(_) => Type::TEXT,
        }
    }

    fn value(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int4(v) => v,
            Param::Int8(v) => v,
            Param::Float8(v) => v,
            Param::Text(v) => v,
        }
    }
}

impl From<Bound> for Param {
    fn from(b: Bound) -> Self {
        match b {
            Bound::Integer(i) => Param::Int8(i),
            Bound::Real(r) => Param::Float8(r),
            Bound::Text(t) => Param::Text(text(&t).into_owned()),
        }
    }
}

/// Column `i` of a row of the values a listing orders by, as a cursor
/// holds it: integers, numbers and text as they are, `None` for NULL.
fn cursor_value(row: &Row, i: usize) -> Result<Option<Bound>, Error> {
    let t = row.columns()[i].type_().clone();
    Ok(if t == Type::INT8 {
        row.try_get::<_, Option<i64>>(i).pg()?.map(Bound::Integer)
    } else if t == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)
            .pg()?
            .map(|v| Bound::Integer(v.into()))
    } else if t == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)
            .pg()?
            .map(|v| Bound::Integer(v.into()))
    } else if t == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i).pg()?.map(Bound::Real)
    } else if t == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(i)
            .pg()?
            .map(|v| Bound::Real(v.into()))
    } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(&t) {
        row.try_get::<_, Option<String>>(i).pg()?.map(Bound::Text)
    } else {
        return Err(Error::OtherIndex {
            database: "PostgreSQL",
            message: format!(
                "a listing orders runs by a value of type `{t}`, which no cursor holds"
            ),
            kind: ErrorKind::Internal,
        });
    })
}

/// A value Lab never writes in its column: the index is damaged, or was
/// written by something else.
fn damaged(what: &str, value: &str) -> Error {
    Error::OtherIndex {
        database: "PostgreSQL",
        message: format!("{value:?} is no run's {what}"),
        kind: ErrorKind::Internal,
    }
}

impl PgIndex {
    /// Runs the reads of `f` in one read-only transaction: one snapshot, so
    /// a listing's runs and their details agree whatever folds commit
    /// meanwhile.
    fn snapshot<T>(
        &self,
        f: impl FnOnce(&mut Reader<'_, '_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut client = self.client.borrow_mut();
        let mut prepared = self.prepared.borrow_mut();
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .pg()?;
        let out = f(&mut Reader {
            tx: &mut tx,
            prepared: &mut prepared,
            project: self.project,
        })?;
        tx.commit().pg()?;
        Ok(out)
    }

    /// The names this project's runs have: what queries may refer to.
    // The method itself is not general enough over the reader's lifetimes.
    #[allow(clippy::redundant_closure_for_method_calls)]
    pub fn catalog(&self) -> Result<Catalog, Error> {
        self.snapshot(|r| r.catalog())
    }

    /// The runs `selection` asks for, as [`lab_store::Store::select`] gives
    /// them for a project on disk.
    pub fn select(&self, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
        self.snapshot(|r| r.select(selection))
    }

    /// The runs `selection` asks for (after its cursor, if it has one) and
    /// the cursor of the next page, as [`lab_store::Store::page`] gives
    /// them for a project on disk: one snapshot for both.
    pub fn page(&self, selection: &Selection) -> Result<Page, Error> {
        self.snapshot(|r| {
            let runs = r.select(selection)?;
            let next = match (selection.limit, runs.last()) {
                (Some(limit), Some(last)) if runs.len() == limit => {
                    Some(r.cursor_of(selection, &last.id.to_string())?)
                }
                _ => None,
            };
            Ok(Page { runs, next })
        })
    }

    /// How many runs `selection` matches, whatever its limit and offset:
    /// the total beside a page of them.
    pub fn count(&self, selection: &Selection) -> Result<usize, Error> {
        self.snapshot(|r| r.count(selection))
    }

    /// The run whose id starts with `prefix` (case-insensitive), with
    /// everything indexed about it.
    pub fn run(&self, prefix: &str) -> Result<RunInfo, Error> {
        self.snapshot(|r| r.run(prefix))
    }

    /// The media of run `id` (a full id), as [`lab_store::Store::media`]
    /// gives them for a project on disk.
    pub fn media(&self, id: &lab_types::RunId) -> Result<Vec<lab_store::MediaKey>, Error> {
        let id = id.to_string();
        self.snapshot(|r| {
            let project = r.project;
            let rows = r.rows(
                "SELECT key, step, kind, path, width, height, bytes FROM lab.media m
                 WHERE project_id = $1 AND run_id = $2
                 ORDER BY (SELECT min(seq) FROM lab.media f WHERE f.project_id = m.project_id AND f.run_id = m.run_id AND f.key = m.key), key, step",
                &[&project, &id],
            )?;
            let items = rows
                .iter()
                .map(|row| {
                    let kind: &str = row.get(2);
                    (
                        row.get::<_, String>(0),
                        lab_types::MediaKind::parse(kind).unwrap_or(lab_types::MediaKind::Image),
                        lab_store::MediaItem {
                            step: row.get(1),
                            path: row.get(3),
                            width: u32::try_from(row.get::<_, i64>(4)).unwrap_or(0),
                            height: u32::try_from(row.get::<_, i64>(5)).unwrap_or(0),
                            bytes: u64::try_from(row.get::<_, i64>(6)).unwrap_or(0),
                        },
                    )
                })
                .collect();
            Ok(lab_store::group_media(items))
        })
    }
}

/// Reads inside one snapshot.
struct Reader<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    prepared: &'t mut Prepared,
    project: i32,
}

impl Reader<'_, '_> {
    /// Rows of `sql`, prepared once on the connection.
    fn rows(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        let stmt = prepare(self.prepared, self.tx, sql)?;
        self.tx.query(&stmt, params).pg()
    }

    fn catalog(&mut self) -> Result<Catalog, Error> {
        let project = self.project;
        let rows = self.rows(
            "SELECT scope, key FROM lab.names WHERE project_id = $1",
            &[&project],
        )?;
        let mut c = Catalog::default();
        for r in rows {
            let (scope, key): (&str, String) = (r.get(0), r.get(1));
            match scope {
                "metrics" => c.metrics.insert(key),
                "params" => c.params.insert(key),
                "tags" => c.tags.insert(key),
                _ => false,
            };
        }
        Ok(c)
    }

    fn select(&mut self, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
        let (sql, params) = self.selection_sql(selection)?;
        let types: Vec<Type> = params.iter().map(Param::sql_type).collect();
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::value).collect();
        // Typed: each value is declared as what it is, whatever its place.
        let stmt = self.tx.prepare_typed(&sql, &types).pg()?;
        let rows = self.tx.query(&stmt, &values).pg()?;
        let mut runs = rows.iter().map(run_row).collect::<Result<Vec<_>, _>>()?;
        self.fill_details(&mut runs, selection.detail)?;
        Ok(runs)
    }

    /// The cursor of run `id` (a full id) in `selection`'s order: the
    /// values it has for each term of the order, as PostgreSQL reads them.
    fn cursor_of(&mut self, selection: &Selection, id: &str) -> Result<String, Error> {
        let catalog = self.catalog()?;
        let compiled = cursor_sql_in(&Postgres, PROJECT_TABLES, selection, &catalog)?;
        let params: Vec<Param> = (0..PROJECT_TABLES.matches('?').count())
            .map(|_| Param::Int4(self.project))
            .chain(compiled.params.into_iter().map(Param::from))
            .chain(std::iter::once(Param::Text(id.to_owned())))
            .collect();
        let types: Vec<Type> = params.iter().map(Param::sql_type).collect();
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::value).collect();
        let stmt = self.tx.prepare_typed(&compiled.sql, &types).pg()?;
        let row = self.tx.query_one(&stmt, &values).pg()?;
        let keys = (0..row.len())
            .map(|i| cursor_value(&row, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(cursor_text(selection, keys))
    }

    fn count(&mut self, selection: &Selection) -> Result<usize, Error> {
        let all = Selection {
            limit: None,
            offset: 0,
            after: None,
            ..selection.clone()
        };
        let (sql, params) = self.selection_sql(&all)?;
        let sql = format!("SELECT count(*) FROM ({sql}) AS matched");
        let types: Vec<Type> = params.iter().map(Param::sql_type).collect();
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::value).collect();
        let stmt = self.tx.prepare_typed(&sql, &types).pg()?;
        let n: i64 = self.tx.query_one(&stmt, &values).pg()?.get(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Run `given`: an id prefix, else a name (as the local index resolves
    /// one).
    fn run(&mut self, given: &str) -> Result<RunInfo, Error> {
        let project = self.project;
        let ids: Vec<String> = match prefix_range(given) {
            Ok((low, high)) => self
                .rows(
                    "SELECT id FROM lab.runs WHERE project_id = $1 AND id >= $2 AND id < $3 ORDER BY id LIMIT 21",
                    &[&project, &low, &high],
                )?
                .into_iter()
                .map(|r| r.get(0))
                .collect(),
            Err(e) if given.trim().is_empty() => return Err(e),
            Err(_) => Vec::new(),
        };
        let id = if ids.is_empty() {
            let named: Vec<String> = self
                .rows(
                    "SELECT id FROM lab.runs WHERE project_id = $1 AND name = $2 ORDER BY id LIMIT 21",
                    &[&project, &given],
                )?
                .into_iter()
                .map(|r| r.get(0))
                .collect();
            pick_named(given, named)?
        } else {
            pick_run(given, ids)?
        };
        let prefix = given;
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM lab.runs runs WHERE project_id = $1 AND id = $2");
        let rows = self.rows(&sql, &[&project, &id])?;
        let row = rows.first().ok_or_else(|| Error::UnknownRun {
            prefix: prefix.to_owned(),
        })?;
        let mut runs = vec![run_row(row)?];
        self.fill_details(&mut runs, Detail::Full)?;
        Ok(runs.remove(0))
    }

    /// The SQL of `selection` with its values: the statement every index
    /// lists runs with, through the [`Postgres`] dialect, over the project's
    /// rows.
    fn selection_sql(&mut self, selection: &Selection) -> Result<(String, Vec<Param>), Error> {
        let catalog = self.catalog()?;
        let head = format!("{PROJECT_TABLES}SELECT {RUN_COLUMNS} FROM runs");
        let compiled = selection_sql_in(&Postgres, &head, selection, &catalog, true)?;
        let params = (0..4)
            .map(|_| Param::Int4(self.project))
            .chain(compiled.params.into_iter().map(Param::from))
            .collect();
        Ok((compiled.sql, params))
    }

    /// Loads attributes, parameters, metrics and tags of `runs` (and for the
    /// full detail, artifacts and models), one query per table.
    fn fill_details(&mut self, runs: &mut [RunInfo], detail: Detail) -> Result<(), Error> {
        if runs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
        let place: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let project = self.project;
        let listed: Vec<&str> = lab_store::fields::listed_attrs().collect();
        let mut each = |sql: &str, f: &mut dyn FnMut(&mut RunInfo, &Row)| -> Result<(), Error> {
            let rows = if sql.contains("$3") {
                self.rows(sql, &[&project, &ids, &listed])
            } else {
                self.rows(sql, &[&project, &ids])
            }?;
            for row in &rows {
                let id: &str = row.get(0);
                if let Some(&i) = place.get(id) {
                    f(&mut runs[i], row);
                }
            }
            Ok(())
        };
        let attrs_sql = if detail == Detail::Listing {
            // What a listing carries: the listed attributes.
            "SELECT run_id, key, value FROM lab.attrs WHERE project_id = $1 AND run_id = ANY($2) AND key = ANY($3) ORDER BY run_id, key"
        } else {
            "SELECT run_id, key, value FROM lab.attrs WHERE project_id = $1 AND run_id = ANY($2) ORDER BY run_id, key"
        };
        each(attrs_sql, &mut |run, r| {
            run.attrs.push((r.get(1), decode_value(r.get(2))));
        })?;
        each(
            "SELECT run_id, key, value, text FROM lab.params WHERE project_id = $1 AND run_id = ANY($2) ORDER BY run_id, seq",
            &mut |run, r| {
                let value = param_value(r.get(2), r.get(3));
                run.params.push((r.get(1), value));
            },
        )?;
        each(
            "SELECT run_id, key, last_bits, last_step, min, max, count FROM lab.metrics WHERE project_id = $1 AND run_id = ANY($2) ORDER BY run_id, seq",
            &mut |run, r| {
                run.metrics.push(MetricSummary {
                    name: r.get(1),
                    last: f64::from_bits(r.get::<_, i64>(2) as u64),
                    last_step: r.get(3),
                    min: r.get(4),
                    max: r.get(5),
                    count: r.get(6),
                });
            },
        )?;
        each(
            "SELECT run_id, key, value FROM lab.tags WHERE project_id = $1 AND run_id = ANY($2) ORDER BY run_id, key",
            &mut |run, r| run.tags.push((r.get(1), r.get(2))),
        )?;
        if detail == Detail::Full {
            each(
                "SELECT run_id, name, source, path, files, bytes FROM lab.artifacts WHERE project_id = $1 AND run_id = ANY($2) ORDER BY run_id, seq",
                &mut |run, r| {
                    run.artifacts.push(ArtifactInfo {
                        name: r.get(1),
                        source: r.get(2),
                        path: r.get(3),
                        files: r.get::<_, Option<i64>>(4).map(|v| v as u64),
                        bytes: r.get::<_, Option<i64>>(5).map(|v| v as u64),
                    });
                },
            )?;
            each(
                "SELECT run_id, name, path, format, class, library, library_version, size, sha256, logged_nanos FROM lab.models WHERE project_id = $1 AND run_id = ANY($2) ORDER BY run_id, seq",
                &mut |run, r| {
                    run.models.push(ModelInfo {
                        name: r.get(1),
                        path: r.get(2),
                        format: r.get(3),
                        class: r.get(4),
                        library: r.get(5),
                        library_version: r.get(6),
                        size: r.get::<_, i64>(7) as u64,
                        sha256: r.get(8),
                        logged_nanos: r.get(9),
                    });
                },
            )?;
        }
        Ok(())
    }
}

impl RunIndex for PgIndex {
    fn select_runs(&self, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
        self.select(selection)
    }

    fn run_by_prefix(&self, prefix: &str) -> Result<RunInfo, Error> {
        self.run(prefix)
    }
}

/// A run from a row of [`RUN_COLUMNS`], without its details.
fn run_row(r: &Row) -> Result<RunInfo, Error> {
    let id: &str = r.get(0);
    let status: &str = r.get(3);
    let error_type: Option<String> = r.get(6);
    let features: Option<Vec<u8>> = r.get(9);
    Ok(RunInfo {
        id: id.parse().map_err(|_| damaged("id", id))?,
        short_id: r.get(1),
        experiment: r.get(2),
        status: Status::parse(status).ok_or_else(|| damaged("status", status))?,
        start_nanos: r.get(4),
        end_nanos: r.get(5),
        error: error_type.map(|kind| ErrorInfo {
            kind,
            message: r.get::<_, Option<String>>(7).unwrap_or_default(),
            traceback: r.get::<_, Option<String>>(8).unwrap_or_default(),
        }),
        features: match features.map(|b| decode_value(&b)) {
            Some(Value::List(items)) => items,
            _ => Vec::new(),
        },
        damage: r.get(10),
        attrs: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
        tags: Vec::new(),
        artifacts: Vec::new(),
        models: Vec::new(),
    })
}
