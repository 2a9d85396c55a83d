//! [`RunSummary`] and [`RunDetail`], and how each is built from a
//! [`RunInfo`].

use lab_types::fields::{attr, field};
use lab_types::{Status, Value};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema};

use super::values::{self, Float, Named, StatusSchema, Time, sort_dicts};
use crate::RunInfo;

/// What a listing shows of a run.
#[derive(Clone, Debug, PartialEq, Deserialize, ToSchema)]
pub struct RunSummary {
    /// Seconds from start to end; for a running run, to now.
    #[serde(default)]
    #[schema(required = true)]
    pub duration_s: Option<f64>,
    /// When it ended.
    #[serde(default)]
    #[schema(schema_with = values::optional_time)]
    #[schema(required = true)]
    pub end_time: Option<Time>,
    /// The experiment's name.
    pub experiment: String,
    /// The group the run belongs to (the runs of one sweep), if any.
    #[serde(default)]
    #[schema(required = true)]
    pub group: Option<String>,
    /// The machine's name.
    #[serde(default)]
    #[schema(required = true)]
    pub host: Option<String>,
    /// The full id: 32 hex digits.
    pub id: String,
    /// Each metric's last value.
    #[schema(schema_with = last_values)]
    pub metrics: Named<Float>,
    /// The run's readable name: given, renamed, or generated
    /// (`brisk-otter-4821`). Empty only from a server older than names
    /// (`into_info` then generates it).
    #[serde(default)]
    pub name: String,
    /// Each parameter's value (any JSON).
    #[schema(schema_with = param_values)]
    pub params: Named<Value>,
    /// The first 8 hex digits of the id.
    pub short_id: String,
    /// The script's path, or `<interactive>`, `<command>`, `<notebook>`.
    #[serde(default)]
    #[schema(required = true)]
    pub source: Option<String>,
    /// When it started.
    #[schema(schema_with = values::time)]
    pub start_time: Time,
    /// Where it stands.
    #[schema(value_type = StatusSchema)]
    pub status: Status,
    /// Tags by name.
    #[schema(schema_with = tag_values)]
    pub tags: Named<String>,
    /// Who ran it.
    #[serde(default)]
    #[schema(required = true)]
    pub user: Option<String>,
}

fn last_values() -> Schema {
    values::named(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Number")))
        .description(Some("Each metric's last value"))
        .into()
}

fn param_values() -> Schema {
    values::named(values::value())
        .description(Some("Each parameter's value (any JSON)"))
        .into()
}

fn tag_values() -> Schema {
    values::named(ObjectBuilder::new().schema_type(utoipa::openapi::Type::String)).into()
}

/// Seconds from `run`'s start to its end, or to now while it runs.
fn duration_s(run: &RunInfo) -> Option<f64> {
    let end = match run.end_nanos {
        Some(end) => end,
        None if run.status == Status::Running => lab_types::now_nanos(),
        None => return None,
    };
    Some((end - run.start_nanos).max(0) as f64 / 1e9)
}

/// An attribute that is text.
fn text_attr(run: &RunInfo, name: &str) -> Option<String> {
    run.attr_str(name).map(str::to_owned)
}

impl RunSummary {
    /// The summary of `run`: params, metrics and tags in the order the run
    /// holds them (params and metrics as logged, tags by name).
    #[must_use]
    pub fn of(run: RunInfo) -> Self {
        Self {
            duration_s: duration_s(&run),
            end_time: run.end_nanos.map(Time),
            group: text_attr(&run, attr::GROUP),
            host: text_attr(&run, attr::HOST),
            source: text_attr(&run, attr::SOURCE),
            user: text_attr(&run, attr::USER),
            name: run.name(),
            id: run.id.to_string(),
            short_id: run.short_id,
            experiment: run.experiment,
            status: run.status,
            start_time: Time(run.start_nanos),
            params: Named(run.params),
            metrics: Named(
                run.metrics
                    .into_iter()
                    .map(|m| (m.name, Float(m.last)))
                    .collect(),
            ),
            tags: Named(run.tags),
        }
    }

    /// Puts params, metrics and tags in name order, and the entries of
    /// dicts inside params in key order, as the HTTP API gives them (the
    /// runs page lists them in that order).
    pub fn sort(&mut self) {
        self.params.sort_all();
        self.metrics.sort();
        self.tags.sort();
    }

    /// This summary as `lab ls --format json` and `lab export` write it:
    /// without `duration_s`, `host` and `user`, which they have never shown.
    #[must_use]
    pub fn without_listing_extras(&self) -> impl Serialize + '_ {
        Fields {
            run: self,
            extras: false,
        }
    }
}

