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

# benches/: the journal reading benches/million.py shares
sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from labjournal import EPOCH_SLOTS, HEADER, SLOT_NS, crc32c, read_frames  # noqa: E402

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
    """Grows the project of the query scenario from run p["from"] to run p["to"]:
    the first p["sample"] runs of an empty project through Lab's API (timed,
    the same calls as many_write), every other run written in bulk as a
    journal of its own, record for record as those API calls write it
    (bulk_write); then folds them all into the index (queryable). Before the
    first bulk write, bulk_check proves in another project that Lab reads
    bulk-written runs exactly as it reads the API's. MLflow's fill does the
    same with rows of its SQLite store.

    An ended run keeps its journal's reserved file space until Lab's
    background thread has synced it, and a loop that only makes runs can
    outpace that thread, so every 100 runs the API's loop waits for the
    thread (counted in the write time)."""
    from lab import _lab

    e = Experiment("many", system_metrics=False, capture=False)
    first, end = p["from"], p["to"]
    api_end = min(end, p["sample"]) if first < p["sample"] else first
    t0 = clock()
    for i in range(first, api_end):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        with e.start_run():
            e.log_parameters(params)
            e.log_metrics(metrics)
        if i % 100 == 99 and hasattr(_lab, "wait_for_background"):
            _lab.wait_for_background()
    if hasattr(_lab, "wait_for_background"):
        _lab.wait_for_background()
    t1 = clock()
    checked = 0
    if api_end < end:
        project = os.environ["LAB_PROJECT"]
        if first < api_end:  # once per project, when its sample was written
            checked = bulk_check(template_journal(project), min(5, api_end), p)
        bulk_write(project, template_journal(project), range(api_end, end), p)
    t2 = clock()
    seen = len(lab.runs())
    t3 = clock()
    return {
        "runs": seen,
        "api_runs": api_end - first,
        "api_write_s": t1 - t0,
        "bulk_runs": end - api_end,
        "bulk_s": t2 - t1,
        "fill_s": t3 - t0,
        "index_s": t3 - t2,
        "checked": checked,
    }


# ------------------------------------------------- journals written in bulk

def template_journal(project: str) -> list:
    """The frames of the project's first run (written through the API)."""
    runs = os.path.join(project, ".lab", "runs")
    first = min(n for n in os.listdir(runs) if len(n) == 8)
    with open(os.path.join(runs, first, "journal.lab"), "rb") as f:
        return [payload for payload, _ in read_frames(f.read())]


def encode_value(v) -> bytes:
    import struct

    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RuntimeError(f"bulk_write writes int and float parameters only, not {v!r}")
    return b"\x03" + struct.pack("<q", v) if isinstance(v, int) else b"\x04" + struct.pack("<d", v)


