"""The `lab` command an install puts beside `python` is the native binary.

It starts without Python, finds the Python of its own environment for the
commands that make environments, and `python -m lab.cli` / `lab.cli.main`
run that same binary: the same output and exit status for every command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lab_env, run_python, wait_background
from test_workspace import make_wheel

BIN = Path(sys.executable).parent
LAB = BIN / "lab"


def test_the_lab_command_is_a_native_executable() -> None:
    head = LAB.read_bytes()[:4]
    assert head == b"\x7fELF", f"{LAB} starts with {head!r}: a script, not the native command"
    assert os.access(LAB, os.X_OK)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    run_python(
        tmp_path,
        """
        from lab.experiment import Experiment
        e = Experiment("native")
        for lr in (0.1, 0.01):
            with e.start_run():
                e.log_parameter("lr", lr)
                e.log_metric("loss", lr * 3)
        """,
        check=True,
    )
    wait_background()
    return tmp_path


COMMANDS = [
    ["ls"],
    ["ls", "--format", "json", "--sort", "-loss"],
    ["ls", "--where", "lr >"],  # a bad query: exit 2 or 1, with a message
    ["show", "nosuchrun"],  # exit 1
    ["--no-such-flag"],  # usage error: exit 2
    ["ls", "--help"],
    ["info"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_python_m_lab_cli_is_the_same_command(project: Path, args: list) -> None:
    env = lab_env(project)
    direct = subprocess.run([str(LAB), *args], cwd=project, env=env, capture_output=True, text=True, timeout=60)
    through = subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )
    called = subprocess.run(
        [sys.executable, "-c", "import sys; from lab.cli import main; sys.argv[0] = 'lab'; sys.exit(main())", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for other in (through, called):
        assert (other.returncode, other.stdout, other.stderr) == (direct.returncode, direct.stdout, direct.stderr)
    if args == ["ls"]:
        assert direct.returncode == 0 and direct.stdout.count("\n") == 3, direct.stdout


def without_this_environment() -> dict:
    """An environment where `python3` on PATH is not this one and LAB_PYTHON is unset."""
    env = dict(os.environ)
    env.pop("LAB_PYTHON", None)
    env.pop("LAB_PROJECT", None)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = "/usr/bin:/bin"
    env["PIP_NO_INDEX"] = "1"
    return env


def test_lab_init_uses_the_python_beside_the_command(tmp_path: Path) -> None:
    """`lab init` links this environment's Lab into the project's: it finds
    this environment's Python beside the command, not on PATH."""
    wheel = make_wheel(tmp_path, "tinypkg", "1.0", "ANSWER = 42\n")
    (tmp_path / "requirements.txt").write_text(f"{wheel.name}\n")
    env = without_this_environment()
    on_path = subprocess.run(["python3", "-c", "import lab"], env=env, capture_output=True, text=True)
    assert on_path.returncode != 0, "the python3 on PATH must not be one with Lab for this test"

    made = subprocess.run([str(LAB), "init", "--name", "proj"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    proj = tmp_path / "proj"
    check = subprocess.run(
        [str(proj / ".venv" / "bin" / "python"), "-c", "import lab, tinypkg; print(tinypkg.ANSWER)"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "42", check.stderr
    # The project's own `lab` (a script calling `lab.cli`) runs this native command.
    listed = subprocess.run([str(proj / ".venv" / "bin" / "lab"), "ls"], cwd=proj, env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == subprocess.run([str(LAB), "ls"], cwd=proj, env=env, capture_output=True, text=True).stdout


def test_lab_python_still_says_which_python(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("")
    env = without_this_environment()
    env["LAB_PYTHON"] = str(tmp_path / "no-such-python")
    failed = subprocess.run([str(LAB), "init", "--name", "proj"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1, failed.stderr
    assert f"`LAB_PYTHON` names no file: `{tmp_path / 'no-such-python'}`" in failed.stderr, failed.stderr
    assert not (tmp_path / "proj").exists()
