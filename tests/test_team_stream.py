"""Runs streamed to a real `lab server` (PostgreSQL and a folder of blobs,
or a real S3 server, started by the test): while they train, through a
server that stops, PostgreSQL stopped for 30 s, the S3 server restarted, a
client killed mid-upload, a token revoked mid-run, and 16 clients at once.
Each checks with the server's read API that every acknowledged point is
there exactly once."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import lab_cli, lab_env, run_python
from team_server import Server

TRAIN = """
import sys, time, lab
n, pause = int(sys.argv[1]), float(sys.argv[2])
e = lab.Experiment("train")
with e.start_run():
    print(e.run_id, flush=True)
    for i in range(n):
        e.log_metric("loss", 1.0 / (i + 1), step=i)
        if pause and i % 100 == 99:
            time.sleep(pause)
    e.log_artifact("notes", "notes.txt")
"""


# Training that times its own `log_metric` calls, and says so at the end.
TIMED = """
import json, sys, time, lab
n, pause = int(sys.argv[1]), float(sys.argv[2])
e = lab.Experiment("train")
spent = worst = 0.0
started = time.monotonic()
with e.start_run():
    print(e.run_id, flush=True)
    for i in range(n):
        t = time.perf_counter()
        e.log_metric("loss", 1.0 / (i + 1), step=i)
        took = time.perf_counter() - t
        spent += took
        worst = max(worst, took)
        if i % 100 == 99:
            time.sleep(pause)
print(json.dumps({"spent": spent, "worst": worst, "trained": time.monotonic() - started}), flush=True)
"""


@pytest.fixture(scope="module")
def server():
    # Not under pytest's folder: PostgreSQL runs as its own user, which must
    # reach its data folder.
    folder = Path(tempfile.mkdtemp(prefix="lab-team-"))
    os.chmod(folder, 0o755)
    s = Server(folder)
    yield s
    s.close()


def start_training(project: Path, n: int, pause: float) -> subprocess.Popen:
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    (project / "notes.txt").write_text("what was tried\n")
    return subprocess.Popen(
        [sys.executable, "train.py", str(n), str(pause)],
        cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture(scope="module")
def s3_server():
    """A server whose object store is a real S3 server (`s3s-fs`)."""
    folder = Path(tempfile.mkdtemp(prefix="lab-team-s3-"))
    os.chmod(folder, 0o755)
    s = Server(folder, s3=True)
    yield s
    s.close()


def start_timed(project: Path, n: int, pause: float) -> subprocess.Popen:
    (project / "timed.py").write_text(textwrap.dedent(TIMED))
    return subprocess.Popen(
        [sys.executable, "timed.py", str(n), str(pause)],
        cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def points_on_server(server: Server, token: str, project: Path, run_id: str) -> int:
    """How many points of `loss` the server's index holds for the run."""
    detail = server.get(f"/projects/{project.name}/runs/{run_id}", token)
    return sum(m["count"] for m in detail["metrics"] if m["name"] == "loss")


def journal_on_server(server: Server, token: str, project: Path, run_id: str) -> bytes:
    request = urllib.request.Request(
        f"{server.url}/api/v1/projects/{project.name}/runs/{run_id}/journal", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.read()


def local_journal(project: Path, run_id: str) -> bytes:
    return (project / ".lab" / "runs" / run_id[:8] / "journal.lab").read_bytes()


def same_on_server(server: Server, token: str, project: Path, run_id: str, points: int) -> None:
    """The server holds the run's journal byte for byte, and its index every
    point once."""
    assert journal_on_server(server, token, project, run_id) == local_journal(project, run_id)
    assert points_on_server(server, token, project, run_id) == points


def wait_for(check, timeout: float = 60, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
            if got:
                return got
        except Exception:  # noqa: BLE001 - the server may not have the run yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return check()
        time.sleep(every)


@pytest.fixture
def logged_in(project: Path, server: Server, monkeypatch: pytest.MonkeyPatch, request) -> str:
    token = server.token(f"t-{request.node.name[:40]}-{time.monotonic_ns()}")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "login", server.url, "--token-stdin"],
        input=token + "\n", capture_output=True, text=True, env=lab_env(project), cwd=project, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return token


def test_login_keeps_the_token_private(project: Path, server: Server, logged_in: str, tmp_path: Path) -> None:
    path = tmp_path / "config" / "lab" / "server.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": server.url, "token": logged_in}
    # A token the server does not know is refused, and the file is kept.
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "login", server.url, "--token-stdin"],
        input="not-a-token\n", capture_output=True, text=True, env=lab_env(project), timeout=60,
    )
    assert proc.returncode == 1 and "does not know this token" in proc.stderr, proc.stderr
    assert json.loads(path.read_text())["token"] == logged_in
    # A reader's token is kept, and said to send nothing.
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "login", server.url, "--token-stdin"],
        input=server.token(f"reader-{time.monotonic_ns()}", "reader") + "\n",
        capture_output=True, text=True, env=lab_env(project), timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(reader, every project)" in proc.stdout and "a reader's token cannot send runs" in proc.stderr
    assert lab_cli(project, "logout").returncode == 0
    assert not path.exists()


