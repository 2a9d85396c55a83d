"""log_model's argument order, and that `import lab` imports no framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lab
from conftest import wait_background


def read_back(e: lab.Experiment) -> lab.Run:
    wait_background()
    return lab.get_run(e.run_id)


def test_original_argument_order_is_accepted(project):
    # `e.log_model('svm', clf)` and the original Lab's Keras example's `e.log_model(model, 'mnist-mlp')`.
    e = lab.Experiment("order")
    with e.start_run():
        e.log_model("first", {"w": [1]})
        e.log_model({"w": [2]}, "second")
    run = read_back(e)
    assert lab.load_model(run, "first") == {"w": [1]}
    assert lab.load_model(run, "second") == {"w": [2]}


def test_two_strings_are_ambiguous(project):
    e = lab.Experiment("order")
    with e.start_run():
        with pytest.raises(TypeError) as info:
            e.log_model("a", "b")
        e.log_model("good", [1])
    msg = str(info.value)
    assert "cannot tell the name from the model" in msg and "'a'" in msg and "'b'" in msg
    assert set(read_back(e).models) == {"good"}


def test_no_string_names_the_argument(project):
    e = lab.Experiment("order")
    with e.start_run():
        with pytest.raises(TypeError, match=r"`name` must be a string: got int 1 \(and the model, a list"):
            e.log_model(1, [1])


FRAMEWORKS = ["sklearn", "keras", "torch", "lightning", "pytorch_lightning", "transformers", "xgboost", "lightgbm", "optuna", "joblib"]


def test_import_lab_imports_no_framework():
    code = (
        "import sys, lab, lab.experiment, lab.run\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
