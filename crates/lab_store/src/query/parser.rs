//! From tokens to a tree: `or` binds loosest, then `and`, then `not`, then
//! comparisons; both `and` and `or` group to the left.

use super::QueryError;
use super::ast::{Expr, Literal, Name, Operand, Scope, SortKey};
use super::lexer::{Tok, Token, lex};

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
    let mut p = Parser {
        query,
        tokens,
        at: 0,
    };
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
    let tokens = lex(rest).map_err(|e| QueryError {
        query: key.to_owned(),
        offset: e.offset + at,
        ..e
    })?;
    let mut p = Parser {
        query: rest,
        tokens,
        at: 0,
    };
    let shift = |e: QueryError| QueryError {
        query: key.to_owned(),
        offset: e.offset + at,
        ..e
    };
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
}

impl Parser<'_> {
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

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.peek().tok == Tok::Or {
            self.bump();
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.not()?;
        while self.peek().tok == Tok::And {
            self.bump();
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        if self.peek().tok == Tok::Not {
            self.bump();
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let t = self.peek();
        if t.tok == Tok::LParen {
            self.bump();
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
            return Ok(e);
        }
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
        let Tok::Op(op) = t.tok else {
            return Err(self.error_at(
                &t,
                &format!("expected a comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`, `~`, `!~` or `in`), found {}", t.tok.describe()),
            ));
        };
        self.bump();
        let right = self.operand(&format!("a value after `{}`", op.symbol()))?;
        if matches!((&left, &right), (Operand::Lit(_), Operand::Lit(_))) {
            return Err(self.error_at(&t, "this compares two values; one side must be a name"));
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
            match self.operand("a value in the list")? {
                Operand::Lit(l) => values.push(l),
                Operand::Name(_) => {
                    let prev = self.tokens[self.at - 1].clone();
                    return Err(self.error_at(
                        &prev,
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
        let Expr::Or(_, right) = &e else {
            panic!("{e:?}")
        };
        assert!(matches!(**right, Expr::And(..)));
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
        assert!(
            parse("a in (b)")
                .unwrap_err()
                .message
                .contains("holds values")
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
