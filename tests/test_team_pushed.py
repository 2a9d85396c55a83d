"""A `lab server` on the bucket that `lab push` sends to lists the pushed
projects too: one truth, the bucket. Real PostgreSQL, a real S3 server
(s3s-fs) and `lab server`, started by the test; the runs reach the server
only by `lab push`, and read back with `lab ls --remote` as they read
locally."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import lab_env
from docs_scenario import S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, S3Server
from team_server import Server

LAB = str(Path(sys.executable).parent / "lab")

TRAIN = """
import sys, lab
e = lab.Experiment("pushed")
for depth in [int(d) for d in sys.argv[1:]]:
    with e.start_run():
        e.log_parameters({"max_depth": depth})
        for step in range(30):
            e.log_metric("loss", 1.0 / (step + depth), step=step)
        e.log_artifact("notes", "notes.txt")
        e.log_model("model", {"depth": depth})
"""


@pytest.fixture
def team(tmp_path: Path):
    folder = Path(tempfile.mkdtemp(prefix="lab-team-pushed-"))
    os.chmod(folder, 0o755)
    s3 = S3Server(tmp_path)
    aws = {
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_ENDPOINT_URL": f"http://{s3.address}",
    }
    server = Server(folder, artifacts=f"s3://{S3_BUCKET}", env=aws, args=["--scan-pushed", "1"])
    project = tmp_path / "home" / f"pushed-{os.getpid()}"
    project.mkdir(parents=True)
    # The runs are made with no server: they reach it only by `lab push`.
    env = dict(lab_env(project), XDG_CONFIG_HOME=str(tmp_path / "config"), LAB_SERVER="", LAB_TOKEN="")
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    (project / "notes.txt").write_text("what was tried\n")
    configured = lab(env, project, "config", "minio", "--tag", "team", "--endpoint", s3.address,
                     "--accesskey", S3_ACCESS_KEY, "--secretkey", S3_SECRET_KEY)
    assert configured.returncode == 0, configured.stderr
    reader = dict(env, LAB_SERVER=server.url, LAB_TOKEN=server.token("reader", role="reader"))
    yield server, s3, project, env, reader
    server.close()
    s3.stop()
    shutil.rmtree(folder, ignore_errors=True)


def lab(env: dict, project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def train(env: dict, project: Path, *depths: int) -> None:
    proc = subprocess.run([sys.executable, "train.py", *map(str, depths)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr


def remote_matches_local(env: dict, reader: dict, project: Path, runs: int) -> list:
    """Waits until `lab ls --remote` gives what `lab ls` gives, with `runs` runs."""
    local = lab(env, project, "ls", "--format", "json")
    assert local.returncode == 0, local.stderr
    rows = json.loads(local.stdout)
    assert len(rows) == runs
    deadline = time.monotonic() + 30
    while True:
        remote = lab(reader, project, "ls", "--remote", "--format", "json")
        if remote.returncode == 0 and json.loads(remote.stdout) == rows:
            return rows
        assert time.monotonic() < deadline, f"the server does not show the pushed runs:\n{remote.stdout}{remote.stderr}"
        time.sleep(0.5)


def test_a_pushed_project_is_listed_by_the_server_on_its_bucket(team) -> None:
    server, _, project, env, reader = team
    train(env, project, 2, 5)
    pushed = lab(env, project, "push", "--tag", "team", "--bucket", S3_BUCKET, ".")
    assert pushed.returncode == 0, pushed.stderr
    rows = remote_matches_local(env, reader, project, 2)
    assert {r["status"] for r in rows} == {"finished"}
    projects = [p["name"] for p in server.get("/projects", reader["LAB_TOKEN"])["projects"]]
    assert project.name in projects

    # Each run's artifacts and models are its files on the server, each
    # readable by its hash, with the bytes of the project's copy.
    run = rows[0]
    files = server.get(f"/projects/{project.name}/runs/{run['id']}/files", reader["LAB_TOKEN"])["files"]
    folder = project / ".lab" / "runs" / run["id"][:8]
    local = sorted(
        str(p.relative_to(folder))
        for top in ("artifacts", "models")
        for p in (folder / top).rglob("*")
        if p.is_file() and not (top == "models" and p.name.startswith("."))
    )
    assert [f["path"] for f in files] == local and local
    for f in files:
        data = (folder / f["path"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
        request = urllib.request.Request(
            f"{server.url}/api/v1/blobs/{f['sha256']}", headers={"Authorization": f"Bearer {reader['LAB_TOKEN']}"}
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.read() == data

    # A run made later and pushed again arrives too; the earlier ones stay as
    # they were, each once.
    train(env, project, 9)
    again = lab(env, project, "push", "--tag", "team", "--bucket", S3_BUCKET, ".")
    assert again.returncode == 0, again.stderr
    rows = remote_matches_local(env, reader, project, 3)
    assert [r["params"]["max_depth"] for r in rows].count(9) == 1


def test_a_pushed_run_also_streamed_is_one_run_and_a_bad_manifest_hurts_nothing(team) -> None:
    server, s3, project, env, reader = team
    writer = server.token("writer")
    streamed = dict(env, LAB_SERVER=server.url, LAB_TOKEN=writer)
    train(streamed, project, 3)
    synced = lab(streamed, project, "sync")
    assert synced.returncode == 0, synced.stderr
    train(env, project, 4)
    # Hostile neighbours in the bucket: a manifest that is not JSON, one
    # naming a run by a bad id and a journal of other bytes, a project named
    # as a folder of the server's own.
    for name, text in [
        ("garbage", "{ not json"),
        ("bad-run", json.dumps({"format": 1, "project": "bad-run", "files": [
            {"path": ".lab/runs/0123abcd/journal.lab", "size": 10, "sha256": "0" * 64, "mode": 420}],
            "dirs": [], "runs": {"0123abcd": "../../../etc"}})),
    ]:
        (s3.root / S3_BUCKET / name).mkdir()
        (s3.root / S3_BUCKET / name / "manifest.json").write_text(text)
    pushed = lab(env, project, "push", "--tag", "team", "--bucket", S3_BUCKET, ".")
    assert pushed.returncode == 0, pushed.stderr
    remote_matches_local(env, reader, project, 2)
    projects = [p["name"] for p in server.get("/projects", reader["LAB_TOKEN"])["projects"]]
    assert "garbage" not in projects and "bad-run" not in projects
    assert server.proc is not None and server.proc.poll() is None
    log = Path(server.log.name).read_text()
    assert "the manifest of pushed project `garbage` is not one `lab push` writes" in log
    assert "pushed project `bad-run` names run `0123abcd` by `../../../etc`, not a full run id" in log
