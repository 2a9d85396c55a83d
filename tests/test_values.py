"""Values round-trip through the store: what a run logs is what `lab.get_run`
gives back, in the logging process and in another process reading from disk."""

from __future__ import annotations

import inspect
import math
import os
import pickle
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lab
from conftest import lab_env, run_python, wait_background
from lab.experiment import Experiment

NAN = float("nan")
INF = float("inf")


# -- helpers -------------------------------------------------------------------


def snapshot(r, histories=()):
    """Everything a test compares, as plain data (also run in a second process)."""
    names = sorted(set(r.metrics) | set(histories))
    return {
        "id": r.id,
        "status": r.status,
        "experiment": r.experiment,
        "params": r.params,
        "metrics": r.metrics,
        "features": r.features,
        "tags": r.tags,
        "dataset": r.dataset,
        "source": r.source,
        "argv": r.argv,
        "user": r.user,
        "host": r.host,
        "python_version": r.python_version,
        "git_commit": r.git_commit,
        "git_dirty": r.git_dirty,
        "git_branch": r.git_branch,
        "packages": r.packages,
        "history": {n: r.metric_history(n) for n in names},
    }


def from_disk(project: Path, run_ids, histories=()) -> dict:
    """Snapshots of `run_ids` taken by a fresh Python process."""
    out = project.parent / "snapshots.pkl"
    code = (
        "import pickle, lab\n"
        + inspect.getsource(snapshot)
        + f"\nout = {{rid: snapshot(lab.get_run(rid), {tuple(histories)!r}) for rid in {list(run_ids)!r}}}\n"
        + f"with open({str(out)!r}, 'wb') as f:\n    pickle.dump(out, f)\n"
    )
    run_python(project, code, check=True)
    with open(out, "rb") as f:
        return pickle.load(f)


def read_both(project: Path, run_id: str, histories=()) -> dict:
    """The run read in this process (before and after the background work
    settles) and by another process."""
    views = {"this process": snapshot(lab.get_run(run_id), histories)}
    wait_background()
    views["this process, settled"] = snapshot(lab.get_run(run_id), histories)
    views["other process"] = from_disk(project, [run_id], histories)[run_id]
    return views


def same(a, b) -> bool:
    """Exact equality: same types, NaN equals NaN, -0.0 differs from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def plain(v):
    """What a JSON-like value comes back as: tuples become lists."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def mismatches(expected: dict, got: dict) -> list:
    out = []
    for k, want in expected.items():
        if k not in got:
            out.append((k, want, "<missing>"))
        elif not same(want, got[k]):
            out.append((k, want, got[k]))
    return out


class Custom:
    def __str__(self) -> str:
        return "custom-object-str"

    def __repr__(self) -> str:
        return "Custom()"


# -- parameters -------------------------------------------------------------------

PARAMS = [
    ("int_zero", 0, 0),
    ("int_negative", -17, -17),
    ("int_min", -(2**63), -(2**63)),
    ("int_max", 2**63 - 1, 2**63 - 1),
    ("int_2_63", 2**63, "9223372036854775808"),
    ("int_2_64", 2**64, "18446744073709551616"),
    ("int_huge_negative", -(2**100), str(-(2**100))),
    ("float", 0.1, 0.1),
    ("float_integral", 3.0, 3.0),
    ("nan", NAN, NAN),
    ("inf", INF, INF),
    ("minus_inf", -INF, -INF),
    ("subnormal", 5e-324, 5e-324),
    ("max_float", 1.7976931348623157e308, 1.7976931348623157e308),
    ("minus_max_float", -1.7976931348623157e308, -1.7976931348623157e308),
    ("minus_zero", -0.0, -0.0),
    ("true", True, True),
    ("false", False, False),
    ("none", None, None),
    ("empty_str", "", ""),
    ("emoji", "done 🎉🚀👩‍🔬", "done 🎉🚀👩‍🔬"),
    ("cjk", "学习率 日本語 한국어", "学习率 日本語 한국어"),
    ("combining", "e\u0301 n\u0303 a\u030a\u0323", "e\u0301 n\u0303 a\u030a\u0323"),
    ("control_chars_in_value", "line1\nline2\ttab\x00nul", "line1\nline2\ttab\x00nul"),
    ("list", [1, 2.5, "x", None, True], [1, 2.5, "x", None, True]),
    ("tuple", (1, (2, 3), ()), [1, [2, 3], []]),
    ("dict", {"a": 1, "b": {"c": [1, {"d": None}]}, "": NAN}, {"a": 1, "b": {"c": [1, {"d": None}]}, "": NAN}),
    ("dict_int_keys", {1: "a", 2: "b"}, {"1": "a", "2": "b"}),
    ("dict_odd_keys", {"a\nb": 1, "\x00": 2, "🔑": 3}, {"a\nb": 1, "\x00": 2, "🔑": 3}),
    ("long_str", "x" * 1_000_000, "x" * 1_000_000),
    ("empty_list", [], []),
    ("empty_dict", {}, {}),
    ("np_int64", np.int64(-7), -7),
    ("np_int64_max", np.int64(2**63 - 1), 2**63 - 1),
    ("np_uint8", np.uint8(200), 200),
    ("np_float32", np.float32(0.1), float(np.float32(0.1))),
    ("np_float64", np.float64(2.5), 2.5),
    ("np_bool", np.bool_(True), True),
    ("np_bool_false", np.bool_(False), False),
    ("np_array_2d", np.arange(6).reshape(2, 3), [[0, 1, 2], [3, 4, 5]]),
    ("np_array_float", np.array([0.5, np.nan, -np.inf]), [0.5, NAN, -INF]),
    ("np_array_str", np.array(["a", "b"]), ["a", "b"]),
    ("np_array_0d", np.array(4.5), 4.5),
    ("np_in_list", [np.int64(1), np.float32(0.5), np.bool_(False)], [1, 0.5, False]),
    ("object", Custom(), "custom-object-str"),
    ("object_in_list", [Custom()], ["custom-object-str"]),
]


