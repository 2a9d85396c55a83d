"""lab.lightgbm.LabCallback and LightGBM boosters in log_model, against real LightGBM."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.datasets import make_regression

import lab
from conftest import read_run
from lab.lightgbm import LabCallback

PARAMS = {"objective": "regression", "num_leaves": 4, "verbose": -1, "num_threads": 1, "metric": ["l2", "l1"]}


@pytest.fixture
def data():
    X, y = make_regression(n_samples=200, n_features=5, random_state=0)
    return X, y


def test_callback_logs_each_round_and_the_booster(project, data, no_lab_warnings):
    X, y = data
    train = lgb.Dataset(X[:150], y[:150])
    valid = lgb.Dataset(X[150:], y[150:], reference=train)
    record: dict = {}
    e = lab.Experiment("lgb")
    with e.start_run():
        booster = lgb.train(
            PARAMS,
            train,
            num_boost_round=10,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[LabCallback(e), lgb.record_evaluation(record)],
        )
    run = read_run(e)
    history = run.metric_history("valid-l2")
    assert [p[0] for p in history] == list(range(10))
    assert [p[2] for p in history] == pytest.approx(record["valid"]["l2"])
    assert run.metric_summaries["valid-l1"]["count"] == 10
    model = run.models["model"]
    assert model["format"] == "lightgbm.txt"
    assert model["library"] == "lightgbm" and model["library_version"] == lgb.__version__
    with open(model["path"]) as f:
        assert f.readline().strip() == "tree"
    loaded = lab.load_model(run, "model")
    assert isinstance(loaded, lgb.Booster)
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))


def test_log_model_of_a_booster(project, data):
    X, y = data
    booster = lgb.train(PARAMS, lgb.Dataset(X, y), num_boost_round=3)
    e = lab.Experiment("lgb")
    with e.start_run():
        e.log_model("booster", booster)
    loaded = lab.load_model(read_run(e), "booster")
    np.testing.assert_allclose(loaded.predict(X), booster.predict(X))


def test_sklearn_wrapper_with_callback(project, data, no_lab_warnings):
    X, y = data
    e = lab.Experiment("lgb")
    with e.start_run():
        reg = lgb.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1)
        reg.fit(X, y, eval_set=[(X, y)], callbacks=[LabCallback(e)])
    run = read_run(e)
    assert run.metric_summaries["training-l2"]["count"] == 5
    np.testing.assert_allclose(lab.load_model(run, "model").predict(X), reg.predict(X))


def test_refuses_a_bad_model_name():
    e = lab.Experiment("lgb")
    with pytest.raises(ValueError, match="`model_name`"):
        LabCallback(e, model_name="a/b")
