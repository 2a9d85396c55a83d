"""A million runs in one project: writing them, the index's size, `lab reindex`, and the first page of queries.

    python benches/million.py --runs 1000000          # 10^6 runs x 10 params x 10 metrics, 8 writing processes
    python benches/million.py --runs 100000 --procs 1 # one writing process
    python benches/million.py --runs 10000 --keep     # keep the project for another run of the queries
    python benches/million.py --runs 1000000 --api-runs 12500 --project bench-out/million --keep
                                                      # 12,500 runs through the API, then 79 copies of each

Makes the project with Lab's own Python API (every run a real run, started
and ended, with `system_metrics=False, capture=False`), split over `--procs`
processes writing at once, and prints the wall time of the write and runs per
second. With `--api-runs N` below `--runs`, only N runs are written through
the API (the write figure); the rest are copies of them: each copy is a new
run folder whose journal is the original's, byte for byte, but for the run's
id in its Start record (a new random id whose first 8 hex digits, the
folder's name, are a quarter-second slot of their own) and every record's
time, moved back by the same amount (so the copy's id still tells when it
started); each changed frame gets its CRC again. `lab reindex` then folds
every journal (timed: the first fold of the copies). Copying a journal
costs a read, a `mkdir` and a write, nowhere near a run's cost, so the
project reaches 10^6 runs in minutes; the values of a copy are its
original's, so each value occurs `runs / api-runs` times.

Then (without copies: after one `lab ls --limit 1`, the first fold) prints the
index's bytes per run, by table and index where SQLite's `dbstat` is
compiled in, and the journals' bytes per run and the disk the project takes.
Then times whole `lab reindex` processes, and the first page of the listings:
whole `lab ls --limit 50` and `lab ls --where "m1 > 0.5" --sort -m0 --limit 50`
processes, `lab.runs(where=..., sort=...)` in process (with `limit=50`, without a
limit, and `as_frame=True`: each the first call in a fresh process, pandas
imported before), and `lab ui`'s `/api/v1/runs?limit=100`, `?where=m1>0.5&sort=-m0&limit=100`
and the same with a second test, `where=m1 > 0.5 and p1 >= 4`
(the first request after the server starts, then warm ones, with the
server's own time from its `Server-Timing` header), in shuffled order, and
prints medians. `--only TEXT` times only the listings
whose name holds TEXT (no `lab ui`, no `lab reindex`):

    python benches/million.py --runs 10000 --keep --only lab.runs

Uses the `lab` next to this interpreter (a release build: `make venv`). A
million runs take about 8 KB of disk each (a folder and a journal of a 4 KB
block each) plus the index: check `df -h` first; the project is deleted at
the end unless `--keep` is given.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from labjournal import SLOT_NS, crc32c, read_frames
from many_runs import lab_exe, time_process, time_python

HERE = Path(__file__).resolve().parent
PARAMS = 10
METRICS = 10

WRITER = """
import random, sys, time
from lab.experiment import Experiment
first, count = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(first)
e = Experiment("million", system_metrics=False, capture=False)
t = time.perf_counter()
for r in range(first, first + count):
    with e.start_run():
        e.log_parameters({f"p{i}": rng.choice([1, 2, 4, 8, 16]) if i % 2 else rng.random() for i in range(%(params)d)})
        e.log_metrics({f"m{i}": rng.random() for i in range(%(metrics)d)})
print(time.perf_counter() - t)
"""


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


# ---------------------------------------------------------------- copies

TIMED = {2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20}  # records whose first field is a time


def journal_frames(data: bytes) -> list:
    """The (payload, CRC) of every frame of a closed journal, each checked,
    and each of a record this copy knows how to move in time."""
    frames = read_frames(data)
    for payload, _ in frames:
        if payload[0] not in TIMED and payload[0] not in (1, 5):  # Console (14) holds a time per line; not written with capture=False
            raise ValueError(f"record tag {payload[0]}: copying it is not supported")
    return frames


def copy_journal(header: bytes, frames: list, run_id: int, shift_ns: int) -> bytes:
    """The journal of `frames` as the run `run_id`'s: the Start record's id
    and every record's time (moved by `shift_ns`) changed, each changed
    frame's CRC made again, every other byte as it was."""
    out = [header]
    for payload, crc in frames:
        tag = payload[0]
        if tag == 1:  # Start: run id, time, experiment
            (t,) = struct.unpack_from("<q", payload, 17)
            payload = b"\x01" + run_id.to_bytes(16, "big") + struct.pack("<q", t + shift_ns) + payload[25:]
            crc = crc32c(payload)
        elif tag != 5:  # MetricKey has no time; every other record written here starts with one
            (t,) = struct.unpack_from("<q", payload, 1)
            payload = payload[:1] + struct.pack("<q", t + shift_ns) + payload[9:]
            crc = crc32c(payload)
        out.append(struct.pack("<II", len(payload), crc))
        out.append(payload)
    return b"".join(out)


