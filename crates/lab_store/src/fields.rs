//! The one table of a run's fields: for each name (from
//! [`lab_types::fields`]), where the index keeps it, what kind of value it
//! is, and whether listings carry it. The fold, the query compiler, the
//! listing summary and the API all read this table; adding a field is one
//! row here (and, for a new column, a migration).

use lab_types::fields::{attr, field};

/// What kind of value a field holds, as queries compare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Text, compared with quoted strings and matched with `~`.
    Text,
    /// A time, compared with dates.
    Time,
    /// A number.
    Number,
    /// True or false (stored as 0 or 1).
    Bool,
}

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The run itself: its Start and End records.
    Run,
    /// An attribute of that name, which the fold copies into `column`.
    Attr,
}

/// One field of a run.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Its name, as records, queries, tables and the API spell it.
    pub name: &'static str,
    /// Where it comes from.
    pub origin: Origin,
    /// Its SQL over the `runs` table (a column or an expression), when the
    /// index keeps it there: such a field can be filtered and sorted on.
    pub column: Option<&'static str>,
    /// What kind of value it is.
    pub kind: FieldKind,
    /// Whether a listing of runs carries it (attributes: copied into each
    /// run's listing summary; the rest are in every listing anyway).
    pub listed: bool,
}

/// A run's own columns in tables of runs, in this order: CSV and Parquet
/// exports (`lab ls --format csv`, `lab export`) and the Python data frame
/// (`lab.runs(as_frame=True)`).
pub const TABLE_FIELDS: [&str; 8] = [
    "id",
    "short_id",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "source",
];

const fn run(name: &'static str, column: &'static str, kind: FieldKind) -> Field {
    Field {
        name,
        origin: Origin::Run,
        column: Some(column),
        kind,
        listed: true,
    }
}

const fn attribute(
    name: &'static str,
    column: Option<&'static str>,
    kind: FieldKind,
    listed: bool,
) -> Field {
    Field {
        name,
        origin: Origin::Attr,
        column,
        kind,
        listed,
    }
}

/// Every field a run has, in the order tables and the API show them.
pub const FIELDS: &[Field] = &[
    run(field::ID, "runs.id", FieldKind::Text),
    run(field::SHORT_ID, "runs.short_id", FieldKind::Text),
    run(field::EXPERIMENT, "runs.experiment", FieldKind::Text),
    run(field::STATUS, "runs.status", FieldKind::Text),
    run(field::START_TIME, "runs.start_nanos", FieldKind::Time),
    run(field::END_TIME, "runs.end_nanos", FieldKind::Time),
    run(
        field::DURATION,
        // Spelt alike in SQLite and PostgreSQL, and computed alike: the
        // difference in whole nanoseconds, then one division of doubles.
        "(CAST(runs.end_nanos - runs.start_nanos AS DOUBLE PRECISION) / 1e9)",
        FieldKind::Number,
    ),
    attribute(attr::NAME, Some("runs.name"), FieldKind::Text, true),
    attribute(attr::SOURCE, Some("runs.source"), FieldKind::Text, true),
    attribute(attr::USER, Some("runs.user"), FieldKind::Text, true),
    attribute(attr::HOST, Some("runs.host"), FieldKind::Text, true),
    attribute(
        attr::GIT_COMMIT,
        Some("runs.git_commit"),
        FieldKind::Text,
        true,
    ),
    attribute(
        attr::PYTHON_VERSION,
        Some("runs.python_version"),
        FieldKind::Text,
        true,
    ),
    attribute(
        attr::GIT_DIRTY,
        Some("runs.git_dirty"),
        FieldKind::Bool,
        true,
    ),
    attribute(attr::GIT_BRANCH, None, FieldKind::Text, true),
    // `group` is a word of SQL: its column has another name.
    attribute(attr::GROUP, Some("runs.run_group"), FieldKind::Text, true),
    attribute(attr::PARENT, Some("runs.parent"), FieldKind::Text, true),
    attribute(attr::DATASET, None, FieldKind::Text, true),
    attribute(attr::ARGV, None, FieldKind::Text, false),
    attribute(attr::PID, None, FieldKind::Number, false),
    attribute(attr::PYTHON_EXECUTABLE, None, FieldKind::Text, false),
    attribute(attr::CWD, None, FieldKind::Text, false),
    attribute(attr::LAB_VERSION, None, FieldKind::Text, false),
    attribute(attr::LAUNCH, None, FieldKind::Text, false),
    attribute(attr::PACKAGES, None, FieldKind::Text, false),
    attribute(attr::WRITER, None, FieldKind::Text, false),
    // Kept in `runs.note` too, for the plain-word search, but no field of
    // queries: `note` names a parameter in projects older than notes.
    attribute(attr::NOTE, None, FieldKind::Text, false),
];

/// The field called `name`, if there is one.
#[must_use]
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The fields a query may name: those the index keeps in a column the
/// compiler can compare (booleans are not comparable yet).
pub fn queryable() -> impl Iterator<Item = &'static Field> {
    FIELDS
        .iter()
        .filter(|f| f.column.is_some() && f.kind != FieldKind::Bool)
}

/// The attributes the fold copies into a column of `runs`, with the column.
pub fn attr_columns() -> impl Iterator<Item = (&'static str, &'static str)> {
    FIELDS.iter().filter_map(|f| match (f.origin, f.column) {
        (Origin::Attr, Some(c)) => Some((f.name, c.trim_start_matches("runs."))),
        _ => None,
    })
}

/// The attributes a listing carries (in each run's summary); the others
/// (the package list above all) are read only for a run's full detail.
pub fn listed_attrs() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .filter(|f| f.origin == Origin::Attr && f.listed)
        .map(|f| f.name)
}

/// [`listed_attrs`] as an SQL list of string literals, `'source', 'user', …`.
pub(crate) fn listed_attrs_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        listed_attrs()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    &SQL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_columns_exist() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate(&conn).unwrap();
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.name), "{} twice", f.name);
            if let Some(sql) = f.column {
                conn.prepare(&format!("SELECT {sql} FROM runs"))
                    .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            }
        }
        assert!(queryable().any(|f| f.name == "duration"));
        assert!(attr_columns().any(|(a, c)| a == "git_dirty" && c == "git_dirty"));
        assert!(listed_attrs().any(|a| a == "dataset"));
        assert!(queryable().any(|f| f.name == "group"));
        assert!(attr_columns().any(|(a, c)| a == "group" && c == "run_group"));
        assert!(!listed_attrs().any(|a| a == "packages"));
    }
}
