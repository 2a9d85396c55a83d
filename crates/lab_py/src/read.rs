//! Reading runs back as plain Python dicts, which `lab.run.Run` wraps.

use std::borrow::Cow;

use lab_sdk::team::{config, read::Query, read::Remote};
use lab_store::wire::RunDetail;
use lab_store::{Detail, Project, RunInfo, Selection, Store};
use lab_types::{Status, Value};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::convert::{optional_text, text};
use crate::errors::{ServerError, store_err, team_err};
use crate::pyserde::Converter;

fn open(py: Python<'_>) -> PyResult<Store> {
    let cwd = std::env::current_dir()?;
    py.detach(|| {
        let mut store = Store::discover(&cwd)?;
        store.refresh()?;
        Ok(store)
    })
    .map_err(store_err)
}

/// The fields of [`RunDetail`] that `lab.Run` does not read: those that
/// show an attribute in a form of its own (it reads every attribute as
/// recorded, from `attrs`), and `duration_s` (it has the times). Leaving
/// them out keeps a listing of 10,000 runs from making 100,000 objects
/// nobody reads.
const NOT_READ: &[&str] = &[
    "argv",
    "dataset",
    "duration_s",
    "git",
    "group",
    "host",
    "packages",
    "parent",
    "pid",
    "python",
    "source",
    "user",
];

/// A run as the dict `lab.Run` reads: the run's [`RunDetail`], converted
/// with a [`Converter`] (so times are nanoseconds and NaN a float), and what
/// only Python reads, added here: `attrs` holds every attribute as it was
/// recorded (not only those without a field of their own, which are left
/// out: [`NOT_READ`]), `run_dir` the
/// run's folder, `stringified_params` the parameters kept as their `str()`,
/// and `full` whether the run was read whole (else only what a listing
/// holds: no package list, artifacts or models, a few attributes).
fn run_dict<'py>(
    py: Python<'py>,
    to_python: &Converter<'py>,
    place: &Place,
    run: RunInfo,
    full: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let run_dir = place.run_dir(&run);
    let remote = matches!(place, Place::Remote(_));
    dict_of(py, to_python, run, run_dir, remote, full)
}

/// [`run_dict`] with the run's folder (or URL) given, and whether the run
/// was read from the team server.
fn dict_of<'py>(
    py: Python<'py>,
    to_python: &Converter<'py>,
    run: RunInfo,
    run_dir: String,
    remote: bool,
    full: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let attrs = PyDict::new(py);
    for (k, v) in &run.attrs {
        attrs.set_item(k, to_python.convert(v)?)?;
    }
    let stringified: Vec<&str> = run
        .params
        .iter()
        .filter(|(_, v)| matches!(v, lab_types::Value::Repr(_)))
        .map(|(k, _)| k.as_str())
        .collect();
    let stringified = PyList::new(py, stringified)?;
    let d = to_python.convert(&RunDetail::of(run))?;
    d.set_item(intern!(py, "attrs"), attrs)?;
    d.set_item(intern!(py, "run_dir"), run_dir)?;
    d.set_item(intern!(py, "stringified_params"), stringified)?;
    d.set_item(intern!(py, "full"), full)?;
    d.set_item(intern!(py, "remote"), remote)?;
    Ok(d)
}

/// Where runs are read from: this project, or its copy on the team server.
enum Place {
    Local(Store),
    Remote(Remote),
}

impl Place {
    /// The run's folder here, or its URL on the team server.
    fn run_dir(&self, run: &RunInfo) -> String {
        match self {
            Place::Local(store) => store
                .project()
                .run_paths(&run.short_id)
                .dir
                .display()
                .to_string(),
            Place::Remote(remote) => remote.run_url(&run.id.to_string()).display().to_string(),
        }
    }
}

/// The current project on the team server `lab login` (or `LAB_SERVER` and
/// `LAB_TOKEN`) names.
fn open_remote(py: Python<'_>) -> PyResult<Remote> {
    let cwd = std::env::current_dir()?;
    let server = config::current().map_err(team_err)?.ok_or_else(|| {
        ServerError::new_err(
            "no team server to read runs from\n\nhint: `lab login URL` names one, or set `LAB_SERVER` and `LAB_TOKEN`",
        )
    })?;
    let project = py.detach(|| Project::discover(&cwd)).map_err(store_err)?;
    Remote::new(&server, project.root()).map_err(team_err)
}

