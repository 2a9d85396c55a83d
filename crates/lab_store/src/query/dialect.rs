//! How the SQL the query compiler writes is spelled in one database.
//!
//! The compiler writes standard SQL over the index's tables (`runs`, and a
//! correlated subquery into `metrics`, `params` or `tags` per name, or for
//! a count or a whole list, the runs a key's index of values gives: see
//! [`ByValueIndex`]) and asks
//! a [`Dialect`] for the few things databases spell differently: a test that
//! is false rather than NULL when a value is missing, a glob, a
//! case-insensitive substring, membership in a bound list. Every value is
//! bound, never written into the SQL, so `?` appears in the compiler's SQL
//! only as a placeholder; [`Dialect::finish`] turns those into the
//! database's own placeholders when a statement is complete.

/// A database's spelling of what the query compiler needs.
pub trait Dialect {
    /// `test`, but false instead of NULL when a value in it is missing.
    fn or_false(&self, test: &str) -> String;

    /// `x` matches the glob bound at the next placeholder.
    fn glob(&self, x: &str) -> String;

    /// The glob pattern to bind for [`Dialect::glob`], from the query's.
    fn glob_pattern(&self, glob: &str) -> String {
        glob.to_owned()
    }

    /// `x` holds the text bound at the next placeholder, in any case.
    fn contains_text(&self, x: &str) -> String;

    /// `x` is (or, `negated`, is not) one of the values of the JSON array
    /// bound at the next placeholder: numbers, or strings when `text`.
    fn in_json_array(&self, x: &str, negated: bool, text: bool) -> String;

    /// The JSON array to bind for [`Dialect::in_json_array`], from the
    /// compiler's (as `serde_json` spells it: a NUL is `\u0000`).
    fn json_list(&self, json: String) -> String {
        json
    }

    /// A complete statement with `?` for each bound value, in the
    /// database's own placeholders.
    fn finish(&self, sql: String) -> String {
        sql
    }

    /// Whether a metric's last value or a parameter's number compared with
    /// a number is written as membership in the runs that the key's index of
    /// values gives (`runs.rid IN (SELECT run FROM metrics WHERE key = ? AND
    /// last > ?)`, one range of that index read) rather than as the key
    /// looked up in each run. The two select the same runs; see
    /// [`ByValueIndex`].
    fn tests_by_value_index(&self) -> bool {
        false
    }
}

/// A dialect whose numeric tests of a key read the key's index of values
/// ([`Dialect::tests_by_value_index`]): for statements that visit every
/// matching run (a count, a listing without a limit), where reading that
/// range once costs about half of looking the key up in every run. A page
/// in another order is better served by the lookups, which stop at its last
/// run, and so are runs narrowed first by an indexed column.
#[derive(Clone, Copy)]
pub struct ByValueIndex<'a>(pub &'a dyn Dialect);

impl Dialect for ByValueIndex<'_> {
    fn or_false(&self, test: &str) -> String {
        self.0.or_false(test)
    }

    fn glob(&self, x: &str) -> String {
        self.0.glob(x)
    }

    fn glob_pattern(&self, glob: &str) -> String {
        self.0.glob_pattern(glob)
    }

    fn contains_text(&self, x: &str) -> String {
        self.0.contains_text(x)
    }

    fn in_json_array(&self, x: &str, negated: bool, text: bool) -> String {
        self.0.in_json_array(x, negated, text)
    }

    fn json_list(&self, json: String) -> String {
        self.0.json_list(json)
    }

    fn finish(&self, sql: String) -> String {
        self.0.finish(sql)
    }

    fn tests_by_value_index(&self) -> bool {
        true
    }
}

/// SQLite: the index of a project on disk.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sqlite;

impl Dialect for Sqlite {
    fn or_false(&self, test: &str) -> String {
        format!("coalesce(({test}), 0)")
    }

    fn glob(&self, x: &str) -> String {
        format!("{x} GLOB ?")
    }

    fn contains_text(&self, x: &str) -> String {
        format!("instr(lower({x}), lower(?)) > 0")
    }

    fn in_json_array(&self, x: &str, negated: bool, _text: bool) -> String {
        let not = if negated { "NOT " } else { "" };
        format!("{x} {not}IN (SELECT value FROM json_each(?))")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Catalog, compile_sort_in, compile_where_in, parse, parse_sort};

    /// A dialect that spells everything in its own words, to show that the
    /// compiler asks the dialect for every database-specific part.
    struct Other;

    impl Dialect for Other {
        fn or_false(&self, test: &str) -> String {
            format!("FALSE_IF_NULL[{test}]")
        }
        fn glob(&self, x: &str) -> String {
            format!("GLOB_MATCH[{x}, ?]")
        }
        fn glob_pattern(&self, glob: &str) -> String {
            format!("pattern:{glob}")
        }
        fn contains_text(&self, x: &str) -> String {
            format!("HAS_TEXT[{x}, ?]")
        }
        fn in_json_array(&self, x: &str, negated: bool, text: bool) -> String {
            format!("IN_ARRAY[{x}, ?, negated={negated}, text={text}]")
        }
        fn finish(&self, sql: String) -> String {
            let mut n = 0;
            sql.chars()
                .map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("${n}")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        }
    }

    #[test]
    fn every_database_specific_spelling_comes_from_the_dialect() {
        let catalog = Catalog {
            metrics: ["acc".to_owned()].into(),
            params: ["opt".to_owned()].into(),
            tags: ["team".to_owned()].into(),
        };
        let text = "acc > 0.9 and opt ~ 'ad*' and team ~ 'vis' and opt in ('sgd', 'adam') and not acc in (1, 2) and status = finished";
        let compiled = compile_where_in(&Other, &parse(text).unwrap(), &catalog, text).unwrap();
        let sql = Other.finish(compiled.sql.clone());
        for sqlite_only in ["coalesce", "GLOB ", "instr", "json_each"] {
            assert!(!sql.contains(sqlite_only), "{sqlite_only} in {sql}");
        }
        assert!(
            sql.contains("GLOB_MATCH[") && sql.contains("HAS_TEXT[") && sql.contains("IN_ARRAY["),
            "{sql}"
        );
        assert!(!sql.contains('?'), "every placeholder numbered: {sql}");
        assert_eq!(
            sql.matches('$').count(),
            compiled.params.len(),
            "one placeholder per bound value"
        );
        assert!(
            compiled
                .params
                .contains(&crate::query::Bound::Text("pattern:ad*".into())),
            "{:?}",
            compiled.params
        );
        // The same query in SQLite, as the index runs it.
        let sqlite = crate::query::compile_where(&parse(text).unwrap(), &catalog, text).unwrap();
        assert!(sqlite.sql.contains("coalesce((") && sqlite.sql.contains("json_each(?)"));
        assert_eq!(sqlite.params.len(), compiled.params.len());

        let sort = compile_sort_in(&Other, &parse_sort("-opt").unwrap(), &catalog, "-opt").unwrap();
        assert!(sort.sql.contains("DESC NULLS LAST"), "{}", sort.sql);
    }
}
