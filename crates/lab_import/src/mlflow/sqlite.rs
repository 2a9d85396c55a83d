//! An MLflow SQLite database (`sqlite:///path/mlflow.db`), read-only: the
//! `experiments` and `runs` tables list the runs; `params`, `tags` and
//! `metrics` (every point, not `latest_metrics`) are read run by run.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{MlRun, Point, listing, pick_experiments, with_local_artifacts};
use crate::{ImportError, Read, Source, SourceRun};

pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    only: Option<String>,
    runs: Vec<MlRun>,
}

impl SqliteStore {
    pub(crate) fn open(uri: &str, path: &Path, only: Option<String>) -> Result<Self, ImportError> {
        let bad = |why: String| {
            ImportError::source(format!(
                "`{uri}` is not an MLflow database Lab can read: {why}"
            ))
        };
        if !path.is_file() {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            return Err(bad(format!("there is no such file: {}", shown.display())));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| bad(e.to_string()))?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(|e| bad(e.to_string()))?;
        for table in ["experiments", "runs", "params", "tags", "metrics"] {
            if !tables.iter().any(|t| t == table) {
                return Err(bad(format!("it has no `{table}` table")));
            }
        }
        Ok(Self {
            conn,
            path: path.to_owned(),
            only,
            runs: Vec::new(),
        })
    }

    fn list(&self) -> rusqlite::Result<Vec<(String, String)>> {
        self.conn
            .prepare(
                "SELECT CAST(experiment_id AS TEXT), name FROM experiments
                 WHERE lifecycle_stage = 'active' ORDER BY experiment_id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }

    fn runs_of(&self, id: &str, name: &str) -> rusqlite::Result<Vec<MlRun>> {
        self.conn
            .prepare(
                "SELECT run_uuid, coalesce(name, ''), coalesce(status, ''), start_time, end_time,
                        coalesce(user_id, ''), coalesce(artifact_uri, '')
                 FROM runs WHERE lifecycle_stage = 'active' AND CAST(experiment_id AS TEXT) = ?1
                 ORDER BY start_time, run_uuid",
            )?
            .query_map([id], |r| {
                Ok(MlRun {
                    experiment_id: id.to_owned(),
                    experiment: name.to_owned(),
                    run_id: r.get(0)?,
                    run_name: r.get(1)?,
                    status: r.get(2)?,
                    start_ms: r.get(3)?,
                    end_ms: r.get(4)?,
                    user: r.get(5)?,
                    artifact_uri: r.get(6)?,
                    ..MlRun::default()
                })
            })?
            .collect()
    }

    fn fill(&self, run: &mut MlRun) -> rusqlite::Result<()> {
        let pairs = |sql: &str| -> rusqlite::Result<Vec<(String, String)>> {
            self.conn
                .prepare(sql)?
                .query_map([&run.run_id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    ))
                })?
                .collect()
        };
        run.params = pairs("SELECT key, value FROM params WHERE run_uuid = ?1 ORDER BY key")?;
        run.tags = pairs("SELECT key, value FROM tags WHERE run_uuid = ?1 ORDER BY key")?;
        let mut stmt = self.conn.prepare(
            "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ?1
             ORDER BY key, timestamp, step",
        )?;
        let mut rows = stmt.query([&run.run_id])?;
        let mut metrics: Vec<(String, Vec<Point>)> = Vec::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let is_nan: bool = r.get::<_, Option<bool>>(4)?.unwrap_or(false);
            let value = if is_nan {
                f64::NAN
            } else {
                r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN)
            };
            let point = (r.get::<_, Option<i64>>(3)?.unwrap_or(0), value, r.get(2)?);
            match metrics.last_mut() {
                Some((k, points)) if *k == key => points.push(point),
                _ => metrics.push((key, vec![point])),
            }
        }
        run.metrics = metrics;
        Ok(())
    }
}

impl Source for SqliteStore {
    fn runs(&mut self) -> Result<Vec<SourceRun>, ImportError> {
        let cannot = |e: rusqlite::Error| {
            ImportError::source(format!(
                "cannot read the MLflow database: {e}: {}",
                self.path.display()
            ))
        };
        let experiments = self.list().map_err(cannot)?;
        let place = self.path.display().to_string();
        let picked = pick_experiments(experiments, self.only.as_deref(), &place)?;
        let mut runs = Vec::new();
        for (id, name) in picked {
            runs.extend(self.runs_of(&id, &name).map_err(cannot)?);
        }
        self.runs = runs;
        Ok(listing(&self.runs))
    }

    fn read(&mut self, run: &SourceRun, _scratch: &Path) -> Result<Read, String> {
        let mut ml = self
            .runs
            .get(run.index)
            .cloned()
            .ok_or_else(|| format!("no run at {}", run.index))?;
        self.fill(&mut ml)
            .map_err(|e| format!("cannot read the run from the database: {e}"))?;
        with_local_artifacts(ml, None)
    }
}
