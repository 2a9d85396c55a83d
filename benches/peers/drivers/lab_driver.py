"""Lab's side of the side-by-side benchmarks (see common.py for how it is run).

The project is the work folder: run.py sets LAB_PROJECT to it.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import time

import common
from common import clock

import lab
from lab.experiment import Experiment


def info(_: dict) -> dict:
    return {"version": common.version("lab")}


class Tracker:
    def __init__(self) -> None:
        self.e = Experiment("seed")

    def start(self):
        self.scope = self.e.start_run()
        self.scope.__enter__()

    def features(self, names):
        self.e.log_features(names)

    def parameter(self, key, value):
        self.e.log_parameter(key, value)

    def metric(self, key, value):
        self.e.log_metric(key, value)

    def model(self, name, obj):
        self.e.log_model(name, obj)

    def end(self):
        self.scope.__exit__(None, None, None)


def seed(p: dict) -> dict:
    return common.seed(Tracker(), p["quick"])


def log_metric(p: dict) -> dict:
    n, end = p["n"], common.deadline(p["deadline_s"])
    e = Experiment("per-call")
    done = 0
    with e.start_run():
        t0 = clock()
        for base in range(0, n, 1000):
            for i in range(base, min(base + 1000, n)):
                e.log_metric("loss", i * 0.001, step=i)
            done = min(base + 1000, n)
            if clock() > end:
                break
        t1 = clock()
        common.emit({"partial": True, "calls": done, "us_per_call": (t1 - t0) / done * 1e6})  # what was measured, should waiting for durability time out
        t1b = clock()
        # Nothing to wait for: each record was in the page cache when its call returned.
        t2 = clock()
    return {"calls": done, "us_per_call": (t1 - t0) / done * 1e6, "durable_s": (t1 - t0) + (t2 - t1b)}


def log_batch(p: dict) -> dict:
    steps, width, end = p["steps"], p["metrics"], common.deadline(p["deadline_s"])
    values = {f"m{k}": 0.5 + k for k in range(width)}
    e = Experiment("batch")
    done = 0
    with e.start_run():
        t0 = clock()
        for i in range(steps):
            e.log_metrics(values, step=i)
            done = i + 1
            if clock() > end:
                break
        t1 = clock()
        common.emit({"partial": True, "points": done * width, "calls_s": t1 - t0})  # what was measured, should waiting for durability time out
        t1b = clock()
        t2 = clock()
    return {"points": done * width, "calls_s": t1 - t0, "durable_s": (t1 - t0) + (t2 - t1b)}


def many_write(p: dict) -> dict:
    end = common.deadline(p["deadline_s"])
    e = Experiment("many")
    done = 0
    t0 = clock()
    for i in range(p["runs"]):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        with e.start_run():
            e.log_parameters(params)
            e.log_metrics(metrics)
        done = i + 1
        if clock() > end:
            break
    t1 = clock()
    seen = len(lab.runs())  # folds every journal into the index: queryable from here on
    t2 = clock()
    return {"runs": done, "write_s": t1 - t0, "until_queryable_s": t2 - t0, "seen": seen}


def query_fill(p: dict) -> dict:
    """Grows the project of the query scenario from run p["from"] to run p["to"],
    every run through Lab's API, then folds them into the index (queryable).

    An ended run keeps its journal's 8 MiB of reserved file space until Lab's
    background thread has synced it, and a loop that only makes runs outpaces
    that thread: 10,000 runs held 17 GB of disk at once. So every 100 runs the
    fill waits for the thread (counted in the write time)."""
    from lab import _lab

    e = Experiment("many")
    t0 = clock()
    for i in range(p["from"], p["to"]):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        with e.start_run():
            e.log_parameters(params)
            e.log_metrics(metrics)
        if i % 100 == 99 and hasattr(_lab, "wait_for_background"):
            _lab.wait_for_background()
    t1 = clock()
    seen = len(lab.runs())
    t2 = clock()
    written = p["to"] - p["from"]
    return {"runs": seen, "api_runs": written, "api_write_s": t1 - t0, "fill_s": t2 - t0, "index_s": t2 - t1}


def has_where() -> bool:
    return "where" in inspect.signature(lab.runs).parameters


def lab_ls_help() -> str:
    return subprocess.run([lab_bin(), "ls", "--help"], capture_output=True, text=True).stdout


def lab_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "lab")


def many_query(p: dict) -> dict:
    """The query `m1 > 0.5`, sorted by m0 largest first, timed in a fresh process:
    through lab.runs(where=, sort=) when it exists, else filtered and sorted in
    Python over lab.runs(); or through the `lab ls` command."""
    mode = p["mode"]
    if mode == "api":
        native = has_where()
        timings, rows = [], []
        for _ in range(2):  # the first call opens the project; the second is warm
            t = clock()
            if native:
                found = lab.runs(where=f"{common.QUERY_METRIC} > {common.QUERY_THRESHOLD}", sort=f"-{common.SORT_METRIC}")
            else:
                found = [r for r in lab.runs() if r.metrics.get(common.QUERY_METRIC, float("nan")) > common.QUERY_THRESHOLD]
                found.sort(key=lambda r: r.metrics[common.SORT_METRIC], reverse=True)
            timings.append(clock() - t)
            rows = [r.metrics[common.SORT_METRIC] for r in found]
        return {"first_s": timings[0], "warm_s": timings[1], "how": "where/sort" if native else "python"} | common.check_rows(rows, p)
    if mode == "cli":
        import json

        help_text = lab_ls_help()
        native = "--where" in help_text
        if native:
            # `--sort KEY`: DESIGN.md's query language sorts `-key` largest first; older
            # `lab ls` took a positional key, largest first, where `-` meant smallest first.
            sort = f"-{common.SORT_METRIC}" if "--sort" in help_text else common.SORT_METRIC
            sort_args = ["--sort", sort] if "--sort" in help_text else [sort]
            args = ["ls", "--where", f"{common.QUERY_METRIC} > {common.QUERY_THRESHOLD}", *sort_args]
        else:
            args = ["ls", common.SORT_METRIC]  # sorts largest first; filtered below, in Python
        args += ["--format", "json"]
        if re.search(r"--limit", help_text):
            args += ["--limit", str(10 * p["runs"] + 10)]
        t = clock()
        out = subprocess.run([lab_bin(), *args], capture_output=True, text=True, check=True).stdout
        elapsed = clock() - t
        found = json.loads(out)
        rows = []
        for r in found:
            metrics = r.get("metrics", {})
            m1 = metrics.get(common.QUERY_METRIC)
            m1 = m1.get("last") if isinstance(m1, dict) else m1
            if native or (m1 is not None and m1 > common.QUERY_THRESHOLD):
                m0 = metrics.get(common.SORT_METRIC)
                rows.append(m0.get("last") if isinstance(m0, dict) else m0)
        return {"first_s": elapsed, "how": "where" if native else "python", "command": "lab " + " ".join(args)} | common.check_rows(rows, p)
    if mode == "rest":
        return rest_query(p)
    raise ValueError(f"unknown mode {mode!r}")


def rest_query(p: dict) -> dict:
    """`lab ui` on the same project, on 127.0.0.1: GET /api/v1/runs, every page;
    then the first page of 100, as the web page asks for it."""
    import json
    import socket
    import urllib.parse
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [lab_bin(), "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=open("lab-ui.log", "w"),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/api/v1/runs?"
    query = {"where": f"{common.QUERY_METRIC} > {common.QUERY_THRESHOLD}", "sort": f"-{common.SORT_METRIC}"}
    try:
        t = clock()
        while True:
            try:
                urllib.request.urlopen(base + "limit=0", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or clock() - t > 60:
                    raise RuntimeError("lab ui did not start: " + open("lab-ui.log").read()[-500:])
                time.sleep(0.05)
        startup = clock() - t

        def get(**extra):
            url = base + urllib.parse.urlencode(query | extra)
            return json.loads(urllib.request.urlopen(url, timeout=600).read())

        timings, rows, pages = [], [], 0
        for _ in range(2):
            t = clock()
            found, pages = [], 0
            while True:
                page = get(limit=10000, offset=len(found))
                pages += 1
                found += page["runs"]
                if len(found) >= page["total"] or not page["runs"]:
                    break
            timings.append(clock() - t)
            rows = [r["metrics"][common.SORT_METRIC] for r in found]
        page_s, server_ms = [], []
        for _ in range(5):
            t = clock()
            with urllib.request.urlopen(base + urllib.parse.urlencode(query | {"limit": 100}), timeout=600) as r:
                r.read()
                timing = r.headers.get("Server-Timing", "")
            page_s.append(clock() - t)
            server_ms += [float(part[4:]) for part in timing.split(";") if part.startswith("dur=")]
        return {
            "first_s": timings[0],
            "warm_s": timings[1],
            "page_s": page_s,
            "page_server_ms": server_ms,
            "server_start_s": startup,
            "pages": pages,
        } | common.check_rows(rows, p)
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def crash_child(p: dict) -> None:
    e = Experiment("crash")
    with e.start_run():
        common.ack(-1)  # ready
        end = common.deadline(p["max_s"])
        i = 0
        while clock() < end:
            e.log_metric("loss", i * 0.001, step=i)
            common.ack(i)
            i += 1


def read(p: dict) -> dict:
    """Every run of the project: its status and the steps of `loss` (a fresh reader)."""
    runs = []
    for r in lab.runs():
        steps = [s for s, _, _ in r.metric_history("loss")] if p.get("acked") is not None else []
        count = (r.metric_summaries.get("loss") or {}).get("count", 0)
        runs.append({"status": r.status, "points": count, "steps_below": count_below(steps, p.get("acked"))})
    return {"runs": runs}


def count_below(steps, acked):
    if acked is None:
        return None
    return len({s for s in steps if s < acked})


def memory(p: dict) -> dict:
    n, end = p["n"], common.deadline(p["deadline_s"])
    e = Experiment("memory")
    done = 0
    with e.start_run():
        e.log_metric("loss", 0.0, step=0)
        before = peak = common.rss_kb()
        for base in range(0, n, 10_000):
            for i in range(base, min(base + 10_000, n)):
                e.log_metric("loss", i * 1e-7, step=i)
            done = min(base + 10_000, n)
            peak = max(peak, common.rss_kb())
            if clock() > end:
                break
        common.emit({"points": done, "growth_mb": (peak - before) / 1024, "base_mb": before / 1024})
    return None


if __name__ == "__main__":
    common.main(
        {
            "info": info,
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
