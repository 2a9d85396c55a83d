"""A run's edits (`lab rename`, `lab tag`, `lab untag`, `lab note`,
`Run.name = ...`: its `meta.lab`) reach a real `lab server` (PostgreSQL and a
folder of blobs, started by the test): made while the run streams, after it
ended while its process lives, in Python, of an old run with `lab sync` or
with the next run; through a server that is down, a server that holds less
than the client thought, or other bytes. Each checks the server's copy of
the run with its read API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import lab_cli, lab_env, run_python
from team_server import Server

TRAIN = """
import sys, time, lab
n, pause = int(sys.argv[1]), float(sys.argv[2])
e = lab.Experiment("train")
with e.start_run(tags={"stage": "draft"}):
    print(e.run_id, flush=True)
    for i in range(n):
        e.log_metric("loss", 1.0 / (i + 1), step=i)
        if pause and i % 100 == 99:
            time.sleep(pause)
"""

# A run, then the process waits (up to a minute) for a file to appear before
# it exits: its run is ended and all sent, the process still alive.
LINGER = """
import os, sys, time, lab
e = lab.Experiment("linger")
with e.start_run():
    e.log_metric("loss", 0.5, step=0)
print(e.run_id, flush=True)
deadline = time.monotonic() + 60
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def server():
    # Not under pytest's folder: PostgreSQL runs as its own user, which must
    # reach its data folder.
    folder = Path(tempfile.mkdtemp(prefix="lab-team-edits-"))
    os.chmod(folder, 0o755)
    s = Server(folder)
    yield s
    s.close()


@pytest.fixture
def token(project: Path, server: Server, monkeypatch: pytest.MonkeyPatch, request) -> str:
    t = server.token(f"e-{request.node.name[:40]}-{time.monotonic_ns()}")
    monkeypatch.setenv("LAB_SERVER", server.url)
    monkeypatch.setenv("LAB_TOKEN", t)
    return t