@pytest.mark.parametrize("how", ["log_parameter", "log_parameters"])
def test_parameter_values_round_trip(project, how):
    e = Experiment("params")
    with e.start_run():
        if how == "log_parameter":
            for key, value, _ in PARAMS:
                e.log_parameter(key, value)
        else:
            e.log_parameters({key: value for key, value, _ in PARAMS})
    expected = {key: want for key, _, want in PARAMS}
    for where, snap in read_both(project, e.run_id).items():
        assert set(snap["params"]) == set(expected), where
        bad = mismatches(expected, snap["params"])
        assert not bad, f"{where}: (key, expected, got): {bad}"


def test_same_parameter_twice_keeps_the_later_value(project):
    e = Experiment("params")
    with e.start_run():
        e.log_parameter("lr", 0.1)
        e.log_parameter("depth", 3)
        e.log_parameter("lr", 0.01)
        e.log_parameters({"depth": "auto", "lr": [0.001]})
        e.log_parameter("depth", None)
    for where, snap in read_both(project, e.run_id).items():
        assert snap["params"] == {"lr": [0.001], "depth": None}, where


UNICODE_NAMES = ["学习率", "ñ_rate", "🎯 target", "e\u0301lan", "Ωmega-σ", "ключ"]


def test_unicode_parameter_metric_and_tag_names(project):
    e = Experiment("unicode")
    with e.start_run():
        for i, name in enumerate(UNICODE_NAMES):
            e.log_parameter(name, i)
            e.log_metric(name, float(i))
            e.log_metric(name, float(i) + 0.5)
            e.set_tag(name, f"tag {name}")
        e.log_metrics({"精度 🎉": 0.9})
    for where, snap in read_both(project, e.run_id).items():
        assert snap["params"] == {name: i for i, name in enumerate(UNICODE_NAMES)}, where
        assert snap["metrics"] == {**{name: i + 0.5 for i, name in enumerate(UNICODE_NAMES)}, "精度 🎉": 0.9}, where
        assert snap["tags"] == {name: f"tag {name}" for name in UNICODE_NAMES}, where
        for i, name in enumerate(UNICODE_NAMES):
            assert [(s, v) for s, _, v in snap["history"][name]] == [(0, float(i)), (1, i + 0.5)], where
        # No normalisation: the decomposed name is not the composed one.
        assert "\u00e9lan" not in snap["params"], where


# -- metrics ---------------------------------------------------------------------

