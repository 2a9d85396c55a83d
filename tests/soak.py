"""Lab's soak test: `make soak` (the long version of two promises whose short
versions run in the test suite, tests/test_crash.py and tests/test_concurrency.py).

1. Kill rounds: a training script logs as fast as it can (metrics, a parameter,
   sometimes an artifact and a model, sometimes ending its run and starting the
   next) and is killed with SIGKILL at a random instant. After each kill, every
   step the script acknowledged (printed after the call returned) must be in the
   index, and every run must have the status its script earned: `finished` if
   the script saw its run end, `crashed` otherwise.
2. Writers and readers: W processes write runs of many points while R processes
   list runs, read metric histories and run `lab ls` / `lab show`, for D
   seconds. No call may fail, and at the end every run must hold exactly the
   points its writer logged.

It prints its figures (docs/reliability.md records them) and exits non-zero on
the first broken promise.

    python tests/soak.py --rounds 1000 --writers 16 --readers 4 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys
from lab.experiment import Experiment

e = Experiment("soak")
rng_seed = int(sys.argv[1])
import random
rng = random.Random(rng_seed)
runs = 0
while True:
    with e.start_run():
        print("run", e.run_id, flush=True)
        steps = rng.choice([0, 10, 1000, 100000])
        if rng.random() < 0.2:
            open("artifact.txt", "w").write("x" * 1000)
            e.log_artifact("notes", "artifact.txt")
        for step in range(steps):
            e.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 97 == 0:
                e.log_parameter("last_step", step)
            print(step, flush=True)
        if rng.random() < 0.1:
            e.log_model("model", {"weights": list(range(100))})
    print("ended", flush=True)
    runs += 1
"""

READER = r"""
import sys, time
import lab
deadline = time.monotonic() + float(sys.argv[1])
reads = histories = 0
while time.monotonic() < deadline:
    runs = lab.runs("writers")
    reads += 1
    for run in runs[:3]:
        run.metric_history("value")
        histories += 1
print(reads, histories)
"""

WRITER = r"""
import sys, time
from lab.experiment import Experiment
worker = int(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
e = Experiment("writers")
made = []
while time.monotonic() < deadline:
    with e.start_run():
        e.log_parameter("worker", worker)
        for i in range(20_000):
            e.log_metric("value", float(i), step=i)
    made.append(e.run_id)
print(" ".join(made))
"""


def env_for(project: Path) -> dict:
    env = dict(os.environ)
    env["LAB_PROJECT"] = str(project)
    env.pop("NO_COLOR", None)
    return env


def lab_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "lab"
    return subprocess.run([str(exe), *args], cwd=project, env=env_for(project), capture_output=True, text=True)


def kill_rounds(root: Path, rounds: int, seed: int) -> dict:
    import lab

    project = root / "kill"
    project.mkdir()
    os.environ["LAB_PROJECT"] = str(project)
    script = project / "child.py"
    script.write_text(CHILD)
    rng = random.Random(seed)
    acknowledged_total = 0
    statuses: dict = {}
    for round_ in range(rounds):
        with subprocess.Popen(
            [sys.executable, str(script), str(rng.randrange(1 << 30))],
            cwd=project,
            env=env_for(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as child:
            assert child.stdout is not None
            deadline = time.monotonic() + rng.choice([0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0])
            lines = []
            while time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                lines.append(line.split())
            child.send_signal(signal.SIGKILL)
            lines += [line.split() for line in child.stdout.read().splitlines()]
        # What the script saw: its runs, the steps acknowledged in each, and
        # which runs it saw end.
        seen: list = []
        for words in lines:
            if not words:
                continue
            if words[0] == "run":
                seen.append({"id": words[1], "steps": [], "ended": False})
            elif words[0] == "ended":
                seen[-1]["ended"] = True
            elif seen:
                seen[-1]["steps"].append(int(words[0]))
        for s in seen:
            run = lab.get_run(s["id"])
            # A script killed after its run's End record was written but
            # before it printed so has a finished run all the same.
            allowed = ("finished",) if s["ended"] else ("crashed", "finished")
            if run.status not in allowed:
                raise SystemExit(f"round {round_}: run {s['id'][:8]} is {run.status}, its script made it {' or '.join(allowed)}")
            statuses[run.status] = statuses.get(run.status, 0) + 1
            if s["steps"]:
                stored = {step for step, _, _ in run.metric_history("loss")}
                missing = [x for x in s["steps"] if x not in stored]
                if missing:
                    raise SystemExit(f"round {round_}: run {s['id'][:8]} lost acknowledged steps {missing[:10]}")
                acknowledged_total += len(s["steps"])
        if (round_ + 1) % 50 == 0:
            print(f"  {round_ + 1} rounds, {acknowledged_total} acknowledged steps, all kept", flush=True)
    listing = lab_cli(project, "ls", "--format", "json")
    if listing.returncode != 0:
        raise SystemExit(listing.stderr)
    doctor = lab_cli(project, "doctor")
    return {
        "rounds": rounds,
        "runs": len(json.loads(listing.stdout)),
        "acknowledged_steps": acknowledged_total,
        "lost_steps": 0,
        "statuses": statuses,
        "doctor_exit": doctor.returncode,
    }


def writers_and_readers(root: Path, writers: int, readers: int, seconds: float) -> dict:
    project = root / "concurrent"
    project.mkdir()
    (project / "writer.py").write_text(WRITER)
    (project / "reader.py").write_text(READER)
    env = env_for(project)
    procs = [
        subprocess.Popen(
            [sys.executable, str(project / "writer.py"), str(w), str(seconds)],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(writers)
    ]
    time.sleep(1)
    reader_procs = [
        subprocess.Popen(
            [sys.executable, str(project / "reader.py"), str(seconds)],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(readers)
    ]
    cli_reads = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for args in (["ls", "--limit", "20"], ["ls", "--format", "json", "--limit", "5"]):
            out = lab_cli(project, *args)
            if out.returncode != 0:
                raise SystemExit(f"lab {' '.join(args)} failed: {out.stderr}")
            cli_reads += 1
    made = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a writer failed: {err}")
        made += out.split()
    reads = histories = 0
    for p in reader_procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a reader failed: {err}")
        r, h = out.split()
        reads += int(r)
        histories += int(h)
    os.environ["LAB_PROJECT"] = str(project)
    import lab

    runs = {r.id: r for r in lab.runs("writers")}
    if set(runs) != set(made):
        raise SystemExit(f"{len(set(made) - set(runs))} runs missing from the index")
    for run in runs.values():
        summary = run.metric_summaries["value"]
        if run.status != "finished" or summary["count"] != 20_000:
            raise SystemExit(f"run {run.short_id}: {run.status}, {summary['count']} points")
    return {
        "writers": writers,
        "readers": readers,
        "seconds": seconds,
        "runs": len(runs),
        "points": 20_000 * len(runs),
        "python_reads": reads,
        "histories_read": histories,
        "cli_reads": cli_reads,
        "errors": 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-soak-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        print(f"kill rounds: {args.rounds}", flush=True)
        kills = kill_rounds(root, args.rounds, args.seed)
        print(json.dumps(kills), flush=True)
        print(f"writers and readers: {args.writers} x {args.readers} for {args.minutes} min", flush=True)
        both = writers_and_readers(root, args.writers, args.readers, args.minutes * 60)
        print(json.dumps(both), flush=True)
        print(f"soak passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
