"""lab.optuna.LabCallback against real Optuna: one run per trial, grouped by study."""

from __future__ import annotations

import optuna
import pytest

import lab
from conftest import wait_background
from lab.optuna import LabCallback

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    for step in range(3):
        trial.report(x * step, step)
    return (x - 1) ** 2 + (0.5 if kind == "b" else 0)


def test_one_run_per_trial_in_the_studys_experiment(project, no_lab_warnings):
    study = optuna.create_study(study_name="quadratic", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=5, callbacks=[LabCallback()])
    wait_background()
    runs = lab.runs("quadratic")
    assert len(runs) == 5
    by_trial = {int(r.tags["optuna.trial"]): r for r in runs}
    assert sorted(by_trial) == [0, 1, 2, 3, 4]
    for t in study.trials:
        r = by_trial[t.number]
        assert r.status == "finished"
        assert r.params == t.params
        assert r.metrics["value"] == pytest.approx(t.value)
        assert r.tags["optuna.study"] == "quadratic"
        assert r.tags["optuna.state"] == "COMPLETE"
        history = r.metric_history("intermediate_value")
        assert [(s, v) for s, _, v in history] == [(s, pytest.approx(v)) for s, v in sorted(t.intermediate_values.items())]
        assert r.metrics["duration"] >= 0
    best = lab.runs("quadratic", sort="value", limit=1)[0]
    assert int(best.tags["optuna.trial"]) == study.best_trial.number


def test_failed_and_pruned_trials(project):
    def flaky(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 10)
        if trial.number == 1:
            raise optuna.TrialPruned()
        if trial.number == 2:
            return float("nan")  # Optuna marks it FAIL
        return float(x)

    study = optuna.create_study(study_name="flaky")
    e = lab.Experiment("given")
    study.optimize(flaky, n_trials=3, callbacks=[LabCallback(e, metric_names=["score"])])
    wait_background()
    runs = {int(r.tags["optuna.trial"]): r for r in lab.runs("given")}
    assert runs[0].status == "finished" and runs[0].tags["optuna.state"] == "COMPLETE"
    assert "score" in runs[0].metrics
    assert runs[1].tags["optuna.state"] == "PRUNED" and runs[1].status == "finished"
    assert runs[2].tags["optuna.state"] == "FAIL" and runs[2].status == "failed"


def test_parallel_trials(project):
    study = optuna.create_study(study_name="parallel")
    study.optimize(objective, n_trials=8, n_jobs=4, callbacks=[LabCallback()])
    wait_background()
    assert len(lab.runs("parallel")) == 8


def test_multi_objective(project):
    study = optuna.create_study(study_name="two", directions=["minimize", "maximize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 2.0), n_trials=2, callbacks=[LabCallback()])
    wait_background()
    for r in lab.runs("two"):
        assert r.metrics["values[1]"] == 2.0


def test_refuses_bad_arguments():
    with pytest.raises(TypeError, match="`experiment`"):
        LabCallback("study")
    with pytest.raises(TypeError, match="`metric_names`"):
        LabCallback(metric_names=[1])