METRICS = [
    # (key, value, {stored name: value})
    ("nan", NAN, {"nan": NAN}),
    ("inf", INF, {"inf": INF}),
    ("minus_inf", -INF, {"minus_inf": -INF}),
    ("subnormal", 5e-324, {"subnormal": 5e-324}),
    ("huge", 1.7976931348623157e308, {"huge": 1.7976931348623157e308}),
    ("minus_huge", -1.7976931348623157e308, {"minus_huge": -1.7976931348623157e308}),
    ("tiny", 2.2250738585072014e-308, {"tiny": 2.2250738585072014e-308}),
    ("py_int", 3, {"py_int": 3.0}),
    ("np_float32", np.float32(0.1), {"np_float32": float(np.float32(0.1))}),
    ("np_float64", np.float64(0.25), {"np_float64": 0.25}),
    ("np_int64", np.int64(7), {"np_int64": 7.0}),
    ("np_0d", np.array(3.5), {"np_0d": 3.5}),
    ("np_0d_int", np.array(2, dtype=np.int32), {"np_0d_int": 2.0}),
    ("vec", np.array([1.0, NAN, -INF]), {"vec[0]": 1.0, "vec[1]": NAN, "vec[2]": -INF}),
    ("vec32", np.array([0.5, 0.25], dtype=np.float32), {"vec32[0]": 0.5, "vec32[1]": 0.25}),
    ("vec_int", np.arange(3), {"vec_int[0]": 0.0, "vec_int[1]": 1.0, "vec_int[2]": 2.0}),
    ("pylist", [4, 5.5], {"pylist[0]": 4.0, "pylist[1]": 5.5}),
]


@pytest.mark.parametrize("how", ["log_metric", "log_metrics"])
def test_metric_values_round_trip(project, how):
    e = Experiment("metrics")
    with e.start_run():
        if how == "log_metric":
            for key, value, _ in METRICS:
                e.log_metric(key, value)
        else:
            e.log_metrics({key: value for key, value, _ in METRICS})
    expected = {}
    for _, _, stored in METRICS:
        expected.update(stored)
    for where, snap in read_both(project, e.run_id).items():
        assert set(snap["metrics"]) == set(expected), where
        bad = mismatches(expected, snap["metrics"])
        assert not bad, f"{where}: (key, expected, got): {bad}"
        for name, value in expected.items():
            history = snap["history"][name]
            assert len(history) == 1, (where, name, history)
            step, _, got = history[0]
            assert step == 0 and same(got, value), (where, name, history)


def test_implicit_steps_count_per_key(project):
    e = Experiment("steps")
    with e.start_run():
        e.log_metric("a", 1.0)
        e.log_metric("b", 10.0)
        e.log_metric("a", 2.0)
        e.log_metric("a", 3.0)
        e.log_metric("b", 20.0)
        e.log_metrics({"a": 4.0, "c": 100.0})
        e.log_metric("vec", np.array([1.0, 2.0]))
        e.log_metric("vec", np.array([3.0, 4.0]))
        e.log_metric("vec[0]", 5.0)
    for where, snap in read_both(project, e.run_id).items():
        hist = {k: [(s, v) for s, _, v in h] for k, h in snap["history"].items()}
        assert hist["a"] == [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)], where
        assert hist["b"] == [(0, 10.0), (1, 20.0)], where
        assert hist["c"] == [(0, 100.0)], where
        assert hist["vec[0]"] == [(0, 1.0), (1, 3.0), (2, 5.0)], where
        assert hist["vec[1]"] == [(0, 2.0), (1, 4.0)], where
        assert snap["metrics"] == {"a": 4.0, "b": 20.0, "c": 100.0, "vec[0]": 5.0, "vec[1]": 4.0}, where


def test_explicit_step_then_implicit_continues(project):
    e = Experiment("steps")
    with e.start_run():
        e.log_metric("loss", 1.0, step=10)
        e.log_metric("loss", 0.9)
        e.log_metric("loss", 0.8, step=np.int64(20))
        e.log_metric("loss", 0.7)
        e.log_metric("loss", 0.6, step=np.uint16(30))
        e.log_metric("loss", 0.5, step=None)
        e.log_metrics({"acc": 0.5, "f1": 0.4}, step=np.int32(7))
        e.log_metrics({"acc": 0.6, "f1": 0.5})
        e.log_metric("other", 1.0)
        e.log_metric("big_step", 1.0, step=2**62)
    for where, snap in read_both(project, e.run_id).items():
        hist = {k: [(s, v) for s, _, v in h] for k, h in snap["history"].items()}
        assert hist["loss"] == [(10, 1.0), (11, 0.9), (20, 0.8), (21, 0.7), (30, 0.6), (31, 0.5)], where
        assert hist["acc"] == [(7, 0.5), (8, 0.6)], where
        assert hist["f1"] == [(7, 0.4), (8, 0.5)], where
        assert hist["other"] == [(0, 1.0)], where
        assert hist["big_step"] == [(2**62, 1.0)], where
        assert all(type(s) is int for h in snap["history"].values() for s, _, _ in h), where


