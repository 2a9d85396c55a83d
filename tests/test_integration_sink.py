"""What every framework integration does with bad input (lab._integration.Sink),
without any framework: names Lab refuses, values that are no number, a run
that ended, a failing call. Each is said once, and nothing raises."""

from __future__ import annotations

import warnings

import pytest

import lab
from conftest import wait_background
from lab._integration import Sink, check_model_name, clean_key


def said(caught: list) -> list:
    return [str(w.message) for w in caught if issubclass(w.category, lab.LabWarning)]


@pytest.mark.parametrize(
    "key, clean",
    [
        ("loss", "loss"),
        ("a\tb", "a_b"),
        ("val\nloss", "val_loss"),
        ("loss\u200b", "loss_"),
        ("\u202eevil", "_evil"),
        ("   ", "_"),
        ("", "_"),
        ("x" * 300, "x" * 250),
        ("é" * 200, "é" * 125),
        (3, "3"),
    ],
)
def test_clean_key(key, clean):
    assert clean_key(key) == clean
    lab._lab.check_key("key", clean)


def test_metrics_skip_what_is_no_number_and_rename_once(project):
    e = lab.Experiment("sink")
    sink = Sink(e, "test.Callback")
    with e.start_run(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(3):
            sink.metrics({"loss": 1.0 / (step + 1), "note": "text", "none": None, "bad\tname": step, "lr": _Scalar(0.1)}, step=step)
    messages = said(caught)
    assert len(messages) == 3, messages
    assert any("metric `note` got str 'text', no number; skipped" in m for m in messages)
    assert any("metric `none` got NoneType None" in m for m in messages)
    assert any("`'bad\\tname'` is no valid name in Lab; logged as `bad_name`" in m for m in messages)
    assert all(m.startswith("test.Callback: ") for m in messages)
    wait_background()
    run = lab.get_run(e.run_id)
    assert set(run.metrics) == {"loss", "bad_name", "lr"}
    assert [p[0] for p in run.metric_history("bad_name")] == [0, 1, 2]
    assert run.metrics["lr"] == 0.1


class _Scalar:
    """A 0-d tensor's stand-in: a number through __float__."""

    def __init__(self, v: float) -> None:
        self.v = v

    def __float__(self) -> float:
        return self.v


def test_no_run_and_an_ended_run_are_said_once(project):
    e = lab.Experiment("sink")
    sink = Sink(e, "test.Callback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink.metrics({"loss": 1.0})
        sink.params({"lr": 0.1})
        sink.model("model", [1])
    assert len(said(caught)) == 1 and "has no run" in said(caught)[0]
    with e.start_run():
        pass
    sink = Sink(e, "test.Callback")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            sink.metrics({"loss": 1.0})
            sink.tag("t", "v")
    messages = said(caught)
    assert len(messages) == 1 and "has already ended" in messages[0], messages


def test_a_failing_call_warns_and_the_rest_goes_on(project):
    e = lab.Experiment("sink")
    sink = Sink(e, "test.Callback")
    with e.start_run(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A step Lab refuses: the call fails inside Lab, said once.
        sink.metrics({"loss": 1.0}, step=-1)
        sink.metrics({"loss": 2.0}, step=-1)
        # An object that cannot be pickled.
        sink.model("model", lambda: None)
        # One bad value does not lose the other parameters.
        sink.params({"a": 1, "deep": _nest(40), "b": 2})
        sink.metrics({"loss": 3.0}, step=0)
    messages = said(caught)
    assert len([m for m in messages if "could not log metrics" in m]) == 1, messages
    assert any("could not log model `model`" in m for m in messages)
    wait_background()
    run = lab.get_run(e.run_id)
    assert run.metrics["loss"] == 3.0
    assert run.params["a"] == 1 and run.params["b"] == 2
    assert isinstance(run.params["deep"], str)
    assert run.models == {}


def _nest(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_check_model_name():
    check_model_name(None)
    check_model_name("model")
    with pytest.raises(ValueError, match="`model_name` must not contain `/`"):
        check_model_name("a/b")
    with pytest.raises(TypeError, match="`model_name` must be a string"):
        check_model_name(3)
