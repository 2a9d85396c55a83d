//! Resolving names and compiling a query to SQL over the index.
//!
//! Every comparison is false, not NULL, when the run lacks a value (a metric
//! it never logged), and `not` of it true: the [`Dialect`] says how that, and
//! the few other things databases spell apart, are written.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::ast::{CmpOp, Expr, Literal, Name, Operand, Scope, SortKey};
use super::dialect::{Dialect, Sqlite};
use super::{Input, QueryError};
use crate::fields::FieldKind;

/// What kind of value a run field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Time,
    Number,
}

/// Run fields a query may name, with their SQL: the queryable rows of the
/// field table (`crate::fields`).
fn fields() -> impl Iterator<Item = (&'static str, &'static str, Kind)> {
    crate::fields::queryable().filter_map(|f| {
        let kind = match f.kind {
            FieldKind::Text => Kind::Text,
            FieldKind::Time => Kind::Time,
            FieldKind::Number => Kind::Number,
            FieldKind::Bool => return None,
        };
        Some((f.name, f.column?, kind))
    })
}

/// The names a project knows: what a query can refer to.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Metric names.
    pub metrics: BTreeSet<String>,
    /// Parameter names.
    pub params: BTreeSet<String>,
    /// Tag names.
    pub tags: BTreeSet<String>,
}

/// A value bound to a placeholder of compiled SQL.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    /// An integer (times, in nanoseconds).
    Integer(i64),
    /// A number.
    Real(f64),
    /// Text: a name, a string, a pattern, a JSON array.
    Text(String),
}

/// SQL text with its parameters, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compiled {
    /// A boolean expression (for a filter) or an `ORDER BY` list (for a sort).
    pub sql: String,
    /// The values for its `?` placeholders.
    pub params: Vec<Bound>,
}

#[derive(Clone, Debug)]
enum Resolved {
    Field(&'static str, &'static str, Kind),
    Metric(String),
    Param(String),
    Tag(String),
}

impl Catalog {
    fn has(&self, scope: Scope, key: &str) -> bool {
        match scope {
            Scope::Run => fields().any(|f| f.0 == key),
            Scope::Metrics => self.metrics.contains(key),
            Scope::Params => self.params.contains(key),
            Scope::Tags => self.tags.contains(key),
        }
    }

    /// Whether `name` names anything runs have.
    fn knows(&self, name: &Name) -> bool {
        match name.scope {
            Some(scope) => self.has(scope, &name.key),
            None => [Scope::Run, Scope::Metrics, Scope::Params, Scope::Tags]
                .into_iter()
                .any(|s| self.has(s, &name.key)),
        }
    }

    fn resolve(&self, name: &Name, query: &str) -> Result<Resolved, QueryError> {
        let scopes: Vec<Scope> = match name.scope {
            Some(s) => vec![s],
            None => [Scope::Run, Scope::Metrics, Scope::Params, Scope::Tags]
                .into_iter()
                .filter(|s| self.has(*s, &name.key))
                .collect(),
        };
        let found: Vec<Scope> = scopes
            .into_iter()
            .filter(|s| self.has(*s, &name.key))
            .collect();
        match found.as_slice() {
            [scope] => Ok(match scope {
                Scope::Run => {
                    let f =
                        fields()
                            .find(|f| f.0 == name.key)
                            .unwrap_or(("id", "runs.id", Kind::Text));
                    Resolved::Field(f.0, f.1, f.2)
                }
                Scope::Metrics => Resolved::Metric(name.key.clone()),
                Scope::Params => Resolved::Param(name.key.clone()),
                Scope::Tags => Resolved::Tag(name.key.clone()),
            }),
            [] => Err(self.unknown(name, query)),
            many => {
                let options: Vec<String> = many
                    .iter()
                    .map(|s| format!("`{}.{}`", s.prefix(), name.key))
                    .collect();
                let (offset, len) = locate(query, &name.key);
                Err(QueryError::new(
                    query,
                    offset,
                    len,
                    format!(
                        "`{}` is ambiguous: write {}",
                        name.key,
                        options.join(" or ")
                    ),
                ))
            }
        }
    }

