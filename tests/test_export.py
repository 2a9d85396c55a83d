"""`lab export`: every format, read back by the tools people use."""

from __future__ import annotations

import json
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
