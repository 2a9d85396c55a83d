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


KILLED = LOG.replace("print(e.run_id)", "").replace(
    "with e.start_run():", "import os, signal\nwith e.start_run():\n    print(e.run_id, flush=True)"
) + "\n    os.kill(os.getpid(), signal.SIGKILL)\n"


def killed_run(project: Path) -> str:
    """A run whose process was killed once it logged: its journal is whole,
    with no series file (as runs of Labs before series files)."""
    proc = run_python(project, KILLED)
    assert proc.returncode == -9, proc.stderr
    return proc.stdout.split()[0]


def on_disk(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_readers_answer_the_same_from_the_journal_and_from_the_series_file(project: Path) -> None:
    run_id = killed_run(project)
    folder = project / ".lab" / "runs" / run_id[:8]
    series, journal = folder / "series.lab", folder / "journal.lab"
    truth = read_all(run_id)
    assert not series.exists()
    assert len(truth["loss"]) == 30_000 and len(truth["odd"]) == 10_000
    assert struct.pack("<d", -0.0) in {v for _, _, v in truth["odd"]}
    show = lab_cli(project, "show", run_id[:8]).stdout
    with lab_ui(project) as base:
        served = series_json(base, run_id)
    whole = on_disk(journal)

    gc = lab_cli(project, "gc")
    assert gc.returncode == 0, gc.stderr
    assert f"Wrote the series file of run `{run_id[:8]}` (40000 points" in gc.stdout, gc.stdout
    assert f"of run `{run_id[:8]}`'s journal, whose points its series file holds" in gc.stdout
    assert (folder / "journal.lab.holes").exists()
    assert on_disk(journal) * 5 < whole, (on_disk(journal), whole)
    assert on_disk(journal) + on_disk(series) < 12 * 40_000, "under 12 bytes a point at rest"
    assert read_all(run_id) == truth
    assert lab_cli(project, "show", run_id[:8]).stdout == show
    with lab_ui(project) as base:
        assert series_json(base, run_id) == served
    doctor = lab_cli(project, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    # Damaged: a byte flipped in the middle, or the file cut short. What the
    # damage touches is lost, the rest is read, and `lab doctor` says it.
    good = series.read_bytes()
    middle = len(good) // 2
    for damaged in (good[:middle] + bytes([good[middle] ^ 1]) + good[middle + 1 :], good[:-1]):
        series.write_bytes(damaged)
        got = read_all(run_id)
        assert sum(map(len, got.values())) < sum(map(len, truth.values()))
        for name in truth:
            kept = iter(truth[name])
            assert all(point in kept for point in got[name]), "what is read is the run's, in order"
        assert lab_cli(project, "show", run_id[:8]).returncode == 0
        doctor = lab_cli(project, "doctor")
        assert doctor.returncode == 1, doctor.stdout
        assert "series.lab" in doctor.stdout, doctor.stdout
    series.write_bytes(good)
    assert read_all(run_id) == truth


def test_a_run_that_ends_gives_its_points_pages_back(project: Path) -> None:
    run_id = run_python(project, LOG, check=True).stdout.split()[-1]
    folder = project / ".lab" / "runs" / run_id[:8]
    journal = folder / "journal.lab"
    assert (folder / "series.lab").exists(), "the run's end wrote its series file"
    assert (folder / "journal.lab.holes").exists(), "and gave back its journal's pages of points"
    assert on_disk(journal) * 5 < journal.stat().st_size
    got = read_all(run_id)
    assert len(got["loss"]) == 30_000 and len(got["odd"]) == 10_000
    assert lab_cli(project, "gc").stdout.strip() == "Nothing to clean up"


def test_lab_gc_writes_the_series_file_of_an_ended_run_without_one(project: Path) -> None:
    run_id = killed_run(project)
    folder = project / ".lab" / "runs" / run_id[:8]
    series = folder / "series.lab"
    truth = read_all(run_id)
    # Killed writers' temporary files.
    leftovers = [folder / ".series.lab.999999-0.tmp", folder / ".journal.lab.holes.999999-0.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"\0" * 100)
    dry = lab_cli(project, "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Would write the series file of run `{run_id[:8]}`" in dry.stdout
    assert f"Would give back the pages of run `{run_id[:8]}`'s journal" in dry.stdout
    assert not series.exists() and not (folder / "journal.lab.holes").exists()
    proc = lab_cli(project, "gc")
    assert proc.returncode == 0, proc.stderr
    assert f"Wrote the series file of run `{run_id[:8]}` (40000 points" in proc.stdout, proc.stdout
    assert proc.stdout.count("Removed an orphaned temporary file") == 2, proc.stdout
    assert not any(leftover.exists() for leftover in leftovers)
    assert read_all(run_id) == truth
    assert lab_cli(project, "gc").stdout.strip() == "Nothing to clean up"


BIG = """
from lab.experiment import Experiment
import os, signal
e = Experiment("series")
with e.start_run():
    print(e.run_id, flush=True)
    for i in range(300_000):
        e.log_metric("loss", 1.0 / (1 + i), step=i)
        if i % 50_000 == 0:
            print("epoch", i)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_lab_gc_killed_at_any_instant_loses_no_point(project: Path) -> None:
    import subprocess
    import sys
    import time

    from conftest import lab_env, stop

    proc = run_python(project, BIG, timeout=300)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.split()[0]
    folder = project / ".lab" / "runs" / run_id[:8]
    run = lab.get_run(run_id)
    truth = run.metric_history("loss")
    assert len(truth) == 300_000
    exe = str(Path(sys.executable).parent / "lab")
    journal, series, holes = folder / "journal.lab", folder / "series.lab", folder / "journal.lab.holes"
    whole = journal.read_bytes()

    def restore() -> None:
        journal.write_bytes(whole)
        for path in (series, holes):
            path.unlink(missing_ok=True)

    # How long a whole `lab gc` takes here, to kill the others inside it.
    began = time.monotonic()
    assert lab_cli(project, "gc").returncode == 0
    took = time.monotonic() - began
    assert holes.exists()
    states = set()
    rounds = 20
    for round in range(rounds):
        restore()
        gc = subprocess.Popen([exe, "gc"], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # From the start of the command to well past its end, evenly.
        time.sleep(1.5 * took * round / (rounds - 1))
        gc.kill()
        stop(gc)
        states.add((series.exists(), holes.exists(), on_disk(journal) * 5 < len(whole)))
        assert lab.get_run(run_id).metric_history("loss") == truth, f"round {round}"
        doctor = lab_cli(project, "doctor")
        assert doctor.returncode == 0, f"round {round}: {doctor.stdout}"
    # Killed before the pages went (with or without the series file), and
    # after.
    assert states & {(False, False, False), (True, False, False), (True, True, False)}, states
    assert (True, True, True) in states, states
    done = lab_cli(project, "gc")
    assert done.returncode == 0, done.stderr
    assert (folder / "journal.lab.holes").exists()
    assert on_disk(folder / "journal.lab") * 5 < (folder / "journal.lab").stat().st_size
    assert lab.get_run(run_id).metric_history("loss") == truth
    assert lab_cli(project, "gc").stdout.strip() == "Nothing to clean up"
