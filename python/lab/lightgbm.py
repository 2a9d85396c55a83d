"""LightGBM: :class:`LabCallback` logs the evaluation results of each
boosting round and the booster after the last one.

::

    from lab.lightgbm import LabCallback

    with e.start_run():
        booster = lightgbm.train(params, train_set, 50, valid_sets=[valid_set],
                                 callbacks=[LabCallback(e)])

Each result is the metric ``<data>-<metric>`` (``valid_0-l2``), the step its
round; the booster is the model ``model`` (LightGBM's text format) when the
last round ends, unless ``model_name=None``. LightGBM tells a callback
nothing when training stops early: with ``lightgbm.early_stopping``, log the
booster ``train`` returns with ``e.log_model("model", booster)``.
"""

from __future__ import annotations

from lab._integration import Sink, check_experiment, check_model_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from lab.experiment import Experiment

__all__ = ["LabCallback"]


class LabCallback:
    """Logs LightGBM's evaluation results per round, and the booster.

    :param experiment: the :class:`lab.Experiment` whose live run is logged into.
    :param model_name: the name of the booster's model, or None not to log it.
    """

    # After LightGBM's own callbacks that record evaluation (order 20).
    order = 25
    before_iteration = False

    def __init__(self, experiment: "Experiment", model_name: "Optional[str]" = "model") -> None:
        check_experiment("experiment", experiment)
        check_model_name(model_name)
        self._sink = Sink(experiment, "lab.lightgbm.LabCallback")
        self.model_name = model_name

    def __call__(self, env: "Any") -> None:
        points = {}
        for item in env.evaluation_result_list or ():
            # (data, metric, value, higher is better[, std with cv])
            points[f"{item[0]}-{item[1]}"] = item[2]
        if points:
            self._sink.metrics(points, step=env.iteration)
        if self.model_name is not None and env.iteration + 1 >= env.end_iteration:
            model = env.model
            if hasattr(model, "save_model") and hasattr(model, "model_to_string"):
                self._sink.model(self.model_name, model)