def test_a_run_streams_while_it_trains(project: Path, server: Server, logged_in: str) -> None:
    proc = start_training(project, 3000, 0.05)
    run_id = proc.stdout.readline().strip()
    # Seen on the server while the script still trains.
    seen = wait_for(lambda: proc.poll() is None and points_on_server(server, logged_in, project, run_id) >= 500)
    assert seen and proc.poll() is None
    detail = server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)
    assert detail["status"] == "running"
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "server" not in err and "not all on" not in err, err
    # All of it, once each, and the run's end and its artifact.
    same_on_server(server, logged_in, project, run_id, 3000)
    detail = server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)
    assert detail["status"] == "finished"
    state = json.loads((project / ".lab" / "runs" / run_id[:8] / "upload.json").read_text())
    assert state["done"] and state["acked"] == (project / ".lab" / "runs" / run_id[:8] / "journal.lab").stat().st_size
    # Nothing left for `lab sync`.
    synced = lab_cli(project, "sync")
    assert synced.returncode == 0 and "0 runs sent, edits of 0 runs sent, 1 run already on the server" in synced.stdout, synced.stdout


def test_a_server_stopped_mid_run_costs_nothing_and_sync_sends_the_rest(project: Path, server: Server, logged_in: str, monkeypatch) -> None:
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "1")
    proc = start_training(project, 4000, 0.05)
    run_id = proc.stdout.readline().strip()
    wait_for(lambda: points_on_server(server, logged_in, project, run_id) >= 300)
    server.stop(signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert err.count("the server does not answer") == 1, err
    assert "`lab sync` sends the rest" in err
    server.start()
    synced = lab_cli(project, "sync", timeout=120)
    assert synced.returncode == 0, synced.stderr
    assert "1 run sent" in synced.stdout, synced.stdout
    same_on_server(server, logged_in, project, run_id, 4000)
    detail = server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)
    assert detail["status"] == "finished"


def test_a_client_killed_mid_upload_is_completed_by_sync(project: Path, server: Server, logged_in: str) -> None:
    proc = start_training(project, 100000, 0.02)
    run_id = proc.stdout.readline().strip()
    wait_for(lambda: points_on_server(server, logged_in, project, run_id) >= 1000)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    # What the server acknowledged is a prefix of the journal, in whole frames.
    acked = journal_on_server(server, logged_in, project, run_id)
    assert local_journal(project, run_id).startswith(acked)
    synced = lab_cli(project, "sync", timeout=120)
    assert synced.returncode == 0, synced.stderr
    assert "1 run sent" in synced.stdout, synced.stdout
    # What the killed process logged is all there, once; the run crashed.
    local = subprocess.run(
        [sys.executable, "-c", f"import lab; print(len(lab.get_run('{run_id}').metric_history('loss')))"],
        cwd=project, env=lab_env(project), capture_output=True, text=True, check=True,
    )
    same_on_server(server, logged_in, project, run_id, int(local.stdout))
    assert server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)["status"] == "crashed"
    detail = server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)
    assert detail["status"] == "crashed"


def test_a_revoked_token_is_said_once_and_training_goes_on(project: Path, server: Server, logged_in: str, request) -> None:
    name = server.get("/whoami", logged_in)["name"]
    proc = start_training(project, 3000, 0.05)
    run_id = proc.stdout.readline().strip()
    wait_for(lambda: points_on_server(server, logged_in, project, run_id) >= 200)
    server.revoke(name)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err.count("the server refused the token") == 1, err
    assert "`lab login" in err
    count = subprocess.run(
        [sys.executable, "-c", f"import lab; print(len(lab.get_run('{run_id}').metric_history('loss')))"],
        cwd=project, env=lab_env(project), capture_output=True, text=True, check=True,
    )
    assert count.stdout.strip() == "3000"


def test_the_next_run_in_the_project_sends_what_an_earlier_process_left(project: Path, server: Server, logged_in: str, monkeypatch) -> None:
    # Logged while the server was down; the process could not send it.
    server.stop(signal.SIGKILL)
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "0")
    first = start_training(project, 500, 0)
    first_id = first.stdout.readline().strip()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0 and "the server does not answer" in err, err
    server.start()
    # The next run in the project sends the one left while its own is
    # caught up.
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "30")
    second = start_training(project, 3000, 0.05)
    second_id = second.stdout.readline().strip()
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    same_on_server(server, logged_in, project, second_id, 3000)
    same_on_server(server, logged_in, project, first_id, 500)


