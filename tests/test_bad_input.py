"""Bad input raises at the call with a message that names the argument, shows
the value and says what was expected; nothing is written half-way and the run
goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import lab
from conftest import lab_cli, lab_env, wait_background
from lab.experiment import Experiment


# -- helpers -------------------------------------------------------------------


def read_back(e: Experiment) -> lab.Run:
    """The experiment's last run, read from the store once everything is settled."""
    run_id = e.run_id
    assert run_id is not None
    wait_background()
    return lab.get_run(run_id)


def check_message(exc: BaseException, argument: str, shown: "list[str] | str", expected: str) -> None:
    """The message names `argument`, shows the value (one of `shown`) and says `expected`."""
    msg = str(exc)
    if isinstance(shown, str):
        shown = [shown]
    assert f"`{argument}`" in msg, f"message does not name `{argument}`: {msg!r}"
    assert any(s in msg for s in shown), f"message does not show the value (any of {shown!r}): {msg!r}"
    assert expected.lower() in msg.lower(), f"message does not say {expected!r}: {msg!r}"


def log_valid_after(e: Experiment) -> None:
    """What a run logs after a refused call, to show it goes on."""
    e.log_parameter("after", 1)
    e.log_metric("after", 1.0)
    e.set_tag("after", "yes")


def assert_only_valid(run: lab.Run) -> None:
    """The run ended well and holds exactly what `log_valid_after` logged."""
    assert run.status == "finished"
    assert run.error is None
    assert run.params == {"after": 1}
    assert run.metrics == {"after": 1.0}
    assert run.tags == {"after": "yes"}
    assert [v for _, _, v in run.metric_history("after")] == [1.0]
    assert run.metric_history("good_first") == []


# Forms a value may be shown in: Python's repr, or Rust's debug text.
NUL_FORMS = ["a\\0b", "a\\x00b", "a\\u{0}b", "a\\u0000b"]

BAD_KEYS = [
    pytest.param(1, TypeError, ["1"], "must be a string", id="int"),
    pytest.param(None, TypeError, ["None"], "must be a string", id="None"),
    pytest.param(b"loss", TypeError, ["b'loss'"], "must be a string", id="bytes"),
    pytest.param("", ValueError, ['""', "''"], "empty", id="empty"),
    pytest.param("a\nb", ValueError, ["a\\nb"], "control character", id="newline"),
    pytest.param("a\tb", ValueError, ["a\\tb"], "control character", id="tab"),
    pytest.param("a\x00b", ValueError, NUL_FORMS, "control character", id="nul"),
    pytest.param("k" * 251, ValueError, ["kkkkkkkk"], "at most 250", id="too-long"),
    pytest.param("a\ud800b", ValueError, ["a\\ud800b"], "valid Unicode", id="lone-surrogate"),
    pytest.param(" ", ValueError, ['" "', "' '"], "visible character", id="space"),
    pytest.param(" \u3000 ", ValueError, ["\\u{3000}", "\u3000"], "visible character", id="ideographic-space"),
    pytest.param("\u200d", ValueError, ["\\u{200d}", "\u200d"], "visible character", id="zero-width-joiner-only"),
    pytest.param("loss\u202e", ValueError, ["loss\\u{202e}"], "invisible", id="right-to-left-override"),
    pytest.param("\u2066loss\u2069", ValueError, ["\\u{2066}loss"], "invisible", id="isolate"),
    pytest.param("lo\u200bss", ValueError, ["lo\\u{200b}ss"], "invisible", id="zero-width-space"),
    pytest.param("\ufeffloss", ValueError, ["\\u{feff}loss"], "invisible", id="byte-order-mark"),
    pytest.param("loss\u200f", ValueError, ["loss\\u{200f}"], "invisible", id="right-to-left-mark"),
]

KEY_CALLS = {
    "log_parameter": lambda e, k: e.log_parameter(k, 1),
    "log_parameters": lambda e, k: e.log_parameters({"good_first": 1, k: 2}),
    "log_metric": lambda e, k: e.log_metric(k, 1.0),
    "log_metric_1d": lambda e, k: e.log_metric(k, np.array([1.0, 2.0])),
    "log_metric_step": lambda e, k: e.log_metric(k, 1.0, step=3),
    "log_metrics": lambda e, k: e.log_metrics({"good_first": 1.0, k: 2.0}),
    "log_metrics_1d": lambda e, k: e.log_metrics({"good_first": 1.0, k: np.array([1.0, 2.0])}),
    "set_tag": lambda e, k: e.set_tag(k, "value"),
}


