"""docs/team.md's systemd unit and environment file, taken from the doc and
run as the service would run them (with the doc's addresses swapped for a
real temp PostgreSQL and store): the server starts from `LAB_DATABASE` and
`LAB_ARTIFACTS` alone, answers its health check, stops cleanly on SIGTERM,
and the doc's token command makes a token with the same file."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from team_server import Postgres, free_port

REPO = Path(__file__).resolve().parent.parent
LAB = str(Path(sys.executable).parent / "lab")


def doc_block(first_line: str) -> str:
    """The fenced block of docs/team.md whose first line is `first_line`."""
    text = (REPO / "docs" / "team.md").read_text()
    for m in re.finditer(r"```[a-z]*\n(.*?)```", text, re.S):
        if m.group(1).startswith(first_line):
            return m.group(1)
    raise AssertionError(f"docs/team.md has no block starting `{first_line}`")


def test_the_documented_service_starts_serves_and_stops() -> None:
    unit = doc_block("# /etc/systemd/system/lab-server.service")
    env_file = doc_block("# /etc/lab/server.env")
    [exec_start] = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert "EnvironmentFile=/etc/lab/server.env" in unit
    command = shlex.split(exec_start)
    assert command[0] == "/opt/lab/bin/lab"
    folder = Path(tempfile.mkdtemp(prefix="lab-service-"))
    os.chmod(folder, 0o755)
    pg = Postgres(folder / "db")
    store = folder / "store"
    store.mkdir()
    try:
        # The environment file, with this machine's database and a folder
        # as the store (the doc's keys stay: a folder needs none).
        real = env_file.replace("postgresql://lab:PASSWORD@db.internal/lab", pg.url)
        real = real.replace("s3://lab-runs", store.as_uri())
        assert real != env_file and pg.url in real and store.as_uri() in real
        settings = folder / "server.env"
        settings.write_text(real)
        port = free_port()
        args = [LAB] + [a.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for a in command[1:]]
        env = {"PATH": os.environ["PATH"], "HOME": str(folder)}
        for line in real.splitlines():
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = value
        server = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                        assert r.read() == b"ok"
                        break
                except OSError:
                    assert server.poll() is None, "the service exited at start"
                    assert time.monotonic() < deadline, "the service did not answer"
                    time.sleep(0.1)
            # The doc's token command, with the same file.
            token_line = doc_block("sh -c 'set -a; . /etc/lab/server.env;").strip()
            token_line = token_line.replace("/etc/lab/server.env", str(settings)).replace("/opt/lab/bin/lab", LAB)
            made = subprocess.run(token_line, shell=True, capture_output=True, text=True, timeout=60,
                                  env={"PATH": os.environ["PATH"], "HOME": str(folder)})
            assert made.returncode == 0, made.stderr
            token = made.stdout.strip().splitlines()[-1]
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/whoami",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as r:
                assert b'"ada"' in r.read()
        finally:
            # systemd stops it with SIGTERM and waits TimeoutStopSec.
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=30)
            assert server.returncode == 0, err
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
