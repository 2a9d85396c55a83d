//! The fold's side of the index in PostgreSQL: what it asks
//! ([`FoldIndex`]'s questions) and what it writes, one function per family
//! of records (the run itself, attributes, parameters, metrics, tags,
//! artifacts, models, the end), then the run's status verdict and progress,
//! as `lab_store`'s SQLite writer does. What is decided the same way in any
//! database (the damage note, the settled status, how a parameter is kept)
//! comes from `lab_store::index`.
//!
//! Each fold is one transaction holding an advisory lock on its run, so two
//! servers folding one run take turns, and the second finds the first's
//! progress and starts again from there: a stretch of journal is never
//! counted twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use lab_store::index::{
    Delta, FoldIndex, FoldWrite, Indexed, UNKNOWN_EXPERIMENT, Written, damage_note, encode_value,
    lost_start_id, param_columns, real, settled_status, slot_nanos, vanished,
};
use lab_store::{Error, Project};
use lab_types::{Status, Value};
use postgres::{Client, GenericClient, Transaction};

use crate::{Pg as _, PgIndex, text};

/// What the index holds of run `short_id` of project `project`.
fn indexed(
    c: &mut impl GenericClient,
    project: i32,
    short_id: &str,
) -> Result<Option<Indexed>, Error> {
    Ok(c.query_opt(
        "SELECT id, journal_offset, complete FROM lab.runs WHERE project_id = $1 AND short_id = $2",
        &[&project, &short_id],
    )
    .pg()?
    .map(|r| Indexed {
        id: r.get(0),
        offset: r.get::<_, i64>(1) as u64,
        complete: r.get(2),
    }))
}

fn metric_names(
    c: &mut impl GenericClient,
    project: i32,
    id: &str,
) -> Result<HashMap<u32, String>, Error> {
    Ok(c.query(
        "SELECT key_id, name FROM lab.metric_keys WHERE project_id = $1 AND run_id = $2",
        &[&project, &id],
    )
    .pg()?
    .into_iter()
    .map(|r| (r.get::<_, i64>(0) as u32, r.get(1)))
    .collect())
}

/// Moves the project's generation on; inside the transaction that changes
/// its runs.
fn bump_generation(tx: &mut Transaction<'_>, project: i32) -> Result<(), Error> {
    tx.execute(
        "UPDATE lab.projects SET generation = generation + 1 WHERE id = $1",
        &[&project],
    )
    .pg()?;
    Ok(())
}

impl FoldIndex for PgIndex {
    fn indexed(&self, short_id: &str) -> Result<Option<Indexed>, Error> {
        indexed(&mut *self.client.borrow_mut(), self.project, short_id)
    }

    fn metric_names(&self, id: &str) -> Result<HashMap<u32, String>, Error> {
        metric_names(&mut *self.client.borrow_mut(), self.project, id)
    }

