//! Listing runs with the query language: filter, sort, limit.

use std::fmt::Write as _;

use lab_types::Status;
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
        let mut c = Catalog::default();
        let mut stmt = self.conn.prepare_cached("SELECT scope, key FROM names")?;
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

    /// The runs `selection` asks for, with everything indexed about them.
    /// Call [`Store::refresh`] first for up-to-date results.
    pub fn select(&self, selection: &Selection) -> Result<Vec<RunInfo>, Error> {
        Ok(self.select_inner(selection, false)?.0)
    }

    /// One page of the runs `selection` asks for (`offset`, `limit`), and how
    /// many runs match in all.
    pub fn select_page(&self, selection: &Selection) -> Result<(Vec<RunInfo>, usize), Error> {
        self.select_inner(selection, true)
    }

    fn select_inner(
        &self,
        selection: &Selection,
        count: bool,
    ) -> Result<(Vec<RunInfo>, usize), Error> {
        let catalog = self.catalog()?;
        // With sort keys, first the ids, filtered, sorted and cut (sorting
        // whole rows would carry every summary through the sort), then the
        // rows. Without, the newest-first order comes from an index and the
        // rows are read in one pass.
        // Counting needs every matching id, so it takes the first way too.
        let two_phase = !selection.sort.is_empty() || count;
        let mut sql = if two_phase {
            "SELECT runs.rowid FROM runs WHERE 1".to_owned()
        } else {
            format!("SELECT {RUN_COLUMNS}, summary FROM runs WHERE 1")
        };
        let mut params: Vec<Sql> = Vec::new();
        if let Some(e) = &selection.experiment {
            sql.push_str(" AND runs.experiment = ?");
            params.push(Sql::Text(e.clone()));
        }
        if !selection.statuses.is_empty() {
            let _ = write!(
                sql,
                " AND runs.status IN ({})",
                vec!["?"; selection.statuses.len()].join(", ")
            );
            params.extend(
                selection
                    .statuses
                    .iter()
                    .map(|s| Sql::Text(s.as_str().to_owned())),
            );
        }
        if let Some(text) = selection.filter.as_deref().filter(|t| !t.trim().is_empty()) {
            let expr = query::parse(text)?;
            let compiled = query::compile_where(&expr, &catalog, text)?;
            sql.push_str(" AND ");
            sql.push_str(&compiled.sql);
            params.extend(compiled.params);
        }
        sql.push_str(" ORDER BY ");
        for text in &selection.sort {
            let key = query::parse_sort(text)?;
            let compiled = query::compile_sort(&key, &catalog, text)?;
            sql.push_str(&compiled.sql);
            sql.push_str(", ");
            params.extend(compiled.params);
        }
        sql.push_str("runs.start_nanos DESC, runs.id DESC");
        if !count && (selection.limit.is_some() || selection.offset > 0) {
            let n = selection
                .limit
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            sql.push_str(" LIMIT ? OFFSET ?");
            params.push(Sql::Integer(n));
            params.push(Sql::Integer(
                i64::try_from(selection.offset).unwrap_or(i64::MAX),
            ));
        }
        let listing = selection.detail == Detail::Listing;
        let mut complete = true;
        let mut runs: Vec<RunInfo> = Vec::new();
        let mut total = 0;
        let mut take = |row: &rusqlite::Row<'_>| -> Result<(), Error> {
            let mut run = run_row(row)?;
            if listing {
                let blob: Option<Vec<u8>> = row.get(11)?;
                complete &= blob.is_some_and(|b| summary::apply(&mut run, &b));
            }
            runs.push(run);
            Ok(())
        };
        if two_phase {
            let rowids: Vec<i64> = self
                .conn
                .prepare(&sql)?
                .query_map(rusqlite::params_from_iter(params), |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            total = rowids.len();
            let page = rowids
                .into_iter()
                .skip(if count { selection.offset } else { 0 })
                .take(if count {
                    selection.limit.unwrap_or(usize::MAX)
                } else {
                    usize::MAX
                });
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS}, summary FROM runs WHERE rowid = ?1"
            ))?;
            for rowid in page {
                let mut rows = stmt.query([rowid])?;
                if let Some(row) = rows.next()? {
                    take(row)?;
                }
            }
        } else {
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
            while let Some(row) = rows.next()? {
                take(row)?;
            }
        }
        // Full details, or a listing from an index older than summaries.
        if !listing || !complete {
            for run in &mut runs {
                run.attrs.clear();
                run.params.clear();
                run.metrics.clear();
                run.tags.clear();
            }
            fill_details(&self.conn, &mut runs, selection.detail)?;
        }
        if !two_phase {
            total = runs.len();
        }
        Ok((runs, total))
    }
}