/// The runs a selection asks for (all by default, newest first; after the
/// cursor `after`), where they were read from, and the cursor of the next
/// page (none when no run follows within a limited listing).
#[allow(clippy::too_many_arguments)]
fn select<'py>(
    py: Python<'py>,
    experiment: Option<Bound<'py, PyString>>,
    r#where: Option<Bound<'py, PyString>>,
    sort: Vec<Bound<'py, PyString>>,
    status: Vec<Bound<'py, PyString>>,
    limit: Option<usize>,
    remote: bool,
    after: Option<Bound<'py, PyString>>,
) -> PyResult<(Place, Vec<RunInfo>, Option<String>)> {
    let experiment = optional_text("experiment", experiment.as_ref())?;
    let after = optional_text("after", after.as_ref())?;
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
        after,
        detail: Detail::Listing,
    };
    if remote {
        let remote = open_remote(py)?;
        let statuses: Vec<String> = selection.statuses.iter().map(ToString::to_string).collect();
        let listed = py
            .detach(|| {
                remote
                    .runs(&Query {
                        filter: selection.filter.as_deref(),
                        sort: &selection.sort,
                        statuses,
                        experiment: selection.experiment.as_deref(),
                        limit: selection.limit,
                        after: selection.after.as_deref(),
                    })
                    .map_err(Box::new)
            })
            .map_err(|e| team_err(*e))?;
        Ok((Place::Remote(remote), listed.runs, listed.next))
    } else {
        let store = open(py)?;
        let (store, page) = py.detach(move || {
            let page = store.page(&selection);
            (store, page)
        });
        let page = page.map_err(store_err)?;
        Ok((Place::Local(store), page.runs, page.next))
    }
}

/// The runs a selection asks for (all by default, newest first), as dicts.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (experiment=None, r#where=None, sort=Vec::new(), status=Vec::new(), limit=None, remote=false, after=None))]
pub fn list_runs<'py>(
    py: Python<'py>,
    experiment: Option<Bound<'py, PyString>>,
    r#where: Option<Bound<'py, PyString>>,
    sort: Vec<Bound<'py, PyString>>,
    status: Vec<Bound<'py, PyString>>,
    limit: Option<usize>,
    remote: bool,
    after: Option<Bound<'py, PyString>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let (place, runs, _) = select(py, experiment, r#where, sort, status, limit, remote, after)?;
    let to_python = Converter::new(py).leaving_out(NOT_READ);
    runs.into_iter()
        .map(|r| run_dict(py, &to_python, &place, r, false))
        .collect()
}

