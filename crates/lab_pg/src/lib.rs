//! Lab's index in PostgreSQL, for a team's server: many projects in one
//! database, folded from the same journals by the same fold, and queried in
//! the same query language through the same compiler as the SQLite index of
//! a project on disk.
//!
//! [`PgIndex`] is one project's view of the database. It implements
//! `lab_store`'s [`FoldIndex`](lab_store::index::FoldIndex) (what the fold
//! asks and writes; `write` and `records`), and its [`RunIndex`](lab_store::index::RunIndex)
//! (listing and reading runs back as `RunInfo`; `read`), compiling queries
//! through the [`Postgres`] dialect. Connecting applies the schema's
//! migrations under an advisory lock (`schema`), so any number of servers
//! may start at once.
//!
//! The client is the synchronous `postgres` crate (tokio-postgres with a
//! runtime of its own): the fold is synchronous. Call it from a blocking
//! thread, never from inside an async runtime.

mod dialect;
mod read;
mod records;
mod schema;
mod write;

use std::cell::RefCell;

use lab_store::{Error, ErrorKind, Issue, Project};
use postgres::{Client, NoTls};

pub use dialect::{Postgres, glob_regex};
pub use schema::{CHANNEL, VERSION, migrate_schema};

/// One project's index in a PostgreSQL database.
pub struct PgIndex {
    /// The connection. The fold asks through `&self`; one request at a time.
    client: RefCell<Client>,
    /// The project's row in `lab.projects`.
    project: i32,
    /// The fold's statements, prepared once on the connection.
    prepared: RefCell<records::Prepared>,
}

impl PgIndex {
    /// Connects to the database at `url` (`postgresql://user@host:port/db`),
    /// brings its schema up to date and opens project `project` in it
    /// (made if new).
    pub fn connect(url: &str, project: &str) -> Result<Self, Error> {
        let mut client = Client::connect(url, NoTls).map_err(|e| {
            let mut e = pg_error(&e);
            if let Error::OtherIndex { message, .. } = &mut e {
                *message = format!("cannot connect to `{}`: {message}", redact(url));
            }
            e
        })?;
        schema::migrate(&mut client)?;
        let project = schema::project_id(&mut client, project)?;
        Ok(Self {
            client: RefCell::new(client),
            project,
            prepared: RefCell::default(),
        })
    }

    /// Connects to the database at `url` and brings its schema up to date,
    /// opening no project: for a server to migrate once as it starts.
    pub fn migrate(url: &str) -> Result<(), Error> {
        let mut client = Client::connect(url, NoTls).map_err(|e| {
            let mut e = pg_error(&e);
            if let Error::OtherIndex { message, .. } = &mut e {
                *message = format!("cannot connect to `{}`: {message}", redact(url));
            }
            e
        })?;
        schema::migrate(&mut client)
    }

    /// Folds every journal of `project` (a project on disk) that this index
    /// does not hold complete: `Store::refresh`, into PostgreSQL.
    pub fn fold(&mut self, project: &Project) -> Result<Vec<Issue>, Error> {
        lab_store::index::fold_project(project, self)
    }

    /// Folds the journal of one run of `project`: `Store::fold_run`, into
    /// PostgreSQL.
    pub fn fold_run(&mut self, project: &Project, short_id: &str) -> Result<Vec<Issue>, Error> {
        lab_store::index::fold_one(project, self, short_id)
    }

    /// Deletes every run of this project from the index (the journals are
    /// untouched), to fold them again from nothing.
    pub fn clear(&mut self) -> Result<(), Error> {
        write::clear(&mut self.client.borrow_mut(), self.project)
    }

    /// A number that changes whenever this project's indexed runs change:
    /// equal numbers mean equal answers to any query.
    pub fn generation(&self) -> Result<i64, Error> {
        let row = self
            .client
            .borrow_mut()
            .query_one(
                "SELECT generation FROM lab.projects WHERE id = $1",
                &[&self.project],
            )
            .pg()?;
        Ok(row.get(0))
    }

    /// Each run's id and how many bytes of its meta journal (its edits) are
    /// folded: what a watcher compares between two looks to see an edit,
    /// which changes no status.
    pub fn meta_lens(&self) -> Result<std::collections::HashMap<String, u64>, Error> {
        Ok(self
            .client
            .borrow_mut()
            .query(
                "SELECT id, meta_len FROM lab.runs WHERE project_id = $1",
                &[&self.project],
            )
            .pg()?
            .into_iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1).cast_unsigned()))
            .collect())
    }
}

/// `url` without its password, to show in a message.
#[must_use]
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            match user.find(':') {
                Some(colon) => {
                    format!("{}{}:***{}", &url[..scheme + 3], &user[..colon], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A PostgreSQL failure as a store error, with what kind of failure it is.
fn pg_error(e: &postgres::Error) -> Error {
    let (message, kind) = match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let kind = match &code[..2] {
                // Serialization failures and deadlocks: try again.
                "40" => ErrorKind::Busy,
                // The connection, resources, the server shutting down, the
                // disk or the system under it.
                "08" | "53" | "57" | "58" | "XX" => ErrorKind::Storage,
                _ => ErrorKind::Internal,
            };
            (format!("{} (SQLSTATE {code})", db.message()), kind)
        }
        None => (e.to_string(), ErrorKind::Storage),
    };
    Error::OtherIndex {
        database: "PostgreSQL",
        message,
        kind,
    }
}

/// `?` on a PostgreSQL result, giving a store error.
trait Pg<T> {
    fn pg(self) -> Result<T, Error>;
}

impl<T> Pg<T> for Result<T, postgres::Error> {
    fn pg(self) -> Result<T, Error> {
        self.map_err(|e| pg_error(&e))
    }
}

/// Text as PostgreSQL can keep it: it has no NUL character, so one becomes
/// U+FFFD (values keep their exact form in their encoded column).
fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_of_messages() {
        assert_eq!(
            redact("postgresql://lab:secret@db:5432/lab"),
            "postgresql://lab:***@db:5432/lab"
        );
        assert_eq!(redact("postgresql://lab@db/lab"), "postgresql://lab@db/lab");
        assert_eq!(redact("host=db user=lab"), "host=db user=lab");
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        assert_eq!(text("a\0b"), "a\u{fffd}b");
        assert!(matches!(text("ab"), std::borrow::Cow::Borrowed("ab")));
    }
}
