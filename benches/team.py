"""Team mode's speed: `lab server` on PostgreSQL and S3, runs streamed while they train, `lab push`.

    python benches/team.py            # full sizes (make bench-team)
    python benches/team.py --quick    # small sizes: a smoke run of every scenario in a few minutes
    python benches/team.py --only ingest,visibility

Uses the `lab` next to this interpreter (a release build: `make bench-team`
installs one into .venv) and the standard library only. Starts, in
bench-out/team/work/ (removed at the start of each run): a PostgreSQL cluster
of its own (`initdb`, as in tests/team_server.py), an S3 server (`s3s-fs`, a
real S3 API over a folder on the disk) and one `lab server` process on
loopback on both, with no rate limit. The peers (MLflow's and Aim's tracking
servers, the AWS CLI) run from virtual environments of their own under
bench-out/team/venvs/, pinned in benches/peers/team-requirements.txt.

Scenarios (each a fresh project on the server, medians over repetitions):

- `log_metric`: the training thread's cost per call with the run streaming
  to the server, against streaming off;
- `ingest`: points per second into the one server process, (a) from 16
  clients sending journals prepared beforehand (PUTs of up to 8 MiB), and (b)
  from 16 processes logging and streaming as users do; from the first byte
  to every point folded and visible through the runs API;
- `visibility`: 16 clients logging 100 points a second each; the time from a
  `log_metric` call to the point showing in the runs API (p50, p99, max);
- `runs-api`: the first page of a project of 10,000 runs on the server;
- `peers`: MLflow's tracking server (PostgreSQL backend store, S3 artifacts,
  REST client) and Aim's remote tracking server on the same workload:
  training-thread cost per call, points per second from 16 clients, and
  what each holds after its server is killed (`kill -9`) mid-run;
- `push`: `lab push` of a 1 GB project to the S3 server against `aws s3
  sync` to the same server, and a push of the project unchanged.

Prints a table and writes bench-out/team.json and bench-out/team.md.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "bench-out"
STATE = OUT / "team"
REQUIREMENTS = HERE / "peers" / "team-requirements.txt"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))
from team_server import Postgres, free_port  # noqa: E402  (the tests' own PostgreSQL cluster)

LAB = str(Path(sys.executable).parent / "lab")
S3S_FS = shutil.which("s3s-fs") or str(Path.home() / ".cargo" / "bin" / "s3s-fs")
ACCESS_KEY, SECRET_KEY = "bench-access", "bench-secret-key"
CHUNK = 8 << 20  # the server's largest journal request
CLIENTS = 16

SIZES = {
    "full": {
        "reps": 5,
        "metric_blocks": 2000,  # of 1,000 calls: 2,000,000 calls a repetition
        "ingest_points": 1_000_000,  # per client, journals prepared beforehand
        "ingest_reps": 3,
        "stream_points": 500_000,  # per client, logged and streamed
        "stream_reps": 3,
        "visibility_s": 20,
        "visibility_reps": 3,
        "many_runs": 10_000,
        "api_reps": 101,
        "peer_call_n": 2_000,
        "peer_points": 500,  # per client, 16 clients
        "peer_kill_n": 3_000,
        "peer_load_reps": 3,
        # MLflow's synchronous log_metric takes ~0.1 s a call here: fewer calls
        "mlflow_sync_cap": {"peer_call_n": 100, "peer_points": 50, "peer_kill_n": 300},
        # and its asynchronous queue drains slowly into the server under 16 clients
        "mlflow_async_cap": {"peer_points": 100},
        "push_mb": 1024,
        "push_reps": 5,
    },
    "quick": {
        "reps": 2,
        "metric_blocks": 100,
        "ingest_points": 20_000,
        "ingest_reps": 1,
        "stream_points": 20_000,
        "stream_reps": 1,
        "visibility_s": 3,
        "visibility_reps": 1,
        "many_runs": 300,
        "api_reps": 11,
        "peer_call_n": 100,
        "peer_points": 100,
        "peer_kill_n": 150,
        "peer_load_reps": 1,
        "mlflow_sync_cap": {"peer_call_n": 30, "peer_points": 30, "peer_kill_n": 90},
        "mlflow_async_cap": {"peer_points": 30},
        "push_mb": 64,
        "push_reps": 1,
    },
}
SCENARIOS = ["log_metric", "ingest", "visibility", "runs-api", "push", "peers"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summary(values: list) -> dict:
    values = sorted(values)
    return {
        "median": statistics.median(values),
        "p99": percentile(values, 99),
        "min": values[0],
        "max": values[-1],
        "n": len(values),
    }


def percentile(values: list, p: float) -> float:
    """The nearest-rank percentile of `values` (sorted or not)."""
    values = sorted(values)
    rank = max(1, min(len(values), -(-len(values) * p // 100)))
    return values[int(rank) - 1]


# ------------------------------------------------------------ the servers


def wait_port(port: int, proc: "subprocess.Popen | None" = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the process on port {port} exited with status {proc.returncode}")
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s")


class S3:
    """`s3s-fs`: the S3 API over a folder; each folder under it is a bucket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root.parent / "s3s-fs.log", "w")
        self.proc = subprocess.Popen(
            [S3S_FS, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, str(root)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc)

    def bucket(self, name: str, empty: bool = False) -> str:
        path = self.root / name
        if empty:
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(exist_ok=True)
        return name

    def env(self) -> dict:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.url,
        }

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class LabServer:
    """One `lab server` process on the database and the S3 server."""

    def __init__(self, work: Path, pg: Postgres, s3: S3) -> None:
        self.work, self.pg, self.s3 = work, pg, s3
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = f"s3://{s3.bucket('lab')}/team"
        self.proc: "subprocess.Popen | None" = None
        self.start()
        self.token = self.make_token("bench", "admin")

    def start(self) -> None:
        out = open(self.work / f"lab-server-{time.monotonic_ns()}.log", "w")
        self.proc = subprocess.Popen(
            [LAB, "server", "--database", self.pg.url, "--artifacts", self.artifacts, "--listen", f"127.0.0.1:{self.port}", "--rate-limit", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, **self.s3.env()),
        )
        out.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_request(self.url, "GET", "/api/v1/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`lab server` did not start; its log is in {self.work}")
            time.sleep(0.05)

    def make_token(self, name: str, role: str) -> str:
        out = subprocess.run(
            [LAB, "server", "token", "create", "--database", self.pg.url, "--name", name, "--role", role],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def get(self, path: str) -> dict:
        status, body, _ = http_request(self.url, "GET", "/api/v1" + path, token=self.token, timeout=120)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def counts(self, project: str, run: str) -> dict:
        """Each metric's number of points in the server's index."""
        detail = self.get(f"/projects/{project}/runs/{run}")
        return {m["name"]: m["count"] for m in detail["metrics"]}

    def close(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http_request(base: str, method: str, path: str, body: bytes = b"", token: str = "", timeout: float = 60, conn=None):
    """(status, body, headers) of one request; `conn` is reused when given."""
    own = conn is None
    if own:
        u = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = {"Content-Type": "application/octet-stream"} if body else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=body or None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, dict(r.getheaders())
    finally:
        if own:
            conn.close()


# ------------------------------------------------------------ Lab clients


def lab_env(project: Path, server: "LabServer | None", grace: float = 120) -> dict:
    env = dict(os.environ, LAB_PROJECT=str(project), XDG_CONFIG_HOME=str(project.parent / ".config"), LAB_UPLOAD_GRACE_SECS=str(grace))
    env.pop("LAB_SERVER", None)
    env.pop("LAB_TOKEN", None)
    if server is not None:
        env["LAB_SERVER"], env["LAB_TOKEN"] = server.url, server.token
    return env


def spawn(code: str, project: Path, server: "LabServer | None", python: str = sys.executable, env: "dict | None" = None) -> subprocess.Popen:
    project.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [python, "-c", textwrap.dedent(code)],
        cwd=project,
        env=env or lab_env(project, server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc: subprocess.Popen, timeout: float = 1800) -> dict:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"a client failed (status {proc.returncode}): {err.strip()[-1500:]}")
    return json.loads(lines[-1])


def run_child(code: str, project: Path, server: "LabServer | None") -> dict:
    return result(spawn(code, project, server))


# The training thread's cost: blocks of 1,000 calls with a little "training"
# between them, so the upload thread sends while the loop runs.
LOG_METRIC = """
import json, time
from lab.experiment import Experiment
e = Experiment("bench")
clock = time.perf_counter_ns
blocks = []
with e.start_run():
    log = e.log_metric
    log("loss", 0.0, step=0)
    step = 1
    for b in range({blocks}):
        t = clock()
        for i in range(1000):
            log("loss", 0.5, step=step + i)
        blocks.append((clock() - t) / 1000)
        step += 1000
        time.sleep(0.0005)
print(json.dumps({{"run": e.run_id, "points": step, "ns_per_call": sum(blocks) / len(blocks), "block_ns": sorted(blocks)}}))
"""


def scenario_log_metric(server: LabServer, work: Path, size: dict, results: dict) -> None:
    off, on, slow_blocks = [], [], []
    for rep in range(size["reps"]):
        for streaming in ([False, True] if rep % 2 == 0 else [True, False]):  # alternate: drift hits both
            project = work / f"cost-{'on' if streaming else 'off'}-{rep}"
            r = run_child(LOG_METRIC.format(blocks=size["metric_blocks"]), project, server if streaming else None)
            (on if streaming else off).append(r["ns_per_call"])
            if streaming:
                slow_blocks.append(percentile(r["block_ns"], 99))
                got = server.counts(project.name, r["run"]).get("loss")
                if got != r["points"]:
                    raise RuntimeError(f"the server holds {got} points of {r['points']} of run {r['run']}")
            shutil.rmtree(project)
    results["log_metric_ns_off"] = summary(off)
    results["log_metric_ns_streaming"] = summary(on)
    results["log_metric_ns_streaming_p99_block"] = summary(slow_blocks)
    results["log_metric_calls_per_rep"] = size["metric_blocks"] * 1000


# ------------------------------------------------------------ ingest

GENERATE = """
import json
import lab
from lab.experiment import Experiment
e = Experiment("ingest")
ids = []
for r in range({runs}):
    with e.start_run():
        log = e.log_metric
        for i in range({points}):
            log("loss", i * 1e-6, step=i)
    ids.append(e.run_id)
paths = {{run.id: str(run.path) for run in lab.runs()}}
print(json.dumps({{"runs": [[i, paths[i]] for i in ids]}}))
"""


def journal_of(run_path: str) -> Path:
    return Path(run_path) / "journal.lab"


def put_journal(server: LabServer, project: str, run: str, data: bytes, conn=None) -> None:
    """Sends a whole journal in requests of at most 8 MiB, as a client does."""
    offset = 0
    while offset < len(data):
        path = f"/api/v1/projects/{project}/runs/{run}/journal?offset={offset}"
        status, body, headers = http_request(server.url, "PUT", path, data[offset : offset + CHUNK], server.token, conn=conn, timeout=300)
        if status in (429, 503):
            time.sleep(float(headers.get("Retry-After", "1")))
            continue
        if status != 200:
            raise RuntimeError(f"PUT {path}: {status} {body[:300]!r}")
        length = json.loads(body)["length"]
        if length <= offset:
            raise RuntimeError(f"PUT {path}: no progress ({length})")
        offset = length


def put_many(server: LabServer, project: str, journals: list, threads: int) -> None:
    """`journals`: [(run id, bytes)], sent by `threads` clients at once, each
    with a connection of its own."""
    todo = list(journals)
    lock = threading.Lock()
    errors: list = []

    def worker() -> None:
        u = urllib.parse.urlsplit(server.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        try:
            while True:
                with lock:
                    if not todo or errors:
                        return
                    run, data = todo.pop()
                put_journal(server, project, run, data, conn)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


STREAM = """
import json, time
from lab.experiment import Experiment
e = Experiment("stream")
with e.start_run():
    log = e.log_metric
    start = time.time()
    for i in range({points}):
        log("loss", i * 1e-6, step=i)
    log("done", 1.0)
    logged = time.time()
print(json.dumps({{"run": e.run_id, "start": start, "logged": logged}}))
"""


def wait_visible(server: LabServer, project: str, runs: int, metric: str, deadline_s: float) -> float:
    """Polls the runs listing until `runs` runs show `metric`; the time.time() it first did."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            page = server.get(f"/projects/{project}/runs?limit=1000")
            if sum(1 for r in page["runs"] if metric in r["metrics"]) >= runs:
                return time.time()
        except RuntimeError:
            pass  # the project is not there yet: 404
        time.sleep(0.02)
    raise RuntimeError(f"`{metric}` not visible in {runs} runs of `{project}` after {deadline_s:.0f} s")


def scenario_ingest(server: LabServer, work: Path, size: dict, results: dict) -> None:
    points = size["ingest_points"]
    # (a) Journals prepared beforehand, one per client.
    source = work / "ingest-source"
    log(f"ingest: preparing {CLIENTS} journals of {points:,} points")
    made = run_child(GENERATE.format(runs=CLIENTS, points=points), source, None)
    journals = [(run, journal_of(path).read_bytes()) for run, path in made["runs"]]
    total_bytes = sum(len(d) for _, d in journals)
    rates, mbs = [], []
    for rep in range(size["ingest_reps"]):
        project = f"ingest-{rep}"
        t0 = time.perf_counter()
        put_many(server, project, journals, CLIENTS)
        # Visible: every run's count, read back through the runs API.
        for run, _ in journals:
            got = server.counts(project, run).get("loss")
            if got != points:
                raise RuntimeError(f"ingest: run {run} shows {got} points of {points}")
        elapsed = time.perf_counter() - t0
        rates.append(CLIENTS * points / elapsed)
        mbs.append(total_bytes / elapsed / 1e6)
        log(f"ingest (prepared): {CLIENTS * points / elapsed:,.0f} points/s")
    results["ingest_prepared_points_per_s"] = summary(rates)
    results["ingest_prepared_mb_per_s"] = summary(mbs)
    results["ingest_prepared_shape"] = {"clients": CLIENTS, "points_per_client": points, "bytes": total_bytes}
    shutil.rmtree(source)

    # (b) 16 processes logging and streaming as users do.
    points = size["stream_points"]
    rates = []
    for rep in range(size["stream_reps"]):
        name = f"stream-{rep}"
        procs = [spawn(STREAM.format(points=points), work / name / f"c{k}" / name, server) for k in range(CLIENTS)]
        # Each client is a project folder of the same name, so all 16 land in one server project.
        seen = wait_visible(server, name, CLIENTS, "done", 600)
        outs = [result(p) for p in procs]
        start = min(o["start"] for o in outs)
        for o in outs:
            got = server.counts(name, o["run"]).get("loss")
            if got != points:
                raise RuntimeError(f"stream: run {o['run']} shows {got} points of {points}")
        rates.append(CLIENTS * points / (seen - start))
        log(f"ingest (streaming): {rates[-1]:,.0f} points/s")
        shutil.rmtree(work / name)
    results["ingest_streaming_points_per_s"] = summary(rates)
    results["ingest_streaming_shape"] = {"clients": CLIENTS, "points_per_client": points}


# ------------------------------------------------------------ visibility

VISIBLE = """
import json, time
from lab.experiment import Experiment
e = Experiment("visible")
times = []
with e.start_run():
    log = e.log_metric
    end = time.time() + {seconds}
    i = 0
    while time.time() < end:
        t = time.time()
        log("t", t, step=i)
        times.append(t)
        i += 1
        time.sleep(0.01)
print(json.dumps({{"run": e.run_id, "times": times}}))
"""


def scenario_visibility(server: LabServer, work: Path, size: dict, results: dict) -> None:
    p50s, p99s, maxes = [], [], []
    for rep in range(size["visibility_reps"]):
        name = f"visible-{rep}"
        seen: list = []  # (time, {run: last value})
        stop = threading.Event()

        def watch() -> None:
            u = urllib.parse.urlsplit(server.url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            while not stop.is_set():
                status, body, _ = http_request(server.url, "GET", f"/api/v1/projects/{name}/runs?limit=1000", token=server.token, conn=conn)
                now = time.time()
                if status == 200:
                    seen.append((now, {r["id"]: r["metrics"].get("t") for r in json.loads(body)["runs"]}))
                time.sleep(0.01)
            conn.close()

        watcher = threading.Thread(target=watch)
        watcher.start()
        procs = [spawn(VISIBLE.format(seconds=size["visibility_s"]), work / name / f"c{k}" / name, server) for k in range(CLIENTS)]
        outs = [result(p) for p in procs]
        time.sleep(1.0)
        stop.set()
        watcher.join()
        latencies, missing = [], 0
        for o in outs:
            j = 0
            times = o["times"]
            for now, lasts in seen:
                last = lasts.get(o["run"])
                if last is None:
                    continue
                while j < len(times) and times[j] <= last:
                    latencies.append(now - times[j])
                    j += 1
            missing += len(times) - j
        if missing:
            raise RuntimeError(f"visibility: {missing} points never seen")
        p50s.append(percentile(latencies, 50))
        p99s.append(percentile(latencies, 99))
        maxes.append(max(latencies))
        log(f"visibility: p50 {p50s[-1] * 1e3:.0f} ms, p99 {p99s[-1] * 1e3:.0f} ms over {len(latencies):,} points")
        shutil.rmtree(work / name)
    results["visibility_p50_ms"] = summary([x * 1e3 for x in p50s])
    results["visibility_p99_ms"] = summary([x * 1e3 for x in p99s])
    results["visibility_max_ms"] = summary([x * 1e3 for x in maxes])
    results["visibility_shape"] = {"clients": CLIENTS, "hz_per_client": 100, "seconds": size["visibility_s"]}


# ------------------------------------------------------------ runs API

MANY = """
import json, random
import lab
from lab.experiment import Experiment
rng = random.Random(0)
e = Experiment("many")
for r in range({runs}):
    with e.start_run():
        e.log_parameters({{f"p{{i}}": rng.choice([1, 2, 4, 8, 16]) if i % 2 else rng.random() for i in range(20)}})
        e.log_metrics({{f"m{{i}}": rng.random() for i in range(20)}})
print(json.dumps({{"runs": [[run.id, str(run.path)] for run in lab.runs()]}}))
"""


def scenario_runs_api(server: LabServer, work: Path, size: dict, results: dict) -> None:
    runs = size["many_runs"]
    source = STATE / f"many-{runs}" / "many"
    marker = source.parent / "runs.json"
    if not marker.exists():
        shutil.rmtree(source.parent, ignore_errors=True)
        log(f"runs-api: making {runs:,} runs (20 parameters, 20 metrics each)")
        made = run_child(MANY.format(runs=runs), source, None)
        marker.write_text(json.dumps(made))
    made = json.loads(marker.read_text())
    journals = [(run, journal_of(path).read_bytes()) for run, path in made["runs"]]
    t = time.perf_counter()
    put_many(server, "many", journals, 8)
    sent_s = time.perf_counter() - t
    log(f"runs-api: {runs:,} runs sent in {sent_s:.1f} s")
    results["runs_api_send_runs_per_s"] = runs / sent_s
    u = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    queries = {
        "first page (100 runs, newest first)": "limit=100",
        "first page, where + sort": urllib.parse.urlencode({"where": "m1 > 0.5", "sort": "-m0", "limit": 100}),
    }
    for label, q in queries.items():
        walls = []
        for i in range(size["api_reps"] + 1):
            t = time.perf_counter()
            status, body, _ = http_request(server.url, "GET", f"/api/v1/projects/many/runs?{q}", token=server.token, conn=conn)
            wall = (time.perf_counter() - t) * 1e3
            if status != 200:
                raise RuntimeError(f"runs API: {status} {body[:200]!r}")
            page = json.loads(body)
            if i == 0:
                if page["total"] < (runs if "where" not in q else 1) or len(page["runs"]) != min(100, page["total"]):
                    raise RuntimeError(f"runs API: {page['total']} runs, {len(page['runs'])} on the page")
                continue  # the first request opens the project
            walls.append(wall)
        results[f"runs_api_ms: {label}"] = summary(walls)
    conn.close()
    results["runs_api_runs"] = runs


# ------------------------------------------------------------ push


def make_push_project(root: Path, megabytes: int) -> Path:
    """A Lab project of about `megabytes` MB: data files of 16 MiB, 200 small
    code files and 20 runs; made once (kept under bench-out/)."""
    project = root / "push-project"
    marker = root / f"push-project-{megabytes}.json"
    if marker.exists() and project.exists():
        return project
    shutil.rmtree(project, ignore_errors=True)
    log(f"push: making a project of {megabytes} MB in {project}")
    (project / "data").mkdir(parents=True)
    rng = random.Random(0)
    for i in range(megabytes // 16):
        (project / "data" / f"shard-{i:03}.bin").write_bytes(os.urandom(16 << 20))
    (project / "src").mkdir()
    for i in range(200):
        (project / "src" / f"module_{i}.py").write_text("".join(f"x_{j} = {rng.random()!r}\n" for j in range(100)))
    code = """
from lab.experiment import Experiment
e = Experiment("push")
for r in range(20):
    with e.start_run():
        e.log_parameter("lr", 0.1 * r)
        for i in range(10_000):
            e.log_metric("loss", 1.0 / (i + 1), step=i)
print("{}")
"""
    run_child(code, project, None)
    marker.write_text("{}")
    return project


def du_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def ensure_venv(name: str) -> "Path | None":
    """bench-out/team/venvs/NAME with its lines of requirements.txt; None (and
    a message) when it cannot be made."""
    groups: dict = {}
    current = None
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.strip()
        if line.startswith("# tool:"):
            current = line.split(":", 1)[1].strip()
            groups[current] = []
        elif line and not line.startswith("#") and current:
            groups[current].append(line)
    venv = STATE / "venvs" / name
    stamp = hashlib.sha256(json.dumps([groups[name], sys.version]).encode()).hexdigest()
    if (venv / ".bench-stamp").exists() and (venv / ".bench-stamp").read_text() == stamp:
        return venv
    log(f"installing {name}: {' '.join(groups[name])}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *groups[name]], capture_output=True, text=True
    )
    if proc.returncode != 0:
        log(f"cannot install {name}: {proc.stderr.strip()[-500:]}")
        return None
    (venv / ".bench-stamp").write_text(stamp)
    return venv


def timed(cmd: list, env: dict, cwd: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed: {proc.stderr.strip()[-800:]}")
    return time.perf_counter() - t


def scenario_push(s3: S3, work: Path, size: dict, results: dict) -> None:
    project = make_push_project(STATE, size["push_mb"])
    results["push_project_bytes"] = du_bytes(project)
    config = work / "push-config"
    env = dict(os.environ, XDG_CONFIG_HOME=str(config), NO_COLOR="1")
    env.pop("LAB_PROJECT", None)
    subprocess.run(
        [LAB, "config", "minio", "--tag", "bench", "--endpoint", f"127.0.0.1:{s3.port}", "--accesskey", ACCESS_KEY, "--secretkey", SECRET_KEY],
        env=env,
        check=True,
        capture_output=True,
    )
    aws = ensure_venv("awscli")
    aws_env = dict(os.environ, **s3.env())
    aws_cmd = [str(aws / "bin" / "aws"), "--endpoint-url", s3.url, "s3", "sync", "--quiet", str(project), "s3://sync/push-project"] if aws else None
    first, again, aws_first, aws_again = [], [], [], []
    for rep in range(size["push_reps"]):
        s3.bucket("push", empty=True)
        s3.bucket("sync", empty=True)
        order = ["lab", "aws"] if rep % 2 == 0 else ["aws", "lab"]
        for tool in order:
            if tool == "lab":
                # A first push: the hashes an earlier push kept are forgotten, so it reads every file.
                (project / ".lab" / "push" / "hashes.json").unlink(missing_ok=True)
                first.append(timed([LAB, "push", "--tag", "bench", "--bucket", "push", "."], env, project))
                again.append(timed([LAB, "push", "--tag", "bench", "--bucket", "push", "."], env, project))
                log(f"push: lab push {first[-1]:.1f} s, again {again[-1]:.2f} s")
            elif aws_cmd:
                aws_first.append(timed(aws_cmd, aws_env, project))
                aws_again.append(timed(aws_cmd, aws_env, project))
                log(f"push: aws s3 sync {aws_first[-1]:.1f} s, again {aws_again[-1]:.2f} s")
    results["push_lab_s"] = summary(first)
    results["push_lab_unchanged_s"] = summary(again)
    if aws_first:
        results["push_aws_sync_s"] = summary(aws_first)
        results["push_aws_sync_unchanged_s"] = summary(aws_again)
    else:
        results["push_aws_sync_s"] = {"error": "awscli could not be installed"}
    s3.bucket("push", empty=True)
    s3.bucket("sync", empty=True)


# ------------------------------------------------------------ output

ROWS = [
    # key, label, unit, target, higher is better
    ("log_metric_ns_off", "`log_metric`, streaming off", "ns/call", None, False),
    ("log_metric_ns_streaming", "`log_metric`, streaming on", "ns/call", 1000, False),
    ("log_metric_ns_streaming_p99_block", "`log_metric`, streaming on: slowest 1% of 1,000-call blocks", "ns/call", None, False),
    ("ingest_prepared_points_per_s", "ingest: 16 clients PUT prepared journals", "points/s", 1_000_000, True),
    ("ingest_prepared_mb_per_s", "ingest: 16 clients PUT prepared journals", "MB/s", None, True),
    ("ingest_streaming_points_per_s", "ingest: 16 processes logging and streaming", "points/s", 1_000_000, True),
    ("visibility_p50_ms", "visible on the server after `log_metric`: p50", "ms", None, False),
    ("visibility_p99_ms", "visible on the server after `log_metric`: p99", "ms", 1000, False),
    ("visibility_max_ms", "visible on the server after `log_metric`: max", "ms", None, False),
    ("runs_api_ms: first page (100 runs, newest first)", "runs API, {runs} runs: first page of 100", "ms", 50, False),
    ("runs_api_ms: first page, where + sort", "runs API, {runs} runs: first page of 100, `where` + `sort`", "ms", 50, False),
    ("push_lab_s", "`lab push`, new project", "s", None, False),
    ("push_aws_sync_s", "`aws s3 sync`, new project", "s", None, False),
    ("push_lab_unchanged_s", "`lab push`, unchanged project", "s", 2, False),
    ("push_aws_sync_unchanged_s", "`aws s3 sync`, unchanged project", "s", None, False),
]


def fmt(x: float) -> str:
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table(results: dict) -> list:
    rows = []
    for key, label, unit, target, higher in ROWS:
        s = results.get(key)
        if not isinstance(s, dict) or "median" not in s:
            continue
        if target is None:
            verdict = ""
        else:
            met = s["median"] >= target if higher else s["median"] <= target
            verdict = f"{'≥' if higher else '≤'} {fmt(target)}: {'met' if met else 'missed'}"
        spread = f"{fmt(s['min'])}–{fmt(s['max'])}"
        label = label.format(runs=f"{results.get('runs_api_runs', 0):,}")
        rows.append([label, unit, fmt(s["median"]), fmt(s["p99"]), spread, str(s["n"]), verdict])
    return rows


def render(results: dict) -> tuple:
    head = ["measure", "unit", "median", "p99", "min–max", "n", "target"]
    rows = table(results)
    ratios = []
    if "log_metric_ns_streaming" in results and "log_metric_ns_off" in results:
        ratios.append(("`log_metric` streaming on / off", results["log_metric_ns_streaming"]["median"] / results["log_metric_ns_off"]["median"]))
    if "push_aws_sync_s" in results and "median" in results["push_aws_sync_s"]:
        ratios.append(("`aws s3 sync` time / `lab push` time, new project", results["push_aws_sync_s"]["median"] / results["push_lab_s"]["median"]))
        ratios.append(("`aws s3 sync` time / `lab push` time, unchanged", results["push_aws_sync_unchanged_s"]["median"] / results["push_lab_unchanged_s"]["median"]))
    for key, value in results.get("ratios", {}).items():
        ratios.append((key, value))
    peers = results.get("peers", {}).get("tools", {})
    lab_cost = peers.get("lab", {}).get("ns_per_call", {}).get("median")
    lab_rate = peers.get("lab", {}).get("points_per_s", {}).get("median")
    for key, row in peers.items():
        if key == "lab":
            continue
        c, r = row.get("ns_per_call", {}), row.get("points_per_s", {})
        if lab_cost and "median" in c:
            ratios.append((f"{row['label']} / Lab, training-thread time per call", c["median"] / lab_cost))
        if lab_rate and "median" in r:
            ratios.append((f"Lab / {row['label']}, points per second from 16 clients", lab_rate / r["median"]))
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]
    text: list = []
    md: list = []
    if rows:
        text = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
        text += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        md = ["| " + " | ".join(head) + " |", "|---|---|---:|---:|---:|---:|---|"]
        md += ["| " + " | ".join(r) + " |" for r in rows]
    if ratios:
        text.append("")
        md.append("")
        md.append("| ratio | value |")
        md.append("|---|---:|")
        for name, value in ratios:
            text.append(f"{name}: {value:.2f}×")
            md.append(f"| {name} | {value:.2f}× |")
    if peers:
        phead = ["tool", "version", "µs per call (median)", "points/s, 16 clients (median)", "kill -9: calls returned", "held after", "lost", "longest call (s)"]
        prows = []
        for row in peers.values():
            c, r, k = row.get("ns_per_call", {}), row.get("points_per_s", {}), row.get("kill", {})
            cells = [row["label"], row["version"]]
            cells.append(fmt(c["median"] / 1e3) if "median" in c else "error: " + c.get("error", "?")[:120])
            if "median" in r:
                lost = sum(r.get("missing", []))
                cells.append(fmt(r["median"]) + (f" ({lost:,} of {r['points'] * len(r['missing']):,} points missing)" if lost else ""))
            else:
                cells.append("error: " + r.get("error", "?")[:120])
            if "held" in k:
                cells += [f"{k['logged']:,} of {k['calls']:,}", f"{k['held']:,}", f"{k['lost']:,}", fmt(k["worst_call_s"])]
            else:
                cells += ["error: " + k.get("error", "?")[:120], "", "", ""]
            prows.append(cells)
        text.append("")
        text.append("  |  ".join(phead))
        text += ["  |  ".join(c) for c in prows]
        md.append("")
        md.append("| " + " | ".join(phead) + " |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|")
        md += ["| " + " | ".join(c) + " |" for c in prows]
        for tool, why in results["peers"].get("status", {}).items():
            text.append(f"{tool}: {why}")
            md.append(f"\n{tool}: {why}")
    return "\n".join(text), "\n".join(md)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated scenarios among {', '.join(SCENARIOS)}")
    parser.add_argument("--peers", default="lab,mlflow,mlflow-async,aim", help="the tools of the `peers` scenario")
    parser.add_argument("--json", type=Path, default=OUT / "team.json")
    parser.add_argument("--md", type=Path, default=OUT / "team.md")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario `{unknown[0]}`; expected some of {', '.join(SCENARIOS)}")
    size = SIZES["quick" if args.quick else "full"]
    results: dict = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(), "quick": args.quick},
        "store": "s3s-fs (S3 over a folder on the same disk), PostgreSQL 15 temp cluster, all on 127.0.0.1",
    }
    work = STATE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    pg = Postgres(work / "pg")
    s3 = S3(work / "s3")
    server = None
    try:
        server = LabServer(work, pg, s3)
        results["server"] = server.url
        for name in only:
            log(f"scenario {name}")
            t = time.perf_counter()
            try:
                if name == "log_metric":
                    scenario_log_metric(server, work, size, results)
                elif name == "ingest":
                    scenario_ingest(server, work, size, results)
                elif name == "visibility":
                    scenario_visibility(server, work, size, results)
                elif name == "runs-api":
                    scenario_runs_api(server, work, size, results)
                elif name == "push":
                    scenario_push(s3, work, size, results)
                elif name == "peers":
                    import team_peers  # only this scenario needs it

                    team_peers.scenario_peers(server, pg, s3, work, dict(size, tools=args.peers.split(",")), results)
            except Exception as exc:  # the other scenarios still run; the error is in the results
                log(f"scenario {name} failed: {exc}")
                results.setdefault("errors", {})[name] = str(exc)[-2000:]
            log(f"scenario {name}: {time.perf_counter() - t:.0f} s")
    finally:
        if server is not None:
            server.close()
        s3.close()
        pg.stop()
    results["wall_s"] = time.perf_counter() - t_start
    text, md = render(results)
    print(text)
    for name, error in results.get("errors", {}).items():
        print(f"\n{name} failed: {error}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.md.write_text(md + "\n")
    print(f"\nwritten to {args.json} and {args.md}")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
