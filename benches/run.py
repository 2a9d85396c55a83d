"""Lab's own speed benchmarks: medians over repeated runs, printed as a table
and written as JSON.

    python benches/run.py            # full sizes
    python benches/run.py --quick    # small sizes, a smoke run

Measures, each in a fresh project under a temporary folder:

- log_metric: 100,000 calls in one run, microseconds per call; and again
  with the run streaming to a team server (`--server URL --token TOKEN`, a
  running `lab server`; the line is left out without them);
- log_metrics: 100 keys per call, points per second;
- import: `python -c "from lab.experiment import Experiment"` minus a bare
  `python -c pass`, milliseconds;
- seed example: the user guide's grid search on iris, with the time Lab takes
  on the calling thread (run start, features, parameters, metrics, run end)
  apart from model serialisation and from training;
- memory: resident memory growth of a run that logs 10 million points;
- console capture: `print()` of a short line with `flush=True` (one
  `write(2)` per line, as on a terminal) in a run, with the capture on and
  off: microseconds per line on the calling thread (wall clock), and CPU
  time per line of the whole process (the `lab-console` thread included).

Run it against a release build (`make bench` builds one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(code: str, project: Path, server: "tuple[str, str] | None" = None) -> dict:
    """Runs `code` in a fresh interpreter; it prints one JSON object last.
    Runs stream to `server` (URL, token) when given, and to none otherwise,
    whatever the user's `lab login` says."""
    env = dict(os.environ, LAB_PROJECT=str(project), XDG_CONFIG_HOME=str(project / ".config"))
    env.pop("LAB_SERVER", None)
    env.pop("LAB_TOKEN", None)
    if server is not None:
        env["LAB_SERVER"], env["LAB_TOKEN"] = server
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


LOG_METRIC = """
import json, time
from lab.experiment import Experiment
e = Experiment("bench")
N = {n}
with e.start_run():
    e.log_metric("loss", 0.0)
    t = time.perf_counter()
    for i in range(N):
        e.log_metric("loss", 0.5)
    per_call = (time.perf_counter() - t) / N
print(json.dumps({{"us_per_call": per_call * 1e6}}))
"""

LOG_METRICS = """
import json, time
from lab.experiment import Experiment
e = Experiment("bench")
calls = {calls}
values = {{f"m{{k}}": 0.5 for k in range(100)}}
with e.start_run():
    e.log_metrics(values)
    t = time.perf_counter()
    for i in range(calls):
        e.log_metrics(values)
    elapsed = time.perf_counter() - t
print(json.dumps({{"points_per_sec": calls * 100 / elapsed}}))
"""

SEED = """
import json, time
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.metrics import accuracy_score, precision_score
from lab.experiment import Experiment

clock = time.perf_counter
e = Experiment()
tracking = 0.0
t = clock(); scope = e.start_run(); scope.__enter__(); tracking += clock() - t
iris = datasets.load_iris()
t = clock(); e.log_features(iris['feature_names']); tracking += clock() - t
clf = GridSearchCV(RandomForestClassifier(), {'n_estimators': [10, 50, 100], 'max_depth': [2, 4]})
clf.fit(iris.data, iris.target)
best = clf.best_estimator_.get_params()
t = clock()
e.log_parameter('n_estimators', best['n_estimators'])
e.log_parameter('max_depth', best['max_depth'])
tracking += clock() - t
X_train, X_test, y_train, y_test = train_test_split(iris.data, iris.target, test_size=0.25, random_state=42)
rfc = RandomForestClassifier(n_estimators=best['n_estimators'], max_depth=best['max_depth']).fit(X_train, y_train)
y_pred = rfc.predict(X_test)
accuracy = accuracy_score(y_test, y_pred)
precision = precision_score(y_test, y_pred, average='macro')
t = clock()
e.log_metric('accuracy_score', accuracy)
e.log_metric('precision_score', precision)
tracking += clock() - t
t = clock(); e.log_model('GridSearchCV', clf); model = clock() - t
t = clock(); scope.__exit__(None, None, None); tracking += clock() - t
print(json.dumps({"tracking_ms": tracking * 1e3, "model_ms": model * 1e3}))
"""

PRINT = """
import json, resource, time
from lab.experiment import Experiment
e = Experiment("bench", capture={capture})
N = {n}
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
with e.start_run():
    print("warm up", flush=True)
    t, c = time.perf_counter(), cpu()
    for i in range(N):
        print("epoch 1 step 1234 loss 0.1234", flush=True)
    wall, spent = time.perf_counter() - t, cpu() - c
print(json.dumps({{"us_per_line": wall / N * 1e6, "cpu_us_per_line": spent / N * 1e6}}))
"""

