//! The same journals folded into SQLite (a project's `Store`) and into
//! PostgreSQL give the same runs, field for field, and the same answers to
//! the same queries: handwritten ones over every kind of name and value, and
//! the hostile ones of the query fuzz corpus (`fuzz/corpus/query`), each as
//! a filter and as a sort key.

use std::path::Path;

use lab_pg::PgIndex;
use lab_store::index::RunIndex;
use lab_store::wire::{RunDetail, RunSummary};
use lab_store::{Detail, Error, Project, Selection, Store};
use serde_json::Value as Json;

use super::journals::{self, Ending, Rng};
use super::{Cluster, connect, new_project};

/// Filters over the names and values the random runs have.
const FILTERS: &[&str] = &[
    "p0 > 1",
    "p0 = 'adam'",
    "p0 ~ 'ad*'",
    "p0 ~ 'AD'",
    "p0 ~ 'Ad?m'",
    "p0 !~ '[a-c]*'",
    "p0 ~ '[^a-c]*'",
    "p0 ~ '*[]]*'",
    "p0 ~ '[z-a]*'",
    "p1 ~ '*.*'",
    "p1 ~ '*(*'",
    "p1 ~ '日*'",
    "p1 ~ 'É'",
    "p1 ~ 'é'",
    "p1 ~ '\\\\'",
    "p0 in (1, 2, 10)",
    "p0 in ('adam', 'sgd', 'Adam')",
    "not p0 in ('adam')",
    "p1 != 'é'",
    "p1 < 'b'",
    "p1 >= 'Z'",
    "p1 > 'a' and p1 < 'b'",
    "p2 = null",
    "p2 != null",
    "p3 = true",
    "p3 = false",
    "p3 = 0.5",
    "p4 > -1e300",
    "p4 < 1e308",
    "p2 in (0, 1, 9e999)",
    "p2 in (-9e999)",
    "m0 > 0",
    "m0 < 0 or m1 > 5",
    "m2 = null",
    "m3 > -1e308",
    "m0 in (1, 0, 10.5)",
    "not m1 in (1)",
    "team = 'vision'",
    "team ~ 'vis'",
    "stage ~ '*a*'",
    "note ~ '[!a]*'",
    "note ~ ''",
    "note ~ '*'",
    "tags.team in ('tabular', 'naïve')",
    "status = finished",
    "status in ('failed', 'crashed', 'damaged')",
    "status != running",
    "experiment ~ 'iris*'",
    "experiment ~ 'IRIS'",
    "experiment = 'é'",
    "experiment > 'a'",
    "experiment ~ 'a[*]b'",
    "experiment ~ 'x''y'",
    "start_time > 1970-01-01T00:00:01",
    "end_time < 2026-01-01",
    "end_time = null",
    "duration > 10",
    "duration < 1",
    "duration >= 0",
    "source ~ 'train1*'",
    "user = 'Bob'",
    "user ~ 'b'",
    "host != 'node-1'",
    "git_commit ~ '*1'",
    "python_version = '3.11.7'",
    "id ~ '0*'",
    "short_id > '5'",
    "p0 = p1",
    "m0 < m1",
    "p0 > m0",
    "p1 = team",
    "experiment = p2",
    "user < host",
    "start_time < end_time",
    "not (p0 > 1 and m0 < 0)",
    "p0 > 1 and (m1 > 2 or team = 'vision')",
    "not not not p3 = null",
];

/// Sort keys over the same.
const SORTS: &[&str] = &[
    "p0",
    "-p0",
    "p1",
    "-p1",
    "p2",
    "m0",
    "-m1",
    "m3",
    "team",
    "-note",
    "experiment",
    "-experiment",
    "status",
    "duration",
    "-duration",
    "start_time",
    "-end_time",
    "user",
    "-host",
    "source",
    "git_commit",
    "python_version",
    "id",
    "-short_id",
];

