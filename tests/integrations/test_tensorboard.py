"""TensorBoard event files, written by TensorBoard's own writer: their scalars
becoming metrics of a run that logs them as an artifact, and `lab import
tensorboard` of a log folder.

Scalars are written both ways TensorBoard knows: old-style `simple_value`s
(TF1, PyTorch's `SummaryWriter.add_scalar`) and one-number tensors of the
`scalars` plugin whose metadata only the first value of a tag carries (TF2's
`tf.summary.scalar`, Keras's `TensorBoard` callback).
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

import lab
from conftest import lab_cli, lab_env, wait_background
from lab.experiment import Experiment, LabWarning

T0 = 1_700_000_000.0


def simple(tag: str, step: int, value: float, wall: Optional[float] = None) -> Event:
    return Event(
        wall_time=T0 + step if wall is None else wall,
        step=step,
        summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]),
    )


def tensor(tag: str, step: int, value: float, first: bool, dtype=np.float32) -> Event:
    v = Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.array(value, dtype=dtype)))
    if first:
        v.metadata.CopyFrom(
            SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"), data_class=1)
        )
    return Event(wall_time=T0 + 0.5 + step, step=step, summary=Summary(value=[v]))


def write_events(folder: Path, events: List[Event]) -> Path:
    """Writes `events` with TensorBoard's own writer; returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    before = set(glob.glob(str(folder / "events.out.tfevents.*")))
    writer = EventFileWriter(str(folder))
    for e in events:
        writer.add_event(e)
    writer.close()
    [path] = set(glob.glob(str(folder / "events.out.tfevents.*"))) - before
    return Path(path)


def keras_like(logdir: Path, epochs: int = 4, shift: float = 0.0) -> Dict[str, List[Tuple[int, float]]]:
    """A log folder as Keras's TensorBoard callback writes it: `train/` with
    simple values, `validation/` with scalar tensors. Returns what it wrote."""
    train = [(s, float(np.float32(1.0 / (s + 1) + shift))) for s in range(epochs)]
    val = [(s, float(np.float32(0.5 + s / 10 + shift))) for s in range(epochs)]
    write_events(logdir / "train", [simple("epoch_loss", s, v) for s, v in train])
    write_events(logdir / "validation", [tensor("epoch_loss", s, v, s == 0) for s, v in val])
    return {"train/epoch_loss": train, "validation/epoch_loss": val}


def record_offsets(data: bytes) -> List[int]:
    """Where each TFRecord of an event file starts: u64 length, CRC, data, CRC."""
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        at += 16 + struct.unpack_from("<Q", data, at)[0]
    return offsets


def history(run: lab.Run, name: str) -> List[Tuple[int, float]]:
    return [(s, v) for s, _, v in run.metric_history(name)]


