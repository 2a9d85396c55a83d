"""What one run costs from start to end: a loop of short runs in one process.

    python benches/run_cost.py                # 1,000 runs x 10 params x 10 metrics, 7 processes
    python benches/run_cost.py --runs 200 --repeats 3   # a smoke run
    python benches/run_cost.py --runs 200 --taken 20000 # into a project written faster than the clock

Each repeat is a fresh process in a fresh project, a git repository with one
commit made a second before (as a training script's folder usually is), on
the disk the benchmark writes to (not a tmpfs: syncing costs what it costs). The script runs the
seed API in a loop:

    for i in range(runs):
        with e.start_run():
            for k in range(10): e.log_parameter(f"p{k}", ...)
            for k in range(10): e.log_metric(f"m{k}", ...)

and reports, per run:

- on the calling thread: the loop's wall time over the number of runs;
- until durable and indexed: the loop, then waiting for every ended run's
  journal to be closed, synced and folded into the index
  (`_lab.wait_for_background`, what the exit handler waits for);
- CPU: the process's user and system time over the same span (Lab's
  background threads included, the processes it starts, such as git, not),
  which is what the loop costs a machine whose cores are busy.

One run is made before the timing starts (it makes the project). The last
step checks that `lab.runs()` sees every run, finished. Run it against a
release build (`make bench-runcost` builds one). Medians are printed, and
written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LOOP = """
import json, resource, time
import lab
from lab import _lab
from lab.experiment import Experiment

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

N = {runs}
e = Experiment("loop", system_metrics={system_metrics}, capture={capture})
with e.start_run():
    e.log_parameter("warm", 1)
_lab.wait_for_background()
TAKEN = {taken}
if TAKEN:
    # As a project written faster than four runs a second leaves it: the
    # slots from the clock's on given, and the last one given far ahead.
    import os
    store = os.path.join(os.environ["LAB_PROJECT"], ".lab")
    clock = int(time.time() * 4) - 1_735_689_600 * 4
    for slot in range(clock, clock + TAKEN):
        os.makedirs(os.path.join(store, "runs", f"{{slot:08x}}"), exist_ok=True)
    with open(os.path.join(store, "last_slot"), "w") as f:
        f.write(f"{{clock + TAKEN - 1:010}}\\n")
t, c = time.perf_counter(), cpu()
for i in range(N):
    with e.start_run():
        for k in range(10):
            e.log_parameter(f"p{{k}}", i * 10 + k)
        for k in range(10):
            e.log_metric(f"m{{k}}", i * 0.001 + k)
loop = time.perf_counter() - t
problems = _lab.wait_for_background()
done, spent = time.perf_counter() - t, cpu() - c
runs = lab.runs()
assert not problems, problems
finished = [r for r in runs if r.status == "finished"]
assert len(finished) == N + 1, (len(finished), {{r.status for r in runs}})
print(json.dumps({{"loop_ms": loop / N * 1e3, "durable_ms": done / N * 1e3, "cpu_ms": spent / N * 1e3}}))
"""


def one(project: Path, runs: int, system_metrics: bool, capture: bool, taken: int = 0) -> dict:
    project.mkdir(parents=True)
    git = ["git", "-C", str(project), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    script = project / "train.py"
    script.write_text(textwrap.dedent(LOOP.format(runs=runs, system_metrics=system_metrics, capture=capture, taken=taken)))
    (project / ".gitignore").write_text(".lab/\n")
    subprocess.run([*git, "add", "train.py", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "train"], check=True)
    # A script is not edited in the second it starts: Lab trusts a file's
    # time stamps to tell it unchanged only once they are a second old.
    time.sleep(1.2)
    env = dict(os.environ, LAB_PROJECT=str(project), XDG_CONFIG_HOME=str(project / ".config"))
    env.pop("LAB_SERVER", None)
    env.pop("LAB_TOKEN", None)
    out = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=project, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-system-metrics", action="store_true", help="start runs with `system_metrics=False`")
    parser.add_argument("--no-capture", action="store_true", help="start runs with `capture=False`")
    parser.add_argument(
        "--taken",
        type=int,
        default=0,
        metavar="N",
        help="before timing, take the N slots from the clock's on, and record the last as given "
        "(a project written faster than four runs a second, N / 4 seconds ahead of the clock)",
    )
    parser.add_argument("--project", type=Path, default=HERE.parent / "bench-out" / "run-cost")
    parser.add_argument("--json", type=Path, default=HERE.parent / "bench-out" / "run_cost.json")
    parser.add_argument("--keep", action="store_true", help="leave the projects in place (for a caller that removes them later)")
    args = parser.parse_args()

    system_metrics, capture = not args.no_system_metrics, not args.no_capture
    # Each process gets a project of its own, and all are removed only at
    # the end: on ext4 without a journal, inodes freed in the last minute
    # are skipped one by one when new ones are made, so removing the last
    # process's 2,000 files and folders just before the next process
    # started made each of its runs' two new inodes cost a millisecond.
    base = args.project.resolve() / f"{time.time_ns()}"
    projects = [base / str(i) for i in range(args.repeats)]
    results = [one(p, args.runs, system_metrics, capture, args.taken) for p in projects]
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{args.runs:,} runs x 10 params x 10 metrics in one process, {args.repeats} processes; "
        f"system metrics {'on' if system_metrics else 'off'}, console capture {'on' if capture else 'off'}"
        + (f"; {args.taken:,} slots from the clock's taken" if args.taken else "")
    )
    print(f"{'per run, ms':<44} {'median':>8} {'min':>8} {'max':>8}")
    labels = {
        "loop_ms": "start to end, on the calling thread",
        "durable_ms": "until every run is synced and indexed",
        "cpu_ms": "CPU of the process (all threads)",
    }
    summary = {}
    for key, label in labels.items():
        values = [r[key] for r in results]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
        print(f"{label:<44} {summary[key]['median']:>8.3f} {min(values):>8.3f} {max(values):>8.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    shape = {"runs": args.runs, "system_metrics": system_metrics, "capture": capture, "taken": args.taken}
    args.json.write_text(json.dumps({"machine": machine, "shape": shape, "per_run": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