# -- keys ----------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(KEY_CALLS))
@pytest.mark.parametrize("key, error, shown, expected", BAD_KEYS)
def test_bad_key_is_refused_and_run_goes_on(project, method, key, error, shown, expected):
    e = Experiment("bad-keys")
    with e.start_run():
        with pytest.raises(error) as info:
            KEY_CALLS[method](e, key)
        check_message(info.value, "key", shown, expected)
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert len(lab.runs()) == 1


# -- artifact and model names --------------------------------------------------

BAD_NAMES = [
    pytest.param("a/b", ["a/b"], "`/`", id="slash"),
    pytest.param("../escape", ["../escape"], "`/`", id="dotdot-slash"),
    pytest.param("a\\b", ["a\\\\b", "a\\b"], "`\\`", id="backslash"),
    pytest.param("..", ['".."', "'..'"], "`..`", id="dotdot"),
    pytest.param("x..y", ["x..y"], "`..`", id="inner-dotdot"),
    pytest.param("a\x00b", NUL_FORMS, "control character", id="nul"),
    pytest.param("", ['""', "''"], "empty", id="empty"),
    pytest.param("m\ud800", ["m\\ud800"], "valid Unicode", id="lone-surrogate"),
    pytest.param("\u202emodel", ["\\u{202e}model"], "invisible", id="right-to-left-override"),
    pytest.param("  ", ['"  "', "'  '"], "visible character", id="blank"),
]


def _artifact_source(project: Path) -> Path:
    src = project / "data.txt"
    src.write_text("some data\n")
    return src


@pytest.mark.parametrize("name, shown, expected", BAD_NAMES)
def test_bad_artifact_name(project, name, shown, expected):
    src = _artifact_source(project)
    e = Experiment("bad-names")
    with e.start_run():
        with pytest.raises(ValueError) as info:
            e.log_artifact(name, src)
        check_message(info.value, "name", shown, expected)
        with pytest.raises(ValueError) as info:
            e.log_artifacts(name, str(src))
        check_message(info.value, "name", shown, expected)
        e.log_artifact("good", src)
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert set(run.artifacts) == {"good"}
    assert Path(run.artifacts["good"]).read_text() == "some data\n"
    assert sorted(os.listdir(Path(run.path) / "artifacts")) == ["good"]
    # Nothing escaped the run's folder.
    assert not (Path(run.path).parent / "escape").exists()
    assert not (Path(run.path) / "escape").exists()


@pytest.mark.parametrize("name, shown, expected", BAD_NAMES)
def test_bad_model_name(project, name, shown, expected):
    e = Experiment("bad-names")
    with e.start_run():
        with pytest.raises(ValueError) as info:
            e.log_model(name, {"weights": [1, 2, 3]})
        check_message(info.value, "name", shown, expected)
        e.log_model("good", {"weights": [4, 5]})
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert set(run.models) == {"good"}
    models_dir = Path(run.path) / "models"
    assert os.listdir(models_dir) == [os.path.basename(run.models["good"]["path"])]
    assert not (Path(run.path).parent / "escape").exists()
    assert lab.load_model(run, "good") == {"weights": [4, 5]}


@pytest.mark.parametrize("name", [1, None, b"model"], ids=["int", "None", "bytes"])
def test_non_string_artifact_and_model_names(project, name):
    src = _artifact_source(project)
    e = Experiment("bad-names")
    with e.start_run():
        with pytest.raises(TypeError) as info:
            e.log_artifact(name, src)
        check_message(info.value, "name", repr(name), "must be a string")
        with pytest.raises(TypeError) as info:
            e.log_model(name, [1])
        check_message(info.value, "name", repr(name), "must be a string")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.artifacts == {}
    assert run.models == {}


def test_missing_artifact_path(project):
    missing = project / "no-such-folder" / "missing.csv"
    e = Experiment("artifacts")
    with e.start_run():
        with pytest.raises(ValueError) as info:
            e.log_artifact("data", missing)
        check_message(info.value, "path", "missing.csv", "exist")
        with pytest.raises(ValueError) as info:
            e.log_artifact("data", str(missing))
        check_message(info.value, "path", str(missing), "exist")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.artifacts == {}
    assert not (Path(run.path) / "artifacts" / "data").exists()


