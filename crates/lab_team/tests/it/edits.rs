//! A run's edits (its meta journal, `meta.lab`) sent to the server: kept
//! byte for byte under the same rules as its journal, folded after it as
//! the local index folds them, kept by a journal stretch that arrives after
//! them, by `lab server reindex` and by a pushed project, and announced to
//! the web page.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use lab_store::wire::RunSummary;
use lab_store::{Edit, Project, Selection, Store};
use lab_team::Role;
use serde_json::Value as J;

use crate::{Server, http, journal_bytes, local_project, send_journal};

const P: &str = "iris-project";

fn put_meta(s: &Server, token: &str, run: &str, offset: &str, bytes: &[u8]) -> crate::Response {
    http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{run}/meta?offset={offset}"),
        Some(token),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .unwrap()
}

fn get(s: &Server, token: &str, path: &str) -> crate::Response {
    http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}{path}"),
        Some(token),
        &[],
        b"",
    )
    .unwrap()
}

/// The answer's `length`, once it is a 200.
fn length(r: &crate::Response) -> usize {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["length"].as_u64().unwrap() as usize
}

/// The edit every test makes: a new name, a tag set, the run's own tag
/// removed, a note.
fn the_edit() -> Edit {
    Edit {
        name: Some("baseline".into()),
        tags: vec![("owner".into(), "ana".into())],
        untag: vec!["team".into()],
        note: Some("# Why\n\nthe first try".into()),
        group: None,
    }
}

/// Edits run `short` of `project` locally; returns its `meta.lab` bytes.
fn edit(project: &Project, short: &str, edit: &Edit) -> Vec<u8> {
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    store.edit(short, edit).unwrap();
    std::fs::read(project.run_paths(short).meta).unwrap()
}

/// Checks that the server lists the runs of `project` as the local index
/// does, field for field (the name, tags and note an edit set among them),
/// and shows each run's detail with the same name, tags and note.
fn listed_as_locally(s: &Server, token: &str, project: &Project) {
    let mut store = Store::open(project.clone()).unwrap();
    store.refresh().unwrap();
    let listed = get(s, token, "/runs");
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    for run in store.select(&Selection::default()).unwrap() {
        let summary = RunSummary::of(run.clone());
        let want = serde_json::to_value(summary.without_listing_extras()).unwrap();
        let got = listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == want["id"])
            .unwrap_or_else(|| panic!("run {} is not listed", want["id"]));
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&got[key], value, "`{key}` of run {}", want["id"]);
        }
        let detail = get(s, token, &format!("/runs/{}", run.id));
        assert_eq!(detail.status, 200);
        let detail = detail.json();
        let local = lab_store::wire::RunDetail::of(store.run(&run.id.to_string()).unwrap());
        let local = serde_json::to_value(local).unwrap();
        for key in ["name", "tags", "note"] {
            assert_eq!(detail[key], local[key], "`{key}` of run {}", run.id);
        }
    }
}

