"""One run, three surfaces: `lab ls --format json`, the dicts of the Python
reader (`lab._lab.list_runs` / `lab._lab.get_run`, under `lab.runs()` and
`lab.get_run()`) and the HTTP API (`GET /api/v1/runs`, `GET /api/v1/runs/{id}`)
give the same fields with the same values, all being built from the same
wire types (`lab_store::wire`).

Where a surface spells a value its own way, the test reads it back first:
JSON writes times as ISO 8601 text and NaN and infinities as strings, Python
keeps nanoseconds and floats. Where a surface has a field the others lack,
the test says which and why (see `ONLY`).
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import lab_cli, lab_env, run_python

# Fields one surface has and another lacks, and why.
ONLY = {
    # `lab ls --format json` has never shown who ran a run, where, or for how
    # long; the runs list of the HTTP API (the runs page) does.
    "http_summary": {"duration_s", "host", "user"},
    # The Python dict carries what `lab.Run` reads and nothing it does not:
    # every attribute as recorded (the HTTP API's `attrs` holds only those
    # without a field of their own), the run's folder, the parameters kept as
    # their str(), whether it was read whole and whether from the team
    # server; it leaves out the fields that
    # show an attribute in a form of their own, and the duration (Run has the
    # times).
    "python": {"run_dir", "stringified_params", "full", "remote"},
    "python_lacks": {"argv", "dataset", "duration_s", "git", "group", "host", "packages", "parent", "pid", "python", "source", "user"},
}


def iso(nanos: int | None) -> str | None:
    """Nanoseconds as the JSON surfaces write them: microseconds, a `Z`."""
    if nanos is None:
        return None
    secs, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"


def plain(value):
    """A JSON value with NaN and infinities read back as floats, for comparing
    with Python's values (NaN compares by a marker, as NaN != NaN)."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value.replace("Infinity", "inf"))
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def surfaces(project: Path):
    run_python(
        project,
        """
        from lab.experiment import Experiment
        e = Experiment("surfaces", dataset={"name": "iris", "rows": 150})
        with e.start_run():
            e.log_parameters({"lr": 0.1, "depth": 3, "layers": [64, 32, None], "ratio": float("nan"), "on": True, "opt": {"b": 1, "a": "x"}, "name": "forest"})
            e.log_metric("loss", 0.5, step=0)
            e.log_metric("loss", 0.25, step=1)
            e.log_metric("peak", float("inf"))
            e.log_metric("gap", float("nan"))
            e.set_tag("team", "vision")
            e.set_tag("stage", "try")
            e.log_features(["petal", "sepal"])
        try:
            with e.start_run(group="sweep", parent=e.run_id):
                e.log_parameter("depth", 5)
                raise ValueError("broken")
        except ValueError:
            pass
        """,
        check=True,
    )
    cli = json.loads(lab_cli(project, "ls", "--format", "json").stdout)
    python = json.loads(
        run_python(
            project,
            """
            import json, math
            from lab import _lab
            def plain(v):
                if isinstance(v, float) and math.isnan(v): return "<nan>"
                if isinstance(v, float) and math.isinf(v): return "<inf>" if v > 0 else "<-inf>"
                if isinstance(v, (list, tuple)): return [plain(x) for x in v]
                if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
                return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
            listed = _lab.list_runs()
            print(json.dumps({"listed": plain(listed), "one": [plain(_lab.get_run(d["id"])) for d in listed]}))
            """,
            check=True,
        ).stdout
    )
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "lab"), "ui", "--port", str(port)],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                listed = json.loads(urllib.request.urlopen(base + "/runs", timeout=2).read())
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "lab ui did not start"
                time.sleep(0.05)
        details = {r["id"]: json.loads(urllib.request.urlopen(f"{base}/runs/{r['id']}", timeout=10).read()) for r in listed["runs"]}
    finally:
        server.terminate()
        server.wait(timeout=10)
    return cli, python, listed["runs"], details


def from_python(value):
    """Python's markers for special floats, as `plain` writes them."""
    return {"<inf>": math.inf, "<-inf>": -math.inf}.get(value, value) if isinstance(value, str) else value


