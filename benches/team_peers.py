"""The side-by-side part of benches/team.py: Lab's team server against MLflow's
tracking server and Aim's remote tracking server, the same workload on the same
machine.

- MLflow 3: `mlflow server` with a PostgreSQL backend store (a database of the
  bench's own cluster) and S3 artifacts (the bench's s3s-fs), read and written
  through MLflow's REST client (`MLFLOW_TRACKING_URI=http://...`), with
  `log_metric` synchronous (MLflow's default: one request per call) and
  asynchronous (`mlflow.config.enable_async_logging`).
- Aim 3: `aim server` on a repository in the work folder, written by
  `aim.Run(repo="aim://127.0.0.1:PORT")`.
- Lab: the bench's `lab server`, runs streaming (`LAB_SERVER`, `LAB_TOKEN`).

Measured for each: the training thread's time per `log_metric`-like call;
points per second from 16 client processes, from their first call to every
point held by the server; and a kill: a client logs one point a millisecond,
its server is killed (`kill -9`) once a third of the points are logged, and
started again 5 s later; the points the server holds at the end are counted
against the calls that returned without an error.
"""

from __future__ import annotations

import abc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import team

KILL_DOWN_S = 5.0
CLIENT_TIMEOUT_S = 300

# Each client: `mode` is cost, load or kill. Prints `progress N` lines (kill)
# and a JSON object last.
COMMON = """
import json, os, sys, time
P = json.loads(sys.argv[1])
clock = time.perf_counter_ns
def emit(d): print(json.dumps(d), flush=True)
"""

LAB_CLIENT = COMMON + """
from lab.experiment import Experiment
e = Experiment("peers")
with e.start_run():
    log = e.log_metric
    n = P["n"]
    if P["mode"] == "kill":
        ok, worst = 0, 0
        for i in range(n):
            t = clock()
            log("loss", i * 1e-3, step=i)
            worst = max(worst, clock() - t)
            ok += 1
            if i % 50 == 0:
                print(f"progress {ok}", flush=True)
            time.sleep(0.001)
        out = {"logged": ok, "failed": 0, "worst_call_s": worst / 1e9}
    else:
        log("loss", 0.0, step=0)  # the first call, untimed: each tool's may set things up
        start = time.time()
        t = clock()
        for i in range(1, n):
            log("loss", i * 1e-3, step=i)
        out = {"ns_per_call": (clock() - t) / (n - 1), "start": start}
out["run"] = e.run_id
emit(out)
"""

MLFLOW_CLIENT = COMMON + """
import mlflow
mlflow.set_tracking_uri(P["url"])
if P["async"]:
    mlflow.config.enable_async_logging(True)
mlflow.set_experiment(P["experiment"])
n = P["n"]
with mlflow.start_run() as run:
    if P["mode"] == "kill":
        ok = failed = 0
        worst = 0
        for i in range(n):
            t = clock()
            try:
                mlflow.log_metric("loss", i * 1e-3, step=i)
                ok += 1
            except Exception:
                failed += 1
            worst = max(worst, clock() - t)
            if i % 50 == 0:
                print(f"progress {i + 1}", flush=True)
            time.sleep(0.001)
        out = {"logged": ok, "failed": failed, "worst_call_s": worst / 1e9}
    else:
        mlflow.log_metric("loss", 0.0, step=0)  # untimed
        start = time.time()
        t = clock()
        for i in range(1, n):
            mlflow.log_metric("loss", i * 1e-3, step=i)
        out = {"ns_per_call": (clock() - t) / (n - 1), "start": start}
    out["run"] = run.info.run_id
    if P["async"]:
        t = clock()
        try:
            mlflow.flush_async_logging()
        except Exception as exc:
            out["flush_error"] = repr(exc)[:300]
        out["flush_s"] = (clock() - t) / 1e9
emit(out)
"""

AIM_CLIENT = COMMON + """
from aim import Run
n = P["n"]
run = Run(repo=P["url"], experiment=P["experiment"], system_tracking_interval=None, log_system_params=False, capture_terminal_logs=False)
if P["mode"] == "kill":
    ok = failed = 0
    worst = 0
    for i in range(n):
        t = clock()
        try:
            run.track(i * 1e-3, name="loss", step=i)
            ok += 1
        except Exception:
            failed += 1
        worst = max(worst, clock() - t)
        if i % 50 == 0:
            print(f"progress {i + 1}", flush=True)
        time.sleep(0.001)
    out = {"logged": ok, "failed": failed, "worst_call_s": worst / 1e9}
else:
    run.track(0.0, name="loss", step=0)  # untimed
    start = time.time()
    t = clock()
    for i in range(1, n):
        run.track(i * 1e-3, name="loss", step=i)
    out = {"ns_per_call": (clock() - t) / (n - 1), "start": start}
out["run"] = run.hash
t = clock()
try:
    run.close()
except Exception as exc:
    out["close_error"] = repr(exc)[:300]
out["close_s"] = (clock() - t) / 1e9
emit(out)
"""

