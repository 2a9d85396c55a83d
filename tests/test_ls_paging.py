"""Keyset paging of `lab ls`: `--limit` with `--after` the cursor the page
before printed lists every run once, in the listing's order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import lab_cli, wait_background
from lab.experiment import Experiment

SORTS = [[], ["--sort", "acc"], ["--sort", "-acc"], ["--sort", "-start_time"], ["--sort", "params.lr", "--sort", "-acc"], ["acc"]]  # fmt: skip
NEXT = re.compile(r"^more runs: the next page is `--after (\S+)`$", re.M)


def make_runs() -> None:
    """20 runs with many ties on `acc` and on `params.lr`, some without `acc`."""
    e = Experiment("paging")
    for i in range(20):
        with e.start_run():
            e.log_parameter("lr", i % 3)
            if i % 5:
                e.log_metric("acc", (i % 4) / 4)
    wait_background()


def ids(stdout: str) -> list[str]:
    return [r["id"] for r in json.loads(stdout)]


@pytest.mark.parametrize("sort", SORTS, ids=lambda s: " ".join(s) or "newest")
def test_following_the_cursors_lists_every_run_once_in_order(project: Path, sort: list) -> None:
    make_runs()
    whole = lab_cli(project, "ls", *sort, "--format", "json")
    assert whole.returncode == 0, whole.stderr
    want = ids(whole.stdout)
    assert len(want) == 20
    assert not NEXT.search(whole.stderr)
    got: list[str] = []
    after: list[str] = []
    for _ in range(10):
        page = lab_cli(project, "ls", *sort, "--limit", "3", "--format", "json", *after)
        assert page.returncode == 0, page.stderr
        got += ids(page.stdout)
        found = NEXT.search(page.stderr)
        if not found:
            break
        after = ["--after", found.group(1)]
    assert got == want
    # The table prints the same line.
    table = lab_cli(project, "ls", *sort, "--limit", "3")
    assert table.returncode == 0 and NEXT.search(table.stderr), table.stderr


def assert_refuses_after(proc, cursor: str) -> None:
    """`lab ls` refused `--after CURSOR` in its own words: the option, the
    value (its start when huge) and what it takes."""
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "`--after` must be a cursor a previous `lab ls` printed on stderr" in proc.stderr, proc.stderr
    # The API's words are not the command line's.
    assert "`after`" not in proc.stderr and "`next`" not in proc.stderr, proc.stderr
    if len(cursor) > 40:
        assert f"got `{cursor[:40]}...` ({len(cursor)} characters)" in proc.stderr, proc.stderr
        assert len(proc.stderr) < 600, proc.stderr
    else:
        assert f"got `{cursor}`" in proc.stderr, proc.stderr
    assert "hint: `lab ls` without `--after` lists the first page" in proc.stderr


@pytest.mark.parametrize("cursor", ["nonsense", "", "e30", "!" * 10_000])
def test_a_bad_cursor_is_refused_naming_after(project: Path, cursor: str) -> None:
    make_runs()
    before = sorted(p.relative_to(project) for p in project.rglob("*") if "index" not in p.name)
    proc = lab_cli(project, "ls", "--limit", "3", "--after", cursor)
    assert_refuses_after(proc, cursor)
    assert "it is not a cursor Lab made" in proc.stderr
    assert sorted(p.relative_to(project) for p in project.rglob("*") if "index" not in p.name) == before
    assert len(ids(lab_cli(project, "ls", "--format", "json").stdout)) == 20


def test_a_cursor_of_the_earlier_longer_form_is_refused_saying_so(project: Path) -> None:
    make_runs()
    # As earlier versions printed them: the hexadecimal digits of JSON.
    earlier = json.dumps({"keys": [{"i": 1796096966508118530}, {"s": "0e66f91b38ce045686a428d4fbb290da"}], "sort": []}).encode().hex()
    proc = lab_cli(project, "ls", "--limit", "3", "--after", earlier)
    assert_refuses_after(proc, earlier)
    assert "it is a cursor of an earlier version of Lab" in proc.stderr


def test_cursors_are_short_and_url_safe(project: Path) -> None:
    make_runs()
    for sort in SORTS:
        cursor = NEXT.search(lab_cli(project, "ls", *sort, "--limit", "3").stderr).group(1)  # type: ignore[union-attr]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), cursor
        assert len(cursor) <= 100, (sort, cursor)


def test_a_cursor_of_another_sort_is_refused(project: Path) -> None:
    make_runs()
    first = lab_cli(project, "ls", "--sort", "acc", "--limit", "3")
    cursor = NEXT.search(first.stderr).group(1)  # type: ignore[union-attr]
    proc = lab_cli(project, "ls", "--sort", "-start_time", "--limit", "3", "--after", cursor)
    assert_refuses_after(proc, cursor)
    assert "it was made for the sort `acc`, not `-start_time`" in proc.stderr


PY_SORTS = [[], ["acc"], ["-acc"], ["-start_time"], ["params.lr", "-acc"]]


@pytest.mark.parametrize("sort", PY_SORTS, ids=lambda s: " ".join(s) or "newest")
def test_runs_page_by_page_gives_every_run_once_in_order(project: Path, sort: list) -> None:
    import lab

    make_runs()
    want = [r.id for r in lab.runs(sort=sort)]
    assert len(want) == 20
    got: list[str] = []
    page = lab.runs_page(sort=sort, limit=3)
    for _ in range(10):
        assert len(page.runs) <= 3
        got += [r.id for r in page.runs]
        if page.next is None:
            break
        # `lab.runs(after=...)` lists the same page.
        assert [r.id for r in lab.runs(sort=sort, limit=3, after=page.next)] == [
            r.id for r in lab.runs_page(sort=sort, limit=3, after=page.next).runs
        ]
        page = lab.runs_page(sort=sort, limit=3, after=page.next)
    assert got == want
    assert lab.runs_page(sort=sort, limit=20).next is not None
    assert lab.runs_page(sort=sort, limit=21).next is None


@pytest.mark.parametrize("cursor", ["nonsense", "", "e30", "!" * 10_000])
def test_runs_with_a_bad_cursor_raises_naming_after(project: Path, cursor: str) -> None:
    import lab

    make_runs()
    with pytest.raises(ValueError, match="`after`"):
        lab.runs(limit=3, after=cursor)
    with pytest.raises(ValueError, match="`after`"):
        lab.runs_page(limit=3, after=cursor)
    other = lab.runs_page(sort="acc", limit=3).next
    with pytest.raises(ValueError, match="`after`"):
        lab.runs_page(sort="-start_time", limit=3, after=other)
    with pytest.raises(TypeError, match="`after`"):
        lab.runs(after=3)  # type: ignore[arg-type]
    assert len(lab.runs()) == 20
