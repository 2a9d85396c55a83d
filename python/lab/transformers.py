"""Hugging Face Transformers: :class:`LabCallback` logs a ``Trainer``'s training.

::

    from lab.transformers import LabCallback

    with e.start_run():
        trainer = Trainer(model=model, args=args, train_dataset=train,
                          callbacks=[LabCallback(e)])
        trainer.train()

records the training arguments (``TrainingArguments.to_sanitized_dict()``)
and the model's configuration (as ``model.<name>``, numbers and short text
only) as parameters when training begins, everything the trainer logs
(``loss``, ``learning_rate``, ``grad_norm``, ``eval_loss``, ...) as metrics
with the global step, and the final model, saved with ``save_pretrained``
and zipped, as the model ``model`` (``model_name=None`` not to).
``lab.load_model`` unzips it and loads it with the class its configuration
names.

Only the main process logs (``state.is_world_process_zero``).
"""

from __future__ import annotations

from transformers import TrainerCallback

from lab._integration import Sink, check_experiment, check_model_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from lab.experiment import Experiment

__all__ = ["LabCallback"]


class LabCallback(TrainerCallback):
    """Logs a Transformers ``Trainer``: arguments, logs, the final model.

    :param experiment: the :class:`lab.Experiment` whose live run is logged into.
    :param model_name: the name of the model logged at the end, or None.
    """

    def __init__(self, experiment: "Experiment", model_name: "Optional[str]" = "model") -> None:
        check_experiment("experiment", experiment)
        check_model_name(model_name)
        self._sink = Sink(experiment, "lab.transformers.LabCallback")
        self.model_name = model_name

    def on_train_begin(self, args: "Any", state: "Any", control: "Any", model: "Any" = None, **kwargs: "Any") -> None:
        if not state.is_world_process_zero:
            return
        try:
            params = dict(args.to_sanitized_dict())
        except Exception:
            params = {}
        config = getattr(model, "config", None)
        if config is not None:
            try:
                for k, v in config.to_dict().items():
                    if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 200):
                        params[f"model.{k}"] = v
            except Exception:
                pass
        try:
            params["model.num_params"] = int(model.num_parameters())
        except Exception:
            pass
        self._sink.params(params)

    def on_log(self, args: "Any", state: "Any", control: "Any", logs: "Any" = None, **kwargs: "Any") -> None:
        if logs and state.is_world_process_zero:
            self._sink.metrics(logs, step=state.global_step)

    def on_train_end(self, args: "Any", state: "Any", control: "Any", model: "Any" = None, **kwargs: "Any") -> None:
        if self.model_name is not None and model is not None and state.is_world_process_zero:
            self._sink.model(self.model_name, model)