/// The runs a selection asks for, as [`Listing`]: what `lab.runs()` reads.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (experiment=None, r#where=None, sort=Vec::new(), status=Vec::new(), limit=None, remote=false, after=None))]
pub fn select_runs<'py>(
    py: Python<'py>,
    experiment: Option<Bound<'py, PyString>>,
    r#where: Option<Bound<'py, PyString>>,
    sort: Vec<Bound<'py, PyString>>,
    status: Vec<Bound<'py, PyString>>,
    limit: Option<usize>,
    remote: bool,
    after: Option<Bound<'py, PyString>>,
) -> PyResult<Listing> {
    let (place, runs, next) = select(py, experiment, r#where, sort, status, limit, remote, after)?;
    let dirs = match &place {
        // A run's folder is `<runs folder>/<short id>`: joined when read.
        Place::Local(store) => Dirs::Under(store.project().runs_dir()),
        Place::Remote(_) => Dirs::Each(runs.iter().map(|r| place.run_dir(r)).collect()),
    };
    Ok(Listing { runs, dirs, next })
}

/// Where the runs of a [`Listing`] are.
enum Dirs {
    /// In this folder of the project here, each in a folder named by its
    /// short id.
    Under(std::path::PathBuf),
    /// On the team server, at these URLs.
    Each(Vec<String>),
}

/// The runs of one selection, kept as they were read, not yet Python
/// objects: `lab.runs()` makes a `lab.Run` of each that converts its run
/// ([`Listing::run`]) the first time one of its fields is read, and
/// `as_frame=True` takes them a column at a time ([`Listing::columns`]). A
/// listing of 10,000 runs then costs 10,000 small objects, not the
/// 500,000 its fields would make.
#[pyclass(frozen, module = "lab._lab")]
pub struct Listing {
    runs: Vec<RunInfo>,
    /// Where the runs are.
    dirs: Dirs,
    /// The cursor of the next page, when a limited listing has more runs.
    next: Option<String>,
}

#[pymethods]
impl Listing {
    fn __len__(&self) -> usize {
        self.runs.len()
    }

    /// The cursor of the next page (`after`), or None when no run follows
    /// (or the listing has no limit).
    #[getter]
    fn next(&self) -> Option<String> {
        self.next.clone()
    }

    /// Run `index` as the dict `list_runs` gives.
    fn run<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let out_of_range = || {
            pyo3::exceptions::PyIndexError::new_err(format!(
                "`index` must be below {}: got {index}",
                self.runs.len()
            ))
        };
        let run = self.runs.get(index).ok_or_else(out_of_range)?;
        let (dir, remote) = match &self.dirs {
            Dirs::Under(runs) => (runs.join(&run.short_id).display().to_string(), false),
            Dirs::Each(urls) => (urls.get(index).ok_or_else(out_of_range)?.clone(), true),
        };
        dict_of(
            py,
            &Converter::new(py).leaving_out(NOT_READ),
            run.clone(),
            dir,
            remote,
            false,
        )
    }

    /// The columns of `lab.runs(as_frame=True)`, in order, each as `(name,
    /// dtype, data)`: `id`, `short_id`, `name`, `experiment`, `status`,
    /// `start_time`, `end_time`, `source`, then `params.<name>` and
    /// `metrics.<name>` (each metric's last value) in the order a row after
    /// row reading meets them, NaN where a run lacks one: the table pandas
    /// makes of one dict per run. A column whose every cell pandas would
    /// read as one number type comes as the bytes of a numpy array of
    /// `dtype` (native byte order: `float64`, `int64` or `bool`), the times
    /// as `datetime64[us]` (what `datetime.fromtimestamp(nanos / 1e9, utc)`
    /// holds, `NaT` where a run has none), so that no Python object is made
    /// per cell; any other column as a list of its cells (dtype None), for
    /// pandas to read as it reads them.
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Vec<FrameColumn<'py>>> {
        frame_columns(py, &self.runs)
    }
}

/// A column of [`Listing::columns`]: its name, its numpy dtype (none for
/// a list of objects), its data.
type FrameColumn<'py> = (String, Option<&'static str>, Bound<'py, PyAny>);

/// One column of a data frame, as it is handed to pandas.
enum Column<'py> {
    /// A numpy array of this dtype, as its bytes.
    Array(&'static str, Vec<u8>),
    /// Python objects, one per row.
    Objects(Vec<Bound<'py, PyAny>>),
}

impl<'py> Column<'py> {
    fn into_python(self, py: Python<'py>, name: String) -> PyResult<FrameColumn<'py>> {
        Ok(match self {
            Column::Array(dtype, bytes) => (name, Some(dtype), PyBytes::new(py, &bytes).into_any()),
            Column::Objects(cells) => (name, None, PyList::new(py, cells)?.into_any()),
        })
    }
}

/// The cells of a `params.<name>` or `metrics.<name>` column, row by row
/// (none where the run lacks the name).
enum Cells<'a> {
    Params(Vec<Option<&'a Value>>),
    Metrics(Vec<f64>),
}

impl Cells<'_> {
    fn len(&self) -> usize {
        match self {
            Cells::Params(cells) => cells.len(),
            Cells::Metrics(cells) => cells.len(),
        }
    }

    /// Marks the cell of row `self.len()` missing.
    fn push_missing(&mut self) {
        match self {
            Cells::Params(cells) => cells.push(None),
            Cells::Metrics(cells) => cells.push(f64::NAN),
        }
    }
}

/// The bytes of a numpy array of these numbers, in native byte order.
fn array_bytes<const N: usize, T>(
    values: impl ExactSizeIterator<Item = T>,
    to_bytes: impl Fn(T) -> [u8; N],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * N);
    for v in values {
        out.extend_from_slice(&to_bytes(v));
    }
    out
}

