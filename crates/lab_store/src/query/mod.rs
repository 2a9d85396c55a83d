//! Lab's query language: one filter and sort syntax for `lab ls --where`,
//! `lab.runs(where=...)` and the HTTP API.
//!
//! ```text
//! accuracy_score > 0.9 and params.n_estimators >= 50
//! status in ('failed', 'crashed') or not experiment ~ 'iris*'
//! start_time >= 2026-11-01 and tags.team = 'vision'
//! ```
//!
//! A query is parsed into an [`Expr`] (whose `Display` prints it back in a
//! canonical form that parses to the same tree), then resolved against the
//! names a project knows and compiled to SQL over the index. `docs/query.md`
//! is the user's reference.
//!
//! Queries come from anyone who can reach `lab ui`: every one is parsed and
//! compiled within fixed bounds ([`MAX_NESTING`], [`MAX_COMPARISONS`],
//! [`MAX_GLOB_BYTES`], [`MAX_SORT_KEYS`]) into SQL within SQLite's limits, so
//! that any text gets a right answer or a [`QueryError`], never a crash.

mod ast;
mod compile;
mod dialect;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod lexer;
mod parser;

pub use ast::{CmpOp, Expr, Literal, Name, Operand, Scope, SortKey};
pub use compile::{
    Bound, Catalog, Compiled, compile_sort, compile_sort_in, compile_where, compile_where_in,
    memberships, sort_terms_in,
};
pub use dialect::{ByValueIndex, Dialect, Sqlite};
pub use error::{Input, QueryError};
pub use parser::{parse, parse_sort};

/// A date as queries write it (`YYYY-MM-DD`, optionally `THH:MM[:SS[.f]]`
/// and `Z`, in UTC) at the start of `text`: nanoseconds since 1970 and
/// where the date ends.
pub(crate) fn parse_date(text: &str) -> Option<(i64, usize)> {
    lexer::date(text, 0)
}

/// How deep parentheses and `not` may nest in a query. Deeper is refused
/// while parsing, so that no walk over the tree (and no SQL made from it)
/// recurses without bound.
pub const MAX_NESTING: usize = 100;

/// How many comparisons (`a > 1`, `b in (...)`) one query may hold. Each
/// binds at most two SQL variables, which keeps a query far from SQLite's
/// limit on them; a long list of values belongs in one `in`.
pub const MAX_COMPARISONS: usize = 1000;

/// How long a glob pattern (a `~` pattern with `*`, `?` or `[`) may be, in
/// bytes. SQLite refuses patterns over 50,000 bytes, and matches each `*`
/// with one more level of recursion on the thread's stack.
pub const MAX_GLOB_BYTES: usize = 1000;

