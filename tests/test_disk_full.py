"""A full disk: logging fails cleanly, the run still ends truthfully, nothing
logged is lost, and every read works while the disk is full."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import lab
from conftest import lab_cli, run_python

FILL_AND_END = """
import os
from lab.experiment import Experiment
from lab.errors import StorageError

e = Experiment("full")
with e.start_run():
    # Take the disk, leaving a little room.
    with open(os.environ["FILLER"], "wb") as f:
        try:
            while True:
                f.write(b"x" * (1 << 16))
                f.flush()
        except OSError:
            pass
    logged = 0
    try:
        for step in range(10_000_000):
            e.log_metric("loss", 1.0 / (step + 1), step=step)
            logged = step + 1
    except StorageError as err:
        print("refused:", err, flush=True)
    print("logged", logged, e.run_id, flush=True)
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_refuses_logging_cleanly_and_the_run_still_ends(small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = small_disk / "project"
    project.mkdir()
    monkeypatch.setenv("LAB_PROJECT", str(project))
    monkeypatch.setenv("FILLER", str(small_disk / "filler"))
    proc = run_python(project, FILL_AND_END, check=True)
    refused = next(line for line in proc.stdout.splitlines() if line.startswith("refused:"))
    assert "No space left on device" in refused or "disk" in refused, refused
    _, logged, run_id = next(line for line in proc.stdout.splitlines() if line.startswith("logged")).split()
    assert int(logged) > 0

    run = lab.get_run(run_id)
    assert run.status == "finished", "the End record had its room kept"
    assert run.metric_summaries["loss"]["count"] == int(logged), "every acknowledged point is kept"

    # Ending the run gave its reserved space back. Take it, and the index
    # with it: now nothing can be written, and reads must still work, from
    # the journals into memory.
    with open(small_disk / "filler2", "wb") as f:
        try:
            while True:
                f.write(b"x" * (1 << 16))
                f.flush()
        except OSError:
            pass
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (project / ".lab" / name).unlink(missing_ok=True)
    listing = lab_cli(project, "ls")
    assert listing.returncode == 0, listing.stderr
    assert run_id[:8] in listing.stdout
    assert "read from their journals into memory" in listing.stderr, listing.stderr
    shown = lab_cli(project, "show", run_id[:8])
    assert shown.returncode == 0, shown.stderr
    assert "finished" in shown.stdout
    assert lab.get_run(run_id).metric_summaries["loss"]["count"] == int(logged)

    # With room again, the index on disk catches up.
    (small_disk / "filler").unlink()
    (small_disk / "filler2").unlink()
    listing = lab_cli(project, "ls")
    assert listing.returncode == 0, listing.stderr
    assert "into memory" not in listing.stderr
    assert lab.get_run(run_id).status == "finished"


def test_a_full_disk_keeps_a_journal_whole_until_there_is_room(small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Giving back a journal's pages of points first writes their list: on a
    full disk it keeps the journal whole, says so, and does it once there is
    room."""
    from test_series import KILLED

    project = small_disk / "project"
    project.mkdir()
    monkeypatch.setenv("LAB_PROJECT", str(project))
    proc = run_python(project, KILLED)
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.split()[0]
    folder = project / ".lab" / "runs" / run_id[:8]
    journal = folder / "journal.lab"
    # The series file first, alone (a run sent to a team server keeps its pages).
    (folder / "upload.json").write_text("{}")
    assert "Wrote the series file" in lab_cli(project, "gc").stdout
    (folder / "upload.json").unlink()
    truth = lab.get_run(run_id).metric_history("loss")
    assert len(truth) == 30_000
    whole = journal.read_bytes()
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * (1 << 12))
        except OSError:
            pass
    full = lab_cli(project, "gc")
    assert full.returncode == 0, full.stderr
    assert f"Kept run `{run_id[:8]}`'s journal whole (a full disk)" in full.stdout, full.stdout
    assert not (folder / "journal.lab.holes").exists()
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert journal.read_bytes() == whole
    assert lab.get_run(run_id).metric_history("loss") == truth
    filler.unlink()
    room = lab_cli(project, "gc")
    assert "Gave back" in room.stdout and run_id[:8] in room.stdout, room.stdout
    assert journal.stat().st_blocks * 512 * 5 < journal.stat().st_size
    assert lab.get_run(run_id).metric_history("loss") == truth
