"""The runs table of `lab ui` and its saved views, driven in headless Chromium.

Columns that follow the runs in view, resized, reordered and pinned; the
address keeping their order; the filter box's completions, its "did you mean"
buttons, `/` and Back; saved views opened by link; a table of more rows than
a browser lets an element be tall (its cap lowered by the address), scrolled
to its end and middle, by the wheel and the keys, holding only the pages near
its view, and back to its top on a new sort or filter. The server and the browser
are started as in `test_ui_browser.py` (the real `lab ui`, the machine's
Chromium); screenshots go to `tests-output/ui/`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import lab_env
from playwright import sync_api
from test_ui_browser import browser, lab_ui, open_page, Page  # noqa: F401 (browser: a fixture)

# Two experiments with nothing in common but `loss`: `alpha` has seven params
# whose names come first in the project (so the project's first six are all
# alpha's), `beta` has its own params and metric. A long param name tests
# that headers fit their names.
LONG = "a_rather_long_parameter_name"
MAKE_RUNS = f"""
import json
from lab.experiment import Experiment

ids = {{}}
for key, lr, optimizer, acc in [("A1", 0.1, "adam", 0.9), ("A2", 0.01, "sgd", 0.6), ("A3", 0.001, "adamw", 0.75)]:
    e = Experiment("alpha")
    with e.start_run():
        ids[key] = e.run_id
        e.log_parameters({{"a_batch": 32, "a_dropout": 0.1, "a_epochs": 5, "a_layers": 3, "a_warmup": 100, "lr": lr, "optimizer": optimizer, "{LONG}": 1}})
        e.set_tag("stage", "candidate")
        e.log_metric("accuracy", acc)
        e.log_metric("loss", 1 - acc)
for key, depth in [("B1", 4), ("B2", 8)]:
    e = Experiment("beta")
    with e.start_run():
        ids[key] = e.run_id
        e.log_parameters({{"zdepth": depth, "zwidth": 16}})
        e.log_metric("zf1", depth / 10)
        e.log_metric("loss", 0.5)
