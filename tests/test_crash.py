"""A run killed with SIGKILL keeps every step it acknowledged and shows as crashed."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lab
from conftest import lab_cli, lab_env, run_python

CHILD = """
import sys
from lab.experiment import Experiment

e = Experiment("crash")
with e.start_run():
    print(e.run_id, flush=True)
    step = 0
    while True:
        e.log_metric("loss", 1.0 / (step + 1), step=step)
        e.log_parameter("last_step", step)
        print(step, flush=True)
        step += 1
"""

ROUNDS = 20


def test_kill_minus_nine_loses_no_acknowledged_step(project: Path) -> None:
    script = project / "child.py"
    script.write_text(CHILD)
    rng = random.Random(1234)
    for round_ in range(ROUNDS):
        with subprocess.Popen(
            [sys.executable, str(script)],
            cwd=project,
            env=lab_env(project),
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            # Kill at a random moment: at once (while the run is still gathering
            # its environment), or after thousands of steps.
            deadline = time.monotonic() + rng.choice([0.0, 0.001, 0.01, 0.05, 0.2, 0.5])
            acknowledged = []
            while time.monotonic() < deadline:
                line = child.stdout.readline()
                if line:
                    acknowledged.append(int(line))
            child.send_signal(signal.SIGKILL)
            # Lines already written to the pipe were acknowledged too.
            rest = child.stdout.read()
            acknowledged += [int(x) for x in rest.split()]
        assert child.returncode == -signal.SIGKILL

        run = lab.get_run(run_id)
        assert run.status == "crashed", f"round {round_}"
        stored = {step for step, _, _ in run.metric_history("loss")}
        missing = [s for s in acknowledged if s not in stored]
        assert not missing, f"round {round_}: acknowledged steps lost: {missing[:10]}"
        if acknowledged:
            assert run.metrics["loss"] == 1.0 / (max(stored) + 1)
            assert run.params["last_step"] >= acknowledged[-1]
    assert len(lab.runs("crash")) == ROUNDS


ENDING_CHILD = """
from lab.experiment import Experiment

e = Experiment("ending")
i = 0
while True:
    with e.start_run():
        for k in range(10):
            e.log_parameter(f"p{k}", i * 10 + k)
            e.log_metric(f"m{k}", i + k / 10)
    print(e.run_id, i, flush=True)
    i += 1
"""


def test_a_run_acknowledged_as_ended_is_whole_and_finished_after_kill_minus_nine(project: Path) -> None:
    """Ending a run writes its End record before it returns; closing,
    syncing and indexing its journal follow on the `lab-finish` thread,
    which takes the runs ended meanwhile together. A `kill -9` at any
    instant loses none of it: every run the script saw end is `finished`
    with all it logged, whether the thread had got to it or not, and the
    one the kill cut short is `crashed`."""
    script = project / "ending.py"
    script.write_text(ENDING_CHILD)
    rng = random.Random(99)
    ended: dict = {}
    for _ in range(6):
        with subprocess.Popen(
            [sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout is not None
            want = rng.choice([1, 3, 20, 100])
            text = "".join(child.stdout.readline() for _ in range(want))
            child.send_signal(signal.SIGKILL)
            text += child.stdout.read()
        assert child.returncode == -signal.SIGKILL
        # The script's output passes through Lab's console capture, whose
        # thread the kill can stop halfway through a line: a run counts as
        # seen ended when its whole line came out.
        whole = text.split("\n")[:-1]
        ended.update(dict(line.split() for line in whole if line.strip()))
    runs = {r.id: r for r in lab.runs("ending")}
    for run_id, i in ended.items():
        run = runs[run_id]
        i = int(i)
        assert run.status == "finished", run_id
        assert run.params == {f"p{k}": i * 10 + k for k in range(10)}, run_id
        assert run.metrics == {f"m{k}": i + k / 10 for k in range(10)}, run_id
    # At most one run of each process was not acknowledged: the one the
    # kill came in, the run after its last acknowledged one. It is
    # `crashed`, or `finished` and whole when the kill came after its end
    # and before the script printed it.
    last_acknowledged: dict = {}
    for run_id, i in ended.items():
        pid = runs[run_id].attrs["pid"]
        last_acknowledged[pid] = max(last_acknowledged.get(pid, -1), int(i))
    others = [r for r in runs.values() if r.id not in ended]
    pids = [r.attrs["pid"] for r in others]
    assert len(set(pids)) == len(pids) and set(pids) <= set(last_acknowledged), pids
    for run in others:
        assert run.status in ("crashed", "finished"), run.status
        if run.status == "finished":
            i = last_acknowledged[run.attrs["pid"]] + 1
            assert run.params == {f"p{k}": i * 10 + k for k in range(10)}, run.id
            assert run.metrics == {f"m{k}": i + k / 10 for k in range(10)}, run.id


FORKING_CHILD = """
import os, sys, time
from lab.experiment import Experiment

