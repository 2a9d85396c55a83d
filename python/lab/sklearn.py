"""scikit-learn: ``autolog`` records every ``fit`` made inside a run.

::

    from lab.sklearn import Experiment, autolog

    e = Experiment()
    autolog(e)

    with e.start_run():
        clf = RandomForestClassifier(max_depth=4).fit(X, y)

records the estimator's parameters (``get_params(deep=False)``), its score
on the training data as the metric ``training_score`` and the fitted
estimator as the model ``model``. A search (``GridSearchCV``,
``RandomizedSearchCV``, any ``BaseSearchCV``) records its own parameters,
each of ``best_params_`` as a parameter ``best_<name>``, ``best_score_`` as
the metric ``best_score``, the columns of ``cv_results_`` that hold numbers
as metrics ``cv/<column>`` with the candidate's index as the step, the whole
``cv_results_`` as the artifact ``cv_results.csv``, and the fitted search as
the model ``model``.

Only the outermost ``fit`` is logged: the fits a search, a pipeline or any
meta-estimator makes inside its own are not (nor those of another thread
while one is in progress, since they would write the same keys into the
same run). ``autolog(disable=True)`` (or leaving ``with autolog(e):``) puts
scikit-learn's own ``fit`` methods back.

``from lab.sklearn import Experiment`` is the original Lab's import path;
it is :class:`lab.Experiment`.
"""

from __future__ import annotations

import threading

from lab._integration import Sink, check_experiment
from lab.experiment import Experiment, LabWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Experiment", "LabWarning", "autolog"]

_lock = threading.RLock()
# (class, the original `fit` in its __dict__) of every patched class.
_patched: "List[Tuple[type, Any]]" = []
_state: "Dict[str, Any]" = {"sink": None, "log_models": True, "busy": 0}


class _Autolog:
    """What :func:`autolog` returns: leaving ``with autolog(e):`` disables it."""

    def __enter__(self) -> "_Autolog":
        return self

    def __exit__(self, *exc: "Any") -> None:
        autolog(disable=True)

    def __repr__(self) -> str:
        return f"<lab.sklearn autolog {'on' if _patched else 'off'}>"


def autolog(experiment: "Optional[Experiment]" = None, *, log_models: bool = True, disable: bool = False) -> _Autolog:
    """Log every scikit-learn ``fit`` made while ``experiment`` has a live run.

    :param experiment: the :class:`lab.Experiment` whose runs the fits are
        logged into. A fit made while it has no live run is not logged.
    :param log_models: log each fitted estimator as the model ``model``.
    :param disable: undo the patching (``experiment`` is then not needed).

    Calling it again replaces the experiment; patching and unpatching hold a
    lock, so threads may call it at once.
    """
    if disable:
        with _lock:
            while _patched:
                cls, original = _patched.pop()
                cls.fit = original
            _state["sink"] = None
        return _Autolog()
    check_experiment("experiment", experiment)
    if not isinstance(log_models, bool):
        raise TypeError(f"`log_models` must be True or False: got {type(log_models).__name__} {log_models!r:.60}")
    with _lock:
        _state["sink"] = Sink(experiment, "lab.sklearn.autolog")  # type: ignore[arg-type]
        _state["log_models"] = log_models
        if not _patched:
            for cls in _estimator_classes():
                original = cls.__dict__.get("fit")
                if original is None or getattr(original, "_lab_autolog", False):
                    continue
                wrapper = _wrap(original)
                cls.fit = wrapper
                _patched.append((cls, original))
    return _Autolog()


def _estimator_classes() -> "List[type]":
    import warnings

    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes = [cls for _, cls in all_estimators()]
    found = []
    seen = set()
    # Every class that defines `fit` itself, with the classes it inherits
    # `fit` from (a search's `fit` is BaseSearchCV's).
    for cls in classes + [BaseSearchCV, Pipeline]:
        for klass in cls.__mro__:
            if klass in seen or "fit" not in klass.__dict__:
                continue
            if not klass.__module__.startswith("sklearn"):
                continue
            seen.add(klass)
            found.append(klass)
    return found


def _wrap(original: "Any") -> "Any":
    import functools

    @functools.wraps(original)
    def fit(self: "Any", *args: "Any", **kwargs: "Any") -> "Any":
        sink = _state["sink"]
        if sink is None or sink.experiment._run is None or sink.experiment._run.ended:
            return original(self, *args, **kwargs)
        with _lock:
            outer = _state["busy"] == 0
            _state["busy"] += 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            with _lock:
                _state["busy"] -= 1
        if outer:
            try:
                _log_fit(sink, self, args, kwargs)
            except Exception as exc:
                sink.say_once("fit", f"could not log a fit ({type(exc).__name__}: {exc})")
        return result

    fit._lab_autolog = True  # type: ignore[attr-defined]
    return fit


def _log_fit(sink: Sink, est: "Any", args: "Any", kwargs: "Dict[str, Any]") -> None:
    from sklearn.model_selection._search import BaseSearchCV

    try:
        params = est.get_params(deep=False)
    except Exception:
        params = {}
    sink.params(params)
    sink.tag("estimator", type(est).__name__)
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    if isinstance(est, BaseSearchCV):
        _log_search(sink, est)
    elif X is not None and y is not None and hasattr(est, "score"):
        try:
            sink.metrics({"training_score": est.score(X, y)})
        except Exception as exc:
            sink.say_once("score", f"could not score `{type(est).__name__}` on its training data ({exc})")
    if _state["log_models"]:
        sink.model("model", est)


def _log_search(sink: Sink, search: "Any") -> None:
    best = getattr(search, "best_params_", None)
    if isinstance(best, dict):
        sink.params({f"best_{k}": v for k, v in best.items()})
    score = getattr(search, "best_score_", None)
    if score is not None:
        sink.metrics({"best_score": score})
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict):
        return
    import numbers

    for column, values in results.items():
        if column.startswith("param") or column == "params":
            continue
        try:
            points = [float(v) for v in values if isinstance(v, numbers.Number)]
        except Exception:
            continue
        if len(points) != len(values):
            continue
        for i, v in enumerate(points):
            sink.metrics({f"cv/{column}": v}, step=i)
    run = sink.run()
    if run is None:
        return
    try:
        path = _write_results(results)
        run.log_artifact("cv_results.csv", path)
    except Exception as exc:
        sink.say_once("cv_results", f"could not log `cv_results_` as an artifact ({exc})")


_temp_dirs: "List[str]" = []


def _write_results(results: "Dict[str, Any]") -> str:
    """``cv_results_`` as a CSV file, kept until the process exits (a run
    copies its artifacts when it ends)."""
    import atexit
    import csv
    import os
    import tempfile

    if not _temp_dirs:
        import shutil

        _temp_dirs.append(tempfile.mkdtemp(prefix="lab-sklearn-"))
        atexit.register(shutil.rmtree, _temp_dirs[0], True)
    fd, path = tempfile.mkstemp(suffix=".csv", dir=_temp_dirs[0])
    columns = list(results)
    n = len(next(iter(results.values()))) if results else 0
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for i in range(n):
            w.writerow([_cell(results[c][i]) for c in columns])
    return path


def _cell(value: "Any") -> "Any":
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except Exception:
            pass
    return value
