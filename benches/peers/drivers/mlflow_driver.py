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
            "crash_child": crash_child,
            "read": read,
            "memory": memory,
        }
    )
