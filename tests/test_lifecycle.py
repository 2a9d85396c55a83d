"""How runs start and end: statuses, re-raised errors, artifacts at the end, threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import lab
from conftest import lab_cli, lab_env, run_python, sigint_default, stop, wait_background
from lab.experiment import Experiment


def test_keyboard_interrupt_marks_the_run_interrupted_and_propagates(project: Path) -> None:
    e = Experiment("lifecycle")
    with pytest.raises(KeyboardInterrupt):
        with e.start_run():
            e.log_metric("loss", 1.0)
            raise KeyboardInterrupt
    run = lab.get_run(e.run_id)
    assert run.status == "interrupted"
    assert run.error is not None and run.error["type"] == "KeyboardInterrupt"
    assert run.metrics == {"loss": 1.0}


def test_ctrl_c_right_after_a_run_starts_stops_a_blocking_call(project: Path) -> None:
    """A Ctrl-C goes to the main thread, which Python wakes from a blocking
    call, also while Lab's own threads gather the run's environment: taken
    by one of them, it waited until the blocking call was over."""
    (project / "blocked.py").write_text(
        "import time\n"
        "from lab.experiment import Experiment\n"
        "e = Experiment('blocked')\n"
        "with e.start_run():\n"
        "    print(e.run_id, flush=True)\n"
        "    time.sleep(60)\n"
    )
    # Before, one Ctrl-C in 3 to 15 here waited the whole minute.
    for _ in range(30):
        proc = subprocess.Popen(
            [sys.executable, str(project / "blocked.py")],
            cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=sigint_default,
        )
        try:
            assert proc.stdout is not None
            run_id = proc.stdout.readline().strip()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            stop(proc)
        assert "KeyboardInterrupt" in err, err
        assert lab.get_run(run_id).status == "interrupted"


def test_ctrl_c_in_a_real_process(project: Path) -> None:
    code = """
    import sys, time
    from lab.experiment import Experiment
    e = Experiment("sigint")
    @e.start_run
    def train():
        print(e.run_id, flush=True)
        for step in range(10**9):
            e.log_metric("loss", 1.0, step=step)
            time.sleep(0.001)
    """
    (project / "sigint.py").write_text(__import__("textwrap").dedent(code))
    proc = subprocess.Popen(
        [sys.executable, str(project / "sigint.py")],
        cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_default,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    run = lab.get_run(run_id)
    assert run.status == "interrupted"
    assert run.metric_summaries["loss"]["count"] > 10


@pytest.mark.parametrize(("code", "status"), [(0, "finished"), (None, "finished"), (3, "failed"), ("bye", "failed")])
def test_system_exit(project: Path, code: object, status: str) -> None:
    e = Experiment("exit")
    with pytest.raises(SystemExit):
        with e.start_run():
            sys.exit(code)
    run = lab.get_run(e.run_id)
    assert run.status == status
    assert (run.error is None) == (status == "finished")


def test_the_error_reaches_the_caller_unchanged(project: Path) -> None:
    class Boom(Exception):
        pass

    original = Boom("no good", 42)
    e = Experiment("errors")
    with pytest.raises(Boom) as caught:

        @e.start_run
        def train() -> None:
            e.log_parameter("lr", 0.1)
            raise original

    assert caught.value is original
    run = lab.get_run(e.run_id)
    assert run.status == "failed"
    # Exceptions outside builtins are named with their module.
    assert run.error["type"] == "test_lifecycle.test_the_error_reaches_the_caller_unchanged.<locals>.Boom"
    assert run.error["message"] == str(original)
    assert "raise original" in run.error["traceback"]
    assert run.params == {"lr": 0.1}


def test_the_decorated_name_runs_the_function_again_as_a_new_run(project: Path) -> None:
    e = Experiment("again")
    calls = []

    @e.start_run
    def train(lr: float = 0.1) -> float:
        calls.append(lr)
        e.log_parameter("lr", lr)
        return lr * 2

    first = e.run_id
    assert calls == [0.1]
    assert train(0.5) == 1.0
    assert calls == [0.1, 0.5]
    assert e.run_id != first
    assert [r.params["lr"] for r in lab.runs("again")] == [0.5, 0.1]
    assert train.__name__ == "train"


def test_start_run_with_parentheses_also_runs_at_once(project: Path) -> None:
    e = Experiment("parens")
    seen = []

    @e.start_run()
    def train() -> None:
        seen.append(e.run_id)
        e.log_metric("m", 1)

    assert seen and lab.get_run(seen[0]).status == "finished"


def test_artifacts_are_copied_when_the_run_fails(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.txt").write_text("first")
    e = Experiment("artifacts")
    with pytest.raises(RuntimeError):
        with e.start_run():
            e.log_artifact("logs", folder)
            # Written after the call: copied too, since the copy happens at the end.
            (folder / "sub").mkdir()
            (folder / "sub" / "b.txt").write_text("second")
            raise RuntimeError("diverged")
    run = lab.get_run(e.run_id)
    assert run.status == "failed"
    copied = Path(run.artifacts["logs"])
    assert (copied / "a.txt").read_text() == "first"
    assert (copied / "sub" / "b.txt").read_text() == "second"
    # A copy, not a move.
    assert (folder / "a.txt").exists()


def test_an_artifact_whose_source_vanished_warns_and_the_run_still_finishes(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("x")
    e = Experiment("vanished")
    with pytest.warns(lab.LabWarning, match="report"):
        with e.start_run():
            e.log_artifact("report", report)
            report.unlink()
    run = lab.get_run(e.run_id)
    assert run.status == "finished"
    assert "report" not in run.artifacts
    assert not (Path(run.path) / "artifacts" / "report").exists()


def test_threads_can_log_into_one_run(project: Path) -> None:
    e = Experiment("threads")
    with e.start_run():

        def work(n: int) -> None:
            for i in range(2000):
                e.log_metric(f"t{n}", i, step=i)
                e.log_metrics({"shared": float(i)})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wait_background()
    run = lab.get_run(e.run_id)
    for n in range(4):
        assert run.metric_summaries[f"t{n}"]["count"] == 2000
    assert run.metric_summaries["shared"]["count"] == 8000
    steps = [s for s, _, _ in run.metric_history("shared")]
    assert sorted(steps) == list(range(8000)), "implicit steps are handed out once each"


def test_runs_as_a_dataframe(project: Path) -> None:
    e = Experiment("frame")
    for lr in (0.1, 0.2):
        with e.start_run():
            e.log_parameter("lr", lr)
            e.log_metric("acc", lr * 4)
    df = lab.runs("frame", as_frame=True)
    assert list(df["params.lr"]) == [0.2, 0.1]
    assert list(df["metrics.acc"]) == [0.8, 0.4]
    assert set(df["status"]) == {"finished"}


def test_a_run_is_visible_while_it_is_running(project: Path) -> None:
    e = Experiment("live")
    with e.start_run():
        e.log_metric("loss", 0.5)
        e.log_parameter("p", 1)
        live = lab.get_run(e.run_id)
        assert live.status == "running"
        assert live.metrics == {"loss": 0.5}
        assert live.end_time is None and live.duration is None
        e.log_metric("loss", 0.25)
        assert lab.get_run(e.run_id).metrics == {"loss": 0.25}
    assert lab.get_run(e.run_id).status == "finished"


def test_environment_is_recorded_off_the_calling_thread(project: Path) -> None:
    proc = run_python(
        project,
        """
        import time
        from lab.experiment import Experiment
        e = Experiment("env")
        with e.start_run():
            pass
        print(e.run_id)
        """,
        check=True,
    )
    run = lab.get_run(proc.stdout.strip())
    assert run.python_version == sys.version.split()[0]
    assert any(p.startswith("numpy==") for p in run.packages)
    assert run.attrs["pid"] > 0
    assert run.attrs["writer"]["pid"] == run.attrs["pid"]


def test_objects_stored_as_text_are_marked(project: Path) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "Opaque(7)"

    e = Experiment("marked")
    with e.start_run():
        e.log_parameter("model", Opaque())
        e.log_parameter("plain", "Opaque(7)")
    run = lab.get_run(e.run_id)
    assert run.params == {"model": "Opaque(7)", "plain": "Opaque(7)"}
    assert run.stringified_params == {"model"}


# -- one Experiment, two threads -------------------------------------------------


@pytest.mark.parametrize("form", ["with", "decorator"])
def test_two_threads_starting_runs_of_one_experiment_at_once(project: Path, form: str) -> None:
    """Exactly one thread starts a run; the other is refused and logs nothing anywhere."""
    trials = 12
    e = Experiment("race")
    for trial in range(trials):
        go = threading.Barrier(2)
        tried = threading.Barrier(2, timeout=30)
        outcome: "dict[str, BaseException | str]" = {}

        def body(who: str) -> None:
            e.log_parameter("who", who)
            e.log_metric("trial", trial)
            tried.wait()  # stay in the run until the other thread has tried

        def attempt(who: str) -> None:
            go.wait()
            try:
                if form == "with":
                    with e.start_run():
                        body(who)
                else:
                    e.start_run(lambda: body(who))
                outcome[who] = "ran"
            except lab.LabError as err:
                outcome[who] = err
                tried.wait()

        threads = [threading.Thread(target=attempt, args=(w,)) for w in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [w for w, o in outcome.items() if o == "ran"]
        losers = [o for o in outcome.values() if isinstance(o, lab.LabError)]
        assert len(winners) == 1 and len(losers) == 1, f"trial {trial}: {outcome}"
        assert "runs of one Experiment cannot nest" in str(losers[0])
    wait_background()
    found = lab.runs()
    assert len(found) == trials
    for run in found:
        assert run.status == "finished"
        assert set(run.params) == {"who"}
        assert run.metric_summaries["trial"]["count"] == 1


def test_another_thread_logs_into_the_live_run_of_the_experiment(project: Path) -> None:
    """One current run per Experiment: any thread's logging call goes to it."""
    e = Experiment("shared")
    with e.start_run():
        t = threading.Thread(target=lambda: e.log_parameter("from_thread", 1))
        t.start()
        t.join()
    run = lab.get_run(e.run_id)
    assert run.params == {"from_thread": 1}


