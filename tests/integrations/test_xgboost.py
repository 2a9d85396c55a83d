"""lab.xgboost.LabCallback and XGBoost models in log_model, against real XGBoost."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification

import lab
from conftest import read_run
from lab.xgboost import LabCallback


@pytest.fixture
def data():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return xgb.DMatrix(X[:150], label=y[:150]), xgb.DMatrix(X[150:], label=y[150:]), X


def test_callback_logs_each_round_and_the_booster(project, data, no_lab_warnings):
    dtrain, dvalid, X = data
    record: dict = {}
    e = lab.Experiment("xgb")
    with e.start_run():
        booster = xgb.train(
            {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 2, "nthread": 1},
            dtrain,
            num_boost_round=8,
            evals=[(dtrain, "train"), (dvalid, "valid")],
            callbacks=[LabCallback(e)],
            evals_result=record,
            verbose_eval=False,
        )
    run = read_run(e)
    history = run.metric_history("valid-logloss")
    assert [p[0] for p in history] == list(range(8))
    assert [p[2] for p in history] == pytest.approx(record["valid"]["logloss"])
    assert {"train-logloss", "train-error", "valid-error"} <= set(run.metrics)
    model = run.models["model"]
    assert model["format"] == "xgboost.json"
    assert model["path"].endswith("model.xgboost.json")
    assert model["library"] == "xgboost" and model["library_version"] == xgb.__version__
    with open(model["path"]) as f:
        assert "learner" in json.load(f)
    loaded = lab.load_model(run, "model")
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_array_equal(loaded.predict(xgb.DMatrix(X)), booster.predict(xgb.DMatrix(X)))


def test_sklearn_wrapper_with_callback_and_log_model(project, no_lab_warnings):
    X, y = make_classification(n_samples=100, n_features=4, random_state=1)
    e = lab.Experiment("xgb")
    with e.start_run():
        clf = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, callbacks=[LabCallback(e, model_name=None)])
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        # The original Lab's argument order.
        e.log_model(clf, "clf")
    run = read_run(e)
    assert run.metric_summaries["validation_0-logloss"]["count"] == 5
    assert set(run.models) == {"clf"}
    assert run.models["clf"]["class"] == "xgboost.sklearn.XGBClassifier"
    loaded = lab.load_model(run, "clf")
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_callback_after_the_run_ended_warns_once_and_training_goes_on(project, data):
    dtrain, dvalid, _ = data
    e = lab.Experiment("xgb")
    with e.start_run():
        pass
    with pytest.warns(lab.LabWarning, match="has already ended") as caught:
        booster = xgb.train({"max_depth": 2, "nthread": 1}, dtrain, 4, evals=[(dvalid, "v")], callbacks=[LabCallback(e)])
    assert booster.num_boosted_rounds() == 4
    assert len([w for w in caught if issubclass(w.category, lab.LabWarning)]) == 1
    assert read_run(e).metrics == {}
