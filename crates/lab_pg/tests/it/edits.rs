//! A run's edits (its `meta.lab`), received by a team's server and folded
//! into PostgreSQL in any order with its journal, give the same runs and
//! the same answers as the project's SQLite index, which folds the file
//! after the journal.

use lab_journal::Mode;
use lab_store::index::{
    FoldIndex as _, RunIndex, check_received, check_received_meta, fold_received,
    fold_received_meta,
};
use lab_store::wire::RunDetail;
use lab_store::{Edit, Error, RunInfo, Selection, Store};
use lab_types::RunId;
use serde_json::Value as Json;

use super::journals::{self, Rng, TEXTS};
use super::{Cluster, connect, new_project};

/// A random edit: a new name, tags set and removed (among the ones the
/// runs log themselves), a note, a group.
fn random_edit(rng: &mut Rng, n: usize) -> Edit {
    let keys = ["team", "stage", "owner"];
    let mut edit = Edit::default();
    if rng.chance(60) {
        edit.name = Some(format!("edited-{n}"));
    }
    for key in keys {
        match rng.below(4) {
            0 => edit.tags.push((key.into(), (*rng.pick(TEXTS)).to_owned())),
            1 => edit.untag.push(key.into()),
            _ => {}
        }
    }
    if rng.chance(40) {
        edit.note = Some(format!("why {n}: {}", rng.pick(TEXTS)));
    }
    if rng.chance(30) {
        edit.group = Some(rng.chance(70).then(|| format!("group-{}", rng.below(3))));
    }
    if edit.is_empty() {
        edit.name = Some(format!("renamed-{n}"));
    }
    edit
}

/// The frames' offsets of the journal `bytes` (its written part).
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    lab_journal::scan_from_as(&bytes[16..], 16, Mode::Settled, |at, _| {
        starts.push(usize::try_from(at).unwrap());
    })
    .unwrap();
    starts
}

