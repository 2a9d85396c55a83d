"""Many processes logging into one project at once, with readers in between."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import lab
from conftest import lab_cli, lab_env

WRITER = """
import sys
from lab.experiment import Experiment

worker = int(sys.argv[1])
e = Experiment("concurrent")
with e.start_run():
    e.log_parameter("worker", worker)
    for i in range(50_000):
        e.log_metric("value", worker * 1_000_000 + i, step=i)
print(e.run_id)
"""

PROCESSES = 8
POINTS = 50_000


def test_eight_writers_lose_nothing(project: Path) -> None:
    script = project / "writer.py"
    script.write_text(WRITER)
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(w)],
            cwd=project,
            env=lab_env(project),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    # The first writer to start makes the folder a project; until then a
    # reader is told it is none (a `lab ls` started at once, which takes a
    # few milliseconds, can be there first).
    marker = project / ".lab" / "project.json"
    while not marker.is_file() and any(w.poll() is None for w in writers):
        time.sleep(0.005)
    # Readers fold live journals into the index while the writers write.
    reads = 0
    while any(w.poll() is None for w in writers):
        ls = lab_cli(project, "ls", "--format", "json")
        assert ls.returncode == 0, ls.stderr
        assert "locked" not in ls.stderr
        reads += 1
    assert reads > 0
    ids = []
    announcements = 0
    for w in writers:
        out, err = w.communicate()
        assert w.returncode == 0, err
        # The only thing said on stderr: that the folder became a project, once.
        announcements += err.count("is now a Lab project")
        assert err.count("\n") == err.count("is now a Lab project"), err
        ids.append(out.strip())
    assert announcements == 1

    runs = {r.id: r for r in lab.runs("concurrent")}
    assert set(runs) == set(ids)
    for run in runs.values():
        worker = run.params["worker"]
        assert run.status == "finished"
        summary = run.metric_summaries["value"]
        assert summary["count"] == POINTS
        assert summary["min"] == worker * 1_000_000
        assert summary["max"] == worker * 1_000_000 + POINTS - 1
        history = run.metric_history("value")
        assert [s for s, _, _ in history] == list(range(POINTS))
        assert all(v == worker * 1_000_000 + s for s, _, v in history)


LOOP = """
import sys
from lab.experiment import Experiment

e = Experiment("ahead", capture=False)
with e.start_run():
    e.log_parameter("warm", 1)
from lab import _lab
assert not _lab.wait_for_background()
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[1])):
    with e.start_run():
        e.log_parameter("i", i)
    print(i + 1, flush=True)
"""

# How many ended runs may wait for the finishing thread (`MAX_WAITING` in
# crates/lab_sdk/src/finish.rs).
MAX_WAITING = 256


def test_a_loop_far_ahead_of_the_finishing_thread_waits_for_it(project: Path) -> None:
    import queue
    import sqlite3
    import threading

    script = project / "loop.py"
    script.write_text(LOOP)
    total = 3 * MAX_WAITING
    loop = subprocess.Popen(
        [sys.executable, str(script), str(total)],
        cwd=project,
        env=lab_env(project),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert loop.stdout is not None and loop.stdin is not None
    assert loop.stdout.readline().strip() == "ready"
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(s) for s in loop.stdout], daemon=True)
    reader.start()
    # Nothing can be folded while another connection holds the index's lock:
    # the finishing thread falls behind, and the loop must wait for it.
    index = sqlite3.connect(project / ".lab" / "index.sqlite", isolation_level=None)
    index.execute("BEGIN EXCLUSIVE")
    try:
        loop.stdin.write("go\n")
        loop.stdin.flush()
        ended = 0
        while True:
            try:
                ended = int(lines.get(timeout=2.0))
            except queue.Empty:
                break
        assert loop.poll() is None
        # The runs waiting, and the batch the thread took before it got
        # stuck (those ended before it woke): far fewer than all.
        assert MAX_WAITING <= ended <= 2 * MAX_WAITING, ended
    except BaseException:
        loop.kill()
        loop.wait()
        raise
    finally:
        index.execute("COMMIT")
        index.close()
    loop.stdin.close()
    assert loop.wait(timeout=120) == 0
    reader.join()
    loop.stdout.close()
    assert loop.stderr is not None
    with loop.stderr:
        # Only the line saying the folder became a project.
        assert [line for line in loop.stderr if "is now a Lab project" not in line] == []
    while not lines.empty():
        ended = int(lines.get())
    assert ended == total
    runs = lab.runs()
    assert len(runs) == total + 1
    assert all(r.status == "finished" for r in runs)
