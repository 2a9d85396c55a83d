"""Media a run logs: `e.log_image` (numpy arrays, Pillow images, matplotlib
figures, PNG bytes), `e.log_figure` and `e.log_table`, what lands in the run's
folder, and bad input refused at the call with the run going on."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import lab
from conftest import wait_background


def media_dir(e: lab.Experiment) -> Path:
    return Path(".lab") / "runs" / e.run_id[:8] / "media"


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_numpy_arrays_of_each_shape_and_dtype(project):
    e = lab.Experiment("media")
    grey = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20).astype(np.uint8)
    rgb = np.zeros((5, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    rgba = np.full((2, 3, 4), 128, dtype=np.uint8)
    floats = np.linspace(0, 1, 8, dtype=np.float64).reshape(2, 4)
    ints = np.array([[0, 255], [10, 20]], dtype=np.int64)
    with e.start_run():
        dirs = media_dir(e)
        e.log_image("grey", grey)
        e.log_image("grey1", grey[..., None])
        e.log_image("rgb", rgb)
        e.log_image("rgba", rgba)
        e.log_image("floats", floats)
        e.log_image("floats32", floats.astype(np.float32))
        e.log_image("half", floats.astype(np.float16))
        e.log_image("ints", ints)
        e.log_image("bools", np.eye(3, dtype=bool))
        e.log_image("fortran", np.asfortranarray(rgb))
        e.log_image("bigendian", floats.astype(">f8"))
        e.log_image("list", [[0, 255], [255, 0]])
    assert (pixels(dirs / "grey" / "0.png") == grey).all()
    assert (pixels(dirs / "grey1" / "0.png") == grey).all()
    assert (pixels(dirs / "rgb" / "0.png") == rgb).all()
    assert (pixels(dirs / "rgba" / "0.png") == rgba).all()
    scaled = np.round(floats * 255).astype(np.uint8)
    assert (pixels(dirs / "floats" / "0.png") == scaled).all()
    assert (pixels(dirs / "floats32" / "0.png") == scaled).all()
    assert (pixels(dirs / "bigendian" / "0.png") == scaled).all()
    assert np.abs(pixels(dirs / "half" / "0.png").astype(int) - scaled).max() <= 1
    assert (pixels(dirs / "ints" / "0.png") == ints).all()
    assert (pixels(dirs / "bools" / "0.png") == np.eye(3) * 255).all()
    assert (pixels(dirs / "fortran" / "0.png") == rgb).all()
    assert (pixels(dirs / "list" / "0.png") == [[0, 255], [255, 0]]).all()


def test_steps_count_per_key_and_a_step_again_replaces(project):
    e = lab.Experiment("media")
    with e.start_run():
        dirs = media_dir(e)
        for i in range(3):
            e.log_image("samples", np.full((2, 2), i * 50, dtype=np.uint8))
        e.log_image("other", np.zeros((2, 2), dtype=np.uint8), step=10)
        e.log_image("other", np.zeros((2, 2), dtype=np.uint8))
        e.log_image("samples", np.full((2, 2), 7, dtype=np.uint8), step=1)
        e.log_image("samples", np.full((2, 2), 9, dtype=np.uint8), step=np.int64(40))
    assert sorted(p.name for p in (dirs / "samples").iterdir()) == ["0.png", "1.png", "2.png", "40.png"]
    assert sorted(p.name for p in (dirs / "other").iterdir()) == ["10.png", "11.png"]
    assert (pixels(dirs / "samples" / "1.png") == 7).all()
    assert (pixels(dirs / "samples" / "2.png") == 100).all()


def test_pillow_images_of_every_mode(project):
    e = lab.Experiment("media")
    rgb = Image.new("RGB", (7, 3), (10, 20, 30))
    with e.start_run():
        dirs = media_dir(e)
        e.log_image("rgb", rgb)
        e.log_image("rgba", Image.new("RGBA", (2, 2), (1, 2, 3, 4)))
        e.log_image("grey", Image.new("L", (2, 2), 99))
        e.log_image("bits", Image.new("1", (2, 2), 1))
        e.log_image("palette", rgb.convert("P"))
        e.log_image("cmyk", Image.new("CMYK", (2, 2), (0, 0, 0, 0)))
        with pytest.raises(ValueError, match=r"8-bit channels.*mode `F`"):
            e.log_image("float", Image.new("F", (2, 2), 0.5))
    with Image.open(dirs / "rgb" / "0.png") as im:
        assert im.size == (7, 3) and im.mode == "RGB" and im.getpixel((0, 0)) == (10, 20, 30)
    with Image.open(dirs / "rgba" / "0.png") as im:
        assert im.mode == "RGBA" and im.getpixel((1, 1)) == (1, 2, 3, 4)
    assert (pixels(dirs / "grey" / "0.png") == 99).all()
    assert (pixels(dirs / "bits" / "0.png") == 255).all()
    with Image.open(dirs / "palette" / "0.png") as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[:3] == rgb.convert("P").convert("RGB").getpixel((0, 0))
    with Image.open(dirs / "cmyk" / "0.png") as im:
        assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)
    assert not (dirs / "float").exists()


def test_matplotlib_figures_and_png_bytes(project):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 255, 0)).save(buf, format="PNG")
    e = lab.Experiment("media")
    with e.start_run():
        dirs = media_dir(e)
        e.log_figure("curve", fig)
        e.log_image("curve", fig)
        e.log_image("png", buf.getvalue())
        with pytest.raises(TypeError, match="`figure` must be a matplotlib figure: got list"):
            e.log_figure("curve", [1, 2])
        with pytest.raises(ValueError, match="must be a whole PNG image"):
            e.log_image("png", buf.getvalue()[:-30])
        with pytest.raises(TypeError, match="no PNG"):
            e.log_image("png", b"GIF89a...")
    plt.close(fig)
    for step in (0, 1):
        with Image.open(dirs / "curve" / f"{step}.png") as im:
            assert im.size == (150, 100)
    with Image.open(dirs / "png" / "0.png") as im:
        assert im.getpixel((0, 0)) == (0, 255, 0)
    assert sorted(p.name for p in (dirs / "png").iterdir()) == ["0.png"]


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((2, 2, 2), np.uint8), ValueError, r"shape \(height, width\).*got shape \(2, 2, 2\)"),
        (np.zeros((2,), np.uint8), ValueError, r"got shape \(2,\)"),
        (np.zeros((0, 3), np.uint8), ValueError, "at least one pixel"),
        (np.full((2, 2), np.nan), ValueError, "floats from 0 to 1 .*got NaN at row 0, column 0"),
        (np.array([[0.0, np.inf]]), ValueError, "got inf at row 0, column 1"),
        (np.array([[0.5, 1.5]]), ValueError, "got 1.5 at row 0, column 1"),
        (np.array([[3, -1]], np.int16), ValueError, "integers from 0 to 255.*got -1 at row 0, column 1"),
        (np.array([[300]], np.uint16), ValueError, "got 300 at row 0, column 0"),
        (np.zeros((2, 2), np.complex64), TypeError, "dtype `complex64`"),
        (np.array([["a"]]), TypeError, "dtype `<U1`"),
        (np.zeros((16385, 1), np.uint8), ValueError, "at most 16384 pixels wide and tall"),
        (np.zeros((8192, 4097), bool), ValueError, "at most 33554432 pixels"),
        ("picture.png", TypeError, "got str 'picture.png'"),
        (None, TypeError, "got NoneType None"),
        ({"a": 1}, TypeError, "got dict"),
    ],
)
def test_bad_images_are_refused_and_the_run_goes_on(project, image, error, message):
    e = lab.Experiment("media")
    with e.start_run():
        with pytest.raises(error, match=message):
            e.log_image("bad", image)
        e.log_image("good", np.zeros((1, 1), np.uint8))
        dirs = media_dir(e)
    assert not (dirs / "bad").exists()
    assert (dirs / "good" / "0.png").exists()
    assert lab.get_run(e.run_id).status == "finished"


@pytest.mark.parametrize(
    ("key", "step", "error", "message"),
    [
        ("a/b", None, ValueError, "`key` must not contain `/`"),
        ("..", None, ValueError, "`key` must not contain `..`"),
        (".hidden", None, ValueError, "must not start with `.`"),
        ("", None, ValueError, "`key` must not be empty"),
        (3, None, TypeError, "`key`"),
        ("ok", -1, ValueError, "`step` must be a non-negative integer: got -1"),
        ("ok", 1.5, TypeError, "`step` must be a non-negative integer or None: got float 1.5"),
    ],
)
def test_bad_keys_and_steps(project, key, step, error, message):
    e = lab.Experiment("media")
    with e.start_run():
        with pytest.raises(error, match=message):
            e.log_image(key, np.zeros((1, 1), np.uint8), step=step)
        with pytest.raises(error, match=message):
            e.log_table(key, {"a": [1]}, step=step)
        dirs = media_dir(e)
    assert not dirs.exists() or list(dirs.iterdir()) == []


def test_a_huge_image_is_encoded_off_the_gil_and_kept_whole(project):
    e = lab.Experiment("media")
    big = (np.arange(4096 * 4096, dtype=np.uint32) % 251).astype(np.uint8).reshape(4096, 4096)
    with e.start_run():
        e.log_image("big", big)
        dirs = media_dir(e)
    assert (pixels(dirs / "big" / "0.png") == big).all()


def table(path: Path) -> dict:
    return json.loads(path.read_text())


def test_tables_from_every_kind_of_input(project):
    frame = pd.DataFrame({"name": ["a", "b"], "score": [0.5, np.nan], "n": np.array([1, 2], dtype=np.int64)})
    indexed = frame.set_index("name")
    e = lab.Experiment("media")
    with e.start_run():
        dirs = media_dir(e)
        e.log_table("frame", frame)
        e.log_table("indexed", indexed)
        e.log_table("dicts", [{"a": 1, "b": "x"}, {"a": 2, "c": None}])
        e.log_table("columns", {"x": [1, 2, 3], "y": np.array([0.1, 0.2, float("inf")])})
        e.log_table("empty", {"x": []})
        e.log_table("frame", frame.head(1), step=5)
    assert table(dirs / "frame" / "0.json") == {"columns": ["name", "score", "n"], "rows": [["a", 0.5, 1], ["b", "NaN", 2]]}
    assert table(dirs / "indexed" / "0.json") == {"columns": ["name", "score", "n"], "rows": [["a", 0.5, 1], ["b", "NaN", 2]]}
    assert table(dirs / "dicts" / "0.json") == {"columns": ["a", "b", "c"], "rows": [[1, "x", None], [2, None, None]]}
    assert table(dirs / "columns" / "0.json") == {"columns": ["x", "y"], "rows": [[1, 0.1], [2, 0.2], [3, "Infinity"]]}
    assert table(dirs / "empty" / "0.json") == {"columns": ["x"], "rows": []}
    assert table(dirs / "frame" / "5.json")["rows"] == [["a", 0.5, 1]]


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"x": [1, 2], "y": [1]}, ValueError, "same length: got `x` 2, `y` 1"),
        ({"x": 3}, TypeError, "column `x` is int 3"),
        ([{"a": 1}, 5], TypeError, "item 1 is int 5"),
        ([], ValueError, "at least one column"),
        ("a,b\n1,2", TypeError, "must be a pandas or polars DataFrame"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), ValueError, "name a column twice: got `a` twice"),
        ({"x": list(range(1_000_001))}, ValueError, "at most 1000000 cells: got 1000001 rows x 1 columns"),
    ],
)
def test_bad_tables_are_refused(project, data, error, message):
    e = lab.Experiment("media")
    with e.start_run():
        with pytest.raises(error, match=message):
            e.log_table("bad", data)
        dirs = media_dir(e)
    assert not (dirs / "bad").exists()


def test_media_after_the_run_ended_raise(project):
    e = lab.Experiment("media")
    with e.start_run():
        pass
    with pytest.raises(lab.RunEndedError, match="has already ended"):
        e.log_image("late", np.zeros((1, 1), np.uint8))
    with pytest.raises(lab.RunEndedError, match="has already ended"):
        e.log_table("late", {"a": [1]})


def test_import_lab_imports_no_media_library(project):
    code = "import sys, lab; print(sorted(m for m in ('numpy', 'PIL', 'matplotlib', 'pandas', 'polars') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_crash_keeps_every_image_logged_before_it(project):
    # Each image is acknowledged (its step printed) once its file and record
    # are written: a `kill -9` after that loses neither.
    script = project / "crash.py"
    script.write_text(
        "import os, signal, sys, numpy as np, lab\n"
        "ack = open('ack.txt', 'w')\n"
        "e = lab.Experiment('crash')\n"
        "with e.start_run():\n"
        "    print(e.run_id, file=ack, flush=True)\n"
        "    for step in range(5):\n"
        "        e.log_image('frames', np.full((8, 8), step * 40, np.uint8))\n"
        "        print(step, file=ack, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    run_id, *steps = (project / "ack.txt").read_text().split()
    assert steps == ["0", "1", "2", "3", "4"]
    wait_background()
    dirs = Path(".lab") / "runs" / run_id[:8] / "media" / "frames"
    assert sorted(p.name for p in dirs.iterdir() if not p.name.startswith(".")) == [f"{s}.png" for s in range(5)]
    for s in range(5):
        assert (pixels(dirs / f"{s}.png") == s * 40).all()
    assert lab.get_run(run_id).status == "crashed"
    from test_ui_browser import get_json, lab_ui

    with lab_ui(project) as base:
        media = get_json(f"{base}/api/v1/runs/{run_id}/media")["media"]
    assert [(k["key"], k["kind"], [i["step"] for i in k["items"]]) for k in media] == [("frames", "image", [0, 1, 2, 3, 4])]


def test_a_key_holds_one_kind_of_media(project):
    e = lab.Experiment("media")
    with e.start_run():
        e.log_image("samples", np.zeros((1, 1), np.uint8))
        with pytest.raises(ValueError, match="`key` holds images already: log the table under another key"):
            e.log_table("samples", {"a": [1]})
        e.log_table("preds", {"a": [1]})
        with pytest.raises(ValueError, match="`key` holds tables already: log the image under another key"):
            e.log_image("preds", np.zeros((1, 1), np.uint8))
        dirs = media_dir(e)
    assert sorted(p.name for p in (dirs / "samples").iterdir()) == ["0.png"]
    assert sorted(p.name for p in (dirs / "preds").iterdir()) == ["0.json"]


def test_threads_logging_one_key_each_get_a_step_and_a_whole_file(project):
    import threading

    e = lab.Experiment("media")
    errors: list = []

    def log(value: int) -> None:
        try:
            for _ in range(10):
                e.log_image("frames", np.full((16, 16), value, np.uint8))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    with e.start_run():
        threads = [threading.Thread(target=log, args=(v * 30,)) for v in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dirs = media_dir(e) / "frames"
    assert errors == []
    names = sorted((p.name for p in dirs.iterdir()), key=lambda n: int(n.split(".")[0]))
    assert names == [f"{s}.png" for s in range(80)]
    counts: dict = {}
    for name in names:
        values = np.unique(pixels(dirs / name))
        assert len(values) == 1
        counts[int(values[0])] = counts.get(int(values[0]), 0) + 1
    assert counts == {v * 30: 10 for v in range(8)}


FILL_THEN_LOG = """
import os
import numpy as np
from lab.experiment import Experiment
from lab.errors import StorageError