print(json.dumps(ids))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("table") / "project"
    root.mkdir(parents=True)
    script = root / "make_runs.py"
    script.write_text(textwrap.dedent(MAKE_RUNS))
    proc = subprocess.run([sys.executable, str(script)], cwd=root, env=lab_env(root), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return root, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def server(project: tuple[Path, dict[str, str]]) -> Iterator[str]:
    with lab_ui(project[0]) as base:
        yield base


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    ctx, p = open_page(browser, server, 1280, 800)
    try:
        yield p
    finally:
        ctx.close()
    assert p.dialogs == [], "a dialog opened: injected script ran"
    assert p.errors == [], "the page reported errors"


def headers(page: Page) -> list[str]:
    """The keys of the table's columns after the run fields, in order."""
    keys = page.page.eval_on_selector_all(".vt-head .sort-btn", "bs => bs.map(b => b.dataset.key)")
    return [k for k in keys if "." in k]


def hash_of(page: Page) -> str:
    return page.page.evaluate("() => decodeURIComponent(location.hash)")


def test_default_columns_are_those_of_the_runs_in_view(page: Page) -> None:
    page.goto("#/?experiment=beta")
    page.wait_rows(2)
    # The project's first params are alpha's: beta's runs have none of them.
    sync_api.expect(page.page.locator('[data-testid="sort-header-params.zdepth"]')).to_have_count(1)
    assert headers(page) == ["metrics.loss", "metrics.zf1", "params.zdepth", "params.zwidth"]
    page.goto("#/?experiment=alpha")
    page.wait_rows(3)
    sync_api.expect(page.page.locator('[data-testid="sort-header-metrics.accuracy"]')).to_have_count(1)
    shown = headers(page)
    assert "metrics.zf1" not in shown and "params.zdepth" not in shown, shown
    assert shown[:2] == ["metrics.accuracy", "metrics.loss"]
    assert len([k for k in shown if k.startswith("params.")]) == 6
    # A filter changes them too.
    page.goto("#/")
    page.wait_rows(5)
    box = page.page.locator('[data-testid="filter-input"]')
    box.fill("zdepth > 5")
    box.press("Enter")
    page.wait_rows(1)
    sync_api.expect(page.page.locator('[data-testid="sort-header-params.zdepth"]')).to_have_count(1)
    assert "metrics.accuracy" not in headers(page)


def requests_in_order(page: Page) -> list[tuple[str, str]]:
    """From now on, the page's `/names` and `/runs` requests and answers, in
    the order they happened: ("ask" or "answer", "names" or "runs")."""
    seen: list[tuple[str, str]] = []

    def note(what: str, url: str) -> None:
        path = urllib.parse.urlsplit(url).path
        for name in ("names", "runs"):
            if path.endswith(f"/api/v1/{name}"):
                seen.append((what, name))

    page.page.on("request", lambda r: note("ask", r.url))
    page.page.on("response", lambda r: note("answer", r.url))
    return seen


@pytest.mark.parametrize("route, rows", [("#/", 5), ("#/?where=loss%20%3C%200.3&status=finished", 2), ("#/?experiment=beta", 2)])
def test_the_first_page_is_asked_for_with_the_names_not_after_them(page: Page, route: str, rows: int) -> None:
    # An address that reads the same without the project's names: its first
    # page is on its way before the names come back, and asked for once.
    seen = requests_in_order(page)
    page.goto(route)
    page.wait_rows(rows)
    assert seen.index(("ask", "runs")) < seen.index(("answer", "names")), seen
    assert seen.count(("ask", "runs")) == 1, seen


@pytest.mark.parametrize("route", ["#/?sort=-accuracy", "#/?cols=accuracy,lr"])
def test_an_address_that_needs_the_names_asks_for_its_page_after_them(page: Page, route: str) -> None:
    # `accuracy` could be a param, a metric or a tag until the names say.
    seen = requests_in_order(page)
    page.goto(route)
    page.wait_rows(5)
    assert seen.index(("answer", "names")) < seen.index(("ask", "runs")), seen
    assert seen.count(("ask", "runs")) == 1, seen


def test_columns_remembered_for_an_experiment_wait_for_the_names(page: Page) -> None:
    page.goto("#/?experiment=alpha")
    page.wait_rows(3)
    page.page.locator('[data-testid="sort-header-metrics.accuracy"]').wait_for()
    page.page.evaluate("""() => localStorage.setItem("lab.columns", JSON.stringify({alpha: {cols: ["metrics.accuracy"], pin: []}}))""")
    seen = requests_in_order(page)
    page.page.reload()
    page.wait_rows(3)
    assert headers(page) == ["metrics.accuracy"]
    assert seen.count(("ask", "runs")) == 1, seen


def test_columns_are_remembered_per_experiment(page: Page) -> None:
    page.goto("#/?experiment=alpha")
    page.wait_rows(3)
    page.page.get_by_role("button", name="Columns ▾").click()
    chooser = page.page.get_by_role("dialog", name="Columns")
    chooser.locator(".chooser-item", has_text="a_batch").locator("input").uncheck()
    page.page.keyboard.press("Escape")
    sync_api.expect(page.page.locator('[data-testid="sort-header-params.a_batch"]')).to_have_count(0)
    # Another experiment keeps its defaults; back to alpha, without columns in the address, alpha's choice.
    page.goto("#/?experiment=beta")
    page.wait_rows(2)
    assert "params.zdepth" in headers(page)
    page.goto("#/?experiment=alpha")
    page.wait_rows(3)
    sync_api.expect(page.page.locator('[data-testid="sort-header-metrics.accuracy"]')).to_have_count(1)
    assert "params.a_batch" not in headers(page)
    assert "cols=" in hash_of(page), "the remembered choice is in the address, so a link keeps it"
    # Default forgets it.
    page.page.get_by_role("button", name="Columns ▾").click()
    page.page.get_by_role("dialog", name="Columns").get_by_role("button", name="Default").click()
    sync_api.expect(page.page.locator('[data-testid="sort-header-params.a_batch"]')).to_have_count(1)
    page.goto("#/?experiment=beta")
    page.wait_rows(2)
    page.goto("#/?experiment=alpha")
    page.wait_rows(3)
    sync_api.expect(page.page.locator('[data-testid="sort-header-params.a_batch"]')).to_have_count(1)
    assert "cols=" not in hash_of(page)


def test_the_address_keeps_the_column_order(page: Page) -> None:
    page.goto("#/?cols=loss,lr,accuracy,stage")
    page.wait_rows(5)
    sync_api.expect(page.page.locator('[data-testid="sort-header-tags.stage"]')).to_have_count(1)
    assert headers(page) == ["metrics.loss", "params.lr", "metrics.accuracy", "tags.stage"]


def test_a_column_is_reordered_by_dragging_and_by_the_keyboard(page: Page) -> None:
    page.goto("#/?cols=accuracy,loss,lr")
    page.wait_rows(5)
    sync_api.expect(page.page.locator('[data-testid="sort-header-params.lr"]')).to_have_count(1)
    # Dragged onto the left half of `accuracy`: before it.
    target = page.page.locator('[data-testid="sort-header-metrics.accuracy"]')
    box = target.bounding_box()
    assert box
    page.page.locator('[data-testid="sort-header-params.lr"]').drag_to(target, target_position={"x": 4, "y": box["height"] / 2})
    page.page.wait_for_function("() => decodeURIComponent(location.hash).includes('cols=lr,accuracy,loss')")
    assert headers(page) == ["params.lr", "metrics.accuracy", "metrics.loss"]
    # Alt+→ on a focused header moves it right, and the focus stays on it.
    page.page.locator('[data-testid="sort-header-params.lr"]').focus()
    page.page.keyboard.press("Alt+ArrowRight")
    page.page.wait_for_function("() => decodeURIComponent(location.hash).includes('cols=accuracy,lr,loss')")
    assert headers(page) == ["metrics.accuracy", "params.lr", "metrics.loss"]
    assert page.page.evaluate("() => document.activeElement.dataset.key") == "params.lr"
    # Moving does not sort.
    assert "sort=" not in hash_of(page)
    page.page.reload()
    page.wait_rows(5)
    assert headers(page) == ["metrics.accuracy", "params.lr", "metrics.loss"]


def test_a_column_is_resized_by_dragging_and_keeps_its_width(page: Page) -> None:
    page.goto("#/?cols=accuracy,lr")
    page.wait_rows(5)
    cell = page.page.locator('.vt-hcell[data-key="params.lr"]')
    sync_api.expect(cell).to_have_count(1)
    before = cell.bounding_box()
    assert before
    grip = page.page.locator('[data-testid="resize-params.lr"]')
    g = grip.bounding_box()
    assert g
    page.page.mouse.move(g["x"] + g["width"] / 2, g["y"] + g["height"] / 2)
    page.page.mouse.down()
    page.page.mouse.move(g["x"] + g["width"] / 2 + 60, g["y"] + g["height"] / 2, steps=5)
    page.page.mouse.up()
    after = cell.bounding_box()
    assert after and abs(after["width"] - (before["width"] + 60)) <= 2, (before, after)
    # The rows follow the header.
    row_cell = page.page.locator('[data-testid="run-row"]').first.locator(".vt-cell").nth(7)
    rc = row_cell.bounding_box()
    assert rc and abs(rc["width"] - after["width"]) <= 1
    # The arrow keys on the grip, and the width is kept for the next visit.
    grip.focus()
    page.page.keyboard.press("ArrowRight")
    wider = cell.bounding_box()
    assert wider and abs(wider["width"] - (after["width"] + 16)) <= 1
    page.page.reload()
    page.wait_rows(5)
    kept = page.page.locator('.vt-hcell[data-key="params.lr"]').bounding_box()
    assert kept and abs(kept["width"] - wider["width"]) <= 1
    # A double-click fits it to its name again.
    page.page.locator('[data-testid="resize-params.lr"]').dblclick()
    fitted = page.page.locator('.vt-hcell[data-key="params.lr"]').bounding_box()
    assert fitted and abs(fitted["width"] - before["width"]) <= 1


def test_names_fit_their_headers_and_show_in_full_on_hover(page: Page) -> None:
    page.goto(f"#/?experiment=alpha&cols={LONG},lr")
    page.wait_rows(3)
    btn = page.page.locator(f'[data-testid="sort-header-params.{LONG}"]')
    sync_api.expect(btn).to_have_count(1)
    label = btn.locator(".h-label")
    cut = label.evaluate("e => e.scrollWidth > e.clientWidth")
    assert not cut, "the name is shown whole"
    assert LONG in (btn.get_attribute("title") or "")


def test_a_pinned_column_stays_in_view_when_the_table_scrolls(browser: Any, server: str) -> None:
    ctx, page = open_page(browser, server, 900, 700)
    try:
        page.goto("#/?experiment=alpha&cols=lr,a_batch,a_dropout,a_epochs,a_layers,a_warmup,optimizer,accuracy")
        page.wait_rows(3)
        page.page.locator('.vt-hcell[data-key="metrics.accuracy"]').hover()
        page.page.locator('[data-testid="pin-metrics.accuracy"]').click()
        page.page.wait_for_function("() => decodeURIComponent(location.hash).includes('pin=accuracy')")
        assert page.page.locator('[data-testid="pin-metrics.accuracy"]').get_attribute("aria-pressed") == "true"
        # Pinned columns come first among the chosen ones.
        assert headers(page)[0] == "metrics.accuracy"
        page.page.locator(".vt-scroll").evaluate("e => { e.scrollLeft = e.scrollWidth; }")
        page.page.wait_for_timeout(100)
        table = page.page.locator(".vt-scroll").bounding_box()
        pinned = page.page.locator('.vt-hcell[data-key="metrics.accuracy"]').bounding_box()
        run = page.page.locator('.vt-hcell[data-key="name"]').bounding_box()
        moved = page.page.locator('.vt-hcell[data-key="experiment"]').bounding_box()
        assert table and pinned and run and moved
        assert moved["x"] < table["x"], "an unpinned column scrolled out of view"
        assert table["x"] <= run["x"] < table["x"] + 40, (table, run)
        assert abs(pinned["x"] - (run["x"] + run["width"])) <= 1, "the pinned column stays right after the run's"
        cell = page.page.locator('[data-testid="run-row"]').first.locator(".vt-cell.pinned")
        cb = cell.bounding_box()
        assert cb and abs(cb["x"] - pinned["x"]) <= 1, "the rows' pinned cells stay with the header"
        page.shot("runs-pinned")
        # Unpinned: it scrolls away with the rest.
        page.page.locator('[data-testid="pin-metrics.accuracy"]').click()
        page.page.wait_for_function("() => !location.hash.includes('pin=')")
    finally:
        ctx.close()
    assert page.errors == []


def test_the_filter_box_completes_names_and_values(page: Page, project: tuple[Path, dict[str, str]]) -> None:
    _, ids = project
    page.goto("#/")
    page.wait_rows(5)
    box = page.page.locator('[data-testid="filter-input"]')
    assert box.get_attribute("role") == "combobox"
    listbox = page.page.locator('[data-testid="filter-completions"]')
    box.click()
    page.page.keyboard.type("opti")
    sync_api.expect(listbox).to_be_visible()
    assert box.get_attribute("aria-expanded") == "true"
    assert listbox.get_attribute("id") == box.get_attribute("aria-controls")
    options = listbox.get_by_role("option")
    sync_api.expect(options.first).to_contain_text("optimizer")
    page.page.keyboard.press("ArrowDown")
    active = box.get_attribute("aria-activedescendant")
    assert active and page.page.locator(f"#{active}").get_attribute("aria-selected") == "true"
    page.page.keyboard.press("Enter")
    sync_api.expect(box).to_have_value("optimizer ")
    sync_api.expect(listbox).to_be_hidden()
    # After a comparison: the values the runs in view have.
    page.page.keyboard.type("= ")
    sync_api.expect(listbox).to_be_visible()
    labels = options.all_inner_texts()
    assert any("'adam'" in t for t in labels) and any("'sgd'" in t for t in labels), labels
    page.page.keyboard.type("'adamw")
    sync_api.expect(options).to_have_count(1)
    page.shot("runs-completions")
    options.first.click()
    sync_api.expect(box).to_have_value("optimizer = 'adamw' ")
    assert box.evaluate("e => document.activeElement === e"), "the box keeps the focus"
    page.page.keyboard.press("Enter")
    assert page.wait_rows(1) == [ids["A3"]]
    # Escape closes the list and leaves the text.
    page.page.keyboard.type("and acc")
    sync_api.expect(listbox).to_be_visible()
    page.page.keyboard.press("Escape")
    sync_api.expect(listbox).to_be_hidden()
    sync_api.expect(box).to_have_value("optimizer = 'adamw' and acc")


def test_did_you_mean_is_a_button_that_fixes_the_query(page: Page) -> None:
    page.goto("#/")
    page.wait_rows(5)
    box = page.page.locator('[data-testid="filter-input"]')
    box.fill("acuracy > 0.7")
    box.press("Enter")
    fix = page.page.locator('[data-testid="did-you-mean"]')
    sync_api.expect(fix).to_have_text("accuracy", timeout=10_000)
    page.shot("runs-did-you-mean")
    fix.click()
    sync_api.expect(box).to_have_value("accuracy > 0.7")
    page.wait_rows(2)
    sync_api.expect(page.page.locator('[data-testid="filter-error"]')).to_be_hidden()
    assert "where=accuracy > 0.7" in hash_of(page)
    # With a scope written: it is not written twice.
    box.fill("metrics.acuracy > 0.7")
    box.press("Enter")
    sync_api.expect(fix).to_have_text("metrics.accuracy", timeout=10_000)
    fix.click()
    sync_api.expect(box).to_have_value("metrics.accuracy > 0.7")
    page.wait_rows(2)


def test_back_shows_the_filter_of_the_address(page: Page) -> None:
    # Regression: the box kept the text typed last while the table showed
    # the query Back went to.
    page.goto("#/")
    page.wait_rows(5)
    box = page.page.locator('[data-testid="filter-input"]')
    box.fill("accuracy > 0.7")
    box.press("Enter")
    page.wait_rows(2)
    box.fill("accuracy > 0.8")
    box.press("Enter")
    page.wait_rows(1)
    page.page.go_back()
    page.wait_rows(2)
    sync_api.expect(box).to_have_value("accuracy > 0.7")
    page.page.go_back()
    page.wait_rows(5)
    sync_api.expect(box).to_have_value("")
    page.page.go_forward()
    page.wait_rows(2)
    sync_api.expect(box).to_have_value("accuracy > 0.7")
    # A link to the runs page with another filter, followed from the page.
    page.page.evaluate("() => { location.hash = '#/?where=' + encodeURIComponent('loss < 0.2'); }")
    page.wait_rows(1)
    sync_api.expect(box).to_have_value("loss < 0.2")


def test_slash_focuses_the_filter_box(page: Page) -> None:
    page.goto("#/")
    page.wait_rows(5)
    box = page.page.locator('[data-testid="filter-input"]')
    page.page.locator(".count").click()
    assert not box.evaluate("e => document.activeElement === e")
    page.page.keyboard.press("/")
    assert box.evaluate("e => document.activeElement === e")
    sync_api.expect(box).to_have_value("")
    # In the box, `/` is a character like any other.
    page.page.keyboard.type("sys/")
    sync_api.expect(box).to_have_value("sys/")


def test_a_focused_header_shows_its_whole_ring(page: Page) -> None:
    page.goto("#/")
    page.wait_rows(5)
    btn = page.page.locator('[data-testid="sort-header-status"]')
    btn.focus()
    page.page.keyboard.press("Shift+Tab")
    page.page.keyboard.press("Tab")
    style = btn.evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth, s.outlineOffset]; }")
    assert style[0] == "solid" and style[1] == "2px", style
    # Drawn inside the button, which the cell does not clip.
    assert float(style[2].rstrip("px")) <= -2, style


