//! `RunHandle`: a live run, as Python's `Experiment` drives it.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use lab_sdk::{EnvRequest, Run, StartOptions};
use lab_store::Project;
use lab_types::{ErrorInfo, Status, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::convert::{self, MetricValue};
use crate::errors::{sdk_err, store_err};

/// A live run. Made by `start_run`; ended by `end`.
#[pyclass(frozen, module = "lab._lab")]
pub struct RunHandle {
    run: Arc<Run>,
}

/// Starts a run in the project found from the current folder (or
/// `LAB_PROJECT`), making the current folder a project if there is none.
/// Returns the run and, when a project was made, its folder.
#[pyfunction]
#[pyo3(signature = (experiment, attrs, git_dir, site_dirs))]
pub fn start_run(
    py: Python<'_>,
    experiment: String,
    attrs: &Bound<'_, PyDict>,
    git_dir: Option<PathBuf>,
    site_dirs: Vec<PathBuf>,
) -> PyResult<(RunHandle, Option<String>)> {
    let mut values = Vec::with_capacity(attrs.len());
    for (k, v) in attrs.iter() {
        values.push((convert::key("attrs", &k)?.to_cow()?.into_owned(), convert::value(&v)?));
    }
    let cwd = std::env::current_dir()?;
    py.detach(|| {
        let (project, created) = Project::discover_or_create(&cwd).map_err(store_err)?;
        let options = StartOptions { experiment, attrs: values, env: EnvRequest { git_dir, site_dirs } };
        let run = Run::start(&project, options).map_err(sdk_err)?;
        let created = created.then(|| project.root().display().to_string());
        Ok((RunHandle { run }, created))
    })
}

/// Waits until every ended run is closed, synced and indexed. Returns the
/// problems met, as messages.
#[pyfunction]
pub fn wait_for_background(py: Python<'_>) -> Vec<String> {
    py.detach(lab_sdk::wait_for_background)
}

/// Raises `ValueError` unless `name` can name an artifact or model.
#[pyfunction]
pub fn check_name(argument: &str, name: &Bound<'_, PyAny>) -> PyResult<()> {
    let arg: &'static str = if argument == "name" { "name" } else { "argument" };
    let s = convert::key(arg, name)?;
    lab_sdk::check_name(arg, &s.to_cow()?).map_err(sdk_err)
}

fn vector_names(key: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{key}[{i}]")).collect()
}

#[pymethods]
impl RunHandle {
    /// The run's full id (32 hex digits).
    #[getter]
    fn id(&self) -> String {
        self.run.id().to_string()
    }

    /// The first 8 hex digits of the id.
    #[getter]
    fn short_id(&self) -> &str {
        self.run.short_id()
    }

    /// The run's folder.
    #[getter]
    fn run_dir(&self) -> PathBuf {
        self.run.paths().dir.clone()
    }

    /// Whether the run has ended.
    #[getter]
    fn ended(&self) -> bool {
        self.run.ended().is_some()
    }

    /// Logs one point of a metric (or of `key[i]` for each element of a 1-D array).
    #[pyo3(signature = (key, value, step=None))]
    fn log_metric(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, step: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let key = convert::key("key", key)?.to_cow()?;
        let step = convert::step(step)?;
        match convert::metric(value)? {
            MetricValue::One(v) => self.run.log_metric(&key, v, step),
            MetricValue::Many(vs) => {
                let names = vector_names(&key, vs.len());
                self.run.log_metrics(names.iter().map(String::as_str).zip(vs), step)
            }
        }
        .map_err(sdk_err)
    }

    /// Logs several metrics at once from a dict.
    #[pyo3(signature = (values, step=None))]
    fn log_metrics(&self, values: &Bound<'_, PyAny>, step: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let dict = values.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!("`metrics` must be a dict of metric names to numbers: got {}", convert::describe(values)))
        })?;
        let step = convert::step(step)?;
        let mut keys: Vec<Bound<'_, PyString>> = Vec::with_capacity(dict.len());
        let mut nums: Vec<f64> = Vec::with_capacity(dict.len());
        let mut extra: Vec<(String, f64)> = Vec::new();
        for (k, v) in dict.iter() {
            let k = convert::key("key", &k)?.clone();
            match convert::metric(&v)? {
                MetricValue::One(x) => {
                    keys.push(k);
                    nums.push(x);
                }
                MetricValue::Many(xs) => {
                    let names = vector_names(&k.to_cow()?, xs.len());
                    extra.extend(names.into_iter().zip(xs));
                }
            }
        }
        let mut items: Vec<(Cow<'_, str>, f64)> = Vec::with_capacity(keys.len() + extra.len());
        for (k, x) in keys.iter().zip(nums) {
            items.push((k.to_cow()?, x));
        }
        items.extend(extra.into_iter().map(|(k, x)| (Cow::Owned(k), x)));
        self.run.log_metrics(items.iter().map(|(k, x)| (k.as_ref(), *x)), step).map_err(sdk_err)
    }

    /// Logs a hyperparameter.
    fn log_param(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = convert::key("key", key)?.to_cow()?;
        let value = convert::value(value)?;
        self.run.log_param(&key, value).map_err(sdk_err)
    }

    /// Logs every item of a dict as a hyperparameter; all are checked first.
    fn log_params(&self, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let dict = values.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!("`parameters` must be a dict of names to values: got {}", convert::describe(values)))
        })?;
        let mut items = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let key = convert::key("key", &k)?.to_cow()?.into_owned();
            lab_sdk::check_key("key", &key).map_err(sdk_err)?;
            items.push((key, convert::value(&v)?));
        }
        for (k, v) in items {
            self.run.log_param(&k, v).map_err(sdk_err)?;
        }
        Ok(())
    }

    /// Records a run attribute.
    fn log_attr(&self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.run.log_attr(key, convert::value(value)?).map_err(sdk_err)
    }

    /// Logs feature names or column indices (already a list of str and int).
    fn log_features(&self, names: &Bound<'_, PyList>) -> PyResult<()> {
        let mut out = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            match convert::value(&n)? {
                v @ (Value::Str(_) | Value::Int(_)) => out.push(v),
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "`names` must hold feature names (str) or column indices (int): item {i} is {}",
                        convert::describe(&n)
                    )));
                }
            }
        }
        self.run.log_features(out).map_err(sdk_err)
    }

    /// Sets a tag; the value is kept as text.
    fn set_tag(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = convert::key("key", key)?.to_cow()?;
        let value = value.str()?;
        self.run.set_tag(&key, &value.to_cow()?).map_err(sdk_err)
    }

    /// Logs an artifact to copy in at the end.
    fn log_artifact(&self, py: Python<'_>, name: &Bound<'_, PyAny>, path: PathBuf) -> PyResult<()> {
        let name = convert::key("name", name)?.to_cow()?.into_owned();
        py.detach(|| self.run.log_artifact(&name, &path)).map_err(sdk_err)
    }

    /// The folder to serialise models into.
    fn models_dir(&self) -> PyResult<PathBuf> {
        self.run.models_dir().map_err(sdk_err)
    }

    /// Records a serialised model; returns `(path relative to the run, size, sha256)`.
    #[allow(clippy::too_many_arguments)]
    fn add_model(
        &self,
        py: Python<'_>,
        name: String,
        file: PathBuf,
        format: String,
        class: String,
        library: String,
        library_version: String,
    ) -> PyResult<(String, u64, String)> {
        py.detach(|| self.run.add_model(&name, &file, &format, &class, &library, &library_version))
            .map_err(sdk_err)
    }

    /// Ends the run with `status` (`finished`, `failed`, `interrupted`) and,
    /// for a failure, `(type, message, traceback)`. Returns warnings.
    #[pyo3(signature = (status, error=None))]
    fn end(&self, py: Python<'_>, status: &str, error: Option<(String, String, String)>) -> PyResult<Vec<String>> {
        let status = Status::parse(status)
            .filter(|s| *s != Status::Running && *s != Status::Crashed)
            .ok_or_else(|| PyValueError::new_err(format!("`status` must be finished, failed or interrupted: got {status:?}")))?;
        let error = error.map(|(kind, message, traceback)| ErrorInfo { kind, message, traceback });
        let report = py.detach(|| self.run.end(status, error)).map_err(sdk_err)?;
        Ok(report.warnings)
    }

    fn __repr__(&self) -> String {
        format!("<RunHandle {}>", self.run.short_id())
    }
}