/// The microseconds since the epoch of `datetime.fromtimestamp(nanos /
/// 1e9, utc)`: Python rounds the float's fraction of a second to the
/// nearest microsecond, ties to even.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn fromtimestamp_micros(nanos: i64) -> i64 {
    let t = nanos as f64 / 1e9;
    let mut seconds = t.trunc();
    let mut micros = ((t - seconds) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        seconds += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        seconds -= 1.0;
    }
    (seconds as i64) * 1_000_000 + micros as i64
}

/// A `params.<name>` column: numbers when pandas would read its cells as
/// numbers (every cell an int: `int64`; every one a bool: `bool`; ints,
/// floats and missing cells: `float64`, a missing one NaN), else its cells
/// (a missing one NaN).
fn param_column<'py>(
    to_python: &Converter<'py>,
    nan: &Bound<'py, PyAny>,
    cells: &[Option<&Value>],
) -> PyResult<Column<'py>> {
    let all = |f: fn(Option<&Value>) -> bool| cells.iter().all(|c| f(*c));
    if all(|c| matches!(c, Some(Value::Int(_)))) {
        let ints = cells.iter().map(|c| match c {
            Some(Value::Int(i)) => *i,
            _ => 0,
        });
        return Ok(Column::Array("int64", array_bytes(ints, i64::to_ne_bytes)));
    }
    if all(|c| matches!(c, Some(Value::Bool(_)))) {
        let bools = cells
            .iter()
            .map(|c| u8::from(matches!(c, Some(Value::Bool(true)))));
        return Ok(Column::Array("bool", array_bytes(bools, |b| [b])));
    }
    if all(|c| matches!(c, None | Some(Value::Int(_) | Value::Float(_)))) {
        #[allow(clippy::cast_precision_loss)] // as pandas makes a float of an int
        let floats = cells.iter().map(|c| match c {
            Some(Value::Int(i)) => *i as f64,
            Some(Value::Float(f)) => *f,
            _ => f64::NAN,
        });
        return Ok(Column::Array(
            "float64",
            array_bytes(floats, f64::to_ne_bytes),
        ));
    }
    let objects = cells
        .iter()
        .map(|c| c.map_or_else(|| Ok(nan.clone()), |v| to_python.convert(v)))
        .collect::<PyResult<_>>()?;
    Ok(Column::Objects(objects))
}

/// A time column: `datetime64[us]` with `NaT` for a missing time, or, when
/// every time is missing, `None` in every cell (as pandas keeps a column of
/// `None`).
fn time_column<'py>(py: Python<'py>, times: &[Option<i64>]) -> Column<'py> {
    if times.iter().all(Option::is_none) {
        return Column::Objects(vec![py.None().into_bound(py); times.len()]);
    }
    // numpy's NaT is the smallest i64.
    let micros = times
        .iter()
        .map(|t| t.map_or(i64::MIN, fromtimestamp_micros));
    Column::Array("datetime64[us]", array_bytes(micros, i64::to_ne_bytes))
}

/// A column of strings, one Python string per distinct value in a row (an
/// experiment or a status repeats from run to run).
fn text_column<'py, 'a>(
    py: Python<'py>,
    values: impl Iterator<Item = Cow<'a, str>>,
) -> Column<'py> {
    let mut last: Option<(Cow<'a, str>, Bound<'py, PyAny>)> = None;
    let cells = values
        .map(|v| match &last {
            Some((text, cell)) if *text == v => cell.clone(),
            _ => {
                let cell = PyString::new(py, &v).into_any();
                last = Some((v, cell.clone()));
                cell
            }
        })
        .collect();
    Column::Objects(cells)
}