def test_a_saved_view_opens_by_link_in_a_fresh_page(browser: Any, server: str, project: tuple[Path, dict[str, str]]) -> None:
    _, ids = project
    ctx, page = open_page(browser, server, 1440, 900)
    try:
        page.goto("#/?where=" + "optimizer%20!%3D%20'sgd'" + "&sort=-accuracy&cols=accuracy,optimizer,lr&pin=optimizer")
        page.wait_rows(2)
        page.page.get_by_role("button", name="Views ▾").click()
        dialog = page.page.get_by_role("dialog", name="Saved views")
        sync_api.expect(dialog).to_be_visible()
        name = dialog.locator('[data-testid="view-name"]')
        # A bad name is refused in the page and nothing is saved.
        name.fill("no spaces")
        dialog.locator('[data-testid="view-save"]').click()
        sync_api.expect(dialog.locator(".view-status")).to_contain_text("letters, digits")
        name.fill("good-optimizers")
        name.press("Enter")
        sync_api.expect(dialog.locator('[data-testid="view-item"]')).to_have_count(1)
        sync_api.expect(dialog.locator(".view-status")).to_have_text("Saved as good-optimizers")
        page.shot("runs-views")
    finally:
        ctx.close()
    assert page.errors == []
    # A fresh browser opens the link.
    ctx, fresh = open_page(browser, server, 1280, 800)
    try:
        fresh.goto("#/?view=good-optimizers")
        assert fresh.wait_rows(2) == [ids["A1"], ids["A3"]]
        sync_api.expect(fresh.page.locator('[data-testid="filter-input"]')).to_have_value("optimizer != 'sgd'")
        assert headers(fresh) == ["params.optimizer", "metrics.accuracy", "params.lr"]
        assert "view=" not in hash_of(fresh), "the view's state took the place of the link"
        # Deleted from the list, and its link then says so.
        fresh.page.get_by_role("button", name="Views ▾").click()
        dialog = fresh.page.get_by_role("dialog", name="Saved views")
        dialog.get_by_role("button", name="Delete the view good-optimizers").click()
        sync_api.expect(dialog.locator('[data-testid="view-item"]')).to_have_count(0)
        fresh.page.keyboard.press("Escape")
        fresh.goto("#/?view=good-optimizers")
        sync_api.expect(fresh.page.locator('[data-testid="view-error"]')).to_contain_text("no view is named `good-optimizers`")
        fresh.wait_rows(5)
    finally:
        ctx.close()
    assert fresh.errors == []


