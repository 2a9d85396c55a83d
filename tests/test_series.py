"""A run's series file (`series.lab`): written when a long run ends, read by
`metric_history`, `lab show` and `lab ui`'s series endpoint with the same
answers as the journal gives, and left aside when it is damaged or stale."""

from __future__ import annotations

import json
import struct
import urllib.request
from pathlib import Path

from conftest import lab_cli, run_python
from test_ui_browser import lab_ui

import lab

LOG = """
import math
from lab.experiment import Experiment
e = Experiment("series")
odd = [float("nan"), -0.0, float("inf"), float("-inf"), 5e-324]
with e.start_run():
    for i in range(30_000):
        e.log_metric("loss", 1.0 / (1 + i * 1e-4) + 0.01 * math.sin(i), step=i)
        if i % 3 == 0:
            e.log_metric("odd", odd[i % 5], step=(30_000 - i) * 1_000_003)
print(e.run_id)
"""


def bits(history: list) -> list:
    return [(s, t, struct.pack("<d", v)) for s, t, v in history]


def read_all(run_id: str) -> dict:
    run = lab.get_run(run_id)
    return {name: bits(run.metric_history(name)) for name in ("loss", "odd")}


def series_json(base: str, run_id: str) -> list:
    out = []
    for name in ("loss", "odd"):
        for query in ("max_points=100000", "max_points=50", "max_points=50&x=time"):
            with urllib.request.urlopen(f"{base}/api/v1/runs/{run_id}/metrics/{name}?{query}", timeout=60) as r:
                out.append(json.load(r))
    return out


def test_readers_answer_the_same_with_and_without_the_series_file(project: Path) -> None:
    run_id = run_python(project, LOG, check=True).stdout.split()[-1]
    folder = project / ".lab" / "runs" / run_id[:8]
    series = folder / "series.lab"
    assert series.exists(), "the run's end wrote its series file"
    from_file = read_all(run_id)
    assert len(from_file["loss"]) == 30_000 and len(from_file["odd"]) == 10_000
    assert struct.pack("<d", -0.0) in {v for _, _, v in from_file["odd"]}
    show = lab_cli(project, "show", run_id[:8]).stdout
    with lab_ui(project) as base:
        served = series_json(base, run_id)
    good = series.read_bytes()

    series.unlink()
    assert read_all(run_id) == from_file, "the journal's answer"
    assert lab_cli(project, "show", run_id[:8]).stdout == show
    with lab_ui(project) as base:
        assert series_json(base, run_id) == served

    # Damaged: a byte flipped in the middle, or the file cut short.
    for damaged in (good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 1]) + good[len(good) // 2 + 1 :], good[:-1]):
        series.write_bytes(damaged)
        assert read_all(run_id) == from_file
        assert lab_cli(project, "show", run_id[:8]).stdout == show


def test_lab_gc_writes_the_series_file_of_an_ended_run_without_one(project: Path) -> None:
    run_id = run_python(project, LOG, check=True).stdout.split()[-1]
    series = project / ".lab" / "runs" / run_id[:8] / "series.lab"
    good = series.read_bytes()
    series.unlink()
    # A killed writer's temporary file.
    leftover = series.parent / ".series.lab.999999-0.tmp"
    leftover.write_bytes(good[:100])
    dry = lab_cli(project, "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Would write the series file of run `{run_id[:8]}`" in dry.stdout
    assert not series.exists()
    proc = lab_cli(project, "gc")
    assert proc.returncode == 0, proc.stderr
    assert f"Wrote the series file of run `{run_id[:8]}` (40000 points" in proc.stdout, proc.stdout
    assert "Removed an orphaned temporary file" in proc.stdout
    assert not leftover.exists()
    assert series.read_bytes() == good, "the same file as the run's end wrote"
    assert lab_cli(project, "gc").stdout.strip() == "Nothing to clean up"