/// A summary's fields, with or without `duration_s`, `host` and `user`.
struct Fields<'a> {
    run: &'a RunSummary,
    extras: bool,
}

impl Serialize for Fields<'_> {
    /// The fields in name order, named as `lab_types::fields` names them.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.run;
        let mut out = s.serialize_struct("RunSummary", if self.extras { 15 } else { 12 })?;
        if self.extras {
            out.serialize_field("duration_s", &r.duration_s)?;
        }
        out.serialize_field(field::END_TIME, &r.end_time)?;
        out.serialize_field(field::EXPERIMENT, &r.experiment)?;
        out.serialize_field(attr::GROUP, &r.group)?;
        if self.extras {
            out.serialize_field(attr::HOST, &r.host)?;
        }
        out.serialize_field(field::ID, &r.id)?;
        out.serialize_field("metrics", &r.metrics)?;
        out.serialize_field(attr::NAME, &r.name)?;
        out.serialize_field("params", &r.params)?;
        out.serialize_field(field::SHORT_ID, &r.short_id)?;
        out.serialize_field(attr::SOURCE, &r.source)?;
        out.serialize_field(field::START_TIME, &r.start_time)?;
        out.serialize_field(field::STATUS, &r.status)?;
        out.serialize_field("tags", &r.tags)?;
        if self.extras {
            out.serialize_field(attr::USER, &r.user)?;
        }
        out.end()
    }
}

impl Serialize for RunSummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Fields {
            run: self,
            extras: true,
        }
        .serialize(s)
    }
}

/// A metric's summary.
#[derive(Clone, Debug, PartialEq, Deserialize, ToSchema)]
pub struct MetricSummary {
    /// How many points.
    #[schema(minimum = 0)]
    pub count: i64,
    /// The last value logged.
    pub last: Float,
    /// The step of the last value.
    pub last_step: i64,
    /// The largest value (NaN ignored); null when every value was NaN.
    #[serde(default)]
    #[schema(required = true)]
    pub max: Option<Float>,
    /// The smallest value (NaN ignored); null when every value was NaN.
    #[serde(default)]
    #[schema(required = true)]
    pub min: Option<Float>,
    /// Its name.
    pub name: String,
}

impl Serialize for MetricSummary {
    /// An object in JSON; in other formats the tuple `(name, last,
    /// last_step, min, max, count)`, which is what `lab.Run` reads (a
    /// listing of 10,000 runs of 20 metrics makes 200,000 of them, and
    /// tuples take a third of the time dicts take).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            let m = self;
            return (&m.name, m.last, m.last_step, m.min, m.max, m.count).serialize(s);
        }
        let mut out = s.serialize_struct("MetricSummary", 6)?;
        out.serialize_field("count", &self.count)?;
        out.serialize_field("last", &self.last)?;
        out.serialize_field("last_step", &self.last_step)?;
        out.serialize_field("max", &self.max)?;
        out.serialize_field("min", &self.min)?;
        out.serialize_field("name", &self.name)?;
        out.end()
    }
}

/// The exception that ended a failed run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    /// `str(exception)`.
    pub message: String,
    /// The formatted traceback.
    pub traceback: String,
    /// The exception's type, e.g. `NameError`.
    pub r#type: String,
}

/// Where the run's script was in git.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Git {
    /// The branch, if on one.
    #[serde(default)]
    #[schema(required = true)]
    pub branch: Option<String>,
    /// The commit.
    pub commit: String,
    /// Whether tracked files had uncommitted changes.
    pub dirty: bool,
}

/// An artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    /// Bytes copied.
    #[serde(default)]
    #[schema(required = true)]
    pub bytes: Option<u64>,
    /// Files copied.
    #[serde(default)]
    #[schema(required = true)]
    pub files: Option<u64>,
    /// Its name.
    pub name: String,
    /// Where it is in the run's folder, once copied.
    #[serde(default)]
    #[schema(required = true)]
    pub path: Option<String>,
    /// Where it was logged from.
    pub source: String,
}

/// A model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Model {
    /// The object's type, `module.Class`.
    pub class: String,
    /// `joblib` or `pickle`.
    pub format: String,
    /// The library of that type.
    pub library: String,
    /// That library's version.
    pub library_version: String,
    /// When it was logged.
    #[schema(schema_with = values::time)]
    pub logged_time: Time,
    /// Its name.
    pub name: String,
    /// The file, relative to the run's folder.
    pub path: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// An installed distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Package {
    /// Its name.
    pub name: String,
    /// Its version, when the package list says.
    #[serde(default)]
    #[schema(required = true)]
    pub version: Option<String>,
}

