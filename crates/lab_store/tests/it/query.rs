//! The query language against hostile input: every query gets a correct
//! answer or a query error with a caret, never a crash or SQLite's own error.

use super::{begin, close_run, new_project, open};
use lab_store::{Error, Selection, Store};
use lab_types::{Record, Value, now_nanos};

/// Three runs: depth 1 to 3, so an answer reads as the depths it lists.
/// Run 3 also has a metric called `adam`, a word that is also a value of
/// the `optimizer` parameter.
fn three_runs() -> (tempfile::TempDir, Store) {
    let (dir, project) = new_project();
    let t0 = now_nanos();
    for (i, (experiment, optimizer, acc)) in [
        ("iris", "adam", 0.5),
        ("iris", "sgd", 0.9),
        ("mnist", "adam", 0.7),
    ]
    .into_iter()
    .enumerate()
    {
        let mut w = begin(&project, experiment, t0 + i as i64);
        w.param("depth", Value::Int(i as i64 + 1));
        w.param("optimizer", Value::Str(optimizer.into()));
        // A long text value, for globs that would recurse once per `*`.
        w.param("note", Value::Str("a".repeat(30_000)));
        w.key(0, "acc");
        w.metric(0, 0, acc);
        w.rec(&Record::Tag {
            time_nanos: t0,
            key: "team".into(),
            value: if i == 2 { "vision" } else { "tabular" }.into(),
        });
        if i == 2 {
            w.key(1, "adam");
            w.metric(1, 0, 1.0);
        }
        close_run(w);
    }
    let mut store = open(&project);
    store.refresh().unwrap();
    (dir, store)
}

fn selection(filter: &str, sort: &[&str]) -> Selection {
    Selection {
        filter: Some(filter.to_owned()),
        sort: sort.iter().map(|s| (*s).to_owned()).collect(),
        ..Selection::default()
    }
}

/// The depths of the runs a query lists, smallest first.
fn depths(store: &Store, filter: &str) -> Result<Vec<i64>, Error> {
    let runs = store.select(&selection(filter, &["depth"]))?;
    Ok(runs
        .iter()
        .map(|r| match r.params.iter().find(|p| p.0 == "depth") {
            Some((_, Value::Int(d))) => *d,
            _ => -1,
        })
        .collect())
}

/// The query error of a selection that must fail with one.
fn query_error(store: &Store, sel: &Selection) -> lab_store::query::QueryError {
    match store.select(sel) {
        Err(Error::Query(q)) => q,
        Err(other) => panic!("expected a query error, got: {other}"),
        Ok(runs) => panic!("expected a query error, got {} runs", runs.len()),
    }
}

/// Runs `f` on a thread with the 2 MiB stack the server's blocking threads
/// have, where unbounded recursion overflows first.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn nested(levels: usize) -> String {
    format!("{}acc > 0.6{}", "(".repeat(levels), ")".repeat(levels))
}

#[test]
fn deep_nesting_is_refused_with_a_caret_at_the_level_too_many() {
    on_small_stack(|| {
        let (_dir, store) = three_runs();
        for levels in [101, 1_500, 10_000] {
            let q = query_error(&store, &selection(&nested(levels), &[]));
            assert_eq!((q.offset, q.len), (100, 1), "{levels} levels");
            assert!(
                q.message.contains("deeper than 100 levels"),
                "{}",
                q.message
            );
            let shown = q.to_string();
            assert!(shown.starts_with("bad query: "), "{shown}");
            assert!(shown.lines().nth(2).unwrap().ends_with(" ^"), "{shown}");
        }
        let nots = format!("{}acc > 0.6", "not ".repeat(100_000));
        let q = query_error(&store, &selection(&nots, &[]));
        assert_eq!((q.offset, q.len), (400, 3));
        let mixed = format!("{}acc > 0.6{}", "not (".repeat(5_000), ")".repeat(5_000));
        let q = query_error(&store, &selection(&mixed, &[]));
        assert_eq!(
            q.offset, 250,
            "the 101st level is the `not` of the 51st `not (`"
        );
    });
}

#[test]
fn nesting_up_to_the_limit_gives_the_right_answer() {
    on_small_stack(|| {
        let (_dir, store) = three_runs();
        assert_eq!(depths(&store, &nested(100)).unwrap(), [2, 3]);
        let nots = format!("{}acc > 0.6", "not ".repeat(100));
        assert_eq!(depths(&store, &nots).unwrap(), [2, 3]);
        assert!(depths(&store, &format!("not {nots}")).is_err());
        // Every level a group of two `or`s of two `and`s: the deepest tree
        // the limit allows, still within SQLite's expression depth.
        let mut q = "acc > 0.6".to_owned();
        for _ in 0..100 {
            q = format!("acc < 0 or depth > 0 and ({q})");
        }
        assert_eq!(depths(&store, &q).unwrap(), [2, 3]);
        let mut q = "acc > 0.6".to_owned();
        for _ in 0..25 {
            q = format!("not (acc < 0 or not ({q}) and depth > 0)");
        }
        assert_eq!(depths(&store, &q).unwrap(), [2, 3]);
    });
}

