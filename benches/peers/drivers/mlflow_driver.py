"""MLflow's side of the side-by-side benchmarks (see common.py for how it is run).

The store is SQLite, `mlflow.db` in the work folder, with artifacts beside it.
`"mode": "async"` turns on MLflow's asynchronous logging
(`mlflow.config.enable_async_logging(True)`): logging calls queue their data
and a background thread writes it; `mlflow.flush_async_logging()` waits for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import common
from common import clock

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

def uri() -> str:
    return f"sqlite:///{os.path.abspath('mlflow.db')}"


def setup(p: dict, experiment: str) -> None:
    """Points MLflow at the store and creates it (schema migrations included)
    before anything is timed."""
    mlflow.set_tracking_uri(uri())
    if p.get("mode") == "async":
        mlflow.config.enable_async_logging(True)
    mlflow.set_experiment(experiment)


def init_store(_: dict) -> dict:
    """Creates an empty store (the schema); run.py copies it into every work folder,
    so that no child spends its time on MLflow's schema migrations."""
    mlflow.set_tracking_uri(uri())
    MlflowClient().search_experiments()
    return {"store": os.path.abspath("mlflow.db")}


def info(_: dict) -> dict:
    return {"version": common.version("mlflow")}


class Tracker:
    def start(self):
        mlflow.start_run()

    def features(self, names):
        mlflow.log_param("features", list(names))  # MLflow has no feature list: a parameter

    def parameter(self, key, value):
        mlflow.log_param(key, value)

    def metric(self, key, value):
        mlflow.log_metric(key, value)

    def model(self, name, obj):
        # cloudpickle, as joblib does for the others (MLflow 3's default, skops,
        # refuses a GridSearchCV's types unless each is listed as trusted)
        mlflow.sklearn.log_model(obj, name=name, serialization_format="cloudpickle")

    def end(self):
        mlflow.end_run()  # with async logging on, this waits for the queue


def seed(p: dict) -> dict:
    setup(p, "seed")
    import mlflow.sklearn  # noqa: F401  (imported before timing, as a script would)

    return common.seed(Tracker(), p["quick"])


def log_metric(p: dict) -> dict:
    setup(p, "per-call")
    n, end = p["n"], common.deadline(p["deadline_s"])
    done = 0
    with mlflow.start_run():
        t0 = clock()
        for base in range(0, n, 100):  # the deadline is checked every 100 calls
            for i in range(base, min(base + 100, n)):
                mlflow.log_metric("loss", i * 0.001, step=i)
            done = min(base + 100, n)
            if clock() > end:
                break
        t1 = clock()
        common.emit({"partial": True, "calls": done, "us_per_call": (t1 - t0) / done * 1e6})  # what was measured, should waiting for durability time out
        t1b = clock()
        if p.get("mode") == "async":
            mlflow.flush_async_logging()
        t2 = clock()
    return {"calls": done, "us_per_call": (t1 - t0) / done * 1e6, "durable_s": (t1 - t0) + (t2 - t1b)}


def log_batch(p: dict) -> dict:
    setup(p, "batch")
    steps, width, end = p["steps"], p["metrics"], common.deadline(p["deadline_s"])
    values = {f"m{k}": 0.5 + k for k in range(width)}
    done = 0
    with mlflow.start_run():
        t0 = clock()
        for i in range(steps):
            mlflow.log_metrics(values, step=i)
            done = i + 1
            if clock() > end:
                break
        t1 = clock()
        common.emit({"partial": True, "points": done * width, "calls_s": t1 - t0})  # what was measured, should waiting for durability time out
        t1b = clock()
        if p.get("mode") == "async":
            mlflow.flush_async_logging()
        t2 = clock()
    return {"points": done * width, "calls_s": t1 - t0, "durable_s": (t1 - t0) + (t2 - t1b)}


