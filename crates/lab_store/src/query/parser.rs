//! From tokens to a tree: `or` binds loosest, then `and`, then `not`, then
//! comparisons. A chain of `and`s (or of `or`s) is one node; parentheses and
//! `not` nest at most [`MAX_NESTING`] levels, and a query holds at most
//! [`MAX_COMPARISONS`] comparisons, so the tree stays shallow and its SQL
//! within SQLite's limits.

use super::ast::{CmpOp, Expr, Literal, Name, Operand, Scope, SortKey, is_plain_name};
use super::lexer::{Tok, Token, lex};
use super::{Input, MAX_COMPARISONS, MAX_GLOB_BYTES, MAX_NESTING, QueryError};

/// Parses a filter query.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    let tokens = lex(query)?;
    if tokens.len() == 1 {
        return Err(QueryError::new(
            query,
            0,
            0,
            "the query is empty; expected a comparison such as `accuracy > 0.9`",
        ));
    }
    let mut p = Parser::new(query, tokens);
    let expr = p.or()?;
    let t = p.peek();
    if t.tok != Tok::End {
        return Err(p.error_at(
            &t,
            &format!(
                "expected `and`, `or` or the end of the query, found {}",
                t.tok.describe()
            ),
        ));
    }
    Ok(expr)
}

/// Parses one sort key: a name, with a leading `-` for largest first.
pub fn parse_sort(key: &str) -> Result<SortKey, QueryError> {
    let trimmed = key.trim_start();
    let lead = key.len() - trimmed.len();
    let (descending, rest, at) = match trimmed.strip_prefix('-') {
        Some(r) => (true, r, lead + 1),
        None => (
            false,
            trimmed.strip_prefix('+').unwrap_or(trimmed),
            lead + usize::from(trimmed.starts_with('+')),
        ),
    };
    let shift = |e: QueryError| QueryError {
        query: key.to_owned(),
        offset: e.offset + at,
        input: Input::SortKey,
        ..e
    };
    let tokens = lex(rest).map_err(shift)?;
    let mut p = Parser::new(rest, tokens);
    let name = p.name().map_err(shift)?;
    let t = p.peek();
    if t.tok != Tok::End {
        return Err(shift(p.error_at(
            &t,
            "a sort key is one name, with `-` before it for largest first",
        )));
    }
    Ok(SortKey { name, descending })
}

struct Parser<'a> {
    query: &'a str,
    tokens: Vec<Token>,
    at: usize,
    /// Parentheses and `not`s open around the token being read.
    depth: usize,
    /// Comparisons read so far.
    comparisons: usize,
}

impl<'a> Parser<'a> {
    fn new(query: &'a str, tokens: Vec<Token>) -> Self {
        Self {
            query,
            tokens,
            at: 0,
            depth: 0,
            comparisons: 0,
        }
    }

