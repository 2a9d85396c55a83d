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
    assert lines[0].startswith("id,short_id,name,experiment,status,start_time,end_time,source")
    assert "params.max_depth" in lines[0] and "metrics.accuracy" in lines[0]
    assert len(lines) == 2 and lines[1].startswith(runs[2])
    cols = lab_cli(project, "ls", "-e", "iris", "--columns", "max_depth,tags.team", "--sort", "max_depth")
    assert cols.returncode == 0, cols.stderr
    header, *rows = cols.stdout.splitlines()
    assert header.split()[-2:] == ["params.max_depth", "tags.team"]
    assert [r.split()[-2] for r in rows] == ["2", "4", "8"]


# Hostile queries: each gets a right answer or a `ValueError` (exit status 1
# from the command line) pointing at the bad part, never a crash.


def caret_at(text: str, column: int) -> bool:
    """Whether `text` has a caret line pointing at `column` of the query."""
    return any(line.startswith("  " + " " * column + "^") for line in text.splitlines())


def test_deep_nesting_is_a_value_error(runs: dict) -> None:
    for levels in (1_500, 10_000):
        with pytest.raises(ValueError, match="nests deeper than 100 levels") as e:
            lab.runs(where="(" * levels + "accuracy > 0.5" + ")" * levels)
        assert caret_at(str(e.value), 100)
    with pytest.raises(ValueError, match="nests deeper than 100 levels") as e:
        lab.runs(where="not " * 100_000 + "accuracy > 0.5")
    assert caret_at(str(e.value), 400)
    assert ids(lab.runs(where="(" * 100 + "accuracy > 0.95" + ")" * 100)) == [runs[3], runs[1]]


def test_long_chains_are_a_value_error_naming_the_limit(runs: dict) -> None:
    for op, term in [("and", "accuracy > 0.5"), ("or", "accuracy > 0.5"), ("and", "not accuracy > 0.5")]:
        with pytest.raises(ValueError, match="more than 1000 comparisons") as e:
            lab.runs(where=f" {op} ".join([term] * 100_000))
        assert "hint: to compare one name with many values, list them: `name in (1, 2, 3)`" in str(e.value)
    assert ids(lab.runs(where=" or ".join(["accuracy > 0.95"] * 1000))) == [runs[3], runs[1]]


def test_a_long_in_list_answers_right(runs: dict) -> None:
    values = ", ".join(str(n) for n in range(100, 100_100))
    assert ids(lab.runs(where=f"max_depth in ({values}, 4)")) == [runs[3], runs[1]]
    assert ids(lab.runs(where=f"max_depth not in ({values}, 4, 8)")) == [runs[5], runs[4], runs[0]]
    words = ", ".join(f"'w{n}'" for n in range(100_000))
    assert ids(lab.runs(where=f"optimizer in ({words}, 'sgd')")) == [runs[5], runs[4], runs[2]]


def test_a_huge_glob_is_a_value_error_naming_the_limit(runs: dict) -> None:
    with pytest.raises(ValueError, match="a glob pattern is at most 1000 bytes") as e:
        lab.runs(where="experiment ~ '" + "x" * 1_000_000 + "*'")
    assert caret_at(str(e.value), 13)
    # A substring has no such limit.
    assert lab.runs(where="experiment ~ '" + "x" * 1_000_000 + "'") == []


def test_a_bare_word_on_the_right_is_a_string(runs: dict) -> None:
    assert ids(lab.runs(where="status = failed")) == [runs[2]]
    assert ids(lab.runs(where="accuracy > 0.9 and status = finished")) == [runs[3], runs[1]]
    assert ids(lab.runs(where="experiment = iris and optimizer = sgd")) == [runs[2]]
    assert ids(lab.runs(where="tags.team = vision and accuracy > 0.95")) == [runs[3]]
    assert ids(lab.runs(where="status in (failed, crashed)")) == [runs[2]]
    # A word that names something is that name: `loss` is a metric.
    with pytest.raises(ValueError, match="`experiment` is text and `loss` is a metric") as e:
        lab.runs(where="experiment = loss")
    assert str(e.value).endswith("\n\nhint: strings take quotes ('loss')")


def test_a_bad_sort_key_says_so(runs: dict) -> None:
    with pytest.raises(ValueError) as e:
        lab.runs(sort=["accuracy", "-speed"])
    assert str(e.value).startswith("bad sort key: no run has a metric, parameter, tag or run field named `speed`")
    assert caret_at(str(e.value), 1)
    with pytest.raises(ValueError, match="^bad sort key: more than 100 sort keys"):
        lab.runs(sort=["accuracy"] * 1000)
    with pytest.raises(ValueError, match="^bad query: "):
        lab.runs(where="accuracy >", sort="-speed")


def test_the_command_line_refuses_hostile_queries_with_a_caret(runs: dict, project: Path) -> None:
    # One argument holds at most 128 KiB: these are the largest that fit.
    for query, message, column in [
        ("(" * 10_000 + "accuracy > 0.5" + ")" * 10_000, "nests deeper than 100 levels", 100),
        (" and ".join(["accuracy > 0.5"] * 5_000), "more than 1000 comparisons", 19_000),
        ("experiment ~ '" + "x" * 100_000 + "*'", "a glob pattern is at most 1000 bytes", 13),
    ]:
        bad = lab_cli(project, "ls", "--where", query)
        assert bad.returncode == 1, bad.stderr[:500]
        assert bad.stderr.startswith("error: bad query: "), bad.stderr[:500]
        assert message in bad.stderr, bad.stderr[:500]
        assert caret_at(bad.stderr, column), bad.stderr[-500:]
    # 40,000 values: more than SQLite's 32,766 variables, were each one.
    listed = lab_cli(project, "ls", "--where", f"max_depth in ({'1, ' * 40_000}4)", "--format", "json")
    assert listed.returncode == 0, listed.stderr[:500]
    import json

    assert [r["id"] for r in json.loads(listed.stdout)] == [runs[3], runs[1]]
    placeholder = lab_cli(project, "ls", "--where", "accuracy > 0.9 and status = finished", "--format", "json")
    assert placeholder.returncode == 0, placeholder.stderr
    assert [r["id"] for r in json.loads(placeholder.stdout)] == [runs[3], runs[1]]
    sort = lab_cli(project, "ls", "--sort", "-speed")
    assert sort.returncode == 1
    assert sort.stderr.startswith("error: bad sort key: no run has"), sort.stderr
    assert caret_at(sort.stderr, 1), sort.stderr
    column = lab_cli(project, "ls", "--columns", "accuracy,speed")
    assert column.returncode == 1
    assert column.stderr.startswith("error: bad column: no run has"), column.stderr
