"""A million runs in one project: writing them, the index's size, `lab reindex`, and the first page of queries.

    python benches/million.py --runs 1000000          # 10^6 runs x 10 params x 10 metrics, 8 writing processes
    python benches/million.py --runs 100000 --procs 1 # one writing process
    python benches/million.py --runs 10000 --keep     # keep the project for another run of the queries

Makes the project with Lab's own Python API (every run a real run, started
and ended), split over `--procs` processes writing at once, and prints the
wall time of the write and runs per second. Then folds the index (one
`lab ls --limit 1`) and prints the index's bytes per run, by table and index
where SQLite's `dbstat` is compiled in, and the journals' bytes per run. Then
times whole `lab reindex` processes, and the first page of the listings: whole
`lab ls --limit 50` and `lab ls --where "m1 > 0.5" --sort -m0 --limit 50`
processes, `lab.runs(where=..., sort=...)` in process (with `limit=50`,
without a limit, and `as_frame=True`: each the first call in a fresh
process, pandas imported before), and `lab ui`'s `/api/v1/runs?limit=100`
(the first request after the server starts, then warm ones), in shuffled
order, and prints medians. `--only TEXT` times only the listings whose
name holds TEXT:

    python benches/million.py --runs 10000 --keep --only lab.runs

Uses the `lab` next to this interpreter (a release build: `make venv`). A
million runs take several gigabytes of journals: check `df -h` first; the
project is deleted at the end unless `--keep` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARAMS = 10
METRICS = 10

WRITER = """
import random, sys, time
from lab.experiment import Experiment
first, count = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(first)
e = Experiment("million")
t = time.perf_counter()
for r in range(first, first + count):
    with e.start_run():
        e.log_parameters({f"p{i}": rng.choice([1, 2, 4, 8, 16]) if i % 2 else rng.random() for i in range(%(params)d)})
        e.log_metrics({f"m{i}": rng.random() for i in range(%(metrics)d)})
print(time.perf_counter() - t)
"""


def lab_exe() -> str:
    return str(Path(sys.executable).parent / "lab")


def generate(project: Path, runs: int, procs: int) -> dict:
    """Writes `runs` runs into `project` from `procs` processes at once."""
    code = WRITER.replace("%(params)d", str(PARAMS)).replace("%(metrics)d", str(METRICS))
    env = dict(os.environ, LAB_PROJECT=str(project), LAB_SYSTEM_METRICS="0")
    share, extra = divmod(runs, procs)
    jobs, first = [], 0
    t = time.perf_counter()
    for p in range(procs):
        count = share + (1 if p < extra else 0)
        jobs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(first), str(count)],
                env=env,
                cwd=project,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        first += count
    inner = []
    for job in jobs:
        out, _ = job.communicate()
        if job.returncode != 0:
            raise RuntimeError(f"a writing process failed with exit code {job.returncode}")
        inner.append(float(out.split()[-1]))
    wall = time.perf_counter() - t
    return {"runs": runs, "procs": procs, "write_seconds": wall, "slowest_process_seconds": max(inner)}


def index_bytes(project: Path) -> dict:
    """The index's size, and by table and index where `dbstat` exists."""
    path = project / ".lab" / "index.sqlite"
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        by_name = {}
        try:
            for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"):
                by_name[name] = size
        except sqlite3.OperationalError:
            pass  # this sqlite3 has no dbstat
    finally:
        conn.close()
    # Free pages (left by a migration or deleted runs) are reused, not counted.
    return {"page_size": page_size, "bytes": (pages - free) * page_size, "free_bytes": free * page_size, "by_name": by_name}


def journal_bytes(project: Path) -> int:
    total = 0
    for root, _, files in os.walk(project / ".lab" / "runs"):
        for f in files:
            total += os.stat(os.path.join(root, f)).st_size
    return total


