"""PyTorch Lightning: :class:`LabLogger` records a ``Trainer``'s training.

::

    from lab.lightning import LabLogger

    trainer = Trainer(max_epochs=10, logger=LabLogger(e))
    trainer.fit(module, train_loader, val_loader)

records the module's hyperparameters (``save_hyperparameters``) as
parameters, everything ``self.log`` logs as metrics with the trainer's
global step, and each checkpoint the ``ModelCheckpoint`` callbacks save as
a model named after its file (``epoch=3-step=200``, format ``ckpt``;
``lab.load_model`` returns the checkpoint's dict, and
``Module.load_from_checkpoint(run.models[name]["path"])`` the module).

When the experiment already has a live run (``with e.start_run():``
around ``fit``), the logger logs into it and leaves it to the block to end.
Otherwise it starts a run of the experiment when Lightning first logs, and
ends it with the trainer's end state: ``finished`` when ``fit`` returns,
``interrupted`` on Ctrl-C, ``failed`` (with the error and traceback) on an
exception.

Works with ``lightning`` (``lightning.pytorch``) and with
``pytorch_lightning``, whichever is installed (``lightning`` first).
"""

from __future__ import annotations

import os
import sys

try:
    import lightning.pytorch as _pl
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:
    import pytorch_lightning as _pl
    from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
    from pytorch_lightning.utilities import rank_zero_only

from lab._integration import Sink, check_experiment, clean_key
from lab.experiment import Experiment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

__all__ = ["LabLogger"]


def _flat(params: "Any") -> "Dict[str, Any]":
    if params is None:
        return {}
    if not isinstance(params, dict):
        params = vars(params) if hasattr(params, "__dict__") else dict(params)
    return dict(params)


class LabLogger(Logger):
    """A Lightning logger writing into a Lab run.

    :param experiment: the :class:`lab.Experiment` to log into; a new
        ``Experiment()`` (named after the script) by default.
    :param log_checkpoints: log each checkpoint file as a model.
    """

    def __init__(self, experiment: "Optional[Experiment]" = None, log_checkpoints: bool = True) -> None:
        super().__init__()
        if experiment is None:
            experiment = Experiment()
        check_experiment("experiment", experiment)
        if not isinstance(log_checkpoints, bool):
            raise TypeError(
                f"`log_checkpoints` must be True or False: got {type(log_checkpoints).__name__} {log_checkpoints!r:.60}"
            )
        self._experiment = experiment
        self._sink = Sink(experiment, "lab.lightning.LabLogger")
        self.log_checkpoints = log_checkpoints
        self._own_scope: "Any" = None
        self._logged_checkpoints: "Dict[str, Any]" = {}

    @property
    def name(self) -> str:
        return self._experiment.name or "lab"

    @property
    def version(self) -> str:
        run = self._experiment._run
        return run.id if run is not None else ""

    @property
    @rank_zero_experiment
    def experiment(self) -> "Experiment":
        """The :class:`lab.Experiment`, with a live run (started here if none is)."""
        self._ensure_run()
        return self._experiment

    def _ensure_run(self) -> None:
        run = self._experiment._run
        if run is not None and not run.ended:
            return
        if self._own_scope is not None:
            # Ours, and ended: Lightning goes on logging after `finalize`
            # only by mistake; said once by the sink.
            return
        try:
            scope = self._experiment.start_run()
            scope.__enter__()
            self._own_scope = scope
        except Exception as exc:
            self._sink.say_once("start", f"could not start a run ({type(exc).__name__}: {exc}); nothing is logged")

    @rank_zero_only
    def log_hyperparams(self, params: "Any", *args: "Any", **kwargs: "Any") -> None:
        self._ensure_run()
        self._sink.params(_flat(params))

    @rank_zero_only
    def log_metrics(self, metrics: "Dict[str, Any]", step: "Optional[int]" = None) -> None:
        self._ensure_run()
        self._sink.metrics(metrics, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: "Any") -> None:
        if not self.log_checkpoints:
            return
        for path in (getattr(checkpoint_callback, "last_model_path", ""), getattr(checkpoint_callback, "best_model_path", "")):
            if not path or not os.path.isfile(path):
                continue
            try:
                stamp = os.stat(path)
                mark = (stamp.st_mtime_ns, stamp.st_size)
            except OSError:
                continue
            if self._logged_checkpoints.get(path) == mark:
                continue
            self._logged_checkpoints[path] = mark
            stem = os.path.splitext(os.path.basename(path))[0]
            name = (clean_key(stem) or "checkpoint").replace("/", "_").replace("\\", "_").replace("..", "_").lstrip(".") or "checkpoint"
            self._ensure_run()
            self._sink.model_file(name, path, "ckpt", "lightning checkpoint", _pl.__name__, _pl.__version__)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        scope, self._own_scope = self._own_scope, None
        if scope is None:
            return
        exc_type, exc, tb = sys.exc_info()
        if status == "success" or exc_type is None and status != "failed":
            exc_type = exc = tb = None
        elif exc_type is None:
            exc_type, exc = RuntimeError, RuntimeError(f"Lightning ended the training with status `{status}`")
        try:
            scope.__exit__(exc_type, exc, tb)
        except Exception as e:
            self._sink.say_once("end", f"could not end the run ({type(e).__name__}: {e})")
