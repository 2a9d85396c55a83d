//! `RunHandle`: a live run, as Python's `Experiment` drives it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use lab_sdk::{EnvRequest, Run, StartOptions, SystemMetrics};
use lab_store::Project;
use lab_types::{ErrorInfo, Status, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::convert::{self, MetricValue};
use crate::errors::{LabError, sdk_err, store_err};

/// A live run. Made by `start_run`; ended by `end`.
#[pyclass(frozen, module = "lab._lab")]
pub struct RunHandle {
    run: Arc<Run>,
    keys: Mutex<KeyCache>,
}

/// Metric numbers by the identity of the Python string that named them.
///
/// Training loops log the same few names over and over, usually as the very
/// same string objects (literals are interned); looking them up by address
/// skips decoding the name on every call. The cache holds a reference to
/// each string, so an address cannot be reused by another string while it is
/// cached. Names made fresh on every call would grow it without end, so it is
/// emptied when it gets large.
#[derive(Default)]
struct KeyCache {
    ids: HashMap<usize, (Py<PyString>, u32), BuildHasherDefault<AddressHasher>>,
}

const KEY_CACHE_MAX: usize = 4096;

/// A hasher for addresses: they are already well spread but for their low,
/// aligned bits.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl RunHandle {
    fn new(run: Arc<Run>) -> Self {
        Self {
            run,
            keys: Mutex::new(KeyCache::default()),
        }
    }

    /// The run's number for the metric named by `key`.
    fn key_id(&self, key: &Bound<'_, PyString>) -> PyResult<u32> {
        let mut cache = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        self.key_id_in(&mut cache, key)
    }

    /// [`RunHandle::key_id`] with the cache already locked (once for a whole batch).
    fn key_id_in(&self, cache: &mut KeyCache, key: &Bound<'_, PyString>) -> PyResult<u32> {
        let address = key.as_ptr() as usize;
        if let Some((_, id)) = cache.ids.get(&address) {
            return Ok(*id);
        }
        let id = self
            .run
            .metric_key(&convert::text("key", key)?)
            .map_err(sdk_err)?;
        if cache.ids.len() >= KEY_CACHE_MAX {
            cache.ids.clear();
        }
        cache.ids.insert(address, (key.clone().unbind(), id));
        Ok(id)
    }

    /// `log_metric`, shared by `RunHandle` and `ExperimentCore`.
    pub fn log_metric_from(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let key = convert::key("key", key)?;
        let step = convert::step(step)?;
        match convert::metric(value)? {
            MetricValue::One(v) => {
                let id = self.key_id(key)?;
                self.run.log_metric_id(id, v, step)
            }
            MetricValue::Many(vs) => {
                let key = convert::text("key", key)?;
                // The elements get names of their own; the key itself must still be one.
                lab_sdk::check_key("key", &key).map_err(sdk_err)?;
                let names = vector_names(&key, vs.len());
                self.run
                    .log_metrics(names.iter().map(String::as_str).zip(vs), step)
            }
        }
        .map_err(sdk_err)
    }

    /// `log_metrics`, shared by `RunHandle` and `ExperimentCore`.
    pub fn log_metrics_from(
        &self,
        values: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let dict = convert::mapping("metrics", "metric names to numbers", values)?;
        let step = convert::step(step)?;
        let mut points: Vec<(u32, f64)> = Vec::with_capacity(dict.len());
        let mut cache = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        for (k, v) in dict.iter() {
            let key = convert::key("key", &k)?;
            match convert::metric(&v)? {
                MetricValue::One(x) => points.push((self.key_id_in(&mut cache, key)?, x)),
                MetricValue::Many(xs) => {
                    let key = convert::text("key", key)?;
                    lab_sdk::check_key("key", &key).map_err(sdk_err)?;
                    for (i, x) in xs.into_iter().enumerate() {
                        let name = format!("{key}[{i}]");
                        points.push((self.run.metric_key(&name).map_err(sdk_err)?, x));
                    }
                }
            }
        }
        self.run
            .log_metrics_ids(points.into_iter(), step)
            .map_err(sdk_err)
    }
}

