"""The team client with no server to talk to: a server that is down costs
training nothing, is said once, and leaves the runs for `lab sync`.

(With the real `lab server`, see tests/test_team_stream.py.)"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

from conftest import lab_cli, run_python

TRAIN = """
import sys, time, lab
e = lab.Experiment("train")
with e.start_run():
    run_id = e.run_id
    for i in range(int(sys.argv[1])):
        e.log_metric("loss", 1.0 / (i + 1), step=i)
    time.sleep(float(sys.argv[2]))
print(run_id)
"""


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_costs_training_nothing_and_is_said_once(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("LAB_SERVER", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("LAB_TOKEN", "some-token")
    monkeypatch.setenv("LAB_UPLOAD_GRACE_SECS", "1")
    started = time.monotonic()
    proc = run_python(project, TRAIN, "5000", "3", check=True)
    took = time.monotonic() - started
    # Every point is kept locally, as without a server.
    run_id = proc.stdout.strip()
    count = run_python(project, "import lab, sys; print(len(lab.get_run(sys.argv[1]).metric_history('loss')))", run_id, check=True)
    assert count.stdout.strip() == "5000"
    # Backed off for three seconds of training: said once, not per try.
    assert proc.stderr.count("the server does not answer") == 1, proc.stderr
    assert "training goes on" in proc.stderr
    # The grace at exit is the one asked for, and what is left is named.
    assert took < 3 + 1 + 5, took
    assert "`lab sync` sends the rest" in proc.stderr, proc.stderr
    # What the server acknowledged (nothing) is kept in the run's folder.
    state = json.loads((project / ".lab" / "runs" / run_id[:8] / "upload.json").read_text())
    assert state["acked"] == 0 and not state["done"]
    # `lab sync` gives up after a few tries and says where it tried.
    synced = lab_cli(project, "sync")
    assert synced.returncode == 1
    assert "cannot reach the server" in synced.stderr
    assert os.environ["LAB_SERVER"] in synced.stderr


def test_login_refuses_bad_input_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    config = tmp_path / "config" / "lab"
    for url, expect in [
        ("lab.example:8080", "must start with `http://` or `https://`"),
        ("http://u:p@h:1", "credentials do not belong in it"),
    ]:
        proc = lab_cli(project, "login", url, "--token-stdin")
        assert proc.returncode == 1, proc.stderr
        assert f"got `{url}`" in proc.stderr and expect in proc.stderr, proc.stderr
    proc = lab_cli(project, "login", f"http://127.0.0.1:{closed_port()}", "--token-stdin")
    assert proc.returncode == 1
    # Without a terminal and without --token-stdin, no prompt hangs.
    assert not config.exists()


def test_logout_without_login_and_sync_without_server(project: Path) -> None:
    proc = lab_cli(project, "logout")
    assert proc.returncode == 0 and "Not logged in" in proc.stdout
    run_python(project, TRAIN, "3", "0", check=True)
    proc = lab_cli(project, "sync")
    assert proc.returncode == 1
    assert "no team server" in proc.stderr and "`lab login URL`" in proc.stderr
    # No server named: nothing was written into the run.
    assert not list((project / ".lab" / "runs").glob("*/upload.json"))


def test_a_damaged_server_file_is_named_and_training_goes_on(project: Path, tmp_path: Path) -> None:
    config = tmp_path / "config" / "lab"
    config.mkdir(parents=True)
    (config / "server.json").write_text("{")
    os.chmod(config / "server.json", stat.S_IRUSR | stat.S_IWUSR)
    proc = run_python(project, TRAIN, "10", "0", check=True)
    assert proc.stderr.count("runs are not sent to the server") == 1, proc.stderr
    assert str(config / "server.json") in proc.stderr
