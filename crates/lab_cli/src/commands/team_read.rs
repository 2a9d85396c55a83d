//! `lab ls --remote` and `lab show --remote`: the team server's copy of the
//! current project (see `lab_sdk::team::read`), shown by the same code as
//! the local runs.

use anyhow::Result;
use lab_sdk::team::{self, config, read::Remote};
use lab_store::Project;

use crate::args::current_dir;
use crate::output::UserError;

pub(super) use lab_sdk::team::read::{Names, Query};

/// The current project on the server `lab login` (or `LAB_SERVER` and
/// `LAB_TOKEN`) names.
pub(super) fn open() -> Result<Remote> {
    let server = config::current().map_err(|e| error(e, None))?.ok_or_else(|| {
        UserError(
            "no team server to read runs from\n\nhint: `lab login URL` names one, or set `LAB_SERVER` and `LAB_TOKEN`"
                .into(),
        )
    })?;
    let project = Project::discover(&current_dir())?;
    Remote::new(&server, project.root()).map_err(|e| error(e, None))
}

/// A team client error as the CLI reports it: a query error as the local
/// one, a refused token with a hint, anything else naming the URL (all the
/// user's to fix: exit 1), a local file that failed as such.
pub(super) fn error(e: team::Error, remote: Option<&Remote>) -> anyhow::Error {
    match e {
        team::Error::Io(e) => e.into(),
        team::Error::Query(q) => lab_store::Error::Query(q).into(),
        e if e.is_refusal() => UserError(format!(
            "{e}\n\nhint: `lab login {}` with a valid token",
            remote.map_or("URL", Remote::base)
        ))
        .into(),
        e => UserError(e.to_string()).into(),
    }
}
