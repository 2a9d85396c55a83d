//! The one table of a run's fields: for each name (from
//! [`lab_types::fields`]), where the index keeps it, what kind of value it
//! is, and whether listings carry it. The fold, the query compiler, the
//! listing summary and the API all read this table; adding a field is one
//! row here (and, for a new column, a migration).

use lab_types::Value;
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

/// The `runs` columns that hold attributes, as [`crate::read::RUN_COLUMNS`]
/// lists them after the run's own: the order of [`attr_columns`].
pub(crate) const ATTR_COLUMNS_SQL: &str =
    "name, source, user, host, git_commit, python_version, git_dirty, run_group, parent";

/// The attribute columns of [`ATTR_COLUMNS_SQL`] by the attribute's name:
/// the attribute, the column's place among them, and its kind.
static COLUMNS_BY_NAME: std::sync::LazyLock<Vec<(&'static str, usize, FieldKind)>> =
    std::sync::LazyLock::new(|| {
        let mut columns: Vec<_> = attr_columns()
            .enumerate()
            .map(|(at, (name, _))| (name, at, field(name).map_or(FieldKind::Text, |f| f.kind)))
            .collect();
        columns.sort_by_key(|c| c.0);
        columns
    });

/// Whether the `runs` column that attribute `key` of run `short_id` is
/// copied into gives `value` back exactly. Such an attribute is kept there
/// alone: it has no `attrs` row and no copy in the listing summary, and
/// [`column_attrs`] reads it back. That is text in a text column and a bool
/// in a bool column, but for a run's name the one generated from its short
/// id, which the column holds for a run never named (`short_id` is read
/// only for `name`).
pub(crate) fn held_by_column(key: &str, value: &Value, short_id: &str) -> bool {
    COLUMNS_BY_NAME
        .binary_search_by_key(&key, |c| c.0)
        .is_ok_and(|at| gives_back(key, COLUMNS_BY_NAME[at].2, value, short_id))
}

/// [`held_by_column`] of an attribute whose column is of `kind`.
fn gives_back(key: &str, kind: FieldKind, value: &Value, short_id: &str) -> bool {
    match (kind, value) {
        (FieldKind::Text, Value::Str(s)) => {
            key != attr::NAME || !lab_types::names::is_generated_name(short_id, s)
        }
        (FieldKind::Bool, Value::Bool(_)) => true,
        _ => false,
    }
}

/// The attributes a run's row holds alone (see [`held_by_column`]), from the
/// [`ATTR_COLUMNS_SQL`] columns of `row`, the first at `first`, by name. A
/// column holding a value of another kind (the text of a number) is left
/// out: that attribute has its `attrs` row, which the caller's rows put
/// first (see [`add_column_attrs`]).
pub(crate) fn column_attrs(
    row: &rusqlite::Row<'_>,
    first: usize,
    short_id: &str,
) -> rusqlite::Result<Vec<(String, Value)>> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::new();
    for &(name, at, kind) in COLUMNS_BY_NAME.iter() {
        let value = match row.get_ref(first + at)? {
            ValueRef::Integer(n) => Value::Bool(n != 0),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => Value::Str(t.to_owned()),
                Err(_) => continue,
            },
            _ => continue,
        };
        if gives_back(name, kind, &value, short_id) {
            out.push((name.to_owned(), value));
        }
    }
    Ok(out)
}

/// Adds to `attrs` (a run's attributes by name, read from `attrs` rows or
/// its summary) those of `columns` (by name, from [`column_attrs`]) it does
/// not have, keeping them by name.
pub(crate) fn add_column_attrs(attrs: &mut Vec<(String, Value)>, columns: Vec<(String, Value)>) {
    if columns.is_empty() {
        return;
    }
    if attrs.is_empty() {
        *attrs = columns;
        return;
    }
    let rows = std::mem::take(attrs);
    attrs.reserve(rows.len() + columns.len());
    let mut rows = rows.into_iter().peekable();
    let mut columns = columns.into_iter().peekable();
    loop {
        let order = match (rows.peek(), columns.peek()) {
            (Some(r), Some(c)) => r.0.cmp(&c.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        let next = match order {
            std::cmp::Ordering::Less => rows.next(),
            std::cmp::Ordering::Greater => columns.next(),
            std::cmp::Ordering::Equal => {
                // The row's value is the attribute's (see `column_attrs`).
                columns.next();
                rows.next()
            }
        };
        attrs.extend(next);
    }
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

    #[test]
    fn the_attribute_columns_are_listed_in_the_order_of_the_field_table() {
        let columns: Vec<&str> = attr_columns().map(|(_, c)| c).collect();
        assert_eq!(columns.join(", "), ATTR_COLUMNS_SQL);
        // Every attribute kept in a column alone is one a listing carries.
        assert!(attr_columns().all(|(a, _)| listed_attrs().any(|l| l == a)));
    }

    #[test]
    fn column_attributes_join_the_rows_by_name_and_a_row_wins() {
        let text = |s: &str| Value::Str(s.into());
        let pairs = |p: &[(&str, Value)]| -> Vec<(String, Value)> {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let mut attrs = pairs(&[("argv", text("a")), ("source", Value::Int(5))]);
        let columns = pairs(&[
            ("git_dirty", Value::Bool(true)),
            ("source", text("5")),
            ("user", text("ada")),
        ]);
        add_column_attrs(&mut attrs, columns.clone());
        assert_eq!(
            attrs,
            pairs(&[
                ("argv", text("a")),
                ("git_dirty", Value::Bool(true)),
                ("source", Value::Int(5)),
                ("user", text("ada")),
            ])
        );
        let mut none = Vec::new();
        add_column_attrs(&mut none, columns.clone());
        assert_eq!(none, columns);
        let names: Vec<&str> = COLUMNS_BY_NAME.iter().map(|c| c.0).collect();
        assert!(names.is_sorted(), "{names:?}");
    }

    #[test]
    fn an_attribute_is_held_by_its_column_only_when_the_column_gives_it_back() {
        let text = |s: &str| Value::Str(s.into());
        assert!(held_by_column("source", &text("train.py"), "0e738991"));
        assert!(held_by_column("git_dirty", &Value::Bool(true), "0e738991"));
        // The text of a number, a bool in a text column, a null: kept in `attrs`.
        assert!(!held_by_column("source", &Value::Int(5), "0e738991"));
        assert!(!held_by_column("source", &Value::Bool(true), "0e738991"));
        assert!(!held_by_column("git_dirty", &text("yes"), "0e738991"));
        assert!(!held_by_column("user", &Value::Null, "0e738991"));
        assert!(!held_by_column("argv", &text("x"), "0e738991"));
        // A name is, unless it is the one the column holds for a run never named.
        let generated = lab_types::names::generated_name("0e738991").unwrap();
        assert!(!held_by_column("name", &text(&generated), "0e738991"));
        assert!(held_by_column("name", &text("baseline"), "0e738991"));
    }
}