/// The columns of [`Listing::columns`].
fn frame_columns<'py>(py: Python<'py>, runs: &[RunInfo]) -> PyResult<Vec<FrameColumn<'py>>> {
    let to_python = Converter::new(py);
    let nan = pyo3::types::PyFloat::new(py, f64::NAN).into_any();
    let none = py.None().into_bound(py);
    let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    let source = runs
        .iter()
        .map(|run| {
            run.attrs
                .iter()
                .rev()
                .find(|(k, _)| k == lab_types::fields::attr::SOURCE)
                .map_or_else(|| Ok(none.clone()), |(_, v)| to_python.convert(v))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let starts: Vec<Option<i64>> = runs.iter().map(|r| Some(r.start_nanos)).collect();
    let ends: Vec<Option<i64>> = runs.iter().map(|r| r.end_nanos).collect();
    let base = [
        text_column(py, ids.iter().map(|id| Cow::Borrowed(id.as_str()))),
        text_column(py, runs.iter().map(|r| Cow::Borrowed(r.short_id.as_str()))),
        text_column(py, runs.iter().map(|r| Cow::Owned(r.name()))),
        text_column(
            py,
            runs.iter().map(|r| Cow::Borrowed(r.experiment.as_str())),
        ),
        text_column(py, runs.iter().map(|r| Cow::Borrowed(r.status.as_str()))),
        time_column(py, &starts),
        time_column(py, &ends),
        Column::Objects(source),
    ];
    // `params.<name>` (kind 0) and `metrics.<name>` (kind 1) columns, in
    // the order first met.
    let mut index: std::collections::HashMap<(u8, &str), usize> = std::collections::HashMap::new();
    let mut named: Vec<(String, Cells<'_>)> = Vec::new();
    let mut keys: Vec<(u8, &str)> = Vec::new();
    // The columns of the previous run's names, in its order: runs mostly
    // name the same things in the same order, found so without hashing.
    let mut order: Vec<usize> = Vec::new();
    for (row, run) in runs.iter().enumerate() {
        let params = run
            .params
            .iter()
            .map(|(k, v)| (0, k.as_str(), Some(v), 0.0));
        let metrics = run
            .metrics
            .iter()
            .map(|m| (1, m.name.as_str(), None, m.last));
        for (j, (kind, key, param, last)) in params.chain(metrics).enumerate() {
            let at = match order.get(j) {
                Some(&at) if keys[at] == (kind, key) => at,
                _ => *index.entry((kind, key)).or_insert_with(|| {
                    let (prefix, cells) = if kind == 0 {
                        ("params.", Cells::Params(vec![None; row]))
                    } else {
                        ("metrics.", Cells::Metrics(vec![f64::NAN; row]))
                    };
                    named.push((format!("{prefix}{key}"), cells));
                    keys.push((kind, key));
                    named.len() - 1
                }),
            };
            if j < order.len() {
                order[j] = at;
            } else {
                order.push(at);
            }
            // A name twice in one run: the later value, as a dict keeps.
            match &mut named[at].1 {
                Cells::Params(cells) if cells.len() > row => cells[row] = param,
                Cells::Params(cells) => cells.push(param),
                Cells::Metrics(cells) if cells.len() > row => cells[row] = last,
                Cells::Metrics(cells) => cells.push(last),
            }
        }
        for (_, cells) in &mut named {
            if cells.len() == row {
                cells.push_missing();
            }
        }
    }
    let mut out = Vec::with_capacity(base.len() + named.len());
    for (name, column) in lab_store::fields::TABLE_FIELDS.into_iter().zip(base) {
        out.push(column.into_python(py, name.to_owned())?);
    }
    for (name, cells) in named {
        let column = match cells {
            Cells::Params(cells) => param_column(&to_python, &nan, &cells)?,
            Cells::Metrics(cells) => {
                Column::Array("float64", array_bytes(cells.into_iter(), f64::to_ne_bytes))
            }
        };
        out.push(column.into_python(py, name)?);
    }
    Ok(out)
}

/// The run whose id starts with `prefix`, as a dict.
#[pyfunction]
#[pyo3(signature = (prefix, remote=false))]
pub fn get_run<'py>(
    py: Python<'py>,
    prefix: &Bound<'py, PyString>,
    remote: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let prefix = text("run_id", prefix)?.into_owned();
    let (place, run) = if remote {
        let remote = open_remote(py)?;
        let run = py
            .detach(|| remote.run(&prefix).map_err(Box::new))
            .map_err(|e| team_err(*e))?;
        (Place::Remote(remote), run)
    } else {
        let store = open(py)?;
        let (store, run) = py.detach(move || {
            let run = store.run(&prefix);
            (store, run)
        });
        (Place::Local(store), run.map_err(store_err)?)
    };
    run_dict(
        py,
        &Converter::new(py).leaving_out(NOT_READ),
        &place,
        run,
        true,
    )
}

/// Edits run `run` (an id prefix or a name) of the project here: its name,
/// tags set, tags removed, note. Returns the run as edited, as `get_run`
/// does. The edit is durable when this returns; with a team server
/// configured, it is then sent there on the project's upload thread.
#[pyfunction]
#[pyo3(signature = (run, name=None, tags=None, untag=None, note=None))]
pub fn edit_run<'py>(
    py: Python<'py>,
    run: &Bound<'py, PyString>,
    name: Option<&Bound<'py, PyString>>,
    tags: Option<Vec<(String, String)>>,
    untag: Option<Vec<String>>,
    note: Option<&Bound<'py, PyString>>,
) -> PyResult<Bound<'py, PyAny>> {
    let run = text("run", run)?.into_owned();
    let edit = lab_store::Edit {
        name: name
            .map(|n| text("name", n))
            .transpose()?
            .map(Cow::into_owned),
        tags: tags.unwrap_or_default(),
        untag: untag.unwrap_or_default(),
        note: note
            .map(|n| text("note", n))
            .transpose()?
            .map(Cow::into_owned),
        group: None,
    };
    let mut store = open(py)?;
    let (store, edited) = py.detach(move || {
        let edited = store.edit(&run, &edit);
        if let Ok(info) = &edited {
            // In team mode the edit travels, before the process exits.
            let project = store.project();
            lab_sdk::team::send_edits(project, &info.short_id, &project.run_paths(&info.short_id));
        }
        (store, edited)
    });
    run_dict(
        py,
        &Converter::new(py).leaving_out(NOT_READ),
        &Place::Local(store),
        edited.map_err(store_err)?,
        true,
    )
}

