"""The web UI's speed: `lab ui`'s API and page on a big project.

    python benches/ui.py                  # 10,000 runs x 20 params x 20 metrics, a 10,000,000-point run
    python benches/ui.py --repeats 5      # fewer repetitions
    python benches/ui.py --only compare   # one part: runs, series or compare
    python benches/ui.py --only series --journal-only   # the series read from the journal (as before series files)
    python benches/ui.py --only scale --scale-runs 100000   # the first rows of 100,000 runs
    python benches/ui.py --only scale --scale-project DIR --lab A --lab B   # a project as it is, two builds alternately

Uses the `lab` next to this interpreter (a release build: `make bench-ui`
installs one) and Playwright for Python driving the machine's Chromium
(`/usr/bin/chromium`). Makes the projects once under `bench-out/` (the 10,000
runs are the ones `benches/many_runs.py` makes), then measures, in this order:

- the runs API: the first page of 100 runs with `where=m1 > 0.5` sorted by
  `-m0`, asked again (the server keeps the matching ids of a query until the
  runs change) and as a new query each time: the server's own time (its
  `Server-Timing` header) and the round trip;
- the 10,000,000-point run at rest: bytes per point of its journal (its
  length, and what it takes on disk once its pages of points are given back) and of its
  series file (`series.lab`, written when the run ended);
- one metric of 10,000,000 points downsampled to 2,000: the first request
  after the server starts (it reads the series file, or with
  `--journal-only` the journal) and the next ones (from the server's cache);
- `lab show` of that run as a whole process (its sparklines read the
  metric's values), and `Run.metric_history` of its 10,000,000 points in a
  fresh Python process;
- headless Chromium, from navigation to the runs table showing its first rows,
  each time in a fresh browser context (the bar: 500 ms);
- a rename (`PATCH /api/v1/runs/{id}`) until another open page shows the new
  name in its runs table, by the live event stream (the bar: 1 s);
- the page's JavaScript, gzipped, as the server sends it;
- headless Chromium, from navigation to the compare page of 20 runs of
  100,000 points each to its chart drawn (a line per run), each time in a
  fresh browser context;
- `--only scale`: a project of `--scale-runs` runs (1,000 runs of 10 params
  x 10 metrics written, then their folders copied under new short ids, each
  copy a run of its own, and `lab reindex`; kept under `bench-out/` for the
  next time), or `--scale-project` as it is (only read: the server is
  started on it, nothing else), served by each `--lab` in turn (default:
  the `lab` next to this interpreter): headless Chromium from navigation to
  the first rows, newest first and sorted by `-m0`, and from the scroll bar
  dragged to the end to the last run shown (a miss after 20 s counts as
  such), each in a fresh browser context, the builds alternately.

MLflow's REST `runs/search` on the same 10,000 runs is measured side by side
with `lab ui`'s by the peer suite (`make bench-peers`, scenario 5).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from many_runs import generate  # noqa: E402  (the same 10,000 runs as the CLI benchmark)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
POINTS = 10_000_000
COMPARE_RUNS = 20
COMPARE_POINTS = 100_000


def lab_exe() -> str:
    return str(Path(sys.executable).parent / "lab")


def ensure_many(project: Path) -> None:
    marker = project / "generated.json"
    shape = {"runs": 10_000, "params": 20, "metrics": 20}
    if marker.exists() and json.loads(marker.read_text()).get("shape") == shape:
        return
    import shutil

    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    seconds = generate(project, 10_000, 20, 20)
    marker.write_text(json.dumps({"shape": shape, "write_seconds": seconds}))


def ensure_big(project: Path) -> None:
    marker = project / "generated.json"
    if marker.exists() and json.loads(marker.read_text()).get("points") == POINTS:
        return
    import shutil

    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    code = f"""
import math
from lab.experiment import Experiment
e = Experiment("big")
with e.start_run():
    log = e.log_metric
    for i in range({POINTS}):
        log("loss", 1.0 / (1 + i * 1e-4) + 0.01 * math.sin(i), step=i)
"""
    env = dict(os.environ, LAB_PROJECT=str(project))
    subprocess.run([sys.executable, "-c", code], env=env, cwd=project, check=True)
    marker.write_text(json.dumps({"points": POINTS}))


def ensure_compare(project: Path) -> None:
    marker = project / "generated.json"
    shape = {"runs": COMPARE_RUNS, "points": COMPARE_POINTS}
    if marker.exists() and json.loads(marker.read_text()).get("shape") == shape:
        return
    import shutil

    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    code = f"""
