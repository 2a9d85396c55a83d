"""Listing, querying and reindexing many runs: `lab ls`, `lab.runs` and `lab reindex` on a generated project.

    python benches/many_runs.py                 # 10,000 runs x 20 params x 20 metrics
    python benches/many_runs.py --runs 1000     # smaller

Makes the project once with Lab's own Python API (every run a real run), then
times whole `lab ls` processes (the `lab` next to this interpreter, and the
same listing through `python -m lab.cli`) and `lab.runs(where=..., sort=...)`
calls, as `Run` objects and with `as_frame=True` (pandas must be installed,
as `make venv` installs it), in shuffled order, then whole `lab reindex`
processes (each rebuilds the index from every journal), and prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(project: Path, runs: int, params: int, metrics: int, seed: int = 0) -> float:
    """Writes `runs` runs into `project`; returns the seconds it took."""
    code = f"""
import random, time
from lab.experiment import Experiment
rng = random.Random({seed})
e = Experiment("many")
t = time.perf_counter()
for r in range({runs}):
    with e.start_run():
        e.log_parameters({{f"p{{i}}": rng.choice([1, 2, 4, 8, 16]) if i % 2 else rng.random() for i in range({params})}})
        e.log_metrics({{f"m{{i}}": rng.random() for i in range({metrics})}})
print(time.perf_counter() - t)
"""
    env = dict(os.environ, LAB_PROJECT=str(project))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=project, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def lab_exe() -> str:
    exe = Path(sys.executable).parent / "lab"
    return str(exe)


def time_process(args: list, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def time_python(code: str, env: dict) -> float:
    """Seconds the snippet's own timing reports (excludes interpreter start)."""
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--params", type=int, default=20)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--reindex-repeats", type=int, default=5, help="times `lab reindex` runs (0: not at all)")
    parser.add_argument("--project", type=Path, default=HERE.parent / "bench-out" / "many-runs")
    parser.add_argument("--json", type=Path, default=HERE.parent / "bench-out" / "many_runs.json")
    args = parser.parse_args()

    project = args.project.resolve()
    marker = project / "generated.json"
    shape = {"runs": args.runs, "params": args.params, "metrics": args.metrics}
    if not marker.exists() or json.loads(marker.read_text()).get("shape") != shape:
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        seconds = generate(project, args.runs, args.params, args.metrics)
        marker.write_text(json.dumps({"shape": shape, "write_seconds": seconds}))
    info = json.loads(marker.read_text())
    env = dict(os.environ, LAB_PROJECT=str(project), NO_COLOR="1")
    lab = lab_exe()
    # Warm the index and the page cache once.
    subprocess.run([lab, "ls", "--limit", "1"], env=env, check=True, stdout=subprocess.DEVNULL)

    cases = {
        "lab ls --sort -m0 --limit 50": lambda: time_process([lab, "ls", "--sort", "-m0", "--limit", "50"], env),
        # The same command started through Python, as `python -m lab.cli`.
        "python -m lab.cli ls --sort -m0 --limit 50": lambda: time_process(
            [sys.executable, "-m", "lab.cli", "ls", "--sort", "-m0", "--limit", "50"], env
        ),
        'lab ls --where "m1 > 0.5" --format json': lambda: time_process(
            [lab, "ls", "--where", "m1 > 0.5", "--format", "json"], env
        ),
        'lab.runs(where="m1 > 0.5", sort="-m0") (in-process)': lambda: time_python(
            "import time, lab\nt = time.perf_counter()\nlab.runs(where='m1 > 0.5', sort='-m0')\nprint(time.perf_counter() - t)",
            env,
        ),
        'lab.runs(where="m1 > 0.5", sort="-m0", as_frame=True) (in-process)': lambda: time_python(
            "import time, lab\nimport pandas\nt = time.perf_counter()\n"
            "lab.runs(where='m1 > 0.5', sort='-m0', as_frame=True)\nprint(time.perf_counter() - t)",
            env,
        ),
    }
    results: dict = {name: [] for name in cases}
    order = list(cases)
    for i in range(args.repeats):
        random.Random(i).shuffle(order)  # alternate, so drift hits every case alike
        for name in order:
            results[name].append(cases[name]())
    # Last: each rebuild leaves the index as the listings found it.
    if args.reindex_repeats:
        results[f"lab reindex ({args.runs:,} journals)"] = [
            time_process([lab, "reindex"], env) for _ in range(args.reindex_repeats)
        ]
    print(f"{args.runs:,} runs x {args.params} params x {args.metrics} metrics, written in {info['write_seconds']:.1f} s")
    print(f"{'case':<72} {'median ms':>10} {'min':>8} {'max':>8}")
    summary = {}
    for name, times in results.items():
        ms = [t * 1e3 for t in times]
        summary[name] = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "n": len(ms)}
        print(f"{name:<72} {statistics.median(ms):>10.1f} {min(ms):>8.1f} {max(ms):>8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"shape": shape, "write_seconds": info["write_seconds"], "cases": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
