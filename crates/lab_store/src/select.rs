//! Listing runs with the query language: filter, sort, limit.

use std::fmt::Write as _;

use lab_types::Status;
use rusqlite::Connection;
use rusqlite::types::Value as Sql;

use crate::query::{self, Catalog};
use crate::read::{Detail, RUN_COLUMNS, fill_details, run_row};
use crate::{Error, RunInfo, Store, summary};

/// Which runs to list, and in what order.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only runs of this experiment.
    pub experiment: Option<String>,
    /// Only runs with one of these statuses (all when empty).
    pub statuses: Vec<Status>,
    /// A filter in the query language (`docs/query.md`).
    pub filter: Option<String>,
    /// Sort keys, first one first: a name, with `-` before it for largest first.
    /// Ties, and the order without keys, are newest first.
    pub sort: Vec<String>,
    /// At most this many runs.
    pub limit: Option<usize>,
    /// Skip this many first (paging).
    pub offset: usize,
    /// How much to load about each.
    pub detail: Detail,
}

impl Store {
    /// The names runs of this project have: what queries may refer to.
    pub fn catalog(&self) -> Result<Catalog, Error> {
        self.read(catalog)
    }

    /// The runs `selection` asks for, with everything indexed about them.
    /// Call [`Store::refresh`] first for up-to-date results.
    pub fn select(&self, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
        self.read(|db| select(db, selection))
    }

    /// One page of the runs `selection` asks for (`offset`, `limit`), and how
    /// many runs match in all.
    pub fn select_page(&self, selection: &Selection) -> Result<(Vec<RunInfo>, usize), Error> {
        self.read(|db| {
            let ids = select_ids(db, selection)?;
            let page = page_of(&ids, selection.offset, selection.limit);
            Ok((load_runs(db, page, selection.detail)?, ids.len()))
        })
    }

    /// The row ids of every run `selection` matches, in its order (`limit`
    /// and `offset` are not applied): cheap to keep, and to page through with
    /// [`Store::load_runs`] while [`Store::generation`] stays the same.
    pub fn select_ids(&self, selection: &Selection) -> Result<Vec<i64>, Error> {
        self.read(|db| select_ids(db, selection))
    }

    /// The runs with these row ids (from [`Store::select_ids`]), in that
    /// order; ids no longer in the index are left out.
    pub fn load_runs(&self, rowids: &[i64], detail: Detail) -> Result<Vec<RunInfo>, Error> {
        self.read(|db| load_runs(db, rowids, detail))
    }
}

/// [`Store::load_runs`] on the index open on `conn`.
fn load_runs(conn: &Connection, rowids: &[i64], detail: Detail) -> Result<Vec<RunInfo>, Error> {
    let listing = detail == Detail::Listing;
    let mut incomplete = Vec::new();
    let mut runs = Vec::with_capacity(rowids.len());
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS}, summary FROM runs WHERE rowid = ?1"
    ))?;
    for rowid in rowids {
        let mut rows = stmt.query([rowid])?;
        if let Some(row) = rows.next()? {
            runs.push(listed_run(row, listing, &mut incomplete, runs.len())?);
        }
    }
    complete_details(conn, &mut runs, detail, &incomplete)?;
    Ok(runs)
}

/// Full details, or for a listing, the details of the runs (by place in
/// `runs`) whose summary could not be used: one too long to keep, or an
/// index older than summaries.
fn complete_details(
    conn: &Connection,
    runs: &mut [RunInfo],
    detail: Detail,
    incomplete: &[usize],
) -> Result<(), Error> {
    if detail != Detail::Listing {
        return fill_details(conn, runs, detail);
    }
    if incomplete.is_empty() {
        return Ok(());
    }
    let mut some: Vec<RunInfo> = incomplete
        .iter()
        .map(|&i| {
            let run = &mut runs[i];
            run.attrs.clear();
            run.params.clear();
            run.metrics.clear();
            run.tags.clear();
            run.clone()
        })
        .collect();
    fill_details(conn, &mut some, detail)?;
    for (&i, filled) in incomplete.iter().zip(some) {
        runs[i] = filled;
    }
    Ok(())
}

/// [`Store::select`] on the index open on `conn`.
fn select(conn: &Connection, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
    // With sort keys, first the ids, filtered, sorted and cut (sorting
    // whole rows would carry every summary through the sort), then the
    // rows. Without, the newest-first order comes from an index and the
    // rows are read in one pass.
    if !selection.sort.is_empty() {
        let (sql, params) = selection_sql(conn, selection, true, true)?;
        let rowids: Vec<i64> = conn
            .prepare(&sql)?
            .query_map(rusqlite::params_from_iter(params), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        return load_runs(conn, &rowids, selection.detail);
    }
    let (sql, params) = selection_sql(conn, selection, false, true)?;
    let listing = selection.detail == Detail::Listing;
    let mut incomplete = Vec::new();
    let mut runs: Vec<RunInfo> = Vec::new();
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        runs.push(listed_run(row, listing, &mut incomplete, runs.len())?);
    }
    complete_details(conn, &mut runs, selection.detail, &incomplete)?;
    Ok(runs)
}

/// The names the runs of the index on `conn` have.
pub(crate) fn catalog(conn: &Connection) -> Result<Catalog, Error> {
    let mut c = Catalog::default();
    let mut stmt = conn.prepare_cached("SELECT scope, key FROM names")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let scope: String = row.get(0)?;
        let key: String = row.get(1)?;
        match scope.as_str() {
            "metrics" => c.metrics.insert(key),
            "params" => c.params.insert(key),
            "tags" => c.tags.insert(key),
            _ => false,
        };
    }
    Ok(c)
}

