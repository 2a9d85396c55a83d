"""`lab watch`: following a live run from another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import lab_cli, lab_env

WRITER = """
import sys, time
from lab.experiment import Experiment
e = Experiment("watched")
with e.start_run():
    print(e.run_id, flush=True)
    for step in range(40):
        e.log_metric("loss", 1.0 / (step + 1), step=step)
        time.sleep(0.05)
"""


def test_watch_follows_a_live_run_until_it_ends(project: Path) -> None:
    (project / "writer.py").write_text(textwrap.dedent(WRITER))
    with subprocess.Popen(
        [sys.executable, str(project / "writer.py")], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None
        run_id = writer.stdout.readline().strip()
        # No run named: the newest running one.
        watch = lab_cli(project, "watch", "--interval", "0.2", timeout=60)
        writer.wait(timeout=60)
    assert watch.returncode == 0, watch.stderr
    lines = watch.stdout.splitlines()
    assert lines[-1] == f"run {run_id[:8]} finished"
    updates = [line for line in lines if line.startswith("loss ")]
    assert len(updates) >= 3, "several refreshes while it ran"
    steps = [int(line.split("(step ")[1].rstrip(")")) for line in updates]
    assert steps == sorted(steps) and steps[-1] == 39
    assert updates[-1] == "loss 0.025 (step 39)"


def test_watch_without_a_running_run_says_so(project: Path) -> None:
    (project / "done.py").write_text("from lab.experiment import Experiment\ne = Experiment()\nwith e.start_run():\n    e.log_metric('m', 1)\n")
    subprocess.run([sys.executable, "done.py"], cwd=project, env=lab_env(project), check=True)
    proc = lab_cli(project, "watch")
    assert proc.returncode == 1
    assert "no run is running in this project" in proc.stderr
    bad = lab_cli(project, "watch", "--interval", "0")
    assert bad.returncode == 1
    assert "`--interval` must be a positive number of seconds: got 0" in bad.stderr
    # A finished run named explicitly: its last values, then its status.
    ended = lab_cli(project, "ls", "--format", "csv")
    run_id = ended.stdout.splitlines()[1].split(",")[0]
    proc = lab_cli(project, "watch", run_id[:8])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["m 1 (step 0)", f"run {run_id[:8]} finished"]