def test_artifact_path_of_wrong_type(project):
    e = Experiment("artifacts")
    with e.start_run():
        with pytest.raises(TypeError) as info:
            e.log_artifact("data", 12345)
        check_message(info.value, "path", "12345", "path")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.artifacts == {}


# -- metric values and steps ---------------------------------------------------

BAD_METRIC_VALUES = [
    pytest.param("0.5", ["'0.5'"], id="str"),
    pytest.param({"a": 1}, ["{'a': 1}"], id="dict"),
    pytest.param(np.zeros((2, 2)), ["(2, 2)"], id="2d-array"),
    pytest.param([[1.0, 2.0], [3.0, 4.0]], ["[[1.0, 2.0], [3.0, 4.0]]"], id="nested-list"),
    pytest.param(None, ["None"], id="None"),
]


@pytest.mark.parametrize("value, shown", BAD_METRIC_VALUES)
@pytest.mark.parametrize("how", ["log_metric", "log_metrics"])
def test_bad_metric_value(project, how, value, shown):
    e = Experiment("bad-values")
    with e.start_run():
        with pytest.raises((TypeError, ValueError)) as info:
            if how == "log_metric":
                e.log_metric("bad", value)
            else:
                e.log_metrics({"good_first": 1.0, "bad": value})
        check_message(info.value, "value", shown, "number")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.metric_history("bad") == []
    assert run.metric_history("bad[0]") == []


BAD_STEPS = [
    pytest.param(-1, ValueError, ["-1"], id="negative"),
    pytest.param(np.int64(-5), ValueError, ["-5"], id="negative-numpy"),
    pytest.param(1.5, TypeError, ["1.5"], id="float"),
    pytest.param(2.0, TypeError, ["2.0"], id="integral-float"),
    pytest.param("3", TypeError, ["'3'"], id="str"),
    pytest.param(True, TypeError, ["True"], id="bool"),
]


@pytest.mark.parametrize("step, error, shown", BAD_STEPS)
@pytest.mark.parametrize("how", ["log_metric", "log_metrics", "log_metric_1d"])
def test_bad_step(project, how, step, error, shown):
    e = Experiment("bad-steps")
    with e.start_run():
        e.log_metric("m", 0.5)  # step 0
        with pytest.raises(error) as info:
            if how == "log_metric":
                e.log_metric("m", 1.0, step=step)
            elif how == "log_metrics":
                e.log_metrics({"m": 1.0, "other": 2.0}, step=step)
            else:
                e.log_metric("vec", np.array([1.0, 2.0]), step=step)
        check_message(info.value, "step", shown, "non-negative integer")
        e.log_metric("m", 2.0)
    run = read_back(e)
    assert run.status == "finished"
    # The refused point took no step: the next implicit one is 1.
    assert [(s, v) for s, _, v in run.metric_history("m")] == [(0, 0.5), (1, 2.0)]
    assert run.metric_history("other") == []
    assert run.metric_history("vec[0]") == []
    assert run.metrics == {"m": 2.0}


def test_parameter_nested_too_deep(project):
    deep: list = []
    for _ in range(100):
        deep = [deep]
    e = Experiment("deep")
    with e.start_run():
        with pytest.raises(ValueError) as info:
            e.log_parameter("deep", deep)
        assert "`value`" in str(info.value) and "deep" in str(info.value), str(info.value)
        with pytest.raises(ValueError):
            e.log_parameters({"good_first": 1, "deep": deep})
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)


# -- models that cannot be serialised -------------------------------------------


class HoldsALock:
    def __init__(self) -> None:
        self.weights = list(range(1000))
        self.lock = threading.Lock()


class ExplodesWhenPickled:
    def __reduce__(self):
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "make, type_name",
    [
        pytest.param(lambda: (lambda x: x + 1), "function", id="lambda"),
        pytest.param(HoldsALock, "HoldsALock", id="lock"),
        pytest.param(ExplodesWhenPickled, "ExplodesWhenPickled", id="reduce-raises"),
    ],
)
def test_unpicklable_model(project, make, type_name):
    e = Experiment("models")
    bad = make()
    caught = []

    @e.start_run
    def train():
        with pytest.raises(TypeError) as info:
            e.log_model("bad", bad)
        caught.append(info.value)
        e.log_model("good", {"w": [1, 2]})
        log_valid_after(e)

    (exc,) = caught
    assert type_name in str(exc), str(exc)
    assert "`model`" in str(exc)
    run = read_back(e)
    assert_only_valid(run)
    assert set(run.models) == {"good"}
    files = os.listdir(Path(run.path) / "models")
    assert files == [os.path.basename(run.models["good"]["path"])], files
    assert not any(f.endswith(".tmp") or f.startswith(".") for f in files)
    assert lab.load_model(run, "good") == {"w": [1, 2]}