    /// Which scope `name` (as written in `text`) refers to: an error if no run
    /// has it (with suggestions) or it is ambiguous.
    pub fn scope_of(&self, name: &Name, text: &str) -> Result<Scope, QueryError> {
        Ok(match self.resolve(name, text)? {
            Resolved::Field(..) => Scope::Run,
            Resolved::Metric(_) => Scope::Metrics,
            Resolved::Param(_) => Scope::Params,
            Resolved::Tag(_) => Scope::Tags,
        })
    }

    fn unknown(&self, name: &Name, query: &str) -> QueryError {
        let (offset, len) = locate(query, &name.key);
        let what = match name.scope {
            Some(Scope::Run) => "run field",
            Some(Scope::Metrics) => "metric",
            Some(Scope::Params) => "parameter",
            Some(Scope::Tags) => "tag",
            None => "metric, parameter, tag or run field",
        };
        let mut e = QueryError::new(
            query,
            offset,
            len,
            format!("no run has a {what} named `{}`", name.key),
        );
        let mut candidates: Vec<(f64, String)> = Vec::new();
        let mut consider = |scope: Scope, key: &str| {
            if name.scope.is_some_and(|s| s != scope) {
                return;
            }
            let (typed, known) = (name.key.to_lowercase(), key.to_lowercase());
            let mut score = strsim::jaro_winkler(&typed, &known);
            // A misspelt start of a longer name (`acuracy` for `accuracy_score`).
            let prefix: String = known.chars().take(typed.chars().count()).collect();
            score = score.max(strsim::jaro_winkler(&typed, &prefix) - 0.05);
            if known.contains(&typed) || typed.contains(&known) {
                score = score.max(0.85);
            }
            if score >= 0.8 {
                let shown = if name.scope.is_some() {
                    format!("{}.{key}", scope.prefix())
                } else {
                    key.to_owned()
                };
                candidates.push((score, shown));
            }
        };
        for f in fields() {
            consider(Scope::Run, f.0);
        }
        for k in &self.metrics {
            consider(Scope::Metrics, k);
        }
        for k in &self.params {
            consider(Scope::Params, k);
        }
        for k in &self.tags {
            consider(Scope::Tags, k);
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        candidates.dedup_by(|a, b| a.1 == b.1);
        e.suggestions = candidates.into_iter().take(3).map(|c| c.1).collect();
        e
    }
}

/// Where `key` is in the query, for pointing at it (the whole query if not found).
fn locate(query: &str, key: &str) -> (usize, usize) {
    query.find(key).map_or((0, query.len()), |i| (i, key.len()))
}

/// Compiles a filter to a SQLite boolean expression over `runs`.
pub fn compile_where(expr: &Expr, catalog: &Catalog, query: &str) -> Result<Compiled, QueryError> {
    compile_where_in(&Sqlite, expr, catalog, query)
}

/// Compiles a filter to a boolean expression over `runs` in `dialect`.
pub fn compile_where_in(
    dialect: &dyn Dialect,
    expr: &Expr,
    catalog: &Catalog,
    query: &str,
) -> Result<Compiled, QueryError> {
    let mut c = Compiler {
        dialect,
        catalog,
        query,
        out: Compiled::default(),
    };
    c.expr(expr)?;
    Ok(c.out)
}

/// How a test read from a key's index of values begins
/// ([`Dialect::tests_by_value_index`]); the statement that gives the runs
/// follows, then `)`.
const MEMBERSHIP: &str = "runs.rid IN (";

/// The statements giving the runs, when the filter `sql` is one test of a
/// key read from its index of values (`m1 > 0.5`), or several joined by
/// `and` (`m1 > 0.5 and lr < 0.1`), and nothing else: not `or`, `not` or a
/// test that reads `runs`. Each gives each matching run once, and only runs
/// in the index: a run's values are removed with it. Counting the runs the
/// first gives that the others give too counts the matches without
/// visiting `runs`. The statements come in the order of their bound values.
#[must_use]
pub fn memberships(sql: &str) -> Option<Vec<&str>> {
    let mut found = Vec::new();
    tests_joined(sql, &mut found).then_some(found)
}

/// Adds to `found` the statements of the memberships `sql` joins with
/// `AND` (as [`Compiler::join`] writes it: `(a AND b)`, nested); false when
/// it holds anything else.
fn tests_joined<'a>(sql: &'a str, found: &mut Vec<&'a str>) -> bool {
    if let Some(inner) = sql
        .strip_prefix(MEMBERSHIP)
        .and_then(|s| s.strip_suffix(')'))
    {
        // One statement with no parentheses of its own: no nested test.
        if inner.starts_with("SELECT run FROM ") && !inner.contains(['(', ')']) {
            found.push(inner);
            return true;
        }
        return false;
    }
    let Some(body) = sql.strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
        return false;
    };
    // The `AND` outside every parenthesis splits the pair.
    let mut depth = 0_i32;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return false,
            ')' => depth -= 1,
            ' ' if depth == 0 && body[i..].starts_with(" AND ") => {
                let (left, right) = (&body[..i], &body[i + " AND ".len()..]);
                return tests_joined(left, found) && tests_joined(right, found);
            }
            _ => {}
        }
    }
    false
}