fn chain(op: &str, term: &str, n: usize) -> String {
    vec![term; n].join(&format!(" {op} "))
}

#[test]
fn long_and_or_not_chains_are_refused_past_the_comparison_limit() {
    on_small_stack(|| {
        let (_dir, store) = three_runs();
        for (op, term) in [
            ("and", "acc > 0.6"),
            ("or", "acc > 0.6"),
            ("and", "not acc > 0.6"),
            ("or", "not not acc > 0.6"),
        ] {
            let q = query_error(&store, &selection(&chain(op, term, 100_000), &[]));
            assert!(
                q.message.contains("more than 1000 comparisons"),
                "{}",
                q.message
            );
            let at = (term.len() + op.len() + 2) * 1000;
            assert_eq!(q.offset, at + term.find("acc").unwrap(), "{op} {term}");
            assert_eq!(q.len, 3);
        }
    });
}

#[test]
fn chains_up_to_the_comparison_limit_give_the_right_answer() {
    on_small_stack(|| {
        let (_dir, store) = three_runs();
        assert_eq!(
            depths(&store, &chain("and", "acc > 0.6", 1000)).unwrap(),
            [2, 3]
        );
        let mut ors = chain("or", "acc > 5", 999);
        ors.push_str(" or experiment = 'mnist'");
        assert_eq!(depths(&store, &ors).unwrap(), [3]);
        let nots = chain("and", "not acc > 0.6", 1000);
        assert_eq!(depths(&store, &nots).unwrap(), [1]);
        // Comparisons of two names bind two keys each: 2000 variables.
        assert_eq!(
            depths(&store, &chain("and", "depth < acc", 1000)).unwrap(),
            Vec::<i64>::new()
        );
    });
}

#[test]
fn a_long_in_list_is_bound_as_one_value_and_answers_right() {
    let (_dir, store) = three_runs();
    let numbers: Vec<String> = (10..100_010).map(|n| n.to_string()).collect();
    let with = |extra: &str| format!("{}, {extra}", numbers.join(", "));
    assert_eq!(
        depths(&store, &format!("depth in ({})", with("3, 1.0"))).unwrap(),
        [1, 3]
    );
    assert_eq!(
        depths(&store, &format!("depth not in ({})", with("3, 1.0"))).unwrap(),
        [2]
    );
    assert_eq!(
        depths(&store, &format!("acc in ({})", with("0.9, true"))).unwrap(),
        [2]
    );
    let words: Vec<String> = (0..100_000).map(|n| format!("'opt{n}'")).collect();
    let list = format!("{}, 'sgd', '1'", words.join(", "));
    assert_eq!(
        depths(&store, &format!("optimizer in ({list})")).unwrap(),
        [2]
    );
    assert_eq!(
        depths(&store, &format!("depth in ('2', {})", words.join(", "))).unwrap(),
        [2],
        "a parameter's text is compared with strings"
    );
    assert_eq!(
        depths(&store, &format!("experiment not in ({list}, 'mnist')")).unwrap(),
        [1, 2]
    );
    // Numbers keep their exact value through the bound list.
    assert_eq!(depths(&store, "acc in (0.7, 1e999, -0.0)").unwrap(), [3]);
}

#[test]
fn huge_glob_patterns_are_refused_with_their_limit() {
    on_small_stack(|| {
        let (_dir, store) = three_runs();
        let glob = format!("'{}*'", "x".repeat(1 << 20));
        let text = format!("acc > 0 and optimizer ~ {glob}");
        let q = query_error(&store, &selection(&text, &[]));
        assert!(q.message.contains("1000 bytes"), "{}", q.message);
        assert_eq!((q.offset, q.len), (24, glob.len()));
        // One byte over, and `!~` too.
        let q = query_error(
            &store,
            &selection(&format!("note !~ '{}*'", "x".repeat(1000)), &[]),
        );
        assert_eq!(q.offset, 8);
        // Up to the limit, even one that recurses once per `*` in SQLite
        // over a long value, answers.
        let deep = format!("note ~ '{}b'", "*a".repeat(499));
        assert_eq!(depths(&store, &deep).unwrap(), Vec::<i64>::new());
        let deep = format!("note ~ '{}'", "*a".repeat(500));
        assert_eq!(depths(&store, &deep).unwrap(), [1, 2, 3]);
        // A substring has no such limit.
        let long = format!("note ~ '{}'", "a".repeat(1 << 20));
        assert_eq!(depths(&store, &long).unwrap(), Vec::<i64>::new());
    });
}