    fn attr(&self, id: &str, key: &str) -> Result<Option<Value>, Error> {
        let row = self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT value FROM lab.attrs WHERE project_id = $1 AND run_id = $2 AND key = $3",
                &[&self.project, &id, &key],
            )
            .pg()?;
        Ok(row.map(|r| lab_store::index::decode_value(r.get(0))))
    }

    fn write_fold(
        &mut self,
        expected: Option<&Indexed>,
        write: &FoldWrite<'_>,
        cut_tail: &mut dyn FnMut() -> Option<PathBuf>,
    ) -> Result<Written, Error> {
        let project = self.project;
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction().pg()?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&project, &write.short_id],
        )
        .pg()?;
        let now = indexed(&mut tx, project, write.short_id)?;
        let progress = |i: Option<&Indexed>| i.map(|i| (i.offset, i.complete));
        if progress(now.as_ref()) != progress(expected) {
            // Someone else folded these bytes meanwhile (or, finding no new
            // record, settled the run and cut its tail).
            return Ok(Written::Raced);
        }
        let kept = cut_tail();
        Fold {
            tx: &mut tx,
            project,
            id: write.id,
            names: BTreeSet::new(),
        }
        .write(write, kept.as_deref())?;
        bump_generation(&mut tx, project)?;
        tx.commit().pg()?;
        Ok(Written::Done { kept })
    }

    fn write_unreadable(&mut self, short_id: &str, reason: &str) -> Result<(), Error> {
        let project = self.project;
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction().pg()?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&project, &short_id],
        )
        .pg()?;
        if indexed(&mut tx, project, short_id)?.is_none() {
            let reason = format!("nothing in the journal can be read: {reason}");
            tx.execute(
                "INSERT INTO lab.runs (project_id, id, short_id, experiment, status, start_nanos, journal_offset, complete, damage)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, true, $7)",
                &[
                    &project,
                    &lost_start_id(short_id),
                    &short_id,
                    &UNKNOWN_EXPERIMENT,
                    &Status::Damaged.as_str(),
                    &slot_nanos(short_id),
                    &text(&reason).as_ref(),
                ],
            )
            .pg()?;
            bump_generation(&mut tx, project)?;
        }
        tx.commit().pg()
    }

    fn complete_runs(&self) -> Result<HashSet<String>, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query(
                "SELECT short_id FROM lab.runs WHERE project_id = $1 AND complete",
                &[&self.project],
            )
            .pg()?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn any_incomplete(&self) -> Result<bool, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM lab.runs WHERE project_id = $1 AND NOT complete)",
                &[&self.project],
            )
            .pg()?
            .get(0))
    }

    fn settled_dir_mtime(&self) -> Result<Option<i64>, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query_one(
                "SELECT runs_dir_mtime FROM lab.projects WHERE id = $1",
                &[&self.project],
            )
            .pg()?
            .get(0))
    }

    fn set_settled_dir_mtime(&mut self, mtime: Option<i64>) -> Result<(), Error> {
        self.client
            .borrow_mut()
            .execute(
                "UPDATE lab.projects SET runs_dir_mtime = $2 WHERE id = $1",
                &[&self.project, &mtime],
            )
            .pg()?;
        Ok(())
    }

    fn forget_vanished(
        &mut self,
        project: &Project,
        complete_vanished: bool,
        listed_pending: &[String],
    ) -> Result<(), Error> {
        let sql = if complete_vanished {
            "SELECT id, short_id FROM lab.runs WHERE project_id = $1"
        } else {
            "SELECT id, short_id FROM lab.runs WHERE project_id = $1 AND NOT complete"
        };
        let mut client = self.client.borrow_mut();
        let gone: Vec<String> = client
            .query(sql, &[&self.project])
            .pg()?
            .into_iter()
            .filter(|r| vanished(project, r.get(1), listed_pending))
            .map(|r| r.get(0))
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let mut tx = client.transaction().pg()?;
        // Every per-run row goes with its run (foreign keys cascade).
        tx.execute(
            "DELETE FROM lab.runs WHERE project_id = $1 AND id = ANY($2)",
            &[&self.project, &gone],
        )
        .pg()?;
        forget_unused_names(&mut tx, self.project)?;
        bump_generation(&mut tx, self.project)?;
        tx.commit().pg()
    }
}

/// Drops the names (of metrics, parameters and tags) no run of the project
/// has any more, so that queries no longer offer them.
fn forget_unused_names(tx: &mut Transaction<'_>, project: i32) -> Result<(), Error> {
    for (scope, table) in [
        ("metrics", "metrics"),
        ("params", "params"),
        ("tags", "tags"),
    ] {
        tx.execute(
            &format!(
                "DELETE FROM lab.names n WHERE n.project_id = $1 AND n.scope = $2
                 AND NOT EXISTS (SELECT 1 FROM lab.{table} t WHERE t.project_id = $1 AND t.key = n.key)"
            ),
            &[&project, &scope],
        )
        .pg()?;
    }
    Ok(())
}

