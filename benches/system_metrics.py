"""What the system metrics sampler costs: the CPU time of its thread over a
long run, as a share of one core, at the default interval and at 1 s; and
`log_metric` on the training thread with the sampler off and at its
shortest interval.

    python benches/system_metrics.py                # 120 s a run (as docs/benchmarks.md)
    python benches/system_metrics.py --seconds 10   # a smoke run

Each measurement is a fresh interpreter in a new project under a temporary
folder. The sampler thread (`lab-sysmetrics`) is found by its name in
`/proc/self/task/*/comm`; its CPU time is the time the scheduler ran it,
from `/proc/self/task/TID/schedstat` (nanoseconds; `stat`'s `utime` and
`stime` count 10 ms ticks, too coarse here), read just before the run ends
(so the last sample, at the end, is not in it: one sample in many). The script's own
thread sleeps meanwhile, as a training loop waiting on a GPU would, and
spawns one child process, as a `DataLoader` worker would: the sampler walks
the process tree.

Run it against a release build (`make bench-sysmetrics` builds one). Linux only.
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
from pathlib import Path

SAMPLER = """
import json, os, sys, time
import multiprocessing as mp
from lab import Experiment

def worker(stop):
    stop.wait()

def sampler_tid():
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            if f.read().strip() == "lab-sysmetrics":
                return tid
    raise SystemExit("no lab-sysmetrics thread")

def cpu_seconds(tid):
    # The time the scheduler ran the thread, in nanoseconds; `stat`'s
    # utime and stime count 10 ms ticks, too coarse for a thread this idle.
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except FileNotFoundError:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

INTERVAL = float(sys.argv[1])
SECONDS = float(sys.argv[2])
e = Experiment("sysbench", system_metrics_interval=INTERVAL)
with e.start_run():
    stop = mp.Event()
    child = mp.Process(target=worker, args=(stop,))
    child.start()
    time.sleep(0.05)
    tid = sampler_tid()
    start_cpu = cpu_seconds(tid)
    start = time.monotonic()
    time.sleep(SECONDS)
    used = cpu_seconds(tid) - start_cpu
    wall = time.monotonic() - start
    stop.set()
    child.join()
    run_id = e.run_id
import lab
samples = len(lab.get_run(run_id).metric_history("sys/cpu_percent"))
print(json.dumps({"cpu_s": used, "wall_s": wall, "samples": samples}))
"""

LOG_METRIC = """
import json, sys, time
from lab import Experiment

N = int(sys.argv[2])
kwargs = {"system_metrics": False} if sys.argv[1] == "off" else {"system_metrics_interval": float(sys.argv[1])}
e = Experiment("logbench", **kwargs)
with e.start_run():
    log = e.log_metric
    t = time.perf_counter()
    for i in range(N):
        log("loss", 0.5)
    per_call = (time.perf_counter() - t) / N
print(json.dumps({"us": per_call * 1e6}))
"""


def child(code: str, *args: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LAB_PROJECT=tmp, XDG_CONFIG_HOME=str(Path(tmp) / ".config"))
        for var in ("LAB_SERVER", "LAB_TOKEN", "LAB_SYSTEM_METRICS", "LAB_SYSTEM_METRICS_INTERVAL"):
            env.pop(var, None)
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="length of each sampled run (default 120)")
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per log_metric figure (default 5)")
    ap.add_argument("--calls", type=int, default=200_000, help="log_metric calls per process (default 200,000)")
    ap.add_argument("--json", default="bench-out/system_metrics.json", help="where to write the results")
    args = ap.parse_args()

    rows = []
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "sampler": [], "log_metric": []}
    for interval in (5.0, 1.0):
        r = child(SAMPLER, str(interval), str(args.seconds))
        share = r["cpu_s"] / r["wall_s"] * 100
        per_sample_ms = r["cpu_s"] / max(1, r["samples"] - 1) * 1000
        results["sampler"].append({"interval_s": interval, **r, "percent_of_one_core": share, "ms_per_sample": per_sample_ms})
        rows.append(
            f"| sampler thread, {interval:g} s interval, {r['wall_s']:.0f} s run | {share:.4f} % of one core "
            f"| {r['samples']} samples, {per_sample_ms:.2f} ms of CPU each | ≤ 0.2 % |"
        )
    for setting in ("off", "0.1"):
        per_call = [child(LOG_METRIC, setting, str(args.calls))["us"] for _ in range(args.repeat)]
        med = statistics.median(per_call)
        results["log_metric"].append({"sampler": setting, "us": per_call, "median_us": med})
        label = "sampler off" if setting == "off" else "sampler every 0.1 s"
        rows.append(
            f"| `log_metric`, µs per call ({args.calls:,} calls), {label} | {med:.3f} "
            f"| min {min(per_call):.3f}, max {max(per_call):.3f}, {args.repeat} runs | |"
        )
    print("| measure | value | detail | target |")
    print("|---|---:|---|---|")
    for row in rows:
        print(row)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