def test_postgresql_stopped_for_30_s_slows_no_training_and_loses_no_point(project: Path, server: Server, logged_in: str, monkeypatch) -> None:
    # About 50 s of training: 20,000 points, a quarter second's pause every 100.
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "90")
    n, pause = 20000, 0.25
    proc = start_timed(project, n, pause)
    try:
        postgresql_stopped_for_30_s(project, server, logged_in, proc, n, pause)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def follow(server: Server, token: str, project: Path) -> "tuple[queue.Queue[tuple[str, dict]], http.client.HTTPConnection]":
    """The project's live events at `server`, as they come (kind, data),
    and the connection (closing it ends them)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("GET", f"/api/v1/projects/{project.name}/events", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    events: "queue.Queue[tuple[str, dict]]" = queue.Queue()

    def read() -> None:
        kind = ""
        try:
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[len("event: "):]
                elif line.startswith("data: "):
                    events.put((kind, json.loads(line[len("data: "):])))
        except (OSError, ValueError, AttributeError):
            return  # closed by the test

    threading.Thread(target=read, name="events", daemon=True).start()
    return events, conn


def postgresql_stopped_for_30_s(project: Path, server: Server, logged_in: str, proc: subprocess.Popen, n: int, pause: float) -> None:
    run_id = proc.stdout.readline().strip()
    wait_for(lambda: points_on_server(server, logged_in, project, run_id) >= 1000)
    # A member follows the project live, through the outage.
    events, following = follow(server, logged_in, project)
    try:
        outage(project, server, logged_in, proc, run_id, events, n, pause)
    finally:
        following.close()


def outage(project: Path, server: Server, logged_in: str, proc: subprocess.Popen, run_id: str, events: "queue.Queue[tuple[str, dict]]", n: int, pause: float) -> None:
    server.pg.stop()
    stopped = time.monotonic()
    try:
        # The server stays up and says it cannot answer now (503, a JSON
        # error, when to come back), while the run goes on.
        checks = 0
        while time.monotonic() - stopped < 30:
            status, body, headers = server.answer(f"/projects/{project.name}/runs/{run_id}", logged_in)
            assert status == 503, (status, body)
            assert body["error"]["code"] == "unavailable", body
            assert headers.get("Retry-After"), headers
            assert server.proc is not None and server.proc.poll() is None
            assert proc.poll() is None
            checks += 1
            time.sleep(3)
        assert checks >= 5
    finally:
        server.pg.start()
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    timing = json.loads(out.splitlines()[-1])
    # The log calls never waited for the network: none took long, and the
    # training took its pauses and little more.
    assert timing["worst"] < 0.5, timing
    assert timing["spent"] < 10, timing
    assert timing["trained"] < n / 100 * pause + 15, timing
    # Said once, and all sent before the process ended.
    assert err.count("the server does not answer") == 1, err
    assert "not all on the server" not in err, err
    # A fresh reader finds every point, once, and the journal byte for byte.
    same_on_server(server, logged_in, project, run_id, n)
    assert server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)["status"] == "finished"
    # The stream opened before the outage tells of the run's end after it.
    deadline = time.monotonic() + 10
    told = []
    while not any(k == "run" and d["id"] == run_id and d["status"] == "finished" for k, d in told):
        told.append(events.get(timeout=max(0.1, deadline - time.monotonic())))
    # The server listens to PostgreSQL again soon after it is back (its
    # tries are at most 5 s apart), and said so.
    said = wait_for(lambda: "listening for changes again" in Path(server.log.name).read_text(), timeout=10)
    assert said, Path(server.log.name).read_text()[-2000:]
    assert Path(server.log.name).read_text().count("not listening for changes") == 1
    listed = lab_cli(project, "show", run_id[:8], "--remote")
    assert listed.returncode == 0, listed.stderr
    assert "finished" in listed.stdout, listed.stdout


def test_the_s3_server_stopped_and_restarted_mid_run_loses_no_point(project: Path, s3_server: Server, monkeypatch, request) -> None:
    server = s3_server
    token = server.token(f"t-{request.node.name[:40]}")
    monkeypatch.setenv("LAB_SERVER", server.url)
    monkeypatch.setenv("LAB_TOKEN", token)
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "90")
    # About 20 s of training.
    n, pause = 8000, 0.25
    proc = start_timed(project, n, pause)
    try:
        run_id = proc.stdout.readline().strip()
        wait_for(lambda: points_on_server(server, token, project, run_id) >= 500)
        assert server.s3 is not None
        server.s3.kill()
        stopped = time.monotonic()
        try:
            # The server stays up; what needs the store is a 503 with a JSON
            # error (the index, in PostgreSQL, still answers).
            status, body, headers = server.answer(f"/projects/{project.name}/runs/{run_id}/metrics/loss", token)
            assert (status, body["error"]["code"]) == (503, "unavailable"), body
            assert headers.get("Retry-After"), headers
            assert server.answer(f"/projects/{project.name}/runs/{run_id}", token)[0] == 200
            time.sleep(max(0.0, 8 - (time.monotonic() - stopped)))
            assert server.proc is not None and server.proc.poll() is None
            assert proc.poll() is None
        finally:
            # The same folder, on the same port.
            server.s3.start()
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        timing = json.loads(out.splitlines()[-1])
        assert timing["worst"] < 0.5, timing
        assert timing["trained"] < n / 100 * pause + 15, timing
        assert err.count("the server does not answer") == 1, err
        assert "not all on the server" not in err, err
        # A fresh reader finds every point once, and the journal (read back
        # from the S3 server) byte for byte.
        same_on_server(server, token, project, run_id, n)
        assert server.get(f"/projects/{project.name}/runs/{run_id}", token)["status"] == "finished"
        points = server.get(f"/projects/{project.name}/runs/{run_id}/metrics/loss?max_points=100000", token)
        assert (points["total"], points["downsampled"]) == (n, False)
        assert points["x"] == list(range(n))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


MANY = """
import sys, lab
n = int(sys.argv[1])
e = lab.Experiment("many")
with e.start_run():
    print(e.run_id, flush=True)
    for i in range(n):
        e.log_metric("loss", 1.0 / (i + 1), step=i)
