"""`lab import mlflow` against stores written by the real MLflow in the test:
a SQLite database, an `mlruns` folder and a tracking server started here.

Each store gets the same runs (see `WRITE`): a finished run with parameters,
tags, a metric history at chosen steps and times and artifacts (a file and a
folder), a failed run, a killed run, a run left running, and a run in a
second experiment. The test compares what Lab holds with what MLflow's own
client reads back from the store, point by point.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import lab_cli, run_python

import lab

WRITE = r"""
import json, os, sys
import mlflow
from mlflow.tracking import MlflowClient

uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("baseline")
os.makedirs("model", exist_ok=True)
open("model/weights.txt", "w").write("0.5 0.25")
open("notes.txt", "w").write("hello")
T0 = 1_790_000_000_000
with mlflow.start_run(run_name="good"):
    mlflow.log_params({"lr": 0.01, "batch": 32, "opt": "adam", "code": "007"})
    mlflow.set_tag("team", "vision")
    mlflow.set_tag("mlflow.source.git.commit", "abc123")
    for i, step in enumerate([0, 1, 2, 5, 5]):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=step, timestamp=T0 + 1000 * step)
    mlflow.log_metric("val/acc", float("nan"), step=3, timestamp=T0 + 3500)
    mlflow.log_artifact("notes.txt")
    mlflow.log_artifacts("model", artifact_path="model")
try:
    with mlflow.start_run(run_name="bad"):
        mlflow.log_metric("acc", 0.5, step=0)
        raise RuntimeError("boom")
except RuntimeError:
    pass
with mlflow.start_run(run_name="stopped"):
    mlflow.log_metric("acc", 0.1, step=0)
    mlflow.end_run(status="KILLED")
client = MlflowClient()
live = client.create_run(mlflow.get_experiment_by_name("baseline").experiment_id, run_name="live")
client.log_metric(live.info.run_id, "acc", 0.2, step=0)
mlflow.set_experiment("other")
with mlflow.start_run(run_name="elsewhere"):
    mlflow.log_param("seed", 1)

out = {}
for exp in client.search_experiments():
    for run in client.search_runs([exp.experiment_id]):
        info = run.info
        out[info.run_id] = {
            "experiment_id": exp.experiment_id,
            "experiment": exp.name,
            "name": info.run_name,
            "status": info.status,
            "start": info.start_time,
            "end": info.end_time,
            "params": run.data.params,
            "tags": run.data.tags,
            "metrics": {
                key: [(m.step, m.value, m.timestamp) for m in client.get_metric_history(info.run_id, key)]
                for key in run.data.metrics
            },
        }
json.dump(out, open("expected.json", "w"))
"""

STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "interrupted", "RUNNING": "crashed"}


def write_store(folder: Path, uri: str, env: dict | None = None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "write.py"
    script.write_text(WRITE)
    proc = subprocess.run(
        [sys.executable, str(script), uri],
        cwd=folder,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "expected.json").read_text())


def imported() -> dict:
    """The project's imported runs, by MLflow run id."""
    return {r.attrs["imported_from"].split("/")[-1]: r for r in lab.runs() if "imported_from" in r.attrs}


def check_runs(expected: dict, artifacts: bool = True) -> None:
    runs = imported()
    assert sorted(runs) == sorted(expected)
    for run_id, want in expected.items():
        run = runs[run_id]
        assert run.attrs["imported_from"] == f"mlflow:{want['experiment_id']}/{run_id}"
        assert run.experiment == want["experiment"]
        assert run.status == STATUS[want["status"]], (want["name"], run.status)
        assert run.start_time.timestamp() * 1000 == pytest.approx(want["start"], abs=1)
        if want["status"] == "RUNNING":
            assert run.end_time is None
        else:
            assert run.end_time.timestamp() * 1000 == pytest.approx(want["end"], abs=1)
        # Parameters: numbers spelled as numbers become numbers.
        for key, text in want["params"].items():
            value = run.params[key]
            if isinstance(value, str):
                assert value == text
            else:
                assert str(value) == text, (key, value, text)
        tags = dict(want["tags"])
        if "mlflow.source.name" in tags:
            assert run.source == tags.pop("mlflow.source.name")
        if "mlflow.user" in tags:
            assert run.user == tags.pop("mlflow.user")
        if "mlflow.source.git.commit" in tags:
            assert run.git_commit == tags.pop("mlflow.source.git.commit")
        assert run.tags == tags
        assert sorted(run.metrics) == sorted(want["metrics"])
        for key, points in want["metrics"].items():
            got = sorted(run.metric_history(key), key=lambda p: (p[1], p[0], p[2]))
            assert len(got) == len(points), key
            for (step, ts, value), (wstep, wvalue, wts) in zip(got, sorted(points, key=lambda p: (p[2], p[0], p[1]))):
                assert step == wstep
                assert ts * 1000 == pytest.approx(wts, abs=0.01)
                assert value == wvalue or (value != value and wvalue != wvalue)
    good = next(runs[i] for i, w in expected.items() if w["name"] == "good")
    assert good.params["lr"] == 0.01 and good.params["batch"] == 32 and good.params["code"] == "007"
    assert [s for s, _, _ in good.metric_history("loss")] == [0, 1, 2, 5, 5]
    if artifacts:
        files = good.artifacts
        assert sorted(files) == ["model", "notes.txt"]
        assert Path(files["notes.txt"]).read_text() == "hello"
        assert (Path(files["model"]) / "weights.txt").read_text() == "0.5 0.25"