/// Every point of a metric: a list of `(step, time_nanos, value)`; with
/// `remote`, read from the team server's copy of the run's journal.
#[pyfunction]
#[pyo3(signature = (run_id, name, remote=false))]
pub fn metric_history(
    py: Python<'_>,
    run_id: &Bound<'_, PyString>,
    name: &Bound<'_, PyString>,
    remote: bool,
) -> PyResult<Vec<(i64, i64, f64)>> {
    let run_id = text("run_id", run_id)?.into_owned();
    let name = text("name", name)?.into_owned();
    if remote {
        let remote = open_remote(py)?;
        return py
            .detach(move || {
                let run = remote.run(&run_id).map_err(Box::new)?;
                remote.metric_history(&run, &name).map_err(Box::new)
            })
            .map_err(|e| team_err(*e));
    }
    let store = open(py)?;
    py.detach(move || {
        let run = store.run(&run_id)?;
        store.metric_history(&run, &name)
    })
    .map_err(store_err)
}

/// What a run printed, in order: a list of `(time_nanos, stream, text)`
/// with `stream` `stdout` or `stderr`; where a bounded capture left lines
/// out, one `(time_nanos, "lab", note)` says how many. With `remote`, read
/// from the team server's copy of the run's journal.
#[pyfunction]
#[pyo3(signature = (run_id, remote=false))]
pub fn console(
    py: Python<'_>,
    run_id: &Bound<'_, PyString>,
    remote: bool,
) -> PyResult<Vec<(i64, &'static str, String)>> {
    let run_id = text("run_id", run_id)?.into_owned();
    if remote {
        let remote = open_remote(py)?;
        return py
            .detach(move || {
                let run = remote.run(&run_id).map_err(Box::new)?;
                let events = remote.console(&run).map_err(Box::new)?;
                Ok::<_, Box<lab_sdk::team::Error>>(console_lines(run.start_nanos, events))
            })
            .map_err(|e| team_err(*e));
    }
    let store = open(py)?;
    py.detach(move || {
        let run = store.run(&run_id)?;
        let mut events = Vec::new();
        store.read_console(&run.short_id, 0, |event| events.push(event))?;
        Ok(console_lines(run.start_nanos, events))
    })
    .map_err(store_err)
}