/// Compiles one sort key (written as `text`) to SQLite `ORDER BY` terms;
/// runs that lack the key go last whichever the direction.
pub fn compile_sort(key: &SortKey, catalog: &Catalog, text: &str) -> Result<Compiled, QueryError> {
    compile_sort_in(&Sqlite, key, catalog, text)
}

/// Compiles one sort key to `ORDER BY` terms in `dialect`.
pub fn compile_sort_in(
    dialect: &dyn Dialect,
    key: &SortKey,
    catalog: &Catalog,
    text: &str,
) -> Result<Compiled, QueryError> {
    sort_sql(dialect, key, catalog, text).map_err(|e| e.about(Input::SortKey))
}

fn sort_sql(
    dialect: &dyn Dialect,
    key: &SortKey,
    catalog: &Catalog,
    text: &str,
) -> Result<Compiled, QueryError> {
    let dir = if key.descending { "DESC" } else { "ASC" };
    let mut out = Compiled::default();
    for (i, term) in sort_terms(dialect, key, catalog, text)?
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.sql.push_str(", ");
        }
        // Runs without the value (NULL) come last in either direction.
        let _ = write!(out.sql, "{} {dir} NULLS LAST", term.sql);
        out.params.extend(term.params);
    }
    Ok(out)
}

/// The values one sort key (written as `text`) orders runs by, first one
/// first, each an expression over `runs` in `dialect`: what
/// [`compile_sort_in`] orders by (each in the key's direction, NULL last),
/// for comparing a run with the last one of a page.
pub fn sort_terms_in(
    dialect: &dyn Dialect,
    key: &SortKey,
    catalog: &Catalog,
    text: &str,
) -> Result<Vec<Compiled>, QueryError> {
    sort_terms(dialect, key, catalog, text).map_err(|e| e.about(Input::SortKey))
}

fn sort_terms(
    dialect: &dyn Dialect,
    key: &SortKey,
    catalog: &Catalog,
    text: &str,
) -> Result<Vec<Compiled>, QueryError> {
    let term = || Compiler {
        dialect,
        catalog,
        query: text,
        out: Compiled::default(),
    };
    // Each subquery runs once per row it sorts (SQLite does not share
    // them), so each key is looked up as few times as it can be.
    Ok(match catalog.resolve(&key.name, text)? {
        Resolved::Param(k) => {
            // Numbers sort before text, each in the asked direction.
            let (mut number, mut text) = (term(), term());
            number.out.sql = number.sub("num", "params", &k);
            text.out.sql = text.sub("text", "params", &k);
            vec![number.out, text.out]
        }
        other => {
            let mut c = term();
            c.out.sql = c.value(&other, false);
            vec![c.out]
        }
    })
}

struct Compiler<'a> {
    dialect: &'a dyn Dialect,
    catalog: &'a Catalog,
    query: &'a str,
    out: Compiled,
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Match | CmpOp::NotMatch => "",
    }
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