e = Experiment("forking")
with e.start_run():
    e.log_metric("loss", 0.5)
    pid = os.fork()
    if pid == 0:
        # The run is the parent's: logging to it from here is refused.
        try:
            e.log_metric("loss", 0.25)
        except Exception as exc:
            # One write(2) a line: parent and child share the pipe.
            os.write(1, f"{type(exc).__name__} {exc}\\n".encode())
        # A forked worker that outlives its parent, as data loaders can.
        time.sleep(30)
        os._exit(0)
    os.write(1, f"{e.run_id} {pid}\\n".encode())
    time.sleep(30)
"""


def test_a_forked_child_neither_logs_to_nor_keeps_alive_its_parents_run(project: Path) -> None:
    script = project / "forking.py"
    script.write_text(FORKING_CHILD)
    with subprocess.Popen(
        [sys.executable, str(script)], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        lines = [parent.stdout.readline().split(), parent.stdout.readline().split()]
        assert all(lines), lines
        refusal = next(line for line in lines if line[0] == "RunEndedError")
        run_id, child_pid = next(line for line in lines if line[0] != "RunEndedError")
        assert "belongs to the parent process" in " ".join(refusal), lines
        assert lab.get_run(run_id).status == "running"
        parent.send_signal(signal.SIGKILL)
    try:
        # The child still runs and still has the file open, yet the run is over.
        assert os.path.exists(f"/proc/{child_pid}")
        run = lab.get_run(run_id)
        assert run.status == "crashed"
        assert run.metric_history("loss") and [v for _, _, v in run.metric_history("loss")] == [0.5]
    finally:
        os.kill(int(child_pid), signal.SIGKILL)


FORKED_AS_FILES_OPEN = """
import os
from lab.experiment import Experiment

# Runs in the child before Lab's own fork handler (registered later, by the
# first run): it closes every descriptor the run opened, as a child forked
# while another thread of the parent opened them has none of them, yet has
# them in its memory (`fork` copies the descriptors before the memory).
made = set()
reopened = []
def as_if_copied_before_they_were_opened():
    for fd in made:
        try:
            os.close(fd)
        except OSError:
            pass
    # And a handler's own descriptor, under the lowest of their numbers.
    reopened.append(os.open(os.devnull, os.O_RDONLY))
os.register_at_fork(after_in_child=as_if_copied_before_they_were_opened)

def open_fds():
    return {int(n) for n in os.listdir("/proc/self/fd")}

e = Experiment("forked")
before = open_fds()
with e.start_run():
    e.log_metric("loss", 0.5)
    made.update(open_fds() - before)
    pid = os.fork()
    if pid == 0:
        # Lab's handler left the handler's descriptor open.
        fd = reopened[-1]
        try:
            os.fstat(fd)
        except OSError:
            os._exit(3)
        os._exit(0 if fd in made else 4)
    _, status = os.waitpid(pid, 0)
    e.log_metric("loss", 0.25)
print(status, len(made), e.run_id, flush=True)
"""


def test_a_child_without_the_descriptors_of_its_parents_run_lets_go_of_them(project: Path) -> None:
    # Such a child (one in a thousand forks, with runs starting on other
    # threads) aborted in Lab's fork handler, closing its copy of the run's
    # journal or console: "owned file descriptor already closed" (the check
    # of debug builds, which the tests use; a release build closed the
    # number blindly, whatever it was open on by then).
    proc = run_python(project, FORKED_AS_FILES_OPEN, timeout=120)
    assert proc.returncode == 0, proc.stderr
    status, made, run_id = proc.stdout.split()
    assert int(made) >= 2, "the run opened its journal and the console's copies"
    # 3: Lab closed a number another handler had opened since (4: the
    # handler's descriptor did not take a number of the run's).
    assert os.waitstatus_to_exitcode(int(status)) == 0, proc.stderr
    # The parent's run went on as if nothing happened.
    run = lab.get_run(run_id)
    assert run.status == "finished"
    assert [v for _, _, v in run.metric_history("loss")] == [0.5, 0.25]


FORKS_UNDER_LOAD = """
import json, os, sys, threading, time
# System metrics on, as users have them: their sampler is forked too.
os.environ.pop("LAB_SYSTEM_METRICS", None)
from lab import _lab
from lab.experiment import Experiment

FORKS = int(sys.argv[1])
stop = threading.Event()

def churn():
    # Runs ended one after the other: the `lab-finish` thread is always
    # taking, finishing and reporting batches, under its queue's lock now
    # and then. (Not faster than it finishes them: each live journal holds
    # megabytes of reserved space.)
    busy = Experiment("busy", system_metrics_interval=0.1)
    while not stop.is_set():
        with busy.start_run():
            busy.log_metric("x", 1.0)
        time.sleep(0.005)