def train(project: Path, n: int = 200, pause: float = 0.0, env: "dict | None" = None) -> subprocess.Popen:
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    return subprocess.Popen(
        [sys.executable, "train.py", str(n), str(pause)],
        cwd=project, env=env or lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def trained(project: Path, n: int = 200) -> str:
    """A run streamed whole to the server; its id."""
    proc = train(project, n)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert quiet(err), err
    return out.strip()


def quiet(err: str) -> bool:
    """Whether the client said nothing about the server."""
    return "the server" not in err and "run `" not in err


def on_server(server: Server, token: str, project: Path, run_id: str) -> dict:
    return server.get(f"/projects/{project.name}/runs/{run_id}", token)


def wait_for(check, timeout: float = 30, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)


def state(project: Path, run_id: str) -> dict:
    return json.loads((project / ".lab" / "runs" / run_id[:8] / "upload.json").read_text())


def meta_len(project: Path, run_id: str) -> int:
    return (project / ".lab" / "runs" / run_id[:8] / "meta.lab").stat().st_size


def edit(project: Path, *args: str) -> None:
    proc = lab_cli(project, *args)
    assert proc.returncode == 0, proc.stderr


def test_edits_of_an_ended_run_travel_with_lab_sync_once(project: Path, server: Server, token: str) -> None:
    run_id = trained(project)
    short = run_id[:8]
    before = on_server(server, token, project, run_id)
    assert before["tags"] == {"stage": "draft"} and before["note"] == ""
    edit(project, "rename", short, "baseline")
    edit(project, "tag", short, "owner=ada", "stage=final")
    edit(project, "untag", short, "stage")
    edit(project, "note", short, "Depth 4 beats 2")
    # Made after its process ended: nothing sent them yet.
    assert on_server(server, token, project, run_id)["name"] == before["name"]
    synced = lab_cli(project, "sync")
    assert synced.returncode == 0, synced.stderr
    assert "0 runs sent, edits of 1 run sent, 0 runs already on the server" in synced.stdout, synced.stdout
    assert f"sending the edits of run {short}" in synced.stderr, synced.stderr
    after = on_server(server, token, project, run_id)
    assert (after["name"], after["tags"], after["note"]) == ("baseline", {"owner": "ada"}, "Depth 4 beats 2")
    assert state(project, run_id)["meta_acked"] == meta_len(project, run_id)
    listed = lab_cli(project, "ls", "--remote")
    assert listed.returncode == 0, listed.stderr
    assert "baseline" in listed.stdout and before["name"] not in listed.stdout, listed.stdout
    # The server finds the run by its new name, as the project does.
    shown = lab_cli(project, "show", "baseline", "--remote")
    assert shown.returncode == 0, shown.stderr
    assert short in shown.stdout and "Depth 4 beats 2" in shown.stdout, shown.stdout
    # Nothing more to send.
    again = lab_cli(project, "sync")
    assert again.returncode == 0, again.stderr
    assert "0 runs sent, edits of 0 runs sent, 1 run already on the server" in again.stdout, again.stdout
    assert "sending" not in again.stderr, again.stderr


def test_an_edit_made_while_the_run_streams_arrives_without_sync(project: Path, server: Server, token: str) -> None:
    proc = train(project, 8000, 0.05)
    run_id = proc.stdout.readline().strip()
    assert wait_for(lambda: on_server_or_none(server, token, project, run_id) is not None)
    edit(project, "rename", run_id[:8], "renamed-while-training")
    edit(project, "note", run_id[:8], "seen live")
    seen = wait_for(lambda: proc.poll() is None and on_server(server, token, project, run_id)["name"] == "renamed-while-training")
    assert seen, "the rename did not reach the server while the run trained"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert quiet(err), err
    detail = on_server(server, token, project, run_id)
    assert (detail["name"], detail["note"], detail["status"]) == ("renamed-while-training", "seen live", "finished")
    assert state(project, run_id)["meta_acked"] == meta_len(project, run_id)
    synced = lab_cli(project, "sync")
    assert "0 runs sent, edits of 0 runs sent, 1 run already on the server" in synced.stdout, synced.stdout


def on_server_or_none(server: Server, token: str, project: Path, run_id: str) -> "dict | None":
    status, body, _ = server.answer(f"/projects/{project.name}/runs/{run_id}", token)
    return body if status == 200 else None


def test_an_edit_after_the_run_ended_travels_while_its_process_lives(project: Path, server: Server, token: str) -> None:
    (project / "linger.py").write_text(textwrap.dedent(LINGER))
    proc = subprocess.Popen(
        [sys.executable, "linger.py"], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert wait_for(lambda: state_or_none(project, run_id).get("done"))
        edit(project, "tag", run_id[:8], "checked=yes")
        seen = wait_for(lambda: on_server(server, token, project, run_id)["tags"] == {"checked": "yes"})
        assert seen and proc.poll() is None, "the tag did not reach the server while the process lived"
    finally:
        (project / "go").write_text("")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert quiet(err), err


def state_or_none(project: Path, run_id: str) -> dict:
    try:
        return state(project, run_id)
    except (OSError, ValueError):
        return {}


def test_run_name_assigned_in_python_travels_before_the_process_exits(project: Path, server: Server, token: str) -> None:
    run_id = trained(project)
    done = run_python(project, f"""
        import lab
        run = lab.get_run("{run_id}")
        run.name = "named-in-python"
        run.tags = {{**run.tags, "owner": "ada"}}
        run.note = "from a notebook"
    """, check=True)
    assert quiet(done.stderr), done.stderr
    detail = on_server(server, token, project, run_id)
    assert (detail["name"], detail["tags"], detail["note"]) == (
        "named-in-python", {"stage": "draft", "owner": "ada"}, "from a notebook",
    )
    synced = lab_cli(project, "sync")
    assert "edits of 0 runs sent, 1 run already on the server" in synced.stdout, synced.stdout


def test_edits_of_an_old_run_travel_with_the_next_run(project: Path, server: Server, token: str, monkeypatch) -> None:
    old = trained(project)
    edit(project, "rename", old[:8], "old-but-renamed")
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "30")
    proc = train(project, 8000, 0.05)
    new = proc.stdout.readline().strip()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert wait_for(lambda: on_server(server, token, project, old)["name"] == "old-but-renamed")
    assert state(project, old)["meta_acked"] == meta_len(project, old)
    assert on_server(server, token, project, new)["status"] == "finished"


def test_a_server_down_while_edits_go_loses_nothing(project: Path, server: Server, token: str, monkeypatch) -> None:
    run_id = trained(project)
    edit(project, "rename", run_id[:8], "first-name")
    acked = state(project, run_id)["meta_acked"]
    server.stop(signal.SIGKILL)
    try:
        # `lab sync` gives up after a few tries, having sent nothing.
        failed = lab_cli(project, "sync", timeout=120)
        assert failed.returncode == 1 and "cannot reach the server" in failed.stderr, failed.stderr
        assert state(project, run_id)["meta_acked"] == acked
        # An edit in Python, while the server is down: the grace passes.
        monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "1")
        done = run_python(project, f"""
            import lab
            lab.get_run("{run_id}").note = "written while the server was down"
        """, check=True)
        assert "not all on the server yet" in done.stderr, done.stderr
        assert state(project, run_id)["meta_acked"] == acked
    finally:
        server.start()
    synced = lab_cli(project, "sync", timeout=120)
    assert synced.returncode == 0, synced.stderr
    assert "edits of 1 run sent" in synced.stdout, synced.stdout
    detail = on_server(server, token, project, run_id)
    assert (detail["name"], detail["note"]) == ("first-name", "written while the server was down")
    assert state(project, run_id)["meta_acked"] == meta_len(project, run_id)


