//! Lab's Python exceptions, and how Rust errors map onto them.
//!
//! Every error about runs and stores derives from `LabError`. Bad arguments
//! raise the built-in `TypeError` (wrong type) or `ValueError` (bad value).

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    lab,
    LabError,
    PyException,
    "The base of every error Lab raises."
);
pyo3::create_exception!(
    lab,
    NotAProjectError,
    LabError,
    "No Lab project here (no `.lab` folder in this folder or above)."
);
pyo3::create_exception!(
    lab,
    RunNotFoundError,
    LabError,
    "No run has an id starting with the given prefix."
);
pyo3::create_exception!(
    lab,
    AmbiguousRunError,
    LabError,
    "Several runs have ids starting with the given prefix."
);
pyo3::create_exception!(
    lab,
    NoActiveRunError,
    LabError,
    "A logging call was made outside a run."
);
pyo3::create_exception!(
    lab,
    RunEndedError,
    LabError,
    "A logging call was made on a run that has ended."
);
pyo3::create_exception!(
    lab,
    ModelNotFoundError,
    LabError,
    "The run has no model of the given name."
);
pyo3::create_exception!(
    lab,
    StorageError,
    LabError,
    "The journal, the index or a file could not be written or read."
);

pyo3::create_exception!(
    lab,
    ServerError,
    LabError,
    "The team server is not configured, cannot be reached, refused the token, or answered with an error."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("LabError", py.get_type::<LabError>())?;
    m.add("NotAProjectError", py.get_type::<NotAProjectError>())?;
    m.add("RunNotFoundError", py.get_type::<RunNotFoundError>())?;
    m.add("AmbiguousRunError", py.get_type::<AmbiguousRunError>())?;
    m.add("NoActiveRunError", py.get_type::<NoActiveRunError>())?;
    m.add("RunEndedError", py.get_type::<RunEndedError>())?;
    m.add("ModelNotFoundError", py.get_type::<ModelNotFoundError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    Ok(())
}

/// A store error as the matching exception, by its kind.
pub fn store_err(e: lab_store::Error) -> PyErr {
    kind_err(e.kind(), e.to_string())
}

/// The exception for each kind of store error.
fn kind_err(kind: lab_store::ErrorKind, msg: String) -> PyErr {
    use lab_store::{ErrorKind, Missing};
    match kind {
        ErrorKind::NotAProject => NotAProjectError::new_err(msg),
        ErrorKind::NotFound(Missing::Run) => RunNotFoundError::new_err(msg),
        ErrorKind::NotFound(Missing::Model) => ModelNotFoundError::new_err(msg),
        ErrorKind::Ambiguous => AmbiguousRunError::new_err(msg),
        ErrorKind::InvalidInput => PyValueError::new_err(msg),
        ErrorKind::Busy | ErrorKind::Storage | ErrorKind::Internal => StorageError::new_err(msg),
    }
}

/// An SDK error as the matching exception, by its kind.
pub fn sdk_err(e: lab_sdk::SdkError) -> PyErr {
    use lab_sdk::SdkErrorKind;
    let msg = e.to_string();
    match e.kind() {
        SdkErrorKind::InvalidArgument => PyValueError::new_err(msg),
        SdkErrorKind::RunEnded => RunEndedError::new_err(msg),
        SdkErrorKind::Store(s) => kind_err(s.kind(), msg),
        SdkErrorKind::Storage => StorageError::new_err(msg),
    }
}

/// A team client error as the matching exception: a bad query is a
/// `ValueError` as a local one is, a run the server does not have a
/// `RunNotFoundError`, a file that failed here a `StorageError`, the rest
/// (no server, a network error, a refused token) a `ServerError` naming the
/// server's URL.
pub fn team_err(e: lab_sdk::team::Error) -> PyErr {
    use lab_sdk::team::Error;
    let msg = e.to_string();
    match e {
        Error::Query(_) | Error::Invalid(_) | Error::Cursor(_) => PyValueError::new_err(msg),
        Error::Status { status: 404, .. } => RunNotFoundError::new_err(msg),
        Error::Io(_) => StorageError::new_err(msg),
        e if e.is_refusal() => {
            ServerError::new_err(format!("{msg}\n\nhint: `lab login URL` with a valid token"))
        }
        _ => ServerError::new_err(msg),
    }
}
