"""`lab export`: every format, read back by the tools people use."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from conftest import lab_cli, wait_background
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


def test_format_follows_the_file_name(project: Path) -> None:
    make_runs()
    for name in ("runs.csv", "RUNS.CSV"):
        proc = lab_cli(project, "export", "-o", name)
        assert proc.returncode == 0, proc.stderr
        assert (project / name).read_text().startswith("id,")
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