/// Everything about one run: the fields of `RunSummary`, with metrics as
/// summaries, and what the run recorded about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(
    description = "Everything about one run: the fields of RunSummary, with metrics as summaries"
)]
pub struct RunDetail {
    /// The script's arguments.
    #[schema(schema_with = any_value)]
    #[schema(required = true)]
    pub argv: Option<Value>,
    /// Artifacts in logging order.
    pub artifacts: Vec<Artifact>,
    /// The attributes that have no field of their own here.
    #[schema(schema_with = attr_values)]
    pub attrs: Named<Value>,
    /// Damage found in the run's journal.
    #[serde(default)]
    #[schema(required = true)]
    pub damage: Option<String>,
    /// The dataset description given to the experiment.
    #[schema(schema_with = any_value)]
    #[schema(required = true)]
    pub dataset: Option<Value>,
    /// Seconds from start to end; for a running run, to now.
    #[serde(default)]
    #[schema(required = true)]
    pub duration_s: Option<f64>,
    /// When it ended.
    #[serde(default)]
    #[schema(schema_with = values::optional_time)]
    #[schema(required = true)]
    pub end_time: Option<Time>,
    /// The exception of a failed run.
    #[schema(required = true)]
    pub error: Option<RunError>,
    /// The experiment's name.
    pub experiment: String,
    /// Feature names or indices.
    #[schema(schema_with = features)]
    pub features: Vec<Value>,
    /// Where the script was in git, when it was in a repository.
    #[schema(required = true)]
    pub git: Option<Git>,
    /// The group the run belongs to (the runs of one sweep), if any.
    #[serde(default)]
    #[schema(required = true)]
    pub group: Option<String>,
    /// The machine's name.
    #[serde(default)]
    #[schema(required = true)]
    pub host: Option<String>,
    /// The full id: 32 hex digits.
    pub id: String,
    /// Each metric's summary, in logging order.
    pub metrics: Vec<MetricSummary>,
    /// Models in logging order.
    pub models: Vec<Model>,
    /// The run's readable name: given, renamed, or generated.
    #[serde(default)]
    pub name: String,
    /// The run's note, Markdown; empty when it has none.
    #[serde(default)]
    pub note: String,
    /// The installed distributions.
    pub packages: Vec<Package>,
    /// Each parameter's value (any JSON).
    #[schema(schema_with = param_values)]
    pub params: Named<Value>,
    /// The id of the run this one was started inside, if any.
    #[serde(default)]
    #[schema(required = true)]
    pub parent: Option<String>,
    /// The process id.
    #[schema(schema_with = any_value)]
    #[schema(required = true)]
    pub pid: Option<Value>,
    /// The Python version, `3.11.7`.
    #[schema(schema_with = any_value)]
    #[schema(required = true)]
    pub python: Option<Value>,
    /// The first 8 hex digits of the id.
    pub short_id: String,
    /// The script's path, or `<interactive>`, `<command>`, `<notebook>`.
    #[serde(default)]
    #[schema(required = true)]
    pub source: Option<String>,
    /// When it started.
    #[schema(schema_with = values::time)]
    pub start_time: Time,
    /// Where it stands.
    #[schema(value_type = StatusSchema)]
    pub status: Status,
    /// Tags by name.
    #[schema(schema_with = tag_values)]
    pub tags: Named<String>,
    /// Who ran it.
    #[serde(default)]
    #[schema(required = true)]
    pub user: Option<String>,
}

fn any_value() -> Schema {
    values::value()
}

fn attr_values() -> Schema {
    values::named(values::value()).into()
}

fn features() -> Schema {
    ArrayBuilder::new().items(RefOr::T(values::value())).into()
}

/// The attributes a detail shows in a field of its own; the rest go in
/// [`RunDetail::attrs`].
const OWN_FIELDS: [&str; 15] = [
    attr::NAME,
    attr::NOTE,
    attr::SOURCE,
    attr::USER,
    attr::HOST,
    attr::PID,
    attr::PYTHON_VERSION,
    attr::ARGV,
    attr::GIT_COMMIT,
    attr::GIT_BRANCH,
    attr::GIT_DIRTY,
    attr::DATASET,
    attr::PACKAGES,
    attr::GROUP,
    attr::PARENT,
];

/// Where `run`'s script was in git: known when a commit was recorded.
fn git(run: &RunInfo) -> Option<Git> {
    Some(Git {
        commit: text_attr(run, attr::GIT_COMMIT)?,
        branch: text_attr(run, attr::GIT_BRANCH),
        dirty: matches!(run.attr(attr::GIT_DIRTY), Some(Value::Bool(true))),
    })
}

