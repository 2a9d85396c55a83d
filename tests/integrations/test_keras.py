"""lab.keras.LabCallback and Keras models in log_model, against real Keras 3 on PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import keras  # noqa: E402  (KERAS_BACKEND is set by conftest.py)

import lab
from conftest import lab_warnings, read_run
from lab.keras import Experiment, LabCallback


def make_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype("float32")
    return X, (X @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32"))[:, None]


def test_keras_backend_is_torch():
    assert keras.backend.backend() == "torch"


def test_keras_experiment_is_labs():
    # The original Lab's import path.
    assert Experiment is lab.Experiment


def test_callback_logs_params_epochs_and_the_model(project, data, no_lab_warnings):
    X, y = data
    model = make_model()
    e = Experiment("keras")
    with e.start_run():
        history = model.fit(
            X, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[LabCallback(e)]
        )
    run = read_run(e)
    assert run.params["epochs"] == 3
    assert run.params["batch_size"] == 16
    assert run.params["validation_split"] == 0.25
    assert run.params["optimizer"] == "Adam"
    assert run.params["learning_rate"] == pytest.approx(0.01)
    assert run.params["loss"] == "mse"
    assert run.params["num_params"] == model.count_params() == 4 * 8 + 8 + 8 + 1
    assert run.params["num_layers"] == 2
    assert run.params["steps_per_epoch"] == 3
    for name in ("loss", "mae", "val_loss", "val_mae"):
        points = run.metric_history(name)
        assert [p[0] for p in points] == [0, 1, 2]
        assert [p[2] for p in points] == pytest.approx(history.history[name])
    assert not any(k.startswith("batch/") for k in run.metrics)
    info = run.models["model"]
    assert info["format"] == "keras" and info["path"].endswith("model.keras")
    assert info["library"] == "keras" and info["library_version"] == keras.__version__
    loaded = lab.load_model(run, "model")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)


def test_every_batch(project, data):
    X, y = data
    e = Experiment("keras")
    with e.start_run():
        make_model().fit(X, y, epochs=2, batch_size=16, verbose=0, callbacks=[LabCallback(e, log_every_batch=True, model_name=None)])
    run = read_run(e)
    steps = [p[0] for p in run.metric_history("batch/loss")]
    assert steps == list(range(8))
    assert run.models == {}


def test_original_labs_keras_example_order(project, data):
    # `e.log_model(model, 'mnist-mlp')`, as the original Lab's Keras example wrote it.
    X, y = data
    model = make_model()
    model.fit(X, y, epochs=1, verbose=0)
    e = Experiment("keras")
    with e.start_run():
        e.log_model(model, "mnist-mlp")
    loaded = lab.load_model(read_run(e), "mnist-mlp")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)


class _OddMetric(keras.callbacks.Callback):
    """Puts a text value and a name Lab refuses into the logs, as some callbacks do."""

    def on_epoch_end(self, epoch, logs=None):
        logs["note"] = "text"
        logs["bad\tname"] = 1.5


def test_non_numeric_values_and_bad_names_are_said_once(project, data):
    X, y = data
    e = Experiment("keras")
    with e.start_run(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Ours after the odd one: the logs it sees hold the odd values.
        make_model().fit(X, y, epochs=3, verbose=0, callbacks=[_OddMetric(), LabCallback(e, model_name=None)])
    said = lab_warnings(caught)
    assert len([w for w in said if "`note`" in w]) == 1, said
    assert len([w for w in said if "bad_name" in w]) == 1, said
    run = read_run(e)
    assert "note" not in run.metrics
    assert run.metric_summaries["bad_name"]["count"] == 3


def test_callback_without_a_run_warns_once_and_trains(project, data):
    X, y = data
    e = Experiment("keras")
    model = make_model()
    with pytest.warns(lab.LabWarning, match="has no run") as caught:
        model.fit(X, y, epochs=2, verbose=0, callbacks=[LabCallback(e)])
    assert len([w for w in caught if issubclass(w.category, lab.LabWarning)]) == 1
    assert e.run_id is None


def test_a_failing_save_warns_and_does_not_raise(project, data, monkeypatch):
    X, y = data
    model = make_model()
    e = Experiment("keras")

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(model, "save", broken)
    with e.start_run():
        with pytest.warns(lab.LabWarning, match="could not log model `model`.*disk on fire"):
            model.fit(X, y, epochs=1, verbose=0, callbacks=[LabCallback(e)])
        e.log_metric("after", 1)
    run = read_run(e)
    assert run.status == "finished" and run.models == {}
    # Nothing left behind in the run's models folder.
    import os

    assert [f for f in os.listdir(os.path.join(run.path, "models")) if not f.startswith(".")] == []
    assert os.listdir(os.path.join(run.path, "models")) == []


def test_refuses_bad_arguments():
    with pytest.raises(TypeError, match="`experiment`"):
        LabCallback(None)
    with pytest.raises(TypeError, match="`log_every_batch`"):
        LabCallback(Experiment("k"), log_every_batch="yes")
