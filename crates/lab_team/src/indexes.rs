//! The index connections: one [`PgIndex`] is one project's view of the
//! database, so idle ones are kept per project. Used from blocking threads
//! only (the `postgres` client blocks).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use lab_pg::PgIndex;

use crate::error::ApiError;

/// At most this many idle connections are kept per project.
const KEPT: usize = 4;

pub(crate) struct Indexes {
    url: String,
    idle: Mutex<HashMap<String, Vec<PgIndex>>>,
}

impl Indexes {
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Brings the index's schema up to date.
    pub(crate) fn migrate(&self) -> Result<(), lab_store::Error> {
        PgIndex::migrate(&self.url)
    }

    /// An index connection for `project` (made in the database if new).
    pub(crate) fn take(&self, project: &str) -> Result<IndexLease<'_>, ApiError> {
        // An idle connection may have been closed by a restart of the
        // database without the client noticing yet: ask it first.
        let index = loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(project)
                .and_then(Vec::pop);
            match idle {
                Some(i) if i.generation().is_ok() => break i,
                Some(broken) => crate::db::close_off_runtime(broken),
                None => break PgIndex::connect(&self.url, project)?,
            }
        };
        Ok(IndexLease {
            pool: self,
            project: project.to_owned(),
            index: Some(index),
        })
    }
}

impl Drop for Indexes {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        crate::db::close_off_runtime(idle);
    }
}

/// An index connection, given back when dropped (unless its last use
/// failed: the connection may be broken).
pub(crate) struct IndexLease<'a> {
    pool: &'a Indexes,
    project: String,
    index: Option<PgIndex>,
}

impl IndexLease<'_> {
    /// Runs `f` with the connection; a failure of the database closes it.
    pub(crate) fn with<T>(
        &mut self,
        f: impl FnOnce(&mut PgIndex) -> Result<T, lab_store::Error>,
    ) -> Result<T, ApiError> {
        let Some(index) = self.index.as_mut() else {
            return Err(ApiError::Unavailable(
                "the connection to PostgreSQL broke earlier in this request".into(),
            ));
        };
        let result = f(index);
        if let Err(e) = &result
            && matches!(
                e.kind(),
                lab_store::ErrorKind::Storage
                    | lab_store::ErrorKind::Busy
                    | lab_store::ErrorKind::Internal
            )
        {
            self.index = None;
        }
        Ok(result?)
    }
}

impl Drop for IndexLease<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.index.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let kept = idle.entry(std::mem::take(&mut self.project)).or_default();
            if kept.len() < KEPT {
                kept.push(i);
            }
        }
    }
}