MLFLOW_COUNT = """
import json, sys
from mlflow import MlflowClient
P = json.loads(sys.argv[1])
c = MlflowClient(P["url"])
out = {}
for run in P["runs"]:
    out[run] = len(c.get_metric_history(run, "loss"))
print(json.dumps(out))
"""

AIM_COUNT = """
import json, sys
from aim import Repo, Run
from aim.sdk.index_manager import RepoIndexManager
from aim.storage.context import Context
P = json.loads(sys.argv[1])
repo = Repo.from_path(P["repo"])
manager = RepoIndexManager.get_index_manager(repo)
for h in repo.list_all_runs():
    manager.index(h)  # as `aim server`'s background indexing would
repo.container_pool.clear()
out = {}
for h in P["runs"]:
    n = 0
    if h in repo.list_all_runs():
        metric = Run(h, repo=repo, read_only=True).get_metric("loss", Context({}))
        n = len(metric.data.items_list()[0]) if metric is not None else 0
    out[h] = n
print(json.dumps(out))
"""


class Peer(abc.ABC):
    """A tool: its server (started, killed, started again) and its clients."""

    key = ""
    label = ""
    python = sys.executable
    client = ""
    version = ""

    def params(self, mode: str, n: int, experiment: str) -> dict:
        return {"mode": mode, "n": n, "experiment": experiment, "async": False}

    def spawn(self, mode: str, n: int, experiment: str, folder: Path) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [self.python, "-c", textwrap.dedent(self.client), json.dumps(self.params(mode, n, experiment))],
            cwd=folder,
            env=self.env(folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def env(self, folder: Path) -> dict:
        return dict(os.environ, PYTHONWARNINGS="ignore", DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true", AIM_UI_TELEMETRY_ENABLED="0")

    @abc.abstractmethod
    def counts(self, experiment: str, runs: list) -> dict:
        """Each run's points of `loss` on the tool's server, by run."""

    @abc.abstractmethod
    def kill9(self) -> None:
        """Kills the tool's server with SIGKILL."""

    @abc.abstractmethod
    def restart(self) -> None:
        """Starts the tool's server again, on the same store."""

    def close(self) -> None:
        pass


class LabPeer(Peer):
    key, label = "lab", "Lab"
    client = LAB_CLIENT

    def __init__(self, server: "team.LabServer", work: Path) -> None:
        self.server, self.work = server, work
        self.version = subprocess.run([team.LAB, "--version"], capture_output=True, text=True).stdout.strip().split()[-1]

    def spawn(self, mode: str, n: int, experiment: str, folder: Path) -> subprocess.Popen:
        # Lab's clients are projects: each in a folder named after the server project.
        project = folder / experiment
        project.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(self.client), json.dumps(self.params(mode, n, experiment))],
            cwd=project,
            env=team.lab_env(project, self.server),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def counts(self, experiment: str, runs: list) -> dict:
        # Each client is a project named after its experiment.
        return {r: self.server.counts(experiment, r).get("loss", 0) for r in runs}

    def kill9(self) -> None:
        self.server.kill9()

    def restart(self) -> None:
        self.server.start()


class MlflowPeer(Peer):
    def __init__(self, venv: Path, work: Path, pg: "team.Postgres", s3: "team.S3", asynchronous: bool) -> None:
        self.key, self.label = "mlflow", "MLflow"
        self.asynchronous = asynchronous
        self.python = str(venv / "bin" / "python")
        self.mlflow = str(venv / "bin" / "mlflow")
        self.client = MLFLOW_CLIENT
        self.work, self.pg, self.s3 = work, pg, s3
        self.version = subprocess.run([self.python, "-c", "from importlib.metadata import version; print(version('mlflow'))"], capture_output=True, text=True).stdout.strip()
        self.port = team.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: "subprocess.Popen | None" = None

    def create(self) -> None:
        subprocess.run(
            [str(self.pg.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres", "-q", "-c", "create database mlflow"],
            check=True,
            capture_output=True,
        )
        self.s3.bucket("mlflow")

    def server_env(self) -> dict:
        # A pool for 16 clients at once (4 workers of 16: 64 connections at most);
        # with its default (5, overflow 10) the
        # server answers `QueuePool limit ... reached` under the load scenario.
        return dict(
            self.env(self.work), **self.s3.env(), MLFLOW_S3_ENDPOINT_URL=self.s3.url,
            MLFLOW_SQLALCHEMYSTORE_POOL_SIZE="8", MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW="8",
        )

    def restart(self) -> None:
        log = open(self.work / f"mlflow-server-{time.monotonic_ns()}.log", "w")
        self.proc = subprocess.Popen(
            [
                self.mlflow, "server",
                "--backend-store-uri", f"postgresql+psycopg2://postgres@127.0.0.1:{self.pg.port}/mlflow",
                "--artifacts-destination", "s3://mlflow/artifacts",
                "--host", "127.0.0.1", "--port", str(self.port),
            ],
            cwd=self.work,
            env=self.server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # kill9 kills its workers too
        )
        log.close()
        deadline = time.monotonic() + 180
        while True:
            try:
                if team.http_request(self.url, "GET", "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`mlflow server` did not start; its log is in {self.work}")
            time.sleep(0.2)

    def params(self, mode: str, n: int, experiment: str) -> dict:
        return dict(super().params(mode, n, experiment), url=self.url, **{"async": self.asynchronous})

    def counts(self, experiment: str, runs: list) -> dict:
        out = subprocess.run(
            [self.python, "-c", MLFLOW_COUNT, json.dumps({"url": self.url, "runs": runs})],
            capture_output=True, text=True, env=self.env(self.work), timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"counting MLflow's points: {out.stderr.strip()[-800:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def kill9(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.kill9()


class AimPeer(Peer):
    key, label = "aim", "Aim"
    client = AIM_CLIENT

    def __init__(self, venv: Path, work: Path) -> None:
        self.python = str(venv / "bin" / "python")
        self.aim = str(venv / "bin" / "aim")
        self.work = work
        self.repo = work / "aim-repo"
        self.repo.mkdir(parents=True, exist_ok=True)
        subprocess.run([self.aim, "init", "--repo", str(self.repo)], check=True, capture_output=True, env=self.env(work))
        self.version = subprocess.run([self.python, "-c", "from importlib.metadata import version; print(version('aim'))"], capture_output=True, text=True).stdout.strip()
        self.port = team.free_port()
        self.url = f"aim://127.0.0.1:{self.port}"
        self.proc: "subprocess.Popen | None" = None

    def restart(self) -> None:
        log = open(self.work / f"aim-server-{time.monotonic_ns()}.log", "w")
        self.proc = subprocess.Popen(
            [self.aim, "server", "--host", "127.0.0.1", "--port", str(self.port), "--repo", str(self.repo)],
            cwd=self.work,
            env=self.env(self.work),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        team.wait_port(self.port, self.proc, 120)

    def params(self, mode: str, n: int, experiment: str) -> dict:
        return dict(super().params(mode, n, experiment), url=self.url)

    def counts(self, experiment: str, runs: list) -> dict:
        # Read from the repository itself, the server stopped: what it holds.
        self.kill9()
        try:
            out = subprocess.run(
                [self.python, "-c", AIM_COUNT, json.dumps({"repo": str(self.repo), "runs": runs})],
                capture_output=True, text=True, env=self.env(self.work), timeout=600,
            )
        finally:
            self.restart()
        if out.returncode != 0:
            raise RuntimeError(f"counting Aim's points: {out.stderr.strip()[-800:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def kill9(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.kill9()


def finish(proc: subprocess.Popen, timeout: float = CLIENT_TIMEOUT_S) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        tail = [line for line in err.strip().splitlines() if line.strip()]
        return {"error": f"status {proc.returncode}: {tail[-1] if tail else 'no output'}"}
    return json.loads(lines[-1])



def cost(peer: Peer, work: Path, n: int, reps: int) -> list:
    values = []
    for rep in range(reps):
        r = finish(peer.spawn("cost", n, f"cost-{peer.key}-{rep}", work / f"{peer.key}-cost-{rep}"))
        if "error" in r:
            raise RuntimeError(r["error"])
        values.append(r["ns_per_call"])
    return values


def load(peer: Peer, work: Path, points: int, clients: int, rep: int) -> dict:
    """Points per second from `clients` processes: first call to all held.
    Points the server lacks at the end are counted, not hidden."""
    name = f"load-{peer.key}-{rep}"
    procs = [peer.spawn("load", points, name, work / f"{peer.key}-load-{rep}" / f"c{k}") for k in range(clients)]
    outs = [finish(p) for p in procs]
    done = time.time()
    errors = [o["error"] for o in outs if "error" in o]
    if errors:
        raise RuntimeError(errors[0])
    start = min(o["start"] for o in outs)
    counts = peer.counts(name, [o["run"] for o in outs])
    said = [o[k] for o in outs for k in ("flush_error", "close_error") if k in o]
    return {"rate": clients * points / (done - start), "missing": clients * points - sum(counts.values()), "said": said[:3]}


def loads(peer: Peer, work: Path, points: int, reps: int) -> dict:
    rounds = [load(peer, work, points, team.CLIENTS, rep) for rep in range(reps)]
    out = team.summary([r["rate"] for r in rounds])
    out["missing"] = [r["missing"] for r in rounds]
    out["points"] = team.CLIENTS * points
    out["said"] = [m for r in rounds for m in r["said"]][:3]
    return out


def kill(peer: Peer, work: Path, n: int) -> dict:
    """One client logging a point a millisecond; its server killed at a third."""
    name = f"kill-{peer.key}"
    proc = peer.spawn("kill", n, name, work / f"{peer.key}-kill")
    killed = threading.Event()
    lines: list = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("progress") and not killed.is_set() and int(line.split()[1]) >= n // 3:
                peer.kill9()
                killed.set()
                time.sleep(KILL_DOWN_S)
                peer.restart()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        proc.wait(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
    reader.join()
    err = proc.stderr.read() if proc.stderr else ""
    results = [json.loads(line) for line in lines if line.startswith("{")]
    if not results:
        return {"error": f"the client ended with status {proc.returncode}: {err.strip()[-500:]}"}
    r = results[-1]
    if not killed.is_set():
        return {"error": "the client ended before its server was killed"}
    held = peer.counts(name, [r["run"]])[r["run"]]
    out = {"calls": n, "logged": r["logged"], "failed": r["failed"], "held": held, "lost": r["logged"] - held, "worst_call_s": r["worst_call_s"]}
    for k in ("flush_error", "close_error"):
        if k in r:
            out[k] = r[k]
    return out


def scenario_peers(server: "team.LabServer", pg: "team.Postgres", s3: "team.S3", work: Path, size: dict, results: dict) -> None:
    # (peer, asynchronous): MLflow's two modes share one server.
    peers: list = [(LabPeer(server, work), False)]
    status: dict = {}
    started: list = []
    mlflow = team.ensure_venv("mlflow") if {"mlflow", "mlflow-async"} & set(size["tools"]) else None
    if mlflow is None and {"mlflow", "mlflow-async"} & set(size["tools"]):
        status["mlflow"] = "could not be installed"
    elif mlflow is not None:
        try:
            m = MlflowPeer(mlflow, work, pg, s3, asynchronous=False)
            m.create()
            m.restart()
            started.append(m)
            peers += [(m, False), (m, True)]
        except Exception as exc:
            status["mlflow"] = str(exc)[-600:]
    aim = team.ensure_venv("aim") if "aim" in size["tools"] else None
    if aim is None and "aim" in size["tools"]:
        status["aim"] = "could not be installed"
    elif aim is not None:
        try:
            a = AimPeer(aim, work)
            a.restart()
            started.append(a)
            peers.append((a, False))
        except Exception as exc:
            status["aim"] = str(exc)[-600:]
    out: dict = {"status": status, "tools": {}}
    results["peers"] = out
    try:
        for peer, asynchronous in peers:
            if isinstance(peer, MlflowPeer):
                peer.asynchronous = asynchronous
                peer.key = "mlflow-async" if asynchronous else "mlflow"
                peer.label = "MLflow, async logging" if asynchronous else "MLflow"
            if peer.key not in size["tools"]:
                continue
            sz = dict(size)
            sz.update(size["mlflow_async_cap" if peer.key == "mlflow-async" else "mlflow_sync_cap"] if peer.key.startswith("mlflow") else {})
            row: dict = {"label": peer.label, "version": peer.version, "calls": sz["peer_call_n"], "points_per_client": sz["peer_points"]}
            out["tools"][peer.key] = row
            team.log(f"peers: {peer.label} {peer.version}")
            for what, fn in (
                ("ns_per_call", lambda p=peer, sz=sz: team.summary(cost(p, work, sz["peer_call_n"], sz["reps"]))),
                ("points_per_s", lambda p=peer, sz=sz: loads(p, work, sz["peer_points"], sz["peer_load_reps"])),
                ("kill", lambda p=peer, sz=sz: kill(p, work, sz["peer_kill_n"])),
            ):
                t = time.perf_counter()
                try:
                    row[what] = fn()
                except Exception as exc:  # shown in the table
                    row[what] = {"error": str(exc)[-600:]}
                team.log(f"peers: {peer.label} {what}: {time.perf_counter() - t:.0f} s: {json.dumps(row[what])[:300]}")
    finally:
        for peer in started:
            peer.close()