/// How many sort keys one listing may have.
pub const MAX_SORT_KEYS: usize = 100;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn name() -> impl Strategy<Value = Name> {
        let scope = prop_oneof![
            Just(None),
            Just(Some(Scope::Run)),
            Just(Some(Scope::Metrics)),
            Just(Some(Scope::Params)),
            Just(Some(Scope::Tags)),
        ];
        let key = prop_oneof![
            "[a-z_][a-z0-9_]{0,6}",
            "[a-zA-Z0-9 _.\\-`\\[\\]é]{1,8}",
            Just("and".to_owned()),
            Just("None".to_owned()),
            Just("metrics".to_owned()),
        ];
        (scope, key).prop_map(|(scope, key)| Name { scope, key })
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Literal::Number),
            (-1000i32..1000).prop_map(|n| Literal::Number(f64::from(n))),
            Just(Literal::Number(f64::INFINITY)),
            Just(Literal::Number(f64::NEG_INFINITY)),
            ".{0,8}".prop_map(Literal::Str),
            any::<bool>().prop_map(Literal::Bool),
            Just(Literal::Null),
            (1970i32..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60).prop_map(
                |(y, m, d, h, mi)| {
                    let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}");
                    let nanos = lexer::date(&text, 0).map_or(0, |d| d.0);
                    Literal::Date(nanos, text)
                }
            ),
        ]
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge),
            Just(CmpOp::Match),
            Just(CmpOp::NotMatch),
        ]
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            (name(), op(), literal()).prop_map(|(n, o, l)| Expr::Cmp(
                Operand::Name(n),
                o,
                Operand::Lit(l)
            )),
            (literal(), op(), name()).prop_map(|(l, o, n)| Expr::Cmp(
                Operand::Lit(l),
                o,
                Operand::Name(n)
            )),
            (name(), op(), name()).prop_map(|(a, o, b)| Expr::Cmp(
                Operand::Name(a),
                o,
                Operand::Name(b)
            )),
            (
                name(),
                any::<bool>(),
                prop::collection::vec(literal(), 1..4)
            )
                .prop_map(|(n, neg, v)| Expr::In(n, neg, v)),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::Or),
                inner.prop_map(|a| Expr::Not(Box::new(a))),
            ]
        })
    }

    #[test]
    fn only_tests_of_keys_values_joined_by_and_are_counted_from_their_indexes() {
        let catalog = Catalog {
            metrics: ["m1".to_owned(), "m2".to_owned()].into(),
            params: ["lr".to_owned(), "opt".to_owned()].into(),
            tags: BTreeSet::new(),
        };
        let sql = |text: &str| {
            compile_where_in(
                &ByValueIndex(&Sqlite),
                &parse(text).unwrap(),
                &catalog,
                text,
            )
            .unwrap()
            .sql
        };
        let metric = "SELECT run FROM metrics WHERE key = ? AND last > ?";
        let param = "SELECT run FROM params WHERE key = ? AND num <= ?";
        assert_eq!(memberships(&sql("m1 > 0.5")), Some(vec![metric]));
        assert_eq!(memberships(&sql("params.lr <= 3")), Some(vec![param]));
        assert_eq!(
            memberships(&sql("m1 > 0.5 and lr <= 3")),
            Some(vec![metric, param])
        );
        assert_eq!(
            memberships(&sql(
                "lr <= 3 and m1 > 0.5 and m2 > 1 and (lr <= 2 and m1 > 0)"
            )),
            Some(vec![param, metric, metric, param, metric])
        );
        for more in [
            "m1 > 0.5 or m2 < 1",
            "m1 > 0.5 and (m2 < 1 or lr <= 3)",
            "m1 > 0.5 and not m2 < 1",
            "not m1 > 0.5",
            "m1 = null",
            "m1 > 0.5 and m2 = null",
            "opt = 'adam'",
            "m1 > 0.5 and opt = 'adam'",
            "m1 in (1, 2)",
            "status = finished",
            "m1 > 0.5 and status = finished",
        ] {
            assert_eq!(memberships(&sql(more)), None, "{more}: {}", sql(more));
        }
        // Without the index of values, no membership at all.
        let plain = compile_where(&parse("m1 > 0.5").unwrap(), &catalog, "m1 > 0.5").unwrap();
        assert_eq!(memberships(&plain.sql), None, "{}", plain.sql);
        // Nothing that merely looks like a pair.
        for odd in [
            "(",
            ")",
            "()",
            "( AND )",
            "(runs.rid IN (SELECT run FROM t)) AND (x)",
        ] {
            assert_eq!(memberships(odd), None, "{odd}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn printed_queries_parse_to_the_same_tree(e in expr()) {
            let text = e.to_string();
            let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{err}")))?;
            prop_assert_eq!(&back, &e, "printed as {}", text);
        }

        #[test]
        fn sort_keys_round_trip(n in name(), descending in any::<bool>()) {
            let key = SortKey { name: n, descending };
            prop_assert_eq!(parse_sort(&key.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?, key);
        }

        #[test]
        fn any_text_parses_or_fails_cleanly(text in ".{0,40}") {
            if let Err(e) = parse(&text) {
                prop_assert!(e.offset <= text.len());
                prop_assert!(text.is_char_boundary(e.offset));
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
