//! Two machines of a team start runs in the same quarter second: the runs
//! share a short id. The server keeps both, keyed by their full ids.

use lab_team::Role;
use lab_types::RunId;
use serde_json::Value as J;

use crate::{Server, http, send_journal};

const P: &str = "team-project";

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

#[test]
fn runs_of_two_machines_with_one_short_id_both_land_and_both_list() {
    let s = Server::start();
    let ada = s.token("ada", Role::Writer, Some(P));
    let bob = s.token("bob", Role::Writer, Some(P));
    let a: RunId = "6a1b2c3d00000000000000000000aaaa".parse().unwrap();
    let b: RunId = "6a1b2c3d11111111111111111111bbbb".parse().unwrap();
    assert_eq!(a.short(), b.short());
    let (ja, jb) = (
        crate::whole_journal(a, "ada", 300),
        crate::whole_journal(b, "bob", 500),
    );
    // Each machine sends its run in pieces, turn about: the first half of
    // one (up to a frame's end), the other whole, then the rest of the one.
    let half = lab_store::index::check_received(&a, 0, &ja[..ja.len() / 2]).unwrap();
    let half = usize::try_from(half).unwrap();
    let held = send_journal(s.addr, &ada, P, &a.to_string(), &ja[..half], 100);
    assert_eq!(held, half as u64);
    assert_eq!(
        send_journal(s.addr, &bob, P, &b.to_string(), &jb, 333),
        jb.len() as u64
    );
    let r = http(
        s.addr,
        "PUT",
        &format!("/api/v1/projects/{P}/runs/{a}/journal?offset={held}"),
        Some(&ada),
        &[("Content-Type", "application/octet-stream")],
        &ja[usize::try_from(held).unwrap()..],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["length"].as_u64(), Some(ja.len() as u64));

    // Both listed, under their full ids, with the one short id.
    let listed = get(&s, &ada, "/runs").json();
    assert_eq!(listed["total"].as_u64(), Some(2));
    let mut ids: Vec<String> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, [a.to_string(), b.to_string()]);
    // Each readable by its full id: its own parameters, points and bytes.
    for (id, machine, count, bytes) in [(a, "ada", 300, &ja), (b, "bob", 500, &jb)] {
        let one = get(&s, &bob, &format!("/runs/{id}"));
        assert_eq!(one.status, 200, "{}", String::from_utf8_lossy(&one.body));
        let one = one.json();
        assert_eq!(one["id"], J::from(id.to_string()));
        assert_eq!(one["status"], J::from("finished"));
        assert_eq!(one["params"]["machine"], J::from(machine));
        let points = get(&s, &bob, &format!("/runs/{id}/metrics/loss?max_points=2"));
        assert_eq!(points.json()["total"].as_u64(), Some(count));
        let length = get(&s, &bob, &format!("/runs/{id}/journal/length"));
        assert_eq!(length.json()["length"].as_u64(), Some(bytes.len() as u64));
        let copy = get(&s, &bob, &format!("/runs/{id}/journal"));
        assert!(copy.body == *bytes, "the server's copy of {id} differs");
    }
    // The short id names both: ambiguous, as a prefix is locally.
    let short = get(&s, &ada, &format!("/runs/{}", a.short()));
    assert_eq!(
        (short.status, short.code()),
        (400, "bad_request".to_owned())
    );
    let message = short.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("ambiguous"), "{message}");
    assert!(message.contains(&a.to_string()) && message.contains(&b.to_string()));
    // A longer prefix names one.
    let prefix = &b.to_string()[..10];
    assert_eq!(
        get(&s, &ada, &format!("/runs/{prefix}")).json()["id"],
        J::from(b.to_string())
    );
    // The project counts two runs.
    let projects = http(s.addr, "GET", "/api/v1/projects", Some(&ada), &[], b"").unwrap();
    assert_eq!(
        projects.json()["projects"],
        serde_json::json!([{"name": P, "runs": 2}])
    );
}
