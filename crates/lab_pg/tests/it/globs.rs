//! Globs: the regular expression `glob_regex` makes of a pattern matches in
//! PostgreSQL exactly the texts SQLite's `GLOB` matches with the pattern,
//! for thousands of random patterns (sets, negations, ranges, `]` and `-`
//! in odd places, unclosed sets, characters regular expressions treat
//! specially) against random texts.

use lab_pg::glob_regex;

use super::Cluster;
use super::journals::Rng;

const PATTERN_CHARS: &[char] = &[
    'a', 'b', 'c', 'z', 'A', '*', '*', '?', '[', '[', ']', ']', '^', '-', '-', '!', '.', '\\', 'é',
    '日', '(', ')', '|', '+', '$', '{', '}', ' ',
];
const TEXT_CHARS: &[char] = &[
    'a', 'b', 'c', 'z', 'A', '-', ']', '^', '[', '.', '\\', 'é', '日', '*', '?', ' ', '\n', '$',
];

fn random(rng: &mut Rng, chars: &[char], max: u64) -> String {
    (0..rng.below(max + 1)).map(|_| *rng.pick(chars)).collect()
}

#[test]
fn globs_match_in_postgresql_what_they_match_in_sqlite() {
    let cluster = Cluster::start();
    let sqlite = rusqlite::Connection::open_in_memory().unwrap();
    let mut pg = postgres::Client::connect(&cluster.lab(), postgres::NoTls).unwrap();
    let mut rng = Rng::new(5);
    let mut texts = Vec::new();
    let mut patterns = Vec::new();
    for _ in 0..300 {
        let pattern = random(&mut rng, PATTERN_CHARS, 7);
        for _ in 0..10 {
            // Texts made from the pattern match more often than random ones.
            let text = if rng.chance(50) {
                pattern
                    .chars()
                    .filter(|c| !"*?[]".contains(*c))
                    .chain(random(&mut rng, TEXT_CHARS, 2).chars())
                    .collect()
            } else {
                random(&mut rng, TEXT_CHARS, 5)
            };
            texts.push(text);
            patterns.push(pattern.clone());
        }
    }
    let in_sqlite: Vec<bool> = texts
        .iter()
        .zip(&patterns)
        .map(|(t, p)| {
            sqlite
                .query_row("SELECT ?1 GLOB ?2", [t, p], |r| r.get(0))
                .unwrap()
        })
        .collect();
    let regexes: Vec<String> = patterns.iter().map(|p| glob_regex(p)).collect();
    let in_pg: Vec<bool> = pg
        .query(
            r#"SELECT t COLLATE "C" ~ r FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x (t, r, n) ORDER BY n"#,
            &[&texts, &regexes],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut matched = 0;
    for i in 0..texts.len() {
        assert_eq!(
            in_sqlite[i],
            in_pg[i],
            "`{}` GLOB `{}` (as {})",
            texts[i].escape_debug(),
            patterns[i].escape_debug(),
            regexes[i]
        );
        matched += usize::from(in_sqlite[i]);
    }
    assert!(
        matched > 100,
        "only {matched} texts matched: the test means little"
    );
}
