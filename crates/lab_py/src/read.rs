//! Reading runs back as plain Python dicts, which `lab.run.Run` wraps.

use std::borrow::Cow;

use lab_store::{Detail, RunInfo, Selection, Store};
use lab_types::Status;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::convert::{optional_text, text, to_py};
use crate::errors::store_err;

fn open(py: Python<'_>) -> PyResult<Store> {
    let cwd = std::env::current_dir()?;
    py.detach(|| {
        let mut store = Store::discover(&cwd)?;
        store.refresh()?;
        Ok(store)
    })
    .map_err(store_err)
}

/// A run as a dict; `full` says whether it holds everything (else only what
/// a listing holds: no package list, artifacts or models, a few attributes).
fn run_dict<'py>(
    py: Python<'py>,
    store: &Store,
    run: &RunInfo,
    full: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("full", full)?;
    d.set_item("id", run.id.to_string())?;
    d.set_item("short_id", &run.short_id)?;
    d.set_item("experiment", &run.experiment)?;
    d.set_item("status", run.status.as_str())?;
    d.set_item("start_nanos", run.start_nanos)?;
    d.set_item("end_nanos", run.end_nanos)?;
    d.set_item("run_dir", store.project().run_paths(&run.short_id).dir)?;
    let attrs = PyDict::new(py);
    for (k, v) in &run.attrs {
        attrs.set_item(k, to_py(py, v)?)?;
    }
    d.set_item("attrs", attrs)?;
    let features = PyList::empty(py);
    for f in &run.features {
        features.append(to_py(py, f)?)?;
    }
    d.set_item("features", features)?;
    let params = PyDict::new(py);
    let stringified = PyList::empty(py);
    for (k, v) in &run.params {
        params.set_item(k, to_py(py, v)?)?;
        if matches!(v, lab_types::Value::Repr(_)) {
            stringified.append(k)?;
        }
    }
    d.set_item("params", params)?;
    d.set_item("stringified_params", stringified)?;
    // (name, last, last_step, min, max, count) per metric, in logging order.
    let metrics = PyList::empty(py);
    for m in &run.metrics {
        metrics.append((&m.name, m.last, m.last_step, m.min, m.max, m.count))?;
    }
    d.set_item("metrics", metrics)?;
    let tags = PyDict::new(py);
    for (k, v) in &run.tags {
        tags.set_item(k, v)?;
    }
    d.set_item("tags", tags)?;
    let artifacts = PyList::empty(py);
    for a in &run.artifacts {
        let x = PyDict::new(py);
        x.set_item("name", &a.name)?;
        x.set_item("source", &a.source)?;
        x.set_item("path", &a.path)?;
        x.set_item("files", a.files)?;
        x.set_item("bytes", a.bytes)?;
        artifacts.append(x)?;
    }
    d.set_item("artifacts", artifacts)?;
    let models = PyList::empty(py);
    for m in &run.models {
        let x = PyDict::new(py);
        x.set_item("name", &m.name)?;
        x.set_item("path", &m.path)?;
        x.set_item("format", &m.format)?;
        x.set_item("class", &m.class)?;
        x.set_item("library", &m.library)?;
        x.set_item("library_version", &m.library_version)?;
        x.set_item("size", m.size)?;
        x.set_item("sha256", &m.sha256)?;
        x.set_item("logged_nanos", m.logged_nanos)?;
        models.append(x)?;
    }
    d.set_item("models", models)?;
    match &run.error {
        Some(e) => {
            let x = PyDict::new(py);
            x.set_item("type", &e.kind)?;
            x.set_item("message", &e.message)?;
            x.set_item("traceback", &e.traceback)?;
            d.set_item("error", x)?;
        }
        None => d.set_item("error", py.None())?,
    }
    d.set_item("damage", &run.damage)?;
    Ok(d)
}

/// The runs a selection asks for (all by default, newest first), as dicts.
#[pyfunction]
#[pyo3(signature = (experiment=None, r#where=None, sort=Vec::new(), status=Vec::new(), limit=None))]
pub fn list_runs<'py>(
    py: Python<'py>,
    experiment: Option<Bound<'py, PyString>>,
    r#where: Option<Bound<'py, PyString>>,
    sort: Vec<Bound<'py, PyString>>,
    status: Vec<Bound<'py, PyString>>,
    limit: Option<usize>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let experiment = optional_text("experiment", experiment.as_ref())?;
    let r#where = optional_text("where", r#where.as_ref())?;
    let sort = sort
        .iter()
        .map(|s| text("sort", s).map(Cow::into_owned))
        .collect::<PyResult<Vec<_>>>()?;
    let statuses = status
        .iter()
        .map(|s| {
            let s = text("status", s)?;
            Status::parse(&s).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "`status` must be one of running, finished, failed, crashed, interrupted: got {s:?}"
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let selection = Selection {
        experiment,
        statuses,
        filter: r#where,
        sort,
        limit,
        offset: 0,
        detail: Detail::Listing,
    };
    let store = open(py)?;
    let (store, runs) = py.detach(move || {
        let runs = store.select(&selection);
        (store, runs)
    });
    let runs = runs.map_err(store_err)?;
    runs.iter()
        .map(|r| run_dict(py, &store, r, false))
        .collect()
}

/// The run whose id starts with `prefix`, as a dict.
#[pyfunction]
pub fn get_run<'py>(
    py: Python<'py>,
    prefix: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyDict>> {
    let prefix = text("run_id", prefix)?.into_owned();
    let store = open(py)?;
    let (store, run) = py.detach(move || {
        let run = store.run(&prefix);
        (store, run)
    });
    let run = run.map_err(store_err)?;
    run_dict(py, &store, &run, true)
}

/// Every point of a metric: a list of `(step, time_nanos, value)`.
#[pyfunction]
pub fn metric_history(
    py: Python<'_>,
    run_id: &Bound<'_, PyString>,
    name: &Bound<'_, PyString>,
) -> PyResult<Vec<(i64, i64, f64)>> {
    let run_id = text("run_id", run_id)?.into_owned();
    let name = text("name", name)?.into_owned();
    let store = open(py)?;
    py.detach(move || {
        let run = store.run(&run_id)?;
        store.metric_history(&run, &name)
    })
    .map_err(store_err)
}

/// The folder of the project found from the current folder.
#[pyfunction]
pub fn project_root(py: Python<'_>) -> PyResult<String> {
    let store = open(py)?;
    Ok(store.project().root().display().to_string())
}
