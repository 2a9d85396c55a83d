"""Aim's side of the side-by-side benchmarks (see common.py for how it is run).

The repo is `.aim` in the work folder. Runs are made with Aim's system-resource
tracking and terminal-output capture turned off (less work for Aim, and the
crash child's acknowledgements go straight to the parent).

A fresh reader only sees what Aim's index holds, and Aim indexes a run in the
background of `aim up` / `aim server`, not when the run closes. The readers here
index every run first, as that background task would (RepoIndexManager.index);
the many-runs scenario counts that indexing in its write time.
"""

from __future__ import annotations

import os

import common
from common import clock

from aim import Repo, Run
from aim.sdk.types import QueryReportMode
from aim.storage.context import Context

RUN_OPTIONS = {"system_tracking_interval": None, "log_system_params": False, "capture_terminal_logs": False}


def repo() -> Repo:
    return Repo.from_path(os.getcwd(), init=not Repo.exists(os.getcwd()))


def new_run(r: Repo, experiment: str) -> Run:
    return Run(repo=r, experiment=experiment, **RUN_OPTIONS)


def index_all(r: Repo) -> int:
    from aim.sdk.index_manager import RepoIndexManager

    manager = RepoIndexManager.get_index_manager(r)
    hashes = r.list_all_runs()
    for h in hashes:
        manager.index(h)
    r.container_pool.clear()
    return len(hashes)


def info(_: dict) -> dict:
    return {"version": common.version("aim")}


class Tracker:
    def __init__(self):
        self.repo = repo()

    def start(self):
        self.run = new_run(self.repo, "seed")
        self.run.set_artifacts_uri("file://" + os.path.join(os.getcwd(), "artifacts"))

    def features(self, names):
        self.run["features"] = list(names)

    def parameter(self, key, value):
        self.run[key] = value

    def metric(self, key, value):
        self.run.track(value, name=key)

    def model(self, name, obj):
        # Aim has no model logging: the model file as an artifact, as its docs suggest
        import joblib

        path = os.path.join(os.getcwd(), f"{name}.joblib")
        joblib.dump(obj, path)
        self.run.log_artifact(path, name=f"{name}.joblib", block=True)

    def end(self):
        self.run.close()


def seed(p: dict) -> dict:
    return common.seed(Tracker(), p["quick"])


def log_metric(p: dict) -> dict:
    r = repo()
    n, end = p["n"], common.deadline(p["deadline_s"])
    run = new_run(r, "per-call")
    done = 0
    t0 = clock()
    for base in range(0, n, 100):  # the deadline is checked every 100 calls
        for i in range(base, min(base + 100, n)):
            run.track(i * 0.001, name="loss", step=i)
        done = min(base + 100, n)
        if clock() > end:
            break
    t1 = clock()
    common.emit({"partial": True, "calls": done, "us_per_call": (t1 - t0) / done * 1e6})  # what was measured, should waiting for durability time out
    t1b = clock()
    run.close()
    t2 = clock()
    return {"calls": done, "us_per_call": (t1 - t0) / done * 1e6, "durable_s": (t1 - t0) + (t2 - t1b)}


def log_batch(p: dict) -> dict:
    r = repo()
    steps, width, end = p["steps"], p["metrics"], common.deadline(p["deadline_s"])
    values = {f"m{k}": 0.5 + k for k in range(width)}
    run = new_run(r, "batch")
    done = 0
    t0 = clock()
    for i in range(steps):
        run.track(values, step=i)  # a dict: every metric in one call
        done = i + 1
        if clock() > end:
            break
    t1 = clock()
    common.emit({"partial": True, "points": done * width, "calls_s": t1 - t0})  # what was measured, should waiting for durability time out
    t1b = clock()
    run.close()
    t2 = clock()
    return {"points": done * width, "calls_s": t1 - t0, "durable_s": (t1 - t0) + (t2 - t1b)}


def many_write(p: dict) -> dict:
    r = repo()
    end = common.deadline(p["deadline_s"])
    done = 0
    t0 = clock()
    for i in range(p["runs"]):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        run = new_run(r, "many")
        run["hparams"] = params
        run.track(metrics, step=0)
        run.close()
        done = i + 1
        if clock() > end:
            break
    t1 = clock()
    seen = index_all(r)
    t2 = clock()
    return {"runs": done, "write_s": t1 - t0, "until_queryable_s": t2 - t0, "index_s": t2 - t1, "seen": seen}