/// Deletes every run of project `project` (see [`PgIndex::clear`]).
pub(crate) fn clear(client: &mut Client, project: i32) -> Result<(), Error> {
    let mut tx = client.transaction().pg()?;
    tx.execute("DELETE FROM lab.runs WHERE project_id = $1", &[&project])
        .pg()?;
    tx.execute("DELETE FROM lab.names WHERE project_id = $1", &[&project])
        .pg()?;
    tx.execute(
        "UPDATE lab.projects SET runs_dir_mtime = NULL WHERE id = $1",
        &[&project],
    )
    .pg()?;
    bump_generation(&mut tx, project)?;
    tx.commit().pg()
}

/// One fold of one run, written inside its transaction.
struct Fold<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    project: i32,
    id: &'t str,
    /// The names of metrics, parameters and tags seen, as `(scope, key)`:
    /// remembered at the end, in order, so that two folds never wait on
    /// each other's names in opposite orders.
    names: BTreeSet<(&'static str, String)>,
}

impl Fold<'_, '_> {
    fn write(mut self, w: &FoldWrite<'_>, kept: Option<&Path>) -> Result<(), Error> {
        let d = w.delta;
        self.run_row(w.short_id, d)?;
        self.attrs(&d.attrs)?;
        if let Some(features) = &d.features {
            let blob = encode_value(&Value::List(features.clone()));
            self.exec(
                "UPDATE lab.runs SET features = $3 WHERE project_id = $1 AND id = $2",
                &[&blob],
            )?;
        }
        self.params(d)?;
        self.metrics(d)?;
        self.tags(&d.tags)?;
        self.artifacts(d)?;
        self.models(d)?;
        self.end(d)?;
        self.remember_names()?;
        let earlier: Option<String> = self
            .tx
            .query_opt(
                "SELECT damage FROM lab.runs WHERE project_id = $1 AND id = $2",
                &[&self.project, &self.id],
            )
            .pg()?
            .and_then(|r| r.get(0));
        let note = damage_note(earlier, &w.folded, kept, &w.paths.journal)?;
        if w.folded.settled {
            let verdict = settled_status(d, &w.folded, note.is_some());
            self.exec(
                "UPDATE lab.runs SET status = $3 WHERE project_id = $1 AND id = $2 AND status = 'running'",
                &[&verdict.as_str()],
            )?;
        }
        let note = note.as_deref().map(text);
        self.exec(
            "UPDATE lab.runs SET journal_offset = $3, complete = $4, damage = $5 WHERE project_id = $1 AND id = $2",
            &[&(w.folded.end_offset as i64), &w.folded.settled, &note.as_deref()],
        )
    }

    /// Runs `sql` with the project and the run's id as `$1` and `$2`, then
    /// `rest`.
    fn exec(
        &mut self,
        sql: &str,
        rest: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<(), Error> {
        let mut all: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&self.project, &self.id];
        all.extend_from_slice(rest);
        self.tx.execute(sql, &all).pg()?;
        Ok(())
    }

    /// The run's row, made when its Start record (or, lost, its folder) is read.
    fn run_row(&mut self, short_id: &str, d: &Delta) -> Result<(), Error> {
        let (experiment, time) = match (&d.start, &d.lost_start) {
            (Some(start), _) => (start.experiment.as_str(), start.time_nanos),
            (None, Some((_, time))) => (UNKNOWN_EXPERIMENT, *time),
            (None, None) => return Ok(()),
        };
        self.exec(
            "INSERT INTO lab.runs (project_id, id, short_id, experiment, status, start_nanos, journal_offset)
             VALUES ($1, $2, $3, $4, 'running', $5, 0) ON CONFLICT DO NOTHING",
            &[&short_id, &text(experiment).as_ref(), &time],
        )
    }

