"""The integration tests run Lab inside real training frameworks (in .venv-int).

Keras runs on the PyTorch backend: one framework serves Keras, Lightning and
Transformers. Everything runs on the CPU, with tiny models and data made in
the tests; nothing is downloaded.
"""

from __future__ import annotations

import os
import runpy
import warnings
from pathlib import Path

import pytest

# The helpers of tests/conftest.py, for the tests of this folder: pytest
# keeps one module named `conftest` at a time, the nearest, so
# `from conftest import lab_cli` finds this one.
_shared = runpy.run_path(str(Path(__file__).resolve().parent.parent / "conftest.py"))
lab_cli = _shared["lab_cli"]
lab_env = _shared["lab_env"]
run_python = _shared["run_python"]
wait_background = _shared["wait_background"]

os.environ["KERAS_BACKEND"] = "torch"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Transformers and friends never reach a model hub from these tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items: list) -> None:
    # The frameworks warn about their own deprecations and the machine (no
    # GPU, few cores): those are not Lab's, so they stay warnings here. Lab's
    # own warnings are checked by the tests that expect them, and
    # `no_lab_warnings` fails a test on any other.
    for item in items:
        if "integrations" in str(item.fspath):
            item.add_marker(pytest.mark.filterwarnings("default"))


@pytest.fixture
def no_lab_warnings():
    """Fails the test if Lab warned: a clean training logs without a word."""
    from lab import LabWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    lab_warnings = [str(w.message) for w in caught if issubclass(w.category, LabWarning)]
    assert lab_warnings == []


def lab_warnings(caught: list) -> list:
    from lab import LabWarning

    return [str(w.message) for w in caught if issubclass(w.category, LabWarning)]


def read_run(e):
    """The experiment's last run, read from the store once everything is settled."""
    import lab

    assert e.run_id is not None
    wait_background()
    return lab.get_run(e.run_id)
