//! Writing one fold of one run inside its transaction: one function per
//! family of records (the run itself, attributes, parameters, metrics, tags,
//! artifacts, models, the end), then the run's status verdict and progress,
//! as `lab_store`'s SQLite writer does.
//!
//! Each family is one statement over arrays (`unnest`), whatever the number
//! of records, and statements are prepared once per connection: a fold costs
//! a fixed number of round trips. One statement cannot change a row twice,
//! so records naming the same row are merged first, as one after another
//! would leave it (the first one's place, the last one's value).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use lab_store::Error;
use lab_store::index::{
    Delta, FoldWrite, UNKNOWN_EXPERIMENT, damage_note, encode_value, param_columns, real,
    settled_status,
};
use lab_types::Value;
use postgres::types::ToSql;
use postgres::{GenericClient, Statement, Transaction};

use crate::{Pg as _, text};

/// Statements prepared on a connection, by their text.
pub(crate) type Prepared = HashMap<String, Statement>;

/// `sql`, prepared once on the connection of `c`.
pub(crate) fn prepare(
    prepared: &mut Prepared,
    c: &mut impl GenericClient,
    sql: &str,
) -> Result<Statement, Error> {
    if let Some(s) = prepared.get(sql) {
        return Ok(s.clone());
    }
    let s = c.prepare(sql).pg()?;
    prepared.insert(sql.to_owned(), s.clone());
    Ok(s)
}

/// One fold of one run, written inside its transaction.
pub(crate) struct Fold<'t, 'c> {
    pub tx: &'t mut Transaction<'c>,
    pub prepared: &'t mut Prepared,
    pub project: i32,
    pub id: &'t str,
    /// The names of metrics, parameters and tags seen, as `(scope, key)`:
    /// remembered at the end, in order, so that two folds never wait on
    /// each other's names in opposite orders.
    pub names: BTreeSet<(&'static str, String)>,
}

/// Merges records naming the same row: each key once, in the order first
/// named, with `merge` folding a later record into the earlier.
fn merged<K: Eq + std::hash::Hash + Clone, V>(
    items: impl IntoIterator<Item = (K, V)>,
    mut merge: impl FnMut(&mut V, V),
) -> Vec<(K, V)> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<(K, V)> = Vec::new();
    for (k, v) in items {
        if let Some(&i) = at.get(&k) {
            merge(&mut out[i].1, v);
        } else {
            at.insert(k.clone(), out.len());
            out.push((k, v));
        }
    }
    out
}

/// The later value replaces the earlier.
fn last<V>(earlier: &mut V, later: V) {
    *earlier = later;
}

impl Fold<'_, '_> {
    pub(crate) fn write(mut self, w: &FoldWrite<'_>, kept: Option<&Path>) -> Result<(), Error> {
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
        self.untags(&d.untags)?;
        self.tags(&d.tags)?;
        self.artifacts(d)?;
        self.models(d)?;
        self.media(d)?;
        self.end(d)?;
        if let Some((edits, meta_len)) = w.edits {
            // The meta journal's edits keep the last word over the run's
            // own records (its name at start, a tag it set).
            self.attrs(&edits.attrs)?;
            self.untags(&edits.untags)?;
            self.tags(&edits.tags)?;
            self.exec(
                "UPDATE lab.runs SET meta_len = $3 WHERE project_id = $1 AND id = $2",
                &[&(meta_len as i64)],
            )?;
        }
        self.remember_names()?;
        let earlier: Option<String> = self
            .query(
                "SELECT damage FROM lab.runs WHERE project_id = $1 AND id = $2",
                &[],
            )?
            .first()
            .and_then(|r| r.get(0));
        let note = damage_note(earlier, &w.folded, kept, &w.paths.journal)?;
        if w.folded.settled {
            let verdict = settled_status(d, &w.folded, note.is_some());
            self.exec(
                "UPDATE lab.runs SET status = $3 WHERE project_id = $1 AND id = $2 AND status IN ('running', 'unreachable')",
                &[&verdict.as_str()],
            )?;
        }
        let note = note.as_deref().map(text);
        self.exec(
            "UPDATE lab.runs SET journal_offset = $3, complete = $4, damage = $5 WHERE project_id = $1 AND id = $2",
            &[&(w.folded.end_offset as i64), &w.folded.settled, &note.as_deref()],
        )
    }

