"""Shared fixtures: every test works in a fresh project folder of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _no_system_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs record no system metrics (`sys/...`) unless a test asks.

    With them on, as users have them, a run gets a sample at its end and one
    per interval: tests that compare a run's metrics with what the script
    logged would have to leave them out one by one. tests/test_system_metrics.py
    turns them on and checks them, and how they live with the rest (a crash,
    `lab show`, the page).
    """
    monkeypatch.setenv("LAB_SYSTEM_METRICS", "0")


@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands a test runs see no `COLUMNS` or `LINES` of the shell or
    of the test runner (pytest-xdist's workers set `COLUMNS=80`): with
    stdout a pipe, `lab ls` fits its table to `COLUMNS`, and tests that
    read its columns expect the whole table."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the current folder and `LAB_PROJECT`."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("LAB_PROJECT", str(folder))
    # A user's `lab login` never reaches a test: runs stream only where a
    # test names a server.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LAB_SERVER", raising=False)
    monkeypatch.delenv("LAB_TOKEN", raising=False)
    return folder


def lab_env(project: Path) -> dict:
    env = dict(os.environ)
    env["LAB_PROJECT"] = str(project)
    env.pop("NO_COLOR", None)
    return env


def run_python(project: Path, code: str, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` as a script file in `project` with this interpreter."""
    script = project / "script.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=project,
        env=lab_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def lab_cli(project: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs the `lab` console script of this interpreter's environment."""
    exe = Path(sys.executable).parent / "lab"
    return subprocess.run(
        [str(exe), *args],
        cwd=project,
        env=lab_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sigint_default() -> None:
    """`preexec_fn` of a child a test sends SIGINT: the child takes it as a
    program takes Ctrl-C at a terminal, even when the tests run with SIGINT
    ignored (started with `&` by a shell without job control), an ignore
    each child would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Kills `proc` unless it has ended, reaps it within `timeout` seconds
    (a test never waits for a child without end), and closes its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=timeout)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def wait_background() -> None:
    """Lets finished runs of this process close and index their journals."""
    from lab import _lab

    assert _lab.wait_for_background() == []
