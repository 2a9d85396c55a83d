"""A real `lab server` for tests: a PostgreSQL cluster of the test's own
(`initdb` in a temporary folder, as the `postgres` user when run as root),
an object store in a folder (`file://`), and the server on a free port of
127.0.0.1, all stopped and removed after."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

LAB = str(Path(sys.executable).parent / "lab")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(
        (int(p.name), p / "bin") for p in Path("/usr/lib/postgresql").iterdir() if p.name.isdigit() and (p / "bin" / "initdb").exists()
    )
    return found[-1][1]


class Postgres:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)
        self.data = folder / "pg"
        self.root = os.geteuid() == 0
        if self.root:
            subprocess.run(["install", "-d", "-o", "postgres", "-g", "postgres", str(self.data)], check=True)
        else:
            self.data.mkdir()
        self.bin = pg_bin()
        self.port = free_port()
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()
        subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q", "-c", "create database lab"],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/lab"

    def _pg(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"),
            "-o", f"-p {self.port} -h 127.0.0.1 -k {self.data}", "-w", "start",
        )

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


S3S_FS = shutil.which("s3s-fs") or str(Path.home() / ".cargo" / "bin" / "s3s-fs")


class S3:
    """A real S3 server, `s3s-fs`, whose folder's folders are buckets; it
    holds bucket `lab-team`."""

    ACCESS_KEY = "lab-test-access"
    SECRET_KEY = "lab-test-secret-key"

    def __init__(self, folder: Path) -> None:
        self.root = folder
        (folder / "lab-team").mkdir(parents=True)
        self.port = free_port()
        self.proc: "subprocess.Popen | None" = None
        self.start()

    def env(self) -> dict:
        """The variables that point a server at it."""
        return {
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> None:
        """Starts it, on its folder and port (again, after `kill`)."""
        self.proc = subprocess.Popen(
            [S3S_FS, "--host", "127.0.0.1", "--port", str(self.port),
             "--access-key", self.ACCESS_KEY, "--secret-key", self.SECRET_KEY, str(self.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("s3s-fs did not start")
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


class Server:
    """`lab server` on a database and a folder of blobs (or, with `s3`, a
    real S3 server)."""

    def __init__(
        self,
        folder: Path,
        s3: bool = False,
        artifacts: "str | None" = None,
        env: "dict | None" = None,
        args: "list[str] | None" = None,
    ) -> None:
        """`s3`: a real S3 server of its own for the store; `artifacts`: the
        store's URL otherwise (a folder of `folder` by default); `env`: more
        variables for the server (`AWS_*`); `args`: more options of `lab
        server`."""
        self.folder = folder
        self.pg = Postgres(folder / "db")
        self.bucket = folder / "bucket"
        self.bucket.mkdir()
        self.s3 = S3(folder / "s3") if s3 else None
        self.artifacts = "s3://lab-team/runs" if self.s3 else artifacts or self.bucket.as_uri()
        self.env = dict(env or {})
        self.args = list(args or [])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: "subprocess.Popen | None" = None
        self.log = open(os.devnull, "w")
        self.start()

    def token(self, name: str, role: str = "writer") -> str:
        out = subprocess.run(
            [LAB, "server", "token", "create", "--database", self.pg.url, "--name", name, "--role", role],
            capture_output=True, text=True, check=True, timeout=60,
        )
        return out.stdout.strip().splitlines()[-1]

    def revoke(self, name: str) -> None:
        subprocess.run(
            [LAB, "server", "token", "revoke", "--database", self.pg.url, name],
            capture_output=True, text=True, check=True, timeout=60,
        )

    def start(self) -> None:
        self.log.close()
        self.log = open(self.folder / f"server-{time.monotonic_ns()}.log", "w")
        env = dict(os.environ, **self.env)
        if self.s3 is not None:
            env.update(self.s3.env())
        self.proc = subprocess.Popen(
            [LAB, "server", "--database", self.pg.url, "--artifacts", self.artifacts, "--listen", f"127.0.0.1:{self.port}", *self.args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"lab server exited: {self.log.name}")
                time.sleep(0.1)
        raise RuntimeError("lab server did not answer within 60 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None
        self.log.close()

    def get(self, path: str, token: str) -> dict:
        request = urllib.request.Request(f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)

    def answer(self, path: str, token: str) -> "tuple[int, dict, Message]":
        """A GET's status, JSON body and headers, whatever the status."""
        request = urllib.request.Request(f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.load(r), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.load(e), e.headers

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        if self.s3 is not None:
            self.s3.kill()
        try:
            self.pg.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