def test_metric_history_has_every_point_in_order_with_timestamps(project):
    e = Experiment("history")
    values = [1.0 / (i + 1) for i in range(200)] + [NAN, INF, 0.0]
    before = time.time()
    with e.start_run():
        for v in values:
            e.log_metric("loss", v)
            e.log_metric("noise", -v)
    after = time.time()
    for where, snap in read_both(project, e.run_id, histories=("never_logged",)).items():
        history = snap["history"]["loss"]
        assert [s for s, _, _ in history] == list(range(len(values))), where
        assert all(same(got, want) for (_, _, got), want in zip(history, values)), where
        stamps = [t for _, t, _ in history]
        assert all(isinstance(t, float) for t in stamps), where
        assert stamps == sorted(stamps), where
        assert before - 1.0 <= stamps[0] and stamps[-1] <= after + 1.0, (where, before, stamps[0], stamps[-1], after)
        assert len(snap["history"]["noise"]) == len(values), where
        assert snap["history"]["never_logged"] == [], where


def test_metric_history_of_unknown_name_is_empty(project):
    e = Experiment("history")
    with e.start_run():
        e.log_metric("loss", 1.0)
    wait_background()
    run = lab.get_run(e.run_id)
    assert run.metric_history("loss")[0][2] == 1.0
    assert run.metric_history("nope") == []


# -- features, tags, dataset -------------------------------------------------------

FEATURES = [
    ("list", ["sepal length (cm)", "sepal width (cm)"], ["sepal length (cm)", "sepal width (cm)"]),
    ("tuple", ("a", "b", 3), ["a", "b", 3]),
    ("range", range(4), [0, 1, 2, 3]),
    ("numpy_int", np.array([2, 0, 5]), [2, 0, 5]),
    ("numpy_str", np.array(["x", "y"]), ["x", "y"]),
    ("numpy_object", np.array(["x", 1], dtype=object), ["x", 1]),
    ("pandas_str", pd.Index(["petal", "花びら 🌸"]), ["petal", "花びら 🌸"]),
    ("pandas_int", pd.Index([10, 20, 30]), [10, 20, 30]),
    ("pandas_range", pd.RangeIndex(3), [0, 1, 2]),
    ("dataframe_columns", pd.DataFrame({"f1": [1], "f2": [2]}).columns, ["f1", "f2"]),
    ("empty", [], []),
]


def test_features_round_trip(project):
    ids = {}
    for label, names, _ in FEATURES:
        e = Experiment("features")
        with e.start_run():
            e.log_features(names)
        ids[label] = e.run_id
    wait_background()
    here = {label: snapshot(lab.get_run(rid)) for label, rid in ids.items()}
    there = from_disk(project, list(ids.values()))
    for label, _, want in FEATURES:
        for where, snap in (("this process", here[label]), ("other process", there[ids[label]])):
            assert same(snap["features"], want), (where, label, snap["features"], want)


def test_tags_round_trip(project):
    e = Experiment("tags")
    with e.start_run():
        e.set_tag("stage", "dev")
        e.set_tag("stage", "prod")
        e.set_tag("number", 5)
        e.set_tag("float", 0.5)
        e.set_tag("none", None)
        e.set_tag("list", [1, "a"])
        e.set_tag("empty", "")
        e.set_tag("unicode", "✓ 完成 e\u0301")
    expected = {
        "stage": "prod",
        "number": "5",
        "float": "0.5",
        "none": "None",
        "list": "[1, 'a']",
        "empty": "",
        "unicode": "✓ 完成 e\u0301",
    }
    for where, snap in read_both(project, e.run_id).items():
        assert snap["tags"] == expected, where


@pytest.mark.parametrize(
    "dataset, expected",
    [
        ("iris", "iris"),
        ({"name": "iris", "rows": 150, "columns": ["a", "b"], "split": 0.25}, None),
        (Path("/data/iris.csv"), "/data/iris.csv"),
        (None, None),
    ],
    ids=["str", "dict", "path", "none"],
)
def test_dataset_round_trip(project, dataset, expected):
    if isinstance(dataset, dict):
        expected = dataset
    e = Experiment("data", dataset=dataset)
    with e.start_run():
        e.log_metric("m", 1.0)
    for where, snap in read_both(project, e.run_id).items():
        assert same(snap["dataset"], expected), (where, snap["dataset"])
        assert snap["experiment"] == "data", where


# -- where the run came from ---------------------------------------------------------

SCRIPT = """
from lab.experiment import Experiment

e = Experiment()

@e.start_run
def train():
    e.log_metric("m", 1.0)

print(e.run_id)
"""


