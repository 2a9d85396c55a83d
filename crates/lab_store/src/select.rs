//! Listing runs with the query language: filter, sort, limit.

use std::fmt::Write as _;

use lab_types::Status;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension};

use crate::cursor::Cursor;
use crate::query::{self, Catalog};
use crate::read::{Detail, RUN_COLUMNS, fill_details, run_row};
use crate::{Error, RunInfo, Store, summary};

/// The column that keys a run in `runs`, and the one that names its run in
/// a row of a per-run table (`metrics`, `params`, ...).
const RUN_KEY: &str = "runs.rid";
const ROW_RUN: &str = "run";

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
    /// Only the runs after this cursor: the `next` of an earlier [`Page`]
    /// of a listing with the same sort keys (keyset paging; `offset` then
    /// counts from there).
    pub after: Option<String>,
    /// How much to load about each.
    pub detail: Detail,
}

/// One page of a listing, and where the next one starts.
#[derive(Clone, Debug)]
pub struct Page {
    /// The page's runs.
    pub runs: Vec<RunInfo>,
    /// The cursor of its last run, for [`Selection::after`] of the next
    /// page: none when the page holds fewer runs than its limit (it is the
    /// last one) or the selection has no limit.
    pub next: Option<String>,
}

impl Store {
    /// The runs `selection` asks for (after its cursor, if it has one),
    /// and the cursor of the next page.
    pub fn page(&self, selection: &Selection) -> Result<Page, Error> {
        self.read(|db| {
            let runs = select(db, selection)?;
            let next = match (selection.limit, runs.last()) {
                (Some(limit), Some(last)) if runs.len() == limit => {
                    Some(cursor_of(db, selection, &last.id.to_string())?)
                }
                _ => None,
            };
            Ok(Page { runs, next })
        })
    }

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
        self.read(|db| Ok((select(db, selection)?, count(db, selection)?)))
    }

    /// How many runs `selection` matches (`limit` and `offset` are not
    /// applied), counted in the index without reading any run.
    pub fn count(&self, selection: &Selection) -> Result<usize, Error> {
        self.read(|db| count(db, selection))
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

/// The dialect of a statement over the runs `selection` matches, `every`
/// one of them or a page: one visiting every run reads its numeric tests
/// of keys from the keys' indexes of values ([`query::ByValueIndex`]), but
/// not when an experiment or statuses narrow the runs first, where a few
/// lookups cost less than a key's whole range.
fn dialect_for(selection: &Selection, every: bool) -> &'static dyn query::Dialect {
    const WHOLE: query::ByValueIndex<'static> = query::ByValueIndex(&query::Sqlite);
    if every && selection.experiment.is_none() && selection.statuses.is_empty() {
        &WHOLE
    } else {
        &query::Sqlite
    }
}

/// [`Store::count`] on the index open on `conn`.
pub(crate) fn count(conn: &Connection, selection: &Selection) -> Result<usize, Error> {
    let catalog = catalog(conn)?;
    let (conditions, params) = conditions_in(dialect_for(selection, true), selection, &catalog)?;
    let mut values = params.into_iter().map(sql_value);
    // Tests of keys' values alone: count the runs of their ranges of the
    // keys' indexes rather than look up each run they name in the (much
    // larger) runs table.
    let n: i64 = match conditions
        .strip_prefix("1 = 1 AND ")
        .and_then(query::memberships)
        .as_deref()
    {
        Some([runs]) => conn
            .prepare(&format!("SELECT count(*) FROM ({runs})"))?
            .query_row(rusqlite::params_from_iter(values), |r| r.get(0))?,
        Some(tests) => return runs_in_all(conn, tests, &mut values),
        _ => conn
            .prepare(&format!("SELECT count(*) FROM runs WHERE {conditions}"))?
            .query_row(rusqlite::params_from_iter(values), |r| r.get(0))?,
    };
    Ok(usize::try_from(n).unwrap_or(0))
}

