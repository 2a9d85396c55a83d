"""XGBoost: :class:`LabCallback` logs the evaluation results of each
boosting round and the booster at the end.

::

    from lab.xgboost import LabCallback

    with e.start_run():
        booster = xgboost.train(params, dtrain, 50, evals=[(dvalid, "valid")],
                                callbacks=[LabCallback(e)])

Each result is the metric ``<data>-<metric>`` (``valid-logloss``), the step
its round; the booster is the model ``model`` (XGBoost's JSON), unless
``model_name=None``. The callback works with ``xgboost.train`` and with the
scikit-learn models (``XGBClassifier(callbacks=[LabCallback(e)])``).
"""

from __future__ import annotations

from xgboost.callback import TrainingCallback

from lab._integration import Sink, check_experiment, check_model_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from lab.experiment import Experiment

__all__ = ["LabCallback"]


class LabCallback(TrainingCallback):
    """Logs XGBoost's evaluation results per round, and the booster.

    :param experiment: the :class:`lab.Experiment` whose live run is logged into.
    :param model_name: the name of the booster's model, or None not to log it.
    """

    def __init__(self, experiment: "Experiment", model_name: "Optional[str]" = "model") -> None:
        check_experiment("experiment", experiment)
        check_model_name(model_name)
        super().__init__()
        self._sink = Sink(experiment, "lab.xgboost.LabCallback")
        self.model_name = model_name

    def after_iteration(self, model: "Any", epoch: int, evals_log: "Any") -> bool:
        points = {}
        for data, metrics in evals_log.items():
            for metric, values in metrics.items():
                if values:
                    value = values[-1]
                    # With cross-validation, (mean, std).
                    if isinstance(value, tuple):
                        value = value[0]
                    points[f"{data}-{metric}"] = value
        if points:
            self._sink.metrics(points, step=epoch)
        return False

    def after_training(self, model: "Any") -> "Any":
        if self.model_name is not None:
            self._sink.model(self.model_name, model)
        return model
