//! Query errors that point at the bad part of the query.

use std::fmt;

/// A query that cannot be parsed or resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// The whole query.
    pub query: String,
    /// Where the bad part starts (a byte offset into `query`).
    pub offset: usize,
    /// How long the bad part is, in bytes (at least 1 when shown).
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// Names to suggest instead, if the problem is an unknown name.
    pub suggestions: Vec<String>,
}

impl QueryError {
    pub(crate) fn new(query: &str, offset: usize, len: usize, message: impl Into<String>) -> Self {
        Self {
            query: query.to_owned(),
            offset,
            len,
            message: message.into(),
            suggestions: Vec::new(),
        }
    }

    /// The position in characters, for pointing at it under the query.
    #[must_use]
    pub fn column(&self) -> usize {
        self.query[..self.offset.min(self.query.len())]
            .chars()
            .count()
    }
}

impl fmt::Display for QueryError {
    /// The message, then the query with a caret line under the bad part.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bad query: {}", self.message)?;
        writeln!(f, "  {}", self.query)?;
        let end = (self.offset + self.len.max(1)).min(self.query.len().max(self.offset + 1));
        let width = self
            .query
            .get(self.offset..end)
            .map_or(1, |s| s.chars().count().max(1));
        write!(f, "  {}{}", " ".repeat(self.column()), "^".repeat(width))?;
        if !self.suggestions.is_empty() {
            let list: Vec<String> = self.suggestions.iter().map(|s| format!("`{s}`")).collect();
            write!(f, "\n\nhint: did you mean {}?", list.join(" or "))?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}
