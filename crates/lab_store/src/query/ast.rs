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
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// It does not hold.
    Not(Box<Expr>),
    /// A comparison.
    Cmp(Operand, CmpOp, Operand),
    /// `name in (a, b, ...)`, or `not in` when negated.
    In(Name, bool, Vec<Literal>),
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

/// Whether `s` can be written without backticks.
pub(crate) fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '[' | ']' | '-'))
        && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str())
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
            Expr::Cmp(..) | Expr::In(..) => 4,
        }
    }

    fn write_child(f: &mut fmt::Formatter<'_>, child: &Expr, min: u8) -> fmt::Result {
        if child.precedence() < min {
            write!(f, "({child})")
        } else {
            write!(f, "{child}")
        }
    }
}

impl fmt::Display for Expr {
    /// The canonical form: single spaces, lower-case keywords, parentheses only
    /// where precedence needs them (`and` and `or` group to the left).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(a, b) => {
                Self::write_child(f, a, 1)?;
                f.write_str(" or ")?;
                Self::write_child(f, b, 2)
            }
            Expr::And(a, b) => {
                Self::write_child(f, a, 2)?;
                f.write_str(" and ")?;
                Self::write_child(f, b, 3)
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                Self::write_child(f, e, 3)
            }
            Expr::Cmp(a, op, b) => write!(f, "{a} {} {b}", op.symbol()),
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
