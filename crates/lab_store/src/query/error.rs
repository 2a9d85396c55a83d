//! Query errors that point at the bad part of the query.

use std::fmt;

/// What the text of a query error was given as. Not `non_exhaustive`: the
/// edges match it whole, so a new kind of input is handled everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Input {
    /// A filter (`--where`, `where=`).
    #[default]
    Filter,
    /// One sort key (`--sort`, `sort=`).
    SortKey,
    /// One column name (`lab ls --columns`).
    Column,
}

impl Input {
    /// How the input is named at the start of its error: `bad query: ...`.
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Input::Filter => "query",
            Input::SortKey => "sort key",
            Input::Column => "column",
        }
    }
}

/// A query that cannot be parsed or resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// The whole query (or sort key, or column name).
    pub query: String,
    /// What `query` was given as.
    pub input: Input,
    /// Where the bad part starts (a byte offset into `query`).
    pub offset: usize,
    /// How long the bad part is, in bytes (at least 1 when shown).
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// Names to suggest instead, if the problem is an unknown name.
    pub suggestions: Vec<String>,
    /// Advice on what to write instead, shown after the query.
    pub hint: Option<String>,
}

impl QueryError {
    pub(crate) fn new(query: &str, offset: usize, len: usize, message: impl Into<String>) -> Self {
        Self {
            query: query.to_owned(),
            input: Input::Filter,
            offset,
            len,
            message: message.into(),
            suggestions: Vec::new(),
            hint: None,
        }
    }

    /// The same error, about `input`.
    #[must_use]
    pub fn about(self, input: Input) -> Self {
        Self { input, ..self }
    }

    /// The same error, with a hint.
    #[must_use]
    pub(crate) fn with_hint(self, hint: impl Into<String>) -> Self {
        Self {
            hint: Some(hint.into()),
            ..self
        }
    }

    /// The position in characters, for pointing at it under the query.
    #[must_use]
    pub fn column(&self) -> usize {
        self.query[..self.offset.min(self.query.len())]
            .chars()
            .count()
    }

    /// The length of the bad part in characters (at least 1).
    #[must_use]
    pub fn width(&self) -> usize {
        let end = (self.offset + self.len.max(1)).min(self.query.len());
        self.query
            .get(self.offset.min(end)..end)
            .map_or(1, |s| s.chars().count().max(1))
    }

    /// The hints, one sentence each: names it may have meant, then advice.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.suggestions.is_empty() {
            let list: Vec<String> = self.suggestions.iter().map(|s| format!("`{s}`")).collect();
            out.push(format!("did you mean {}?", list.join(" or ")));
        }
        out.extend(self.hint.clone());
        out
    }
}

impl fmt::Display for QueryError {
    /// `bad query: ` (or `bad sort key: `, `bad column: `) and the message,
    /// then the text with a caret line under the bad part, then any hints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bad {}: {}", self.input.noun(), self.message)?;
        writeln!(f, "  {}", self.query)?;
        write!(
            f,
            "  {}{}",
            " ".repeat(self.column()),
            "^".repeat(self.width())
        )?;
        let hints = self.hints();
        if !hints.is_empty() {
            f.write_str("\n")?;
        }
        for hint in hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}