# -- calls outside a live run -------------------------------------------------------

LATE_CALLS = {
    "log_parameter": lambda e, src: e.log_parameter("late", 1),
    "log_parameters": lambda e, src: e.log_parameters({"late": 1}),
    "log_metric": lambda e, src: e.log_metric("late", 1.0),
    "log_metrics": lambda e, src: e.log_metrics({"late": 1.0}),
    "set_tag": lambda e, src: e.set_tag("late", "x"),
    "log_features": lambda e, src: e.log_features(["late"]),
    "log_artifact": lambda e, src: e.log_artifact("late", src),
    "log_model": lambda e, src: e.log_model("late", {"late": True}),
}


@pytest.mark.parametrize("method", sorted(LATE_CALLS))
def test_logging_after_the_run_ended(project, method):
    src = _artifact_source(project)
    e = Experiment("late")
    with e.start_run():
        log_valid_after(e)
    short_id = e.run_id[:8]
    with pytest.raises(lab.RunEndedError) as info:
        LATE_CALLS[method](e, src)
    assert isinstance(info.value, lab.LabError)
    msg = str(info.value)
    assert short_id in msg and "ended" in msg, msg
    run = read_back(e)
    assert_only_valid(run)
    assert run.features == []
    assert run.artifacts == {}
    assert run.models == {}
    models = Path(run.path) / "models"
    assert not models.exists() or os.listdir(models) == []


@pytest.mark.parametrize("method", sorted(LATE_CALLS))
def test_logging_outside_any_run(project, method):
    src = _artifact_source(project)
    e = Experiment("never-started")
    with pytest.raises(lab.NoActiveRunError) as info:
        LATE_CALLS[method](e, src)
    assert isinstance(info.value, lab.LabError)
    msg = str(info.value)
    assert "@e.start_run" in msg, msg
    assert "with e.start_run():" in msg, msg
    assert method in msg, msg
    assert e.run_id is None
    # Nothing was made on disk.
    assert not (project / ".lab").exists()


def test_nested_run_of_one_experiment(project):
    """A run started inside a live run of the same experiment (and thread) is
    its child; the outer run is the experiment's run again afterwards."""
    e = Experiment("nesting")
    with e.start_run():
        outer = e.run_id
        with e.start_run():
            inner = e.run_id
            e.log_parameter("inner", 1)

        @e.start_run
        def inner_too():
            e.log_parameter("inner", 2)

        assert e.run_id == outer
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.id == outer
    children = [r for r in lab.runs() if r.id != outer]
    assert len(children) == 2 and inner in {r.id for r in children}
    assert all(r.parent == outer and r.params["inner"] in (1, 2) for r in children)


# -- Experiment, log_metrics, log_features arguments -------------------------------


@pytest.mark.parametrize("name", [123, b"exp", ["exp"]], ids=["int", "bytes", "list"])
def test_experiment_name_must_be_a_string(project, name):
    with pytest.raises(TypeError) as info:
        Experiment(name=name)
    check_message(info.value, "name", repr(name), "string")
    assert not (project / ".lab").exists()


@pytest.mark.parametrize(
    "name, shown, expected",
    [
        ("", ['""', "''"], "empty"),
        ("   ", ['"   "'], "visible character"),
        ("a\nb", ["a\\nb"], "control character"),
        ("iris\u202e", ["iris\\u{202e}"], "invisible"),
        ("e" * 251, ["eeee"], "at most 250"),
    ],
    ids=["empty", "blank", "newline", "override", "too-long"],
)
def test_experiment_name_follows_the_key_rules(project, name, shown, expected):
    with pytest.raises(ValueError) as info:
        Experiment(name)
    check_message(info.value, "name", shown, expected)
    assert not (project / ".lab").exists()


def test_a_script_name_that_is_no_valid_name_gives_the_default_experiment(project):
    from conftest import run_python

    (project / "\u202eevil.py").write_text("")
    code = """
    import runpy, sys
    sys.argv = ["\\u202eevil.py"]
    from lab.experiment import Experiment
    e = Experiment()
    import __main__
    __main__.__file__ = "\\u202eevil.py"
    with e.start_run():
        pass
    print(e.run_id)
    """
    proc = run_python(project, code, check=True)
    run_id = proc.stdout.strip()
    wait_background()
    assert lab.get_run(run_id).experiment == "default"


