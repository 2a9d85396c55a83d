"""The project folder as people leave it: a damaged or newer `project.json`
marker, run folders deleted by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lab
from conftest import lab_cli, lab_env, wait_background
from lab.experiment import Experiment


def _one_run(name: str = "marker") -> str:
    e = Experiment(name)
    with e.start_run():
        e.log_metric("loss", 0.5)
    wait_background()
    assert e.run_id is not None
    return e.run_id


GARBAGE = [
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b"\x00\xff garbage", "not JSON", id="binary"),
    pytest.param(b"[1, 2]", "not a JSON object", id="array"),
    pytest.param(b'{"created_nanos": 1}', "`format`", id="no-format"),
    pytest.param(b'{"format": "1"}', "`format`", id="format-text"),
    pytest.param(b'{"format": 0}', "`format`", id="format-zero"),
]


@pytest.mark.parametrize("body, problem", GARBAGE)
def test_a_garbage_marker_is_refused_by_every_entry_point(project: Path, body: bytes, problem: str) -> None:
    _one_run()
    marker = project / ".lab" / "project.json"
    marker.write_bytes(body)
    runs_before = sorted(os.listdir(project / ".lab" / "runs"))

    def check(msg: str) -> None:
        assert "project.json" in msg and str(marker) in msg, msg
        assert problem in msg, msg

    with pytest.raises(lab.LabError) as info:
        lab.runs()
    check(str(info.value))
    with pytest.raises(lab.LabError) as info:
        lab.get_run("0")
    check(str(info.value))
    e = Experiment("marker")
    with pytest.raises(lab.LabError) as info:
        with e.start_run():
            pass  # pragma: no cover - never reached
    check(str(info.value))
    assert e.run_id is None
    proc = lab_cli(project, "ls")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    check(proc.stderr)
    # Found from a folder below the project, without LAB_PROJECT, too.
    below = project / "sub"
    below.mkdir()
    env = lab_env(project)
    del env["LAB_PROJECT"]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "ls"], cwd=below, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    check(proc.stderr)
    # Nothing was changed: the marker is as it was, no run was added.
    assert marker.read_bytes() == body
    assert sorted(os.listdir(project / ".lab" / "runs")) == runs_before


def test_a_marker_from_a_newer_lab_says_upgrade(project: Path) -> None:
    _one_run()
    marker = project / ".lab" / "project.json"
    marker.write_text('{"format": 2, "created_nanos": 1}\n')
    with pytest.raises(lab.LabError) as info:
        lab.runs()
    msg = str(info.value)
    assert "upgrade Lab" in msg and str(marker) in msg, msg
    e = Experiment("marker")
    with pytest.raises(lab.LabError) as info:
        with e.start_run():
            pass  # pragma: no cover - never reached
    assert "upgrade Lab" in str(info.value)
    proc = lab_cli(project, "ls")
    assert proc.returncode == 1 and "upgrade Lab" in proc.stderr, proc.stderr


def test_a_marker_with_more_fields_is_fine(project: Path) -> None:
    run_id = _one_run()
    marker = project / ".lab" / "project.json"
    marker.write_text('{"format": 1, "created_nanos": 1, "note": "kept by hand"}')
    assert [r.id for r in lab.runs()] == [run_id]


# -- run folders deleted by hand ------------------------------------------------------------


def test_a_run_folder_deleted_by_hand_is_no_longer_listed(project: Path) -> None:
    kept, gone = _one_run("a"), _one_run("b")
    assert {r.id for r in lab.runs()} == {kept, gone}
    shutil.rmtree(lab.get_run(gone).path)
    assert [r.id for r in lab.runs()] == [kept]
    with pytest.raises(lab.RunNotFoundError):
        lab.get_run(gone)
    proc = lab_cli(project, "ls", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert gone not in proc.stdout and kept in proc.stdout


def test_with_the_runs_folder_deleted_no_run_is_listed(project: Path) -> None:
    _one_run("a")
    _one_run("b")
    assert len(lab.runs()) == 2
    shutil.rmtree(project / ".lab" / "runs")
    assert lab.runs() == []
    proc = lab_cli(project, "ls", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    # Logging goes on in the same project.
    run_id = _one_run("c")
    assert [r.id for r in lab.runs()] == [run_id]
