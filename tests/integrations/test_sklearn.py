"""lab.sklearn.autolog against real scikit-learn."""

from __future__ import annotations

import csv
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import lab
from lab.sklearn import Experiment, autolog
from conftest import lab_warnings, read_run


@pytest.fixture
def data():
    return make_classification(n_samples=120, n_features=6, random_state=0)


@pytest.fixture(autouse=True)
def _unpatch():
    yield
    autolog(disable=True)


def test_sklearn_experiment_is_labs(project):
    # The original Lab's import path.
    assert Experiment is lab.Experiment


def test_fit_logs_params_score_and_model(project, data, no_lab_warnings):
    X, y = data
    e = Experiment("sk")
    autolog(e)
    with e.start_run():
        clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    run = read_run(e)
    assert run.params["max_depth"] == 3
    assert run.params["random_state"] == 0
    assert run.tags["estimator"] == "DecisionTreeClassifier"
    assert run.metrics["training_score"] == pytest.approx(clf.score(X, y))
    assert run.models["model"]["format"] == "joblib"
    loaded = lab.load_model(run, "model")
    assert (loaded.predict(X) == clf.predict(X)).all()


def test_pipeline_logs_only_the_outer_fit(project, data):
    X, y = data
    e = Experiment("sk")
    autolog(e)
    with e.start_run():
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    run = read_run(e)
    assert run.tags["estimator"] == "Pipeline"
    # The steps' own parameters (C) are not the top-level model's.
    assert "C" not in run.params
    assert "steps" in run.params
    assert lab.load_model(run, "model").predict(X).tolist() == pipe.predict(X).tolist()
    assert run.metric_summaries["training_score"]["count"] == 1


@pytest.mark.parametrize("search", ["grid", "random"])
def test_search_logs_best_params_and_cv_results(project, data, search):
    X, y = data
    e = Experiment("sk")
    autolog(e)
    grid = {"max_depth": [1, 2, 4], "min_samples_leaf": [1, 5]}
    with e.start_run():
        if search == "grid":
            s = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3)
        else:
            s = RandomizedSearchCV(DecisionTreeClassifier(random_state=0), grid, n_iter=4, cv=3, random_state=0)
        s.fit(X, y)
    run = read_run(e)
    n = len(s.cv_results_["params"])
    assert run.tags["estimator"] == type(s).__name__
    assert run.params["best_max_depth"] == s.best_params_["max_depth"]
    assert run.params["best_min_samples_leaf"] == s.best_params_["min_samples_leaf"]
    assert run.metrics["best_score"] == pytest.approx(s.best_score_)
    history = run.metric_history("cv/mean_test_score")
    assert [p[0] for p in history] == list(range(n))
    assert [p[2] for p in history] == pytest.approx(list(s.cv_results_["mean_test_score"]))
    # The nested fits of the search (n candidates x 3 folds + the refit) logged nothing.
    assert "training_score" not in run.metrics
    assert set(run.models) == {"model"}
    with open(run.artifacts["cv_results.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n
    assert [float(r["mean_test_score"]) for r in rows] == pytest.approx(list(s.cv_results_["mean_test_score"]))
    assert (lab.load_model(run, "model").predict(X) == s.predict(X)).all()


def test_search_with_threads_logs_one_model(project, data):
    # joblib's threading backend runs the nested fits in other threads.
    from joblib import parallel_backend

    X, y = data
    e = Experiment("sk")
    autolog(e)
    with e.start_run(), parallel_backend("threading", n_jobs=2):
        GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3, 4]}, cv=3, n_jobs=2).fit(X, y)
    run = read_run(e)
    assert run.tags["estimator"] == "GridSearchCV"
    assert "training_score" not in run.metrics


def test_fit_outside_a_run_logs_nothing_and_disable_restores(project, data):
    X, y = data
    original = DecisionTreeClassifier.fit
    e = Experiment("sk")
    autolog(e)
    assert DecisionTreeClassifier.fit is not original
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DecisionTreeClassifier().fit(X, y)
    assert lab_warnings(caught) == []
    assert e.run_id is None
    autolog(disable=True)
    assert DecisionTreeClassifier.fit is original
    from sklearn.model_selection._search import BaseSearchCV

    assert not getattr(BaseSearchCV.fit, "_lab_autolog", False)


def test_autolog_as_a_context_manager(project, data):
    X, y = data
    original = LogisticRegression.fit
    e = Experiment("sk")
    with autolog(e):
        assert LogisticRegression.fit is not original
    assert LogisticRegression.fit is original


def test_concurrent_autolog_calls_patch_once(project, data):
    e = Experiment("sk")
    original = LogisticRegression.fit
    threads = [threading.Thread(target=autolog, args=(e,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrapped = LogisticRegression.fit
    assert getattr(wrapped, "_lab_autolog", False)
    # Wrapped once: the function it wraps is scikit-learn's own.
    assert wrapped.__wrapped__ is original
    autolog(disable=True)
    assert LogisticRegression.fit is original


def test_autolog_refuses_a_non_experiment():
    with pytest.raises(TypeError, match="`experiment` must be a lab Experiment"):
        autolog("sk")


def test_fit_after_the_run_ended_logs_nothing(project, data):
    X, y = data
    e = Experiment("sk")
    autolog(e)
    with e.start_run():
        pass
    clf = LogisticRegression().fit(X, y)
    assert np.isfinite(clf.coef_).all()
    run = read_run(e)
    assert run.params == {}
    assert run.models == {}