    /// Attributes, and the `runs` columns the field table copies some into.
    fn attrs(&mut self, attrs: &[(String, Value)]) -> Result<(), Error> {
        for (key, value) in attrs {
            self.exec(
                "INSERT INTO lab.attrs (project_id, run_id, key, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (project_id, run_id, key) DO UPDATE SET value = excluded.value",
                &[&text(key).as_ref(), &encode_value(value)],
            )?;
            let Some((_, column)) = lab_store::fields::attr_columns().find(|(a, _)| a == key)
            else {
                continue;
            };
            // As SQLite keeps them: a boolean as 1 or 0, else the value's text.
            let shown: Option<String> = match value {
                Value::Bool(b) => Some(u8::from(*b).to_string()),
                Value::Null => None,
                other => Some(text(&other.to_string()).into_owned()),
            };
            self.exec(
                &format!(
                    r#"UPDATE lab.runs SET "{column}" = $3 WHERE project_id = $1 AND id = $2"#
                ),
                &[&shown],
            )?;
        }
        Ok(())
    }

    /// Parameters: the latest value of each, stored once.
    fn params(&mut self, d: &Delta) -> Result<(), Error> {
        for p in &d.params {
            let (mut stored, shown) = param_columns(&p.value);
            if stored.is_empty() && shown.as_deref().is_some_and(|s| s.contains('\0')) {
                // Its text cannot be kept whole here: keep its encoding too.
                stored = encode_value(&p.value);
            }
            let shown = shown.as_deref().map(text);
            self.exec(
                "INSERT INTO lab.params (project_id, run_id, key, seq, value, text, num) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (project_id, run_id, key) DO UPDATE SET value = excluded.value, text = excluded.text, num = excluded.num",
                &[
                    &text(&p.key).as_ref(),
                    &(p.offset as i64),
                    &stored,
                    &shown.as_deref(),
                    &p.value.as_f64().and_then(real),
                ],
            )?;
            self.names.insert(("params", p.key.clone()));
        }
        Ok(())
    }

    /// Metric names and summaries (merged with what was folded before).
    fn metrics(&mut self, d: &Delta) -> Result<(), Error> {
        for k in &d.new_keys {
            self.exec(
                "INSERT INTO lab.metric_keys (project_id, run_id, key_id, name) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (project_id, run_id, key_id) DO UPDATE SET name = excluded.name",
                &[&i64::from(k.key), &text(&k.name).as_ref()],
            )?;
            self.names.insert(("metrics", k.name.clone()));
        }
        if d.metrics.is_empty() {
            return Ok(());
        }
        let names = metric_names(self.tx, self.project, self.id)?;
        let upsert = self
            .tx
            .prepare(
                "INSERT INTO lab.metrics AS m (project_id, run_id, key, seq, last, last_bits, last_step, last_nanos, min, max, count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (project_id, run_id, key) DO UPDATE SET
                   last = excluded.last, last_bits = excluded.last_bits, last_step = excluded.last_step,
                   last_nanos = excluded.last_nanos,
                   min = CASE WHEN excluded.min IS NULL THEN m.min WHEN m.min IS NULL THEN excluded.min ELSE least(m.min, excluded.min) END,
                   max = CASE WHEN excluded.max IS NULL THEN m.max WHEN m.max IS NULL THEN excluded.max ELSE greatest(m.max, excluded.max) END,
                   count = m.count + excluded.count",
            )
            .pg()?;
        for (key_id, s) in &d.metrics {
            // A point whose key was never declared cannot be named; the
            // writer always declares first, so only a damaged journal has one.
            let Some(name) = names.get(key_id) else {
                continue;
            };
            self.tx
                .execute(
                    &upsert,
                    &[
                        &self.project,
                        &self.id,
                        &name,
                        &(s.first_seq as i64),
                        &real(s.last),
                        &(s.last.to_bits() as i64),
                        &s.last_step,
                        &s.last_nanos,
                        &s.min,
                        &s.max,
                        &s.count,
                    ],
                )
                .pg()?;
        }
        Ok(())
    }

