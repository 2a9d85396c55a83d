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

/// Every page of `whole` by keyset paging, `limit` runs at a time.
fn keyset_pages(store: &Store, whole: &Selection, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .page(&Selection {
                limit: Some(limit),
                after: after.clone(),
                ..whole.clone()
            })
            .unwrap();
        pages.push(page.runs.iter().map(|r| r.id.to_string()).collect());
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
        assert!(pages.len() <= 100, "keyset paging never ends");
    }
}

#[test]
fn keyset_pages_cover_the_whole_listing_once_across_ties() {
    let (_dir, store) = tied_runs();
    let sorts: [&[&str]; 7] = [
        &[],
        &["loss"],
        &["-loss"],
        &["-lr"],
        &["-loss", "lr"],
        &["params.lr", "-metrics.loss"],
        &["experiment", "-start_time"],
    ];
    for sort in sorts {
        for filter in [None, Some("depth >= 5"), Some("depth > 100")] {
            let whole = Selection {
                filter: filter.map(str::to_owned),
                sort: sort.iter().map(|s| (*s).to_owned()).collect(),
                ..Selection::default()
            };
            let all = ids(&store, &whole);
            for limit in [1, 3, 7, 50] {
                let pages = keyset_pages(&store, &whole, limit);
                assert!(pages.iter().all(|p| p.len() <= limit));
                assert_eq!(
                    pages.concat(),
                    all,
                    "sort {sort:?}, filter {filter:?}, limit {limit}"
                );
            }
        }
    }
}

#[test]
fn a_keyset_page_continues_after_its_cursor_when_runs_come_and_go() {
    let (_dir, mut store) = tied_runs();
    let whole = Selection {
        sort: vec!["-loss".into()],
        ..Selection::default()
    };
    let before = ids(&store, &whole);
    let first = store
        .page(&Selection {
            limit: Some(10),
            ..whole.clone()
        })
        .unwrap();
    assert_eq!(first.runs.len(), 10);
    // A run that sorts first, one that sorts last, and one of the next page
    // removed.
    let project = store.project().clone();
    for loss in [100.0, -100.0] {
        let mut w = super::begin(&project, "a", now_nanos());
        w.key(0, "loss");
        w.metric(0, 0, loss);
        super::close_run(w);
    }
    store.refresh().unwrap();
    let gone = store.run(&before[12]).unwrap();
    store.delete_run(&gone).unwrap();
    store.refresh().unwrap();
    let after = ids(&store, &whole);
    let second = store
        .page(&Selection {
            limit: Some(10),
            after: first.next.clone(),
            ..whole.clone()
        })
        .unwrap();
    let second: Vec<String> = second.runs.iter().map(|r| r.id.to_string()).collect();
    let place = after.iter().position(|id| *id == before[9]).unwrap();
    assert_eq!(second, after[place + 1..place + 11].to_vec());
    assert!(!second.contains(&before[12]));
    assert_eq!(
        second[0], before[10],
        "the next page starts where the first ended"
    );
}

#[test]
fn a_cursor_from_another_sort_or_made_up_is_refused() {
    let (_dir, store) = tied_runs();
    let by_loss = Selection {
        sort: vec!["-loss".into()],
        limit: Some(5),
        ..Selection::default()
    };
    let next = store.page(&by_loss).unwrap().next.unwrap();
    let by_name = Selection {
        sort: vec!["name".into()],
        after: Some(next),
        ..by_loss.clone()
    };
    let e = store.page(&by_name).unwrap_err();
    assert_eq!(e.kind(), lab_store::ErrorKind::InvalidInput);
    assert!(
        e.to_string()
            .contains("it was made for the sort `-loss`, not `name`"),
        "{e}"
    );
    for made_up in ["nonsense", "00", &"ab".repeat(lab_store::MAX_CURSOR_CHARS)] {
        let e = store
            .page(&Selection {
                after: Some(made_up.to_owned()),
                ..by_loss.clone()
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`after` must be the `next` cursor"),
            "{e}"
        );
        assert!(e.to_string().len() < 400, "{e}");
    }
}

#[test]
fn a_page_with_a_bad_filter_and_a_bad_sort_key_reports_the_filter_as_the_whole_listing_does() {
    let (_dir, store) = tied_runs();
    let bad = Selection {
        filter: Some("loss >".into()),
        sort: vec!["-loss)".into()],
        ..Selection::default()
    };
    let whole = store.select(&bad).unwrap_err().to_string();
    let page = store
        .select(&Selection {
            limit: Some(5),
            ..bad.clone()
        })
        .unwrap_err()
        .to_string();
    assert_eq!(page, whole);
    assert!(!page.contains("sort key"), "{page}");
}