    /// `sql`, prepared once on this connection.
    fn statement(&mut self, sql: &str) -> Result<Statement, Error> {
        prepare(self.prepared, self.tx, sql)
    }

    /// Runs `sql` with the project and the run's id as `$1` and `$2`, then
    /// `rest`.
    fn exec(&mut self, sql: &str, rest: &[&(dyn ToSql + Sync)]) -> Result<(), Error> {
        let (project, id) = (self.project, self.id);
        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&project, &id];
        all.extend_from_slice(rest);
        let stmt = self.statement(sql)?;
        self.tx.execute(&stmt, &all).pg()?;
        Ok(())
    }

    /// [`Fold::exec`] for a query.
    fn query(
        &mut self,
        sql: &str,
        rest: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, Error> {
        let (project, id) = (self.project, self.id);
        let mut all: Vec<&(dyn ToSql + Sync)> = vec![&project, &id];
        all.extend_from_slice(rest);
        let stmt = self.statement(sql)?;
        self.tx.query(&stmt, &all).pg()
    }

    /// The run's row, made when its Start record (or, lost, its folder) is read.
    fn run_row(&mut self, short_id: &str, d: &Delta) -> Result<(), Error> {
        let (experiment, time) = match (&d.start, &d.lost_start) {
            (Some(start), _) => (start.experiment.as_str(), start.time_nanos),
            (None, Some((_, time))) => (UNKNOWN_EXPERIMENT, *time),
            (None, None) => return Ok(()),
        };
        self.exec(
            "INSERT INTO lab.runs (project_id, id, short_id, experiment, status, start_nanos, journal_offset, name)
             VALUES ($1, $2, $3, $4, 'running', $5, 0, $6) ON CONFLICT DO NOTHING",
            &[
                &short_id,
                &text(experiment).as_ref(),
                &time,
                // Until its journal names it.
                &lab_types::names::generated_name(short_id),
            ],
        )
    }

    /// Attributes, and the `runs` columns the field table copies some into.
    fn attrs(&mut self, attrs: &[(String, Value)]) -> Result<(), Error> {
        if attrs.is_empty() {
            return Ok(());
        }
        let attrs = merged(attrs.iter().map(|(k, v)| (k.as_str(), v)), last);
        let keys: Vec<String> = attrs.iter().map(|(k, _)| text(k).into_owned()).collect();
        let values: Vec<Vec<u8>> = attrs.iter().map(|(_, v)| encode_value(v)).collect();
        self.exec(
            "INSERT INTO lab.attrs (project_id, run_id, key, value)
             SELECT $1, $2, k, v FROM unnest($3::text[], $4::bytea[]) AS t (k, v)
             ON CONFLICT (project_id, run_id, key) DO UPDATE SET value = excluded.value",
            &[&keys, &values],
        )?;
        // As SQLite keeps them: a boolean as 1 or 0, else the value's text.
        let mut sets = Vec::new();
        let mut shown: Vec<Option<String>> = Vec::new();
        if let Some((_, note)) = attrs
            .iter()
            .find(|(k, _)| *k == lab_types::fields::attr::NOTE)
        {
            // For the plain-word search: no field of queries (see
            // `lab_store::fields`).
            sets.push(r#""note" = $3"#.to_owned());
            shown.push(match note {
                Value::Str(note) => Some(text(note).into_owned()),
                _ => None,
            });
        }
        for (key, value) in &attrs {
            let Some((_, column)) = lab_store::fields::attr_columns().find(|(a, _)| a == key)
            else {
                continue;
            };
            sets.push(format!(r#""{column}" = ${}"#, shown.len() + 3));
            shown.push(match value {
                Value::Bool(b) => Some(u8::from(*b).to_string()),
                Value::Null => None,
                other => Some(text(&other.to_string()).into_owned()),
            });
        }
        if sets.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE lab.runs SET {} WHERE project_id = $1 AND id = $2",
            sets.join(", ")
        );
        let rest: Vec<&(dyn ToSql + Sync)> =
            shown.iter().map(|s| s as &(dyn ToSql + Sync)).collect();
        self.exec(&sql, &rest)
    }

    /// Parameters: the latest value of each, stored once, in the place it
    /// was first logged.
    fn params(&mut self, d: &Delta) -> Result<(), Error> {
        if d.params.is_empty() {
            return Ok(());
        }
        let params = merged(
            d.params
                .iter()
                .map(|p| (p.key.as_str(), (p.offset, &p.value))),
            |earlier, later| earlier.1 = later.1,
        );
        let mut keys = Vec::new();
        let mut seqs = Vec::new();
        let mut values = Vec::new();
        let mut texts: Vec<Option<String>> = Vec::new();
        let mut nums = Vec::new();
        for (key, (offset, value)) in &params {
            let (mut stored, shown) = param_columns(value);
            if stored.is_empty() && shown.as_deref().is_some_and(|s| s.contains('\0')) {
                // Its text cannot be kept whole here: keep its encoding too.
                stored = encode_value(value);
            }
            keys.push(text(key).into_owned());
            seqs.push(*offset as i64);
            values.push(stored);
            texts.push(shown.as_deref().map(|s| text(s).into_owned()));
            nums.push(value.as_f64().and_then(real));
            self.names.insert(("params", (*key).to_owned()));
        }
        self.exec(
            "INSERT INTO lab.params (project_id, run_id, key, seq, value, text, num)
             SELECT $1, $2, k, s, v, t, n FROM unnest($3::text[], $4::int8[], $5::bytea[], $6::text[], $7::float8[]) AS u (k, s, v, t, n)
             ON CONFLICT (project_id, run_id, key) DO UPDATE SET value = excluded.value, text = excluded.text, num = excluded.num",
            &[&keys, &seqs, &values, &texts, &nums],
        )
    }

    /// Metric names and summaries (merged with what was folded before).
    fn metrics(&mut self, d: &Delta) -> Result<(), Error> {
        if !d.new_keys.is_empty() {
            let declared = merged(d.new_keys.iter().map(|k| (k.key, k.name.as_str())), last);
            let ids: Vec<i64> = declared.iter().map(|(k, _)| i64::from(*k)).collect();
            let names: Vec<String> = declared.iter().map(|(_, n)| text(n).into_owned()).collect();
            self.exec(
                "INSERT INTO lab.metric_keys (project_id, run_id, key_id, name)
                 SELECT $1, $2, k, n FROM unnest($3::int8[], $4::text[]) AS t (k, n)
                 ON CONFLICT (project_id, run_id, key_id) DO UPDATE SET name = excluded.name",
                &[&ids, &names],
            )?;
            for (_, name) in declared {
                self.names.insert(("metrics", name.to_owned()));
            }
        }
        if d.metrics.is_empty() {
            return Ok(());
        }
        let names: HashMap<u32, String> = self
            .query(
                "SELECT key_id, name FROM lab.metric_keys WHERE project_id = $1 AND run_id = $2",
                &[],
            )?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u32, r.get(1)))
            .collect();
        // A point whose key was never declared cannot be named; the writer
        // always declares first, so only a damaged journal has one.
        let mut rows: Vec<(&String, &lab_store::index::MetricDelta)> = d
            .metrics
            .iter()
            .filter_map(|(key, s)| Some((names.get(key)?, s)))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let upsert = "INSERT INTO lab.metrics AS m (project_id, run_id, key, seq, last, last_bits, last_step, last_nanos, min, max, count)
             SELECT $1, $2, * FROM unnest($3::text[], $4::int8[], $5::float8[], $6::int8[], $7::int8[], $8::int8[], $9::float8[], $10::float8[], $11::int8[])
             ON CONFLICT (project_id, run_id, key) DO UPDATE SET
               last = excluded.last, last_bits = excluded.last_bits, last_step = excluded.last_step,
               last_nanos = excluded.last_nanos,
               min = CASE WHEN excluded.min IS NULL THEN m.min WHEN m.min IS NULL THEN excluded.min ELSE least(m.min, excluded.min) END,
               max = CASE WHEN excluded.max IS NULL THEN m.max WHEN m.max IS NULL THEN excluded.max ELSE greatest(m.max, excluded.max) END,
               count = m.count + excluded.count";
        // Two numbers for one name (only in a journal written by hand) are
        // two summaries to merge, one statement each.
        let mut batches: Vec<Vec<(&String, &lab_store::index::MetricDelta)>> = Vec::new();
        for row in rows {
            match batches.iter_mut().find(|b| !b.iter().any(|r| r.0 == row.0)) {
                Some(batch) => batch.push(row),
                None => batches.push(vec![row]),
            }
        }
        for batch in batches {
            let keys: Vec<&str> = batch.iter().map(|r| r.0.as_str()).collect();
            let seqs: Vec<i64> = batch.iter().map(|r| r.1.first_seq as i64).collect();
            let lasts: Vec<Option<f64>> = batch.iter().map(|r| real(r.1.last)).collect();
            let bits: Vec<i64> = batch.iter().map(|r| r.1.last.to_bits() as i64).collect();
            let steps: Vec<i64> = batch.iter().map(|r| r.1.last_step).collect();
            let times: Vec<i64> = batch.iter().map(|r| r.1.last_nanos).collect();
            let mins: Vec<Option<f64>> = batch.iter().map(|r| r.1.min).collect();
            let maxs: Vec<Option<f64>> = batch.iter().map(|r| r.1.max).collect();
            let counts: Vec<i64> = batch.iter().map(|r| r.1.count).collect();
            self.exec(
                upsert,
                &[
                    &keys, &seqs, &lasts, &bits, &steps, &times, &mins, &maxs, &counts,
                ],
            )?;
        }
        Ok(())
    }

    fn untags(&mut self, keys: &[String]) -> Result<(), Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys.iter().map(|k| text(k).into_owned()).collect();
        self.exec(
            "DELETE FROM lab.tags WHERE project_id = $1 AND run_id = $2 AND key = ANY($3::text[])",
            &[&keys],
        )
    }

    fn tags(&mut self, tags: &[(String, String)]) -> Result<(), Error> {
        if tags.is_empty() {
            return Ok(());
        }
        let tags = merged(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), last);
        let keys: Vec<String> = tags.iter().map(|(k, _)| text(k).into_owned()).collect();
        let values: Vec<String> = tags.iter().map(|(_, v)| text(v).into_owned()).collect();
        self.exec(
            "INSERT INTO lab.tags (project_id, run_id, key, value)
             SELECT $1, $2, k, v FROM unnest($3::text[], $4::text[]) AS t (k, v)
             ON CONFLICT (project_id, run_id, key) DO UPDATE SET value = excluded.value",
            &[&keys, &values],
        )?;
        for (key, _) in tags {
            self.names.insert(("tags", key.to_owned()));
        }
        Ok(())
    }

    /// Artifacts as logged (in the place first logged, from the last
    /// source), then as copied into the run.
    fn artifacts(&mut self, d: &Delta) -> Result<(), Error> {
        if !d.artifacts.is_empty() {
            let logged = merged(
                d.artifacts
                    .iter()
                    .map(|a| (a.name.as_str(), (a.offset, a.source.as_str()))),
                |earlier, later| earlier.1 = later.1,
            );
            let names: Vec<String> = logged.iter().map(|(n, _)| text(n).into_owned()).collect();
            let seqs: Vec<i64> = logged.iter().map(|(_, (o, _))| *o as i64).collect();
            let sources: Vec<String> = logged
                .iter()
                .map(|(_, (_, s))| text(s).into_owned())
                .collect();
            self.exec(
                "INSERT INTO lab.artifacts (project_id, run_id, name, seq, source)
                 SELECT $1, $2, n, s, src FROM unnest($3::text[], $4::int8[], $5::text[]) AS t (n, s, src)
                 ON CONFLICT (project_id, run_id, name) DO UPDATE SET source = excluded.source",
                &[&names, &seqs, &sources],
            )?;
        }
        if !d.stored.is_empty() {
            let stored = merged(d.stored.iter().map(|s| (s.name.as_str(), s)), last);
            let names: Vec<String> = stored.iter().map(|(n, _)| text(n).into_owned()).collect();
            let paths: Vec<String> = stored
                .iter()
                .map(|(_, s)| text(&s.path).into_owned())
                .collect();
            let files: Vec<i64> = stored.iter().map(|(_, s)| s.files as i64).collect();
            let bytes: Vec<i64> = stored.iter().map(|(_, s)| s.bytes as i64).collect();
            self.exec(
                "UPDATE lab.artifacts a SET path = t.p, files = t.f, bytes = t.b
                 FROM unnest($3::text[], $4::text[], $5::int8[], $6::int8[]) AS t (n, p, f, b)
                 WHERE a.project_id = $1 AND a.run_id = $2 AND a.name = t.n",
                &[&names, &paths, &files, &bytes],
            )?;
        }
        Ok(())
    }

    /// Models: the last record of each name replaces the row whole.
    fn models(&mut self, d: &Delta) -> Result<(), Error> {
        if d.models.is_empty() {
            return Ok(());
        }
        let models = merged(d.models.iter().map(|m| (m.name.as_str(), m)), last);
        let col = |f: &dyn Fn(&lab_store::index::ModelLogged) -> &str| -> Vec<String> {
            models
                .iter()
                .map(|(_, m)| text(f(m)).into_owned())
                .collect()
        };
        let names = col(&|m| &m.name);
        let paths = col(&|m| &m.path);
        let formats = col(&|m| &m.format);
        let classes = col(&|m| &m.class);
        let libraries = col(&|m| &m.library);
        let versions = col(&|m| &m.library_version);
        let hashes = col(&|m| &m.sha256);
        let seqs: Vec<i64> = models.iter().map(|(_, m)| m.offset as i64).collect();
        let sizes: Vec<i64> = models.iter().map(|(_, m)| m.size as i64).collect();
        let times: Vec<i64> = models.iter().map(|(_, m)| m.time_nanos).collect();
        self.exec(
            "INSERT INTO lab.models (project_id, run_id, name, seq, path, format, class, library, library_version, size, sha256, logged_nanos)
             SELECT $1, $2, * FROM unnest($3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::text[], $12::int8[])
             ON CONFLICT (project_id, run_id, name) DO UPDATE SET seq = excluded.seq, path = excluded.path,
               format = excluded.format, class = excluded.class, library = excluded.library,
               library_version = excluded.library_version, size = excluded.size,
               sha256 = excluded.sha256, logged_nanos = excluded.logged_nanos",
            &[
                &names, &seqs, &paths, &formats, &classes, &libraries, &versions, &sizes,
                &hashes, &times,
            ],
        )
    }

    /// Media files: a later record of a key and step replaces its row but
    /// keeps its `seq`, so that keys stay in the order first logged.
    fn media(&mut self, d: &Delta) -> Result<(), Error> {
        if d.media.is_empty() {
            return Ok(());
        }
        let media = merged(d.media.iter().map(|m| ((m.key.as_str(), m.step), m)), last);
        let keys: Vec<String> = media
            .iter()
            .map(|(_, m)| text(&m.key).into_owned())
            .collect();
        let steps: Vec<i64> = media.iter().map(|(_, m)| m.step).collect();
        // The first record's offset of each key and step in this stretch.
        let mut first: HashMap<(&str, i64), i64> = HashMap::new();
        for m in &d.media {
            first
                .entry((m.key.as_str(), m.step))
                .or_insert(m.offset as i64);
        }
        let seqs: Vec<i64> = media
            .iter()
            .map(|(k, m)| first.get(k).copied().unwrap_or(m.offset as i64))
            .collect();
        let kinds: Vec<String> = media
            .iter()
            .map(|(_, m)| m.kind.as_str().to_owned())
            .collect();
        let paths: Vec<String> = media
            .iter()
            .map(|(_, m)| text(&m.path).into_owned())
            .collect();
        let widths: Vec<i64> = media.iter().map(|(_, m)| i64::from(m.width)).collect();
        let heights: Vec<i64> = media.iter().map(|(_, m)| i64::from(m.height)).collect();
        let bytes: Vec<i64> = media.iter().map(|(_, m)| m.bytes as i64).collect();
        self.exec(
            "INSERT INTO lab.media (project_id, run_id, key, step, seq, kind, path, width, height, bytes)
             SELECT $1, $2, * FROM unnest($3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[], $8::int8[], $9::int8[], $10::int8[])
             ON CONFLICT (project_id, run_id, key, step) DO UPDATE SET kind = excluded.kind, path = excluded.path,
               width = excluded.width, height = excluded.height, bytes = excluded.bytes",
            &[&keys, &steps, &seqs, &kinds, &paths, &widths, &heights, &bytes],
        )
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
        let project = self.project;
        let stmt = self.statement(
            "INSERT INTO lab.names (project_id, scope, key)
             SELECT $1, s, k FROM unnest($2::text[], $3::text[]) AS t (s, k) ORDER BY s, k
             ON CONFLICT DO NOTHING",
        )?;
        self.tx.execute(&stmt, &[&project, &scopes, &keys]).pg()?;
        Ok(())
    }
}