"""


def test_sixteen_clients_of_100000_points_each_all_arrive_once(project: Path, server: Server, logged_in: str, monkeypatch) -> None:
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "120")
    n, clients = 100_000, 16
    (project / "many.py").write_text(textwrap.dedent(MANY))
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "many.py", str(n)],
            cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(clients)
    ]
    try:
        ids = [p.stdout.readline().strip() for p in procs]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            assert "server" not in err and "not all on" not in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    took = time.monotonic() - started
    print(f"{clients} clients x {n} points: all acknowledged after {took:.1f} s")
    assert len(set(ids)) == clients
    for run_id in ids:
        same_on_server(server, logged_in, project, run_id, n)
        assert server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)["status"] == "finished"


FORKS_WHILE_STREAMING = """
import json, os, sys, threading, time
from lab import _lab
from lab.experiment import Experiment

FORKS, CHURNERS = int(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()

def churn():
    # Team runs started and ended one after the other: each start hands the
    # run to the project's `lab-upload` thread, under the uploaders' lock.
    busy = Experiment("busy")
    while not stop.is_set():
        with busy.start_run():
            busy.log_metric("x", 1.0)

for _ in range(CHURNERS):
    threading.Thread(target=churn, daemon=True).start()
time.sleep(0.3)
hung = failed = 0
children = []
for i in range(FORKS):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child = Experiment("child")
        with child.start_run():
            child.log_metric("y", float(i))
        # Its run closed and all on the server, by a thread of its own.
        problems = _lab.wait_for_background() + _lab.finish_uploads()
        os.write(w, (child.run_id + "\\n").encode())
        if problems:
            print(problems, file=sys.stderr, flush=True)
        os._exit(1 if problems else 0)
    os.close(w)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            failed += status != 0
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.001)
    with os.fdopen(r) as f:
        children += f.read().split()
    if hung:
        break
stop.set()
print(json.dumps({"forks": i + 1, "hung": hung, "failed": failed, "children": children}), flush=True)
"""


def test_children_forked_while_team_runs_start_stream_their_own(project: Path, server: Server, logged_in: str) -> None:
    # A child forked while a thread of the parent held the uploaders' lock
    # (handing it a run) inherited the lock held, by a thread it does not
    # have: the first run it started waited for it forever. (The window is
    # narrow; the unit test in `team::stream` holds the lock at the fork.)
    proc = run_python(project, FORKS_WHILE_STREAMING, "60", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    children = out.pop("children")
    # A message of text is shown whole (a tuple's repr is cut short).
    assert out == {"forks": 60, "hung": 0, "failed": 0}, f"{out}\n{proc.stderr[-6000:]}"
    assert len(set(children)) == 60
    # Each child's run reached the server, ended.
    for run_id in children:
        assert server.get(f"/projects/{project.name}/runs/{run_id}", logged_in)["status"] == "finished"
