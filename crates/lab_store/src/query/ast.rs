//! The query tree, and its canonical printed form.

use std::fmt;

/// Where a name is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A run field: `status`, `experiment`, `start_time`, ...
    Run,
    /// A metric's last value.
    Metrics,
    /// A parameter.
    Params,
    /// A tag.
    Tags,
}

impl Scope {
    /// The prefix that selects this scope (`metrics.x`).
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Scope::Run => "run",
            Scope::Metrics => "metrics",
            Scope::Params => "params",
            Scope::Tags => "tags",
        }
    }

    /// The scope a prefix names.
    #[must_use]
    pub fn from_prefix(p: &str) -> Option<Self> {
        match p {
            "run" => Some(Scope::Run),
            "metrics" | "metric" => Some(Scope::Metrics),
            "params" | "param" => Some(Scope::Params),
            "tags" | "tag" => Some(Scope::Tags),
            _ => None,
        }
    }
}

/// A name, with the scope it was given (if any).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    /// `metrics.`, `params.`, `tags.` or `run.` when written.
    pub scope: Option<Scope>,
    /// The key.
    pub key: String,
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A number.
    Number(f64),
    /// A string.
    Str(String),
    /// A date or time, as nanoseconds since the epoch (UTC), with its text.
    Date(i64, String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`: the value is missing.
    Null,
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A name to look up.
    Name(Name),
    /// A value.
    Lit(Literal),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~`: substring, or glob when the pattern has `*`, `?` or `[`.
    Match,
    /// `!~`
    NotMatch,
}

impl CmpOp {
    /// The operator's text.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Match => "~",
            CmpOp::NotMatch => "!~",
        }
    }
}

/// A query.
///
/// `and` and `or` hold two or more operands each, so that a long chain is one
/// flat node rather than a tree as deep as the chain is long; a group in
/// parentheses stays a node of its own. Every tree the parser makes is at
/// most a few hundred levels deep (see [`MAX_NESTING`](super::MAX_NESTING)),
/// so the recursive walks over it (printing, compiling, dropping) are bounded.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// All hold.
    And(Vec<Expr>),
    /// One or more holds.
    Or(Vec<Expr>),
    /// It does not hold.
    Not(Box<Expr>),
    /// A comparison.
    Cmp(Operand, CmpOp, Operand),
    /// `name in (a, b, ...)`, or `not in` when negated.
    In(Name, bool, Vec<Literal>),
    /// A plain word (or a quoted string) alone: the runs whose name, note,
    /// or a tag's name or value holds it, in any case.
    Text(String),
}

/// One sort key: a name, descending when written with a leading `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    /// What to sort by.
    pub name: Name,
    /// Largest first.
    pub descending: bool,
}

const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "true", "false", "null", "none"];

/// Whether `s` is a keyword (in any case), so a name only in backticks.
pub(crate) fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s.to_ascii_lowercase().as_str())
}

/// Whether `s` can be written without backticks.
pub(crate) fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '[' | ']' | '-'))
        && !is_keyword(s)
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scope) = self.scope {
            write!(f, "{}.", scope.prefix())?;
        }
        if is_plain_name(&self.key) {
            f.write_str(&self.key)
        } else {
            write!(f, "`{}`", self.key.replace('`', "``"))
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `1e999` is how an infinity is written (it overflows to one).
            Literal::Number(n) if n.is_infinite() => {
                f.write_str(if *n > 0.0 { "1e999" } else { "-1e999" })
            }
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Str(s) => {
                f.write_str("'")?;
                for c in s.chars() {
                    match c {
                        '\'' => f.write_str("\\'")?,
                        '\\' => f.write_str("\\\\")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("'")
            }
            Literal::Date(_, text) => f.write_str(text),
            Literal::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Literal::Null => f.write_str("null"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Name(n) => write!(f, "{n}"),
            Operand::Lit(l) => write!(f, "{l}"),
        }
    }
}

impl Expr {
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            Expr::Not(..) => 3,
            Expr::Cmp(..) | Expr::In(..) | Expr::Text(..) => 4,
        }
    }

    /// Writes `child`, in parentheses unless it binds tighter than `than`.
    fn write_child(f: &mut fmt::Formatter<'_>, child: &Expr, than: u8) -> fmt::Result {
        if child.precedence() > than {
            write!(f, "{child}")
        } else {
            write!(f, "({child})")
        }
    }

    fn write_all(
        f: &mut fmt::Formatter<'_>,
        items: &[Expr],
        keyword: &str,
        than: u8,
    ) -> fmt::Result {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(keyword)?;
            }
            Self::write_child(f, item, than)?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    /// The canonical form: single spaces, lower-case keywords, parentheses only
    /// where the tree has a group (an `or` inside an `and`, an `and` directly
    /// inside an `and`, anything but a comparison under `not`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => Self::write_all(f, items, " or ", 1),
            Expr::And(items) => Self::write_all(f, items, " and ", 2),
            Expr::Not(e) => {
                f.write_str("not ")?;
                Self::write_child(f, e, 2)
            }
            Expr::Cmp(a, op, b) => write!(f, "{a} {} {b}", op.symbol()),
            Expr::Text(word) if is_plain_name(word) => f.write_str(word),
            Expr::Text(text) => write!(f, "{}", Literal::Str(text.clone())),
            Expr::In(name, negated, values) => {
                write!(f, "{name} {}in (", if *negated { "not " } else { "" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        write!(f, "{}", self.name)
    }
}