e = Experiment("full")
with e.start_run():
    # Take the disk but for about 2 MB, then log an image that needs more.
    with open(os.environ["FILLER"], "wb") as f:
        f.write(b"x" * (os.statvfs(os.environ["FILLER"]).f_bavail * os.statvfs(os.environ["FILLER"]).f_frsize - (2 << 20)))
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    try:
        e.log_image("noise", noise)
    except StorageError as err:
        print("refused:", err, flush=True)
    e.log_image("small", np.zeros((4, 4), np.uint8))
    print("run", e.run_id, flush=True)
"""


def test_a_full_disk_refuses_an_image_and_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import run_python

    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        project = mount / "project"
        project.mkdir()
        monkeypatch.setenv("LAB_PROJECT", str(project))
        monkeypatch.setenv("FILLER", str(mount / "filler"))
        proc = run_python(project, FILL_THEN_LOG, check=True)
        refused = next(line for line in proc.stdout.splitlines() if line.startswith("refused:"))
        assert "No space left on device" in refused, refused
        run_id = next(line for line in proc.stdout.splitlines() if line.startswith("run ")).split()[1]
        media = project / ".lab" / "runs" / run_id[:8] / "media"
        assert not (media / "noise").exists() or list((media / "noise").iterdir()) == [], "no partial or temporary file is left"
        assert [p.name for p in (media / "small").iterdir()] == ["0.png"]
        assert lab.get_run(run_id).status == "finished"
    finally:
        subprocess.run(["umount", str(mount)], check=False)
