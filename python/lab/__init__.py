"""Lab: track machine-learning experiments.

Add an :class:`~lab.experiment.Experiment` to a training script and every run is
recorded: feature names, hyperparameters, metrics, artifacts and models, with
where, when and from what code it ran::

    from lab.experiment import Experiment, LabWarning

    e = Experiment()

    @e.start_run
    def train():
        e.log_parameter("n_estimators", 100)
        e.log_metric("accuracy_score", 0.97)

Read runs back with :func:`runs`, :func:`get_run` and :func:`load_model`.
"""

from lab._lab import (
    AmbiguousRunError,
    LabError,
    ModelNotFoundError,
    NoActiveRunError,
    NotAProjectError,
    RunEndedError,
    RunNotFoundError,
    ServerError,
    StorageError,
    __version__,
)
from lab.experiment import Experiment, LabWarning
from lab.run import LogLine, ModelIntegrityError, Run, RunsPage, get_run, load_model, runs, runs_page

__all__ = [
    "AmbiguousRunError",
    "Experiment",
    "LabError",
    "LabWarning",
    "LogLine",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "NoActiveRunError",
    "NotAProjectError",
    "Run",
    "RunEndedError",
    "RunNotFoundError",
    "RunsPage",
    "ServerError",
    "StorageError",
    "__version__",
    "get_run",
    "load_model",
    "runs",
    "runs_page",
]