/// The package list (`name==version` each) as names and versions.
fn packages(run: &RunInfo) -> Vec<Package> {
    let Some(Value::List(items)) = run.attr(attr::PACKAGES) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|p| match p {
            Value::Str(s) => Some(match s.split_once("==") {
                Some((name, version)) => Package {
                    name: name.to_owned(),
                    version: Some(version.to_owned()),
                },
                None => Package {
                    name: s.clone(),
                    version: None,
                },
            }),
            _ => None,
        })
        .collect()
}

fn metric(m: crate::MetricSummary) -> MetricSummary {
    MetricSummary {
        count: m.count,
        last: Float(m.last),
        last_step: m.last_step,
        max: m.max.map(Float),
        min: m.min.map(Float),
        name: m.name,
    }
}

fn artifact(a: crate::ArtifactInfo) -> Artifact {
    Artifact {
        bytes: a.bytes,
        files: a.files,
        name: a.name,
        path: a.path,
        source: a.source,
    }
}

fn model(m: crate::ModelInfo) -> Model {
    Model {
        class: m.class,
        format: m.format,
        library: m.library,
        library_version: m.library_version,
        logged_time: Time(m.logged_nanos),
        name: m.name,
        path: m.path,
        sha256: m.sha256,
        size: m.size,
    }
}

impl RunDetail {
    /// Everything about `run`, as much as it holds (a run loaded for a
    /// listing has no artifacts, models or package list).
    #[must_use]
    pub fn of(mut run: RunInfo) -> Self {
        let attr = |run: &RunInfo, name: &str| run.attr(name).cloned();
        let git = git(&run);
        let packages = packages(&run);
        let (argv, pid, python) = (
            attr(&run, attr::ARGV),
            attr(&run, attr::PID),
            attr(&run, attr::PYTHON_VERSION),
        );
        let dataset = attr(&run, attr::DATASET).filter(|d| *d != Value::Null);
        let (group, parent) = (text_attr(&run, attr::GROUP), text_attr(&run, attr::PARENT));
        let (duration_s, host, source, user) = (
            duration_s(&run),
            text_attr(&run, attr::HOST),
            text_attr(&run, attr::SOURCE),
            text_attr(&run, attr::USER),
        );
        let (name, note) = (run.name(), run.note().to_owned());
        run.attrs.retain(|(k, _)| !OWN_FIELDS.contains(&k.as_str()));
        Self {
            argv,
            artifacts: run.artifacts.into_iter().map(artifact).collect(),
            attrs: Named(run.attrs),
            damage: run.damage,
            dataset,
            duration_s,
            end_time: run.end_nanos.map(Time),
            error: run.error.map(|e| RunError {
                message: e.message,
                traceback: e.traceback,
                r#type: e.kind,
            }),
            experiment: run.experiment,
            features: run.features,
            git,
            group,
            host,
            id: run.id.to_string(),
            metrics: run.metrics.into_iter().map(metric).collect(),
            models: run.models.into_iter().map(model).collect(),
            name,
            note,
            packages,
            params: Named(run.params),
            parent,
            pid,
            python,
            short_id: run.short_id,
            source,
            start_time: Time(run.start_nanos),
            status: run.status,
            tags: Named(run.tags),
            user,
        }
    }

    /// Puts params, attributes and tags in name order, and the entries of
    /// every dict inside a value in key order, as the HTTP API gives them
    /// (the run page lists them in that order).
    pub fn sort(&mut self) {
        self.params.sort_all();
        self.attrs.sort_all();
        self.tags.sort();
        let values = [
            &mut self.argv,
            &mut self.dataset,
            &mut self.pid,
            &mut self.python,
        ];
        for v in values.into_iter().flatten().chain(&mut self.features) {
            sort_dicts(v);
        }
    }
}

/// A run id as the wire writes it, read back.
fn run_id(text: &str) -> Result<lab_types::RunId, String> {
    text.parse()
        .map_err(|_| format!("the run id `{text}` is not 32 hex digits"))
}

/// A name as the wire gives it, as an attribute: none when it is empty (a
/// server older than names) or the one generated from the short id (which
/// a run without the attribute has anyway).
fn given_name(name: String, short_id: &str) -> Option<String> {
    (!name.is_empty() && lab_types::names::generated_name(short_id).as_ref() != Some(&name))
        .then_some(name)
}

fn text(name: &str, value: Option<String>) -> Option<(String, Value)> {
    value.map(|v| (name.to_owned(), Value::Str(v)))
}

