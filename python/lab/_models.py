"""Serialising models into a run and loading them back.

Models of the training frameworks Lab knows are stored in their library's
own format, so that they load without Lab and across Python versions where
the library allows:

=====================  ======================  ===============================
model                  format (file suffix)    how
=====================  ======================  ===============================
Keras 3 ``Model``      ``keras``               ``model.save`` (``.keras``)
Transformers model     ``transformers.zip``    ``save_pretrained``, zipped
PyTorch ``Module``     ``torch.pt``            ``torch.save(model)``
dict of tensors        ``torch.pt``            ``torch.save(state_dict)``
XGBoost booster/model  ``xgboost.json``        ``save_model`` as JSON
LightGBM ``Booster``   ``lightgbm.txt``        ``save_model`` (text)
anything else          ``joblib`` / ``pickle`` ``joblib.dump`` / ``pickle``
=====================  ======================  ===============================

A framework is only looked at when its module is already imported: a model
of it cannot exist otherwise, and ``import lab`` imports none of them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional, Tuple


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


def _version(library: str) -> str:
    mod = sys.modules.get(library)
    return str(getattr(mod, "__version__", "") or "")


def _class_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


# -- native writers: each saves `model` into `tmp` (a path without the suffix
# its library may want, hence the rename) ------------------------------------


def _save_with_suffix(tmp: str, suffix: str, save: Callable[[str], None]) -> None:
    """Saves through a sibling path ending in ``suffix`` (libraries choose the
    format by it), then moves it to ``tmp``."""
    path = tmp + suffix
    try:
        save(path)
        os.replace(path, tmp)
    except BaseException:
        try:
            os.remove(path)
        except OSError:
            pass
        raise


def _save_keras(model: Any, tmp: str) -> None:
    _save_with_suffix(tmp, ".keras", model.save)


def _save_torch(model: Any, tmp: str) -> None:
    import torch

    torch.save(model, tmp)


def _save_xgboost(model: Any, tmp: str) -> None:
    _save_with_suffix(tmp, ".json", model.save_model)


def _save_lightgbm(model: Any, tmp: str) -> None:
    model.save_model(tmp)


def _save_transformers(model: Any, tmp: str) -> None:
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="lab-model-")
    try:
        model.save_pretrained(folder)
        base = shutil.make_archive(tmp, "zip", folder)
        os.replace(base, tmp)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _is_instance(model: Any, module: str, path: str) -> bool:
    """Whether ``model`` is an instance of ``module.path`` — only if
    ``module`` is already imported."""
    mod = sys.modules.get(module)
    if mod is None:
        return False
    cls: Any = mod
    try:
        for part in path.split("."):
            cls = getattr(cls, part)
    except AttributeError:
        return False
    return isinstance(cls, type) and isinstance(model, cls)


def _is_state_dict(model: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(model, dict) or not model:
        return False
    return all(isinstance(v, torch.Tensor) for v in model.values())


def native(model: Any) -> Optional[Tuple[str, str, Callable[[Any, str], None]]]:
    """``(format, library, writer)`` for a model of a framework Lab stores
    natively, else None."""
    if _is_instance(model, "keras", "Model"):
        return "keras", "keras", _save_keras
    if _is_instance(model, "transformers", "PreTrainedModel"):
        return "transformers.zip", "transformers", _save_transformers
    if _is_instance(model, "xgboost", "Booster") or _is_instance(model, "xgboost", "XGBModel"):
        return "xgboost.json", "xgboost", _save_xgboost
    if _is_instance(model, "lightgbm", "Booster"):
        return "lightgbm.txt", "lightgbm", _save_lightgbm
    if _is_instance(model, "torch", "nn.Module") or _is_state_dict(model):
        return "torch.pt", "torch", _save_torch
    return None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def serialise(run: Any, name: str, model: Any) -> None:
    found = native(model)
    # A path of this call's own: threads saving one name at once must not
    # write into one file.
    tmp = os.fspath(run.model_temp_path(name))
    if found is not None:
        fmt, library, writer = found
        cls = _class_name(model)
        version = _version(library)
        try:
            writer(model, tmp)
        except Exception as exc:
            _remove(tmp)
            raise TypeError(
                f"`model` cannot be saved in {library}'s format `{fmt}`: a {cls} object "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    else:
        try:
            import joblib
        except ImportError:
            joblib = None
        fmt = "joblib" if joblib is not None else "pickle"
        try:
            if joblib is not None:
                joblib.dump(model, tmp)
            else:
                import pickle

                with open(tmp, "wb") as f:
                    pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            _remove(tmp)
            cls, _, _ = _library(model)
            raise TypeError(
                f"`model` cannot be serialised with {fmt}: a {cls} object ({type(exc).__name__}: {exc})"
            ) from exc
        cls, library, version = _library(model)
    try:
        run.add_model(name, tmp, fmt, cls, library, version)
    except BaseException:
        _remove(tmp)
        raise


def _import_class(path: str) -> Any:
    module, _, qualname = path.rpartition(".")
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _load_transformers(path: str) -> Any:
    import json
    import shutil
    import tempfile
    import zipfile

    import transformers

    folder = tempfile.mkdtemp(prefix="lab-model-")
    try:
        with zipfile.ZipFile(path) as z:
            z.extractall(folder)
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            architectures = json.load(f).get("architectures") or []
        cls = getattr(transformers, architectures[0], None) if architectures else None
        if cls is None:
            cls = transformers.AutoModel
        return cls.from_pretrained(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load(path: str, fmt: str, cls: str = "") -> Any:
    if fmt == "joblib":
        import joblib

        return joblib.load(path)
    if fmt == "pickle":
        import pickle

        with open(path, "rb") as f:
            return pickle.load(f)
    if fmt == "keras":
        import keras

        return keras.saving.load_model(path)
    if fmt == "torch.pt" or fmt == "ckpt":
        import torch

        # The file's SHA-256 was checked against the one recorded when it
        # was logged; a whole module needs pickle, as `torch.save` made it.
        return torch.load(path, weights_only=False, map_location="cpu")
    if fmt == "xgboost.json":
        import xgboost

        model = xgboost.Booster() if cls in ("", "xgboost.core.Booster") else _import_class(cls)()
        model.load_model(path)
        return model
    if fmt == "lightgbm.txt":
        import lightgbm

        return lightgbm.Booster(model_file=path)
    if fmt == "transformers.zip":
        return _load_transformers(path)
    raise ValueError(f"model format `{fmt}` is not one this version of Lab can load: {path}")