/// [`Store::select_ids`] on the index open on `conn`.
pub(crate) fn select_ids(conn: &Connection, selection: &Selection) -> Result<Vec<i64>, Error> {
    let (sql, params) = selection_sql(conn, selection, true, false)?;
    Ok(conn
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(params), |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The SQL for `selection`: row ids only, or the listing's columns; with
/// its `LIMIT` and `OFFSET` or without.
fn selection_sql(
    conn: &Connection,
    selection: &Selection,
    ids_only: bool,
    limited: bool,
) -> Result<(String, Vec<Sql>), Error> {
    let catalog = catalog(conn)?;
    let head = if ids_only {
        "SELECT runs.rowid FROM runs".to_owned()
    } else {
        format!("SELECT {RUN_COLUMNS}, summary FROM runs")
    };
    let compiled = selection_sql_in(&query::Sqlite, &head, selection, &catalog, limited)?;
    Ok((
        compiled.sql,
        compiled.params.into_iter().map(sql_value).collect(),
    ))
}

/// The SQL of a listing of `selection` in `dialect`: `head` (a `SELECT ...
/// FROM runs`) with the selection's conditions, its order (sort keys, then
/// newest first) and, when `limited`, its `LIMIT` and `OFFSET`; `?` for
/// each value (see [`Dialect::finish`](query::Dialect::finish)). Every
/// index lists runs with this one statement.
pub fn selection_sql_in(
    dialect: &dyn query::Dialect,
    head: &str,
    selection: &Selection,
    catalog: &Catalog,
    limited: bool,
) -> Result<query::Compiled, Error> {
    let mut sql = format!("{head} WHERE 1 = 1");
    let mut params: Vec<query::Bound> = Vec::new();
    if let Some(e) = &selection.experiment {
        sql.push_str(" AND runs.experiment = ?");
        params.push(query::Bound::Text(e.clone()));
    }
    if !selection.statuses.is_empty() {
        // Each status once: a list repeating them must not run out of
        // SQLite's variables.
        let statuses: std::collections::BTreeSet<&str> =
            selection.statuses.iter().map(|s| s.as_str()).collect();
        let _ = write!(
            sql,
            " AND runs.status IN ({})",
            vec!["?"; statuses.len()].join(", ")
        );
        params.extend(
            statuses
                .into_iter()
                .map(|s| query::Bound::Text(s.to_owned())),
        );
    }
    if let Some(text) = selection.filter.as_deref().filter(|t| !t.trim().is_empty()) {
        let expr = query::parse(text)?;
        let compiled = query::compile_where_in(dialect, &expr, catalog, text)?;
        sql.push_str(" AND ");
        sql.push_str(&compiled.sql);
        params.extend(compiled.params);
    }
    sql.push_str(" ORDER BY ");
    for (i, text) in selection.sort.iter().enumerate() {
        if i == query::MAX_SORT_KEYS {
            return Err(query::QueryError::new(
                text,
                0,
                text.len(),
                format!(
                    "more than {} sort keys: a listing sorts by at most that many",
                    query::MAX_SORT_KEYS
                ),
            )
            .about(query::Input::SortKey)
            .into());
        }
        let key = query::parse_sort(text)?;
        let compiled = query::compile_sort_in(dialect, &key, catalog, text)?;
        sql.push_str(&compiled.sql);
        sql.push_str(", ");
        params.extend(compiled.params);
    }
    sql.push_str("runs.start_nanos DESC, runs.id DESC");
    if limited && (selection.limit.is_some() || selection.offset > 0) {
        // No limit is the largest one: every database takes that.
        let n = selection
            .limit
            .map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        sql.push_str(" LIMIT ? OFFSET ?");
        params.push(query::Bound::Integer(n));
        params.push(query::Bound::Integer(
            i64::try_from(selection.offset).unwrap_or(i64::MAX),
        ));
    }
    Ok(query::Compiled {
        sql: dialect.finish(sql),
        params,
    })
}

/// A run from a row of `RUN_COLUMNS, summary`; for a listing, with its
/// summary applied (its place, `at`, goes into `incomplete` when the row has
/// none usable).
fn listed_run(
    row: &rusqlite::Row<'_>,
    listing: bool,
    incomplete: &mut Vec<usize>,
    at: usize,
) -> Result<RunInfo, Error> {
    let mut run = run_row(row)?;
    if listing {
        // Read in place (a listing reads thousands); what is not a blob is
        // no summary, as one that does not decode.
        let blob = row
            .get_ref(crate::read::col::SUMMARY)?
            .as_blob_or_null()
            .ok()
            .flatten();
        if !blob.is_some_and(|b| summary::apply(&mut run, b)) {
            incomplete.push(at);
        }
    }
    Ok(run)
}

/// The slice of `ids` a page asks for.
#[must_use]
pub fn page_of(ids: &[i64], offset: usize, limit: Option<usize>) -> &[i64] {
    let start = offset.min(ids.len());
    let end = limit.map_or(ids.len(), |n| start.saturating_add(n).min(ids.len()));
    &ids[start..end]
}

/// A value the query compiler bound, as SQLite takes it.
fn sql_value(b: query::Bound) -> Sql {
    match b {
        query::Bound::Integer(i) => Sql::Integer(i),
        query::Bound::Real(r) => Sql::Real(r),
        query::Bound::Text(t) => Sql::Text(t),
    }
}