impl RunSummary {
    /// The [`RunInfo`] this summary was made from, as far as it tells: what
    /// a listing shows (each metric's last value only; no artifacts, models
    /// or attributes beyond `source`, `user`, `host`, `group` and `name`). For reading a
    /// server's listing with the code that shows a local one.
    ///
    /// # Errors
    ///
    /// When the id is not a run id.
    pub fn into_info(self) -> Result<RunInfo, String> {
        let attrs = [
            text(attr::SOURCE, self.source),
            text(attr::USER, self.user),
            text(attr::HOST, self.host),
            text(attr::GROUP, self.group),
            text(attr::NAME, given_name(self.name, &self.short_id)),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(RunInfo {
            id: run_id(&self.id)?,
            short_id: self.short_id,
            experiment: self.experiment,
            status: self.status,
            start_nanos: self.start_time.0,
            end_nanos: self.end_time.map(|t| t.0),
            attrs,
            features: Vec::new(),
            params: self.params.0,
            metrics: self
                .metrics
                .0
                .into_iter()
                .map(|(name, last)| crate::MetricSummary {
                    name,
                    last: last.0,
                    last_step: 0,
                    min: None,
                    max: None,
                    count: 0,
                })
                .collect(),
            tags: self.tags.0,
            artifacts: Vec::new(),
            models: Vec::new(),
            error: None,
            damage: None,
        })
    }
}

impl RunDetail {
    /// The [`RunInfo`] this detail was made from: every attribute back
    /// under its own name. For showing a server's run with the code that
    /// shows a local one.
    ///
    /// # Errors
    ///
    /// When the id is not a run id.
    pub fn into_info(self) -> Result<RunInfo, String> {
        let mut attrs: Vec<(String, Value)> = [
            text(attr::SOURCE, self.source),
            text(attr::USER, self.user),
            text(attr::HOST, self.host),
            text(attr::GROUP, self.group),
            text(attr::PARENT, self.parent),
            self.pid.map(|v| (attr::PID.to_owned(), v)),
            self.python.map(|v| (attr::PYTHON_VERSION.to_owned(), v)),
            self.argv.map(|v| (attr::ARGV.to_owned(), v)),
            self.dataset.map(|v| (attr::DATASET.to_owned(), v)),
            text(attr::NAME, given_name(self.name, &self.short_id)),
            text(attr::NOTE, Some(self.note).filter(|n| !n.is_empty())),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(git) = self.git {
            attrs.push((attr::GIT_COMMIT.to_owned(), Value::Str(git.commit)));
            attrs.extend(text(attr::GIT_BRANCH, git.branch));
            attrs.push((attr::GIT_DIRTY.to_owned(), Value::Bool(git.dirty)));
        }
        if !self.packages.is_empty() {
            let list = self
                .packages
                .into_iter()
                .map(|p| {
                    Value::Str(match p.version {
                        Some(v) => format!("{}=={v}", p.name),
                        None => p.name,
                    })
                })
                .collect();
            attrs.push((attr::PACKAGES.to_owned(), Value::List(list)));
        }
        attrs.extend(self.attrs.0);
        Ok(RunInfo {
            id: run_id(&self.id)?,
            short_id: self.short_id,
            experiment: self.experiment,
            status: self.status,
            start_nanos: self.start_time.0,
            end_nanos: self.end_time.map(|t| t.0),
            attrs,
            features: self.features,
            params: self.params.0,
            metrics: self
                .metrics
                .into_iter()
                .map(|m| crate::MetricSummary {
                    name: m.name,
                    last: m.last.0,
                    last_step: m.last_step,
                    min: m.min.map(|v| v.0),
                    max: m.max.map(|v| v.0),
                    count: m.count,
                })
                .collect(),
            tags: self.tags.0,
            artifacts: self
                .artifacts
                .into_iter()
                .map(|a| crate::ArtifactInfo {
                    name: a.name,
                    source: a.source,
                    path: a.path,
                    files: a.files,
                    bytes: a.bytes,
                })
                .collect(),
            models: self
                .models
                .into_iter()
                .map(|m| crate::ModelInfo {
                    name: m.name,
                    path: m.path,
                    format: m.format,
                    class: m.class,
                    library: m.library,
                    library_version: m.library_version,
                    size: m.size,
                    sha256: m.sha256,
                    logged_nanos: m.logged_time.0,
                })
                .collect(),
            error: self.error.map(|e| lab_types::ErrorInfo {
                kind: e.r#type,
                message: e.message,
                traceback: e.traceback,
            }),
            damage: self.damage,
        })
    }
}

#[cfg(test)]
mod tests;