/// A run as JSON, the same for the same run in any index: a running run's
/// duration (its time so far) left out, and the project's folder, which
/// damage notes name, written `<project>`.
fn json(mut v: Json, root: &Path) -> Json {
    let Json::Object(map) = &mut v else {
        panic!("not an object")
    };
    if map.get("status") == Some(&Json::from("running")) {
        map.remove("duration_s");
    }
    if let Some(Json::String(note)) = map.get_mut("damage") {
        *note = note.replace(&root.display().to_string(), "<project>");
    }
    v
}

/// The ids of the runs `selection` lists, or the query error's text.
fn answer(index: &dyn RunIndex, selection: &Selection) -> Result<Vec<String>, String> {
    match index.select_runs(selection) {
        Ok(runs) => Ok(runs.iter().map(|r| r.id.to_string()).collect()),
        Err(Error::Query(q)) => Err(q.to_string()),
        Err(e) => Err(format!("NOT A QUERY ERROR: {e}")),
    }
}

/// Every run, listed and read one by one, as JSON.
fn runs(index: &dyn RunIndex, root: &Path) -> (Vec<Json>, Vec<Json>) {
    let listing = Selection {
        detail: Detail::Listing,
        ..Selection::default()
    };
    let listed = index.select_runs(&listing).unwrap();
    let details = listed
        .iter()
        .map(|r| {
            json(
                serde_json::to_value(RunDetail::of(
                    index.run_by_prefix(&r.id.to_string()).unwrap(),
                ))
                .unwrap(),
                root,
            )
        })
        .collect();
    let summaries = listed
        .into_iter()
        .map(|r| json(serde_json::to_value(RunSummary::of(r)).unwrap(), root))
        .collect();
    (summaries, details)
}

/// The queries of the fuzz corpus.
fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/query");
    let mut texts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| String::from_utf8(std::fs::read(e.unwrap().path()).unwrap()).ok())
        .collect();
    texts.sort();
    assert!(texts.len() > 100, "the corpus is missing");
    texts
}

/// Checks that `sqlite` and `pg` hold the same runs and answer every query
/// alike; `what` says when, for messages.
pub fn check_same(sqlite: &Store, sqlite_root: &Path, pg: &PgIndex, pg_root: &Path, what: &str) {
    let (s_list, s_detail) = runs(sqlite, sqlite_root);
    let (p_list, p_detail) = runs(pg, pg_root);
    assert!(!s_list.is_empty(), "{what}: no runs");
    assert_eq!(s_list.len(), p_list.len(), "{what}: the number of runs");
    for (s, p) in s_detail.iter().zip(&p_detail) {
        assert_eq!(s, p, "{what}: a run read back");
    }
    for (s, p) in s_list.iter().zip(&p_list) {
        assert_eq!(s, p, "{what}: a run listed");
    }
    let mut selections: Vec<Selection> = Vec::new();
    for filter in FILTERS.iter().map(|f| (*f).to_owned()).chain(corpus()) {
        selections.push(Selection {
            filter: Some(filter),
            ..Selection::default()
        });
    }
    for sort in SORTS.iter().map(|s| (*s).to_owned()).chain(corpus()) {
        selections.push(Selection {
            sort: vec![sort],
            ..Selection::default()
        });
    }
    selections.push(Selection {
        sort: vec!["-m0".into(), "p1".into()],
        limit: Some(5),
        offset: 2,
        ..Selection::default()
    });
    selections.push(Selection {
        experiment: Some("iris".into()),
        statuses: vec![lab_types::Status::Finished, lab_types::Status::Crashed],
        offset: 1,
        ..Selection::default()
    });
    let mut answered = 0;
    for selection in &selections {
        let s = answer(sqlite, selection);
        let p = answer(pg, selection);
        assert_eq!(s, p, "{what}: {selection:?}");
        answered += usize::from(s.is_ok_and(|ids| !ids.is_empty()));
    }
    // Enough of them select something for the comparison to mean much.
    assert!(
        answered > FILTERS.len() / 2,
        "{what}: only {answered} answers had runs"
    );
}

/// Copies the run folders of `from` into `to`.
pub fn copy_runs(from: &Project, to: &Project) {
    for e in std::fs::read_dir(from.runs_dir()).unwrap() {
        let e = e.unwrap();
        let target = to.runs_dir().join(e.file_name());
        std::fs::create_dir_all(&target).unwrap();
        for f in std::fs::read_dir(e.path()).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), target.join(f.file_name())).unwrap();
        }
    }
}