/// The base of Python's `Experiment`: holds its live run and logs metrics
/// without a Python frame in between, since training loops call these most.
///
/// One experiment has one current run, whichever thread logs. Starting a run
/// claims the experiment first (`_claim`), under the same lock that holds the
/// run, so of two threads starting runs at once exactly one gets to.
#[pyclass(subclass, module = "lab._lab")]
pub struct ExperimentCore {
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// The current (or last) run.
    run: Option<Py<RunHandle>>,
    /// Whether a thread has claimed the experiment and is starting a run.
    starting: bool,
}

fn no_run(method: &str) -> PyErr {
    crate::errors::NoActiveRunError::new_err(format!(
        "`{method}` was called outside a run; start one by decorating the training function with `@e.start_run`, or log inside `with e.start_run():`"
    ))
}

impl ExperimentCore {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handle(&self, py: Python<'_>, method: &str) -> PyResult<Py<RunHandle>> {
        self.slot()
            .run
            .as_ref()
            .map(|h| h.clone_ref(py))
            .ok_or_else(|| no_run(method))
    }
}

#[pymethods]
impl ExperimentCore {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyAny>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        Self {
            slot: Mutex::new(Slot::default()),
        }
    }

    /// The current (or last) run, or None.
    #[getter]
    fn _run(&self, py: Python<'_>) -> Option<Py<RunHandle>> {
        self.slot().run.as_ref().map(|h| h.clone_ref(py))
    }

    /// Claims the experiment for a run about to start; raises `LabError` if
    /// its run is still live, or another thread is starting one. Every claim
    /// ends with `_attach` or, if starting failed, `_release`.
    ///
    /// `outer` is the live run the new one nests in, when the thread that
    /// started it starts another inside it: the claim is then granted while
    /// `outer` is the experiment's run (and `_attach(outer)` puts it back
    /// when the inner run ends).
    #[pyo3(signature = (outer=None))]
    fn _claim(&self, outer: Option<&Bound<'_, RunHandle>>) -> PyResult<()> {
        let mut slot = self.slot();
        if slot.starting {
            return Err(LabError::new_err(
                "a run of this experiment is being started by another thread; runs of one Experiment cannot nest across threads (use a second Experiment)",
            ));
        }
        if let Some(h) = &slot.run {
            let run = &h.get().run;
            let nests = outer.is_some_and(|o| Arc::ptr_eq(&o.get().run, run));
            if !nests && run.ended().is_none() && run.owned_by_this_process() {
                return Err(LabError::new_err(format!(
                    "run `{}` of this experiment is still running in another thread; runs of one Experiment cannot nest across threads (use a second Experiment)",
                    run.short_id()
                )));
            }
        }
        slot.starting = true;
        Ok(())
    }

    /// Makes `handle` the experiment's run, ending the claim.
    fn _attach(&self, handle: Py<RunHandle>) {
        let mut slot = self.slot();
        slot.run = Some(handle);
        slot.starting = false;
    }

    /// Ends a claim whose run could not be started.
    fn _release(&self) {
        self.slot().starting = false;
    }

    /// Log one value of a metric.
    ///
    /// `value` is a number (NaN and infinities are kept), or a 1-D array of
    /// numbers stored as `key[0]`, `key[1]`, ... Without `step` the point
    /// takes the step after the metric's last one (0 for the first).
    #[pyo3(signature = (key, value, step=None))]
    fn log_metric(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.handle(py, "log_metric")?
            .get()
            .log_metric_from(key, value, step)
    }

    /// Log several metrics at once, as one record.
    #[pyo3(signature = (metrics, step=None))]
    fn log_metrics(
        &self,
        py: Python<'_>,
        metrics: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.handle(py, "log_metrics")?
            .get()
            .log_metrics_from(metrics, step)
    }
}