/// What edits set of a run read back, as JSON: its name, tags, note,
/// group and attributes.
fn detail(index: &dyn RunIndex, id: &str) -> Json {
    let v = serde_json::to_value(RunDetail::of(index.run_by_prefix(id).unwrap())).unwrap();
    ["name", "tags", "note", "group", "attrs"]
        .into_iter()
        .map(|k| (k.to_owned(), v[k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The ids of the runs `selection` lists, or the query error's text.
fn answer(index: &dyn RunIndex, selection: &Selection) -> Result<Vec<String>, String> {
    match index.select_runs(selection) {
        Ok(runs) => Ok(runs.iter().map(|r| r.id.to_string()).collect()),
        Err(Error::Query(q)) => Err(q.to_string()),
        Err(e) => Err(format!("NOT A QUERY ERROR: {e}")),
    }
}

#[test]
fn edits_received_in_any_order_give_the_same_runs_as_the_local_index() {
    let cluster = Cluster::start();
    let mut rng = Rng::new(61);
    let (_dir, project) = new_project();
    journals::runs(&project, &mut rng, 30, false);
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    let runs = store.runs(None).unwrap();
    let mut edited = 0;
    for (n, run) in runs.iter().enumerate() {
        // Most runs edited, some twice (two appends, sent apart).
        for _ in 0..rng.below(3) {
            store
                .edit(&run.id.to_string(), &random_edit(&mut rng, n))
                .unwrap();
            edited += 1;
        }
    }
    assert!(edited > 20, "{edited} edits");
    store.refresh().unwrap();

    let mut pg = connect(&cluster, "received edits");
    for (n, run) in runs.iter().enumerate() {
        let id: RunId = run.id;
        let paths = project.run_paths(&run.short_id);
        let file = std::fs::read(&paths.journal).unwrap();
        // Its written part: a writer that died leaves reserved zeros.
        let end = lab_journal::read_journal_as(&paths.journal, 0, Mode::Settled, |_, _| {})
            .unwrap()
            .end;
        let journal = &file[..usize::try_from(end).unwrap()];
        assert_eq!(check_received(&id, 0, journal), Ok(end));
        let meta = std::fs::read(&paths.meta).unwrap_or_default();
        assert_eq!(check_received_meta(0, &meta), Ok(meta.len() as u64));
        let starts = frame_starts(journal);
        // The Start record alone, then the edits, then the rest of the
        // journal (which may set tags, a name, a note the edits also set);
        // or the journal whole, then the edits; or the edits in two.
        let cut = match n % 3 {
            0 => starts.get(1).copied().unwrap_or(journal.len()),
            1 => journal.len(),
            _ => starts
                .get(starts.len() / 2)
                .copied()
                .filter(|s| *s > 16)
                .unwrap_or(journal.len()),
        };
        let mut held = Vec::new();
        let fold_meta = |pg: &mut lab_pg::PgIndex, upto: usize, held: &mut Vec<u8>| {
            held.extend_from_slice(&meta[held.len()..upto]);
            if !held.is_empty() {
                fold_received_meta(pg, &id, held).unwrap();
            }
        };
        fold_received(pg_ref(&mut pg), &id, 0, &journal[..cut], false, &mut |_| {
            unreachable!("no edits are held before the journal")
        })
        .unwrap();
        let half = check_received_meta(0, &meta[..meta.len() / 2]).unwrap();
        fold_meta(&mut pg, usize::try_from(half).unwrap(), &mut held);
        if n % 3 == 2 {
            // Part of the journal between the two parts of the edits.
            let at = cut + (journal.len() - cut) / 2;
            let at = starts
                .iter()
                .copied()
                .find(|s| *s >= at)
                .unwrap_or(journal.len());
            let held_now = held.clone();
            fold_received(
                pg_ref(&mut pg),
                &id,
                cut as u64,
                &journal[cut..at],
                false,
                &mut |len| Ok(held_now[..usize::try_from(len).unwrap()].to_vec()),
            )
            .unwrap();
            fold_meta(&mut pg, meta.len(), &mut held);
            let held_now = held.clone();
            fold_received(
                pg_ref(&mut pg),
                &id,
                at as u64,
                &journal[at..],
                false,
                &mut |len| Ok(held_now[..usize::try_from(len).unwrap()].to_vec()),
            )
            .unwrap();
        } else {
            fold_meta(&mut pg, meta.len(), &mut held);
            let held_now = held.clone();
            fold_received(
                pg_ref(&mut pg),
                &id,
                cut as u64,
                &journal[cut..],
                false,
                &mut |len| Ok(held_now[..usize::try_from(len).unwrap()].to_vec()),
            )
            .unwrap();
        }
        let indexed = pg.indexed_id(&id.to_string()).unwrap().unwrap();
        assert_eq!(indexed.meta_len, meta.len() as u64, "run {n}");
        assert_eq!(indexed.offset, end, "run {n}");
    }
    for run in &runs {
        let id = run.id.to_string();
        assert_eq!(detail(&store, &id), detail(&pg, &id), "run {id}");
    }
    for filter in [
        "owner = 'ana'",
        "team ~ 'a'",
        "stage != null",
        "owner != null",
        "note ~ 'why'",
        "name ~ 'edited*'",
        "group ~ 'group-1'",
    ] {
        let selection = Selection {
            filter: Some(filter.into()),
            ..Selection::default()
        };
        assert_eq!(
            answer(&store, &selection),
            answer(&pg, &selection),
            "{filter}"
        );
    }
    for sort in ["name", "-name", "team", "owner"] {
        let selection = Selection {
            sort: vec![sort.into()],
            ..Selection::default()
        };
        assert_eq!(
            answer(&store, &selection),
            answer(&pg, &selection),
            "{sort}"
        );
    }
    // A run is found by its name (given, edited or generated) as by its id,
    // with the same answer for a name several runs have or none has.
    let mut names: Vec<String> = store
        .runs(None)
        .unwrap()
        .iter()
        .map(RunInfo::name)
        .collect();
    names.extend(["no-such-run".to_owned(), "0e".to_owned()]);
    for name in &names {
        let local = store.run(name).map(|r| r.id).map_err(|e| e.to_string());
        let team = pg.run(name).map(|r| r.id).map_err(|e| e.to_string());
        assert_eq!(local, team, "{name}");
    }
}

/// `pg` as the fold's index.
fn pg_ref(pg: &mut lab_pg::PgIndex) -> &mut dyn lab_store::index::FoldIndex {
    pg
}
