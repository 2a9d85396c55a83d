//! `lab._lab`: the native half of the Python package.
//!
//! Conversions (Python values to [`lab_types::Value`], numbers, steps) and
//! exceptions live here; the run lifecycle is `lab_sdk`'s and reading back is
//! `lab_store`'s.

// PyO3 extracts arguments as owned values, and closures that release the
// GIL need owned data; `map_err(store_err)` wants errors by value.
#![allow(clippy::needless_pass_by_value)]

mod convert;
mod errors;
mod pyserde;
mod read;
mod run;

use pyo3::prelude::*;

// Lab's own allocations (listings, journal records) go through mimalloc, as in
// the `lab` binary; Python's objects keep Python's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `lab._lab` module.
#[pymodule]
fn _lab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The attribute names of `lab_types::fields`, as `ATTR_SOURCE = "source"`
    // and so on: the Python side records and reads attributes by these.
    for name in lab_types::fields::attr::ALL {
        m.add(format!("ATTR_{}", name.to_ascii_uppercase()), *name)?;
    }
    errors::register(m)?;
    m.add_class::<run::RunHandle>()?;
    m.add_class::<run::ExperimentCore>()?;
    m.add_function(wrap_pyfunction!(run::start_run, m)?)?;
    m.add_function(wrap_pyfunction!(run::wait_for_background, m)?)?;
    m.add_function(wrap_pyfunction!(run::finish_uploads, m)?)?;
    m.add_function(wrap_pyfunction!(run::check_name, m)?)?;
    m.add_function(wrap_pyfunction!(run::check_key, m)?)?;
    m.add_function(wrap_pyfunction!(run::check_text, m)?)?;
    m.add_function(wrap_pyfunction!(run::after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(read::list_runs, m)?)?;
    m.add_function(wrap_pyfunction!(read::select_runs, m)?)?;
    m.add_class::<read::Listing>()?;
    m.add_function(wrap_pyfunction!(read::get_run, m)?)?;
    m.add_function(wrap_pyfunction!(read::edit_run, m)?)?;
    m.add_function(wrap_pyfunction!(read::metric_history, m)?)?;
    m.add_function(wrap_pyfunction!(read::console, m)?)?;
    m.add_function(wrap_pyfunction!(read::fetch_blob, m)?)?;
    m.add_function(wrap_pyfunction!(read::project_root, m)?)?;
    Ok(())
}
