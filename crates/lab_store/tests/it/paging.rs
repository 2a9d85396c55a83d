//! Pages of sorted listings: every page is the slice of the whole sorted
//! listing it names, whatever the index does to find it faster.

use super::{begin, close_run, new_project, open};
use lab_store::{Detail, Selection, Store};
use lab_types::{Value, now_nanos};

/// Forty runs whose `loss` and `lr` tie often, are missing or NaN in some
/// runs, and are text in a few (`lr`); some runs start at the same instant,
/// so only their ids order them.
fn tied_runs() -> (tempfile::TempDir, Store) {
    let (dir, project) = new_project();
    let t0 = now_nanos();
    for i in 0..40_i64 {
        let mut w = begin(&project, if i % 3 == 0 { "a" } else { "b" }, t0 + i / 4);
        w.param("depth", Value::Int(i));
        match i % 7 {
            0 => {}
            1 => w.param("lr", Value::Str(format!("t{}", i % 2))),
            _ => w.param(
                "lr",
                Value::Float(f64::from(u8::try_from(i % 5).unwrap()) / 10.0),
            ),
        }
        if i % 6 != 0 {
            w.key(0, "loss");
            let loss = if i % 11 == 0 {
                f64::NAN
            } else {
                f64::from(u8::try_from(i % 4).unwrap())
            };
            w.metric(0, 0, loss);
        }
        close_run(w);
    }
    let mut store = open(&project);
    store.refresh().unwrap();
    (dir, store)
}

fn ids(store: &Store, selection: &Selection) -> Vec<String> {
    store
        .select(selection)
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect()
}

#[test]
fn every_page_of_a_sorted_listing_is_a_slice_of_the_whole_listing() {
    let (_dir, store) = tied_runs();
    let sorts: [&[&str]; 6] = [
        &["loss"],
        &["-loss"],
        &["lr"],
        &["-lr"],
        &["-loss", "lr"],
        &["params.lr", "-metrics.loss"],
    ];
    for sort in sorts {
        for filter in [
            None,
            Some("depth >= 5"),
            Some("experiment = 'a'"),
            Some("depth > 100"),
        ] {
            let whole = Selection {
                filter: filter.map(str::to_owned),
                sort: sort.iter().map(|s| (*s).to_owned()).collect(),
                detail: Detail::Listing,
                ..Selection::default()
            };
            let all = ids(&store, &whole);
            for limit in [1, 3, 7, 50] {
                for offset in 0..=all.len() + 1 {
                    let page = Selection {
                        limit: Some(limit),
                        offset,
                        ..whole.clone()
                    };
                    let want: Vec<String> = all.iter().skip(offset).take(limit).cloned().collect();
                    assert_eq!(
                        ids(&store, &page),
                        want,
                        "sort {sort:?}, filter {filter:?}, offset {offset}, limit {limit}"
                    );
                }
            }
        }
    }
}
