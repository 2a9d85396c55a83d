"""A 2 GB artifact streams to a real `lab server` with the training
process's and the server's memory under 200 MB each: the file goes up in
parts and is assembled and checked in parts, never held whole.

The server keeps its files on a tmpfs the test mounts (4.5 GB: the parts and
the assembled file are both there for a moment) and removes, so no gigabyte
is written to the real disk; the artifact itself is a sparse file."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import lab_env
from team_server import Server

SIZE = 2 << 30
MEMORY_LIMIT = 200 << 20

TRAIN = """
import lab
e = lab.Experiment("big")
with e.start_run():
    print(e.run_id, flush=True)
    e.log_metric("loss", 0.5)
    e.log_artifact("weights", "big.bin")
"""

# Runs a command and prints the most memory it held (KiB), from the kernel's
# account of this wrapper's children.
MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(done.returncode)
"""


@pytest.fixture
def tmpfs():
    assert os.geteuid() == 0, "mounting the server's tmpfs needs root (CI runs as root)"
    mount = Path(tempfile.mkdtemp(prefix="lab-large-store-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4600m", "tmpfs", str(mount)], check=True)
    os.chmod(mount, 0o755)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)
        mount.rmdir()


def peak_memory(pid: int) -> int:
    """The most memory process `pid` has held, in bytes (`VmHWM`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_2_gb_artifact_streams_with_both_sides_under_200_mb(tmpfs: Path, tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lab-team-large-"))
    os.chmod(folder, 0o755)
    server = Server(folder, artifacts=tmpfs.as_uri())
    try:
        project = tmp_path / "big-project"
        project.mkdir()
        # Sparse, with bytes of its own here and there so its hash is its own.
        big = project / "big.bin"
        with open(big, "wb") as f:
            f.truncate(SIZE)
            for at in range(0, SIZE, 97 << 20):
                f.seek(at)
                f.write(os.urandom(4096))
        digest = hashlib.sha256()
        with open(big, "rb") as f:
            while chunk := f.read(16 << 20):
                digest.update(chunk)
        token = server.token("big")
        env = dict(lab_env(project), LAB_SERVER=server.url, LAB_TOKEN=token, LAB_UPLOAD_GRACE_SECS="900")
        (project / "train.py").write_text(textwrap.dedent(TRAIN))
        (project / "measured.py").write_text(textwrap.dedent(MEASURED))
        done = subprocess.run(
            [sys.executable, "measured.py", sys.executable, "train.py"],
            cwd=project, env=env, capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stderr
        run_id, client_kib = done.stdout.split()
        client = int(client_kib) * 1024

        files = server.get(f"/projects/{project.name}/runs/{run_id}/files", token)["files"]
        assert [(f["path"], f["size"], f["sha256"]) for f in files] == [
            ("artifacts/weights/big.bin", SIZE, digest.hexdigest())
        ]
        kept = tmpfs / "blobs" / digest.hexdigest()[:2] / digest.hexdigest()
        assert kept.stat().st_size == SIZE
        # The parts were dropped once the file was whole.
        assert [p for p in (tmpfs / "uploads").rglob("*") if p.is_file()] == []
        server_peak = peak_memory(server.proc.pid)
        print(f"peak memory: client {client >> 20} MiB, server {server_peak >> 20} MiB")
        assert client < MEMORY_LIMIT, f"the training process held {client >> 20} MiB"
        assert server_peak < MEMORY_LIMIT, f"the server held {server_peak >> 20} MiB"
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
        # Sparse, but 2 GB to whoever lists /tmp: not left behind.
        shutil.rmtree(tmp_path / "big-project", ignore_errors=True)


BIG_RECORD = """
import lab
e = lab.Experiment("wide")
with e.start_run():
    print(e.run_id, flush=True)
    e.log_parameters({"notes": "x" * (20 << 20)})
    for step in range(100):
        e.log_metric("loss", 1.0 / (step + 1), step=step)
"""


def test_a_record_larger_than_a_request_streams_alone(tmp_path: Path) -> None:
    """A 20 MB parameter is one journal frame, more than a request's usual
    8 MiB: it goes in a request of its own, and the points after it follow."""
    folder = Path(tempfile.mkdtemp(prefix="lab-team-wide-"))
    os.chmod(folder, 0o755)
    server = Server(folder)
    try:
        project = tmp_path / "wide"
        project.mkdir()
        token = server.token("wide")
        env = dict(lab_env(project), LAB_SERVER=server.url, LAB_TOKEN=token, LAB_UPLOAD_GRACE_SECS="120")
        (project / "train.py").write_text(textwrap.dedent(BIG_RECORD))
        done = subprocess.run([sys.executable, "train.py"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "larger than" not in done.stderr, done.stderr
        run_id = done.stdout.split()[0]
        detail = server.get(f"/projects/{project.name}/runs/{run_id}", token)
        assert detail["status"] == "finished"
        assert [(m["name"], m["count"]) for m in detail["metrics"]] == [("loss", 100)]
        assert len(detail["params"]["notes"]) == 20 << 20
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
