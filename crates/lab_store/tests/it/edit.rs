//! Editing runs: names, tags, notes in a meta journal of each run's own.

use lab_store::{Edit, Error};
use lab_types::fields::attr;
use lab_types::{Status, Value, now_nanos};

use super::{begin, new_project, open};

fn named(name: &str) -> Edit {
    Edit {
        name: Some(name.into()),
        ..Edit::default()
    }
}

#[test]
fn a_running_run_is_edited_without_touching_its_journal() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "exp", now_nanos());
    w.tag("stage", "draft");
    let short = w.short();
    let mut store = open(&project);
    store.refresh().unwrap();
    let generated = store.run(&short).unwrap().name();
    assert_eq!(
        Some(generated.clone()),
        lab_types::names::generated_name(&short)
    );
    let journal = std::fs::read(&w.paths.journal).unwrap();
    let run = store
        .edit(
            &short,
            &Edit {
                name: Some("baseline".into()),
                tags: vec![("owner".into(), "ana".into())],
                untag: vec!["stage".into()],
                note: Some("# Why\n\nthe first try".into()),
                group: None,
            },
        )
        .unwrap();
    assert_eq!(run.status, Status::Running);
    assert_eq!(run.name(), "baseline");
    assert_eq!(run.tags, vec![("owner".to_owned(), "ana".to_owned())]);
    assert_eq!(run.note(), "# Why\n\nthe first try");
    assert_eq!(std::fs::read(&w.paths.journal).unwrap(), journal);
    // The run goes on, and ends: the edits stay, and keep the last word
    // over the tags the run sets again (a tag removed stays removed).
    w.tag("stage", "final");
    w.tag("owner", "bob");
    w.end(now_nanos(), Status::Finished, None);
    w.close();
    store.refresh().unwrap();
    let run = store.run("baseline").unwrap();
    assert_eq!(run.status, Status::Finished);
    assert_eq!(run.attr_str(attr::NAME), Some("baseline"));
    assert_eq!(run.tags, vec![("owner".to_owned(), "ana".to_owned())]);
    // A rebuilt index holds the same.
    store.reindex().unwrap();
    let again = store.run("baseline").unwrap();
    assert_eq!(again.tags, run.tags);
    assert_eq!(again.note(), run.note());
    // The listing has the name too, and the name resolves.
    let listed = store.runs(None).unwrap();
    assert_eq!(listed[0].name(), "baseline");
    assert_eq!(store.resolve("baseline").unwrap(), run.id.to_string());
}

#[test]
fn another_process_sees_an_edit_at_its_next_refresh() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "exp", now_nanos());
    w.end(now_nanos(), Status::Crashed, None);
    let short = w.short();
    w.close();
    let mut watcher = open(&project);
    watcher.refresh().unwrap();
    let before = watcher.generation().unwrap();
    let mut editor = open(&project);
    editor.refresh().unwrap();
    editor.edit(&short, &named("crashed-one")).unwrap();
    // Every run is complete and the runs folder did not change: only the
    // edit stamp tells the watcher to look.
    watcher.refresh().unwrap();
    assert!(watcher.generation().unwrap() > before);
    assert_eq!(watcher.run(&short).unwrap().name(), "crashed-one");
    let states = watcher.run_states().unwrap();
    assert!(states[0].3 > 0, "the meta journal's length is indexed");
}

#[test]
fn an_edit_folded_by_nobody_is_found_by_the_next_refresh() {
    // An editor killed between its append and its fold: the stamp moved,
    // the record is in the meta journal, the index does not have it yet.
    let (_dir, project) = new_project();
    let mut w = begin(&project, "exp", now_nanos());
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    let meta = w.paths.meta.clone();
    w.close();
    let mut store = open(&project);
    store.refresh().unwrap();
    std::fs::write(project.edits_stamp(), b"").unwrap();
    lab_journal::append_edits(
        &meta,
        &[lab_types::Record::Rename {
            time_nanos: now_nanos(),
            name: "late".into(),
        }],
    )
    .unwrap();
    store.refresh().unwrap();
    assert_eq!(store.run(&short).unwrap().name(), "late");
}