impl Compiler<'_> {
    fn error(&self, near: &str, message: String) -> QueryError {
        let (offset, len) = locate(self.query, near);
        QueryError::new(self.query, offset, len, message)
    }

    /// A correlated subquery for one key of one table, with its key bound.
    fn sub(&mut self, column: &str, table: &str, key: &str) -> String {
        self.out.params.push(Bound::Text(key.to_owned()));
        format!("(SELECT {column} FROM {table} WHERE run = runs.rid AND key = ?)")
    }

    /// The SQL for a resolved name; `text` picks a parameter's text over its number.
    fn value(&mut self, r: &Resolved, text: bool) -> String {
        match r {
            Resolved::Field(_, col, _) => (*col).to_owned(),
            Resolved::Metric(k) => self.sub("last", "metrics", k),
            Resolved::Param(k) => self.sub(if text { "text" } else { "num" }, "params", k),
            Resolved::Tag(k) => self.sub("value", "tags", k),
        }
    }

    fn exists(&mut self, r: &Resolved) -> String {
        match r {
            Resolved::Field(_, col, _) => format!("{col} IS NOT NULL"),
            Resolved::Metric(k) => format!("EXISTS {}", self.sub("1", "metrics", k)),
            Resolved::Param(k) => format!("EXISTS {}", self.sub("1", "params", k)),
            Resolved::Tag(k) => format!("EXISTS {}", self.sub("1", "tags", k)),
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<(), QueryError> {
        match e {
            Expr::And(items) => self.join(items, " AND ", "1")?,
            Expr::Or(items) => self.join(items, " OR ", "0")?,
            Expr::Not(a) => {
                self.out.sql.push_str("(NOT ");
                self.expr(a)?;
                self.out.sql.push(')');
            }
            Expr::Cmp(l, op, r) => {
                let sql = self.cmp(l, *op, r)?;
                self.out.sql.push_str(&sql);
            }
            Expr::In(name, negated, values) => {
                let sql = self.in_list(name, *negated, values)?;
                self.out.sql.push_str(&sql);
            }
            Expr::Text(text) => {
                let sql = self.text_search(text);
                self.out.sql.push_str(&sql);
            }
        }
        Ok(())
    }

    /// A plain word alone: the run's name, its note, or one of its tags'
    /// names or values holds it, in any case.
    fn text_search(&mut self, text: &str) -> String {
        let mut holds = |x: &str| {
            self.out.params.push(Bound::Text(text.to_owned()));
            self.dialect.contains_text(x)
        };
        let (name, note) = (holds("runs.name"), holds("runs.note"));
        let (key, value) = (holds("tags.key"), holds("tags.value"));
        self.dialect.or_false(&format!(
            "{name} OR {note} OR EXISTS (SELECT 1 FROM tags WHERE tags.run = runs.rid AND ({key} OR {value}))"
        ))
    }

    /// `items` joined with `op` as a balanced tree of pairs: SQLite parses
    /// `a AND b AND c` as `(a AND b) AND c`, one level deeper per term, and
    /// refuses expressions over 1000 levels deep; pairs nest only log2(n).
    fn join(&mut self, items: &[Expr], op: &str, empty: &str) -> Result<(), QueryError> {
        match items {
            [] => self.out.sql.push_str(empty),
            [only] => self.expr(only)?,
            _ => {
                let (first, second) = items.split_at(items.len() / 2);
                self.out.sql.push('(');
                self.join(first, op, empty)?;
                self.out.sql.push_str(op);
                self.join(second, op, empty)?;
                self.out.sql.push(')');
            }
        }
        Ok(())
    }

    fn cmp(&mut self, left: &Operand, op: CmpOp, right: &Operand) -> Result<String, QueryError> {
        match (left, right) {
            (Operand::Name(first), Operand::Name(second)) => {
                let ra = self.catalog.resolve(first, self.query)?;
                // A plain word on the right that names nothing is a string
                // (`status = finished`); one that names something is that
                // name, with a hint about quotes if the comparison fails.
                let word = is_word(second);
                if word && !self.catalog.knows(second) {
                    return self.name_vs_literal(first, op, &Literal::Str(second.key.clone()));
                }
                let hint = |e: QueryError| {
                    if word {
                        e.with_hint(format!("strings take quotes ('{}')", second.key))
                    } else {
                        e
                    }
                };
                let rb = self.catalog.resolve(second, self.query).map_err(hint)?;
                if matches!(op, CmpOp::Match | CmpOp::NotMatch) {
                    return Err(hint(self.error(
                        &second.key,
                        "`~` and `!~` need a quoted pattern on their right".into(),
                    )));
                }
                if let Some((text, number, what)) = text_and_number(&ra, &rb) {
                    return Err(hint(self.error(
                        &second.key,
                        format!("`{text}` is text and `{number}` {what}: they cannot be compared"),
                    )));
                }
                let text = !(numeric(&ra) && numeric(&rb));
                let (x, y) = (self.value(&ra, text), self.value(&rb, text));
                Ok(self.dialect.or_false(&format!("{x} {} {y}", sql_op(op))))
            }
            (Operand::Lit(lit), Operand::Name(name)) => {
                if matches!(op, CmpOp::Match | CmpOp::NotMatch) {
                    return Err(self.error(
                        &name.key,
                        "put the name before `~` and the pattern after it".into(),
                    ));
                }
                self.name_vs_literal(name, flip(op), lit)
            }
            (Operand::Name(name), Operand::Lit(lit)) => self.name_vs_literal(name, op, lit),
            (Operand::Lit(_), Operand::Lit(_)) => Err(QueryError::new(
                self.query,
                0,
                self.query.len(),
                "a comparison needs a name on one side",
            )),
        }
    }

    /// `name` compared with a value: a test for a missing value (`null`), a
    /// pattern match, or a comparison of two values of one kind.
    fn name_vs_literal(
        &mut self,
        name: &Name,
        op: CmpOp,
        lit: &Literal,
    ) -> Result<String, QueryError> {
        let r = self.catalog.resolve(name, self.query)?;
        match (lit, op) {
            (Literal::Null, _) => self.missing(&r, name, op),
            (Literal::Str(pattern), CmpOp::Match | CmpOp::NotMatch) => {
                self.pattern(&r, name, op, pattern)
            }
            (_, CmpOp::Match | CmpOp::NotMatch) => Err(self.error(
                &name.key,
                "`~` and `!~` need a quoted pattern, such as 'iris*'".into(),
            )),
            _ => {
                let (x, value) = self.operands(&r, name, lit)?;
                let number = matches!(value, Bound::Real(_));
                self.out.params.push(value);
                // `x` bound the key, then the value: the order the runs
                // from the index of values take them in too.
                let indexed = match &r {
                    Resolved::Metric(_) if number => Some(("metrics", "last")),
                    Resolved::Param(_) if number => Some(("params", "num")),
                    _ => None,
                };
                Ok(match indexed {
                    Some((table, column)) if self.dialect.tests_by_value_index() => format!(
                        "{MEMBERSHIP}SELECT run FROM {table} WHERE key = ? AND {column} {} ?)",
                        sql_op(op)
                    ),
                    _ => self.dialect.or_false(&format!("{x} {} ?", sql_op(op))),
                })
            }
        }
    }

    /// `name = null` or `name != null`: whether the run lacks the value or has it.
    fn missing(&mut self, r: &Resolved, name: &Name, op: CmpOp) -> Result<String, QueryError> {
        match op {
            CmpOp::Eq => Ok(format!("(NOT {})", self.exists(r))),
            CmpOp::Ne => Ok(format!("({})", self.exists(r))),
            _ => Err(self.error(
                &name.key,
                format!("`null` can only be compared with `=` or `!=` (to ask whether `{name}` is missing)"),
            )),
        }
    }

    /// `name ~ 'pattern'` or `name !~ 'pattern'`: a glob if the pattern has
    /// glob characters, else a case-insensitive substring.
    fn pattern(
        &mut self,
        r: &Resolved,
        name: &Name,
        op: CmpOp,
        pattern: &str,
    ) -> Result<String, QueryError> {
        if matches!(r, Resolved::Metric(_))
            || matches!(r, Resolved::Field(_, _, Kind::Time | Kind::Number))
        {
            return Err(self.error(
                &name.key,
                format!("`{name}` holds numbers; `~` matches text"),
            ));
        }
        let x = self.value(r, true);
        let test = if super::parser::is_glob(pattern) {
            self.out
                .params
                .push(Bound::Text(self.dialect.glob_pattern(pattern)));
            self.dialect.glob(&x)
        } else {
            self.out.params.push(Bound::Text(pattern.to_owned()));
            self.dialect.contains_text(&x)
        };
        let negate = if op == CmpOp::NotMatch { "NOT " } else { "" };
        Ok(self.dialect.or_false(&format!("{negate}({test})")))
    }

    /// The two sides of a comparison of `name` with a value: the SQL of the
    /// name, and the value to bind; an error if their kinds cannot be
    /// compared (a time with anything but a date, text with a number...).
    fn operands(
        &mut self,
        r: &Resolved,
        name: &Name,
        lit: &Literal,
    ) -> Result<(String, Bound), QueryError> {
        let shown = name.to_string();
        Ok(match (r, lit) {
            (Resolved::Field(_, _, Kind::Time), Literal::Date(nanos, _)) => {
                (self.value(r, false), Bound::Integer(*nanos))
            }
            (Resolved::Field(field, _, Kind::Time), Literal::Str(s)) => {
                let nanos = date_in(s)
                    .ok_or_else(|| self.error(s, format!("`{field}` is a time; compare it with a date such as 2026-11-27 or 2026-11-27T08:30:00")))?;
                (self.value(r, false), Bound::Integer(nanos))
            }
            (Resolved::Field(field, _, Kind::Time), _) => {
                return Err(self.error(&name.key, format!("`{field}` is a time; compare it with a date such as 2026-11-27 or 2026-11-27T08:30:00")));
            }
            (_, Literal::Date(_, text)) => {
                return Err(self.error(text, format!("`{shown}` is not a time; only `start_time` and `end_time` compare with dates")));
            }
            (
                Resolved::Field(_, _, Kind::Text) | Resolved::Param(_) | Resolved::Tag(_),
                Literal::Str(s),
            ) => (self.value(r, true), Bound::Text(s.clone())),
            (Resolved::Field(field, _, Kind::Text), _) => {
                return Err(self.error(
                    &name.key,
                    format!("`{field}` is text; compare it with a quoted string"),
                ));
            }
            (Resolved::Field(_, _, Kind::Number) | Resolved::Metric(_), Literal::Number(n)) => {
                (self.value(r, false), Bound::Real(*n))
            }
            (Resolved::Metric(_) | Resolved::Param(_), Literal::Bool(b)) => {
                (self.value(r, false), Bound::Real(f64::from(u8::from(*b))))
            }
            (Resolved::Field(_, _, Kind::Number) | Resolved::Metric(_), _) => {
                return Err(self.error(
                    &name.key,
                    format!("`{shown}` holds numbers; compare it with a number"),
                ));
            }
            (Resolved::Param(_), Literal::Number(n)) => (self.value(r, false), Bound::Real(*n)),
            (Resolved::Tag(_), _) => {
                return Err(self.error(
                    &name.key,
                    format!("tag `{shown}` is text; compare it with a quoted string"),
                ));
            }
            (_, Literal::Null) => {
                return Err(self.error(&name.key, format!("`null` can only be compared with `=` or `!=` (to ask whether `{shown}` is missing)")));
            }
        })
    }

    fn in_list(
        &mut self,
        name: &Name,
        negated: bool,
        values: &[Literal],
    ) -> Result<String, QueryError> {
        let r = self.catalog.resolve(name, self.query)?;
        let numbers = values
            .iter()
            .all(|v| matches!(v, Literal::Number(_) | Literal::Bool(_)));
        let strings = values.iter().all(|v| matches!(v, Literal::Str(_)));
        if !numbers && !strings {
            return Err(self.error(
                &name.key,
                format!("the list after `{name} in` must hold only numbers or only quoted strings"),
            ));
        }
        if strings
            && (matches!(r, Resolved::Metric(_))
                || matches!(r, Resolved::Field(_, _, Kind::Number | Kind::Time)))
        {
            return Err(self.error(
                &name.key,
                format!("`{name}` holds numbers; list numbers after `in`"),
            ));
        }
        if numbers && matches!(r, Resolved::Tag(_) | Resolved::Field(_, _, Kind::Text)) {
            return Err(self.error(
                &name.key,
                format!("`{name}` is text; list quoted strings after `in`"),
            ));
        }
        let x = self.value(&r, strings);
        // The whole list is one variable, a JSON array, however long it is:
        // one `?` per value would pass SQLite's limit of 32766 variables.
        self.out
            .params
            .push(Bound::Text(self.dialect.json_list(json_array(values))));
        Ok(self
            .dialect
            .or_false(&self.dialect.in_json_array(&x, negated, strings)))
    }
}

/// A list of numbers or strings as a JSON array that SQLite reads back to
/// the same values: numbers in their shortest exact form, infinities as
/// numbers too large for a double.
fn json_array(values: &[Literal]) -> String {
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let n = match v {
            Literal::Number(n) => *n,
            Literal::Bool(b) => f64::from(u8::from(*b)),
            Literal::Str(s) => {
                out.push_str(&serde_json::Value::from(s.as_str()).to_string());
                continue;
            }
            // Refused before: a list holds only numbers or only strings.
            Literal::Date(..) | Literal::Null => {
                out.push_str("null");
                continue;
            }
        };
        if n.is_finite() {
            let _ = write!(out, "{}", serde_json::Value::from(n));
        } else {
            out.push_str(if n > 0.0 { "9e999" } else { "-9e999" });
        }
    }
    out.push(']');
    out
}

