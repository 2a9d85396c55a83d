//! Each committed change of a project's runs is announced on
//! [`lab_pg::CHANNEL`], whoever makes it; a rolled-back one is not, and no
//! project name can make the announcement (or the change) fail.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use serde_json::Value as J;

use crate::journals::{Rng, runs};
use crate::{Cluster, connect, new_project};

/// The notifications `listener` has received within `wait`, as JSON.
fn heard(listener: &mut postgres::Client, wait: Duration) -> Vec<J> {
    let mut out = Vec::new();
    let mut n = listener.notifications();
    let mut it = n.timeout_iter(wait);
    while let Some(note) = it.next().unwrap() {
        assert_eq!(note.channel(), lab_pg::CHANNEL);
        out.push(serde_json::from_str(note.payload()).unwrap());
    }
    out
}

#[test]
fn a_committed_change_is_announced_with_its_project_and_generation() {
    let cluster = Cluster::start();
    let mut index = connect(&cluster, "vision");
    let mut listener = postgres::Client::connect(&cluster.lab(), postgres::NoTls).unwrap();
    listener
        .batch_execute(&format!("LISTEN {}", lab_pg::CHANNEL))
        .unwrap();
    // A fold.
    let (_dir, project) = new_project();
    runs(&project, &mut Rng::new(7), 3, false);
    index.fold(&project).unwrap();
    let notes = heard(&mut listener, Duration::from_secs(2));
    assert!(!notes.is_empty());
    assert!(notes.iter().all(|n| n["project"] == "vision"), "{notes:?}");
    let last = notes.last().unwrap()["generation"].as_i64().unwrap();
    assert_eq!(last, index.generation().unwrap());
    // A change rolled back says nothing.
    let mut c = postgres::Client::connect(&cluster.lab(), postgres::NoTls).unwrap();
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "UPDATE lab.projects SET generation = generation + 1 WHERE name = 'vision'",
        &[],
    )
    .unwrap();
    tx.rollback().unwrap();
    assert_eq!(
        heard(&mut listener, Duration::from_millis(500)),
        Vec::<J>::new()
    );
    // A name whose payload would not fit a notification: the change is
    // made and announced without it.
    let long = "\u{1}".repeat(2000);
    let other = connect(&cluster, &long);
    c.execute(
        "UPDATE lab.projects SET generation = generation + 1 WHERE name = $1",
        &[&long],
    )
    .unwrap();
    let notes = heard(&mut listener, Duration::from_secs(2));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["project"], J::Null);
    assert_eq!(
        notes[0]["generation"].as_i64(),
        Some(other.generation().unwrap())
    );
}