/// Starts a run in the project found from the current folder (or
/// `LAB_PROJECT`), making the current folder a project if there is none.
/// Returns the run and, when a project was made, its folder.
///
/// `system_metrics` and `system_metrics_interval` (seconds, or `None` for
/// the default) are the client's say on the system metrics thread;
/// `LAB_SYSTEM_METRICS` and `LAB_SYSTEM_METRICS_INTERVAL` have theirs.
#[pyfunction]
#[pyo3(signature = (experiment, attrs, git_dir, site_dirs, system_metrics=true, system_metrics_interval=None))]
pub fn start_run(
    py: Python<'_>,
    experiment: &Bound<'_, PyAny>,
    attrs: &Bound<'_, PyDict>,
    git_dir: Option<PathBuf>,
    site_dirs: Vec<PathBuf>,
    system_metrics: bool,
    system_metrics_interval: Option<f64>,
) -> PyResult<(RunHandle, Option<String>)> {
    let experiment = convert::key_text("name", experiment)?.into_owned();
    let system_metrics =
        SystemMetrics::resolve(system_metrics, system_metrics_interval).map_err(sdk_err)?;
    let mut values = Vec::with_capacity(attrs.len());
    for (k, v) in attrs.iter() {
        let key = convert::key_text("attrs", &k)?.into_owned();
        // Lab makes every attribute but the user's `dataset`.
        let argument = if key == "dataset" { "dataset" } else { "attrs" };
        let value = convert::value(argument, &v)?;
        values.push((key, value));
    }
    let cwd = std::env::current_dir()?;
    py.detach(|| {
        let (project, created) = Project::discover_or_create(&cwd).map_err(store_err)?;
        let options = StartOptions {
            experiment,
            attrs: values,
            env: EnvRequest { git_dir, site_dirs },
            system_metrics,
        };
        let run = Run::start(&project, options).map_err(sdk_err)?;
        let created = created.then(|| project.root().display().to_string());
        Ok((RunHandle::new(run), created))
    })
}

/// Waits until every ended run is closed, synced and indexed. Returns the
/// problems met, as messages.
#[pyfunction]
pub fn wait_for_background(py: Python<'_>) -> Vec<String> {
    py.detach(lab_sdk::wait_for_background)
}

/// Gives the team server upload thread its grace at exit
/// (`LAB_UPLOAD_GRACE_SECS`, 10 s by default) to send what this process's
/// runs still hold. Returns what is left to say.
#[pyfunction]
pub fn finish_uploads(py: Python<'_>) -> Vec<String> {
    py.detach(|| lab_sdk::team::finish_uploads(lab_sdk::team::grace()))
}

/// To be called in a child right after `os.fork()`: runs started before the
/// fork stay the parent's.
#[pyfunction]
pub fn after_fork_in_child() {
    lab_sdk::after_fork_in_child();
}

/// The name of a Python argument, for an error message.
fn argument_name(argument: &str) -> &'static str {
    match argument {
        "name" => "name",
        "key" => "key",
        _ => "argument",
    }
}

/// Raises `ValueError` unless `name` can name an artifact or model.
#[pyfunction]
pub fn check_name(argument: &str, name: &Bound<'_, PyAny>) -> PyResult<()> {
    let arg = argument_name(argument);
    lab_sdk::check_name(arg, &convert::key_text(arg, name)?).map_err(sdk_err)
}

/// Raises `TypeError` unless `value` is a string, `ValueError` unless it is
/// valid Unicode text.
#[pyfunction]
pub fn check_text(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    convert::key_text(argument, value).map(drop)
}

/// Raises `ValueError` unless `key` can be a key (or an experiment's name).
#[pyfunction]
pub fn check_key(argument: &str, key: &Bound<'_, PyAny>) -> PyResult<()> {
    let arg = argument_name(argument);
    lab_sdk::check_key(arg, &convert::key_text(arg, key)?).map_err(sdk_err)
}