def time_process(args: list, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def time_python(code: str, env: dict) -> float:
    """Seconds the snippet's own timing reports (excludes interpreter start)."""
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


class Server:
    """`lab ui` on a free loopback port, stopped on exit."""

    def __init__(self, project: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [lab_exe(), "ui", "--port", str(self.port)],
            env=dict(os.environ, LAB_PROJECT=str(project)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("`lab ui` did not start") from None
                time.sleep(0.02)

    def get(self, path: str) -> float:
        t = time.perf_counter()
        with urllib.request.urlopen(self.base + path, timeout=600) as r:
            r.read()
        return time.perf_counter() - t

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--procs", type=int, default=8, help="processes writing at once")
    parser.add_argument("--repeats", type=int, default=5, help="times each query runs")
    parser.add_argument("--reindex-repeats", type=int, default=1, help="times `lab reindex` runs (0: not at all)")
    parser.add_argument("--project", type=Path, default=HERE.parent / "bench-out" / "million")
    parser.add_argument("--keep", action="store_true", help="keep the project (and reuse one of the same shape)")
    parser.add_argument(
        "--only", metavar="TEXT", help="time only the listings whose name holds TEXT (no `lab ui`, no `lab reindex`)"
    )
    parser.add_argument("--json", type=Path, default=HERE.parent / "bench-out" / "million.json")
    args = parser.parse_args()
    if args.runs < 1 or args.procs < 1:
        parser.error("`--runs` and `--procs` must be at least 1")

    project = args.project.resolve()
    marker = project / "generated.json"
    shape = {"runs": args.runs, "params": PARAMS, "metrics": METRICS}
    if not marker.exists() or json.loads(marker.read_text()).get("shape") != shape:
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        written = generate(project, args.runs, args.procs)
        marker.write_text(json.dumps({"shape": shape, "written": written}))
    written = json.loads(marker.read_text())["written"]
    env = dict(os.environ, LAB_PROJECT=str(project), NO_COLOR="1")
    lab = lab_exe()
    runs = args.runs

    t = time.perf_counter()
    subprocess.run([lab, "ls", "--limit", "1"], env=env, check=True, stdout=subprocess.DEVNULL)
    fold_seconds = time.perf_counter() - t
    index = index_bytes(project)
    journals = journal_bytes(project)

    reindex = [time_process([lab, "reindex"], env) for _ in range(0 if args.only else args.reindex_repeats)]

    where, sort = "m1 > 0.5", "-m0"
    cases = {
        "lab ls --limit 50": lambda: time_process([lab, "ls", "--limit", "50"], env),
        f'lab ls --where "{where}" --sort {sort} --limit 50': lambda: time_process(
            [lab, "ls", "--where", where, "--sort", sort, "--limit", "50"], env
        ),
        f'lab.runs(where="{where}", sort="{sort}", limit=50) (in-process)': lambda: time_python(
            "import time, lab\nt = time.perf_counter()\n"
            f"lab.runs(where={where!r}, sort={sort!r}, limit=50)\nprint(time.perf_counter() - t)",
            env,
        ),
        f'lab.runs(where="{where}", sort="{sort}") (in-process, every match)': lambda: time_python(
            "import time, lab\nt = time.perf_counter()\n"
            f"lab.runs(where={where!r}, sort={sort!r})\nprint(time.perf_counter() - t)",
            env,
        ),
        # pandas is imported before the clock starts: its import is no part
        # of the listing.
        f'lab.runs(where="{where}", sort="{sort}", as_frame=True) (in-process)': lambda: time_python(
            "import time, lab, pandas\nt = time.perf_counter()\n"
            f"lab.runs(where={where!r}, sort={sort!r}, as_frame=True)\nprint(time.perf_counter() - t)",
            env,
        ),
    }
    if args.only:
        cases = {name: case for name, case in cases.items() if args.only in name}
    results: dict = {name: [] for name in cases}
    order = list(cases)
    for i in range(args.repeats):
        random.Random(i).shuffle(order)  # alternate, so drift hits every case alike
        for name in order:
            results[name].append(cases[name]())
    ui_first, ui_warm = [], []
    for _ in range(0 if args.only else args.repeats):
        with Server(project) as server:
            ui_first.append(server.get("/api/v1/runs?limit=100"))
            ui_warm.append(server.get("/api/v1/runs?limit=100"))
    if ui_first:
        results["lab ui /api/v1/runs?limit=100, first request"] = ui_first
        results["lab ui /api/v1/runs?limit=100, warm"] = ui_warm
    if reindex:
        results[f"lab reindex ({runs:,} journals)"] = reindex

    print(
        f"{runs:,} runs x {PARAMS} params x {METRICS} metrics from {written['procs']} processes: "
        f"written in {written['write_seconds']:.1f} s ({runs / written['write_seconds']:,.0f} runs/s)"
    )
    print(f"first fold (lab ls --limit 1): {fold_seconds:.2f} s")
    print(
        f"index: {index['bytes'] / runs:,.0f} bytes/run ({index['bytes'] / 1e6:,.1f} MB in use, page size {index['page_size']}, "
        f"{index['free_bytes'] / 1e6:,.1f} MB free besides); journals: {journals / runs:,.0f} bytes/run"
    )
    for name, size in index["by_name"].items():
        print(f"  {name:<32} {size / runs:>8.1f} bytes/run")
    if reindex:
        print(f"lab reindex: {statistics.median(reindex):.2f} s ({runs / statistics.median(reindex):,.0f} runs/s)")
    print(f"{'case':<72} {'median ms':>10} {'min':>8} {'max':>8}")
    summary = {}
    for name, times in results.items():
        ms = [x * 1e3 for x in times]
        summary[name] = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "n": len(ms)}
        print(f"{name:<72} {statistics.median(ms):>10.1f} {min(ms):>8.1f} {max(ms):>8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "shape": shape,
                "written": written,
                "first_fold_seconds": fold_seconds,
                "index": index,
                "journal_bytes": journals,
                "cases": summary,
            },
            indent=2,
        )
        + "\n"
    )
    if not args.keep:
        shutil.rmtree(project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