threading.Thread(target=churn, daemon=True).start()
time.sleep(0.2)
hung = failed = 0
for i in range(FORKS):
    pid = os.fork()
    if pid == 0:
        child = Experiment("child", system_metrics_interval=0.1)
        with child.start_run():
            child.log_metric("y", float(i))
        problems = _lab.wait_for_background()
        if problems:
            print(problems, file=sys.stderr, flush=True)
        os._exit(1 if problems else 0)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            failed += status != 0
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.001)
    if hung:
        break
stop.set()
print(json.dumps({"forks": i + 1, "hung": hung, "failed": failed}), flush=True)
"""


def test_a_child_forked_while_runs_are_being_finished_ends_its_own_runs(project: Path) -> None:
    # A child forked while the parent's `lab-finish` thread held its queue's
    # lock inherited the lock held, by a thread it does not have: the first
    # run it ended waited for it forever.
    import json

    proc = run_python(project, FORKS_UNDER_LOAD, "200", timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # A message of text is shown whole (a tuple's repr is cut short).
    assert out == {"forks": 200, "hung": 0, "failed": 0}, f"{out}\n{proc.stderr[-6000:]}"
    children = lab.runs(where="experiment = child")
    assert len(children) == 200 and {r.status for r in children} == {"finished"}


CONTAINED = """
import os, sys, time
from lab.experiment import Experiment

e = Experiment("contained")
with e.start_run():
    for step in range(1000):
        e.log_metric("loss", 1.0 / (step + 1), step=step)
    print(e.run_id, os.getpid(), flush=True)
    # Wait while the host looks at the run, then log on.
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    for step in range(1000, 20000):
        e.log_metric("loss", 1.0 / (step + 1), step=step)
print("done", flush=True)
"""


def test_a_writer_in_another_pid_namespace_is_alive_while_it_holds_its_lock(
    project: Path, tmp_path: Path
) -> None:
    # A container sharing the host's name and boot id: `unshare --pid --fork
    # --mount-proc` gives the writer process ids that mean nothing outside.
    script = project / "contained.py"
    script.write_text(CONTAINED)
    go = tmp_path / "go"
    with subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script), str(go)],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as writer:
        assert writer.stdout is not None
        run_id, inner_pid = writer.stdout.readline().split()
        assert int(inner_pid) < 10, "the writer runs in its own PID namespace"
        try:
            for command in (["ls"], ["reindex"], ["ls", "--status", "running"], ["show", run_id]):
                proc = lab_cli(project, *command)
                assert proc.returncode == 0, proc.stderr
            assert lab.get_run(run_id).status == "running"
            journal = project / ".lab" / "runs" / run_id[:8] / "journal.lab"
            assert not list(journal.parent.glob("journal.lab.damaged*")), "nothing was cut"
        finally:
            go.touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert out.strip() == "done"
    run = lab.get_run(run_id)
    assert run.status == "finished"
    assert run.metric_summaries["loss"]["count"] == 20000
    assert run.damage is None


HIDDEN = """
import os, sys, time
from lab.experiment import Experiment

os.umask(0)  # a project shared with another user
e = Experiment("hidden")
with e.start_run():
    e.log_metric("loss", 0.5, step=0)
    print(e.run_id, flush=True)
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    e.log_metric("loss", 0.25, step=1)
print("done", flush=True)
"""


def test_a_writer_hidden_from_the_reader_by_hidepid_is_alive_while_it_holds_its_lock(tmp_path: Path) -> None:
    # Another user reads a project shared with the writer, on a machine whose
    # `/proc` is mounted with `hidepid=2` (as multi-user hosts often are):
    # the writer's `/proc/<pid>` does not exist for that user, yet it runs.
    shared = Path(tempfile.mkdtemp(prefix="lab-shared-"))
    try:
        shared.chmod(0o777)
        project = shared / "project"
        project.mkdir(mode=0o777)
        project.chmod(0o777)
        script = shared / "hidden.py"
        script.write_text(HIDDEN)
        go = tmp_path / "go"
        exe = Path(sys.executable).parent / "lab"
        as_other_user = [
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$0" "$@"',
            str(exe),
        ]
        with subprocess.Popen(
            [sys.executable, str(script), str(go)], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
        ) as writer:
            assert writer.stdout is not None
            run_id = writer.stdout.readline().strip()
            try:
                for command in (["ls"], ["show", run_id]):
                    proc = subprocess.run(
                        [*as_other_user, *command], cwd=project, env=lab_env(project), capture_output=True, text=True
                    )
                    assert proc.returncode == 0, proc.stderr
                    assert "running" in proc.stdout and "crashed" not in proc.stdout, proc.stdout
            finally:
                go.touch()
            out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0
        assert out.strip() == "done"
        proc = lab_cli(project, "show", run_id)
        assert proc.returncode == 0, proc.stderr
        assert "finished" in proc.stdout, proc.stdout
    finally:
        shutil.rmtree(shared, ignore_errors=True)