def many_write(p: dict) -> dict:
    """MLflow's fastest honest path for many runs: one log_batch per run."""
    setup(p, "many")
    client = MlflowClient()
    exp_id = mlflow.get_experiment_by_name("many").experiment_id
    end = common.deadline(p["deadline_s"])
    done = 0
    t0 = clock()
    for i in range(p["runs"]):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        run_id = client.create_run(exp_id).info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run_id)
        done = i + 1
        if clock() > end:
            break
    t1 = clock()
    return {"runs": done, "write_s": t1 - t0, "until_queryable_s": t1 - t0}


def query_fill(p: dict) -> dict:
    """Grows the store of the query scenario from run p["from"] to run p["to"]:
    the first p["sample"] runs of an empty store through MLflow's API (timed, the
    same calls as many_write), every other run inserted in bulk into the SQLite
    schema MLflow made, row for row as those API calls write it (bulk_insert).
    Before the first bulk insert, bulk_check proves on a copy of the store that
    search_runs reads bulk-inserted runs exactly as it reads the API's."""
    setup(p, "many")
    client = MlflowClient()
    exp_id = mlflow.get_experiment_by_name("many").experiment_id
    first, end = p["from"], p["to"]
    api_end = min(end, p["sample"]) if first < p["sample"] else first
    t0 = clock()
    for i in range(first, api_end):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        run_id = client.create_run(exp_id).info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run_id)
    t1 = clock()
    checked = 0
    if api_end < end:
        if first < api_end:  # once per store, when its sample was written
            checked = bulk_check(exp_id, min(5, api_end), p)
        bulk_insert(exp_id, exp_id, range(api_end, end), p)
    t2 = clock()
    return {"runs": end, "api_runs": api_end - first, "api_write_s": t1 - t0, "bulk_runs": end - api_end, "fill_s": t2 - t0, "bulk_s": t2 - t1, "checked": checked}


def bulk_insert(exp_id: str, template_exp_id: str, numbers, p: dict, db_path: str = "mlflow.db") -> None:
    """Inserts runs `numbers` into experiment exp_id with plain SQL in one
    transaction: for each, the rows that create_run + log_batch + set_terminated
    write (runs, tags, params, metrics, latest_metrics; see SqlAlchemyStore.create_run),
    every column copied from the first run of template_exp_id (written through
    the API) but for the run's id, name (MLflow's own generator), times,
    experiment, artifact location (under the experiment's, as MLflow makes it)
    and its data."""
    import sqlite3
    import uuid

    from mlflow.utils.name_utils import _generate_random_name

    db = sqlite3.connect(db_path)
    cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    template = db.execute("SELECT * FROM runs WHERE experiment_id = ? ORDER BY start_time LIMIT 1", (int(template_exp_id),)).fetchone()
    if template is None:
        raise RuntimeError("no run written through the API to copy")
    row = dict(zip(cols, template), experiment_id=int(exp_id))
    (location,) = db.execute("SELECT artifact_location FROM experiments WHERE experiment_id = ?", (int(exp_id),)).fetchone()
    tags = db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (row["run_uuid"],)).fetchall()
    if [k for k, _ in tags] != ["mlflow.runName"]:
        raise RuntimeError(f"the API's run has tags {tags!r}: bulk_insert writes only mlflow.runName")
    runs, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
    for i in numbers:
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        run_id, name = uuid.uuid4().hex, _generate_random_name()
        start = int(time.time() * 1000)
        r = dict(row, run_uuid=run_id, name=name, start_time=start, end_time=start + 1, artifact_uri=f"{location.rstrip('/')}/{run_id}/artifacts")
        runs.append(tuple(r[c] for c in cols))
        tag_rows.append(("mlflow.runName", name, run_id))
        param_rows += [(k, str(v), run_id) for k, v in params.items()]
        metric_rows += [(k, v, start, run_id, 0, 0) for k, v in metrics.items()]
        latest_rows += [(k, v, start, 0, 0, run_id) for k, v in metrics.items()]
    with db:
        db.executemany(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", runs)
        db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
        db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows)
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", metric_rows)
        db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)", latest_rows)
    db.close()


