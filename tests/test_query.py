"""The query language through `lab.runs(where=..., sort=...)` and `lab ls --where`."""

from __future__ import annotations

from pathlib import Path

import pytest

import lab
from conftest import lab_cli, wait_background
from lab.experiment import Experiment


@pytest.fixture
def runs(project: Path) -> dict:
    """Six runs over two experiments, with metrics, params and tags."""
    made = {}
    for i, (exp, acc, depth, status) in enumerate(
        [
            ("iris", 0.90, 2, "finished"),
            ("iris", 0.97, 4, "finished"),
            ("iris", 0.93, 8, "failed"),
            ("mnist", 0.99, 4, "finished"),
            ("mnist", float("nan"), 16, "finished"),
            ("mnist", None, 32, "finished"),
        ]
    ):
        e = Experiment(exp)
        try:
            with e.start_run():
                e.log_parameter("max_depth", depth)
                e.log_parameter("optimizer", "adam" if depth < 8 else "sgd")
                if acc is not None:
                    e.log_metric("accuracy", acc)
                e.log_metric("loss", 1.0 / (i + 1))
                e.set_tag("team", "vision" if exp == "mnist" else "tabular")
                if status == "failed":
                    raise RuntimeError("diverged")
        except RuntimeError:
            pass
        made[i] = e.run_id
    wait_background()
    return made


def ids(found: list) -> list:
    return [r.id for r in found]


def test_filter_by_metric_param_tag_and_field(runs: dict) -> None:
    assert ids(lab.runs(where="accuracy > 0.95")) == [runs[3], runs[1]]
    assert ids(lab.runs(where="max_depth >= 8 and optimizer = 'sgd'")) == [runs[5], runs[4], runs[2]]
    assert ids(lab.runs(where="tags.team = 'vision' and not accuracy < 0.5")) == [runs[5], runs[4], runs[3]]
    assert ids(lab.runs(where="status = 'failed'")) == [runs[2]]
    assert ids(lab.runs(where="experiment ~ 'mn*' and max_depth in (4, 16)")) == [runs[4], runs[3]]
    assert ids(lab.runs(where="experiment ~ 'NIS'")) == [runs[5], runs[4], runs[3]], "substring, any case"
    assert ids(lab.runs(where="status not in ('finished')")) == [runs[2]]
    assert ids(lab.runs(where="(accuracy > 0.95 or max_depth = 2) and experiment = 'iris'")) == [runs[1], runs[0]]


def test_missing_values_compare_false(runs: dict) -> None:
    # Run 5 never logged accuracy; run 4 logged NaN.
    assert runs[5] not in ids(lab.runs(where="accuracy < 2"))
    assert runs[5] in ids(lab.runs(where="not accuracy < 2"))
    assert ids(lab.runs(where="accuracy = null")) == [runs[5]]
    assert runs[5] not in ids(lab.runs(where="accuracy != null"))


def test_dates_and_durations(runs: dict) -> None:
    everything = lab.runs()
    assert len(lab.runs(where="start_time >= 2000-01-01")) == len(everything) == 6
    assert lab.runs(where="start_time < 2000-01-01T00:00:00Z") == []
    assert len(lab.runs(where="duration >= 0")) == 6


def test_sorting(runs: dict) -> None:
    assert ids(lab.runs(sort="-accuracy"))[:4] == [runs[3], runs[1], runs[2], runs[0]]
    # Runs lacking the key (and NaN, which the index keeps as missing) go last either way.
    assert set(ids(lab.runs(sort="accuracy"))[-2:]) == {runs[4], runs[5]}
    assert ids(lab.runs(sort=["optimizer", "-max_depth"])) == [runs[3], runs[1], runs[0], runs[5], runs[4], runs[2]]
    assert ids(lab.runs(sort="-accuracy", limit=2)) == [runs[3], runs[1]]
    assert ids(lab.runs(status=["failed", "crashed"])) == [runs[2]]
    assert ids(lab.runs("iris", where="max_depth > 2", sort="max_depth")) == [runs[1], runs[2]]


def test_bad_queries_point_at_the_problem(runs: dict) -> None:
    with pytest.raises(ValueError) as e:
        lab.runs(where="accuracy > and loss < 1")
    text = str(e.value)
    assert "expected a value after `>`" in text
    assert "  accuracy > and loss < 1\n             ^^^" in text
    with pytest.raises(ValueError, match="no run has a metric, parameter, tag or run field named `acuracy`") as e:
        lab.runs(where="acuracy > 0.5")
    assert "did you mean `accuracy`?" in str(e.value)
    with pytest.raises(ValueError, match="`accuracy` holds numbers; compare it with a number"):
        lab.runs(where="accuracy = 'high'")
    with pytest.raises(ValueError, match="no run has a metric, parameter, tag or run field named `speed`"):
        lab.runs(sort="-speed")
    with pytest.raises(ValueError, match="`status` must be one of"):
        lab.runs(status="done")
    with pytest.raises(TypeError, match="`sort` must be a string"):
        lab.runs(sort=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`limit` must be a non-negative integer"):
        lab.runs(limit=-1)


def test_ambiguous_names_ask_for_a_scope(project: Path) -> None:
    e = Experiment("ambiguous")
    with e.start_run():
        e.log_parameter("score", 1)
        e.log_metric("score", 0.5)
    wait_background()
    with pytest.raises(ValueError, match=r"`score` is ambiguous: write `metrics.score` or `params.score`"):
        lab.runs(where="score > 0")
    assert ids(lab.runs(where="metrics.score = 0.5 and params.score = 1")) == [e.run_id]


def test_the_command_line_uses_the_same_language(runs: dict, project: Path) -> None:
    ok = lab_cli(project, "ls", "--where", "accuracy > 0.95", "--sort", "-accuracy", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    import json

    assert [r["id"] for r in json.loads(ok.stdout)] == [runs[3], runs[1]]
    bad = lab_cli(project, "ls", "--where", "accuracy >> 1")
    assert bad.returncode == 1
    assert "bad query" in bad.stderr and "^" in bad.stderr
    csv = lab_cli(project, "ls", "--status", "failed", "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.splitlines()
    assert lines[0].startswith("id,short_id,experiment,status,start_time,end_time,source")
    assert "params.max_depth" in lines[0] and "metrics.accuracy" in lines[0]
    assert len(lines) == 2 and lines[1].startswith(runs[2])
    cols = lab_cli(project, "ls", "-e", "iris", "--columns", "max_depth,tags.team", "--sort", "max_depth")
    assert cols.returncode == 0, cols.stderr
    header, *rows = cols.stdout.splitlines()
    assert header.split()[-2:] == ["params.max_depth", "tags.team"]
    assert [r.split()[-2] for r in rows] == ["2", "4", "8"]