def bulk_write(project: str, template: list, numbers, p: dict) -> None:
    """Writes runs `numbers` as journals of their own: every record copied from
    the template (a run the API wrote) but for the run's id (a new slot, as
    Lab's own allocator claims it, and random bits), its times (now) and its
    data: the Param records and the Metrics record carry run i's values, in
    the template's order. Each journal is created exclusively and written
    under its lock, as a writer must (docs/journal-format.md); the lot is
    synced once at the end."""
    import fcntl
    import struct

    tags = [f[0] for f in template]
    keys = [f[13 : 13 + struct.unpack_from("<I", f, 9)[0]].decode() for f in template if f[0] == 4]
    names = {struct.unpack_from("<I", f, 1)[0]: f[9:].decode() for f in template if f[0] == 5}
    metrics_frames = [f for f in template if f[0] == 7]
    if sorted(keys) != sorted(common.many_runs_data(0, p["params"], p["metrics"])[0]) or len(metrics_frames) != 1 or tags.count(1) != 1 or tags[-1] != 13:
        raise RuntimeError(f"the template run's records do not have the shape bulk_write makes: tags {tags}")
    (m_time, m_count) = struct.unpack_from("<qI", metrics_frames[0], 1)
    order = [struct.unpack_from("<Iqd", metrics_frames[0], 13 + 20 * j)[:2] for j in range(m_count)]
    (t_start,) = struct.unpack_from("<q", template[0], 17)
    runs = os.path.join(project, ".lab", "runs")
    slot = 0
    for i in numbers:
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        now = time.time_ns()
        shift = now - t_start
        slot = max(slot + 1, now // SLOT_NS - EPOCH_SLOTS)
        while True:  # claim the short id with an atomic mkdir, as Lab does
            folder = os.path.join(runs, f"{slot:08x}")
            try:
                os.mkdir(folder)
                break
            except FileExistsError:
                slot += 1
        run_id = (slot << 96) | int.from_bytes(os.urandom(12), "big")
        out = [HEADER]
        for f in template:
            tag = f[0]
            if tag == 1:
                f = b"\x01" + run_id.to_bytes(16, "big") + struct.pack("<q", t_start + shift) + f[25:]
            elif tag == 4:
                (t,) = struct.unpack_from("<q", f, 1)
                key = f[13 : 13 + struct.unpack_from("<I", f, 9)[0]].decode()
                f = f[:1] + struct.pack("<q", t + shift) + f[9 : 13 + len(key.encode())] + encode_value(params[key])
            elif tag == 7:
                body = b"".join(struct.pack("<Iqd", num, step, metrics[names[num]]) for num, step in order)
                f = b"\x07" + struct.pack("<qI", m_time + shift, m_count) + body
            elif tag != 5:  # MetricKey has no time
                (t,) = struct.unpack_from("<q", f, 1)
                f = f[:1] + struct.pack("<q", t + shift) + f[9:]
            out.append(struct.pack("<II", len(f), crc32c(f)) + f)
        fd = os.open(os.path.join(folder, "journal.lab"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, b"".join(out))
        finally:
            os.close(fd)
    os.sync()


def bulk_check(template: list, k: int, p: dict) -> int:
    """In a new project: writes runs 0..k-1 through the API and again with
    bulk_write, and compares what Lab reads of each pair (params, metrics,
    their histories, tags, status, experiment, the recorded attributes but
    the writing process's id and command line). Raises on any difference."""
    import json
    import tempfile

    here = os.environ["LAB_PROJECT"]
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as d:
        os.makedirs(os.path.join(d, ".lab", "runs"))
        with open(os.path.join(here, ".lab", "project.json")) as f:
            project_json = f.read()
        with open(os.path.join(d, ".lab", "project.json"), "w") as f:
            f.write(project_json)
        # the API's runs from this script, as the fill's are (the source file and its git state are recorded)
        args = [sys.executable, os.path.abspath(__file__), "query_fill", json.dumps(dict(p, **{"from": 0, "to": k, "sample": k}))]
        subprocess.run(args, env=dict(os.environ, LAB_PROJECT=d), check=True, cwd=os.getcwd(), stdout=subprocess.DEVNULL)
        bulk_write(d, template, range(k), p)
        out = subprocess.run([sys.executable, "-c", CHECK_READ], env=dict(os.environ, LAB_PROJECT=d), check=True, capture_output=True, text=True)

    seen = json.loads(out.stdout)
    by_params: dict = {}
    for r in seen:
        by_params.setdefault(json.dumps(r["params"], sort_keys=True), []).append(r)
    if len(seen) != 2 * k or any(len(pair) != 2 for pair in by_params.values()):
        raise RuntimeError(f"bulk check: {len(seen)} runs read back in {len(by_params)} groups, expected {k} pairs")
    for pair in by_params.values():
        a, b = pair
        for what in a:
            if a[what] != b[what]:
                raise RuntimeError(f"bulk check: {what} differ between the API's run and the bulk one: {a[what]!r} != {b[what]!r}")
    return k


CHECK_READ = """
import json, lab
out = []
for r in lab.runs():
    attrs = {k: v for k, v in r.attrs.items() if k not in ("writer", "pid", "argv")}  # the writing process's own
    out.append({
        "params": r.params, "metrics": r.metrics, "status": r.status, "tags": r.tags,
        "experiment": r.experiment, "attrs": attrs, "damage": r.damage, "error": r.error,
        "history": {k: [(s, v) for s, _, v in r.metric_history(k)] for k in r.metrics},
        "summaries": r.metric_summaries, "ended": r.end_time >= r.start_time,
        "name_differs_from_id": r.name != r.id,
    })
print(json.dumps(out, default=str))
"""


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
