"""The web UI's speed: `lab ui`'s API and page on a big project.

    python benches/ui.py                  # 10,000 runs x 20 params x 20 metrics, a 10,000,000-point run
    python benches/ui.py --repeats 5      # fewer repetitions
    python benches/ui.py --only compare   # one part: runs, series or compare

Uses the `lab` next to this interpreter (a release build: `make bench-ui`
installs one) and Playwright for Python driving the machine's Chromium
(`/usr/bin/chromium`). Makes the projects once under `bench-out/` (the 10,000
runs are the ones `benches/many_runs.py` makes), then measures, in this order:

- the runs API: the first page of 100 runs with `where=m1 > 0.5` sorted by
  `-m0`, asked again (the server keeps the matching ids of a query until the
  runs change) and as a new query each time: the server's own time (its
  `Server-Timing` header) and the round trip;
- one metric of 10,000,000 points downsampled to 2,000: the first request (it
  reads the journal) and the next ones (from the server's cache);
- headless Chromium, from navigation to the runs table showing its first rows,
  each time in a fresh browser context;
- the page's JavaScript, gzipped, as the server sends it;
- headless Chromium, from navigation to the compare page of 20 runs of
  100,000 points each to its chart drawn (a line per run), each time in a
  fresh browser context.

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

    def __init__(self, project: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, LAB_PROJECT=str(project))
        self.proc = subprocess.Popen(
            [lab_exe(), "ui", "--port", str(self.port)],
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
    parser.add_argument("--only", choices=["runs", "series", "compare"], help="measure one part only")
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
        raw, gz = page_js_gzip(s)
        results["page JavaScript (KB, as served)"] = raw / 1024
        results["page JavaScript (KB, gzipped)"] = gz / 1024


def measure_series(args: argparse.Namespace, results: dict) -> None:
    with Server(args.big.resolve()) as s:
        _, _, body = s.get("/api/v1/runs?limit=1")
        run = json.loads(body)["runs"][0]["id"]
        path = f"/api/v1/runs/{run}/metrics/loss?max_points=2000"
        wall, server, body = s.get(path)
        series = json.loads(body)
        assert series["total"] == POINTS and len(series["x"]) <= 2000, (series["total"], len(series["x"]))
        results["10M-point metric to 2,000 points, first request: server time (ms)"] = server
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
