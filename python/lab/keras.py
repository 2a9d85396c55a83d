"""Keras 3: :class:`LabCallback` logs a ``fit`` into a run.

::

    from lab.keras import Experiment, LabCallback

    e = Experiment()
    with e.start_run():
        model.fit(x, y, epochs=10, batch_size=64, callbacks=[LabCallback(e)])

records, when training begins, the parameters ``epochs``, ``batch_size``,
``steps_per_epoch``, ``validation_split``, ``initial_epoch`` (those ``fit``
was given), ``optimizer``, ``learning_rate`` (when it is a number),
``loss``, ``num_params``, ``num_trainable_params`` and ``num_layers``; the
logs of each epoch (``loss``, ``accuracy``, ``val_loss``, ...) as metrics
with the epoch as the step; with ``log_every_batch=True`` the logs of each
batch too, as ``batch/<name>`` with the batch's number since training began
as the step; and when training ends, the model as the model ``model`` in
Keras's own ``.keras`` format (``model_name=None`` not to).

``from lab.keras import Experiment`` is the original Lab's import path; it
is :class:`lab.Experiment`, whose ``log_model`` saves Keras models as
``.keras`` files.
"""

from __future__ import annotations

import sys

import keras

from lab._integration import Sink, check_experiment, check_model_name
from lab.experiment import Experiment, LabWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

__all__ = ["Experiment", "LabCallback", "LabWarning"]

# `fit` arguments recorded as parameters when given.
_FIT_ARGS = ("epochs", "batch_size", "steps_per_epoch", "validation_split", "initial_epoch", "validation_freq")


def _fit_arguments(model: "Any") -> "Dict[str, Any]":
    """The arguments of the ``fit`` call this callback runs in, read from
    its frame (Keras passes a callback only ``epochs`` and ``steps``)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
            values = frame.f_locals
            return {k: values[k] for k in _FIT_ARGS if values.get(k) is not None}
        frame = frame.f_back
    return {}


class LabCallback(keras.callbacks.Callback):
    """Logs a Keras ``fit``: parameters, metrics per epoch (and per batch if
    asked), and the model at the end.

    :param experiment: the :class:`lab.Experiment` whose live run is logged into.
    :param log_every_batch: also log each batch's logs as ``batch/<name>``.
    :param model_name: the name of the model logged at the end, or None.
    """

    def __init__(
        self, experiment: "Experiment", log_every_batch: bool = False, model_name: "Optional[str]" = "model"
    ) -> None:
        check_experiment("experiment", experiment)
        if not isinstance(log_every_batch, bool):
            raise TypeError(
                f"`log_every_batch` must be True or False: got {type(log_every_batch).__name__} {log_every_batch!r:.60}"
            )
        check_model_name(model_name)
        super().__init__()
        self._sink = Sink(experiment, "lab.keras.LabCallback")
        self.log_every_batch = log_every_batch
        self.model_name = model_name
        self._batches = 0
        if not log_every_batch:
            # Keras calls every callback each batch: the plain no-op is cheapest.
            self.on_train_batch_end = super().on_train_batch_end  # type: ignore[method-assign]

    def on_train_begin(self, logs: "Any" = None) -> None:
        self._batches = 0
        model = self.model
        params: "Dict[str, Any]" = {}
        try:
            params.update(_fit_arguments(model))
        except Exception:
            pass
        if "epochs" not in params and self.params.get("epochs") is not None:
            params["epochs"] = self.params["epochs"]
        if self.params.get("steps") is not None:
            params["steps_per_epoch"] = self.params["steps"]
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = type(optimizer).__name__
            try:
                params["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            except Exception:
                lr = getattr(optimizer, "_learning_rate", None)
                if lr is not None:
                    params["learning_rate"] = type(lr).__name__
        loss = getattr(model, "loss", None)
        if loss is not None:
            params["loss"] = loss if isinstance(loss, str) else getattr(loss, "name", None) or type(loss).__name__
        try:
            params["num_params"] = int(model.count_params())
            params["num_trainable_params"] = int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))
            params["num_layers"] = len(model.layers)
        except Exception:
            pass
        self._sink.params(params)

    def on_epoch_end(self, epoch: int, logs: "Any" = None) -> None:
        if logs:
            self._sink.metrics(logs, step=epoch)

    def on_train_batch_end(self, batch: int, logs: "Any" = None) -> None:
        if logs:
            self._sink.metrics({f"batch/{k}": v for k, v in logs.items()}, step=self._batches)
        self._batches += 1

    def on_train_end(self, logs: "Any" = None) -> None:
        if self.model_name is not None:
            self._sink.model(self.model_name, self.model)