/// The time a quoted string holds when it is exactly one date
/// (`'2026-11-27'`), in nanoseconds since 1970.
fn date_in(s: &str) -> Option<i64> {
    super::lexer::lex(s)
        .ok()
        .and_then(|t| match (t.first().map(|t| &t.tok), t.len()) {
            (Some(super::lexer::Tok::Date(n, _)), 2) => Some(*n),
            _ => None,
        })
}

/// Whether `name` is an unscoped plain word: `finished`, `iris.v2`.
fn is_word(name: &Name) -> bool {
    let mut chars = name.key.chars();
    name.scope.is_none()
        && chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-'))
        && !super::ast::is_keyword(&name.key)
}

/// Text only (a tag, a text run field) and numbers only (a metric, a
/// number or time run field), in either order: the names of both, and what
/// the second is. Databases disagree on comparing the two (SQLite puts every
/// number before any text; PostgreSQL has no such comparison), and no one
/// means it, so it is refused. A parameter may hold either and compares as
/// text with text.
fn text_and_number<'r>(
    a: &'r Resolved,
    b: &'r Resolved,
) -> Option<(&'r str, &'r str, &'static str)> {
    let text = |r: &'r Resolved| match r {
        Resolved::Field(field, _, Kind::Text) => Some(*field),
        Resolved::Tag(k) => Some(k.as_str()),
        _ => None,
    };
    let number = |r: &'r Resolved| match r {
        Resolved::Metric(m) => Some((m.as_str(), "is a metric")),
        Resolved::Field(field, _, Kind::Number) => Some((*field, "holds numbers")),
        Resolved::Field(field, _, Kind::Time) => Some((*field, "is a time")),
        _ => None,
    };
    match (text(a), number(b), text(b), number(a)) {
        (Some(t), Some((n, what)), _, _) | (_, _, Some(t), Some((n, what))) => Some((t, n, what)),
        _ => None,
    }
}

fn numeric(r: &Resolved) -> bool {
    matches!(
        r,
        Resolved::Metric(_) | Resolved::Param(_) | Resolved::Field(_, _, Kind::Number | Kind::Time)
    )
}
