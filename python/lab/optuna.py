"""Optuna: :class:`LabCallback` records each finished trial as a run of its own.

::

    from lab.optuna import LabCallback

    study = optuna.create_study(study_name="rf-search")
    study.optimize(objective, n_trials=50, callbacks=[LabCallback()])

One run per trial, in the experiment named after the study (or the one
given): a user compares trials as runs (``lab ls --sort value``), and the
study is the experiment that groups them. Each run records the trial's
parameters, its value as the metric ``value`` (``values[0]``, ``values[1]``,
... for several objectives, or the names given as ``metric_names``), its
intermediate values (``trial.report``) as the metric ``intermediate_value``
with their steps, its duration in seconds as the metric ``duration``, and
the tags ``optuna.study``, ``optuna.trial`` (the trial's number) and
``optuna.state`` (``COMPLETE``, ``PRUNED``, ``FAIL``). A failed trial's run
ends ``failed``; the others ``finished``. The run is written when Optuna
calls back, once the trial is over: its start and end times are then, and
the trial's own are its ``duration``.
"""

from __future__ import annotations

import threading

from lab._integration import Sink, check_experiment, clean_key
from lab.experiment import Experiment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Sequence

__all__ = ["LabCallback"]


class _TrialFailed(Exception):
    """Why a trial's run ends failed: Optuna reported it as FAIL."""


class LabCallback:
    """Records each Optuna trial as a run.

    :param experiment: the :class:`lab.Experiment` the trials' runs belong
        to; by default one named after the study.
    :param metric_names: names for the objective values (default ``value``,
        or ``values[i]`` with several objectives).
    """

    def __init__(
        self, experiment: "Optional[Experiment]" = None, metric_names: "Optional[Sequence[str]]" = None
    ) -> None:
        if experiment is not None:
            check_experiment("experiment", experiment)
        if metric_names is not None:
            if isinstance(metric_names, str):
                metric_names = [metric_names]
            if not all(isinstance(n, str) for n in metric_names):
                raise TypeError(f"`metric_names` must be a list of strings: got {metric_names!r:.60}")
            metric_names = list(metric_names)
        self.experiment = experiment
        self.metric_names = metric_names
        self._experiments: "dict" = {}
        # Optuna calls back from each of its threads (`n_jobs`); one
        # Experiment runs one run at a time.
        self._lock = threading.Lock()

    def _experiment_for(self, study: "Any") -> "Experiment":
        if self.experiment is not None:
            return self.experiment
        name = study.study_name
        e = self._experiments.get(name)
        if e is None:
            key = clean_key(name)
            e = Experiment(name=key.replace("/", "_") if key else None)
            self._experiments[name] = e
        return e

    def __call__(self, study: "Any", trial: "Any") -> None:
        with self._lock:
            e = self._experiment_for(study)
            sink = Sink(e, "lab.optuna.LabCallback")
            state = getattr(trial.state, "name", str(trial.state))
            try:
                scope = e.start_run()
                scope.__enter__()
            except Exception as exc:
                sink.say_once("start", f"could not start a run for trial {trial.number} ({exc})")
                return
            failed = None
            try:
                self._log(sink, study, trial, state)
            finally:
                if state == "FAIL":
                    failed = _TrialFailed(f"trial {trial.number} of study `{study.study_name}` failed")
                try:
                    if failed is not None:
                        scope.__exit__(_TrialFailed, failed, None)
                    else:
                        scope.__exit__(None, None, None)
                except Exception as exc:
                    sink.say_once("end", f"could not end the run of trial {trial.number} ({exc})")

    def _log(self, sink: Sink, study: "Any", trial: "Any", state: str) -> None:
        sink.params(dict(trial.params))
        sink.tag("optuna.study", study.study_name)
        sink.tag("optuna.trial", trial.number)
        sink.tag("optuna.state", state)
        values = trial.values
        if values:
            if self.metric_names is not None:
                names = self.metric_names
            elif len(values) == 1:
                names = ["value"]
            else:
                names = [f"values[{i}]" for i in range(len(values))]
            sink.metrics({n: v for n, v in zip(names, values)})
        for step, v in sorted(trial.intermediate_values.items()):
            sink.metrics({"intermediate_value": v}, step=step)
        if trial.duration is not None:
            sink.metrics({"duration": trial.duration.total_seconds()})