    fn tags(&mut self, tags: &[(String, String)]) -> Result<(), Error> {
        for (key, value) in tags {
            self.exec(
                "INSERT INTO lab.tags (project_id, run_id, key, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (project_id, run_id, key) DO UPDATE SET value = excluded.value",
                &[&text(key).as_ref(), &text(value).as_ref()],
            )?;
            self.names.insert(("tags", key.clone()));
        }
        Ok(())
    }

    /// Artifacts as logged, then as copied into the run.
    fn artifacts(&mut self, d: &Delta) -> Result<(), Error> {
        for a in &d.artifacts {
            self.exec(
                "INSERT INTO lab.artifacts (project_id, run_id, name, seq, source) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (project_id, run_id, name) DO UPDATE SET source = excluded.source",
                &[&text(&a.name).as_ref(), &(a.offset as i64), &text(&a.source).as_ref()],
            )?;
        }
        for s in &d.stored {
            self.exec(
                "UPDATE lab.artifacts SET path = $4, files = $5, bytes = $6 WHERE project_id = $1 AND run_id = $2 AND name = $3",
                &[
                    &text(&s.name).as_ref(),
                    &text(&s.path).as_ref(),
                    &(s.files as i64),
                    &(s.bytes as i64),
                ],
            )?;
        }
        Ok(())
    }

    fn models(&mut self, d: &Delta) -> Result<(), Error> {
        for m in &d.models {
            self.exec(
                "INSERT INTO lab.models (project_id, run_id, name, seq, path, format, class, library, library_version, size, sha256, logged_nanos)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (project_id, run_id, name) DO UPDATE SET seq = excluded.seq, path = excluded.path,
                   format = excluded.format, class = excluded.class, library = excluded.library,
                   library_version = excluded.library_version, size = excluded.size,
                   sha256 = excluded.sha256, logged_nanos = excluded.logged_nanos",
                &[
                    &text(&m.name).as_ref(),
                    &(m.offset as i64),
                    &text(&m.path).as_ref(),
                    &text(&m.format).as_ref(),
                    &text(&m.class).as_ref(),
                    &text(&m.library).as_ref(),
                    &text(&m.library_version).as_ref(),
                    &(m.size as i64),
                    &text(&m.sha256).as_ref(),
                    &m.time_nanos,
                ],
            )?;
        }
        Ok(())
    }

    /// The End record: status, end time and the exception of a failed run.
    fn end(&mut self, d: &Delta) -> Result<(), Error> {
        let Some(end) = &d.end else {
            return Ok(());
        };
        let error = end.error.as_ref();
        let kind = error.map(|e| text(&e.kind));
        let message = error.map(|e| text(&e.message));
        let traceback = error.map(|e| text(&e.traceback));
        self.exec(
            "UPDATE lab.runs SET status = $3, end_nanos = $4, error_type = $5, error_message = $6, traceback = $7
             WHERE project_id = $1 AND id = $2",
            &[
                &end.status.as_str(),
                &end.time_nanos,
                &kind.as_deref(),
                &message.as_deref(),
                &traceback.as_deref(),
            ],
        )
    }

    /// Records that some run has these metric, parameter and tag names, for
    /// resolving names in queries without scanning the big tables.
    fn remember_names(&mut self) -> Result<(), Error> {
        if self.names.is_empty() {
            return Ok(());
        }
        let (scopes, keys): (Vec<&str>, Vec<String>) = self
            .names
            .iter()
            .map(|(s, k)| (*s, text(k).into_owned()))
            .unzip();
        self.tx
            .execute(
                "INSERT INTO lab.names (project_id, scope, key)
                 SELECT $1, s, k FROM unnest($2::text[], $3::text[]) AS t (s, k) ORDER BY s, k
                 ON CONFLICT DO NOTHING",
                &[&self.project, &scopes, &keys],
            )
            .pg()?;
        Ok(())
    }
}