def test_a_compare_page_saved_as_a_view_opens_with_its_charts(browser: Any, server: str, project: tuple[Path, dict[str, str]]) -> None:
    _, ids = project
    state = f"/compare?ids={ids['A1']},{ids['A2']}&sx=params.lr&sy=metrics.accuracy&log=1"
    ctx, page = open_page(browser, server, 1440, 900)
    try:
        page.goto("#" + state)
        sync_api.expect(page.page.locator('[data-testid="scatter-x"]')).to_have_value("params.lr", timeout=10_000)
        page.page.get_by_role("button", name="Views ▾").click()
        dialog = page.page.get_by_role("dialog", name="Saved views")
        dialog.locator('[data-testid="view-name"]').fill("two-runs")
        dialog.locator('[data-testid="view-save"]').click()
        sync_api.expect(dialog.locator(".view-status")).to_have_text("Saved as two-runs")
    finally:
        ctx.close()
    assert page.errors == []
    with urllib.request.urlopen(f"{server}/api/v1/views/two-runs", timeout=10) as r:
        assert json.load(r)["state"] == state
    ctx, fresh = open_page(browser, server, 1280, 800)
    try:
        fresh.goto("#/?view=two-runs")
        sync_api.expect(fresh.page.locator('[data-testid="scatter-y"]')).to_have_value("metrics.accuracy", timeout=10_000)
        assert hash_of(fresh) == "#" + state
    finally:
        ctx.close()
        req = urllib.request.Request(f"{server}/api/v1/views/two-runs", method="DELETE", headers={"Origin": server})
        urllib.request.urlopen(req, timeout=10).close()
    assert fresh.errors == []