# -- ending a run, whatever the exception --------------------------------------------


class _StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class _ReprAndStrRaise(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ is broken")


class _BrokenModuleMeta(type):
    @property
    def __module__(cls) -> str:  # type: ignore[override]
        raise RuntimeError("__module__ is broken")


class _BrokenModule(Exception, metaclass=_BrokenModuleMeta):
    pass


class _StrNotText(Exception):
    def __str__(self) -> "str":
        return 42  # type: ignore[return-value]


class _NotesThatCannotBeRead(list):
    def __iter__(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("__notes__ is broken")


def _unformattable_traceback() -> BaseException:
    err = ValueError("plain message")
    # `traceback.format_exception` iterates over the notes and fails.
    err.__notes__ = _NotesThatCannotBeRead(["a note"])
    return err


UNUSUAL_ERRORS = [
    pytest.param(lambda: _StrRaises(), "_StrRaises", "<unprintable _StrRaises object>", id="str-raises"),
    pytest.param(lambda: _ReprAndStrRaise(), "_ReprAndStrRaise", "<unprintable _ReprAndStrRaise object>", id="repr-and-str-raise"),
    pytest.param(lambda: _BrokenModule("odd class"), "_BrokenModule", "odd class", id="broken-module"),
    pytest.param(lambda: _StrNotText(), "_StrNotText", "<unprintable _StrNotText object>", id="str-not-text"),
    pytest.param(lambda: ValueError("lone \ud800 surrogate"), "ValueError", "lone \\ud800 surrogate", id="surrogate"),
    pytest.param(_unformattable_traceback, "ValueError", "plain message", id="bad-traceback"),
]


@pytest.mark.parametrize("make, type_name, message", UNUSUAL_ERRORS)
@pytest.mark.parametrize("form", ["with", "decorator"])
def test_a_run_always_ends_and_the_error_propagates_unchanged(
    project: Path, capsys: pytest.CaptureFixture[str], make: Callable[[], BaseException], type_name: str, message: str, form: str
) -> None:
    original = make()
    seen: "list[object]" = []
    e = Experiment("unusual")

    def train() -> None:
        e.log_parameter("lr", 0.1)
        try:
            raise original
        except BaseException as err:
            seen.append(err.__traceback__)
            raise

    with pytest.raises(BaseException) as caught:
        if form == "with":
            with e.start_run():
                train()
        else:
            e.start_run(train)
    assert caught.value is original
    # Its own traceback, down to the `raise` in `train`, with nothing of Lab's chained to it.
    chain = []
    tb = caught.value.__traceback__
    while tb is not None:
        chain.append(tb)
        tb = tb.tb_next
    assert seen[0] in chain
    assert chain[-1].tb_frame.f_code.co_name == "train"
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert "could not end" not in capsys.readouterr().err
    wait_background()
    run = lab.get_run(e.run_id)
    assert run.status == "failed"
    assert run.error["type"].endswith(type_name)
    assert run.error["message"] == message
    assert run.error["traceback"]
    assert run.params == {"lr": 0.1}


def test_a_huge_error_message_is_stored_cut_and_the_run_ends(project: Path) -> None:
    # The sizes docs/python-api.md gives.
    max_message, max_traceback = 64 << 10, 256 << 10
    head, tail = "HEAD" * 1000, "TAIL" * 1000
    original = RuntimeError(head + "x" * (300 << 20) + tail)
    e = Experiment("huge")
    with pytest.raises(RuntimeError) as caught:
        with e.start_run():
            raise original
    assert caught.value is original
    wait_background()
    run = lab.get_run(e.run_id)
    assert run.status == "failed"
    message = run.error["message"]
    assert len(message.encode()) <= max_message
    assert message.startswith(head) and message.endswith(tail)
    assert "bytes cut" in message
    traceback = run.error["traceback"]
    assert len(traceback.encode()) <= max_traceback
    assert traceback.startswith("Traceback") and "bytes cut" in traceback


def test_a_system_exit_with_an_odd_code_still_ends_the_run(project: Path) -> None:
    class Odd:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("cannot compare")

        __hash__ = object.__hash__

    e = Experiment("exit")
    code = Odd()
    with pytest.raises(SystemExit) as caught:
        with e.start_run():
            sys.exit(code)
    assert caught.value.code is code
    wait_background()
    assert lab.get_run(e.run_id).status == "failed"


@pytest.fixture
def small_disk(tmp_path: Path) -> "Iterator[Path]":
    """A 12 MiB tmpfs of its own, removed afterwards."""
    assert os.geteuid() == 0, "mounting a tmpfs needs root (the tests run as root, as CI does)"
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_on_a_full_disk_the_run_still_ends_and_the_users_error_propagates(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_PROJECT", str(small_disk))
    code = """
    import os
    import lab
    from lab.experiment import Experiment

    class Boom(Exception):
        pass

    e = Experiment("full-disk")
    original = Boom("the script's own error")
    try:
        with e.start_run():
            # Fill the disk, then the space the journal reserved for itself.
            with open("filler", "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(bytes(1 << 16))
                except OSError:
                    pass
            try:
                for i in range(10**8):
                    e.log_metric("m", float(i))
            except lab.StorageError:
                pass
            raise original
    except Boom as err:
        print("caught", err is original, err.__context__ is None, e.run_id)
    """
    proc = run_python(small_disk, code)
    assert proc.returncode == 0, proc.stderr
    caught, same, no_context, run_id = proc.stdout.split()
    assert (caught, same, no_context) == ("caught", "True", "True")
    # The journal kept room for the End record: the run ends as it did.
    assert "could not end run" not in proc.stderr
    assert "Traceback" not in proc.stderr
    run = lab.get_run(run_id)
    assert run.status == "failed"
    assert run.error is not None and "the script's own error" in run.error["message"]


def test_each_run_of_a_process_records_the_git_state_and_packages_it_started_with(
    project: Path, tmp_path: Path
) -> None:
    """A process reads the git state and the installed packages once and
    remembers them while nothing they come from moves: a commit, an edit of
    a tracked file, a branch switched and a package installed or upgraded
    between two runs of one process are each seen by the next run. Each
    change is made once the state before it is remembered (its files a
    second old), so a remembered state that missed a change would show."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "alpha-1.0.dist-info").mkdir()
    env = dict(
        lab_env(project),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    git = ["git", "-C", str(project)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True, env=env)
    (project / ".gitignore").write_text(".lab/\n")
    (project / "train.py").write_text(
        textwrap.dedent(
            f"""
            import json, os, subprocess, sys, time
            sys.path.append({str(site)!r})
            from lab import _lab
            from lab.experiment import Experiment
            git = ["git", "-C", {str(project)!r}]
            e = Experiment("env")
            ids = []
            def run():
                with e.start_run():
                    pass
                ids.append(e.run_id)
                # The state is gathered off the calling thread: wait for it
                # before changing what it reads.
                _lab.wait_for_background()
            def settle():
                time.sleep(1.2)
            settle()
            run()
            run()
            subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "second"], check=True)
            run()
            settle()
            run()
            with open("notes.txt", "a") as f:
                f.write("more\\n")
            run()
            settle()
            run()
            subprocess.run([*git, "checkout", "-q", "-b", "other"], check=True)
            run()
            settle()
            run()
            os.mkdir(os.path.join({str(site)!r}, "beta-2.0.dist-info"))
            run()
            settle()
            run()
            os.rename(os.path.join({str(site)!r}, "alpha-1.0.dist-info"), os.path.join({str(site)!r}, "alpha-1.1.dist-info"))
            run()
            print(json.dumps(ids))
            """
        )
    )
    (project / "notes.txt").write_text("first\n")
    subprocess.run([*git, "add", "train.py", "notes.txt", ".gitignore"], check=True, env=env)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True, env=env)
    first = subprocess.run([*git, "rev-parse", "HEAD"], check=True, env=env, capture_output=True, text=True).stdout.strip()
    proc = subprocess.run(
        [sys.executable, str(project / "train.py")], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    second = subprocess.run([*git, "rev-parse", "HEAD"], check=True, env=env, capture_output=True, text=True).stdout.strip()
    assert first != second
    runs = [lab.get_run(i) for i in json.loads(proc.stdout.strip().splitlines()[-1])]

    def state(run: lab.Run) -> tuple:
        packages = [p for p in run.packages if p.startswith(("alpha==", "beta=="))]
        return (run.attrs["git_commit"], run.attrs["git_branch"], run.attrs["git_dirty"], packages)

    clean_first = (first, "main", False, ["alpha==1.0"])
    clean_second = (second, "main", False, ["alpha==1.0"])
    dirty = (second, "main", True, ["alpha==1.0"])
    other = (second, "other", True, ["alpha==1.0"])
    beta = (second, "other", True, ["alpha==1.0", "beta==2.0"])
    upgraded = (second, "other", True, ["alpha==1.1", "beta==2.0"])
    assert [state(r) for r in runs] == [
        clean_first,
        clean_first,
        clean_second,
        clean_second,
        dirty,
        dirty,
        other,
        other,
        beta,
        beta,
        upgraded,
    ]


# Reading a process's spare run folders from outside: each found with its
# journal's inode, and whether the journal is locked (by its process).
SPARES = """
import fcntl, os

spare_root = os.path.join(os.environ["LAB_PROJECT"], ".lab", "spare")

def spares(pid=None):
    found = {}
    try:
        names = os.listdir(spare_root)
    except FileNotFoundError:
        return found
    for name in names:
        if pid is not None and not name.startswith(f"{pid}-"):
            continue
        try:
            with open(os.path.join(spare_root, name, "journal.lab"), "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked = False
                except BlockingIOError:
                    locked = True
                found[name] = (os.fstat(f.fileno()).st_ino, locked)
        except FileNotFoundError:
            pass
    return found

def wait_for_spares(n, pid=None):
    import time
    deadline = time.monotonic() + 10
    while True:
        ready = {ino for ino, locked in spares(pid).values() if locked}
        if len(ready) >= n:
            return ready
        assert time.monotonic() < deadline, spares(pid)
        time.sleep(0.005)
"""

# A loop of runs that waits, before each run, for two spare journals (the
# process makes them one after the other, so the older is ready to be
# taken), and checks after it that the run's journal is one of them.
SPARES_LOOP = SPARES + """
import json
from lab.experiment import Experiment

store = os.path.join(os.environ["LAB_PROJECT"], ".lab")
e = Experiment("spares")
taken = 0
for i in range(40):
    ready = wait_for_spares(2) if i else set()
    with e.start_run():
        e.log_parameter("i", i)
        e.log_metric("loss", 1.0 / (i + 1))
        newest = max(os.listdir(os.path.join(store, "runs")))
        taken += os.stat(os.path.join(store, "runs", newest, "journal.lab")).st_ino in ready
print(json.dumps({"taken": taken}))
"""


def test_runs_take_the_folders_made_ahead_for_them_and_none_is_left_at_exit(project: Path) -> None:
    proc = run_python(project, SPARES_LOOP, check=True)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    # Each run after the first found spares ready, so took one.
    assert seen["taken"] == 39, seen
    # The exit removed the process's spares.
    assert os.listdir(project / ".lab" / "spare") == []
    runs = lab.runs()
    assert len(runs) == 40
    assert {r.status for r in runs} == {"finished"}
    assert sorted(r.params["i"] for r in runs) == list(range(40))
    assert sorted(p.name for p in (project / ".lab" / "runs").iterdir()) == sorted(r.short_id for r in runs)


KILLED_WITH_SPARES = SPARES + """
import signal
from lab.experiment import Experiment

e = Experiment("killed")
with e.start_run():
    e.log_metric("loss", 0.5)
wait_for_spares(3)
os.kill(os.getpid(), signal.SIGKILL)
"""


def age(folders: List[Path], seconds: float = 60) -> None:
    """Sets back the times of spare folders and their journals."""
    old = time.time() - seconds
    for folder in folders:
        os.utime(folder / "journal.lab", (old, old))
        os.utime(folder, (old, old))


def test_a_killed_processs_spare_folders_are_no_runs_and_are_removed_once_settled(project: Path) -> None:
    proc = run_python(project, KILLED_WITH_SPARES)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    spare_root = project / ".lab" / "spare"
    left = sorted(spare_root.iterdir())
    assert len(left) == 3, left
    # Not runs: the one run the process made is all there is.
    runs = lab.runs()
    assert [(r.experiment, r.status, r.metrics["loss"]) for r in runs] == [("killed", "finished", 0.5)]
    assert len(lab_cli(project, "ls").stdout.strip().splitlines()) == 2
    # Changed in the last ten seconds: kept (its owner may be one that has
    # not locked it yet).
    age(left, 0)
    dry = lab_cli(project, "gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "spare" not in dry.stdout
    age(left)
    dry = lab_cli(project, "gc", "--dry-run")
    assert dry.stdout.count("a killed process's spare run folder") == 3, dry.stdout
    assert sorted(spare_root.iterdir()) == left
    done = lab_cli(project, "gc")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("a killed process's spare run folder") == 3, done.stdout
    assert list(spare_root.iterdir()) == []
    assert [r.status for r in lab.runs()] == ["finished"]
    # A journal there with more than a header is a run whose move into
    # `runs` did not last: never removed unread.
    odd = spare_root / "1-0123456789abcdef"
    odd.mkdir()
    (odd / "journal.lab").write_bytes((project / ".lab" / "runs" / runs[0].short_id / "journal.lab").read_bytes())
    age([odd])
    kept = lab_cli(project, "gc")
    assert kept.returncode == 0, kept.stderr
    assert "spare" not in kept.stdout
    assert (odd / "journal.lab").is_file()


def test_the_next_process_that_makes_spares_removes_a_killed_ones(project: Path) -> None:
    proc = run_python(project, KILLED_WITH_SPARES)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    spare_root = project / ".lab" / "spare"
    left = sorted(spare_root.iterdir())
    assert len(left) == 3
    age(left)
    run_python(
        project,
        SPARES
        + """
from lab.experiment import Experiment
e = Experiment("next")
for i in range(3):
    with e.start_run():
        e.log_metric("loss", i)
    # Its first spare is made after the stale ones were looked for.
    wait_for_spares(1, os.getpid())
""",
        check=True,
    )
    assert list(spare_root.iterdir()) == []
    assert sorted((r.experiment, r.status) for r in lab.runs()) == [("killed", "finished")] + [("next", "finished")] * 3


LIVE_WITH_SPARES = SPARES + """
import sys
from lab.experiment import Experiment

e = Experiment("live")
with e.start_run():
    e.log_metric("loss", 0.5)
ready = wait_for_spares(3)
print("ready", flush=True)
sys.stdin.readline()
with e.start_run():
    e.log_metric("loss", 0.25)
    newest = max(os.listdir(os.path.join(os.environ["LAB_PROJECT"], ".lab", "runs")))
    ino = os.stat(os.path.join(os.environ["LAB_PROJECT"], ".lab", "runs", newest, "journal.lab")).st_ino
print("taken" if ino in ready else "made", flush=True)
"""


def test_a_live_processs_spares_are_kept_by_lab_gc_however_old(project: Path) -> None:
    (project / "script.py").write_text(LIVE_WITH_SPARES)
    with subprocess.Popen(
        [sys.executable, str(project / "script.py")],
        cwd=project,
        env=lab_env(project),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        spare_root = project / ".lab" / "spare"
        left = sorted(spare_root.iterdir())
        assert len(left) == 3
        age(left, 3600)
        done = lab_cli(project, "gc")
        assert done.returncode == 0, done.stderr
        assert "spare" not in done.stdout
        assert sorted(spare_root.iterdir()) == left
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "taken\n"
        assert proc.wait(timeout=60) == 0
    assert sorted(r.metrics["loss"] for r in lab.runs()) == [0.25, 0.5]
    assert list(spare_root.iterdir()) == []


FORK_WITH_SPARES = """
import json, os, sys, time
import lab
from lab import _lab
from lab.experiment import Experiment

e = Experiment("parent")
with e.start_run():
    e.log_metric("loss", 1.0)
spare_root = os.path.join(os.environ["LAB_PROJECT"], ".lab", "spare")
deadline = time.monotonic() + 10
while not os.path.isdir(spare_root) or not os.listdir(spare_root):
    assert time.monotonic() < deadline, "no spare was made"
    time.sleep(0.01)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    # A worker that outlives the parent's next runs, holding whatever
    # descriptors it inherited, and starting a run of its own.
    os.close(read)
    child = Experiment("child")
    with child.start_run():
        child.log_metric("loss", 2.0)
    _lab.wait_for_background()
    os.write(write, b"x")
    time.sleep(30)
    os._exit(0)
os.close(write)
assert os.read(read, 1) == b"x"
for i in range(3):
    with e.start_run():
        e.log_metric("loss", float(i))
_lab.wait_for_background()
# The parent's runs ended and were closed: no journal of theirs is held
# locked by a copy of its descriptor in the child.
import fcntl
locked = []
for r in lab.runs():
    path = os.path.join(os.environ["LAB_PROJECT"], ".lab", "runs", r.short_id, "journal.lab")
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            locked.append(r.experiment)
statuses = sorted((r.experiment, r.status) for r in lab.runs())
os.kill(pid, 9)
os.waitpid(pid, 0)
print(json.dumps({"statuses": statuses, "locked": locked}))
"""


def test_a_child_forked_with_spares_ready_leaves_them_to_the_parent(project: Path) -> None:
    proc = run_python(project, FORK_WITH_SPARES, check=True)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == [["child", "finished"]] + [["parent", "finished"]] * 4, seen
    assert seen["locked"] == [], seen
