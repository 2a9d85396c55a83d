"""`lab.runs()` builds its `Run` objects lazily and its DataFrame a column
at a time: both must give exactly what a `Run` made from the whole dict of
each run gives, and the table pandas makes of one dict per run."""

from __future__ import annotations

import copy
import pickle
import threading
from pathlib import Path

import pandas as pd
import pytest

from conftest import wait_background
import lab
from lab import _lab
from lab.experiment import Experiment
from lab.run import Run

# Every public field and property of a `Run` a listing answers.
FIELDS = [
    "id", "short_id", "name", "note", "experiment", "status", "start_time", "end_time", "duration",
    "source", "user", "host", "python_version", "git_commit", "git_dirty", "git_branch", "group",
    "parent", "argv", "packages", "dataset", "attrs", "features", "params", "metrics",
    "metric_summaries", "tags", "path", "artifacts", "models", "error", "damage",
    "stringified_params", "remote",
]  # fmt: skip


class Opaque:
    def __str__(self) -> str:
        return "opaque"


def make_runs(project: Path) -> None:
    """Runs that differ in every way a listing shows: parameters of every
    kind, present in some runs only, NaN metrics, tags, names, a group, a
    nested run, a failed run and features."""
    e = Experiment("lazy", dataset={"rows": 150})
    for i in range(6):
        with e.start_run(name=f"run-{i}" if i % 2 else None, tags={"fold": str(i)} if i % 3 else None):
            params = {"lr": 0.1 * i, "depth": i, "opt": "adam" if i % 2 else "sgd"}
            if i % 2:
                params.update({"only_odd": i, "flag": bool(i % 4 == 1), "layers": [i, i + 1]})
            else:
                params.update({"only_even": "x" * i, "nested": {"a": i}, "obj": Opaque()})
            e.log_parameters(params)
            e.log_metrics({"acc": i / 10, "loss": float("nan") if i == 2 else 1 / (i + 1)})
            if i == 3:
                e.log_features(["f1", "f2", 3])
                e.log_metric("lr", 0.5)  # a metric named as a parameter
    with e.start_run(group="sweep-1"):
        e.log_parameter("lr", 1)
        outer = e.run_id
        with Experiment("inner").start_run(parent=outer):
            pass
    with pytest.raises(ZeroDivisionError):
        with e.start_run():
            e.log_parameter("depth", 2.5)
            1 / 0  # noqa: B018
    wait_background()


def eager(**selection: object) -> list:
    """The runs as `Run` objects made from each run's whole dict."""
    return [Run(d) for d in _lab.list_runs(None, selection.get("where"), selection.get("sort", []), [], None, False)]


def assert_same_run(got: Run, want: Run) -> None:
    for field in FIELDS:
        a, b = getattr(got, field), getattr(want, field)
        assert type(a) is type(b), field
        assert repr(a) == repr(b), field  # repr: NaN equals NaN
    assert repr(got) == repr(want)
    assert got == want and hash(got) == hash(want)


def test_a_listed_run_is_read_on_first_use_and_equals_one_read_whole(project: Path) -> None:
    make_runs(project)
    listed = lab.runs()
    assert len(listed) == 9
    # Nothing is converted until a field is read.
    assert all("id" not in vars(r) and "params" not in vars(r) for r in listed)
    for got, want in zip(listed, eager()):
        assert_same_run(got, want)
    # Each field is read from the same conversion, once.
    run = listed[0]
    assert run.params is run.params and run._data is run._data
    # `dir()` lists the fields of a run not yet read too.
    fresh = lab.runs(limit=1)[0]
    assert {"id", "params", "metrics", "experiment"} <= set(dir(fresh))
    assert not hasattr(fresh, "no_such_field")


def test_what_is_assigned_to_a_listed_run_before_it_is_read_stays(project: Path) -> None:
    make_runs(project)
    run = lab.runs(limit=1)[0]
    run.params = {"mine": 1}
    run.mark = "seen"
    assert run.id == eager()[0].id
    assert run.params == {"mine": 1} and run.mark == "seen"


def test_a_listed_run_sorted_and_filtered_equals_one_read_whole(project: Path) -> None:
    make_runs(project)
    selection = {"where": "params.depth >= 1", "sort": ["-acc", "name"]}
    listed = lab.runs(where=selection["where"], sort=selection["sort"])
    want = eager(**selection)
    assert [r.id for r in listed] == [r.id for r in want] and len(want) == 6
    for got, w in zip(listed, want):
        assert_same_run(got, w)


def test_a_listed_run_pickles_and_copies_with_every_field(project: Path) -> None:
    make_runs(project)
    want = eager()
    for copier in (lambda r: pickle.loads(pickle.dumps(r)), copy.copy, copy.deepcopy):
        for got, w in zip(lab.runs(), want):
            # Before any field is read: the copy reads them first.
            assert_same_run(copier(got), w)
    read = lab.runs()[0]
    assert read.params
    assert_same_run(pickle.loads(pickle.dumps(read)), want[0])


