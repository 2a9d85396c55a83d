"""`lab import wandb` against run folders written by the real W&B, offline,
in the test: a finished run with a nested config, tags, a history of numbers
and media, and a saved file; a failed run; and hostile folders (a damaged
`.wandb` file, a cut one, a folder that is no W&B run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lab_cli

import lab

WRITE = r"""
import json, os, sys, time
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
import wandb

here = sys.argv[1]
out = {}
run = wandb.init(
    project="vision",
    dir=here,
    name="good",
    tags=["baseline", "v2"],
    config={"lr": 0.01, "opt": {"name": "adam", "betas": [0.9, 0.99]}, "epochs": 3},
)
run.config.update({"batch": 32})
logged = []
for i in range(5):
    row = {"loss": 1.0 / (i + 1), "acc": 0.5 + i / 10}
    if i == 2:
        row["table"] = wandb.Table(columns=["a"], data=[[1]])
    run.log(row)
    logged.append(row)
open(os.path.join(here, "weights.txt"), "w").write("0.5 0.25")
wandb.save(os.path.join(here, "weights.txt"), base_path=here, policy="now")
out["good"] = {"id": run.id, "loss": [r["loss"] for r in logged], "acc": [r["acc"] for r in logged]}
run.finish()
run = wandb.init(project="vision", dir=here, name="bad")
run.log({"loss": 2.0})
out["bad"] = {"id": run.id}
run.finish(exit_code=1)
json.dump(out, open(os.path.join(here, "expected.json"), "w"))
"""


def write_runs(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "write.py"
    script.write_text(WRITE)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_CODE": "true"}
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, str(script), str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / "expected.json").read_text())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = tmp_path_factory.mktemp("wandb")
    return folder, write_runs(folder)


def imported() -> dict:
    return {r.attrs["imported_from"].split("/")[-1]: r for r in lab.runs() if "imported_from" in r.attrs}


def test_offline_runs(project: Path, written: tuple) -> None:
    folder, expected = written
    first = lab_cli(project, "import", "wandb", str(folder / "wandb"), timeout=300)
    assert first.returncode == 0, first.stderr
    assert "Imported 2 run(s) (11 metric point(s)), replaced 0, skipped 0 already here, 0 failed" in first.stdout
    # The table logged at step 2 is no number.
    assert "left out: 1 non-numeric history values (media, tables, text)" in first.stderr
    runs = imported()
    good = runs[expected["good"]["id"]]
    assert good.attrs["imported_from"] == f"wandb:vision/{expected['good']['id']}"
    assert good.experiment == "vision"
    assert good.status == "finished"
    assert good.params == {
        "lr": 0.01,
        "opt.name": "adam",
        "opt.betas": [0.9, 0.99],
        "epochs": 3,
        "batch": 32,
    }
    assert good.tags == {"baseline": "", "v2": "", "wandb.name": "good"}
    for name in ("loss", "acc"):
        history = good.metric_history(name)
        assert [s for s, _, _ in history] == [0, 1, 2, 3, 4]
        assert [v for _, _, v in history] == expected["good"][name]
        times = [t for _, t, _ in history]
        assert times == sorted(times)
        assert good.start_time.timestamp() - 1 <= times[0] <= times[-1] <= good.end_time.timestamp() + 1
    assert sorted(good.metrics) == ["acc", "loss"]
    # Where it ran, from W&B's environment record.
    assert good.source == str(folder / "write.py")
    assert good.python_version == ".".join(map(str, sys.version_info[:3]))
    assert good.attrs["python_executable"] == sys.executable
    assert Path(good.artifacts["weights.txt"]).read_text() == "0.5 0.25"
    assert "requirements.txt" not in good.artifacts
    bad = runs[expected["bad"]["id"]]
    assert bad.status == "failed"
    assert bad.metric_history("loss")[0][0] == 0
    assert "exit code 1" in bad.error["message"]
    again = lab_cli(project, "import", "wandb", str(folder), timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Imported 0 run(s) (0 metric point(s)), replaced 0, skipped 2 already here, 0 failed" in again.stdout
    assert len(lab.runs()) == 2


def run_folders(folder: Path) -> list:
    return sorted(p for p in (folder / "wandb").iterdir() if p.name.startswith("offline-run-"))


def test_a_damaged_file_fails_its_run_and_the_others_are_imported(project: Path, written: tuple, tmp_path: Path) -> None:
    folder, expected = written
    copy = tmp_path / "copy"
    shutil.copytree(folder / "wandb", copy / "wandb", symlinks=True)
    damaged = run_folders(copy)[0]
    file = next(damaged.glob("*.wandb"))
    data = bytearray(file.read_bytes())
    # A bit of the first chunk's data (after the 7-byte file header and the
    # chunk's 7-byte header: CRC, length, type), which its CRC covers. A flip
    # anywhere else may land on a length, which reads as a file cut short.
    length = int.from_bytes(data[11:13], "little")
    assert length > 0, "the first chunk holds data"
    data[14 + length // 2] ^= 0x40
    file.write_bytes(bytes(data))
    (copy / "wandb" / "offline-run-20000101_000000-notarun").mkdir()
    proc = lab_cli(project, "import", "wandb", str(copy), timeout=300)
    assert proc.returncode == 1
    assert "Imported 1 run(s)" in proc.stdout and "2 failed" in proc.stdout, proc.stdout
    assert "it is damaged at byte" in proc.stderr and "nothing of this run was imported" in proc.stderr, proc.stderr
    assert str(file) in proc.stderr
    assert "it is not a W&B run folder: it holds no `.wandb` file" in proc.stderr
    assert len(lab.runs()) == 1
    # Nothing half-written is left behind.
    assert sorted(p.name for p in (project / ".lab" / "runs").iterdir()) == [lab.runs()[0].short_id]


def test_a_cut_file_is_a_run_without_an_end(project: Path, written: tuple, tmp_path: Path) -> None:
    folder, expected = written
    copy = tmp_path / "cut"
    good = next(p for p in run_folders(folder) if p.name.endswith(expected["good"]["id"]))
    shutil.copytree(good, copy / good.name)
    file = next((copy / good.name).glob("*.wandb"))
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 200])
    proc = lab_cli(project, "import", "wandb", str(copy / good.name), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "records cut off at the end of a .wandb file" in proc.stderr
    (run,) = lab.runs()
    assert run.status == "crashed"
    assert run.end_time is None


def test_a_synced_run_folder_and_a_dry_run(project: Path, written: tuple, tmp_path: Path) -> None:
    folder, expected = written
    good = next(p for p in run_folders(folder) if p.name.endswith(expected["good"]["id"]))
    synced = tmp_path / "synced" / "wandb" / good.name.replace("offline-run-", "run-")
    shutil.copytree(good, synced)
    dry = lab_cli(project, "import", "wandb", str(tmp_path / "synced"), "--dry-run", timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert f"would import wandb:vision/{expected['good']['id']}" in dry.stdout
    assert "Would import 1 run(s) (10 metric point(s))" in dry.stdout
    assert not any((project / ".lab" / "runs").glob("*"))


def test_not_a_wandb_folder(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = lab_cli(project, "import", "wandb", str(empty))
    assert proc.returncode == 1
    assert f"`{empty}` is not a W&B folder: it holds no `offline-run-*` or `run-*` folder" in proc.stderr
    missing = lab_cli(project, "import", "wandb", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert "there is no such folder" in missing.stderr
    fake = tmp_path / "fake" / "offline-run-1"
    fake.mkdir(parents=True)
    (fake / "run-1.wandb").write_bytes(b"PK\x03\x04 not a datastore")
    proc = lab_cli(project, "import", "wandb", str(fake))
    assert proc.returncode == 1
    assert "it is not a W&B run file: it does not start with `:W&B`" in proc.stderr