MEMORY = """
import json
from lab.experiment import Experiment

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

e = Experiment("memory")
N = {n}
with e.start_run():
    e.log_metric("loss", 0.0)
    e.log_metrics({{"a": 0.0, "b": 0.0}})
    before = rss_kb()
    peak = before
    for i in range(N):
        e.log_metric("loss", i * 1e-7, step=i)
        if i % 1_000_000 == 0:
            peak = max(peak, rss_kb())
    peak = max(peak, rss_kb())
print(json.dumps({{"points": N, "rss_growth_mb": (peak - before) / 1024}}))
"""


def import_ms(repeats: int) -> dict:
    def run(args: list) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True)
        return time.perf_counter() - t

    bare, lab = [], []
    for _ in range(repeats):  # alternate, so drift hits both alike
        bare.append(run(["-c", "pass"]))
        lab.append(run(["-c", "from lab.experiment import Experiment"]))
    return {
        "bare_ms": statistics.median(bare) * 1e3,
        "lab_ms": statistics.median(lab) * 1e3,
        "import_ms": (statistics.median(lab) - statistics.median(bare)) * 1e3,
    }


def repeat(code: str, repeats: int, server: "tuple[str, str] | None" = None) -> list:
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="lab-bench-") as d:
            results.append(child(code, Path(d), server))
    return results


def summary(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", type=Path, default=Path("bench-out/lab.json"), help="where to write the results")
    parser.add_argument("--server", help="a running `lab server` to stream to, for the streaming-on line")
    parser.add_argument("--token", help="a writer token of that server")
    args = parser.parse_args()
    if bool(args.server) != bool(args.token):
        parser.error("`--server` and `--token` go together")
    quick = args.quick
    reps = 3 if quick else 7
    n_metric = 10_000 if quick else 100_000
    n_memory = 200_000 if quick else 10_000_000

    results: dict = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": quick,
        }
    }
    rows = []

    r = [x["us_per_call"] for x in repeat(LOG_METRIC.format(n=n_metric), reps)]
    results["log_metric_us"] = summary(r)
    rows.append(("log_metric, µs per call", summary(r), "≤ 1"))

    if args.server:
        # The same loop while the lab-upload thread sends the journal.
        server = (args.server, args.token)
        r = [x["us_per_call"] for x in repeat(LOG_METRIC.format(n=n_metric), reps, server)]
        results["log_metric_streaming_us"] = summary(r)
        rows.append(("log_metric, streaming to a server, µs per call", summary(r), "≤ 1"))

    r = [x["points_per_sec"] / 1e6 for x in repeat(LOG_METRICS.format(calls=n_metric // 10), reps)]
    results["log_metrics_mpoints_per_sec"] = summary(r)
    rows.append(("log_metrics (100 keys), M points/s", summary(r), "≥ 10"))

    imp = [import_ms(1)["import_ms"] for _ in range(reps * 3)]
    results["import_ms"] = summary(imp)
    rows.append(("import above bare python, ms", summary(imp), "≤ 30"))

    seed = repeat(SEED, reps)
    r = [x["tracking_ms"] for x in seed]
    results["seed_tracking_ms"] = summary(r)
    rows.append(("seed example: tracking on calling thread, ms", summary(r), "≤ 10"))
    r = [x["model_ms"] for x in seed]
    results["seed_model_ms"] = summary(r)
    rows.append(("seed example: log_model (serialisation), ms", summary(r), "-"))

    mem = repeat(MEMORY.format(n=n_memory), 1 if not quick else 1)
    r = [x["rss_growth_mb"] for x in mem]
    results["memory_mb"] = summary(r) | {"points": n_memory}
    rows.append((f"RSS growth, {n_memory:,} points, MB", summary(r), "≤ 50"))

    n_print = 20_000 if quick else 200_000
    for capture in (False, True):
        got = repeat(PRINT.format(n=n_print, capture=capture), reps)
        state = "on" if capture else "off"
        r = [x["us_per_line"] for x in got]
        results[f"print_capture_{state}_us"] = summary(r)
        rows.append((f"print(flush=True), capture {state}, µs per line", summary(r), "-"))
        r = [x["cpu_us_per_line"] for x in got]
        results[f"print_capture_{state}_cpu_us"] = summary(r)
        rows.append((f"print(flush=True), capture {state}, CPU µs per line", summary(r), "-"))

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':>10}  {'min':>10}  {'max':>10}  {'n':>3}  target")
    for name, s, target in rows:
        print(f"{name:<{width}}  {s['median']:>10.3f}  {s['min']:>10.3f}  {s['max']:>10.3f}  {s['n']:>3}  {target}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
