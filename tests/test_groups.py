"""Groups and sweeps: `start_run(group=, parent=, tags=)`, `@e.sweep`, nested
runs, and `group` in listings, queries and `lab ls`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import lab
from conftest import lab_cli, run_python, wait_background
from lab.experiment import Experiment


def by_id() -> dict:
    wait_background()
    return {r.id: r for r in lab.runs()}


# -- @e.sweep ------------------------------------------------------------------


def test_each_call_of_a_sweep_is_a_run_of_one_group(project: Path) -> None:
    e = Experiment("sweep")
    calls = []

    @e.sweep
    def train(lr, depth=3, *, opt="adam", data=None, model=object()):
        calls.append(e.run_id)
        e.log_metric("loss", lr * depth)
        return lr * 10

    assert calls == [], "nothing runs at decoration"
    assert not (project / ".lab").exists(), "nothing is written at decoration"
    results = [train(lr) for lr in (0.1, 0.2, 0.3)]
    assert results == [1.0, 2.0, 3.0]
    runs = by_id()
    assert len(runs) == 3 and set(runs) == set(calls)
    assert {r.group for r in runs.values()} == {train.group}
    assert train.group.startswith("train-") and len(train.group) == len("train-") + 6
    for r in runs.values():
        assert r.status == "finished"
        # Plain values logged as parameters, by name; the model object left out.
        assert set(r.params) == {"lr", "depth", "opt", "data"}
        assert (r.params["depth"], r.params["opt"], r.params["data"]) == (3, "adam", None)
    assert sorted(r.params["lr"] for r in runs.values()) == [0.1, 0.2, 0.3]
    assert train.__name__ == "train"


def test_a_sweep_with_a_group_and_keyword_arguments(project: Path) -> None:
    e = Experiment("sweep")

    @e.sweep(group="lr-sweep")
    def train(lr: float, flag: bool = False, **extra):
        return extra

    assert train(0.5, flag=True, seed=7, name="x") == {"seed": 7, "name": "x"}
    (run,) = by_id().values()
    assert run.group == "lr-sweep" and train.group == "lr-sweep"
    assert run.params == {"lr": 0.5, "flag": True, "seed": 7, "name": "x"}


def test_a_failing_call_is_a_failed_run_and_the_exception_reaches_the_caller(project: Path) -> None:
    e = Experiment("sweep")

    @e.sweep(group="g")
    def train(lr):
        if lr > 1:
            raise ValueError(f"diverged at {lr}")
        return lr

    boom = None
    with pytest.raises(ValueError, match="diverged at 2") as info:
        try:
            train(2)
        except ValueError as e_:
            boom = e_
            raise
    assert info.value is boom
    assert train(0.5) == 0.5
    statuses = sorted((r.params["lr"], r.status) for r in by_id().values())
    assert statuses == [(0.5, "finished"), (2, "failed")]
    failed = next(r for r in lab.runs() if r.status == "failed")
    assert failed.error["type"] == "ValueError" and failed.group == "g"


def test_two_sweeps_have_two_groups(project: Path) -> None:
    e = Experiment("sweep")

    @e.sweep
    def a(x):
        pass

    @e.sweep
    def b(x):
        pass

    a(1)
    b(1)
    assert a.group != b.group
    assert {r.group for r in by_id().values()} == {a.group, b.group}


def test_a_sweep_name_must_name_arguments(project: Path) -> None:
    e = Experiment("sweep")

    @e.sweep(name="lr={lr} bs={batch}")
    def train(lr):
        pass

    with pytest.raises(ValueError, match=r"`name` 'lr=\{lr\} bs=\{batch\}' names 'batch' which is no argument"):
        train(0.1)
    assert not (project / ".lab").exists(), "no run is started for a call that cannot be named"
    with pytest.raises(TypeError, match="`sweep` decorates a function: got int 3"):
        e.sweep(3)
    with pytest.raises(TypeError, match="`name` must be a format string or None: got int 3"):
        e.sweep(name=3)
    with pytest.raises(ValueError, match="`group` must not be empty or blank"):
        e.sweep(group=" ")


def test_a_sweep_call_with_wrong_arguments_starts_no_run(project: Path) -> None:
    e = Experiment("sweep")

    @e.sweep
    def train(lr):
        pass

    with pytest.raises(TypeError, match="missing a required argument: 'lr'"):
        train()
    assert not (project / ".lab").exists()


def test_a_sweep_of_a_function_without_a_signature_logs_no_arguments(project: Path) -> None:
    e = Experiment("sweep")
    biggest = e.sweep(group="builtin")(max)
    assert biggest(3, 7) == 7
    (run,) = by_id().values()
    assert (run.group, run.params, run.status) == ("builtin", {}, "finished")


def test_a_sweep_leaves_out_keyword_arguments_that_are_no_keys(project: Path) -> None:
    e = Experiment("sweep")

    @e.sweep(group="g")
    def train(**options):
        return sorted(options)

    assert train(**{"lr": 0.1, "bad name\n": 2}) == ["bad name\n", "lr"]
    (run,) = by_id().values()
    assert (run.params, run.status) == ({"lr": 0.1}, "finished")


def test_start_run_as_a_bare_decorator_still_runs_at_once(project: Path) -> None:
    """As the user guide documents it: `@e.start_run` runs the function at decoration."""
    e = Experiment("once")
    ran = []

    @e.start_run
    def train():
        ran.append(e.run_id)

    assert len(ran) == 1
    ((rid, run),) = by_id().items()
    assert rid == ran[0] and run.group is None and run.parent is None

    @e.start_run(group="g", tags={"kind": "baseline"})
    def again():
        ran.append(e.run_id)

    assert len(ran) == 2
    run = by_id()[ran[1]]
    assert (run.group, run.tags) == ("g", {"kind": "baseline"})


# -- start_run(group=, parent=, tags=) ---------------------------------------


def test_start_run_takes_group_parent_and_tags(project: Path) -> None:
    e = Experiment("cv")
    with e.start_run():
        first = e.run_id
    with e.start_run(group="folds", parent=first, tags={"fold": 1, "kind": "cv"}):
        second = e.run_id
    with e.start_run(parent=first[:8]):
        third = e.run_id
    with e.start_run(parent=lab.get_run(first)):
        fourth = e.run_id
    runs = by_id()
    assert (runs[second].group, runs[second].parent) == ("folds", first)
    assert runs[second].tags == {"fold": "1", "kind": "cv"}
    assert runs[third].parent == first and runs[fourth].parent == first
    assert runs[third].group is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"group": 3}, TypeError, "`group` must be a string or None: got int 3"),
        ({"group": ""}, ValueError, "`group` must not be empty or blank: got ''"),
        ({"group": "a\nb"}, ValueError, "`group` must not hold control characters"),
        ({"group": "x" * 201}, ValueError, "`group` must be at most 200 characters: got 201"),
        ({"group": "\udcff"}, ValueError, "group"),
        ({"parent": 3}, TypeError, "`parent` must be a run id, a `lab.Run` or None: got int 3"),
        ({"parent": "ffffffff"}, ValueError, "`parent` names no run of this project: got 'ffffffff'"),
        ({"tags": ["a"]}, TypeError, "`tags` must be a dict of tag names to values or None: got list"),
        ({"tags": {"": "v"}}, ValueError, "key"),
    ],
)
def test_bad_group_parent_or_tags_start_no_run(project: Path, kwargs: dict, error: type, message: str) -> None:
    e = Experiment("bad")
    with e.start_run():
        pass
    with pytest.raises(error, match=message.replace("(", r"\(").replace("`", "`").replace("[", r"\[")):
        e.start_run(**kwargs)
    with pytest.raises(error):

        @e.start_run(**kwargs)
        def never():  # pragma: no cover - never reached
            raise AssertionError("ran")

    assert len(lab.runs()) == 1


# -- nested runs ---------------------------------------------------------------


def test_a_nested_run_gets_the_outer_run_as_parent_and_group(project: Path) -> None:
    e = Experiment("cv")
    with e.start_run(group="cv-outer"):
        outer = e.run_id
        e.log_metric("before", 1)
        folds = []
        for fold in range(3):
            with e.start_run(tags={"fold": fold}):
                folds.append(e.run_id)
                e.log_metric("acc", fold)
        with e.start_run(group="own"):
            own = e.run_id
        # The outer run is the experiment's run again, and logs go to it.
        assert e.run_id == outer
        e.log_metric("after", 2)
    runs = by_id()
    assert runs[outer].parent is None and runs[outer].group == "cv-outer"
    assert set(runs[outer].metrics) == {"before", "after"}
    for fid in folds:
        assert runs[fid].parent == outer
        assert runs[fid].group == runs[outer].name
        assert set(runs[fid].metrics) == {"acc"}
    assert (runs[own].parent, runs[own].group) == (outer, "own")
    assert all(r.status == "finished" for r in runs.values())


def test_a_run_of_another_experiment_nests_too(project: Path) -> None:
    outer_e, inner_e = Experiment("outer"), Experiment("inner")
    with outer_e.start_run():
        with inner_e.start_run():
            inner = inner_e.run_id
    runs = by_id()
    assert runs[inner].parent == outer_e.run_id


def test_a_failing_nested_run_leaves_the_outer_one_live(project: Path) -> None:
    e = Experiment("cv")
    with e.start_run():
        outer = e.run_id
        with pytest.raises(RuntimeError):
            with e.start_run():
                inner = e.run_id
                raise RuntimeError("fold diverged")
        e.log_metric("still", 1)
    runs = by_id()
    assert (runs[outer].status, runs[inner].status) == ("finished", "failed")
    assert "still" in runs[outer].metrics


def test_another_threads_run_is_no_parent(project: Path) -> None:
    """Nesting is per thread: a run another thread has live is not the
    parent of this thread's runs, and one Experiment still refuses a second
    live run from another thread."""
    e, f = Experiment("a"), Experiment("b")
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with e.start_run():
            inside.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert inside.wait(30)
        with f.start_run():
            other = f.run_id
        with pytest.raises(lab.LabError, match="cannot nest across threads"):
            with e.start_run():
                pass  # pragma: no cover - never reached
    finally:
        release.set()
        t.join(30)
    assert by_id()[other].parent is None


# -- listings, queries, the CLI ------------------------------------------------


@pytest.fixture
def grouped(project: Path) -> dict:
    e = Experiment("sweep")

    @e.sweep(group="lr-sweep")
    def train(lr):
        e.log_metric("loss", lr)

    for lr in (0.1, 0.2):
        train(lr)
    with e.start_run(group="other"):
        e.log_metric("loss", 9)
    with e.start_run():
        e.log_metric("loss", 5)
    return by_id()


def test_group_is_a_query_field(grouped: dict) -> None:
    found = lab.runs(where='group = "lr-sweep"', sort="loss")
    assert [r.params["lr"] for r in found] == [0.1, 0.2]
    assert [r.group for r in lab.runs(where='group ~ "oth"')] == ["other"]
    assert len(lab.runs(where='group != "lr-sweep"')) == 1, "a run without a group has no value to differ"
    assert [r.group for r in lab.runs(sort="group")][:3] == ["lr-sweep", "lr-sweep", "other"]
    res = lab_cli(Path.cwd(), "ls", "--where", 'group = "lr-sweep"', "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["group"] for r in rows] == ["lr-sweep", "lr-sweep"]
    assert all("parent" not in r for r in rows)


def test_lab_ls_shows_a_group_column_when_a_run_has_a_group(grouped: dict, project: Path) -> None:
    res = lab_cli(project, "ls")
    assert res.returncode == 0, res.stderr
    header, *lines = res.stdout.splitlines()
    assert header.split()[:7] == ["ID", "NAME", "SOURCE", "STARTED", "(UTC)", "STATUS", "group"], header
    assert sum("lr-sweep" in line for line in lines) == 2
    assert sum(" other " in line for line in lines) == 1


def test_lab_ls_has_no_group_column_without_groups(project: Path) -> None:
    with Experiment("plain").start_run():
        pass
    wait_background()
    res = lab_cli(project, "ls")
    assert res.returncode == 0, res.stderr
    assert "group" not in res.stdout.splitlines()[0]


def test_lab_show_and_the_api_show_group_and_parent(project: Path) -> None:
    e = Experiment("cv")
    with e.start_run(group="cv"):
        outer = e.run_id
        with e.start_run():
            inner = e.run_id
    wait_background()
    outer_name = lab.get_run(outer).name
    res = lab_cli(project, "show", inner[:8])
    assert res.returncode == 0, res.stderr
    assert f"  group       {outer_name}\n" in res.stdout
    assert f"  parent      {outer}\n" in res.stdout
    out = run_python(
        project,
        f"""
        import json
        from lab._lab import get_run
        d = get_run({inner!r}, False)
        print(json.dumps([d["attrs"].get("group"), d["attrs"].get("parent")]))
        """,
        check=True,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == [outer_name, outer]