import math
from lab.experiment import Experiment
for r in range({COMPARE_RUNS}):
    e = Experiment("compare")
    with e.start_run():
        e.log_parameter("lr", 10 ** -(1 + r % 4))
        log = e.log_metric
        for i in range({COMPARE_POINTS}):
            log("loss", 1.0 / (1 + i * 1e-3) + 0.05 * r + 0.01 * math.sin(i), step=i)
"""
    env = dict(os.environ, LAB_PROJECT=str(project), LAB_SYSTEM_METRICS="0")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=project, check=True)
    marker.write_text(json.dumps({"shape": shape}))


class Server:
    """`lab ui` on a free loopback port, stopped on exit."""

    def __init__(self, project: Path, exe: str | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, LAB_PROJECT=str(project))
        self.proc = subprocess.Popen(
            [exe or lab_exe(), "ui", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/api/v1/runs?limit=0", timeout=1).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"lab ui did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
                time.sleep(0.05)

    def get(self, path: str) -> tuple[float, float, bytes]:
        """(round trip ms, server ms, body)."""
        t = time.perf_counter()
        with urllib.request.urlopen(self.base + path, timeout=600) as r:
            body = r.read()
            timing = r.headers.get("Server-Timing", "")
        wall = (time.perf_counter() - t) * 1e3
        m = re.search(r"dur=([0-9.]+)", timing)
        return wall, float(m.group(1)) if m else float("nan"), body

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def summary(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def chromium_first_rows(base: str, repeats: int) -> list:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(repeats + 1):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                t = time.perf_counter()
                page.goto(base + "/#/?sort=-m0")
                page.wait_for_selector('[data-testid="run-row"]', timeout=30_000)
                elapsed = (time.perf_counter() - t) * 1e3
                if i > 0:  # the first load starts the browser's own processes
                    times.append(elapsed)
                context.close()
        finally:
            browser.close()
    return times


def rename_seen_elsewhere(base: str, repeats: int) -> list:
    """Milliseconds from sending a rename to another open page showing it."""
    from playwright.sync_api import sync_playwright

    with urllib.request.urlopen(base + "/api/v1/runs?limit=1", timeout=60) as r:
        run = json.load(r)["runs"][0]["id"]
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(base + "/#/")
            page.wait_for_selector(f'[data-testid="run-row"][data-run-id="{run}"] [data-testid="run-name"]', timeout=30_000)
            for i in range(repeats):
                name = f"bench-rename-{i}"
                request = urllib.request.Request(
                    f"{base}/api/v1/runs/{run}",
                    data=json.dumps({"name": name}).encode(),
                    method="PATCH",
                    headers={"Content-Type": "application/json"},
                )
                sent_ms = time.time() * 1e3
                urllib.request.urlopen(request, timeout=60).read()
                # The page notes the moment it shows the name (polled every frame).
                seen_ms = page.wait_for_function(
                    """([run, name]) => {
                        const el = document.querySelector(`[data-testid="run-row"][data-run-id="${run}"] [data-testid="run-name"]`);
                        return el && el.textContent === name ? Date.now() : null;
                    }""",
                    arg=[run, name],
                    polling="raf",
                    timeout=30_000,
                ).json_value()
                times.append(seen_ms - sent_ms)
        finally:
            browser.close()
    return times


def chromium_compare_drawn(base: str, ids: list, repeats: int) -> list:
    """Navigation to the compare page of `ids` until its `loss` chart is drawn with a line per run (ms)."""
    from playwright.sync_api import sync_playwright

    url = base + "/#/compare?ids=" + ",".join(ids)
    chart = '[data-testid="compare-chart"][data-metric="loss"]'
    drawn = f"""() => {{
        const c = document.querySelector('{chart}');
        return c && c.dataset.series === '{len(ids)}' && Number(c.dataset.points) > 0 && c.querySelector('canvas') !== null;
    }}"""
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(repeats + 1):
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                t = time.perf_counter()
                page.goto(url)
                page.wait_for_function(drawn, timeout=60_000, polling="raf")
                elapsed = (time.perf_counter() - t) * 1e3
                if i > 0:  # the first load starts the browser's own processes and fills the server's cache
                    times.append(elapsed)
                context.close()
        finally:
            browser.close()
    return times


SCALE_SOURCE = 1_000


def ensure_scale(project: Path, runs: int, exe: str) -> None:
    """`runs` runs: SCALE_SOURCE written, the rest copies of their folders under new short ids, then `lab reindex`."""
    marker = project / "generated.json"
    shape = {"runs": runs, "params": 10, "metrics": 10, "copied_from": SCALE_SOURCE}
    if marker.exists() and json.loads(marker.read_text()).get("shape") == shape:
        return
    import shutil

    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    generate(project, min(runs, SCALE_SOURCE), 10, 10)
    folders = sorted((project / ".lab" / "runs").iterdir())
    for k in range(max(0, runs - len(folders))):
        # Short ids past any written today's: a time slot in 2029.
        shutil.copytree(folders[k % len(folders)], project / ".lab" / "runs" / f"{0x20000000 + k:08x}")
    env = dict(os.environ, LAB_PROJECT=str(project))
    subprocess.run([exe, "reindex"], env=env, cwd=project, check=True, stdout=subprocess.DEVNULL)
    marker.write_text(json.dumps({"shape": shape}))


def chromium_scale(bases: list, repeats: int) -> list:
    """For each server of `bases` in turn (a fresh context each time): ms to the
    first rows newest first, sorted by `-m0`, and from the scroll bar dragged
    to the end to the last run shown (None: not shown in 20 s)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

    out: list = [{"first": [], "sorted": [], "end": []} for _ in bases]
    last_row = """(n) => {
        const rows = [...document.querySelectorAll('[data-testid="run-row"]')];
        const s = document.querySelector('.vt-scroll').getBoundingClientRect();
        return rows.some(r => Number(r.dataset.index) === n && r.getBoundingClientRect().bottom <= s.bottom + 1 && r.getBoundingClientRect().top >= s.top);
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(repeats + 1):
                for b, base in enumerate(bases):
                    for kind, route in [("first", "#/"), ("sorted", "#/?sort=-m0")]:
                        context = browser.new_context(viewport={"width": 1280, "height": 800})
                        page = context.new_page()
                        t = time.perf_counter()
                        page.goto(base + "/" + route)
                        page.wait_for_selector('[data-testid="run-row"]', timeout=60_000)
                        elapsed = (time.perf_counter() - t) * 1e3
                        if kind == "first":
                            total = int(page.get_attribute('[data-testid="runs-table"]', "aria-rowcount") or 0) - 1
                            t = time.perf_counter()
                            page.evaluate("() => { const s = document.querySelector('.vt-scroll'); s.scrollTop = s.scrollHeight; }")
                            try:
                                page.wait_for_function(last_row, arg=total - 1, timeout=20_000, polling="raf")
                                end = (time.perf_counter() - t) * 1e3
                            except PlaywrightTimeout:
                                end = None
                        if i > 0:  # the first round starts the browser's own processes
                            out[b][kind].append(elapsed)
                            if kind == "first":
                                out[b]["end"].append(end)
                        context.close()
        finally:
            browser.close()
    return out


def measure_scale(args: argparse.Namespace, results: dict) -> None:
    if args.scale_project:
        project = args.scale_project.resolve()
    else:
        project = (HERE.parent / "bench-out" / f"ui-scale-{args.scale_runs}").resolve()
    exes = args.lab or [lab_exe()]
    if not args.scale_project:
        ensure_scale(project, args.scale_runs, exes[0])
    servers = [Server(project, exe) for exe in exes]
    try:
        totals = [json.loads(s.get("/api/v1/runs?limit=1")[2])["total"] for s in servers]
        got = chromium_scale([s.base for s in servers], max(3, args.repeats // 3))
    finally:
        for s in servers:
            s.__exit__()
    for exe, total, g in zip(exes, totals, got):
        name = f"{total:,} runs, {exe}"
        results[f"Chromium: navigation to the first rows, {name} (ms)"] = summary(g["first"])
        results[f"Chromium: navigation to the first rows sorted by -m0, {name} (ms)"] = summary(g["sorted"])
        reached = [e for e in g["end"] if e is not None]
        if reached:
            results[f"Chromium: scroll bar to the end until the last run shows, {name} (ms)"] = summary(reached)
        if len(reached) < len(g["end"]):
            results[f"Chromium: scroll bar to the end, last run not shown in 20 s, {name} (times)"] = float(len(g["end"]) - len(reached))


def page_js_gzip(server: Server) -> tuple[int, int]:
    """Bytes of the page's JavaScript as served, raw and gzipped (level 9)."""
    _, _, html = server.get("/")
    raw = gz = 0
    for src in re.findall(rb'<script[^>]*src="([^"]+)"', html):
        _, _, js = server.get("/" + src.decode().lstrip("/"))
        raw += len(js)
        gz += len(gzip.compress(js, 9))
    return raw, gz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--many", type=Path, default=HERE.parent / "bench-out" / "many-runs")
    parser.add_argument("--big", type=Path, default=HERE.parent / "bench-out" / "big-run")
    parser.add_argument("--compare", type=Path, default=HERE.parent / "bench-out" / "compare-runs")
    parser.add_argument("--json", type=Path, default=HERE.parent / "bench-out" / "ui.json")
    parser.add_argument("--only", choices=["runs", "series", "compare", "scale"], help="measure one part only (scale: only when asked)")
    parser.add_argument("--scale-runs", type=int, default=100_000, help="runs of the project --only scale makes (default 100,000)")
    parser.add_argument("--scale-project", type=Path, help="--only scale: measure this project as it is instead")
    parser.add_argument("--lab", action="append", help="--only scale: a `lab` to serve the project (repeat to compare builds, alternately)")
    parser.add_argument("--journal-only", action="store_true", help="move the 10M-point run's series file aside while measuring: every read from its journal")
    args = parser.parse_args()
    part = lambda name: args.only in (None, name)  # noqa: E731
    if part("runs"):
        ensure_many(args.many.resolve())
    if part("series"):
        ensure_big(args.big.resolve())
    if part("compare"):
        ensure_compare(args.compare.resolve())
    results: dict = {}

    if part("runs"):
        measure_runs(args, results)
    if part("series"):
        measure_series(args, results)
    if args.only == "scale":
        measure_scale(args, results)
    if part("compare"):
        with Server(args.compare.resolve()) as s:
            _, _, body = s.get(f"/api/v1/runs?limit={COMPARE_RUNS}")
            ids = [r["id"] for r in json.loads(body)["runs"]]
            assert len(ids) == COMPARE_RUNS, len(ids)
            loads = chromium_compare_drawn(s.base, ids, max(3, args.repeats // 3))
            results[f"Chromium: compare of {COMPARE_RUNS} runs x {COMPARE_POINTS:,} points to the chart drawn (ms)"] = summary(loads)

    print(f"{'measure':<72} {'median':>9} {'min':>9} {'max':>9}")
    for name, v in results.items():
        if isinstance(v, dict):
            print(f"{name:<72} {v['median']:>9.1f} {v['min']:>9.1f} {v['max']:>9.1f}")
        else:
            print(f"{name:<72} {v:>9.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def measure_runs(args: argparse.Namespace, results: dict) -> None:
    with Server(args.many.resolve()) as s:
        q = urllib.parse.urlencode({"where": "m1 > 0.5", "sort": "-m0", "limit": 100})
        s.get("/api/v1/runs?" + q)  # the first call opens the index
        walls, servers = [], []
        for _ in range(args.repeats):
            wall, server, body = s.get("/api/v1/runs?" + q)
            walls.append(wall)
            servers.append(server)
        page = json.loads(body)
        assert len(page["runs"]) == 100 and page["total"] > 0, page.get("total")
        results["runs page of 100, where + sort, the same query again: server time (ms)"] = summary(servers)
        results["runs page of 100, where + sort, the same query again: round trip (ms)"] = summary(walls)
        # A query the server has not seen: it finds the matching runs afresh.
        walls, servers = [], []
        for i in range(args.repeats):
            fresh = urllib.parse.urlencode({"where": f"m1 > {0.5 + (i + 1) * 1e-12!r}", "sort": "-m0", "limit": 100})
            wall, server, _ = s.get("/api/v1/runs?" + fresh)
            walls.append(wall)
            servers.append(server)
        results["runs page of 100, where + sort, a new query each time: server time (ms)"] = summary(servers)
        results["runs page of 100, where + sort, a new query each time: round trip (ms)"] = summary(walls)
        results["runs: total matching"] = page["total"]
        loads = chromium_first_rows(s.base, max(3, args.repeats // 3))
        results["Chromium: navigation to the first rows (ms)"] = summary(loads)
        renames = rename_seen_elsewhere(s.base, max(5, args.repeats // 2))
        results["Chromium: a rename until another open page shows it (ms)"] = summary(renames)
        raw, gz = page_js_gzip(s)
        results["page JavaScript (KB, as served)"] = raw / 1024
        results["page JavaScript (KB, gzipped)"] = gz / 1024


def series_file(project: Path) -> Path:
    (run_dir,) = (project / ".lab" / "runs").iterdir()
    return run_dir / "series.lab"


def measure_at_rest(args: argparse.Namespace, results: dict) -> None:
    """Bytes per point of the run's files, its series file alone, and the first
    reads of its metric: `lab ui`'s endpoint after a start, `lab show` as a
    whole process, `metric_history` in a fresh Python process."""
    project = args.big.resolve()
    series = series_file(project)
    journal = series.parent / "journal.lab"
    on_disk = lambda path: path.stat().st_blocks * 512  # noqa: E731
    if args.journal_only:
        results["(series file moved aside: every read from the journal)"] = 1
    elif series.exists():
        results["series file, bytes per point"] = series.stat().st_size / POINTS
        results["journal + series file at rest (on disk), bytes per point"] = (on_disk(series) + on_disk(journal)) / POINTS
    results["journal, bytes per point (its length)"] = journal.stat().st_size / POINTS
    results["journal, bytes per point (on disk)"] = on_disk(journal) / POINTS
    firsts = []
    for _ in range(max(3, args.repeats // 4)):
        with Server(project) as s:
            _, _, body = s.get("/api/v1/runs?limit=1")
            run = json.loads(body)["runs"][0]["id"]
            wall, server, body = s.get(f"/api/v1/runs/{run}/metrics/loss?max_points=2000")
            assert json.loads(body)["total"] == POINTS
            firsts.append((wall, server))
    results["10M-point metric to 2,000 points, first request after a start: server time (ms)"] = summary([f[1] for f in firsts])
    results["10M-point metric to 2,000 points, first request after a start: round trip (ms)"] = summary([f[0] for f in firsts])
    env = dict(os.environ, LAB_PROJECT=str(project))
    shows = []
    for _ in range(max(3, args.repeats // 2)):
        t = time.perf_counter()
        out = subprocess.run([lab_exe(), "show", run], env=env, cwd=project, check=True, capture_output=True, text=True).stdout
        shows.append((time.perf_counter() - t) * 1e3)
        assert "10000000" in out, out
    results["lab show of the 10M-point run, whole process (ms)"] = summary(shows)
    code = f"""
import time, lab
run = lab.get_run({run!r})
t = time.perf_counter()
h = run.metric_history("loss")
print((time.perf_counter() - t) * 1e3, len(h))
"""
    histories = []
    for _ in range(max(3, args.repeats // 4)):
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=project, check=True, capture_output=True, text=True).stdout.split()
        assert int(out[1]) == POINTS, out
        histories.append(float(out[0]))
    results["metric_history of 10M points in a fresh process (ms)"] = summary(histories)


def measure_series(args: argparse.Namespace, results: dict) -> None:
    series = series_file(args.big.resolve())
    aside = series.with_name("series.lab.aside")
    if args.journal_only and series.with_name("journal.lab.holes").exists():
        sys.exit(
            "--journal-only: the run's journal gave back its pages of points (journal.lab.holes), whose points "
            "its series file alone holds; pass --big a project whose journal is whole (made by a build before holes)"
        )
    if args.journal_only and series.exists():
        series.rename(aside)
    try:
        measure_at_rest(args, results)
        measure_series_cached(args, results)
    finally:
        if aside.exists():
            aside.rename(series)


def measure_series_cached(args: argparse.Namespace, results: dict) -> None:
    with Server(args.big.resolve()) as s:
        _, _, body = s.get("/api/v1/runs?limit=1")
        run = json.loads(body)["runs"][0]["id"]
        path = f"/api/v1/runs/{run}/metrics/loss?max_points=2000"
        wall, server, body = s.get(path)
        series = json.loads(body)
        assert series["total"] == POINTS and len(series["x"]) <= 2000, (series["total"], len(series["x"]))
        walls, servers = [], []
        for _ in range(args.repeats):
            wall, server, _ = s.get(path)
            walls.append(wall)
            servers.append(server)
        results["10M-point metric to 2,000 points, cached: server time (ms)"] = summary(servers)
        results["10M-point metric to 2,000 points, cached: round trip (ms)"] = summary(walls)
        walls = [s.get(path + "&from=2500000&to=7500000")[1] for _ in range(args.repeats)]
        results["10M-point metric, zoomed to 5M points, to 2,000: server time (ms)"] = summary(walls)


if __name__ == "__main__":
    sys.exit(main())
