"""`lab export`: every format, read back by the tools people use."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from conftest import lab_cli, wait_background
import lab
from lab.experiment import Experiment


def make_runs() -> list:
    ids = []
    for lr, opt in ((0.1, "adam"), (0.01, "sgd")):
        e = Experiment("export")
        with e.start_run():
            e.log_parameter("lr", lr)
            e.log_parameter("optimizer", opt)
            e.log_metric("acc", lr * 5)
            e.log_metric("loss", float("nan"))
            e.set_tag("team", "vision")
        ids.append(e.run_id)
    wait_background()
    return ids


def test_parquet_has_typed_columns(project: Path) -> None:
    first, second = make_runs()
    out = project / "runs.parquet"
    proc = lab_cli(project, "export", "--sort", "lr", "--format", "parquet", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [second, first], "sorted by lr"
    assert rows[0]["params.lr"] == 0.01 and rows[0]["params.optimizer"] == "sgd"
    assert rows[1]["metrics.acc"] == 0.5
    assert rows[0]["status"] == "finished"
    assert rows[1]["name"] == lab.get_run(first).name, "each run's name"
    schema = table.schema
    assert str(schema.field("params.lr").type) == "double"
    assert str(schema.field("params.optimizer").type) == "string"
    assert str(schema.field("start_time").type) == "timestamp[ns, tz=UTC]"
    assert rows[0]["start_time"].year >= 2024
    # NaN stays NaN; the index keeps a NaN last value as such.
    assert rows[0]["metrics.loss"] != rows[0]["metrics.loss"]


def test_csv_and_json_match_lab_ls(project: Path) -> None:
    make_runs()
    for fmt in ("csv", "json"):
        out = project / f"runs.{fmt}"
        proc = lab_cli(project, "export", "--where", "optimizer = 'adam'", "--format", fmt, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        listed = lab_cli(project, "ls", "--where", "optimizer = 'adam'", "--format", fmt)
        assert out.read_text() == listed.stdout
    assert json.loads((project / "runs.json").read_text())[0]["params"]["optimizer"] == "adam"


def make_typed_runs() -> list:
    """Three runs whose parameters are all integers, all booleans, integers
    and floats, integers and text, and missing in one run; and whose metrics
    are NaN and infinite."""
    ids = []
    values = (
        (1, True, 1, 1, float("nan"), float("inf")),
        (2**53 + 1, False, 0.5, "two", float("-inf"), 1.0),
        (None, None, None, None, 0.25, None),
    )
    for count, flag, mixed, word, loss, gain in values:
        e = Experiment("typed")
        with e.start_run():
            if count is not None:
                e.log_parameter("count", count)
                e.log_parameter("flag", flag)
                e.log_parameter("mixed", mixed)
                e.log_parameter("word", word)
            e.log_metric("loss", loss)
            if gain is not None:
                e.log_metric("gain", gain)
        ids.append(e.run_id)
    wait_background()
    return ids


def test_parquet_keeps_integer_and_boolean_parameters(project: Path) -> None:
    first, second, third = make_typed_runs()
    out = project / "runs.parquet"
    proc = lab_cli(project, "export", "--format", "parquet", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    schema = table.schema
    assert str(schema.field("params.count").type) == "int64"
    assert str(schema.field("params.flag").type) == "bool"
    assert str(schema.field("params.mixed").type) == "double"
    assert str(schema.field("params.word").type) == "string"
    assert str(schema.field("short_id").type) == "string"
    rows = {r["id"]: r for r in table.to_pylist()}
    # 2**53 + 1 has no exact double: an integer column keeps it.
    assert rows[second]["params.count"] == 2**53 + 1
    assert rows[first]["params.flag"] is True and rows[second]["params.flag"] is False
    assert rows[second]["params.mixed"] == 0.5 and rows[first]["params.mixed"] == 1.0
    assert rows[first]["params.word"] == "1" and rows[second]["params.word"] == "two"
    assert rows[third]["params.count"] is None and rows[third]["params.flag"] is None
    assert rows[first]["short_id"] == first[:8]
    assert math.isnan(rows[first]["metrics.loss"])
    assert rows[second]["metrics.loss"] == float("-inf") and rows[first]["metrics.gain"] == float("inf")
    assert table.column_names[:8] == ["id", "short_id", "name", "experiment", "status", "start_time", "end_time", "source"]


def test_csv_reads_back_with_pandas_like_the_data_frame(project: Path) -> None:
    import pandas as pd

    import lab

    first, second, third = make_typed_runs()
    out = project / "runs.csv"
    proc = lab_cli(project, "export", "--format", "csv", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    # NaN and infinities are spelled as Python's float() and str() spell them.
    assert ",nan," in text and ",inf" in text and ",-inf," in text, text
    assert "NaN" not in text and "Infinity" not in text, text
    # A short id such as `0e629687` reads as a number in scientific notation
    # unless pandas is told the ids are text.
    csv = pd.read_csv(out, dtype={"id": str, "short_id": str})
    frame = lab.runs(as_frame=True)
    # The same first columns as the DataFrame, in the same order.
    assert list(csv.columns[:8]) == list(frame.columns[:8]) == [
        "id", "short_id", "name", "experiment", "status", "start_time", "end_time", "source",
    ]
    assert sorted(csv.columns) == sorted(frame.columns)
    csv = csv.set_index("id")
    assert csv.loc[first, "short_id"] == first[:8]
    assert csv.loc[first, "name"] == lab.get_run(first).name
    for name in ("metrics.loss", "metrics.gain"):
        assert csv[name].dtype == "float64", (name, csv[name].dtype)
    assert math.isnan(csv.loc[first, "metrics.loss"])
    assert csv.loc[second, "metrics.loss"] == float("-inf")
    assert csv.loc[first, "metrics.gain"] == float("inf")
    assert csv.loc[third, "metrics.loss"] == 0.25
    assert math.isnan(csv.loc[third, "metrics.gain"]), "a missing metric is an empty cell"
    frame = frame.set_index("id")
    for run in (first, second, third):
        for name in ("metrics.loss", "metrics.gain"):
            a, b = csv.loc[run, name], frame.loc[run, name]
            assert (math.isnan(a) and math.isnan(b)) or a == b, (run, name, a, b)
    # `lab ls --format csv` is the same writer.
    assert lab_cli(project, "ls", "--format", "csv").stdout == text


def test_format_follows_the_file_name(project: Path) -> None:
    make_runs()
    for name in ("runs.csv", "RUNS.CSV"):
        proc = lab_cli(project, "export", "-o", name)
        assert proc.returncode == 0, proc.stderr
        assert (project / name).read_text().startswith("id,short_id,name,experiment,")
    proc = lab_cli(project, "export", "-o", "runs.json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((project / "runs.json").read_text())) == 2
    for name in ("runs.parquet", "runs.pq"):
        proc = lab_cli(project, "export", "-o", name)
        assert proc.returncode == 0, proc.stderr
        assert pq.read_table(project / name).num_rows == 2


def test_format_that_cannot_be_told_is_refused(project: Path) -> None:
    make_runs()
    for name in ("runs.txt", "runs"):
        proc = lab_cli(project, "export", "-o", name)
        assert proc.returncode == 2, proc.stderr
        assert f"cannot tell the format from the file name `{name}`" in proc.stderr
        assert "`.csv`, `.json`, `.parquet` or `.pq`, or `--format csv|json|parquet`" in proc.stderr
        assert not (project / name).exists()
    stdout = lab_cli(project, "export", "-o", "-")
    assert stdout.returncode == 2 and "`-o -` (standard output) needs `--format csv|json|parquet`" in stdout.stderr
    # `--format` wins: over an unknown extension silently, over a known one
    # with a warning.
    proc = lab_cli(project, "export", "--format", "json", "-o", "runs.txt")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(json.loads((project / "runs.txt").read_text())) == 2
    proc = lab_cli(project, "export", "--format", "csv", "-o", "runs.json")
    assert proc.returncode == 0, proc.stderr
    assert "warning: writing CSV as `--format csv` says, though the file name ends in `.json`" in proc.stderr
    assert (project / "runs.json").read_text().startswith("id,")


def test_export_to_standard_output(project: Path) -> None:
    make_runs()
    for fmt in ("csv", "json"):
        proc = lab_cli(project, "export", "--format", fmt, "-o", "-")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == lab_cli(project, "ls", "--format", fmt).stdout
    assert not (project / "-").exists()
    exe = Path(sys.executable).parent / "lab"
    binary = subprocess.run([str(exe), "export", "--format", "parquet", "-o", "-"], cwd=project, capture_output=True)
    assert binary.returncode == 0, binary.stderr
    assert pq.read_table(io.BytesIO(binary.stdout)).num_rows == 2


def test_binary_output_is_refused_on_a_terminal(project: Path) -> None:
    import os
    import pty

    make_runs()
    exe = Path(sys.executable).parent / "lab"
    for args in (["export", "--format", "parquet", "-o", "-"], ["show", "--graph", "-", "--graph-format", "png"]):
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run([str(exe), *args], cwd=project, stdout=follower, stderr=subprocess.PIPE, text=True, timeout=60)
        finally:
            os.close(follower)
        os.close(leader)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "is binary and standard output is a terminal" in proc.stderr, proc.stderr
