"""Every example of the user guide, end to end, checked through `lab.runs()`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lab
from conftest import EXAMPLES, lab_cli, lab_env

IRIS_FEATURES = [
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
]


def run_example(project: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        cwd=project,
        env=lab_env(project),
        capture_output=True,
        text=True,
        timeout=300,
    )


def only_run(experiment: str) -> lab.Run:
    runs = lab.runs(experiment)
    assert len(runs) == 1, runs
    return runs[0]


def test_features(project: Path) -> None:
    proc = run_example(project, "features")
    assert proc.returncode == 0, proc.stderr
    run = only_run("features")
    assert run.status == "finished"
    assert run.features == IRIS_FEATURES
    assert run.source == str(EXAMPLES / "features.py")
    assert run.end_time is not None and run.end_time >= run.start_time


def test_hyperparameters(project: Path) -> None:
    proc = run_example(project, "hyperparameters")
    assert proc.returncode == 0, proc.stderr
    run = only_run("hyperparameters")
    assert run.status == "finished"
    assert run.params["n_estimators"] in (10, 50, 100)
    assert run.params["max_depth"] in (2, 4)
    assert isinstance(run.params["n_estimators"], int)
    assert run.features == IRIS_FEATURES


def test_misspelled_metrics_example_fails_visibly_and_is_recorded(project: Path) -> None:
    proc = run_example(project, "metrics")
    # The user still sees their own error, unchanged, and the script fails.
    assert proc.returncode == 1
    assert "NameError: name 'RandomForestClassifer' is not defined" in proc.stderr
    run = only_run("metrics")
    assert run.status == "failed"
    assert run.error is not None
    assert run.error["type"] == "NameError"
    assert "RandomForestClassifer" in run.error["message"]
    assert "Traceback (most recent call last)" in run.error["traceback"]
    assert "metrics.py" in run.error["traceback"]
    # What it logged before the error is kept.
    assert run.features == IRIS_FEATURES
    assert set(run.params) == {"n_estimators", "max_depth"}
    assert run.metrics == {}
    # And the command line shows it as failed.
    ls = lab_cli(project, "ls")
    assert ls.returncode == 0, ls.stderr
    row = next(line for line in ls.stdout.splitlines() if run.short_id in line)
    assert "failed" in row and "metrics.py" in row


def test_tensorboard_folder_is_copied_at_run_end(project: Path) -> None:
    proc = run_example(project, "tensorboard")
    assert proc.returncode == 0, proc.stderr
    run = only_run("tensorboard")
    assert run.status == "finished"
    copied = Path(run.artifacts["tensorboard"])
    assert copied.is_dir()
    assert copied.is_relative_to(project / ".lab" / "runs" / run.short_id)
    train = (copied / "train" / "scalars.csv").read_text().splitlines()
    assert len(train) == 30 and train[0].startswith("0,loss,")
    assert (copied / "validation" / "scalars.csv").is_file()
    assert run.metric_summaries["loss"]["count"] == 30
    history = run.metric_history("val_accuracy")
    assert [step for step, _, _ in history] == list(range(30))
    assert 0.5 < history[-1][2] <= 1.0


def test_model_is_persisted_and_loads_back(project: Path) -> None:
    proc = run_example(project, "model")
    assert proc.returncode == 0, proc.stderr
    run = only_run("model")
    meta = run.models["GridSearchCV"]
    assert meta["format"] == "joblib"
    assert meta["library"] == "sklearn"
    assert meta["class"] == "sklearn.model_selection._search.GridSearchCV"
    import sklearn

    assert meta["library_version"] == sklearn.__version__
    assert meta["size"] == os.path.getsize(meta["path"])
    assert len(meta["sha256"]) == 64
    clf = lab.load_model(run, "GridSearchCV")
    assert type(clf).__name__ == "GridSearchCV"
    assert clf.best_params_["n_estimators"] in (10, 50, 100)
    assert lab.load_model(run.short_id, "GridSearchCV").best_params_ == clf.best_params_


def test_complete_iris_example(project: Path) -> None:
    for seed in ("1", "2"):
        proc = run_example(project, "iris", "--seed", seed)
        assert proc.returncode == 0, proc.stderr
    runs = lab.runs("iris")
    assert [r.params["seed"] for r in runs] == [2, 1], "newest first"
    for run in runs:
        assert run.dataset == "sklearn.datasets.load_iris"
        assert run.argv[-1] in ("1", "2")
        assert 0.8 <= run.metrics["accuracy_score"] <= 1.0
        assert {"precision[0]", "precision[1]", "precision[2]"} <= set(run.metrics)
        csv = Path(run.artifacts["confusion_matrix"]).read_text().splitlines()
        assert len(csv) == 3
        assert lab.load_model(run, "GridSearchCV").predict([[5.1, 3.5, 1.4, 0.2]])[0] == 0
    ls = lab_cli(project, "ls", "accuracy_score")
    assert ls.returncode == 0, ls.stderr
    header = ls.stdout.splitlines()[0]
    assert header.split()[:5] == ["ID", "NAME", "SOURCE", "STARTED", "(UTC)"]
    assert "accuracy_score" in header
    show = lab_cli(project, "show", runs[0].short_id)
    assert show.returncode == 0, show.stderr
    for text in ("finished", "GridSearchCV", "confusion_matrix", "seed", "sepal length (cm)"):
        assert text in show.stdout