def bulk_check(exp_id: str, k: int, p: dict) -> int:
    """On a copy of the store: bulk-inserts runs 0..k-1 again into a fresh
    experiment and compares them, through search_runs and get_metric_history,
    with the same runs written through the API. Raises on any difference."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(dir=".") as d:
        db = os.path.join(d, "mlflow.db")
        shutil.copyfile("mlflow.db", db)
        client = MlflowClient(f"sqlite:///{os.path.abspath(db)}")
        check_id = client.create_experiment("bulk-check")
        bulk_insert(check_id, exp_id, range(k), p, db)
        api = client.search_runs([exp_id], max_results=50000)
        bulk = client.search_runs([check_id], max_results=50000)

        def key(r):
            return tuple(sorted(r.data.params.items()))

        by_params = {key(r): r for r in api}
        if len(bulk) != k:
            raise RuntimeError(f"bulk check: {len(bulk)} runs read back, expected {k}")
        for b in bulk:
            a = by_params.get(key(b))
            if a is None:
                raise RuntimeError(f"bulk check: no API run with the params {b.data.params!r}")
            for what, x, y in [
                ("params", a.data.params, b.data.params),
                ("metrics", a.data.metrics, b.data.metrics),
                ("tag keys", sorted(a.data.tags), sorted(b.data.tags)),
                ("run name tag", a.data.tags.get("mlflow.runName") == a.info.run_name, b.data.tags.get("mlflow.runName") == b.info.run_name),
                ("status", a.info.status, b.info.status),
                ("lifecycle", a.info.lifecycle_stage, b.info.lifecycle_stage),
                ("user", a.info.user_id, b.info.user_id),
                ("artifact uri", a.info.artifact_uri.replace(a.info.run_id, "<id>").replace(f"/{exp_id}/", "/<exp>/"), b.info.artifact_uri.replace(b.info.run_id, "<id>").replace(f"/{check_id}/", "/<exp>/")),
                ("ended", a.info.end_time >= a.info.start_time, b.info.end_time >= b.info.start_time),
                ("history", history(client, a), history(client, b)),
            ]:
                if x != y:
                    raise RuntimeError(f"bulk check: {what} differ between the API's run and the bulk one: {x!r} != {y!r}")
        # and the query itself, restricted to these runs, answers alike
        got = [r.data.metrics[common.SORT_METRIC] for r in client.search_runs([check_id], filter_string=FILTER, order_by=ORDER)]
        same = {key(b) for b in bulk}
        want = sorted((r.data.metrics[common.SORT_METRIC] for r in api if key(r) in same and r.data.metrics[common.QUERY_METRIC] > common.QUERY_THRESHOLD), reverse=True)
        if got != want:
            raise RuntimeError(f"bulk check: the query answers {got!r} on the bulk runs, {want!r} on the API's")
    return k


def history(client, run) -> list:
    return [[(m.key, m.value, m.step) for m in client.get_metric_history(run.info.run_id, name)] for name in sorted(run.data.metrics)]


FILTER = f"metrics.{common.QUERY_METRIC} > {common.QUERY_THRESHOLD}"
ORDER = [f"metrics.{common.SORT_METRIC} DESC"]


def many_query(p: dict) -> dict:
    if p["mode"] == "search":
        mlflow.set_tracking_uri(uri())
        timings, rows = [], []
        for _ in range(2):  # the first call opens the store; the second is warm
            t = clock()
            found = mlflow.search_runs(experiment_names=["many"], filter_string=FILTER, order_by=ORDER, output_format="list")
            timings.append(clock() - t)
            rows = [r.data.metrics[common.SORT_METRIC] for r in found]
        return {"first_s": timings[0], "warm_s": timings[1]} | common.check_rows(rows, p)
    if p["mode"] == "rest":
        return rest_query(p)
    raise ValueError(f"unknown mode {p['mode']!r}")


def rest_query(p: dict) -> dict:
    """`mlflow server` on the same store, on 127.0.0.1; POST runs/search, every page."""
    import json
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    server = subprocess.Popen(
        [mlflow_bin, "server", "--backend-store-uri", uri(), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=open("mlflow-server.log", "w"),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        t = clock()
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or clock() - t > 120:
                    raise RuntimeError("mlflow server did not start: " + open("mlflow-server.log").read()[-500:])
                time.sleep(0.2)
        startup = clock() - t
        if p.get("wait_for"):  # started early: query once the runs are written
            while not os.path.exists(p["wait_for"]):
                time.sleep(0.1)
            p = dict(p, runs=json.load(open(p["wait_for"]))["runs"])

        def post(path, body):
            req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(req, timeout=600).read())

        url = base + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=many"
        exp_id = json.loads(urllib.request.urlopen(url).read())["experiment"]["experiment_id"]
        timings, rows, pages = [], [], 0
        for _ in range(2):
            t = clock()
            found, token, pages = [], None, 0
            while True:
                body = {"experiment_ids": [exp_id], "filter": FILTER, "order_by": ORDER, "max_results": 50000}
                if token:
                    body["page_token"] = token
                page = post("/api/2.0/mlflow/runs/search", body)
                pages += 1
                found += page.get("runs", [])
                token = page.get("next_page_token")
                if not token:
                    break
            timings.append(clock() - t)
            rows = []
            for r in found:
                m = {x["key"]: x["value"] for x in r["data"].get("metrics", [])}
                rows.append(m[common.SORT_METRIC])
        # What a page of a UI asks for: the first 100 rows.
        page_s = []
        for _ in range(5):
            t = clock()
            post("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "filter": FILTER, "order_by": ORDER, "max_results": 100})
            page_s.append(clock() - t)
        return {"first_s": timings[0], "warm_s": timings[1], "page_s": page_s, "server_start_s": startup, "pages": pages} | common.check_rows(rows, p)
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def crash_child(p: dict) -> None:
    setup(p, "crash")
    with mlflow.start_run():
        common.ack(-1)
        end = common.deadline(p["max_s"])
        i = 0
        while clock() < end:
            mlflow.log_metric("loss", i * 0.001, step=i)
            common.ack(i)
            i += 1


def read(p: dict) -> dict:
    mlflow.set_tracking_uri(uri())
    client = MlflowClient()
    runs = []
    exps = [e.experiment_id for e in client.search_experiments()]
    for r in client.search_runs(exps, max_results=1000):
        history = client.get_metric_history(r.info.run_id, "loss")
        steps = {m.step for m in history}
        acked = p.get("acked")
        runs.append(
            {
                "status": r.info.status,
                "points": len(history),
                "steps_below": None if acked is None else len({s for s in steps if s < acked}),
            }
        )
    return {"runs": runs}


def memory(p: dict) -> dict:
    setup(p, "memory")
    n, end = p["n"], common.deadline(p["deadline_s"])
    done = 0
    mlflow.start_run()
    mlflow.log_metric("loss", 0.0, step=0)
    before = peak = common.rss_kb()
    for base in range(0, n, 100):  # the deadline is checked every 100 calls
        for i in range(base, min(base + 100, n)):
            mlflow.log_metric("loss", i * 1e-7, step=i)
        done = min(base + 100, n)
        peak = max(peak, common.rss_kb())
        if clock() > end:
            break
    common.emit({"points": done, "growth_mb": (peak - before) / 1024, "base_mb": before / 1024})
    os._exit(0)  # measured while logging; an async queue is not drained


if __name__ == "__main__":
    common.main(
        {
            "info": info,
            "init_store": init_store,
            "seed": seed,
            "log_metric": log_metric,
            "log_batch": log_batch,
            "many_write": many_write,
            "many_query": many_query,
            "query_fill": query_fill,
            "crash_child": crash_child,
            "read": read,
            "memory": memory,
        }
    )