def test_a_server_that_holds_less_gets_the_edits_from_its_length(project: Path, server: Server, token: str) -> None:
    run_id = trained(project)
    edit(project, "rename", run_id[:8], "one")
    first = meta_len(project, run_id)
    edit(project, "rename", run_id[:8], "two")
    # The state says the server holds the first edit (it holds none: a
    # server restored from an older backup, say).
    path = project / ".lab" / "runs" / run_id[:8] / "upload.json"
    s = state(project, run_id)
    s["meta_acked"] = first
    path.write_text(json.dumps(s))
    synced = lab_cli(project, "sync")
    assert synced.returncode == 0, synced.stderr
    assert "edits of 1 run sent" in synced.stdout, synced.stdout
    assert on_server(server, token, project, run_id)["name"] == "two"
    assert state(project, run_id)["meta_acked"] == meta_len(project, run_id)


def test_other_edits_on_the_server_are_said_and_leave_the_run(project: Path, server: Server, token: str) -> None:
    run_id = trained(project)
    edit(project, "rename", run_id[:8], "on-the-server")
    assert lab_cli(project, "sync").returncode == 0
    # This machine's edits are now others (a copy of the project edited
    # elsewhere, say), and not known to be on the server.
    meta = project / ".lab" / "runs" / run_id[:8] / "meta.lab"
    meta.unlink()
    edit(project, "rename", run_id[:8], "somewhere-else")
    path = project / ".lab" / "runs" / run_id[:8] / "upload.json"
    s = state(project, run_id)
    s["meta_acked"] = 0
    path.write_text(json.dumps(s))
    synced = lab_cli(project, "sync")
    assert synced.returncode == 1, synced.stdout
    assert f"run `{run_id[:8]}`: the server holds other bytes for this run's edits" in synced.stderr, synced.stderr
    assert on_server(server, token, project, run_id)["name"] == "on-the-server"
    assert state(project, run_id)["meta_acked"] == 0


def test_a_server_that_lost_the_run_gets_it_again_before_its_edits(project: Path, server: Server, token: str) -> None:
    # A run the state says is all on the server, which holds none of it (its
    # database and store restored from before the run, say).
    env = dict(lab_env(project), LAB_SERVER="", LAB_TOKEN="")
    proc = train(project, 300, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run_id = out.strip()
    journal = project / ".lab" / "runs" / run_id[:8] / "journal.lab"
    (journal.parent / "upload.json").write_text(json.dumps({
        "server": server.url, "project": project.name, "run": run_id,
        "acked": journal.stat().st_size, "end_acked": True, "done": True,
    }))
    assert on_server_or_none(server, token, project, run_id) is None
    edit(project, "rename", run_id[:8], "found-again")
    synced = lab_cli(project, "sync")
    assert synced.returncode == 0, synced.stderr
    assert "1 run sent, edits of 1 run sent, 0 runs already on the server" in synced.stdout, synced.stdout
    detail = on_server(server, token, project, run_id)
    assert (detail["name"], detail["status"]) == ("found-again", "finished")
    assert sum(m["count"] for m in detail["metrics"] if m["name"] == "loss") == 300
    assert state(project, run_id)["acked"] == journal.stat().st_size
    assert state(project, run_id)["meta_acked"] == meta_len(project, run_id)


def test_edits_the_server_refuses_are_said_and_leave_the_run(project: Path, server: Server, token: str) -> None:
    run_id = trained(project)
    folder = project / ".lab" / "runs" / run_id[:8]
    # A meta journal holding a record that is no edit (the run's Start
    # record, whole and sound, copied from its journal).
    journal = (folder / "journal.lab").read_bytes()
    length = int.from_bytes(journal[16:20], "little")
    (folder / "meta.lab").write_bytes(journal[:16] + journal[16:16 + 8 + length])
    synced = lab_cli(project, "sync")
    assert synced.returncode == 1, synced.stdout
    assert f"run `{run_id[:8]}`: the server refused its edits (`meta.lab`)" in synced.stderr, synced.stderr
    assert "0 runs sent, edits of 0 runs sent, 0 runs already on the server" in synced.stdout, synced.stdout
    assert state(project, run_id)["meta_acked"] == 0
    assert on_server(server, token, project, run_id)["status"] == "finished"