def _expected_user() -> str:
    for var in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def test_source_user_host_python_version(project):
    proc = run_python(project, SCRIPT, "--lr", "0.1", check=True)
    run_id = proc.stdout.strip().splitlines()[-1]
    script = str(project / "script.py")
    for where, snap in read_both(project, run_id).items():
        assert snap["status"] == "finished", where
        assert snap["experiment"] == "script", where
        assert snap["source"] == script, where
        assert snap["argv"] == ["--lr", "0.1"], where
        assert snap["user"] == _expected_user(), where
        assert snap["host"] == os.uname().nodename, where
        assert snap["python_version"] == platform.python_version(), where
        assert snap["metrics"] == {"m": 1.0}, where


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=lab@example.com", "-c", "user.name=Lab Test", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_commit_recorded_inside_a_work_tree(project, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text(SCRIPT)
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "train")
    head = _git(repo, "rev-parse", "HEAD")
    branch = _git(repo, "branch", "--show-current")
    assert len(head) == 40

    def run_script() -> str:
        proc = subprocess.run(
            [sys.executable, str(repo / "train.py")],
            cwd=repo,
            env=lab_env(project),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()[-1]

    clean = run_script()
    (repo / "train.py").write_text(SCRIPT + "\n# changed\n")
    dirty = run_script()
    for where, snap in read_both(project, clean).items():
        assert snap["git_commit"] == head, where
        assert snap["git_dirty"] is False, where
        assert snap["git_branch"] == branch, where
        assert snap["source"] == str(repo / "train.py"), where
        assert snap["experiment"] == "train", where
    for where, snap in read_both(project, dirty).items():
        assert snap["git_commit"] == head, where
        assert snap["git_dirty"] is True, where


def test_no_git_commit_outside_a_work_tree(project):
    outside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=project, capture_output=True, text=True)
    assert outside.returncode != 0, "the test folder should not be inside a git work tree"
    proc = run_python(project, SCRIPT, check=True)
    run_id = proc.stdout.strip().splitlines()[-1]
    for where, snap in read_both(project, run_id).items():
        assert snap["status"] == "finished", where
        assert snap["git_commit"] is None, where
        assert snap["git_dirty"] is None, where
        assert snap["git_branch"] is None, where


def test_packages_recorded(project):
    e = Experiment("packages")
    with e.start_run():
        e.log_metric("m", 1.0)
    wait_background()
    numpy_pin = f"numpy=={np.__version__}"
    pandas_pin = f"pandas=={pd.__version__}"
    snap = snapshot(lab.get_run(e.run_id))
    assert numpy_pin in snap["packages"], snap["packages"]
    assert pandas_pin in snap["packages"], snap["packages"]
    disk = from_disk(project, [e.run_id])[e.run_id]
    assert numpy_pin in disk["packages"], disk["packages"]

    # A run made by a script records them too, by the time it exits.
    proc = run_python(project, "import numpy\n" + SCRIPT, check=True)
    run_id = proc.stdout.strip().splitlines()[-1]
    disk = from_disk(project, [run_id])[run_id]
    assert numpy_pin in disk["packages"], disk["packages"]


# -- property tests ----------------------------------------------------------------

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=4).map(tuple)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

FAST = settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def test_json_like_parameters_round_trip(project):
    logged: dict = {}
    e = Experiment("property")
    with e.start_run():

        @FAST
        @given(value=json_like)
        def log_one(value):
            key = f"p{len(logged)}"
            e.log_parameter(key, value)
            logged[key] = value

        log_one()
        # The same values once more, through the bulk call.
        e.log_parameters({f"bulk_{k}": v for k, v in logged.items()})
    assert len(logged) >= 10
    expected = {k: plain(v) for k, v in logged.items()}
    expected.update({f"bulk_{k}": v for k, v in expected.items()})
    for where, snap in read_both(project, e.run_id).items():
        bad = sorted(mismatches(expected, snap["params"]), key=lambda m: len(repr(m)))
        assert not bad, f"{where}: {len(bad)} of {len(expected)} differ; smallest (key, expected, got): {bad[:3]}"
        assert set(snap["params"]) == set(expected), where


def test_float_metric_series_round_trip(project):
    logged: dict = {}
    e = Experiment("property")
    with e.start_run():

        @FAST
        @given(values=st.lists(st.floats(), min_size=1, max_size=10))
        def log_series(values):
            key = f"m{len(logged)}"
            for v in values:
                e.log_metric(key, v)
            logged[key] = values

        log_series()
    assert len(logged) >= 10
    for where, snap in read_both(project, e.run_id).items():
        for key, values in logged.items():
            history = snap["history"][key]
            assert [s for s, _, _ in history] == list(range(len(values))), (where, key)
            got = [v for _, _, v in history]
            assert same(got, values), (where, key, values, got)
            assert same(snap["metrics"][key], values[-1]), (where, key)