def test_threads_reading_fresh_listed_runs_see_every_field(project: Path) -> None:
    make_runs(project)
    want = {r.id: (r.short_id, r.params, r.status) for r in eager()}
    for _ in range(20):
        listed = lab.runs()
        errors: list = []

        def read(listed: list = listed, errors: list = errors) -> None:
            try:
                for r in listed:
                    assert want[r.id] == (r.short_id, r.params, r.status)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def frame_of_dicts(runs: list) -> pd.DataFrame:
    """The DataFrame of one dict per run: what `as_frame=True` must equal."""
    rows = []
    for r in runs:
        row = {
            "id": r.id,
            "short_id": r.short_id,
            "name": r.name,
            "experiment": r.experiment,
            "status": r.status,
            "start_time": r.start_time,
            "end_time": r.end_time,
            "source": r.source,
        }
        row.update({f"params.{k}": v for k, v in r.params.items()})
        row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert list(got.dtypes) == list(want.dtypes)
    assert type(got.index) is type(want.index)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_column_type=True, check_index_type=True)
    # Cell by cell, objects included (a list, a dict, None or NaN).
    for column in want.columns:
        assert [repr(v) for v in got[column]] == [repr(v) for v in want[column]], column


@pytest.mark.parametrize(
    "selection",
    [{}, {"where": "params.depth >= 1", "sort": ["-acc"]}, {"sort": "only_even"}, {"where": "depth > 100"}],
    ids=["all", "filtered", "sorted", "none"],
)
def test_as_frame_equals_the_frame_of_one_dict_per_run(project: Path, selection: dict) -> None:
    make_runs(project)
    got = lab.runs(as_frame=True, **selection)
    assert_same_frame(got, frame_of_dicts(eager(where=selection.get("where"), sort=_keys(selection))))
    if selection.get("where") == "depth > 100":
        assert got.empty


def test_as_frame_of_a_running_run_and_a_limit(project: Path) -> None:
    make_runs(project)
    e = Experiment("live")
    with e.start_run():
        e.log_parameter("depth", "deep")
        e.log_metric("acc", 1.0)
        got = lab.runs(as_frame=True)
        assert got["end_time"].isna().iloc[0] and got["status"].iloc[0] == "running"
        assert_same_frame(got, frame_of_dicts(eager()))
        assert_same_frame(lab.runs(as_frame=True, limit=2), frame_of_dicts(eager()[:2]))


def _keys(selection: dict) -> list:
    sort = selection.get("sort", [])
    return [sort] if isinstance(sort, str) else list(sort)


def make_typed_runs() -> None:
    """Runs whose parameters give each kind of column pandas makes: ints
    alone, ints with a missing cell or a float, bools alone or with a
    missing cell or an int, strings, None, huge ints, -0.0 and infinities;
    metrics with NaN and missing cells; keys met in different orders."""
    rows = [
        {"i": 1, "i_gap": 1, "if": 1, "b": True, "b_gap": True, "bi": True, "bf": 1.5, "s": "a", "big": 2**62 + 1},
        {"i": -2, "if": 2.5, "b": False, "bi": 3, "bf": False, "s": "b", "s_gap": "x", "big": 0.5, "none": None},
        {"i": 2**63 - 1, "i_gap": -7, "if": -0.0, "b": True, "bi": False, "bf": float("inf"), "s": "", "big": -(2**63)},
    ]
    e = Experiment("typed")
    for i, params in enumerate(rows):
        with e.start_run():
            # Keys logged in another order in each run.
            e.log_parameters(dict(reversed(list(params.items()))) if i % 2 else params)
            metrics = {"m": [0.5, float("nan"), -0.0][i], "inf": float("-inf")}
            if i != 1:
                metrics["gap"] = i
            e.log_metrics(metrics)
    wait_background()


def test_as_frame_makes_each_kind_of_column_pandas_makes(project: Path) -> None:
    make_typed_runs()
    got = lab.runs("typed", as_frame=True)
    assert_same_frame(got, frame_of_dicts(eager(where="experiment = 'typed'")))
    dtypes = {c: str(t) for c, t in got.dtypes.items()}
    # The numbers that come as numpy arrays, and the columns that stay objects.
    assert dtypes["params.i"] == "int64" and dtypes["params.b"] == "bool"
    assert dtypes["params.i_gap"] == dtypes["params.if"] == dtypes["params.big"] == "float64"
    assert dtypes["metrics.m"] == dtypes["metrics.gap"] == "float64"
    assert dtypes["params.b_gap"] == dtypes["params.bi"] == dtypes["params.bf"] == "object"
    assert dtypes["start_time"].startswith("datetime64[") and dtypes["start_time"] == dtypes["end_time"]
    assert got["params.i"].tolist() == [2**63 - 1, -2, 1]
    # The frame is the caller's to change.
    got.loc[0, "metrics.m"] = 1.0
    got.loc[0, "params.i"] = 5


def test_as_frame_with_many_keys_and_runs_naming_different_ones(project: Path) -> None:
    e = Experiment("wide")
    for i in range(5):
        with e.start_run():
            e.log_parameters({f"p{j}": j * i for j in range(i * 60, i * 60 + 150)})
            e.log_metrics({f"m{j}": j / (i + 1) for j in range(0, 200, i + 1)})
    wait_background()
    got = lab.runs("wide", as_frame=True)
    assert len(got.columns) == 8 + 390 + 200
    assert_same_frame(got, frame_of_dicts(eager(where="experiment = 'wide'")))


def test_as_frame_of_runs_all_running_keeps_end_time_a_column_of_none(project: Path) -> None:
    e = Experiment("running")
    with e.start_run():
        e.log_parameter("depth", 3)
        got = lab.runs("running", as_frame=True)
        want = frame_of_dicts(eager(where="experiment = 'running'"))
        assert got["end_time"].tolist() == [None] and got["end_time"].dtype == object
        assert_same_frame(got, want)