/// How many runs every one of `tests` gives (statements of
/// [`query::memberships`], each giving a run once), with `values` bound to
/// their `?` in order. Each range is read on its own and the runs kept in
/// order: SQLite would instead look each run of one range up in a table it
/// builds of the other (1.5 s for two ranges of half a million runs).
fn runs_in_all(
    conn: &Connection,
    tests: &[&str],
    values: &mut impl Iterator<Item = Sql>,
) -> Result<usize, Error> {
    let mut kept: Option<Vec<i64>> = None;
    for test in tests {
        let bound: Vec<Sql> = values.by_ref().take(test.matches('?').count()).collect();
        let mut stmt = conn.prepare_cached(test)?;
        let mut runs = stmt
            .query_map(rusqlite::params_from_iter(bound), |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        runs.sort_unstable();
        kept = Some(match kept {
            None => runs,
            Some(mut kept) => {
                kept.retain(|run| runs.binary_search(run).is_ok());
                kept
            }
        });
        if kept.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
    }
    Ok(kept.map_or(0, |k| k.len()))
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
    ids(conn, selection, false)
}

/// The row ids of the page of runs `selection` asks for (its `limit` and
/// `offset` applied), in its order.
pub(crate) fn page_ids(conn: &Connection, selection: &Selection) -> Result<Vec<i64>, Error> {
    ids(conn, selection, true)
}

fn ids(conn: &Connection, selection: &Selection, limited: bool) -> Result<Vec<i64>, Error> {
    let (sql, params) = selection_sql(conn, selection, true, limited)?;
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
    let narrow = if limited {
        narrowing(conn, selection, &catalog)?
    } else {
        None
    };
    let compiled = selection_sql_with(
        dialect_for(selection, !limited || selection.limit.is_none()),
        &head,
        selection,
        &catalog,
        limited,
        narrow.as_ref(),
    )?;
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
    selection_sql_with(dialect, head, selection, catalog, limited, None)
}

/// [`selection_sql_in`], keeping only the runs `narrow` keeps (which must
/// hold every run of the page asked for).
fn selection_sql_with(
    dialect: &dyn query::Dialect,
    head: &str,
    selection: &Selection,
    catalog: &Catalog,
    limited: bool,
    narrow: Option<&Narrow>,
) -> Result<query::Compiled, Error> {
    let (conditions, mut params) = conditions_in(dialect, selection, catalog)?;
    let mut sql = format!("{head} WHERE {conditions}");
    if let Some((after, values)) = after_in(dialect, selection, catalog)? {
        sql.push_str(" AND ");
        sql.push_str(&after);
        params.extend(values);
    }
    if let Some(n) = narrow {
        let _ = write!(
            sql,
            " AND {RUN_KEY} IN (SELECT {ROW_RUN} FROM {} WHERE key = ? AND {} {} ?",
            n.table, n.column, n.op
        );
        params.push(query::Bound::Text(n.key.clone()));
        params.push(query::Bound::Real(n.threshold));
        if let Some((op, from)) = n.from {
            let _ = write!(sql, " AND {} {op} ?", n.column);
            params.push(query::Bound::Real(from));
        }
        sql.push(')');
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

/// What `selection` keeps whatever its order: its experiment, statuses and
/// filter, as SQL after `WHERE` (in `dialect`) and the values it binds.
fn conditions_in(
    dialect: &dyn query::Dialect,
    selection: &Selection,
    catalog: &Catalog,
) -> Result<(String, Vec<query::Bound>), Error> {
    let mut sql = "1 = 1".to_owned();
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
    Ok((sql, params))
}

/// The terms `selection` orders runs by, first one first, each with its
/// direction (largest first): its sort keys' values, then the start time
/// and the id, newest first.
fn order_terms(
    dialect: &dyn query::Dialect,
    selection: &Selection,
    catalog: &Catalog,
) -> Result<Vec<(query::Compiled, bool)>, Error> {
    let mut terms = Vec::new();
    for text in selection.sort.iter().take(query::MAX_SORT_KEYS) {
        let key = query::parse_sort(text)?;
        for term in query::sort_terms_in(dialect, &key, catalog, text)? {
            terms.push((term, key.descending));
        }
    }
    for column in ["runs.start_nanos", "runs.id"] {
        terms.push((
            query::Compiled {
                sql: column.to_owned(),
                params: Vec::new(),
            },
            true,
        ));
    }
    Ok(terms)
}

/// For a selection with a cursor: the condition that a run comes after
/// the cursor's in the selection's order, as SQL and its values.
fn after_in(
    dialect: &dyn query::Dialect,
    selection: &Selection,
    catalog: &Catalog,
) -> Result<Option<(String, Vec<query::Bound>)>, Error> {
    let Some(text) = &selection.after else {
        return Ok(None);
    };
    let cursor = Cursor::decode(text, &selection.sort)?;
    let terms = order_terms(dialect, selection, catalog)?;
    if cursor.keys.len() != terms.len() {
        return Err(Error::BadCursor {
            shown: text.chars().take(40).collect(),
            reason: format!(
                "it holds {} values where this listing orders by {}",
                cursor.keys.len(),
                terms.len()
            ),
        });
    }
    // From the last term back: after the cursor on term i is beyond its
    // value there (a missing value is beyond any value), or equal to it and
    // after the cursor on the terms that follow.
    let mut sql = "1 = 0".to_owned();
    let mut params: Vec<query::Bound> = Vec::new();
    for ((term, descending), value) in terms.iter().zip(&cursor.keys).rev() {
        let t = &term.sql;
        let bound = match value {
            Sql::Null => None,
            Sql::Integer(i) => Some(query::Bound::Integer(*i)),
            Sql::Real(f) => Some(query::Bound::Real(*f)),
            Sql::Text(s) => Some(query::Bound::Text(s.clone())),
            Sql::Blob(_) => {
                return Err(Error::BadCursor {
                    shown: text.chars().take(40).collect(),
                    reason: "it holds a value no listing sorts by".into(),
                });
            }
        };
        let mut next = Vec::new();
        match bound {
            None => {
                sql = format!("({t} IS NULL AND {sql})");
                next.extend(term.params.iter().cloned());
            }
            Some(v) => {
                let beyond = if *descending { "<" } else { ">" };
                sql = format!("({t} {beyond} ? OR {t} IS NULL OR ({t} = ? AND {sql}))");
                next.extend(term.params.iter().cloned());
                next.push(v.clone());
                next.extend(term.params.iter().cloned());
                next.extend(term.params.iter().cloned());
                next.push(v);
            }
        }
        next.extend(params);
        params = next;
    }
    if selection.sort.is_empty() {
        // Newest first: the start time's index finds the place at once.
        if let Some(Sql::Integer(start)) = cursor.keys.first() {
            sql = format!("runs.start_nanos <= ? AND {sql}");
            params.insert(0, query::Bound::Integer(*start));
        }
    }
    Ok(Some((sql, params)))
}

/// The cursor of run `id` in `selection`'s order.
fn cursor_of(conn: &Connection, selection: &Selection, id: &str) -> Result<String, Error> {
    let catalog = catalog(conn)?;
    let terms = order_terms(&query::Sqlite, selection, &catalog)?;
    let columns: Vec<&str> = terms.iter().map(|(t, _)| t.sql.as_str()).collect();
    let mut values: Vec<Sql> = terms
        .iter()
        .flat_map(|(t, _)| t.params.iter().cloned().map(sql_value))
        .collect();
    values.push(Sql::Text(id.to_owned()));
    let keys: Vec<Sql> = conn
        .prepare(&format!(
            "SELECT {} FROM runs WHERE runs.id = ?",
            columns.join(", ")
        ))?
        .query_row(rusqlite::params_from_iter(values), |row| {
            (0..columns.len()).map(|i| row.get::<_, Sql>(i)).collect()
        })?;
    Ok(Cursor {
        sort: selection.sort.clone(),
        keys,
    }
    .encode())
}

/// The SQL (in `dialect`) that reads, for the run whose full id is bound
/// last, the values `selection` orders runs by: `with` (table definitions,
/// or nothing) then a `SELECT` of one column per term over `runs`. The
/// values returned are the params of the terms; bind the run's id after
/// them. [`cursor_text`] makes the cursor of the row read. An index other
/// than SQLite's makes its pages' `next` with this, as [`Store::page`]
/// does.
pub fn cursor_sql_in(
    dialect: &dyn query::Dialect,
    with: &str,
    selection: &Selection,
    catalog: &Catalog,
) -> Result<query::Compiled, Error> {
    let terms = order_terms(dialect, selection, catalog)?;
    let columns: Vec<&str> = terms.iter().map(|(t, _)| t.sql.as_str()).collect();
    Ok(query::Compiled {
        sql: dialect.finish(format!(
            "{with}SELECT {} FROM runs WHERE runs.id = ?",
            columns.join(", ")
        )),
        params: terms.into_iter().flat_map(|(t, _)| t.params).collect(),
    })
}

/// The cursor of a run whose values of `selection`'s order terms (read with
/// [`cursor_sql_in`]) are `keys`, `None` for a missing one.
#[must_use]
pub fn cursor_text(selection: &Selection, keys: Vec<Option<query::Bound>>) -> String {
    Cursor {
        sort: selection.sort.clone(),
        keys: keys
            .into_iter()
            .map(|k| match k {
                None => Sql::Null,
                Some(query::Bound::Integer(i)) => Sql::Integer(i),
                Some(query::Bound::Real(f)) => Sql::Real(f),
                Some(query::Bound::Text(t)) => Sql::Text(t),
            })
            .collect(),
    }
    .encode()
}

/// Refuses a cursor that is not one made for a listing sorted by `sort`
/// ([`Error::BadCursor`]), before any index is asked: the checks a cursor
/// passes whatever the index.
pub fn check_cursor(text: &str, sort: &[String]) -> Result<(), Error> {
    Cursor::decode(text, sort).map(drop)
}

/// Where a page of a listing sorted first by a metric or a parameter can
/// be: runs whose value of that key is at least (largest first) or at most
/// `threshold`.
struct Narrow {
    table: &'static str,
    column: &'static str,
    key: String,
    op: &'static str,
    threshold: f64,
    /// After a cursor: where the runs after it start (`<=` or `>=` its
    /// run's value), so that a page deep in the listing sorts only itself.
    from: Option<(&'static str, f64)>,
}

/// For a listing with a limit whose first sort key is a metric's last value
/// or a parameter's number: the value of that key that the page's last run
/// can have at most (largest first) or at least, read from the index on the
/// key's values, and so which runs the listing can leave out before it
/// sorts. Every run with a value beyond it sorts after at least `offset +
/// limit` runs that match (a run without a value, last of all), so the
/// page is the one the whole sort gives, ties and all; without that many
/// runs with a value, nothing is left out. Sorting every matching run by a
/// key looked up run by run took most of the time of such a listing.
fn narrowing(
    conn: &Connection,
    selection: &Selection,
    catalog: &Catalog,
) -> Result<Option<Narrow>, Error> {
    let Some((sql, values, narrow)) = narrowing_query(selection, catalog)? else {
        return Ok(None);
    };
    let threshold: Option<f64> = conn
        .prepare(&sql)?
        .query_row(rusqlite::params_from_iter(values), |r| r.get(0))
        .optional()?;
    Ok(threshold.map(|threshold| Narrow {
        threshold,
        ..narrow
    }))
}

/// The statement that reads [`narrowing`]'s threshold, its values, and the
/// narrowing it is for (threshold not yet known), if `selection` has one.
fn narrowing_query(
    selection: &Selection,
    catalog: &Catalog,
) -> Result<Option<(String, Vec<Sql>, Narrow)>, Error> {
    let (Some(first), Some(limit)) = (selection.sort.first(), selection.limit) else {
        return Ok(None);
    };
    let Some(last) = selection
        .offset
        .checked_add(limit)
        .and_then(|n| n.checked_sub(1))
    else {
        return Ok(None);
    };
    // In the main statement's order, so that input with several faults
    // gets the error it would get without this.
    let (mut conditions, mut params) = conditions_in(&query::Sqlite, selection, catalog)?;
    if let Some((after, values)) = after_in(&query::Sqlite, selection, catalog)? {
        let _ = write!(conditions, " AND {after}");
        params.extend(values);
    }
    let key = query::parse_sort(first)?;
    let (table, column) = match catalog.scope_of(&key.name, first) {
        Ok(query::Scope::Metrics) => ("metrics", "last"),
        Ok(query::Scope::Params) => ("params", "num"),
        // Errors are the main statement's to report, with its context.
        _ => return Ok(None),
    };
    let (dir, op) = if key.descending {
        ("DESC", ">=")
    } else {
        ("ASC", "<=")
    };
    let mut from = None;
    if let Some(cursor) = &selection.after {
        // After a cursor, the walk starts at its run's value.
        if let Some(Sql::Real(v)) = Cursor::decode(cursor, &selection.sort)?.keys.first() {
            from = Some((if key.descending { "<=" } else { ">=" }, *v));
        }
    }
    let walk_from = match from {
        Some((op, v)) => {
            params.push(query::Bound::Real(v));
            format!(" AND k.{column} {op} ?")
        }
        None => String::new(),
    };
    // The key's index first (`CROSS JOIN` keeps that order), each run it
    // names tested against the conditions, until the page's last one.
    let sql = format!(
        "SELECT k.{column} FROM {table} AS k CROSS JOIN runs ON {RUN_KEY} = k.{ROW_RUN} \
         WHERE k.key = ? AND k.{column} IS NOT NULL AND {conditions}{walk_from} \
         ORDER BY k.{column} {dir} LIMIT 1 OFFSET ?"
    );
    let mut values = vec![Sql::Text(key.name.key.clone())];
    values.extend(params.into_iter().map(sql_value));
    values.push(Sql::Integer(i64::try_from(last).unwrap_or(i64::MAX)));
    let narrow = Narrow {
        table,
        column,
        key: key.name.key,
        op,
        threshold: 0.0,
        from,
    };
    Ok(Some((sql, values, narrow)))
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
        if blob.is_some_and(|b| summary::apply(&mut run, b)) {
            // The attributes the row's columns hold alone.
            let columns = crate::fields::column_attrs(row, crate::read::col::ATTRS, &run.short_id)?;
            crate::fields::add_column_attrs(&mut run.attrs, columns);
        } else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str, values: Vec<Sql>) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params_from_iter(values), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("; ")
    }

    #[test]
    fn a_page_sorted_by_a_metric_or_a_parameter_is_found_through_their_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&conn).unwrap();
        let mut catalog = Catalog::default();
        catalog.metrics.insert("loss".into());
        catalog.params.insert("lr".into());
        for (sort, index) in [
            ("-loss", "metrics_key_last"),
            ("loss", "metrics_key_last"),
            ("params.lr", "params_key_num"),
            ("-lr", "params_key_num"),
        ] {
            let selection = Selection {
                sort: vec![sort.into(), "-start_time".into()],
                filter: Some("lr > 0.1".into()),
                limit: Some(50),
                offset: 100,
                ..Selection::default()
            };
            let (sql, values, mut narrow) = narrowing_query(&selection, &catalog).unwrap().unwrap();
            let threshold = plan(&conn, &sql, values);
            assert!(
                threshold.contains(&format!("SEARCH k USING COVERING INDEX {index}"))
                    && !threshold.contains("TEMP B-TREE"),
                "{sort}: {threshold}"
            );
            narrow.threshold = 0.5;
            let head = "SELECT runs.rowid FROM runs";
            let page = selection_sql_with(
                &query::Sqlite,
                head,
                &selection,
                &catalog,
                true,
                Some(&narrow),
            )
            .unwrap();
            let values: Vec<Sql> = page.params.into_iter().map(sql_value).collect();
            let page = plan(&conn, &page.sql, values);
            assert!(
                page.contains("SEARCH runs USING INTEGER PRIMARY KEY (rowid=?)")
                    && page.contains(&format!("USING COVERING INDEX {index}")),
                "{sort}: {page}"
            );
        }
        let unsorted = Selection {
            limit: Some(50),
            ..Selection::default()
        };
        assert!(narrowing_query(&unsorted, &catalog).unwrap().is_none());
    }

    #[test]
    fn a_count_of_tests_of_keys_values_reads_only_their_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&conn).unwrap();
        conn.execute_batch(
            "
            INSERT INTO runs (rid, id, short_id, experiment, status, start_nanos, journal_offset)
                VALUES (1, 'aa', 'aa', 'e', 'finished', 1, 0), (2, 'bb', 'bb', 'f', 'failed', 2, 0),
                       (3, 'cc', 'cc', 'e', 'finished', 3, 0);
            INSERT INTO metrics VALUES (1, 'loss', 0, 0.2, NULL, 0, 0.2, 0.2, 1),
                (2, 'loss', 0, 0.7, NULL, 0, 0.7, 0.7, 1), (3, 'acc', 0, 0.9, NULL, 0, 0.9, 0.9, 1);
            INSERT INTO params VALUES (1, 'lr', 0, x'', '0.1', 0.1), (2, 'lr', 0, x'', '0.01', 0.01);
            INSERT INTO names VALUES ('metrics', 'loss'), ('metrics', 'acc'), ('params', 'lr');
            ",
        )
        .unwrap();
        let counted = |filter: &str, experiment: Option<&str>| {
            let selection = Selection {
                filter: Some(filter.into()),
                experiment: experiment.map(str::to_owned),
                ..Selection::default()
            };
            count(&conn, &selection).unwrap()
        };
        assert_eq!(counted("loss > 0.1", None), 2);
        assert_eq!(counted("loss > 0.5", None), 1);
        assert_eq!(counted("lr < 0.05", None), 1);
        assert_eq!(counted("lr >= 0", None), 2);
        assert_eq!(counted("acc < 0", None), 0);
        assert_eq!(counted("loss > 0.1", Some("e")), 1);
        assert_eq!(counted("loss > 0.1 and lr > 0.05", None), 1);
        assert_eq!(counted("loss > 0.1 and lr > 0.001", None), 2);
        assert_eq!(counted("lr > 0.001 and loss > 0.5", None), 1);
        assert_eq!(counted("loss > 0.1 and lr > 0.05 and acc > 0", None), 0);
        assert_eq!(counted("loss > 0.1 and (lr > 0.05 or acc > 0)", None), 1);
        assert_eq!(counted("loss > 0.5 and lr > 0.001", Some("e")), 0);
        // As many tests as a filter may hold.
        for n in [2, 3, 1_000] {
            assert_eq!(
                counted(&vec!["loss > 0.1"; n].join(" and "), None),
                2,
                "{n}"
            );
        }
        let sql = "(runs.rid IN (SELECT run FROM metrics WHERE key = ? AND last > ?) \
                   AND runs.rid IN (SELECT run FROM params WHERE key = ? AND num > ?))";
        let [first, second] = query::memberships(sql).unwrap()[..] else {
            panic!("two memberships in {sql}");
        };
        // Each test reads its key's index alone, never `runs`.
        for (test, key, value, index) in [
            (first, "loss", 0.1, "metrics_key_last"),
            (second, "lr", 0.001, "params_key_num"),
        ] {
            let read = plan(&conn, test, vec![Sql::Text(key.into()), Sql::Real(value)]);
            assert!(
                read.contains(&format!("COVERING INDEX {index}")) && !read.contains("runs"),
                "{read}"
            );
            let read = plan(
                &conn,
                &format!("SELECT count(*) FROM ({test})"),
                vec![Sql::Text(key.into()), Sql::Real(value)],
            );
            assert!(
                read.contains(&format!("COVERING INDEX {index}")) && !read.contains("runs"),
                "{read}"
            );
        }
    }
}