def query_fill(p: dict) -> dict:
    """Grows the repo of the query scenario from run p["from"] towards run p["to"]
    through Aim's own SDK (Aim has no bulk path), in p["workers"] processes that
    take the next run number in turn until p["deadline_s"]; then indexes the new
    runs, as Aim's UI would in the background, so that a query sees them. Every
    number below the last one taken is written, so the repo holds runs 0..runs-1."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # nothing of this process's open repo inherited
    before = set(repo().list_all_runs())
    counter = ctx.Value("l", p["from"])
    t0 = clock()
    busy = ctx.Array("d", p["workers"])
    workers = [ctx.Process(target=fill_worker, args=(counter, busy, w, p)) for w in range(p["workers"])]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if any(w.exitcode for w in workers):
        raise RuntimeError(f"a writing process failed: exit codes {[w.exitcode for w in workers]}")
    t1 = clock()
    r = Repo.from_path(os.getcwd())
    from aim.sdk.index_manager import RepoIndexManager

    manager = RepoIndexManager.get_index_manager(r)
    new = [h for h in r.list_all_runs() if h not in before]
    for h in new:
        manager.index(h)
    r.container_pool.clear()
    t2 = clock()
    written = counter.value - p["from"]
    return {
        "runs": counter.value,
        "api_runs": written,
        "api_write_s": sum(busy),  # the workers' own time: per run, what one process pays
        "fill_s": t2 - t0,
        "index_s": t2 - t1,
        "seen": len(before) + len(new),
        "workers": p["workers"],
    }


def fill_worker(counter, busy, w: int, p: dict) -> None:
    r = repo()
    end = clock() + p["deadline_s"]  # from here: the start of a process is not writing
    while clock() < end:
        with counter.get_lock():
            i = counter.value
            if i >= p["to"]:
                break
            counter.value = i + 1
        t = clock()
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        run = new_run(r, "many")
        run["hparams"] = params
        run.track(metrics, step=0)
        run.close()
        busy[w] += clock() - t


def many_query(p: dict) -> dict:
    """Aim's query language filters; Aim's SDK does not sort, so Python does."""
    ctx = Context({}).idx
    query = f"run.metrics['{common.QUERY_METRIC}'].last > {common.QUERY_THRESHOLD}"
    timings, rows = [], []
    for _ in range(2):
        t = clock()
        r = Repo.from_path(os.getcwd())
        found = []
        for seqs in r.query_runs(query, report_mode=QueryReportMode.DISABLED).iter_runs():
            found.append((seqs.run.meta_run_tree["traces", ctx, common.SORT_METRIC, "last"], seqs.run.hash))
        found.sort(reverse=True)
        timings.append(clock() - t)
        rows = [m0 for m0, _ in found]
    return {"first_s": timings[0], "warm_s": timings[1]} | common.check_rows(rows, p)


def crash_child(p: dict) -> None:
    r = repo()
    run = new_run(r, "crash")
    common.ack(-1)
    end = common.deadline(p["max_s"])
    i = 0
    while clock() < end:
        run.track(i * 0.001, name="loss", step=i)
        common.ack(i)
        i += 1
    run.close()


def read(p: dict) -> dict:
    r = Repo.from_path(os.getcwd())
    index_all(r)
    runs = []
    acked = p.get("acked")
    for h in r.list_all_runs():
        run = Run(h, repo=r, read_only=True)
        metric = run.get_metric("loss", Context({}))
        steps = metric.data.items_list()[0] if metric is not None else []
        runs.append(
            {
                "status": "active (no end time)" if run.end_time is None else "finished",
                "points": len(steps),
                "steps_below": None if acked is None else len({int(s) for s in steps if s < acked}),
            }
        )
    return {"runs": runs}


def memory(p: dict) -> dict:
    r = repo()
    n, end = p["n"], common.deadline(p["deadline_s"])
    run = new_run(r, "memory")
    run.track(0.0, name="loss", step=0)
    done = 0
    before = peak = common.rss_kb()
    for base in range(0, n, 100):  # the deadline is checked every 100 calls
        for i in range(base, min(base + 100, n)):
            run.track(i * 1e-7, name="loss", step=i)
        done = min(base + 100, n)
        peak = max(peak, common.rss_kb())
        if clock() > end:
            break
    common.emit({"points": done, "growth_mb": (peak - before) / 1024, "base_mb": before / 1024})
    os._exit(0)


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