#[test]
fn edits_sent_as_a_meta_journal_are_kept_whole_and_shown_as_locally() {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let id = runs[0].id().to_string();
    let short = &id[..8];
    let meta = edit(&project, short, &the_edit());
    // A second edit, so that the meta journal has frames to send apart.
    let meta_more = edit(
        &project,
        short,
        &Edit {
            tags: vec![("stage".into(), "final".into())],
            ..Edit::default()
        },
    );
    assert!(meta_more.starts_with(&meta) && meta_more.len() > meta.len());
    let meta = meta_more;

    // Before the run's journal: nothing to apply the edits to.
    let early = put_meta(&s, &token, &id, "0", &meta);
    assert_eq!((early.status, early.code()), (409, "no_run".to_owned()));
    assert_eq!(early.json()["length"].as_u64(), Some(0));
    // Nor was the project made for it.
    let projects = http(s.addr, "GET", "/api/v1/projects", Some(&token), &[], b"").unwrap();
    assert!(
        !String::from_utf8_lossy(&projects.body).contains(P),
        "{}",
        String::from_utf8_lossy(&projects.body)
    );
    for run in &runs {
        let bytes = journal_bytes(&project, run);
        send_journal(s.addr, &token, P, &run.id().to_string(), &bytes, 4096);
    }
    assert_eq!(
        length(&get(&s, &token, &format!("/runs/{id}/meta/length"))),
        0
    );
    let none = get(&s, &token, &format!("/runs/{id}/meta"));
    assert_eq!((none.status, none.code()), (404, "not_found".to_owned()));

    // The header and part of the first frame: only the header is kept.
    let held = length(&put_meta(&s, &token, &id, "0", &meta[..30]));
    assert_eq!(held, 16);
    // The same bytes again: a retry.
    assert_eq!(length(&put_meta(&s, &token, &id, "0", &meta[..30])), held);
    // Whole frames up to part of the last.
    let held = length(&put_meta(&s, &token, &id, "0", &meta[..meta.len() - 5]));
    assert!(held > 16 && held < meta.len() - 5, "{held}");
    // From past the end: a gap, and where to resume.
    let gap = put_meta(&s, &token, &id, &(held + 1).to_string(), &meta[held + 1..]);
    assert_eq!((gap.status, gap.code()), (409, "gap".to_owned()));
    assert_eq!(gap.json()["length"].as_u64(), Some(held as u64));
    // A byte that differs from one the server holds: nothing kept.
    let mut changed = meta.clone();
    changed[held - 2] ^= 0x20;
    let conflict = put_meta(&s, &token, &id, "0", &changed);
    assert_eq!(
        (conflict.status, conflict.code()),
        (409, "conflict".to_owned())
    );
    assert_eq!(conflict.json()["length"].as_u64(), Some(held as u64));
    assert!(
        conflict.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("meta journal")
    );
    // A frame whose CRC does not match its bytes.
    let mut bad = meta[held..].to_vec();
    bad[5] ^= 0xff;
    let refused = put_meta(&s, &token, &id, &held.to_string(), &bad);
    assert_eq!(
        (refused.status, refused.code()),
        (400, "bad_frame".to_owned())
    );
    assert_eq!(refused.json()["length"].as_u64(), Some(held as u64));
    // A good frame that is no edit: the journal's own frames are not taken.
    let journal = journal_bytes(&project, &runs[0]);
    let other = put_meta(&s, &token, &id, &held.to_string(), &journal[16..200]);
    assert_eq!((other.status, other.code()), (400, "bad_frame".to_owned()));
    assert!(
        other.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only edits"),
        "{}",
        String::from_utf8_lossy(&other.body)
    );
    // Before any of that changed the run: the listing shows the edits held.
    let shown = get(&s, &token, &format!("/runs/{id}")).json();
    assert_eq!(shown["name"], J::from("baseline"));
    // The rest, overlapping what is held.
    assert_eq!(
        length(&put_meta(
            &s,
            &token,
            &id,
            &(held - 3).to_string(),
            &meta[held - 3..]
        )),
        meta.len()
    );
    // All of it again: a retry, nothing stored twice.
    assert_eq!(length(&put_meta(&s, &token, &id, "0", &meta)), meta.len());

    assert_eq!(
        length(&get(&s, &token, &format!("/runs/{id}/meta/length"))),
        meta.len()
    );
    let copy = get(&s, &token, &format!("/runs/{id}/meta"));
    assert_eq!(copy.status, 200);
    assert!(copy.body == meta, "the server's copy differs from meta.lab");
    // The object store holds the same bytes, stretch after stretch, beside
    // the journal's.
    let dir = s.store.path().join(format!("projects/{P}/runs/{id}/meta"));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let first = names[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(first, format!("{:020}", 0));
    let stored: Vec<u8> = names
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(stored == meta, "the object store's stretches differ");
    let journal_dir = s
        .store
        .path()
        .join(format!("projects/{P}/runs/{id}/journal"));
    let journal_stored: Vec<u8> = {
        let mut names: Vec<_> = std::fs::read_dir(&journal_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    assert!(journal_stored == journal, "the journal's stretches changed");

    let shown = get(&s, &token, &format!("/runs/{id}")).json();
    assert_eq!(shown["name"], J::from("baseline"));
    assert_eq!(shown["note"], J::from("# Why\n\nthe first try"));
    listed_as_locally(&s, &token, &project);
    // Queries see the edited tags.
    let q = get(&s, &token, "/runs?where=owner+%3D+%27ana%27").json();
    assert_eq!(q["total"].as_u64(), Some(1));
    let q = get(&s, &token, "/runs?where=team+%3D+%27vision%27").json();
    assert_eq!(
        q["total"].as_u64(),
        Some(1),
        "the untagged run still has `team`"
    );
}

#[test]
fn an_edit_keeps_the_last_word_over_a_journal_stretch_that_arrives_after_it() {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let id = runs[0].id().to_string();
    let journal = journal_bytes(&project, &runs[0]);
    // The journal's tag `team` is set near its end: the first stretch
    // (the Start record and the parameters) does not hold it.
    let head = length(
        &http(
            s.addr,
            "PUT",
            &format!("/api/v1/projects/{P}/runs/{id}/journal?offset=0"),
            Some(&token),
            &[],
            &journal[..400],
        )
        .unwrap(),
    );
    let meta = edit(
        &project,
        &id[..8],
        &Edit {
            name: Some("renamed-early".into()),
            untag: vec!["team".into()],
            tags: vec![("owner".into(), "ana".into())],
            ..Edit::default()
        },
    );
    assert_eq!(length(&put_meta(&s, &token, &id, "0", &meta)), meta.len());
    let shown = get(&s, &token, &format!("/runs/{id}")).json();
    assert_eq!(shown["name"], J::from("renamed-early"));
    // The rest of the journal sets tag `team` and ends the run.
    let mut at = head;
    while at < journal.len() {
        let end = (at + 5000).min(journal.len());
        at = length(
            &http(
                s.addr,
                "PUT",
                &format!("/api/v1/projects/{P}/runs/{id}/journal?offset={at}"),
                Some(&token),
                &[],
                &journal[at..end],
            )
            .unwrap(),
        );
    }
    let shown = get(&s, &token, &format!("/runs/{id}")).json();
    assert_eq!(shown["status"], J::from("finished"));
    assert_eq!(shown["name"], J::from("renamed-early"));
    assert_eq!(shown["tags"], serde_json::json!({"owner": "ana"}));
    let other = runs[1].id().to_string();
    send_journal(
        s.addr,
        &token,
        P,
        &other,
        &journal_bytes(&project, &runs[1]),
        1 << 20,
    );
    listed_as_locally(&s, &token, &project);
}

#[test]
fn a_rebuilt_index_keeps_the_edits_and_merged_journals_leave_them_alone() {
    // Journal stretches merged every 4: the run's edits are no journal
    // stretch, and stay as they came.
    let cluster = crate::Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let s = Server::on(cluster, store, &url, |o| o.compact_every = 4);
    let token = s.token("ci", Role::Writer, Some(P));
    let (_dir, project, runs) = local_project();
    let id = runs[1].id().to_string();
    let journal = journal_bytes(&project, &runs[1]);
    let meta = edit(&project, &id[..8], &the_edit());
    // Half the journal (its whole frames), the edits in two stretches, the
    // rest of the journal in many requests.
    let put_journal = http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{id}/journal?offset=0"),
        Some(&token),
        &[],
        &journal[..journal.len() / 2],
    )
    .unwrap();
    assert!(length(&put_journal) > 16);
    let half = length(&put_meta(&s, &token, &id, "0", &meta[..meta.len() - 4]));
    assert_eq!(
        length(&put_meta(&s, &token, &id, &half.to_string(), &meta[half..])),
        meta.len()
    );
    // From 0: the server answers where it got, and the rest follows.
    send_journal(s.addr, &token, P, &id, &journal, 999);
    send_journal(
        s.addr,
        &token,
        P,
        &runs[0].id().to_string(),
        &journal_bytes(&project, &runs[0]),
        1 << 20,
    );
    let stretches = |dir: &str| {
        std::fs::read_dir(s.store.path().join(format!("projects/{P}/runs/{id}/{dir}")))
            .unwrap()
            .count()
    };
    assert!(
        stretches("journal") < journal.len() / 999,
        "nothing was merged"
    );
    assert_eq!(stretches("meta"), 2);
    assert!(get(&s, &token, &format!("/runs/{id}/journal")).body == journal);
    assert!(get(&s, &token, &format!("/runs/{id}/meta")).body == meta);
    let list = get(&s, &token, "/runs").json();
    let one = get(&s, &token, &format!("/runs/{id}")).json();
    assert_eq!(one["name"], J::from("baseline"));
    let mut c = postgres::Client::connect(&s.cluster.lab(), postgres::NoTls).unwrap();
    c.batch_execute("DELETE FROM lab.runs; DELETE FROM lab.names;")
        .unwrap();
    let url = format!("file://{}", s.store.path().display());
    let done = lab_team::reindex(&s.cluster.lab(), &url, None).unwrap();
    assert_eq!((done.projects, done.runs), (1, 2));
    assert_eq!(get(&s, &token, "/runs").json(), list);
    assert_eq!(get(&s, &token, &format!("/runs/{id}")).json(), one);
    assert_eq!(
        length(&get(&s, &token, &format!("/runs/{id}/meta/length"))),
        meta.len()
    );
    listed_as_locally(&s, &token, &project);
}

#[test]
fn the_edits_of_a_pushed_project_are_folded() {
    use lab_remote::manifest::{Entry, MANIFEST_FORMAT, Manifest, blob_key, manifest_key};
    let cluster = crate::Cluster::start();
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let (_dir, project, runs) = local_project();
    let id = runs[0].id().to_string();
    edit(&project, &id[..8], &the_edit());
    // What `lab push` writes: each file as a blob named by its hash, and
    // the manifest naming them.
    let name = "pushed-project";
    let mut files = Vec::new();
    let mut manifest_runs = std::collections::BTreeMap::new();
    for run in &runs {
        let short = run.id().short();
        manifest_runs.insert(short.clone(), run.id().to_string());
        for file in [lab_store::JOURNAL_FILE, lab_store::META_FILE] {
            let Ok(bytes) = std::fs::read(project.run_paths(&short).dir.join(file)) else {
                continue;
            };
            let sha = lab_remote::scan::sha256(&bytes);
            let blob = store.path().join(blob_key(name, &sha));
            std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
            std::fs::write(&blob, &bytes).unwrap();
            files.push(Entry {
                path: format!(".lab/runs/{short}/{file}"),
                size: bytes.len() as u64,
                sha256: sha,
                mode: 0o644,
            });
        }
    }
    assert!(files.iter().any(|f| f.path.ends_with("meta.lab")));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        project: name.into(),
        files,
        dirs: Vec::new(),
        runs: manifest_runs,
    };
    std::fs::create_dir_all(store.path().join(name)).unwrap();
    std::fs::write(
        store.path().join(manifest_key(name)),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let s = Server::on(cluster, store, &url, |o| {
        o.scan_pushed = Some(Duration::from_millis(200));
    });
    let token = s.token("reader", Role::Reader, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let r = http(
            s.addr,
            "GET",
            &format!("/api/v1/projects/{name}/runs/{id}"),
            Some(&token),
            &[],
            b"",
        )
        .unwrap();
        if r.status == 200 && r.json()["name"] == "baseline" {
            break r.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pushed edits are not shown: {}",
            String::from_utf8_lossy(&r.body)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(shown["tags"], serde_json::json!({"owner": "ana"}));
    assert_eq!(shown["note"], J::from("# Why\n\nthe first try"));
    let meta = std::fs::read(project.run_paths(&id[..8]).meta).unwrap();
    let held = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{name}/runs/{id}/meta/length"),
        Some(&token),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(length(&held), meta.len());
}

/// A server holding the journal of a finished run of a local project;
/// its writer's token, the project and the run's id.
fn one_run_sent() -> (Server, String, tempfile::TempDir, Project, String) {
    let s = Server::start();
    let token = s.token("ci", Role::Writer, Some(P));
    let (dir, project, runs) = local_project();
    let id = runs[0].id().to_string();
    let journal = journal_bytes(&project, &runs[0]);
    send_journal(s.addr, &token, P, &id, &journal, 1 << 20);
    (s, token, dir, project, id)
}

#[test]
fn an_edit_sends_a_run_event_to_the_web_page() {
    let (s, token, _dir, project, id) = one_run_sent();
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/projects/{P}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    // Once the stream has looked (and primed itself), the run is edited.
    std::thread::sleep(Duration::from_millis(1500));
    let meta = edit(&project, &id[..8], &the_edit());
    assert_eq!(length(&put_meta(&s, &token, &id, "0", &meta)), meta.len());
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // Keep-alive comments come every 15 s: the wait is bounded here.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(seen.contains("event: run") && seen.contains("baseline")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no `run` event within 20 s: {seen}"
        );
        let n = stream.read(&mut buf).expect("nothing within 20 s");
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains(&id), "{seen}");
}

#[test]
fn a_reader_cannot_send_edits_and_hostile_requests_are_refused() {
    let (s, token, _dir, project, id) = one_run_sent();
    let reader = s.token("viewer", Role::Reader, Some(P));
    let meta = edit(&project, &id[..8], &the_edit());
    let r = put_meta(&s, &reader, &id, "0", &meta);
    assert_eq!((r.status, r.code()), (403, "forbidden".to_owned()));
    // A token of another project does not see this one.
    let other = s.token("other", Role::Writer, Some("elsewhere"));
    assert_eq!(put_meta(&s, &other, &id, "0", &meta).status, 404);
    // No token.
    let r = http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{id}/meta?offset=0"),
        None,
        &[],
        &meta,
    )
    .unwrap();
    assert_eq!(r.status, 401);

    let huge = put_meta(&s, &token, &id, &u64::MAX.to_string(), &meta);
    assert_eq!((huge.status, huge.code()), (409, "gap".to_owned()));
    assert_eq!(huge.json()["length"].as_u64(), Some(0));
    for offset in ["abc", "-1", "1e3", "18446744073709551616", ""] {
        let r = put_meta(&s, &token, &id, offset, &meta);
        assert_eq!(
            (r.status, r.code()),
            (400, "bad_request".to_owned()),
            "{offset}"
        );
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("`offset`"), "{message}");
        assert!(message.contains(&format!("`{offset}`")), "{message}");
    }
    let r = http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{id}/meta"),
        Some(&token),
        &[],
        &meta,
    )
    .unwrap();
    assert_eq!((r.status, r.code()), (400, "bad_request".to_owned()));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("meta journal")
    );
    // Garbage: no header, then no frame.
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let r = put_meta(&s, &token, &id, "0", &garbage);
    assert_eq!((r.status, r.code()), (400, "bad_frame".to_owned()));
    assert_eq!(r.json()["length"].as_u64(), Some(0));
    let mut after_header = meta[..16].to_vec();
    after_header.extend_from_slice(&garbage);
    let r = put_meta(&s, &token, &id, "0", &after_header);
    assert_eq!((r.status, r.code()), (400, "bad_frame".to_owned()));
    // A bad run id, a bad project name.
    let r = put_meta(&s, &token, "not-a-run", "0", &meta);
    assert_eq!(r.status, 400);
    let r = http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/bad%20name/runs/{id}/meta?offset=0"),
        Some(&token),
        &[],
        &meta,
    )
    .unwrap();
    assert!(r.status == 400 || r.status == 403, "{}", r.status);
    // Nothing of it was kept: the edits then go in whole.
    assert_eq!(
        length(&get(&s, &token, &format!("/runs/{id}/meta/length"))),
        0
    );
    assert!(
        !s.store
            .path()
            .join(format!("projects/{P}/runs/{id}/meta"))
            .exists()
    );
    assert_eq!(length(&put_meta(&s, &token, &id, "0", &meta)), meta.len());
    let shown = get(&s, &token, &format!("/runs/{id}")).json();
    assert_eq!(shown["name"], J::from("baseline"));
    // A reader reads them back.
    let copy = http(
        s.addr,
        "GET",
        &format!("/api/v1/projects/{P}/runs/{id}/meta"),
        Some(&reader),
        &[],
        b"",
    )
    .unwrap();
    assert!(copy.status == 200 && copy.body == meta);
}