def python_value(value):
    if isinstance(value, list):
        return [python_value(v) for v in value]
    if isinstance(value, dict):
        return {k: python_value(v) for k, v in value.items()}
    return from_python(value)


def test_every_surface_gives_the_same_runs(surfaces) -> None:
    cli, python, http_list, http_detail = surfaces
    ids = [r["id"] for r in cli]
    assert len(ids) == 2
    assert ids == [d["id"] for d in python["listed"]] == [r["id"] for r in http_list], "the same runs, newest first"
    for row, py, py_one, summary in zip(cli, python["listed"], python["one"], http_list):
        detail = http_detail[row["id"]]
        # The fields of a listing: the CLI's are the HTTP API's, less three.
        assert set(summary) - set(row) == ONLY["http_summary"]
        for key in row:
            assert plain(row[key]) == plain(summary[key]), key
        # The detail repeats every field of the summary but the metrics, which are summaries there.
        for key in summary:
            if key != "metrics":
                assert plain(detail[key]) == plain(summary[key]), key
        assert {m["name"]: m["last"] for m in detail["metrics"]} == summary["metrics"]
        # Python: the detail's fields, less those it reads from `attrs`, with its own.
        for d in (py, py_one):
            assert set(d) == (set(detail) - ONLY["python_lacks"]) | ONLY["python"], sorted(set(d) ^ set(detail))
            for key in ("id", "short_id", "experiment", "status", "damage", "error", "features", "tags"):
                assert plain(python_value(d[key])) == plain(detail[key]), key
            assert [iso(d["start_time"]), iso(d["end_time"])] == [detail["start_time"], detail["end_time"]]
            assert plain(python_value(d["params"])) == plain(detail["params"])
            # Metrics: (name, last, last_step, min, max, count), as `lab.Run` reads them.
            assert [plain(python_value(m)) for m in d["metrics"]] == [
                plain([m["name"], m["last"], m["last_step"], m["min"], m["max"], m["count"]]) for m in detail["metrics"]
            ]
            # Every attribute, as recorded: the HTTP API's fields of their own come from these.
            attrs = python_value(d["attrs"])
            for key in ("source", "user", "host", "group", "parent"):
                assert attrs.get(key) == detail[key], key
            assert attrs.get("dataset") == detail["dataset"]
        assert py["full"] is False and py_one["full"] is True
        assert py_one["artifacts"] == detail["artifacts"] == []
        assert {k: v for k, v in python_value(py_one["attrs"]).items() if k in detail["attrs"]} == plain(detail["attrs"])


def test_the_run_has_what_was_logged(surfaces) -> None:
    cli, python, http_list, http_detail = surfaces
    failed, finished = cli
    assert finished["params"] == {
        "lr": 0.1,
        "depth": 3,
        "layers": [64, 32, None],
        "ratio": "NaN",
        "on": True,
        "opt": {"b": 1, "a": "x"},
        "name": "forest",
    }
    assert finished["metrics"] == {"loss": 0.25, "peak": "Infinity", "gap": "NaN"}
    assert finished["tags"] == {"stage": "try", "team": "vision"}
    assert failed["status"] == "failed" and failed["params"] == {"depth": 5}
    error = http_detail[failed["id"]]["error"]
    assert (error["type"], error["message"]) == ("ValueError", "broken")
    assert "Traceback" in error["traceback"]
    assert python["one"][0]["error"] == error
    # Orders: the CLI and Python keep the order params and metrics were
    # logged in; the HTTP API gives them (and the keys of dicts inside
    # values) in name order, as the run page lists them.
    assert list(finished["params"]) == ["lr", "depth", "layers", "ratio", "on", "opt", "name"]
    assert list(python["listed"][1]["params"]) == list(finished["params"])
    assert list(http_list[1]["params"]) == sorted(finished["params"])
    assert list(http_list[1]["params"]["opt"]) == ["a", "b"]
    assert list(http_list[1]["metrics"]) == sorted(finished["metrics"])