#[test]
fn a_word_on_the_right_that_names_nothing_is_a_string() {
    let (_dir, store) = three_runs();
    assert_eq!(depths(&store, "status = finished").unwrap(), [1, 2, 3]);
    assert_eq!(
        depths(&store, "acc > 0.6 and experiment = iris").unwrap(),
        [2]
    );
    assert_eq!(depths(&store, "optimizer = sgd").unwrap(), [2]);
    assert_eq!(depths(&store, "optimizer != sgd").unwrap(), [1, 3]);
    assert_eq!(depths(&store, "tags.team = vision").unwrap(), [3]);
    assert_eq!(depths(&store, "experiment ~ mn").unwrap(), [3]);
    assert_eq!(
        depths(
            &store,
            "experiment in (iris, nothing) and optimizer in (sgd)"
        )
        .unwrap(),
        [2]
    );
    // Backticks make a name of any other text: this is no string.
    let q = query_error(&store, &selection("experiment = `iris data`", &[]));
    assert!(q.message.contains("named `iris data`"), "{}", q.message);
    // A scoped word is a name.
    let q = query_error(&store, &selection("optimizer = params.sgd", &[]));
    assert!(
        q.message.contains("no run has a parameter named `sgd`"),
        "{}",
        q.message
    );
}

#[test]
fn a_word_that_names_something_is_a_name_with_a_hint_when_it_fails() {
    let (_dir, store) = three_runs();
    // `adam` is also a metric: a text field compared with it is refused.
    let q = query_error(&store, &selection("experiment = adam", &[]));
    assert_eq!(q.hint.as_deref(), Some("strings take quotes ('adam')"));
    assert_eq!((q.offset, q.len), (13, 4));
    let shown = q.to_string();
    assert!(
        shown.ends_with("\n\nhint: strings take quotes ('adam')"),
        "{shown}"
    );
    let q = query_error(&store, &selection("optimizer ~ adam", &[]));
    assert_eq!(q.hint.as_deref(), Some("strings take quotes ('adam')"));
    // Quoted, it is the string.
    assert_eq!(depths(&store, "optimizer = 'adam'").unwrap(), [1, 3]);
    // Compared with a parameter, the metric is meant: run 3's `adam` is 1.
    assert_eq!(depths(&store, "depth > adam").unwrap(), [3]);
}

#[test]
fn text_compared_with_numbers_is_refused_in_either_order() {
    let (_dir, store) = three_runs();
    for (query, message) in [
        ("team = acc", "`team` is text and `acc` is a metric"),
        ("acc < tags.team", "`team` is text and `acc` is a metric"),
        (
            "start_time = experiment",
            "`experiment` is text and `start_time` is a time",
        ),
        (
            "team > duration",
            "`team` is text and `duration` holds numbers",
        ),
        (
            "status != end_time",
            "`status` is text and `end_time` is a time",
        ),
    ] {
        let q = query_error(&store, &selection(query, &[]));
        assert!(q.message.starts_with(message), "{query}: {}", q.message);
    }
    // A parameter holds either: compared with text, its text is.
    assert_eq!(
        depths(&store, "optimizer = team").unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(depths(&store, "depth < acc").unwrap(), Vec::<i64>::new());
}

#[test]
fn an_ambiguous_word_on_the_right_hints_at_quotes() {
    let (dir, project) = new_project();
    let mut w = begin(&project, "x", now_nanos());
    w.param("score", Value::Int(1));
    w.key(0, "score");
    w.metric(0, 0, 0.5);
    close_run(w);
    let mut store = open(&project);
    store.refresh().unwrap();
    let q = query_error(&store, &selection("experiment = score", &[]));
    assert!(q.message.contains("`score` is ambiguous"), "{}", q.message);
    assert_eq!(q.hint.as_deref(), Some("strings take quotes ('score')"));
    drop(dir);
}

#[test]
fn a_bad_sort_key_is_reported_as_one() {
    let (_dir, store) = three_runs();
    let q = query_error(&store, &selection("acc > 0", &["-acc", "-acurracy"]));
    assert_eq!(q.input, lab_store::query::Input::SortKey);
    let shown = q.to_string();
    assert!(shown.starts_with("bad sort key: no run has"), "{shown}");
    assert!(shown.contains("  -acurracy\n   ^^^^^^^^"), "{shown}");
    let q = query_error(&store, &selection("acc > 0", &["acc x"]));
    assert!(q.to_string().starts_with("bad sort key: "), "{q}");
    let q = query_error(&store, &selection("acc >", &["acc"]));
    assert_eq!(q.input, lab_store::query::Input::Filter);
    assert!(q.to_string().starts_with("bad query: "), "{q}");
}

#[test]
fn too_many_sort_keys_are_refused() {
    let (_dir, store) = three_runs();
    let keys = vec!["optimizer"; 100_000];
    let q = query_error(&store, &selection("acc > 0", &keys));
    assert!(
        q.message.contains("more than 100 sort keys"),
        "{}",
        q.message
    );
    let runs = store.select(&selection("acc > 0", &keys[..100])).unwrap();
    assert_eq!(runs.len(), 3);
}

#[test]
fn a_long_status_list_is_each_status_once() {
    let (_dir, store) = three_runs();
    let sel = Selection {
        statuses: vec![lab_types::Status::Finished; 40_000],
        ..Selection::default()
    };
    assert_eq!(store.select(&sel).unwrap().len(), 3);
}