def import_twice(project: Path, uri: str, expected: dict) -> None:
    first = lab_cli(project, "import", "mlflow", uri, timeout=300)
    assert first.returncode == 0, first.stderr
    assert f"Imported {len(expected)} run(s)" in first.stdout, first.stdout
    again = lab_cli(project, "import", "mlflow", uri, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"Imported 0 run(s) (0 metric point(s)), replaced 0, skipped {len(expected)} already here, 0 failed" in again.stdout
    assert len(lab.runs()) == len(expected)


def test_sqlite_database(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "mlflow"
    uri = f"sqlite:///{store}/mlflow.db"
    expected = write_store(store, uri)
    assert {w["status"] for w in expected.values()} == {"FINISHED", "FAILED", "KILLED", "RUNNING"}
    dry = lab_cli(project, "import", "mlflow", uri, "--dry-run", timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert f"Would import {len(expected)} run(s)" in dry.stdout
    assert not (project / ".lab" / "runs").exists() or not any((project / ".lab" / "runs").iterdir())
    import_twice(project, uri, expected)
    check_runs(expected)


def test_one_experiment(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "mlflow"
    uri = f"sqlite:///{store}/mlflow.db"
    expected = write_store(store, uri)
    proc = lab_cli(project, "import", "mlflow", uri, "--experiment", "other", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [r.experiment for r in lab.runs()] == ["other"]
    wrong = lab_cli(project, "import", "mlflow", uri, "--experiment", "nope")
    assert wrong.returncode == 1
    assert "`--experiment` names no experiment of the MLflow store: got `nope`" in wrong.stderr
    assert "`baseline`" in wrong.stderr


def test_a_run_that_ends_after_its_import_is_imported_again(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "mlflow"
    uri = f"sqlite:///{store}/mlflow.db"
    expected = write_store(store, uri)
    assert lab_cli(project, "import", "mlflow", uri, timeout=300).returncode == 0
    live_id = next(i for i, w in expected.items() if w["name"] == "live")
    old = imported()[live_id]
    assert old.status == "crashed"
    run_python(
        store,
        f"""
        import mlflow
        from mlflow.tracking import MlflowClient
        mlflow.set_tracking_uri({uri!r})
        MlflowClient().set_terminated({live_id!r}, status="FINISHED")
        """,
        check=True,
        timeout=300,
    )
    proc = lab_cli(project, "import", "mlflow", uri, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "replaced 1" in proc.stdout
    runs = imported()
    assert runs[live_id].status == "finished"
    assert runs[live_id].short_id != old.short_id
    assert len(lab.runs()) == len(expected)


def test_mlruns_folder(project: Path, tmp_path: Path) -> None:
    # MLflow 3 writes its file store only when asked to.
    store = tmp_path / "files"
    expected = write_store(store, f"file://{store}/mlruns", {"MLFLOW_ALLOW_FILE_STORE": "true"})
    import_twice(project, str(store / "mlruns"), expected)
    check_runs(expected)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    folder = tmp_path / "server"
    folder.mkdir()
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
            "--artifacts-destination", str(folder / "artifacts"),
            "--workers", "1",
        ],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, (folder / "server.log").read_text()[-3000:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        raise AssertionError("mlflow server did not start: " + (folder / "server.log").read_text()[-3000:])
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    log.close()


def test_tracking_server(project: Path, tmp_path: Path, server: str) -> None:
    expected = write_store(tmp_path / "client", server)
    import_twice(project, server, expected)
    check_runs(expected)


def test_wrong_uris_say_what_is_wrong(project: Path, tmp_path: Path) -> None:
    missing = lab_cli(project, "import", "mlflow", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 1
    assert "is not an MLflow database Lab can read: there is no such file" in missing.stderr
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    not_mlflow = lab_cli(project, "import", "mlflow", f"sqlite:///{other}")
    assert not_mlflow.returncode == 1
    assert "it has no `experiments` table" in not_mlflow.stderr
    folder = lab_cli(project, "import", "mlflow", str(tmp_path))
    assert folder.returncode == 1
    assert "is not an MLflow store Lab can read: it holds no experiment folder" in folder.stderr
    down = lab_cli(project, "import", "mlflow", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1
    assert "is not an MLflow tracking server Lab can read" in down.stderr
    assert "is `mlflow server` running there?" in down.stderr
    scheme = lab_cli(project, "import", "mlflow", "postgresql://db/mlflow")
    assert scheme.returncode == 1
    assert "mlflow server --backend-store-uri" in scheme.stderr
    # Nothing was made: not even the project.
    assert not (project / ".lab").exists()
