"""Grouping in the runs table of `lab ui`, driven in headless Chromium: a
sweep's runs under one foldable group row, and "group by" a parameter.

Uses the helpers of test_ui_browser.py (the real server, the machine's
Chromium); screenshots go to `tests-output/ui/`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import lab_env
from playwright import sync_api
from test_ui_browser import browser, lab_ui, open_page, Page  # noqa: F401 (browser: a fixture)

MAKE_RUNS = """
import json
from lab import Experiment

e = Experiment("sweeps")

@e.sweep(group="lr-sweep")
def train(lr, depth=4):
    e.log_metric("acc", 0.5 + lr)

for lr in (0.1, 0.2, 0.3):
    train(lr)

with e.start_run(group="cv"):
    outer = e.run_id
    for fold in range(2):
        with e.start_run(group="cv-folds"):
            e.log_parameter("lr", 0.1)
            e.log_parameter("depth", 8)
            e.log_metric("acc", 0.9 + fold / 100)

with e.start_run():
    e.log_parameter("lr", 0.2)
    e.log_metric("acc", 0.1)
print(json.dumps(outer))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("groups") / "project"
    project.mkdir()
    script = project / "make_runs.py"
    script.write_text(textwrap.dedent(MAKE_RUNS))
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=lab_env(project), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout.strip().splitlines()[-1])
    return project


@pytest.fixture(scope="module")
def base(project: Path) -> Iterator[str]:
    with lab_ui(project) as url:
        yield url


def groups(page: Page) -> list[tuple[str, int]]:
    return page.page.eval_on_selector_all(
        '[data-testid="group-row"]', "rows => rows.map(r => [r.dataset.group, Number(r.dataset.count)])"
    )


def test_a_sweep_is_grouped_and_folds(browser: Any, base: str) -> None:
    ctx, page = open_page(browser, base)
    try:
        page.goto("#/?group=group&sort=-acc")
        rows = page.page.locator('[data-testid="group-row"]')
        sync_api.expect(rows).to_have_count(4, timeout=10_000)
        # Groups in the order of their best run; the run without a group last.
        assert groups(page) == [["cv-folds", 2], ["lr-sweep", 3], ["", 1], ["cv", 1]]
        page.wait_rows(7)
        assert page.page.locator('[data-testid="group-by"]').input_value() == json.dumps({"kind": "field", "name": "group"}, separators=(",", ":"))
        sweep = page.page.locator('[data-testid="group-row"][data-group="lr-sweep"]')
        assert "lr-sweep" in sweep.inner_text() and "3 runs" in sweep.inner_text()
        stats = sweep.locator(".g-stats")
        assert float(stats.get_attribute("data-mean")) == pytest.approx(0.7)
        assert float(stats.get_attribute("data-min")) == pytest.approx(0.6)
        assert float(stats.get_attribute("data-max")) == pytest.approx(0.8)
        assert "mean 0.7" in stats.get_attribute("title")
        # The run fields of every run of a group are next to its row.
        order = page.page.eval_on_selector_all(
            '[data-testid="group-row"], [data-testid="run-row"]', "els => els.sort((a, b) => a.dataset.index - b.dataset.index).map(e => e.dataset.testid)"
        )
        assert order == ["group-row", "run-row", "run-row", "group-row", "run-row", "run-row", "run-row", "group-row", "run-row", "group-row", "run-row"]
        assert page.page.locator('[data-testid="group-row"][data-group=""]').inner_text().startswith("▾\nno group")
        for name, size in [("runs-grouped", (1440, 900)), ("runs-grouped-phone", (390, 844))]:
            page.page.set_viewport_size({"width": size[0], "height": size[1]})
            page.shot(name)
        page.page.set_viewport_size({"width": 1440, "height": 900})

        # The group's box ticks its runs, ready to compare.
        compare = page.page.locator('[data-testid="compare-button"]')
        sweep.locator('[data-testid="group-select"]').check()
        sync_api.expect(compare).to_have_text("Compare (3)")
        ticked = page.page.eval_on_selector_all('[data-testid="row-select"]:checked', "bs => bs.length")
        assert ticked == 3
        sweep.locator('[data-testid="group-select"]').uncheck()
        sync_api.expect(compare).to_have_text("Compare (0)")

        # Fold the sweep: its three runs leave, its row stays and says so.
        toggle = sweep.locator('[data-testid="group-toggle"]')
        assert toggle.get_attribute("aria-expanded") == "true"
        toggle.click()
        page.wait_rows(4)
        sweep = page.page.locator('[data-testid="group-row"][data-group="lr-sweep"]')
        assert sweep.get_attribute("aria-expanded") == "false"
        page.shot("runs-grouped-folded")
        # From the keyboard: Enter on the group row unfolds it.
        sweep.click(position={"x": 600, "y": 10})
        page.wait_rows(7)
        page.page.keyboard.press("Enter")
        page.wait_rows(4)
        page.page.keyboard.press("Enter")
        page.wait_rows(7)
    finally:
        ctx.close()
    assert page.errors == [] and page.dialogs == []


def test_group_by_a_parameter_from_the_control(browser: Any, base: str) -> None:
    ctx, page = open_page(browser, base)
    try:
        page.goto("#/")
        page.wait_rows(7)
        assert page.page.locator('[data-testid="group-row"]').count() == 0
        page.page.locator('[data-testid="group-by"]').select_option(label="params.lr")
        sync_api.expect(page.page.locator('[data-testid="group-row"]')).to_have_count(4, timeout=10_000)
        assert "group=lr" in page.page.url or "group=params.lr" in page.page.url, page.page.url
        # The run without the parameter (the outer cv run) is in a group of its own.
        assert sorted(groups(page)) == [["", 1], ["0.1", 3], ["0.2", 2], ["0.3", 1]]
        page.wait_rows(7)
        # A parameter that differs inside a group says how many values it has.
        lr01 = page.page.locator('[data-testid="group-row"][data-group="0.1"]')
        assert "2 values" in lr01.inner_text()
        # The address reproduces the view in a fresh page; Back ungroups.
        url = page.page.url
        ctx2, fresh = open_page(browser, base)
        try:
            fresh.page.goto(url)
            sync_api.expect(fresh.page.locator('[data-testid="group-row"]')).to_have_count(4, timeout=10_000)
        finally:
            ctx2.close()
        page.page.go_back()
        sync_api.expect(page.page.locator('[data-testid="group-row"]')).to_have_count(0, timeout=10_000)
        page.wait_rows(7)
        assert page.page.locator('[data-testid="group-by"]').input_value() == ""
    finally:
        ctx.close()
    assert page.errors == [] and page.dialogs == []
