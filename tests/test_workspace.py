"""`lab init`, `lab run`, `lab update`: projects with their own environment.

The requirements are wheels this test writes itself, so pip installs them
without the network, and the checks prove the script ran inside the
project's environment.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import lab_env

LAB = str(Path(sys.executable).parent / "lab")


def make_wheel(folder: Path, name: str, version: str, body: str) -> Path:
    """A minimal pure-Python wheel holding the module `name`."""
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": body.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: lab-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


def lab(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = lab_env(cwd)
    env.pop("LAB_PROJECT")
    env["PIP_NO_INDEX"] = "1"  # everything must come from this machine
    return subprocess.run([LAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LAB_PROJECT", raising=False)
    wheel = make_wheel(tmp_path, "tinypkg", "1.0", "ANSWER = 42\n")
    (tmp_path / "requirements.txt").write_text(f"{wheel.name}\n")
    return tmp_path


TRAIN = """
import sys
import tinypkg
from lab.experiment import Experiment

e = Experiment("env")
with e.start_run():
    e.log_parameter("answer", tinypkg.ANSWER)
    e.log_parameter("args", sys.argv[1:])
print("prefix", sys.prefix)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
"""


def test_init_run_update(workdir: Path) -> None:
    made = lab(workdir, "init", "--name", "proj")
    assert made.returncode == 0, made.stderr
    proj = workdir / "proj"
    assert (proj / ".lab" / "project.json").is_file()
    assert (proj / ".labignore").read_text() == ".venv\n"
    assert (proj / "notebooks").is_dir()
    assert (proj / "requirements.txt").is_file()
    venv_python = proj / ".venv" / "bin" / "python"
    check = subprocess.run([str(venv_python), "-c", "import tinypkg, lab; print(tinypkg.ANSWER)"], capture_output=True, text=True)
    assert check.stdout.strip() == "42", check.stderr

    (proj / "train.py").write_text(TRAIN)
    ran = lab(proj, "run", "train.py", "--flag", "-x", "value with spaces")
    assert ran.returncode == 0, ran.stderr
    assert f"prefix {proj / '.venv'}" in ran.stdout, "ran with the project's environment"
    assert ran.stderr.count("lab: run ") == 1 and ran.stderr.strip().endswith("finished")
    # The exit status is the script's, and the run is listed either way.
    failed = lab(proj, "run", "train.py", "3")
    assert failed.returncode == 3
    assert "lab: run " in failed.stderr

    env = dict(os.environ, LAB_PROJECT=str(proj))
    out = subprocess.run(
        [str(venv_python), "-c", "import lab; r = lab.runs()[-1]; print(r.params['answer'], r.params['args'])"],
        env=env, capture_output=True, text=True,
    )
    assert out.stdout.strip() == "42 ['--flag', '-x', 'value with spaces']", out.stderr

    # A new requirement, installed by `lab update`.
    second = make_wheel(workdir, "otherpkg", "2.0", "NAME = 'other'\n")
    (proj / "requirements.txt").write_text(f"{workdir / 'tinypkg-1.0-py3-none-any.whl'}\n{second}\n")
    updated = lab(proj, "update")
    assert updated.returncode == 0, updated.stderr
    check = subprocess.run([str(venv_python), "-c", "import otherpkg, lab; print(otherpkg.NAME)"], capture_output=True, text=True)
    assert check.stdout.strip() == "other", check.stderr


def test_init_without_requirements_or_onto_an_existing_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_PROJECT", raising=False)
    missing = lab(tmp_path, "init", "--name", "p")
    assert missing.returncode == 1
    assert "needs a `requirements.txt` in the current folder" in missing.stderr
    assert not (tmp_path / "p").exists()
    bare = lab(tmp_path, "init", "--name", "p", "--no-venv")
    assert bare.returncode == 0, bare.stderr
    assert (tmp_path / "p" / ".lab").is_dir() and not (tmp_path / "p" / ".venv").exists()
    again = lab(tmp_path, "init", "--name", "p", "--no-venv")
    assert again.returncode == 1
    assert "`--name` names something that exists already" in again.stderr
    no_env = lab(tmp_path / "p", "update")
    assert no_env.returncode == 1 and "has no environment" in no_env.stderr


@pytest.mark.parametrize(
    "name",
    ["../escaped", "..", ".", "a/b", "a/../b", "/tmp/lab-init-absolute", "./../escaped", "a/", "./proj"],
)
def test_init_makes_only_a_plain_folder_in_the_current_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.delenv("LAB_PROJECT", raising=False)
    here = tmp_path / "here"
    here.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for extra in ([], ["--no-venv"]):
        refused = lab(here, "init", "--name", name, *extra)
        assert refused.returncode == 1, (name, refused.stderr)
        assert "`--name` must be the name of a new folder in the current folder" in refused.stderr, refused.stderr
        assert f"`{name}`" in refused.stderr, refused.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/lab-init-absolute").exists()


def test_init_with_an_empty_name_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_PROJECT", raising=False)
    refused = lab(tmp_path, "init", "--name", "", "--no-venv")
    assert refused.returncode == 2, refused.stderr
    assert "--name" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failing_install_leaves_nothing_behind(workdir: Path) -> None:
    (workdir / "requirements.txt").write_text("no-such-package-for-lab-tests==1.0\n")
    failed = lab(workdir, "init", "--name", "broken")
    assert failed.returncode == 1
    assert "installing requirements.txt failed" in failed.stderr
    assert not (workdir / "broken").exists()


def test_run_of_a_missing_script(workdir: Path) -> None:
    assert lab(workdir, "init", "--name", "proj").returncode == 0
    missing = lab(workdir / "proj", "run", "nope.py")
    assert missing.returncode == 1
    assert "no script to run at" in missing.stderr and "nope.py" in missing.stderr


def test_notebook_registers_a_kernel_of_the_projects_environment(workdir: Path) -> None:
    assert lab(workdir, "init", "--name", "My Proj").returncode == 0
    proj = workdir / "My Proj"
    env = lab_env(proj)
    env.pop("LAB_PROJECT")
    env["JUPYTER_DATA_DIR"] = str(workdir / "jupyter")  # not the user's own
    # ipykernel comes from the package index.
    made = subprocess.run([LAB, "notebook"], cwd=proj, env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    assert 'choose "Lab: My Proj"' in made.stdout
    spec = workdir / "jupyter" / "kernels" / "my-proj" / "kernel.json"
    import json

    kernel = json.loads(spec.read_text())
    assert kernel["display_name"] == "Lab: My Proj"
    assert Path(kernel["argv"][0]) == proj / ".venv" / "bin" / "python"