/// Console events as `Run.logs()` gives them: a cut is a line of stream
/// `lab` at the time of the line before it.
fn console_lines(
    start_nanos: i64,
    events: Vec<lab_store::ConsoleEvent>,
) -> Vec<(i64, &'static str, String)> {
    let mut out = Vec::new();
    let mut last_nanos = start_nanos;
    for event in events {
        match event {
            lab_store::ConsoleEvent::Line {
                stream,
                time_nanos,
                text,
            } => {
                last_nanos = time_nanos;
                out.push((time_nanos, stream.as_str(), text));
            }
            // A cut of nothing only says the tail is in the journal.
            lab_store::ConsoleEvent::Cut { lines: 0, .. } | lab_store::ConsoleEvent::Ended => {}
            lab_store::ConsoleEvent::Cut { lines, bytes } => out.push((
                last_nanos,
                "lab",
                format!("[lab: {lines} lines ({bytes} bytes) left out here: the run printed more than it keeps]"),
            )),
        }
    }
    out
}

/// Fetches the file whose SHA-256 is `sha256` from the team server into
/// `path`, checked as it arrives; returns its size.
#[pyfunction]
pub fn fetch_blob(
    py: Python<'_>,
    sha256: &Bound<'_, PyString>,
    path: std::path::PathBuf,
) -> PyResult<u64> {
    let sha256 = text("sha256", sha256)?.into_owned();
    let remote = open_remote(py)?;
    py.detach(move || remote.fetch_blob(&sha256, &path).map_err(Box::new))
        .map_err(|e| team_err(*e))
}

/// The folder of the project found from the current folder.
#[pyfunction]
pub fn project_root(py: Python<'_>) -> PyResult<String> {
    let store = open(py)?;
    Ok(store.project().root().display().to_string())
}

#[cfg(test)]
mod tests {
    use super::fromtimestamp_micros;

    #[test]
    fn times_round_to_microseconds_as_python_fromtimestamp_does() {
        // `(nanos, microseconds of datetime.fromtimestamp(nanos / 1e9, utc))`
        // as CPython 3 computes them: ties to even, and the float's error
        // where it has one (the ...1500 below).
        let python = [
            (0, 0),
            (1, 0),
            (499, 0),
            (500, 0),
            (501, 1),
            (1500, 2),
            (2500, 2),
            (-1, 0),
            (-500, 0),
            (-1500, -2),
            (999_999_499, 999_999),
            (999_999_500, 1_000_000),
            (999_999_501, 1_000_000),
            (-999_999_500, -1_000_000),
            (1_764_560_000_000_000_500, 1_764_560_000_000_000),
            (1_764_560_000_000_001_500, 1_764_560_000_000_001),
            (1_764_560_000_999_999_600, 1_764_560_001_000_000),
            (-1_000_000_000_000_000_000, -1_000_000_000_000_000),
            (1_827_600_247_627_320_631, 1_827_600_247_627_321),
            (1_627_835_230_574_584_912, 1_627_835_230_574_585),
            (1_654_262_275_521_876_011, 1_654_262_275_521_876),
            (1_723_765_076_861_079_285, 1_723_765_076_861_079),
            (1_649_545_205_289_406_680, 1_649_545_205_289_407),
            (1_841_059_834_533_996_378, 1_841_059_834_533_996),
        ];
        for (nanos, micros) in python {
            assert_eq!(fromtimestamp_micros(nanos), micros, "{nanos}");
        }
    }
}
