"""Turning what users log as media into what the run takes: raw pixels or a
PNG for images, column names and rows for tables.

Nothing here imports numpy, Pillow, matplotlib, pandas or polars: their
objects are recognised by their type's module, and their own methods are
called on them, so Lab needs none of them installed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

__all__ = ["image_args", "figure_png", "table_args"]


def _module(obj: Any) -> str:
    return type(obj).__module__ or ""


def _describe(obj: Any) -> str:
    text = repr(obj)
    if len(text) > 60:
        text = text[:59] + "…"
    return f"{type(obj).__name__} {text}"


def _is_figure(obj: Any) -> bool:
    return _module(obj).startswith("matplotlib") and callable(getattr(obj, "savefig", None))


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure drawn as PNG bytes, at the figure's own size and dpi."""
    if not _is_figure(figure):
        raise TypeError(f"`figure` must be a matplotlib figure: got {_describe(figure)}")
    import io

    buf = io.BytesIO()
    figure.savefig(buf, format="png")
    return buf.getvalue()


# Pillow modes, as the pixels Lab stores them in: grey, RGB or RGBA.
_PIL_MODES = {"1": "L", "L": "L", "RGB": "RGB", "RGBA": "RGBA"}
_PIL_WITH_ALPHA = {"LA", "La", "PA", "P", "RGBa"}
_PIL_NUMBERS = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _pil_image(image: Any) -> Tuple[str, Any]:
    mode = image.mode
    if mode in _PIL_NUMBERS:
        raise ValueError(
            f"`image` must be an image of 8-bit channels: got a Pillow image of mode `{mode}` "
            f"({image.width} x {image.height})\n\n"
            "hint: scale it to 0..255 and `convert(\"L\")`, or pass a numpy array of floats from 0 to 1"
        )
    if mode in _PIL_MODES:
        target = _PIL_MODES[mode]
    elif mode in _PIL_WITH_ALPHA:
        target = "RGBA"
    else:
        target = "RGB"
    if target != mode:
        image = image.convert(target)
    return target, image


def image_args(image: Any) -> Tuple[str, Any]:
    """What to log for ``image``: ``("png", bytes)`` or ``("pixels", (data,
    height, width, channels, dtype))``."""
    if _is_figure(image):
        return "png", figure_png(image)
    module = _module(image)
    if module.startswith("PIL.") and hasattr(image, "tobytes") and hasattr(image, "mode"):
        mode, image = _pil_image(image)
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        return "pixels", (image.tobytes(), image.height, image.width, channels, "|u1")
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "png", data
        raise TypeError(
            "`image` must be a numpy array, a Pillow image, a matplotlib figure or the bytes of "
            f"a PNG file: got {len(data)} bytes that are no PNG"
        )
    if isinstance(image, (str, int, float, bool, dict)) or image is None:
        raise TypeError(
            "`image` must be a numpy array, a Pillow image or a matplotlib figure: "
            f"got {_describe(image)}"
        )
    if not module.startswith("numpy"):
        # Tensors and other array-likes go through numpy, when it is there.
        try:
            import numpy as np
        except ImportError:
            raise TypeError(
                "`image` must be a numpy array, a Pillow image or a matplotlib figure: "
                f"got {_describe(image)} (numpy, which would read it, is not installed)"
            ) from None
        if callable(getattr(image, "detach", None)) and callable(getattr(image, "cpu", None)):
            image = image.detach().cpu().numpy()
        elif callable(getattr(image, "numpy", None)):
            image = image.numpy()
        else:
            image = np.asarray(image)
    return "pixels", _array_args(image)


def _array_args(array: Any) -> Tuple[bytes, int, int, int, str]:
    import numpy as np

    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    shape = tuple(array.shape)
    if array.ndim == 2:
        height, width = shape
        channels = 1
    elif array.ndim == 3 and shape[2] in (1, 3, 4):
        height, width, channels = shape
    else:
        raise ValueError(
            "`image` must be an array of shape (height, width), (height, width, 1), "
            f"(height, width, 3) or (height, width, 4): got shape {shape}"
        )
    kind = array.dtype.kind
    if kind == "f" and array.dtype.itemsize < 4:
        array = array.astype(np.float32)
    elif kind not in "biuf":
        raise TypeError(
            "`image` must hold uint8 numbers (0 to 255), floats from 0 to 1, other integers from "
            f"0 to 255, or booleans: got an array of dtype `{array.dtype}`"
        )
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    return array.tobytes(), height, width, channels, array.dtype.str


def table_args(data: Any) -> Tuple[List[str], List[List[Any]]]:
    """The column names and the rows of a table given as a pandas or polars
    DataFrame, a list of dicts (one a row) or a dict of columns."""
    module = _module(data)
    if module.startswith("pandas") and hasattr(data, "to_dict") and hasattr(data, "columns"):
        columns = _unique([str(c) for c in data.columns])
        split = data.to_dict(orient="split")
        rows = [list(r) for r in split["data"]]
        if getattr(data.index, "name", None) is not None or not _plain_range(data.index):
            name = data.index.name if data.index.name is not None else ""
            columns = [str(name)] + columns
            rows = [[i] + r for i, r in zip(split["index"], rows)]
        return _unique(columns), rows
    if module.startswith("polars") and hasattr(data, "rows") and hasattr(data, "columns"):
        return _unique([str(c) for c in data.columns]), [list(r) for r in data.rows()]
    if isinstance(data, dict):
        return _dict_of_columns(data)
    if isinstance(data, (list, tuple)):
        return _list_of_dicts(list(data))
    raise TypeError(
        "`table` must be a pandas or polars DataFrame, a list of dicts (one a row) or a dict "
        f"of columns: got {_describe(data)}"
    )


def _plain_range(index: Any) -> bool:
    # A DataFrame's default index (0, 1, 2, ...) says nothing: it is left out.
    return type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1


def _unique(columns: List[str]) -> List[str]:
    seen = set()
    for c in columns:
        if c in seen:
            raise ValueError(f"`table` must not name a column twice: got `{c}` twice")
        seen.add(c)
    return columns


def _dict_of_columns(data: Dict[Any, Any]) -> Tuple[List[str], List[List[Any]]]:
    columns = [str(k) for k in data]
    values = []
    for k, v in data.items():
        if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
            raise TypeError(
                f"`table` given as a dict must map column names to columns (lists): column `{k}` "
                f"is {_describe(v)}"
            )
        tolist = getattr(v, "tolist", None)
        values.append(tolist() if callable(tolist) else list(v))
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        sizes = ", ".join(f"`{c}` {len(v)}" for c, v in zip(columns, values))
        raise ValueError(f"`table` columns must all have the same length: got {sizes}")
    rows = [list(r) for r in zip(*values)] if values else []
    return _unique(columns), rows


def _list_of_dicts(data: List[Any]) -> Tuple[List[str], List[List[Any]]]:
    columns: Dict[str, None] = {}
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise TypeError(f"`table` given as a list must hold dicts (one a row): item {i} is {_describe(row)}")
        for k in row:
            columns.setdefault(str(k), None)
    names = list(columns)
    rows = []
    for row in data:
        by_text = {str(k): v for k, v in row.items()}
        rows.append([by_text.get(c) for c in names])
    return names, rows