def run_json(base: str, run_id: str) -> Any:
    with urllib.request.urlopen(f"{base}/api/v1/runs/{run_id}", timeout=10) as r:
        return json.load(r)


def row(page: Page, run_id: str) -> Any:
    return page.page.locator(f'[data-testid="run-row"][data-run-id="{run_id}"]')


def test_a_run_is_renamed_in_the_table_and_another_page_sees_it(browser: Any, server: str, project: tuple[Path, dict[str, str]]) -> None:
    _, ids = project
    run_id = ids["B1"]
    old = run_json(server, run_id)["name"]
    ctx, page = open_page(browser, server, 1280, 800)
    ctx2, other = open_page(browser, server, 1280, 800)
    try:
        for p in (page, other):
            p.goto("#/?experiment=beta")
            p.wait_rows(2)
        # The name first, the short id beside it, a link to the run.
        name = row(page, run_id).locator('[data-testid="run-name"]')
        sync_api.expect(name).to_have_text(old)
        link = row(page, run_id).locator("a.run-id")
        assert link.inner_text() == run_id[:8] or run_id.startswith(link.inner_text())
        assert link.get_attribute("href") == f"#/run/{run_id}"
        # Escape puts the name back and saves nothing.
        name.dblclick()
        box = page.page.locator('[data-testid="rename-input"]')
        sync_api.expect(box).to_be_focused()
        sync_api.expect(box).to_have_value(old)
        page.page.keyboard.type("nothing")
        page.page.keyboard.press("Escape")
        sync_api.expect(box).to_have_count(0)
        sync_api.expect(name).to_have_text(old)
        assert run_json(server, run_id)["name"] == old
        # A name the server refuses: said in the box, which stays open.
        row(page, run_id).hover()
        row(page, run_id).locator('[data-testid="rename-button"]').click()
        sync_api.expect(box).to_be_focused()
        page.page.keyboard.press("Control+a")
        page.page.keyboard.press("Delete")
        page.page.keyboard.type("   ")
        page.page.keyboard.press("Enter")
        sync_api.expect(box).to_have_attribute("aria-invalid", "true")
        assert "Not renamed" in (box.get_attribute("title") or "")
        assert run_json(server, run_id)["name"] == old
        # Enter saves; the other open page shows the new name by itself.
        page.page.keyboard.press("Control+a")
        page.page.keyboard.type("deep-net")
        page.page.keyboard.press("Enter")
        sync_api.expect(box).to_have_count(0)
        sync_api.expect(row(page, run_id).locator('[data-testid="run-name"]')).to_have_text("deep-net")
        assert run_json(server, run_id)["name"] == "deep-net"
        sync_api.expect(row(other, run_id).locator('[data-testid="run-name"]')).to_have_text("deep-net", timeout=3000)
        page.shot("runs-renamed")
        # F2 on the active row, from the keyboard.
        row(page, run_id).locator(".c-select input").focus()
        row(page, run_id).focus()
        page.page.keyboard.press("F2")
        sync_api.expect(box).to_be_focused()
        page.page.keyboard.press("Control+a")
        page.page.keyboard.type(old)
        page.page.keyboard.press("Enter")
        sync_api.expect(row(page, run_id).locator('[data-testid="run-name"]')).to_have_text(old)
        # Clicking the name does not open the run; clicking elsewhere in the row does.
        row(page, run_id).locator('[data-testid="run-name"]').click()
        assert "#/run/" not in page.page.url
    finally:
        ctx.close()
        ctx2.close()
    assert page.errors == [] and other.errors == []
    assert page.dialogs == []