/// The part of an error's text a run keeps, cut before it is copied: a
/// message may be hundreds of megabytes.
fn error_text(text: &Bound<'_, PyString>, max_bytes: usize) -> PyResult<String> {
    // Lone surrogates: an exception's text is kept whatever it holds.
    let text = if let Ok(t) = text.to_cow() {
        t
    } else {
        let bytes = text
            .call_method1("encode", ("utf-8", "backslashreplace"))?
            .extract::<Vec<u8>>()?;
        String::from_utf8_lossy(&bytes).into_owned().into()
    };
    Ok(lab_sdk::cut_text(&text, max_bytes).into_owned())
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

    /// Whether this process started the run (false in a forked child).
    #[getter]
    fn owned(&self) -> bool {
        self.run.owned_by_this_process()
    }

    /// Whether the run has ended.
    #[getter]
    fn ended(&self) -> bool {
        self.run.ended().is_some()
    }

    /// Logs one point of a metric (or of `key[i]` for each element of a 1-D array).
    #[pyo3(signature = (key, value, step=None))]
    fn log_metric(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.log_metric_from(key, value, step)
    }

    /// Logs several metrics at once from a dict.
    #[pyo3(signature = (values, step=None))]
    fn log_metrics(
        &self,
        values: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.log_metrics_from(values, step)
    }

    /// Logs a hyperparameter.
    fn log_param(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = convert::key_text("key", key)?;
        let value = convert::value("value", value)?;
        self.run.log_param(&key, value).map_err(sdk_err)
    }

    /// Logs every item of a dict as a hyperparameter; all are checked first.
    fn log_params(&self, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let dict = convert::mapping("parameters", "names to values", values)?;
        let mut items = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let key = convert::key_text("key", &k)?.into_owned();
            lab_sdk::check_key("key", &key).map_err(sdk_err)?;
            items.push((key, convert::value("parameters", &v)?));
        }
        for (k, v) in items {
            self.run.log_param(&k, v).map_err(sdk_err)?;
        }
        Ok(())
    }

    /// Records a run attribute.
    fn log_attr(&self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.run
            .log_attr(key, convert::value("value", value)?)
            .map_err(sdk_err)
    }

    /// Logs feature names or column indices (already a list of str and int).
    fn log_features(&self, names: &Bound<'_, PyList>) -> PyResult<()> {
        let mut out = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            match convert::value("names", &n)? {
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
        let key = convert::key_text("key", key)?;
        let value = value.str()?;
        self.run
            .set_tag(&key, &convert::text("value", &value)?)
            .map_err(sdk_err)
    }

    /// Replaces the run's note (Markdown text).
    fn log_note(&self, text: &Bound<'_, pyo3::types::PyString>) -> PyResult<()> {
        let text = convert::text("text", text)?;
        self.run.log_note(&text).map_err(sdk_err)
    }

    /// Logs an artifact to copy in at the end.
    fn log_artifact(&self, py: Python<'_>, name: &Bound<'_, PyAny>, path: PathBuf) -> PyResult<()> {
        let name = convert::key_text("name", name)?.into_owned();
        py.detach(|| self.run.log_artifact(&name, &path))
            .map_err(sdk_err)
    }

    /// A new temporary path to serialise model `name` into, for `add_model`.
    fn model_temp_path(&self, name: &str) -> PyResult<PathBuf> {
        self.run.model_temp_path(name).map_err(sdk_err)
    }

    /// Records a serialised model; returns `(path relative to the run, size, sha256)`.
    #[allow(clippy::too_many_arguments)]
    fn add_model(
        &self,
        py: Python<'_>,
        name: String,
        file: PathBuf,
        format: String,
        class_name: String,
        library: String,
        library_version: String,
    ) -> PyResult<(String, u64, String)> {
        py.detach(|| {
            self.run.add_model(
                &name,
                &file,
                &format,
                &class_name,
                &library,
                &library_version,
            )
        })
        .map_err(sdk_err)
    }

    /// Logs an image of raw pixels: `data` holds `height * width *
    /// channels` numbers of numpy type `dtype` (`|u1`, `<f4`, ...), row-major.
    /// Returns the file's path relative to the run's folder and the step.
    #[pyo3(signature = (key, data, height, width, channels, dtype, step=None))]
    #[allow(clippy::too_many_arguments)]
    fn log_image(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        data: &[u8],
        height: usize,
        width: usize,
        channels: usize,
        dtype: &str,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(String, i64)> {
        let key = convert::key_text("key", key)?.into_owned();
        let step = convert::step(step)?;
        let pixel = lab_sdk::media::PixelType::parse(dtype).map_err(sdk_err)?;
        let image = lab_sdk::media::RawImage {
            height,
            width,
            channels,
            pixel,
            data,
        };
        py.detach(|| self.run.log_image(&key, &image, step))
            .map_err(sdk_err)
    }

    /// Logs an image a library encoded as a PNG.
    #[pyo3(signature = (key, data, step=None))]
    fn log_png(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        data: &[u8],
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(String, i64)> {
        let key = convert::key_text("key", key)?.into_owned();
        let step = convert::step(step)?;
        let png = data.to_vec();
        py.detach(|| self.run.log_png(&key, png, step))
            .map_err(sdk_err)
    }

    /// Logs a table: column names (text) and rows (lists of one value per
    /// column).
    #[pyo3(signature = (key, columns, rows, step=None))]
    fn log_table(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        columns: Vec<String>,
        rows: &Bound<'_, PyList>,
        step: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(String, i64)> {
        let key = convert::key_text("key", key)?.into_owned();
        let step = convert::step(step)?;
        let cells = columns.len().saturating_mul(rows.len());
        if cells > lab_sdk::media::MAX_TABLE_CELLS {
            return Err(PyValueError::new_err(format!(
                "`table` must have at most {} cells: got {} rows x {} columns",
                lab_sdk::media::MAX_TABLE_CELLS,
                rows.len(),
                columns.len()
            )));
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            let row = row.cast::<PyList>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "`table` rows must be lists: got {}",
                    convert::describe(&row)
                ))
            })?;
            out.push(
                row.iter()
                    .map(|v| convert::value("table", &v))
                    .collect::<PyResult<Vec<Value>>>()?,
            );
        }
        py.detach(|| self.run.log_table(&key, &columns, &out, step))
            .map_err(sdk_err)
    }

    /// Ends the run with `status` (`finished`, `failed`, `interrupted`) and,
    /// for a failure, `(type, message, traceback)`. Returns warnings.
    ///
    /// The texts may be of any size (only what the run keeps is copied) and
    /// may hold lone surrogates (kept as `\udXXX` escapes).
    #[pyo3(signature = (status, error=None))]
    fn end(
        &self,
        py: Python<'_>,
        status: &str,
        error: Option<(
            Bound<'_, PyString>,
            Bound<'_, PyString>,
            Bound<'_, PyString>,
        )>,
    ) -> PyResult<Vec<String>> {
        let status = Status::parse(status)
            .filter(|s| !matches!(s, Status::Running | Status::Crashed | Status::Unreachable))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "`status` must be finished, failed or interrupted: got {status:?}"
                ))
            })?;
        let error = match error {
            Some((kind, message, traceback)) => Some(ErrorInfo {
                kind: error_text(&kind, lab_sdk::MAX_ERROR_TYPE_BYTES)?,
                message: error_text(&message, lab_sdk::MAX_ERROR_MESSAGE_BYTES)?,
                traceback: error_text(&traceback, lab_sdk::MAX_ERROR_TRACEBACK_BYTES)?,
            }),
            None => None,
        };
        let report = py.detach(|| self.run.end(status, error)).map_err(sdk_err)?;
        Ok(report.warnings)
    }

    /// Starts recording what the process prints on fds 1 and 2, keeping at
    /// most `limit_bytes` of text. Returns whether it did (not when another
    /// run of the process is being captured).
    fn start_capture(&self, py: Python<'_>, limit_bytes: u64) -> PyResult<bool> {
        py.detach(|| self.run.start_capture(limit_bytes))
            .map_err(sdk_err)
    }

    /// Puts fds 1 and 2 back and records the last of what was printed.
    fn stop_capture(&self, py: Python<'_>) {
        py.detach(|| self.run.stop_capture());
    }

    fn __repr__(&self) -> String {
        format!("<RunHandle {}>", self.run.short_id())
    }
}