@pytest.mark.parametrize(
    "metrics", [[("a", 1.0)], "a", 1.0, None, {("a", 1.0)}], ids=["list-of-pairs", "str", "float", "None", "set"]
)
def test_log_metrics_needs_a_dict(project, metrics):
    e = Experiment("metrics")
    with e.start_run():
        with pytest.raises(TypeError) as info:
            e.log_metrics(metrics)
        check_message(info.value, "metrics", repr(metrics)[:40], "dict")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.metric_history("a") == []


@pytest.mark.parametrize(
    "parameters", [[("lr", 0.1)], "lr", 0.1, None], ids=["list-of-pairs", "str", "float", "None"]
)
def test_log_parameters_needs_a_dict(project, parameters):
    e = Experiment("params")
    with e.start_run():
        with pytest.raises(TypeError) as info:
            e.log_parameters(parameters)
        check_message(info.value, "parameters", repr(parameters)[:40], "dict")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)


@pytest.mark.parametrize("names", ["sepal length", b"sepal length"], ids=["str", "bytes"])
def test_log_features_refuses_a_plain_string(project, names):
    e = Experiment("features")
    with e.start_run():
        with pytest.raises(TypeError) as info:
            e.log_features(names)
        check_message(info.value, "names", repr(names), "list")
        with pytest.raises(TypeError) as info:
            e.log_features(["ok", 1.5])
        check_message(info.value, "names", "1.5", "feature names")
        e.log_features(["x", "y"])
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.features == ["x", "y"]


# -- reading runs back -------------------------------------------------------------


def _make_runs(n: int) -> "list[str]":
    ids = []
    for i in range(n):
        e = Experiment("reading")
        with e.start_run():
            e.log_parameter("i", i)
            e.log_model("model", {"i": i})
        ids.append(e.run_id)
    wait_background()
    return ids


def test_get_run_unknown_prefix(project):
    (run_id,) = _make_runs(1)
    other = "f" if run_id[0] != "f" else "0"
    for prefix in [other + "1234567", other * 32]:
        with pytest.raises(lab.RunNotFoundError) as info:
            lab.get_run(prefix)
        assert isinstance(info.value, lab.LabError)
        assert prefix in str(info.value)
    assert lab.get_run(run_id[:8]).id == run_id


def test_get_run_ambiguous_prefix(project):
    ids = _make_runs(2)
    common = os.path.commonprefix(ids)
    assert common, f"time-ordered ids started together should share a prefix: {ids}"
    for prefix in {common, common[:1]}:
        with pytest.raises(lab.AmbiguousRunError) as info:
            lab.get_run(prefix)
        assert isinstance(info.value, lab.LabError)
        msg = str(info.value)
        assert prefix in msg
        for run_id in ids:
            assert run_id in msg, msg
    # One more digit tells them apart.
    for run_id in ids:
        assert lab.get_run(run_id[: len(common) + 1]).id == run_id


@pytest.mark.parametrize("prefix", ["", "   "])
def test_get_run_blank(project, prefix):
    _make_runs(1)
    with pytest.raises(ValueError) as info:
        lab.get_run(prefix)
    msg = str(info.value)
    assert f"`{prefix}`" in msg or repr(prefix) in msg, msg
    assert "hex" in msg, msg


@pytest.mark.parametrize("name", ["xyz", "0e5-", "g", "12 34", "0x12"])
def test_get_run_not_hex_is_a_name(project, name):
    # What cannot be an id prefix is looked up as a run's name.
    _make_runs(1)
    with pytest.raises(lab.RunNotFoundError) as info:
        lab.get_run(name)
    assert str(info.value).startswith(f"no run is named `{name}`"), str(info.value)


def test_get_run_needs_a_string(project):
    _make_runs(1)
    with pytest.raises(TypeError) as info:
        lab.get_run(123)
    check_message(info.value, "run_id", "123", "string")


def test_load_model_unknown_name(project):
    (run_id,) = _make_runs(1)
    run = lab.get_run(run_id)
    for where in (run, run_id, run_id[:8]):
        with pytest.raises(lab.ModelNotFoundError) as info:
            lab.load_model(where, "no-such-model")
        assert isinstance(info.value, lab.LabError)
        msg = str(info.value)
        assert "no-such-model" in msg and "model" in msg, msg
    assert lab.load_model(run, "model") == {"i": 0}