    fn peek(&self) -> Token {
        self.tokens[self.at.min(self.tokens.len() - 1)].clone()
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn error_at(&self, t: &Token, message: &str) -> QueryError {
        QueryError::new(self.query, t.offset, t.len, message)
    }

    /// Opens one more level of nesting at `t` (a `(` or a `not`).
    fn enter(&mut self, t: &Token) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error_at(
                t,
                &format!(
                    "this query nests deeper than {MAX_NESTING} levels of parentheses and `not`"
                ),
            ));
        }
        Ok(())
    }

    /// Counts one more comparison, starting at `t`.
    fn count(&mut self, t: &Token) -> Result<(), QueryError> {
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(self
                .error_at(
                    t,
                    &format!("this query has more than {MAX_COMPARISONS} comparisons"),
                )
                .with_hint(
                    "to compare one name with many values, list them: `name in (1, 2, 3)`",
                ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.and()?];
        while self.peek().tok == Tok::Or {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.not()?];
        while self.peek().tok == Tok::And {
            self.bump();
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        let mut nots = 0;
        while self.peek().tok == Tok::Not {
            let t = self.bump();
            self.enter(&t)?;
            nots += 1;
        }
        let mut e = self.primary()?;
        for _ in 0..nots {
            e = Expr::Not(Box::new(e));
        }
        self.depth -= nots;
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let t = self.peek();
        if t.tok == Tok::LParen {
            self.bump();
            self.enter(&t)?;
            let e = self.or()?;
            let close = self.peek();
            if close.tok != Tok::RParen {
                return Err(self.error_at(
                    &close,
                    &format!(
                        "expected `)` to close the `(` at column {}, found {}",
                        self.column(t.offset) + 1,
                        close.tok.describe()
                    ),
                ));
            }
            self.bump();
            self.depth -= 1;
            return Ok(e);
        }
        self.count(&t)?;
        let bare = matches!(t.tok, Tok::Ident(_));
        let left = self.operand("a name or a value to compare")?;
        let t = self.peek();
        let negated_in = t.tok == Tok::Not
            && self
                .tokens
                .get(self.at + 1)
                .is_some_and(|n| n.tok == Tok::In);
        if t.tok == Tok::In || negated_in {
            let Operand::Name(name) = left else {
                return Err(self.error_at(&t, "`in` needs a name before it"));
            };
            self.bump();
            if negated_in {
                self.bump();
            }
            return Ok(Expr::In(name, negated_in, self.list()?));
        }
        // A plain word or a string alone searches names, notes and tags.
        if matches!(t.tok, Tok::End | Tok::And | Tok::Or | Tok::RParen) {
            match &left {
                Operand::Name(Name { scope: None, key }) if bare && is_plain_name(key) => {
                    return Ok(Expr::Text(key.clone()));
                }
                Operand::Lit(Literal::Str(text)) => return Ok(Expr::Text(text.clone())),
                _ => {}
            }
        }
        let Tok::Op(op) = t.tok else {
            return Err(self.error_at(
                &t,
                &format!("expected a comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`, `~`, `!~` or `in`), found {}", t.tok.describe()),
            ));
        };
        self.bump();
        let at = self.peek();
        let right = self.operand(&format!("a value after `{}`", op.symbol()))?;
        if matches!((&left, &right), (Operand::Lit(_), Operand::Lit(_))) {
            return Err(self.error_at(&t, "this compares two values; one side must be a name"));
        }
        if let (CmpOp::Match | CmpOp::NotMatch, Operand::Lit(Literal::Str(pattern))) = (op, &right)
            && is_glob(pattern)
            && pattern.len() > MAX_GLOB_BYTES
        {
            return Err(self.error_at(
                &at,
                &format!(
                    "a glob pattern is at most {MAX_GLOB_BYTES} bytes; this one has {}",
                    pattern.len()
                ),
            ));
        }
        Ok(Expr::Cmp(left, op, right))
    }

    fn column(&self, offset: usize) -> usize {
        self.query[..offset].chars().count()
    }

    fn list(&mut self) -> Result<Vec<Literal>, QueryError> {
        let t = self.peek();
        if t.tok != Tok::LParen {
            return Err(self.error_at(
                &t,
                &format!(
                    "expected `(` and a list of values after `in`, found {}",
                    t.tok.describe()
                ),
            ));
        }
        self.bump();
        let mut values = Vec::new();
        loop {
            let at = self.peek();
            match self.operand("a value in the list")? {
                Operand::Lit(l) => values.push(l),
                // A list holds values: a plain word in it is a string.
                Operand::Name(Name { scope: None, key }) if matches!(at.tok, Tok::Ident(_)) => {
                    values.push(Literal::Str(key));
                }
                Operand::Name(_) => {
                    return Err(self.error_at(
                        &at,
                        "the list after `in` holds values; quote strings ('like this')",
                    ));
                }
            }
            let t = self.bump();
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => return Ok(values),
                _ => {
                    return Err(self.error_at(
                        &t,
                        &format!(
                            "expected `,` or `)` in the list, found {}",
                            t.tok.describe()
                        ),
                    ));
                }
            }
        }
    }

    fn operand(&mut self, expected: &str) -> Result<Operand, QueryError> {
        let t = self.peek();
        let lit = match &t.tok {
            Tok::Str(s) => Literal::Str(s.clone()),
            Tok::Number(n) => Literal::Number(*n),
            Tok::Date(n, s) => Literal::Date(*n, s.clone()),
            Tok::True => Literal::Bool(true),
            Tok::False => Literal::Bool(false),
            Tok::Null => Literal::Null,
            Tok::Ident(_) | Tok::Quoted(_) => return self.name().map(Operand::Name),
            other => {
                return Err(self.error_at(
                    &t,
                    &format!("expected {expected}, found {}", other.describe()),
                ));
            }
        };
        self.bump();
        Ok(Operand::Lit(lit))
    }

    fn name(&mut self) -> Result<Name, QueryError> {
        let t = self.bump();
        match t.tok.clone() {
            Tok::Quoted(key) => Ok(Name { scope: None, key }),
            Tok::Ident(word) => {
                if let Some((prefix, rest)) = word.split_once('.')
                    && let Some(scope) = Scope::from_prefix(&prefix.to_ascii_lowercase())
                {
                    if !rest.is_empty() {
                        return Ok(Name {
                            scope: Some(scope),
                            key: rest.to_owned(),
                        });
                    }
                    // `metrics.` followed by a backticked name.
                    if let Tok::Quoted(key) = self.peek().tok
                        && self.peek().offset == t.offset + t.len
                    {
                        self.bump();
                        return Ok(Name {
                            scope: Some(scope),
                            key,
                        });
                    }
                    return Err(self.error_at(&t, &format!("expected a name after `{prefix}.`")));
                }
                Ok(Name {
                    scope: None,
                    key: word,
                })
            }
            other => {
                Err(self.error_at(&t, &format!("expected a name, found {}", other.describe())))
            }
        }
    }
}

