"""Serialising models into a run and loading them back."""

from __future__ import annotations

import os
import sys
from typing import Any, Tuple


def _library(obj: Any) -> Tuple[str, str, str]:
    cls = type(obj)
    module = cls.__module__ or ""
    library = module.split(".")[0]
    version = ""
    mod = sys.modules.get(library)
    if mod is not None:
        version = str(getattr(mod, "__version__", "") or "")
    if not version and library not in ("builtins", "__main__"):
        try:
            from importlib import metadata

            version = metadata.version(library)
        except Exception:
            version = ""
    return f"{module}.{cls.__qualname__}", library, version


def serialise(run: Any, name: str, model: Any) -> None:
    try:
        import joblib
    except ImportError:
        joblib = None
    fmt = "joblib" if joblib is not None else "pickle"
    # A path of this call's own: threads saving one name at once must not
    # write into one file.
    tmp = run.model_temp_path(name)
    try:
        if joblib is not None:
            joblib.dump(model, tmp)
        else:
            import pickle

            with open(tmp, "wb") as f:
                pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        try:
            os.remove(tmp)
        except OSError:
            pass
        cls, _, _ = _library(model)
        raise TypeError(
            f"`model` cannot be serialised with {fmt}: a {cls} object ({type(exc).__name__}: {exc})"
        ) from exc
    cls, library, version = _library(model)
    try:
        run.add_model(name, tmp, fmt, cls, library, version)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def load(path: str, fmt: str) -> Any:
    if fmt == "joblib":
        import joblib

        return joblib.load(path)
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)
