"""What every driver shares: the command line, the result line, the seed
example's training, the many-runs data, and resident-memory readings.

A driver is run by benches/peers/run.py as a child process, in its tool's own
virtual environment, with the current folder set to a fresh work folder:

    python <tool>_driver.py SCENARIO 'JSON PARAMETERS'

It prints one JSON object as its last line of standard output (the crash child
prints one acknowledged step per line instead). Only the standard library and
the tool under test (plus scikit-learn and joblib for the seed) are imported,
so a driver runs in any of the environments.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from typing import Callable, Dict

clock = time.perf_counter

# The many-runs scenario's query: the same for every tool.
QUERY_METRIC, QUERY_THRESHOLD, SORT_METRIC = "m1", 0.5, "m0"


def rss_kb() -> int:
    """This process's resident memory (VmRSS), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def emit(result: dict) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def main(handlers: Dict[str, Callable[[dict], dict]]) -> None:
    """Runs handlers[argv[1]](json.loads(argv[2])) and prints its result."""
    scenario = sys.argv[1]
    params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if scenario not in handlers:
        emit({"error": f"unknown scenario {scenario!r}; known: {sorted(handlers)}"})
        sys.exit(2)
    try:
        if "dirs" in params:  # one reader process for several work folders
            result = {"reads": [read_one(handlers[scenario], d, extra) for d, extra in params["dirs"]]}
        else:
            result = handlers[scenario](params)
    except BaseException as exc:  # reported, not hidden: the runner shows it in the table
        traceback.print_exc()
        emit({"error": f"{type(exc).__name__}: {exc}"[:500]})
        sys.stdout.flush()
        os._exit(1)
    if result is not None:
        emit(result)


def read_one(handler, folder: str, params: dict) -> dict:
    os.chdir(folder)
    os.environ["LAB_PROJECT"] = folder
    try:
        return handler(params)
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def version(dist: str) -> str:
    from importlib.metadata import version as v

    return v(dist)


# ---------------------------------------------------------------- seed example


def iris_and_grid(quick: bool):
    """The seed's data and grid search (a one-point grid in quick mode)."""
    from sklearn import datasets

    grid = {"n_estimators": [10], "max_depth": [2]} if quick else {"n_estimators": [10, 50, 100], "max_depth": [2, 4]}
    return datasets.load_iris(), grid


def seed(tracker, quick: bool) -> dict:
    """The seed example (docs/seed logging.rst, as in benches/run.py), with every
    tracking call timed apart from training and from model logging.

    `tracker` has start(), features(names), parameter(key, value),
    metric(key, value), model(name, obj) and end().
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, precision_score
    from sklearn.model_selection import GridSearchCV, train_test_split

    tracking = training = 0.0
    t = clock()
    tracker.start()
    tracking += clock() - t

    t = clock()
    iris, grid = iris_and_grid(quick)
    training += clock() - t

    t = clock()
    tracker.features(iris["feature_names"])
    tracking += clock() - t

    t = clock()
    clf = GridSearchCV(RandomForestClassifier(random_state=0), grid)
    clf.fit(iris.data, iris.target)
    best = clf.best_estimator_.get_params()
    training += clock() - t

    t = clock()
    tracker.parameter("n_estimators", best["n_estimators"])
    tracker.parameter("max_depth", best["max_depth"])
    tracking += clock() - t

    t = clock()
    x_train, x_test, y_train, y_test = train_test_split(iris.data, iris.target, test_size=0.25, random_state=42)
    rfc = RandomForestClassifier(n_estimators=best["n_estimators"], max_depth=best["max_depth"], random_state=0)
    rfc.fit(x_train, y_train)
    y_pred = rfc.predict(x_test)
    accuracy = accuracy_score(y_test, y_pred)
    precision = precision_score(y_test, y_pred, average="macro")
    training += clock() - t

    t = clock()
    tracker.metric("accuracy_score", float(accuracy))
    tracker.metric("precision_score", float(precision))
    tracking += clock() - t

    t = clock()
    tracker.model("GridSearchCV", clf)
    model = clock() - t

    t = clock()
    tracker.end()
    tracking += clock() - t
    return {"training_ms": training * 1e3, "tracking_ms": tracking * 1e3, "model_ms": model * 1e3}


# ------------------------------------------------------------------ many runs


def many_runs_data(i: int, n_params: int, n_metrics: int):
    """Run i's parameters and metrics: the same for every tool, so that every
    tool's query must return the same runs in the same order."""
    rnd = random.Random(i)
    params = {f"p{k}": rnd.choice((rnd.randint(0, 1000), round(rnd.random(), 6))) for k in range(n_params)}
    metrics = {f"m{k}": rnd.random() for k in range(n_metrics)}
    return params, metrics


def expected_query(n_runs: int, n_params: int, n_metrics: int) -> list:
    """m0 of the runs with m1 > 0.5, largest first: what every query must return."""
    rows = []
    for i in range(n_runs):
        _, m = many_runs_data(i, n_params, n_metrics)
        if m[QUERY_METRIC] > QUERY_THRESHOLD:
            rows.append(m[SORT_METRIC])
    return sorted(rows, reverse=True)


def check_rows(m0_values: list, params: dict) -> dict:
    """Compares a query's m0 column with what it must be."""
    expected = expected_query(params["runs"], params["params"], params["metrics"])
    ok = len(m0_values) == len(expected) and all(abs(a - b) < 1e-9 for a, b in zip(m0_values, expected))
    return {"rows": len(m0_values), "expected_rows": len(expected), "correct": ok}


# ---------------------------------------------------------------- crash child


def ack(i: int) -> None:
    """Tells the parent that step i's logging call has returned."""
    sys.stdout.write(f"{i}\n")
    sys.stdout.flush()


def deadline(seconds: float) -> float:
    return clock() + seconds
