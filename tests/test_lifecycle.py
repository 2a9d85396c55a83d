"""How runs start and end: statuses, re-raised errors, artifacts at the end, threads."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lab
from conftest import lab_env, run_python, wait_background
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
    with subprocess.Popen(
        [sys.executable, str(project / "sigint.py")],
        cwd=project, env=lab_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
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