#[test]
fn bad_edits_name_the_field_and_change_nothing() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "exp", now_nanos());
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    let meta = w.paths.meta.clone();
    w.close();
    let mut store = open(&project);
    store.refresh().unwrap();
    let long = "x".repeat(201);
    let cases: Vec<(Edit, &str, &str)> = vec![
        (named(""), "name", "non-empty"),
        (named("  "), "name", "non-empty"),
        (named(&long), "name", "at most 200 characters"),
        (named("a\nb"), "name", "control characters"),
        (
            Edit {
                name: Some("fine".into()),
                tags: vec![(String::new(), "v".into())],
                ..Edit::default()
            },
            "tags",
            "non-empty tag key",
        ),
        (
            Edit {
                untag: vec!["k\0".into()],
                ..Edit::default()
            },
            "untag",
            "control characters",
        ),
        (
            Edit {
                note: Some("n".repeat(lab_store::MAX_NOTE_BYTES + 1)),
                ..Edit::default()
            },
            "note",
            "at most 1048576 bytes",
        ),
    ];
    for (edit, field, expected) in cases {
        match store.edit(&short, &edit) {
            Err(e @ Error::BadEdit { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(&format!("`{field}` must be")), "{text}");
                assert!(text.contains(expected), "{text}");
                assert_eq!(e.kind(), lab_store::ErrorKind::InvalidInput);
            }
            other => panic!("{edit:?}: expected BadEdit, got {other:?}"),
        }
    }
    assert!(!meta.exists(), "no edit was written");
    let run = store.run(&short).unwrap();
    assert_eq!(Some(run.name()), lab_types::names::generated_name(&short));
}

#[test]
fn a_name_given_twice_is_ambiguous_and_an_id_prefix_wins_over_a_name() {
    let (_dir, project) = new_project();
    let t = now_nanos();
    let mut shorts = Vec::new();
    for i in 0..3 {
        let mut w = begin(&project, "exp", t + i);
        w.end(t + i, Status::Finished, None);
        shorts.push(w.short());
        w.close();
    }
    let mut store = open(&project);
    store.refresh().unwrap();
    store.edit(&shorts[0], &named("twin")).unwrap();
    store.edit(&shorts[1], &named("twin")).unwrap();
    match store.run("twin") {
        Err(e @ Error::AmbiguousRunName { .. }) => {
            let text = e.to_string();
            assert!(text.contains("`twin` is ambiguous"), "{text}");
            for s in &shorts[..2] {
                assert!(text.contains(s.as_str()), "{text}");
            }
        }
        other => panic!("expected AmbiguousRunName, got {:?}", other.map(|r| r.id)),
    }
    // A name that is also an id prefix: the id wins.
    store.edit(&shorts[2], &named(&shorts[0])).unwrap();
    assert_eq!(
        store.run(&shorts[0]).unwrap().short_id,
        shorts[0],
        "an id prefix is read as one first"
    );
    match store.run("nobody") {
        Err(e @ Error::UnknownRunName { .. }) => {
            assert!(e.to_string().contains("no run is named `nobody`"), "{e}");
        }
        other => panic!("expected UnknownRunName, got {:?}", other.map(|r| r.id)),
    }
}

#[test]
fn a_group_is_set_and_taken_away() {
    let (_dir, project) = new_project();
    let mut w = begin(&project, "exp", now_nanos());
    w.end(now_nanos(), Status::Finished, None);
    let short = w.short();
    w.close();
    let mut store = open(&project);
    store.refresh().unwrap();
    let group = |g: Option<&str>| Edit {
        group: Some(g.map(str::to_owned)),
        ..Edit::default()
    };
    let run = store.edit(&short, &group(Some("lr-sweep"))).unwrap();
    assert_eq!(run.attr_str(attr::GROUP), Some("lr-sweep"));
    let run = store.edit(&short, &group(None)).unwrap();
    assert_eq!(run.attr(attr::GROUP), Some(&Value::Null));
}
