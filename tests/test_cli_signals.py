"""Ctrl-C through the `lab` console script acts as it does for the binary."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import lab_env, sigint_default, stop


def lab_process(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "lab"), *args],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default,
    )


def test_ctrl_c_stops_watching_without_a_python_traceback(project: Path) -> None:
    """The `lab` console script behaves like the binary on Ctrl-C: `lab watch`
    stops at once, with no `KeyboardInterrupt` traceback from the script."""
    (project / "slow.py").write_text(textwrap.dedent("""
        import time
        from lab.experiment import Experiment
        e = Experiment("slow")
        with e.start_run():
            e.log_metric("loss", 0.5)
            print("ready", flush=True)
            time.sleep(60)
    """))
    writer = subprocess.Popen(
        [sys.executable, "slow.py"], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
    )
    watch = None
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        watch = lab_process(project, "watch", "--interval", "0.1")
        assert watch.stdout is not None
        assert watch.stdout.readline() == "loss 0.5 (step 0)\n"
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=10)
    finally:
        if watch is not None:
            stop(watch)
        stop(writer)
    assert watch.returncode == -signal.SIGINT, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_ctrl_c_stops_lab_ui_cleanly(project: Path) -> None:
    """`lab ui` stops on Ctrl-C with status 0 and no Python traceback."""
    subprocess.run(
        [sys.executable, "-c", "from lab.experiment import Experiment\nwith Experiment().start_run(): pass"],
        cwd=project,
        env=lab_env(project),
        check=True,
    )
    ui = lab_process(project, "ui", "--port", "0")
    try:
        assert ui.stdout is not None
        assert ui.stdout.readline().startswith("Lab is serving ")
        assert ui.stdout.readline() == "Press Ctrl-C to stop.\n"
        ui.send_signal(signal.SIGINT)
        _, err = ui.communicate(timeout=10)
    finally:
        stop(ui)
    assert ui.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_ctrl_c_during_lab_run_lists_the_interrupted_run(project: Path) -> None:
    """Ctrl-C reaches the whole foreground group: the script ends its run as
    interrupted, and `lab run` still lists the runs it made and exits with
    the script's status, without a traceback of its own."""
    (project / "train.py").write_text(textwrap.dedent("""
        import time
        from lab.experiment import Experiment
        e = Experiment()
        with e.start_run():
            print("training", flush=True)
            time.sleep(60)
    """))
    (project / ".lab").mkdir()
    (project / ".lab" / "project.json").write_text('{"format": 1}')
    lab = subprocess.Popen(
        [str(Path(sys.executable).parent / "lab"), "run", "train.py"],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=sigint_default,
    )
    try:
        assert lab.stdout is not None
        assert lab.stdout.readline() == "training\n"
        os.killpg(lab.pid, signal.SIGINT)
        _, err = lab.communicate(timeout=30)
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGKILL)
        lab.wait(timeout=10)
    assert lab.returncode == 128 + signal.SIGINT, err
    assert re.search(r"^lab: run [0-9a-f]{8} interrupted$", err, re.M), err
    # The script's own KeyboardInterrupt is shown; none from the console script.
    assert "lab/cli.py" not in err, err