def test_the_table_on_a_phone_and_a_desktop(browser: Any, server: str) -> None:
    for width, height, name in [(1440, 900, "runs-table-desktop"), (390, 844, "runs-table-phone")]:
        ctx, page = open_page(browser, server, width, height)
        try:
            page.goto("#/?experiment=alpha")
            page.wait_rows(3)
            overflow = page.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"the page is {overflow} px wider than a {width} px screen"
            page.shot(name)
            # The boxes the toolbar's buttons open stay on the screen.
            for button, dialog in [("Columns ▾", "Columns"), ("Views ▾", "Saved views")]:
                page.page.get_by_role("button", name=button).click()
                box = page.page.get_by_role("dialog", name=dialog)
                sync_api.expect(box).to_be_visible()
                r = box.bounding_box()
                assert r and r["x"] >= 0 and r["x"] + r["width"] <= width, (dialog, r)
                page.page.keyboard.press("Escape")
                sync_api.expect(box).to_have_count(0)
        finally:
            ctx.close()
        assert page.errors == []


# ---------------------------------------------------------------- a table taller than a browser lets an element be

# Browsers cap an element's height (Chromium at about 16.7 million px), so the
# table's spacer stops at 10,000,000 px (333,333 rows of 30 px) and the scroll
# bar stands for all the rows past it. `?max_table_px=` lowers that cap for a
# test: 30,000 px is 1,000 rows, so the scaling is at work with a few thousand.
MANY = 3_000
CAP = 30_000
ROW_PX = 30
MAKE_MANY = """
import sys
from lab.experiment import Experiment
e = Experiment("many")
for i in range(int(sys.argv[1])):
    with e.start_run():
        e.log_parameter("p", i % 7)
        e.log_metric("m", (i * 7919) % 3001 / 3001)
"""


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("many") / "project"
    root.mkdir(parents=True)
    env = {**lab_env(root), "LAB_SYSTEM_METRICS": "0"}
    proc = subprocess.run([sys.executable, "-c", MAKE_MANY, str(MANY)], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with lab_ui(root) as base:
        yield base


@pytest.fixture
def tall(browser: Any, many: str) -> Iterator[Page]:
    ctx, p = open_page(browser, many, 1280, 800)
    try:
        yield p
    finally:
        ctx.close()
    assert p.errors == [], "the page reported errors"


def api_runs(base: str, **params: Any) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/api/v1/runs?" + urllib.parse.urlencode(params), timeout=30) as r:
        return json.load(r)


def open_tall(p: Page, route: str = "#/") -> dict[str, float]:
    """Opens the table with its cap lowered; checks that the spacer keeps under it; gives its geometry."""
    p.goto(f"?max_table_px={CAP}{route}")
    sync_api.expect(p.page.locator('[data-testid="run-row"]').first).to_be_visible(timeout=20_000)
    g = geometry(p)
    assert g["scrollHeight"] <= CAP + g["head"] + 2, g
    return g


def geometry(p: Page) -> dict[str, float]:
    return p.page.evaluate(
        """() => {
        const s = document.querySelector('.vt-scroll');
        const head = document.querySelector('.vt-head');
        return {scrollTop: s.scrollTop, scrollHeight: s.scrollHeight, clientHeight: s.clientHeight, head: head.offsetHeight,
                total: Number(document.querySelector('[data-testid="runs-table"]').getAttribute('aria-rowcount')) - 1};
    }"""
    )


def top_row(p: Page) -> tuple[int, str]:
    """The index and run id of the first row wholly in view under the header, once its run is in."""
    got: list[Any] = []

    def ready() -> bool:
        got[:] = [
            p.page.evaluate(
                """() => {
            const s = document.querySelector('.vt-scroll').getBoundingClientRect();
            const head = document.querySelector('.vt-head').getBoundingClientRect();
            const rows = [...document.querySelectorAll('.vt-row')].filter(r => {
                const b = r.getBoundingClientRect();
                return b.top >= head.bottom - 1 && b.bottom <= s.bottom + 1;
            }).sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
            return rows.length ? [Number(rows[0].dataset.index), rows[0].dataset.runId || ''] : null;
        }"""
            )
        ]
        return bool(got[0] and got[0][1])

    deadline = time.monotonic() + 15
    while not ready():
        assert time.monotonic() < deadline, f"no run at the top of the view: {got}"
        time.sleep(0.05)
    return got[0][0], got[0][1]


def scroll_to(p: Page, top: str) -> None:
    """Sets the scroll position as the scroll bar does (`top`: a JS expression of the scroller `s`)."""
    p.page.evaluate(f"() => {{ const s = document.querySelector('.vt-scroll'); s.scrollTop = {top}; }}")


def test_a_table_past_the_height_cap_scrolls_to_its_last_and_middle_runs(tall: Page, many: str) -> None:
    g = open_tall(tall, "#/?sort=m")
    assert g["total"] == MANY
    tall.page.locator(".count").filter(has_text=f"{MANY:,} runs").wait_for()
    last = api_runs(many, sort="m", limit=1, offset=MANY - 1)["runs"][0]
    # The scroll bar dragged to the end: the last run of the sort, at the bottom.
    scroll_to(tall, "s.scrollHeight")
    row = tall.page.locator(f'[data-run-id="{last["id"]}"]')
    sync_api.expect(row).to_be_visible(timeout=15_000)
    box, view = row.bounding_box(), tall.page.locator(".vt-scroll").bounding_box()
    assert box and view and abs((box["y"] + box["height"]) - (view["y"] + view["height"])) <= ROW_PX, (box, view)
    tall.shot("table-scaled-end-1280")
    # Its tick selects it, kept when the view is back at the top, and compare opens with it.
    row.locator('[data-testid="row-select"]').check()
    scroll_to(tall, "0")
    first = api_runs(many, sort="m", limit=1)["runs"][0]["id"]
    tall.page.locator(f'[data-run-id="{first}"] [data-testid="row-select"]').check()
    tall.page.get_by_test_id("compare-button").click()
    sync_api.expect(tall.page).to_have_url(re.compile(f"ids=({last['id']},{first}|{first},{last['id']})"))
    # To the middle: the middle rows.
    open_tall(tall, "#/?sort=m")
    scroll_to(tall, "(s.scrollHeight - s.clientHeight) / 2")
    g = geometry(tall)
    view_px = g["clientHeight"] - g["head"]
    expected = (MANY * ROW_PX - view_px) / 2 / ROW_PX
    index, run_id = top_row(tall)
    assert abs(index - expected) <= 1, (index, expected)
    assert run_id == api_runs(many, sort="m", limit=1, offset=index)["runs"][0]["id"]


def test_the_wheel_and_the_keys_move_a_scaled_table_row_by_row(tall: Page) -> None:
    open_tall(tall)
    scroll_to(tall, "(s.scrollHeight - s.clientHeight) / 3")
    start, _ = top_row(tall)
    tall.page.locator(".vt-scroll").hover()
    tall.page.mouse.wheel(0, 3 * ROW_PX)
    deadline = time.monotonic() + 5
    while (moved := top_row(tall)[0]) == start and time.monotonic() < deadline:
        time.sleep(0.05)
    # Three rows, as unscaled: not three rows times the scale.
    assert moved == start + 3, (start, moved)
    # The keys: the next row becomes the active one, in view.
    tall.page.locator(f'.vt-row[data-index="{moved}"]').focus()
    for _ in range(40):
        tall.page.keyboard.press("ArrowDown")
    active = tall.page.locator(".vt-row.active")
    sync_api.expect(active).to_have_attribute("data-index", str(moved + 40))
    sync_api.expect(active).to_be_in_viewport()
    index, _ = top_row(tall)
    assert moved < index <= moved + 40, (moved, index)
    tall.page.keyboard.press("End")
    sync_api.expect(active).to_have_attribute("data-index", str(MANY - 1))
    sync_api.expect(tall.page.locator(f'.vt-row[data-index="{MANY - 1}"]')).to_be_in_viewport()


def test_a_scaled_table_holds_only_the_pages_near_its_view(tall: Page) -> None:
    for width, height in [(1440, 900), (390, 844)]:
        tall.page.set_viewport_size({"width": width, "height": height})
        open_tall(tall)
        for share in [0.9, 0.1, 0.5, 1, 0.3, 0.7, 0.55]:
            scroll_to(tall, f"(s.scrollHeight - s.clientHeight) * {share}")
            top_row(tall)
            held = int(tall.page.get_by_test_id("runs-table").get_attribute("data-held") or "-1")
            # Page 0, the pages in view (at most two) and two either side.
            assert 1 <= held <= 7, (share, held)
        tall.shot(f"table-scaled-middle-{width}")


def test_pages_scrolled_past_quickly_are_not_asked_for(tall: Page) -> None:
    open_tall(tall)
    asked: list[int] = []
    tall.page.on("request", lambda r: asked.append(int(urllib.parse.parse_qs(urllib.parse.urlparse(r.url).query).get("offset", ["0"])[0])) if "/api/v1/runs?" in r.url else None)
    # The scroll bar dragged down the whole table in a few frames, then left
    # at a quarter. Each step gives the page of the top row in view and how
    # long the view rested there: a frame of a loaded machine can come later
    # than the 40 ms a view must rest on a page before it is asked for.
    steps = tall.page.evaluate(
        """async () => {
        const s = document.querySelector('.vt-scroll');
        const top = () => {
            const head = document.querySelector('.vt-head').getBoundingClientRect().bottom;
            const row = [...document.querySelectorAll('.vt-row')].find(r => r.getBoundingClientRect().top >= head - 1);
            return row ? Number(row.dataset.index) : -1;
        };
        const steps = [];
        for (let i = 1; i <= 12; i++) {
            s.scrollTop = (s.scrollHeight - s.clientHeight) * i / 12;
            await new Promise(r => requestAnimationFrame(r));
            steps.push([top(), performance.now()]);
        }
        s.scrollTop = (s.scrollHeight - s.clientHeight) / 4;
        steps.push([-1, performance.now()]);
        return steps;
    }"""
    )
    index, _ = top_row(tall)
    pages = {o // 500 for o in asked}
    # The view's page (and the next, when the view straddles them), not the
    # pages it crossed, but for one the view rested on for 30 ms or more.
    rested = {
        page
        for (row, at), (_, left) in zip(steps, steps[1:])
        if row >= 0 and left - at >= 30
        for page in (row // 500, row // 500 + 1)
    }
    crossed = {row // 500 for row, _ in steps[:-1] if row >= 0}
    assert crossed - rested, steps
    assert pages <= {index // 500, index // 500 + 1} | rested, (index, sorted(asked), steps)


def test_sort_and_filter_take_a_scaled_table_back_to_its_top(tall: Page, many: str) -> None:
    open_tall(tall, "#/?sort=m")
    scroll_to(tall, "s.scrollHeight")
    top_row(tall)
    tall.page.get_by_test_id("sort-header-metrics.m").click()
    sync_api.expect(tall.page).to_have_url(re.compile("sort=-m"))
    first = api_runs(many, sort="-m", limit=1)["runs"][0]["id"]
    assert top_row(tall) == (0, first)
    assert geometry(tall)["scrollTop"] == 0
    box = tall.page.get_by_test_id("filter-input")
    box.fill("p = 3")
    box.press("Enter")
    matching = api_runs(many, where="p = 3", sort="-m", limit=1)
    tall.page.locator(".count").filter(has_text=f"{matching['total']:,} runs").wait_for()
    assert top_row(tall) == (0, matching["runs"][0]["id"])
    g = geometry(tall)
    # Under the cap again: the spacer is as tall as the rows.
    assert g["total"] == matching["total"] and g["scrollHeight"] == matching["total"] * ROW_PX + g["head"], g
    scroll_to(tall, "s.scrollHeight")
    last = api_runs(many, where="p = 3", sort="-m", limit=1, offset=matching["total"] - 1)["runs"][0]["id"]
    sync_api.expect(tall.page.locator(f'[data-run-id="{last}"]')).to_be_in_viewport(timeout=15_000)