#[test]
fn settled_journals_give_the_same_runs_and_answers_in_sqlite_and_postgresql() {
    let cluster = Cluster::start();
    for seed in [1, 2, 3] {
        let mut rng = Rng::new(seed);
        // Two copies of the same journals, so that each index is the first
        // to fold them (and to cut off their damaged tails).
        let (a_dir, a) = new_project();
        let (b_dir, b) = new_project();
        journals::settled_runs(&a, &mut rng, 40);
        copy_runs(&a, &b);
        let mut store = Store::open(a.clone()).unwrap();
        store.refresh().unwrap();
        let mut pg = connect(&cluster, &format!("seed {seed}"));
        pg.fold(&b).unwrap();
        check_same(
            &store,
            a_dir.path(),
            &pg,
            b_dir.path(),
            &format!("seed {seed}"),
        );
        // Folding again finds nothing new, and changes nothing.
        let generation = pg.generation().unwrap();
        pg.fold(&b).unwrap();
        assert_eq!(pg.generation().unwrap(), generation);
        // Rebuilt from the journals, it is the same again.
        pg.clear().unwrap();
        pg.fold(&b).unwrap();
        store.reindex().unwrap();
        check_same(
            &store,
            a_dir.path(),
            &pg,
            b_dir.path(),
            &format!("seed {seed}, rebuilt"),
        );
    }
}

#[test]
fn live_journals_folded_as_they_grow_give_the_same_runs_in_sqlite_and_postgresql() {
    let cluster = Cluster::start();
    let mut rng = Rng::new(11);
    let (dir, project) = new_project();
    let mut store = Store::open(project.clone()).unwrap();
    let mut pg = connect(&cluster, "live");
    let mut live: Vec<journals::Writing> = (0..12)
        .map(|n| {
            let mut w = journals::start(&project, &mut rng, n);
            let records = rng.below(10);
            w.records(&mut rng, records);
            w
        })
        .collect();
    for round in 0..4 {
        store.refresh().unwrap();
        pg.fold(&project).unwrap();
        check_same(
            &store,
            dir.path(),
            &pg,
            dir.path(),
            &format!("round {round}"),
        );
        let mut still = Vec::new();
        for mut w in live {
            let records = rng.below(20);
            w.records(&mut rng, records);
            let ending = match rng.below(4) {
                0 => Ending::Closed,
                1 if round > 0 => Ending::Died,
                _ => Ending::Live,
            };
            still.extend(w.finish_or_keep(&mut rng, ending));
        }
        live = still;
    }
    for w in live {
        let _ = w.finish(&mut rng, Ending::Closed);
    }
    store.refresh().unwrap();
    pg.fold(&project).unwrap();
    check_same(&store, dir.path(), &pg, dir.path(), "all ended");
}

#[test]
fn queries_at_the_limits_answer_alike_in_sqlite_and_postgresql() {
    let cluster = Cluster::start();
    let mut rng = Rng::new(41);
    let (_dir, project) = new_project();
    journals::runs(&project, &mut rng, 30, false);
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    let mut pg = connect(&cluster, "limits");
    pg.fold(&project).unwrap();
    let numbers: Vec<String> = (0..100_000).map(|i| (i - 50).to_string()).collect();
    let strings: Vec<String> = (0..100_000).map(|i| format!("'s{i}'")).collect();
    let filters = [
        format!("{}p0 > 1{}", "(".repeat(99), ")".repeat(99)),
        format!("{}p0 > 1{}", "(".repeat(101), ")".repeat(101)),
        format!("{}p0 > 1", "not ".repeat(99)),
        vec!["m0 > 1"; 1000].join(" or "),
        vec!["m0 > 1"; 1001].join(" or "),
        vec!["not p1 = 'adam'"; 1000].join(" and "),
        format!("p0 in ({})", numbers.join(", ")),
        format!("p1 in ('adam', {})", strings.join(", ")),
        format!("not p1 in ({}, 'sgd')", strings.join(", ")),
        format!("p1 ~ '{}'", "*a".repeat(500)),
        format!("p1 ~ '{}'", "*a".repeat(501)),
        format!("p1 ~ '{}*'", "[a-z]".repeat(190)),
    ];
    for filter in &filters {
        let selection = Selection {
            filter: Some(filter.clone()),
            ..Selection::default()
        };
        let s = answer(&store, &selection);
        let p = answer(&pg, &selection);
        assert_eq!(s, p, "{}...", &filter[..filter.len().min(80)]);
    }
    let sorts: Vec<String> = (0..101).map(|i| format!("p{}", i % 5)).collect();
    for n in [100, 101] {
        let selection = Selection {
            sort: sorts[..n].to_vec(),
            ..Selection::default()
        };
        assert_eq!(
            answer(&store, &selection),
            answer(&pg, &selection),
            "{n} sort keys"
        );
    }
}

