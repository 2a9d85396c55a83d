//! How the query compiler's SQL is spelt in PostgreSQL, so that a query
//! gives the same answer here as in a project's SQLite index.
//!
//! - a test missing a value is `coalesce(.., false)`;
//! - a glob is a regular expression made from it ([`glob_regex`]) that
//!   matches exactly what SQLite's `GLOB` matches;
//! - a case-insensitive substring is `strpos` over `lower` in the "C"
//!   collation, which lowers ASCII letters only, as SQLite's `lower` does;
//! - a bound list is a JSON array read with `json_array_elements_text` (not
//!   `jsonb`, which would rewrite `9e999`, the compiler's infinity);
//! - placeholders are `$1`, `$2`, ... in order.

use std::fmt::Write as _;

use lab_store::query::Dialect;

/// PostgreSQL: the index of a team's server.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    fn or_false(&self, test: &str) -> String {
        format!("coalesce(({test}), false)")
    }

    fn glob(&self, x: &str) -> String {
        format!("(({x}) ~ ?)")
    }

    fn glob_pattern(&self, glob: &str) -> String {
        glob_regex(glob)
    }

    fn contains_text(&self, x: &str) -> String {
        format!(r#"strpos(lower(({x}) COLLATE "C"), lower(? COLLATE "C")) > 0"#)
    }

    fn in_json_array(&self, x: &str, negated: bool, text: bool) -> String {
        let not = if negated { "NOT " } else { "" };
        if text {
            format!("{x} {not}IN (SELECT json_array_elements_text(?::json))")
        } else {
            // The compiler writes an infinity as a number too large for a
            // double, which SQLite reads as one and PostgreSQL refuses.
            format!(
                "{x} {not}IN (SELECT CASE e WHEN '9e999' THEN 'Infinity'::float8 WHEN '-9e999' THEN '-Infinity'::float8 ELSE e::float8 END FROM json_array_elements_text(?::json) AS e)"
            )
        }
    }

    fn json_list(&self, json: String) -> String {
        // PostgreSQL's text holds no NUL, and its JSON functions refuse to
        // make one: a NUL in a listed string becomes U+FFFD, as it does in
        // the text the index keeps.
        if !json.contains("\\u0000") {
            return json;
        }
        let mut out = String::with_capacity(json.len());
        let mut rest = json.as_str();
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let escape = &rest[at..];
            let len = if escape.starts_with("\\u") { 6 } else { 2 };
            let (head, tail) = escape.split_at(len.min(escape.len()));
            out.push_str(if head == "\\u0000" { "\\ufffd" } else { head });
            rest = tail;
        }
        out.push_str(rest);
        out
    }

    fn finish(&self, sql: String) -> String {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                let _ = write!(out, "${n}");
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// A regular expression (PostgreSQL's advanced syntax) matching exactly the
/// texts SQLite's `GLOB` matches with `glob`: `*` any run of characters, `?`
/// one character, `[...]` one character of a set (`^` first negates it, `]`
/// first is itself, `a-z` a range by code point, `-` first or last itself),
/// anything else itself, case and all. A set that is never closed matches
/// nothing, and `z-a` only `z`, as in SQLite.
#[must_use]
pub fn glob_regex(glob: &str) -> String {
    // Matches nothing: a character before the start of the text.
    const NOTHING: &str = ".^";
    // SQLite reads a pattern up to its first NUL.
    let glob = glob.split('\0').next().unwrap_or_default();
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::from("^(?:");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => match set(&chars[i + 1..]) {
                Some((members, invert, used)) => {
                    i += used;
                    if members.is_empty() {
                        if invert {
                            out.push('.');
                        } else {
                            return NOTHING.to_owned();
                        }
                    } else {
                        out.push('[');
                        if invert {
                            out.push('^');
                        }
                        for (low, high) in members {
                            escaped(&mut out, low);
                            if high != low {
                                out.push('-');
                                escaped(&mut out, high);
                            }
                        }
                        out.push(']');
                    }
                }
                None => return NOTHING.to_owned(),
            },
            c => escaped(&mut out, c),
        }
        i += 1;
    }
    out.push_str(")$");
    out
}

/// A glob's set: its members as ranges (a character alone is a range of
/// one), whether it is negated, and how many characters it takes.
type Set = (Vec<(char, char)>, bool, usize);

/// The members of a set whose text (after its `[`) starts `rest`: ranges
/// (a character alone is a range of one), whether it is negated, and how
/// many characters it takes up to its `]`; `None` when it is never closed.
/// Follows SQLite's `patternCompare`.
fn set(rest: &[char]) -> Option<Set> {
    let mut members = Vec::new();
    let mut i = 0;
    let invert = rest.first() == Some(&'^');
    if invert {
        i += 1;
    }
    if rest.get(i) == Some(&']') {
        members.push((']', ']'));
        i += 1;
    }
    // The character before a `-`, when it may start a range.
    let mut prior: Option<char> = None;
    while let Some(&c) = rest.get(i) {
        if c == ']' {
            return Some((members, invert, i + 1));
        }
        let next = rest.get(i + 1).copied();
        match (c, prior, next) {
            ('-', Some(low), Some(high)) if high != ']' => {
                // `low` matches itself even when the range is empty; a
                // range that is not holds it.
                if low <= high {
                    members.pop();
                    members.push((low, high));
                }
                i += 2;
                prior = None;
            }
            _ => {
                members.push((c, c));
                prior = Some(c);
                i += 1;
            }
        }
    }
    None
}

/// `c`, matching itself in a regular expression, in a set or out of one: a
/// backslash before any ASCII character that is not a letter or digit.
fn escaped(out: &mut String, c: char) {
    if c.is_ascii() && !c.is_ascii_alphanumeric() {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_anchored_regular_expressions() {
        assert_eq!(glob_regex("iris*"), "^(?:iris.*)$");
        assert_eq!(glob_regex("a?c"), "^(?:a.c)$");
        assert_eq!(glob_regex("v[0-9]"), "^(?:v[0-9])$");
        assert_eq!(glob_regex("[^ab]"), "^(?:[^ab])$");
        assert_eq!(glob_regex("[]a]"), "^(?:[\\]a])$");
        assert_eq!(glob_regex("[a-]"), "^(?:[a\\-])$");
        assert_eq!(glob_regex("a.b(c)"), "^(?:a\\.b\\(c\\))$");
        assert_eq!(glob_regex("[z-a]"), "^(?:[z])$");
        assert_eq!(glob_regex("[^z-a]"), "^(?:[^z])$");
        assert_eq!(glob_regex("[ab"), ".^");
        assert_eq!(glob_regex("é*"), "^(?:é.*)$");
        // After a range, a `-` stands for itself.
        assert_eq!(glob_regex("[a-c-e]"), "^(?:[a-c\\-e])$");
    }

    #[test]
    fn nul_characters_in_listed_strings_become_replacement_characters() {
        let json = r#"["a\u0000b","c\\u0000","\"\u0000"]"#.to_owned();
        assert_eq!(
            Postgres.json_list(json),
            r#"["a\ufffdb","c\\u0000","\"\ufffd"]"#
        );
        assert_eq!(Postgres.json_list("[1,2]".into()), "[1,2]");
        assert_eq!(glob_regex("a*\0b"), "^(?:a.*)$");
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            Postgres.finish("a = ? AND b = ?".into()),
            "a = $1 AND b = $2"
        );
    }
}
