"""What every framework integration shares: logging into an experiment's
live run without ever stopping the training.

A training loop must not die because of its tracker: every call here
catches what Lab raises, says it once as a :class:`lab.LabWarning`, and
returns. Values a framework reports that are no number are skipped (said
once per key); metric and parameter names Lab refuses are turned into valid
ones (said once per name).
"""

from __future__ import annotations

import warnings

from lab import _lab
from lab.experiment import Experiment, LabWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional


def check_experiment(argument: str, experiment: "Any") -> "Experiment":
    if not isinstance(experiment, Experiment):
        raise TypeError(
            f"`{argument}` must be a lab Experiment: got {type(experiment).__name__} {experiment!r:.60}"
        )
    return experiment


def check_model_name(value: "Any") -> None:
    """Raises unless ``value`` (an integration's ``model_name``) is None or
    can name a model: the messages of ``log_model``'s ``name``."""
    if value is None:
        return
    try:
        _lab.check_name("name", value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc).replace("`name`", "`model_name`", 1)) from None


def clean_key(key: "Any") -> "Optional[str]":
    """``key`` as a key Lab accepts: control and invisible formatting
    characters become ``_``, a key too long is cut at 250 bytes, a blank one
    becomes ``_``. None if nothing valid can be made of it."""
    if not isinstance(key, str):
        key = str(key)
    try:
        _lab.check_key("key", key)
        return key
    except ValueError:
        pass
    import unicodedata

    text = "".join("_" if unicodedata.category(c) in ("Cc", "Cf", "Cs") else c for c in key)
    text = text.encode("utf-8")[:250].decode("utf-8", "ignore")
    if not text.strip():
        text = "_"
    try:
        _lab.check_key("key", text)
    except ValueError:
        return None
    return text


class Sink:
    """Logs into ``experiment``'s live run on behalf of ``owner`` (the name
    of the integration, used in warnings)."""

    def __init__(self, experiment: "Experiment", owner: str) -> None:
        self.experiment = experiment
        self.owner = owner
        self._keys: "Dict[str, Optional[str]]" = {}
        self._said: "set" = set()

    def say_once(self, topic: str, message: str) -> None:
        if topic in self._said:
            return
        self._said.add(topic)
        warnings.warn(f"{self.owner}: {message}", LabWarning, stacklevel=3)

    def run(self) -> "Any":
        """The experiment's live run, or None (said once)."""
        run = self.experiment._run
        if run is None:
            self.say_once(
                "no-run",
                "the experiment has no run, so nothing is logged; start one with "
                "`with e.start_run():` around the training",
            )
            return None
        if run.ended:
            self.say_once(
                "ended",
                f"run `{run.short_id}` has already ended, so nothing more is logged; "
                "start a new run with `with e.start_run():` around the training",
            )
            return None
        return run

    def key(self, key: "Any") -> "Optional[str]":
        try:
            return self._keys[key]
        except (KeyError, TypeError):
            pass
        clean = clean_key(key)
        if clean is None:
            self.say_once(f"key:{key!r}", f"`{key!r:.60}` cannot be made a valid metric or parameter name; skipped")
        elif clean != key:
            self.say_once(f"key:{key!r}", f"`{key!r:.60}` is no valid name in Lab; logged as `{clean}`")
        try:
            self._keys[key] = clean
        except TypeError:
            pass
        return clean

    def metrics(self, values: "Mapping[Any, Any]", step: "Optional[int]" = None) -> None:
        run = self.run()
        if run is None:
            return
        points = {}
        for k, v in values.items():
            name = self.key(k)
            if name is None:
                continue
            t = type(v)
            if t is not float and t is not int:
                if isinstance(v, (str, bytes, dict, list, tuple)) or v is None:
                    self.say_once(f"value:{name}", f"metric `{name}` got {t.__name__} {v!r:.40}, no number; skipped")
                    continue
                try:
                    v = float(v)
                except Exception:
                    self.say_once(f"value:{name}", f"metric `{name}` got {t.__name__} {v!r:.40}, no number; skipped")
                    continue
            points[name] = v
        if not points:
            return
        try:
            run.log_metrics(points, step)
        except Exception as exc:
            self.say_once("metrics", f"could not log metrics ({type(exc).__name__}: {exc}); training goes on")

    def params(self, values: "Mapping[Any, Any]") -> None:
        run = self.run()
        if run is None:
            return
        clean = {}
        for k, v in values.items():
            name = self.key(k)
            if name is not None:
                clean[name] = v
        try:
            run.log_params(clean)
        except Exception:
            # One bad value must not lose the others: each on its own.
            for k, v in clean.items():
                try:
                    run.log_param(k, v)
                except Exception:
                    try:
                        run.log_param(k, str(v))
                    except Exception as exc:
                        self.say_once(f"param:{k}", f"could not log parameter `{k}` ({type(exc).__name__}: {exc})")

    def tag(self, key: str, value: "Any") -> None:
        run = self.run()
        if run is None:
            return
        try:
            run.set_tag(key, value)
        except Exception as exc:
            self.say_once(f"tag:{key}", f"could not set tag `{key}` ({type(exc).__name__}: {exc})")

    def model(self, name: str, model: "Any") -> None:
        run = self.run()
        if run is None:
            return
        try:
            from lab._models import serialise

            serialise(run, name, model)
        except Exception as exc:
            self.say_once(f"model:{name}", f"could not log model `{name}` ({type(exc).__name__}: {exc})")

    def model_file(self, name: str, path: str, fmt: str, cls: str, library: str, version: str) -> None:
        """Logs an existing model file (a checkpoint) as a model: a copy is taken in."""
        run = self.run()
        if run is None:
            return
        tmp = None
        try:
            import shutil

            tmp = run.model_temp_path(name)
            shutil.copyfile(path, tmp)
            run.add_model(name, tmp, fmt, cls, library, version)
        except Exception as exc:
            if tmp is not None:
                try:
                    import os

                    os.remove(tmp)
                except OSError:
                    pass
            self.say_once(f"model:{name}", f"could not log model `{name}` from {path} ({type(exc).__name__}: {exc})")