def _copy_worker(runs_dir: str, names: list, copies: int, span: int, seed: int) -> int:
    rng = random.Random(seed)
    made = 0
    for name in names:
        folder = os.path.join(runs_dir, name)
        others = [f for f in os.listdir(folder) if f != "journal.lab"]
        if others:
            raise ValueError(f"run folder {folder} holds {others}: only a journal is copied")
        with open(os.path.join(folder, "journal.lab"), "rb") as f:
            data = f.read()
        frames = journal_frames(data)
        slot = int(name, 16)
        for k in range(1, copies + 1):
            new_slot = slot - k * span
            run_id = (new_slot << 96) | rng.getrandbits(96)
            target = os.path.join(runs_dir, f"{new_slot:08x}")
            os.mkdir(target)  # fails rather than touch a run that is there
            with open(os.path.join(target, "journal.lab"), "xb") as f:
                f.write(copy_journal(data[:16], frames, run_id, -k * span * SLOT_NS))
            made += 1
    return made


def copy_runs(project: Path, total: int, procs: int) -> dict:
    """Makes the project hold `total` runs by copying each of its runs
    (whose count must divide `total`) as new runs, from `procs` processes."""
    runs_dir = project / ".lab" / "runs"
    names = sorted(n for n in os.listdir(runs_dir) if len(n) == 8)
    if not names or total % len(names):
        raise ValueError(f"{len(names)} runs cannot make {total:,} runs by copying each the same number of times")
    copies = total // len(names) - 1
    slots = [int(n, 16) for n in names]
    span = max(slots) - min(slots) + 1  # copy k of every run goes k spans back: no two slots meet
    if min(slots) - copies * span < 0:
        raise ValueError("the runs' slots are too early to copy them back in time")
    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        chunks = [names[i::procs] for i in range(procs)]
        made = sum(pool.starmap(_copy_worker, [(str(runs_dir), c, copies, span, i) for i, c in enumerate(chunks)]))
    os.sync()
    return {"copied_runs": made, "copies_per_run": copies, "copy_seconds": time.perf_counter() - t}


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

    def get(self, path: str) -> tuple:
        """Seconds until the whole answer was read, and the server's own
        milliseconds (its `Server-Timing` header; None without one)."""
        t = time.perf_counter()
        with urllib.request.urlopen(self.base + path, timeout=600) as r:
            r.read()
            timing = r.headers.get("Server-Timing", "")
        took = time.perf_counter() - t
        server = [float(part[4:]) for part in timing.split(";") if part.strip().startswith("dur=")]
        return took, (server[0] if server else None)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def disk_bytes(path: Path) -> int:
    """Disk the folder takes (blocks allocated, as `du`), hard links counted once."""
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            if st.st_nlink > 1 and not os.path.isdir(os.path.join(root, name)):
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:7]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--procs", type=int, default=8, help="processes writing at once")
    parser.add_argument(
        "--api-runs",
        type=int,
        default=None,
        help="runs written through the API (default: all); the rest are copies of them, made by rewriting each journal's run id and times, then folded by `lab reindex`; must divide --runs",
    )
    parser.add_argument("--copy-procs", type=int, default=2, help="processes copying runs at once")
    parser.add_argument("--repeats", type=int, default=5, help="times each query runs")
    parser.add_argument("--reindex-repeats", type=int, default=1, help="times `lab reindex` runs (0: not at all)")
    parser.add_argument("--project", type=Path, default=HERE.parent / "bench-out" / "million")
    parser.add_argument("--keep", action="store_true", help="keep the project (and reuse one of the same shape)")
    parser.add_argument(
        "--only", metavar="TEXT", help="time only the listings whose name holds TEXT (no `lab ui`, no `lab reindex`)"
    )
    parser.add_argument("--json", type=Path, default=HERE.parent / "bench-out" / "million.json")
    args = parser.parse_args()
    api_runs = args.runs if args.api_runs is None else args.api_runs
    if args.runs < 1 or args.procs < 1 or args.copy_procs < 1:
        parser.error("`--runs`, `--procs` and `--copy-procs` must be at least 1")
    if not 1 <= api_runs <= args.runs or args.runs % api_runs:
        parser.error(f"`--api-runs` must divide `--runs` ({args.runs}), not {api_runs}")

    project = args.project.resolve()
    marker = project / "generated.json"
    shape = {"runs": args.runs, "params": PARAMS, "metrics": METRICS}
    if api_runs != args.runs:
        shape["api_runs"] = api_runs
    env = dict(os.environ, LAB_PROJECT=str(project), NO_COLOR="1")
    lab = lab_exe()
    runs = args.runs
    copied = None
    if not marker.exists() or json.loads(marker.read_text()).get("shape") != shape:
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        written = generate(project, api_runs, args.procs)
        if api_runs != runs:
            copied = copy_runs(project, runs, args.copy_procs)
        marker.write_text(json.dumps({"shape": shape, "written": written, "copied": copied}))
    saved = json.loads(marker.read_text())
    written, copied = saved["written"], saved.get("copied")

    reindex = [time_process([lab, "reindex"], env) for _ in range(0 if args.only else args.reindex_repeats)]
    if copied and not reindex:
        reindex_once = time_process([lab, "reindex"], env)  # copies are folded by a reindex, not by a listing
        print(f"lab reindex (folding the copies): {reindex_once:.1f} s")
    t = time.perf_counter()
    subprocess.run([lab, "ls", "--limit", "1"], env=env, check=True, stdout=subprocess.DEVNULL)
    fold_seconds = time.perf_counter() - t
    index = index_bytes(project)
    journals = journal_bytes(project)
    disk = disk_bytes(project)

    where, sort = "m1 > 0.5", "-m0"
    both = "m1 > 0.5 and p1 >= 4"  # two tests: the page's `total` counts where both hold
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
    pages = {
        "/api/v1/runs?limit=100": "/api/v1/runs?limit=100",
        "/api/v1/runs?where=m1>0.5&sort=-m0&limit=100": "/api/v1/runs?" + urllib.parse.urlencode({"where": where, "sort": sort, "limit": 100}),
        f"/api/v1/runs?where={both}&sort=-m0&limit=100": "/api/v1/runs?" + urllib.parse.urlencode({"where": both, "sort": sort, "limit": 100}),
    }
    server_ms: dict = {}
    for i in range(0 if args.only else args.repeats):
        with Server(project) as server:
            names = list(pages)
            random.Random(i).shuffle(names)
            for name in names:  # the first request after the server starts, then a warm one
                for when in ("first request", "warm"):
                    took, own = server.get(pages[name])
                    results.setdefault(f"lab ui {name}, {when}", []).append(took)
                    if own is not None:
                        server_ms.setdefault(f"lab ui {name}, {when}", []).append(own / 1e3)
    for name, times in server_ms.items():
        results[f"{name}, server's own time"] = times
    if reindex:
        results[f"lab reindex ({runs:,} journals)"] = reindex

    how = f"{written['procs']} processes"
    print(
        f"{written['runs']:,} runs x {PARAMS} params x {METRICS} metrics through the API from {how}: "
        f"written in {written['write_seconds']:.1f} s ({written['runs'] / written['write_seconds']:,.0f} runs/s)"
    )
    if copied:
        print(
            f"{copied['copied_runs']:,} copies ({copied['copies_per_run']} of each run) made in {copied['copy_seconds']:.1f} s "
            f"({copied['copied_runs'] / copied['copy_seconds']:,.0f} runs/s): {runs:,} runs"
        )
    print(f"lab ls --limit 1 after the folds: {fold_seconds:.2f} s")
    print(
        f"index: {index['bytes'] / runs:,.0f} bytes/run ({index['bytes'] / 1e6:,.1f} MB in use, page size {index['page_size']}, "
        f"{index['free_bytes'] / 1e6:,.1f} MB free besides); journals: {journals / runs:,.0f} bytes/run; "
        f"project on disk: {disk / 1e9:,.2f} GB ({disk / runs:,.0f} bytes/run)"
    )
    for name, size in index["by_name"].items():
        print(f"  {name:<32} {size / runs:>8.1f} bytes/run")
    if reindex:
        print(f"lab reindex: {statistics.median(reindex):.2f} s ({runs / statistics.median(reindex):,.0f} runs/s)")
    print(f"{'case':<80} {'median ms':>10} {'min':>8} {'max':>8}")
    summary = {}
    for name, times in results.items():
        ms = [x * 1e3 for x in times]
        summary[name] = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "n": len(ms)}
        print(f"{name:<80} {statistics.median(ms):>10.1f} {min(ms):>8.1f} {max(ms):>8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "shape": shape,
                "written": written,
                "copied": copied,
                "fold_seconds": fold_seconds,
                "index": index,
                "journal_bytes": journals,
                "disk_bytes": disk,
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