def end_with_warnings(e: Experiment, log) -> List[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with e.start_run():
            log(e)
    assert all(w.category is LabWarning for w in caught), [str(w.message) for w in caught]
    return [str(w.message) for w in caught]


# -- an artifact's event files ---------------------------------------------------


def test_an_artifacts_scalars_become_metrics_with_their_steps_and_times(project: Path) -> None:
    logdir = project / "logs"
    wrote = keras_like(logdir)
    write_events(logdir, [tensor("lr", 3, 0.125, True, np.float64), tensor("lr", 7, 0.0625, False, np.float64)])
    e = Experiment("tb")
    # Any warning fails the test (filterwarnings = error).
    with e.start_run():
        e.log_metric("acc", 0.9)
        e.log_artifact("tensorboard", str(logdir))
    wait_background()
    run = lab.get_run(e.run_id)
    assert run.status == "finished"
    for name, points in wrote.items():
        assert history(run, name) == points, name
    assert history(run, "lr") == [(3, 0.125), (7, 0.0625)]
    # Wall times are kept (as seconds, the way metric_history gives them).
    assert [t for _, t, _ in run.metric_history("train/epoch_loss")] == [T0 + s for s in range(4)]
    assert [t for _, t, _ in run.metric_history("validation/epoch_loss")] == [T0 + 0.5 + s for s in range(4)]
    assert set(run.metric_summaries) == {"acc", "train/epoch_loss", "validation/epoch_loss", "lr"}
    show = lab_cli(project, "show", e.run_id)
    assert show.returncode == 0, show.stderr
    for name in ("train/epoch_loss", "validation/epoch_loss", "lr", "acc"):
        assert name in show.stdout, show.stdout
    ls = lab_cli(project, "ls", "--format", "json")
    assert "validation/epoch_loss" in ls.stdout, ls.stdout
    # The web page's series, through the API it reads.
    series = web_metric(project, e.run_id, "validation/epoch_loss")
    assert (series["x"], series["y"]) == ([s for s, _ in wrote["validation/epoch_loss"]], [v for _, v in wrote["validation/epoch_loss"]])


def web_metric(project: Path, run_id: str, name: str) -> dict:
    """A metric's series as `lab ui` serves it to the web page."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "lab"), "ui", "--port", str(port)],
        cwd=project,
        env=lab_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/runs/{run_id}/metrics/{urllib.parse.quote(name, safe='')}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                return json.loads(urllib.request.urlopen(url, timeout=5).read())
            except urllib.error.URLError as e:
                if isinstance(e, urllib.error.HTTPError):
                    raise
                assert server.poll() is None and time.monotonic() < deadline, "lab ui did not start"
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_tag_the_run_already_logged_goes_under_tb(project: Path) -> None:
    logdir = project / "logs"
    write_events(logdir, [simple("loss", s, 10.0 + s) for s in range(3)])
    e = Experiment("tb")
    with e.start_run():
        for s in range(3):
            e.log_metric("loss", 0.5, step=s)
        e.log_artifact("tensorboard", str(logdir))
    wait_background()
    run = lab.get_run(e.run_id)
    assert history(run, "loss") == [(0, 0.5), (1, 0.5), (2, 0.5)]
    assert history(run, "tb/loss") == [(0, 10.0), (1, 11.0), (2, 12.0)]


def test_a_damaged_event_file_is_a_warning_naming_it_and_keeps_what_was_read(project: Path) -> None:
    logdir = project / "logs"
    good = write_events(logdir / "a", [simple("x", s, float(s)) for s in range(5)])
    cut = write_events(logdir / "b", [simple("y", s, float(s)) for s in range(5)])
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) - 10])  # the last record cut short
    flipped = write_events(logdir / "c", [simple("z", s, float(s)) for s in range(5)])
    data = bytearray(flipped.read_bytes())
    data[-20] ^= 0xFF  # inside the last record's data
    flipped.write_bytes(bytes(data))
    (logdir / "d").mkdir()
    (logdir / "d" / "events.out.tfevents.123.host").write_text("not an event file\n" * 3)
    e = Experiment("tb")
    said = end_with_warnings(e, lambda e: e.log_artifact("tensorboard", str(logdir)))
    wait_background()
    run = lab.get_run(e.run_id)
    assert run.status == "finished"
    assert history(run, "a/x") == [(s, float(s)) for s in range(5)]
    assert history(run, "b/y") == [(s, float(s)) for s in range(4)]
    assert history(run, "c/z") == [(s, float(s)) for s in range(4)]
    assert "d/" not in " ".join(run.metric_summaries)
    stored = Path(run.artifacts["tensorboard"])
    assert len(said) == 3, said
    text = "\n".join(said)
    assert f"the file ends inside the record at byte" in text
    assert str(stored / "b" / cut.name) in text
    assert "fails its checksum and was skipped" in text and str(stored / "c" / flipped.name) in text
    assert (
        "it is not a TensorBoard event file (its first bytes are not a TFRecord length and checksum): "
        + str(stored / "d" / "events.out.tfevents.123.host")
    ) in text
    assert all(s.startswith("artifact `tensorboard`: a TensorBoard event file was skipped or cut short: ") for s in said)
    assert good.exists()


def test_tags_lab_refuses_are_renamed_and_said_once(project: Path) -> None:
    logdir = project / "logs"
    write_events(logdir, [simple("bad\ttag", s, 1.0) for s in range(3)] + [simple("neg", -1, 1.0)])
    e = Experiment("tb")
    said = end_with_warnings(e, lambda e: e.log_artifact("tensorboard", str(logdir)))
    wait_background()
    run = lab.get_run(e.run_id)
    assert history(run, "bad_tag") == [(0, 1.0), (1, 1.0), (2, 1.0)]
    assert "neg" not in run.metric_summaries
    assert said == [
        "artifact `tensorboard`: 1 TensorBoard tag(s) are not valid Lab metric names and were renamed: \"bad\\ttag\" → `bad_tag`",
        "artifact `tensorboard`: 1 TensorBoard scalar(s) with a negative step were left out (Lab's steps start at 0)",
    ]


# -- lab import tensorboard ------------------------------------------------------


def imported_lines(stdout: str) -> List[str]:
    """The `imported ORIGIN as SHORT` lines, with the fingerprint and short id masked."""
    out = []
    for line in stdout.splitlines():
        if line.startswith("imported "):
            line = re.sub(r"@sha256:[0-9a-f]{64} as [0-9a-f]{8}$", "@sha256:… as …", line)
        out.append(line)
    return out


def test_import_makes_a_run_per_run_folder_with_full_histories(project: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    one = keras_like(logs / "run1", epochs=5)
    two = keras_like(logs / "run2", epochs=3, shift=1.0)
    done = lab_cli(project, "import", "tensorboard", str(logs))
    assert done.returncode == 0, done.stderr
    assert imported_lines(done.stdout) == [
        f"imported tensorboard:{logs / 'run1'}@sha256:… as …",
        f"imported tensorboard:{logs / 'run2'}@sha256:… as …",
        "Imported 2 run(s) (16 metric point(s)), replaced 0, skipped 0 already here, 0 failed",
    ]
    # The project is made, as a run makes it; nothing else is said.
    assert done.stderr == f"warning: {project} is now a Lab project; runs are kept in {project / '.lab'}\n"
    runs = {r.attrs["imported_from"].split("@")[0]: r for r in lab.runs()}
    assert set(runs) == {f"tensorboard:{logs / 'run1'}", f"tensorboard:{logs / 'run2'}"}
    for name, wrote in (("run1", one), ("run2", two)):
        run = runs[f"tensorboard:{logs / name}"]
        assert run.experiment == "logs"
        assert run.status == "finished"
        assert re.fullmatch(r"tensorboard:.*@sha256:[0-9a-f]{64}", run.attrs["imported_from"])
        for metric, points in wrote.items():
            assert history(run, metric) == points
        epochs = len(wrote["train/epoch_loss"])
        assert run.start_time.timestamp() == pytest.approx(T0)
        assert run.end_time.timestamp() == pytest.approx(T0 + 0.5 + epochs - 1)
    show = lab_cli(project, "show", runs[f"tensorboard:{logs / 'run1'}"].id)
    assert "validation/epoch_loss" in show.stdout and "finished" in show.stdout, show.stdout

    # Again: nothing new.
    again = lab_cli(project, "import", "tensorboard", str(logs))
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert again.stdout == "Imported 0 run(s) (0 metric point(s)), replaced 0, skipped 2 already here, 0 failed\n"
    assert len(lab.runs()) == 2

    # A new run folder, and one whose training went on: those are imported.
    keras_like(logs / "run3", epochs=2)
    write_events(logs / "run2" / "train", [simple("epoch_loss", 3, 0.1)])
    third = lab_cli(project, "import", "tensorboard", str(logs), "--experiment", "mnist")
    assert imported_lines(third.stdout) == [
        f"imported tensorboard:{logs / 'run2'}@sha256:… as …",
        f"imported tensorboard:{logs / 'run3'}@sha256:… as …",
        "Imported 2 run(s) (11 metric point(s)), replaced 0, skipped 1 already here, 0 failed",
    ]
    assert sorted(r.experiment for r in lab.runs()) == ["logs", "logs", "mnist", "mnist"]


def test_import_of_files_at_the_top_of_the_folder_makes_one_run(project: Path, tmp_path: Path) -> None:
    logs = tmp_path / "mylogs"
    write_events(logs, [simple("loss", s, 1.0 / (s + 1)) for s in range(3)])
    # A relative path, with `..` in it, is recorded as the folder it names.
    done = lab_cli(project, "import", "tensorboard", "../mylogs")
    assert done.returncode == 0, done.stderr
    assert imported_lines(done.stdout)[0] == f"imported tensorboard:{logs}@sha256:… as …"
    [run] = lab.runs()
    assert run.experiment == "mylogs"
    assert history(run, "loss") == [(0, 1.0), (1, 0.5), (2, float(np.float32(1 / 3)))]


def test_import_warns_about_damaged_files_and_imports_what_was_read(project: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    f = write_events(logs / "run1", [simple("loss", s, float(s)) for s in range(4)])
    data = f.read_bytes()
    last = record_offsets(data)[-1]
    f.write_bytes(data[:-3])
    (logs / "run2").mkdir()
    (logs / "run2" / "events.out.tfevents.1.host").write_bytes(b"\0" * 7)
    (logs / "run3").mkdir()
    (logs / "run3" / "events.out.tfevents.1.host").write_text("hello, this is text\n")
    done = lab_cli(project, "import", "tensorboard", str(logs))
    # Runs without a scalar could not be imported: the import says so, and fails.
    assert done.returncode == 1, done.stderr
    assert imported_lines(done.stdout) == [
        f"imported tensorboard:{logs / 'run1'}@sha256:… as …",
        "Imported 1 run(s) (3 metric point(s)), replaced 0, skipped 0 already here, 2 failed",
    ]
    err = done.stderr
    assert (
        f"warning: TensorBoard run `run1`: the file ends inside the record at byte {last} (cut short while written?); "
        f"its other scalars were kept: {f}\n"
    ) in err, err
    assert (
        "warning: TensorBoard run `run2` was not imported: its event files hold no scalars "
        "(a TensorBoard event file was skipped or cut short: the file ends inside the record at byte 0 "
        f"(cut short while written?); its other scalars were kept: {logs / 'run2' / 'events.out.tfevents.1.host'}): "
        f"{logs / 'run2'}\n"
    ) in err, err
    assert (
        "warning: TensorBoard run `run3` was not imported: its event files hold no scalars "
        "(a TensorBoard event file was skipped or cut short: it is not a TensorBoard event file "
        "(its first bytes are not a TFRecord length and checksum): "
        f"{logs / 'run3' / 'events.out.tfevents.1.host'}): {logs / 'run3'}\n"
    ) in err, err
    [run] = lab.runs()
    assert history(run, "loss") == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_import_counts_renamed_tags_and_negative_steps(project: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_events(logs / "a", [simple("bad\ttag", s, 1.0) for s in range(3)] + [simple("neg", -1, 1.0), simple("ok", 0, 2.0)])
    done = lab_cli(project, "import", "tensorboard", str(logs), "--experiment", "e")
    assert done.returncode == 0, done.stderr
    assert "warning: left out: 1 names Lab refuses, renamed; 1 metric points with a negative step\n" in done.stderr
    [run] = lab.runs()
    assert history(run, "bad_tag") == [(0, 1.0), (1, 1.0), (2, 1.0)]
    assert set(run.metric_summaries) == {"bad_tag", "ok"}


def test_import_refuses_what_is_not_a_log_folder(project: Path, tmp_path: Path) -> None:
    missing = lab_cli(project, "import", "tensorboard", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert "error: `lab import tensorboard` needs a TensorBoard log folder, and this cannot be read" in missing.stderr
    assert str(tmp_path / "nope") in missing.stderr
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("x")
    none = lab_cli(project, "import", "tensorboard", str(empty))
    assert none.returncode == 1
    assert none.stderr.strip() == (
        f"error: no TensorBoard event files (`events.out.tfevents.*`) in this folder or below it: {empty}"
    )
    logs = tmp_path / "logs"
    write_events(logs / "run1", [simple("loss", 0, 1.0)])
    bad = lab_cli(project, "import", "tensorboard", str(logs), "--experiment", "a\nb")
    assert bad.returncode == 1
    assert "error: `--experiment` must not contain control characters" in bad.stderr, bad.stderr
    assert not (project / ".lab" / "runs").exists() or not os.listdir(project / ".lab" / "runs")