/// Whether a `~` pattern is a glob rather than a substring.
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::CmpOp;

    fn n(key: &str) -> Operand {
        Operand::Name(Name {
            scope: None,
            key: key.into(),
        })
    }

    #[test]
    fn precedence_and_grouping() {
        let e = parse("a > 1 or b < 2 and not c = 'x'").unwrap();
        assert_eq!(e.to_string(), "a > 1 or b < 2 and not c = 'x'");
        let Expr::Or(items) = &e else { panic!("{e:?}") };
        assert!(matches!(items[..], [Expr::Cmp(..), Expr::And(_)]));
        assert_eq!(
            parse("a = 1 and b = 2 and c = 3 or d = 4 or e = 5")
                .unwrap()
                .to_string(),
            "a = 1 and b = 2 and c = 3 or d = 4 or e = 5"
        );
        let Expr::Or(items) = parse("a = 1 and b = 2 and c = 3 or d = 4 or e = 5").unwrap() else {
            panic!()
        };
        assert!(matches!(&items[..], [Expr::And(three), _, _] if three.len() == 3));
        // A group is kept as one, and printed in parentheses.
        let e = parse("(a = 1 and b = 2) and c = 3").unwrap();
        assert!(matches!(&e, Expr::And(two) if matches!(two[0], Expr::And(_))));
        assert_eq!(e.to_string(), "(a = 1 and b = 2) and c = 3");
        assert_eq!(
            parse("not not (a = 1 or b = 2)").unwrap().to_string(),
            "not not (a = 1 or b = 2)"
        );
        let e = parse("(a > 1 or b < 2) and c = 3").unwrap();
        assert_eq!(e.to_string(), "(a > 1 or b < 2) and c = 3");
        assert_eq!(
            parse("NOT (a=1 AND b=2)").unwrap().to_string(),
            "not (a = 1 and b = 2)"
        );
    }

    #[test]
    fn names_scopes_and_lists() {
        let e = parse(
            "metrics.`val loss` <= 0.5 and params.lr in (0.1, 0.01) and status not in ('failed')",
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "metrics.`val loss` <= 0.5 and params.lr in (0.1, 0.01) and status not in ('failed')"
        );
        assert_eq!(
            parse("`precision[0]` > 0.9").unwrap(),
            Expr::Cmp(
                n("precision[0]"),
                CmpOp::Gt,
                Operand::Lit(Literal::Number(0.9))
            )
        );
        assert_eq!(parse("lr.decay = 1").unwrap().to_string(), "`lr.decay` = 1");
    }

    #[test]
    fn errors_point_at_the_bad_token() {
        let e = parse("m1 > and b = 2").unwrap_err();
        assert_eq!((e.offset, e.len), (5, 3));
        assert!(
            e.message.contains("expected a value after `>`"),
            "{}",
            e.message
        );
        assert_eq!(e.to_string().lines().nth(2), Some("       ^^^"));
        let e = parse("(a = 1").unwrap_err();
        assert!(e.message.starts_with("expected `)`"), "{}", e.message);
        let e = parse("a = 1 b").unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(
            parse("1 = 2")
                .unwrap_err()
                .message
                .contains("one side must be a name")
        );
        assert!(
            parse("a = 'open")
                .unwrap_err()
                .message
                .contains("no closing")
        );
        for names in ["a in (metrics.b)", "a in (1, `b`)"] {
            let e = parse(names).unwrap_err();
            assert!(e.message.contains("holds values"), "{}", e.message);
        }
        // A plain word in a list is a string: the list holds only values.
        assert_eq!(
            parse("a in (b, c-1)").unwrap().to_string(),
            "a in ('b', 'c-1')"
        );
    }

    #[test]
    fn sort_keys() {
        assert_eq!(
            parse_sort("-m0").unwrap(),
            SortKey {
                name: Name {
                    scope: None,
                    key: "m0".into()
                },
                descending: true
            }
        );
        assert_eq!(parse_sort("params.lr").unwrap().to_string(), "params.lr");
        assert_eq!(parse_sort("-`a b`").unwrap().to_string(), "-`a b`");
        let e = parse_sort("-m0 x").unwrap_err();
        assert_eq!(e.offset, 4);
    }
}