def test_load_model_altered_on_disk(project):
    first, second = _make_runs(2)
    run = lab.get_run(first)
    path = Path(run.models["model"]["path"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(lab.ModelIntegrityError) as info:
        lab.load_model(run, "model")
    assert isinstance(info.value, lab.LabError)
    msg = str(info.value)
    assert "model" in msg and run.short_id in msg, msg
    assert run.models["model"]["sha256"] in msg, msg
    with pytest.raises(lab.ModelIntegrityError):
        lab.load_model(first, "model")
    # The other run's model is untouched and loads.
    assert lab.load_model(second, "model") == {"i": 1}


# -- the command line ------------------------------------------------------------------


def test_cli_show_unknown_run(project):
    (run_id,) = _make_runs(1)
    prefix = ("f" if run_id[0] != "f" else "0") + "abc1234"
    proc = lab_cli(project, "show", prefix)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert prefix in proc.stderr + proc.stdout
    ok = lab_cli(project, "show", run_id[:8])
    assert ok.returncode == 0, ok.stderr


def test_cli_ls_outside_any_project(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = lab_env(elsewhere)
    del env["LAB_PROJECT"]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "ls"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = proc.stderr + proc.stdout
    assert "project" in out.lower(), out
    assert "Experiment" in out or "lab init" in out, out
    assert not (elsewhere / ".lab").exists()


# -- keys that look unusual but are fine ------------------------------------------


def test_unusual_but_visible_keys_are_kept(project):
    # Inner and outer spaces, joiners inside words and emoji, right-to-left scripts.
    keys = ["learning rate", " padded ", "می\u200cخواهم", "\U0001f469\u200d\U0001f4bb", "معدل التعلم", "ключ"]
    e = Experiment("unusual-keys")
    with e.start_run():
        for i, k in enumerate(keys):
            e.log_parameter(k, i)
            e.log_metric(k, float(i))
            e.set_tag(k, str(i))
    run = read_back(e)
    assert run.params == {k: i for i, k in enumerate(keys)}
    assert run.metrics == {k: float(i) for i, k in enumerate(keys)}
    assert run.tags == {k: str(i) for i, k in enumerate(keys)}


# -- text that is not valid Unicode ----------------------------------------------------

SURROGATE = "a\ud800b"
SURROGATE_SHOWN = "a\\ud800b"


def test_lone_surrogates_in_values_are_refused_and_the_run_goes_on(project):
    e = Experiment("surrogates")
    with e.start_run():
        for argument, call in [
            ("value", lambda: e.log_parameter("p", SURROGATE)),
            ("value", lambda: e.log_parameter("p", {"x": [1, SURROGATE]})),
            ("value", lambda: e.log_parameter("p", {SURROGATE: 1})),
            ("parameters", lambda: e.log_parameters({"good_first": 1, "p": SURROGATE})),
            ("value", lambda: e.set_tag("t", SURROGATE)),
            ("names", lambda: e.log_features(["ok", SURROGATE])),
            ("path", lambda: e.log_artifact("data", project / SURROGATE)),
        ]:
            with pytest.raises(ValueError) as info:
                call()
            assert not isinstance(info.value, UnicodeError), repr(info.value)
            check_message(info.value, argument, SURROGATE_SHOWN, "valid Unicode")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert run.features == []


def test_lone_surrogates_in_experiment_names_and_datasets(project):
    with pytest.raises(ValueError) as info:
        Experiment(SURROGATE)
    check_message(info.value, "name", SURROGATE_SHOWN, "valid Unicode")
    e = Experiment("surrogates", dataset={"source": SURROGATE})
    with pytest.raises(ValueError) as info:
        with e.start_run():
            e.log_parameter("never", 1)  # pragma: no cover - never reached
    assert not isinstance(info.value, UnicodeError), repr(info.value)
    check_message(info.value, "dataset", SURROGATE_SHOWN, "valid Unicode")
    assert e.run_id is None
    e.dataset = "iris"
    with e.start_run():
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)
    assert [r.id for r in lab.runs()] == [run.id]


def test_script_arguments_that_are_not_utf8_are_kept_as_escapes(project):
    script = project / "args.py"
    script.write_text(
        "from lab.experiment import Experiment\n"
        "e = Experiment('args')\n"
        "with e.start_run():\n"
        "    e.log_parameter('ok', 1)\n"
        "print(e.run_id)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script), b"caf\xe9", "plain"], cwd=project, env=lab_env(project), capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    run = lab.get_run(proc.stdout.decode().strip())
    assert run.status == "finished" and run.params == {"ok": 1}
    assert run.argv == ["caf\\xe9", "plain"]


def test_lone_surrogates_in_reading_arguments(project):
    (run_id,) = _make_runs(1)
    run = lab.get_run(run_id)
    for argument, call in [
        ("experiment", lambda: lab.runs(SURROGATE)),
        ("where", lambda: lab.runs(where=SURROGATE)),
        ("sort", lambda: lab.runs(sort=SURROGATE)),
        ("status", lambda: lab.runs(status=[SURROGATE])),
        ("run_id", lambda: lab.get_run(SURROGATE)),
        ("name", lambda: run.metric_history(SURROGATE)),
        ("name", lambda: lab.load_model(run, SURROGATE)),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        assert not isinstance(info.value, UnicodeError), repr(info.value)
        check_message(info.value, argument, SURROGATE_SHOWN, "valid Unicode")


# -- dict keys that collide once made text ------------------------------------------------


@pytest.mark.parametrize(
    "argument, call",
    [
        ("value", lambda e: e.log_parameter("p", {1: "a", "1": "b"})),
        ("value", lambda e: e.log_parameter("p", {"outer": [{"x": 0, 2.5: "a", "2.5": "b"}]})),
        ("parameters", lambda e: e.log_parameters({"good_first": 1, "p": {"1": "b", 1: "a"}})),
    ],
    ids=["top", "nested", "log_parameters"],
)
def test_dict_keys_that_collide_as_text_are_refused(project, argument, call):
    e = Experiment("collide")
    with e.start_run():
        with pytest.raises(ValueError) as info:
            call(e)
        check_message(info.value, argument, ["`1`", "`2.5`"], "same text")
        log_valid_after(e)
    run = read_back(e)
    assert_only_valid(run)


def test_a_dataset_whose_keys_collide_starts_no_run(project):
    e = Experiment("collide", dataset={None: 1, "None": 2})
    with pytest.raises(ValueError) as info:
        with e.start_run():
            pass  # pragma: no cover - never reached
    check_message(info.value, "dataset", "`None`", "same text")
    assert e.run_id is None


# -- arguments of the reading calls ---------------------------------------------------------


def test_reading_calls_check_their_arguments(project):
    (run_id,) = _make_runs(1)
    run = lab.get_run(run_id)
    for argument, shown, call in [
        ("name", "None", lambda: run.metric_history(None)),
        ("name", "3", lambda: run.metric_history(3)),
        ("name", "None", lambda: lab.load_model(run, None)),
        ("name", "b'model'", lambda: lab.load_model(run_id, b"model")),
        ("run", "None", lambda: lab.load_model(None, "model")),
        ("run", "3", lambda: lab.load_model(3, "model")),
        ("run_id", "None", lambda: lab.get_run(None)),
        ("experiment", "3", lambda: lab.runs(3)),
        ("where", "3", lambda: lab.runs(where=3)),
        ("sort", "3", lambda: lab.runs(sort=3)),
        ("status", "3", lambda: lab.runs(status=[3])),
        ("limit", "'3'", lambda: lab.runs(limit="3")),
        ("limit", "1.5", lambda: lab.runs(limit=1.5)),
        ("limit", "True", lambda: lab.runs(limit=True)),
    ]:
        with pytest.raises(TypeError) as info:
            call()
        check_message(info.value, argument, shown, "must be")
    assert lab.load_model(run, "model") == {"i": 0}


def test_runs_limit(project):
    ids = _make_runs(3)
    newest_first = ids[::-1]
    assert [r.id for r in lab.runs(limit=2)] == newest_first[:2]
    assert [r.id for r in lab.runs(limit=np.int64(1))] == newest_first[:1]
    assert lab.runs(limit=0) == []
    # More than any project can hold means no limit.
    for huge in (2**63, 2**70, 10**100):
        assert [r.id for r in lab.runs(limit=huge)] == newest_first
    for negative in (-1, -(2**70)):
        with pytest.raises(ValueError) as info:
            lab.runs(limit=negative)
        check_message(info.value, "limit", str(negative), "non-negative")