/// A random query over the names and values the random runs have.
fn random_filter(rng: &mut Rng, depth: u32) -> String {
    const NAMES: &[&str] = &[
        "p0",
        "p1",
        "p2",
        "p3",
        "p4",
        "m0",
        "m1",
        "m2",
        "m3",
        "team",
        "stage",
        "note",
        "experiment",
        "status",
        "user",
        "host",
        "source",
        "duration",
        "start_time",
        "end_time",
        "id",
        "params.p1",
        "metrics.m0",
        "tags.team",
    ];
    const OPS: &[&str] = &["=", "!=", "<", "<=", ">", ">=", "~", "!~"];
    let literal = |rng: &mut Rng| -> String {
        match rng.below(7) {
            0 => (*rng.pick(&["0", "1", "-1", "0.5", "10", "1e300", "-1e-300", "9.5"])).to_owned(),
            1 => (*rng.pick(&["true", "false", "null"])).to_owned(),
            2 => (*rng.pick(&["1970-01-01", "1970-01-01T00:00:01", "2030-01-01"])).to_owned(),
            3 => format!("'{}*'", rng.pick(&["a", "I", "", "[a-c]", "?", "é"])),
            _ => format!("'{}'", rng.pick(journals::TEXTS).replace('\'', "''")),
        }
    };
    if depth > 2 || rng.chance(40) {
        let name = *rng.pick(NAMES);
        return match rng.below(5) {
            0 => format!("{name} {} {}", rng.pick(OPS), rng.pick(NAMES)),
            1 => {
                let values: Vec<String> = (0..=rng.below(3)).map(|_| literal(rng)).collect();
                let not = if rng.chance(30) { "not " } else { "" };
                format!("{name} {not}in ({})", values.join(", "))
            }
            _ => format!("{name} {} {}", rng.pick(OPS), literal(rng)),
        };
    }
    match rng.below(3) {
        0 => format!("not ({})", random_filter(rng, depth + 1)),
        1 => format!(
            "({}) and ({})",
            random_filter(rng, depth + 1),
            random_filter(rng, depth + 1)
        ),
        _ => format!(
            "({}) or ({})",
            random_filter(rng, depth + 1),
            random_filter(rng, depth + 1)
        ),
    }
}

#[test]
fn random_queries_answer_alike_in_sqlite_and_postgresql() {
    let cluster = Cluster::start();
    let mut rng = Rng::new(51);
    let (_dir, project) = new_project();
    journals::settled_runs(&project, &mut rng, 40);
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    let mut pg = connect(&cluster, "random");
    pg.fold(&project).unwrap();
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..3000 {
        let filter = random_filter(&mut rng, 0);
        let selection = Selection {
            filter: Some(filter.clone()),
            sort: vec![(*rng.pick(SORTS)).to_owned()],
            ..Selection::default()
        };
        let s = answer(&store, &selection);
        let p = answer(&pg, &selection);
        assert_eq!(s, p, "{filter}");
        match s {
            Ok(ids) if !ids.is_empty() => answered += 1,
            Ok(_) => {}
            Err(_) => refused += 1,
        }
    }
    // The queries mean something: many select runs, and many are refused.
    assert!(
        answered > 300 && refused > 100,
        "{answered} answered, {refused} refused"
    );
}
