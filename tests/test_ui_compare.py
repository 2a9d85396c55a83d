"""The compare page with many runs, driven in headless Chromium: fifty runs
of a sweep (a learning rate over four decades, a batch size, an optimizer),
each with curves (`loss`, `accuracy`) and a metric logged once (`test_acc`),
grouped by batch size.
The chips fold, the single-value metric is a table of bars, the parallel
coordinates colour by a metric, brush, and move and drop their axes, the
scatter plots any field against any field, and a phone shows it all without
scrolling sideways. Screenshots go to `tests-output/ui/` at 1440×900 and
390×844.

Needs what tests/test_ui_browser.py needs (Playwright and Chromium).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote

import pytest
from playwright import sync_api

from conftest import lab_env

# `browser`: the module's Chromium, as the page's own tests start it.
from test_ui_browser import Page, browser, lab_ui  # noqa: F401

RUNS = 50

MAKE_SWEEP = """
import json, math
import lab
from lab.experiment import Experiment

runs = []
for i in range(RUNS):
    lr = 10 ** (-5 + 4 * i / (RUNS - 1))
    batch = [16, 32, 64, 128][i % 4]
    optimizer = ["adam", "sgd"][i % 2]
    final = 0.5 + 0.45 * math.exp(-((math.log10(lr) + 3) ** 2)) - 0.0005 * batch
    e = Experiment("sweep")
    with e.start_run(group=f"bs{batch}"):
        e.log_parameters({"lr": lr, "batch": batch, "optimizer": optimizer, "seed": 7})
        for step in range(5):
            e.log_metric("loss", 2.0 * math.exp(-step * lr * 100) + 0.1, step=step)
            e.log_metric("accuracy", final * (step + 1) / 5, step=step)
        e.log_metric("test_acc", final)
        runs.append({"id": e.run_id, "name": lab.get_run(e.run_id).name, "lr": lr, "batch": batch, "optimizer": optimizer, "test_acc": final})
print(json.dumps(runs))
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    project = tmp_path_factory.mktemp("compare") / "project"
    project.mkdir()
    script = project / "sweep.py"
    script.write_text(textwrap.dedent(MAKE_SWEEP).replace("RUNS", str(RUNS)))
    # No system metrics: a short run's one sample of each would be a single value too.
    env = {**lab_env(project), "LAB_SYSTEM_METRICS": "0"}
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(runs) == RUNS
    return project, runs


@pytest.fixture(scope="module")
def server(sweep: tuple[Path, list[dict[str, Any]]]) -> Iterator[str]:
    with lab_ui(sweep[0]) as base:
        yield base


def open_page(browser: Any, server: str, width: int, height: int) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": width, "height": height})
    p = Page(ctx.new_page(), server)
    try:
        yield p
    finally:
        ctx.close()
    assert p.dialogs == [], "a dialog opened: injected script ran"
    assert p.errors == [], "the page reported errors"


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    yield from open_page(browser, server, 1440, 900)


@pytest.fixture
def phone(browser: Any, server: str) -> Iterator[Page]:
    yield from open_page(browser, server, 390, 844)


def compare_hash(runs: list[dict[str, Any]], extra: str = "") -> str:
    return "#/compare?ids=" + ",".join(r["id"] for r in runs) + extra


def address(page: Page) -> dict[str, str]:
    """The compare page's address as `{key: decoded value}`."""
    h = page.page.evaluate("() => location.hash")
    query = h.split("?", 1)[1] if "?" in h else ""
    return {k: unquote(v) for k, _, v in (part.partition("=") for part in query.split("&") if part)}


def wait_loaded(page: Page) -> None:
    sync_api.expect(page.page.locator('[data-testid="parallel-coords"]')).to_have_attribute("data-axes", "4", timeout=20_000)


def axis_keys(page: Page) -> list[str]:
    return page.page.eval_on_selector_all('[data-testid="pc-axis"]', "hs => hs.map(h => h.dataset.key)")


def test_fifty_runs_fold_their_chips(page: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    page.goto(compare_hash(runs))
    wait_loaded(page)
    chips = page.page.locator('[data-testid="run-chip"]')
    sync_api.expect(chips).to_have_count(8)
    # Chips are named by the runs' names, the id one hover away and the run one click away.
    first = chips.first
    run = next(r for r in runs if r["id"] == first.get_attribute("data-run-id"))
    assert run["name"] and run["name"] != run["id"][:8]
    sync_api.expect(first.locator(".chip-name")).to_have_text(run["name"])
    assert run["id"] in (first.locator(".chip-name").get_attribute("title") or "")
    assert first.locator(".chip-name").get_attribute("href") == f"#/run/{run['id']}"
    more = page.page.locator('[data-testid="chips-more"]')
    sync_api.expect(more).to_have_text(f"+{RUNS - 8} more")
    sync_api.expect(more).to_have_attribute("aria-expanded", "false")
    # Folded, the chips take one or two rows, not five.
    box = page.page.locator(".run-chips").bounding_box()
    assert box is not None and box["height"] < 80, box
    page.shot("compare-50-desktop")
    more.click()
    sync_api.expect(chips).to_have_count(RUNS)
    sync_api.expect(more).to_have_text("Show fewer")
    sync_api.expect(more).to_have_attribute("aria-expanded", "true")
    more.click()
    sync_api.expect(chips).to_have_count(8)


def test_a_metric_logged_once_is_a_table_of_bars(page: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    page.goto(compare_hash(runs))
    wait_loaded(page)
    table = page.page.locator('[data-testid="single-values"]')
    bars = table.locator('[data-testid="value-bar"]')
    sync_api.expect(bars).to_have_count(RUNS)
    # No chart of one dot per run for it; the curves still have theirs.
    sync_api.expect(page.page.locator('[data-testid="compare-chart"][data-metric="loss"]')).to_have_count(1)
    assert page.page.locator('[data-testid="compare-chart"][data-metric="test_acc"]').count() == 0

    def widths() -> dict[str, float]:
        return page.page.eval_on_selector_all(
            '[data-testid="single-values"] tbody tr',
            """rows => Object.fromEntries(rows.map(r => [r.dataset.runId, r.querySelector('[data-testid="value-bar"]').getBoundingClientRect().width]))""",
        )

    w = widths()
    best = max(runs, key=lambda r: r["test_acc"])
    worst = min(runs, key=lambda r: r["test_acc"])
    assert w[best["id"]] == max(w.values())
    assert w[worst["id"]] == min(w.values())
    # On a linear scale from zero the bars are as long as their values.
    assert w[worst["id"]] / w[best["id"]] == pytest.approx(worst["test_acc"] / best["test_acc"], rel=0.05)
    # Sorting by the metric puts the best first.
    table.locator('[data-testid="single-sort"]').first.click()
    first = table.locator("tbody tr").first
    sync_api.expect(first).to_have_attribute("data-run-id", best["id"])
    sync_api.expect(first.locator("th a")).to_have_text(best["name"])
    page.page.locator('[data-testid="single-values"]').scroll_into_view_if_needed()
    page.shot("compare-single-values")

    # On a log scale the bars are still there, in the same order.
    page.goto(compare_hash(runs, "&log=1"))
    wait_loaded(page)
    sync_api.expect(page.page.locator('[data-testid="single-values"] [data-testid="value-bar"]')).to_have_count(RUNS)
    w = widths()
    assert min(w.values()) > 0
    assert w[best["id"]] == max(w.values())
    assert w[worst["id"]] == min(w.values())


def test_parallel_coordinates_colour_by_the_sort_metric_and_brush_to_compare(page: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    # The runs table sorted by accuracy: the parallel coordinates colour by it.
    page.goto("#/?sort=-accuracy")
    page.page.wait_for_selector('[data-testid="run-row"]')
    page.goto(compare_hash(runs))
    wait_loaded(page)
    pc = page.page.locator('[data-testid="parallel-coords"]')
    sync_api.expect(pc).to_have_attribute("data-color", "metrics.accuracy")
    sync_api.expect(page.page.locator('[data-testid="pc-legend"]')).to_contain_text("accuracy")
    # Axes: the params that differ, then the metric; seed is the same everywhere.
    keys = axis_keys(page)
    assert set(keys[:3]) == {"params.lr", "params.batch", "params.optimizer"} and keys[3] == "metrics.loss", keys
    # Names stand beside the last axis, only as many as fit one above another.
    labels = int(pc.get_attribute("data-labels") or "0")
    assert 10 <= labels <= 320 // 13 + 1, labels

    # Brush the lr axis (log scale, 1e-5 at the bottom to 0.1 at the top) around its middle.
    canvas = pc.locator("canvas")
    pc.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    x = box["x"] + float(page.page.locator('[data-testid="pc-axis"][data-key="params.lr"]').get_attribute("data-x") or "nan")
    top, bottom = box["y"] + 12, box["y"] + box["height"] - 14
    y0 = top + (bottom - top) * 0.3
    y1 = top + (bottom - top) * 0.6
    page.page.mouse.move(x, y0)
    page.page.mouse.down()
    page.page.mouse.move(x, (y0 + y1) / 2, steps=4)
    page.page.mouse.move(x, y1, steps=4)
    page.page.mouse.up()
    brushed = int(pc.get_attribute("data-brushed") or "0")
    assert 0 < brushed < RUNS
    sync_api.expect(page.page.locator('[data-testid="pc-brushed"]')).to_have_text(f"{brushed} of {RUNS} runs in the brushes")
    page.shot("compare-brushed")
    # The address holds the brush: a link shows the same runs brushed.
    brush = address(page)["brush"]
    assert brush.startswith("params.lr:"), brush
    page.goto(page.page.evaluate("() => location.hash"))
    sync_api.expect(pc).to_have_attribute("data-brushed", str(brushed), timeout=20_000)
    sync_api.expect(page.page.locator('[data-testid="pc-brushed"]')).to_have_text(f"{brushed} of {RUNS} runs in the brushes")
    # A second brush, on a category axis (adam at the bottom, sgd at the top): both must hold.
    pc.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    x = box["x"] + float(page.page.locator('[data-testid="pc-axis"][data-key="params.optimizer"]').get_attribute("data-x") or "nan")
    top, bottom = box["y"] + 12, box["y"] + box["height"] - 14
    page.page.mouse.move(x, top - 4)
    page.page.mouse.down()
    page.page.mouse.move(x, top + (bottom - top) * 0.3, steps=4)
    page.page.mouse.up()
    in_lr = int(brushed)
    page.page.wait_for_function("() => location.hash.includes('params.optimizer%3Dsgd') || location.hash.includes('params.optimizer=sgd')")
    brushed = int(pc.get_attribute("data-brushed") or "0")
    assert 0 < brushed < in_lr
    page.page.locator('[data-testid="pc-compare"]').click()
    page.page.wait_for_function(f"() => location.hash.split('ids=')[1]?.split('&')[0].split(',').length === {brushed}")
    ids = address(page)["ids"].split(",")
    # The brush kept a range of lr: exactly the runs between its ends.
    by_id = {r["id"]: r for r in runs}
    kept = sorted(by_id[i]["lr"] for i in ids)
    assert {by_id[i]["optimizer"] for i in ids} == {"sgd"}
    assert [r["id"] for r in runs if kept[0] <= r["lr"] <= kept[-1] and r["optimizer"] == "sgd"] == [r["id"] for r in runs if r["id"] in set(ids)]
    # The brush was 30% to 60% down a log axis from 10^-1 to 10^-5: lr between 10^-2.2 and 10^-3.4.
    assert 10**-3.45 <= kept[0] < 10**-3.2 and 10**-2.4 < kept[-1] <= 10**-2.15, kept
    sync_api.expect(page.page.locator('[data-testid="parallel-coords"]')).to_have_attribute("data-brushed", str(brushed), timeout=20_000)


def test_parallel_coordinates_brush_from_the_keyboard(page: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    page.goto(compare_hash(runs))
    wait_loaded(page)
    pc = page.page.locator('[data-testid="parallel-coords"]')
    status = page.page.locator('[data-testid="pc-brushed"]')

    def brushed() -> int:
        page.page.wait_for_timeout(50)
        return int(pc.get_attribute("data-brushed") or "0")

    # A category axis: ↓ starts at the top category (sgd), ↓ again moves to
    # the next one down (adam), Shift+↑ widens the brush over both.
    optimizer = page.page.locator('[data-testid="pc-axis"][data-key="params.optimizer"] .pc-name')
    optimizer.focus()
    page.page.keyboard.press("ArrowDown")
    sgd = sum(r["optimizer"] == "sgd" for r in runs)
    sync_api.expect(status).to_have_text(f"{sgd} of {RUNS} runs in the brushes")
    assert address(page)["brush"] == "params.optimizer=sgd"
    page.page.keyboard.press("ArrowDown")
    sync_api.expect(status).to_have_text(f"{RUNS - sgd} of {RUNS} runs in the brushes")
    assert address(page)["brush"] == "params.optimizer=adam"
    page.page.keyboard.press("Shift+ArrowUp")
    sync_api.expect(pc).to_have_attribute("data-brushed", str(RUNS))
    assert set(address(page)["brush"].split("=", 1)[1].split("|")) == {"adam", "sgd"}
    # Escape clears the axis's brush; the focus stays on its head.
    page.page.keyboard.press("Escape")
    sync_api.expect(status).to_have_count(0)
    assert "brush" not in address(page)
    assert page.page.evaluate("() => document.activeElement.closest('[data-testid=pc-axis]')?.dataset.key") == "params.optimizer"

    # A number axis (lr, log scale): ↑ brushes its bottom fifth, and the runs
    # inside are exactly those whose lr is in the range the address holds.
    lr = page.page.locator('[data-testid="pc-axis"][data-key="params.lr"] .pc-name')
    lr.focus()
    page.page.keyboard.press("ArrowUp")
    page.page.wait_for_function("() => location.hash.includes('brush=')")

    def check_lr() -> tuple[float, float]:
        key, lo, hi = address(page)["brush"].split(":")
        assert key == "params.lr"
        inside = sum(float(lo) <= r["lr"] <= float(hi) for r in runs)
        sync_api.expect(pc).to_have_attribute("data-brushed", str(inside))
        return float(lo), float(hi)

    lo, hi = check_lr()
    assert 0 < brushed() < RUNS
    assert lo <= min(r["lr"] for r in runs) and hi < 1e-3
    # ↑ moves it up the axis; Shift+↑ widens it; Shift+↓ narrows it back.
    page.page.keyboard.press("ArrowUp")
    lo2, hi2 = check_lr()
    assert lo2 > lo and hi2 > hi
    page.page.keyboard.press("Shift+ArrowUp")
    lo3, hi3 = check_lr()
    assert lo3 < lo2 and hi3 > hi2
    page.page.keyboard.press("Shift+ArrowDown")
    lo4, hi4 = check_lr()
    assert lo4 == pytest.approx(lo2, rel=1e-6) and hi4 == pytest.approx(hi2, rel=1e-6)
    pc.scroll_into_view_if_needed()
    page.shot("compare-keyboard-brush")
    # "Compare these" keeps exactly the runs inside.
    inside = brushed()
    page.page.locator('[data-testid="pc-compare"]').click()
    page.page.wait_for_function(f"() => location.hash.split('ids=')[1]?.split('&')[0].split(',').length === {inside}")


def test_parallel_axes_move_drop_and_come_back(page: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    page.goto(compare_hash(runs))
    wait_loaded(page)
    start = axis_keys(page)
    assert len(start) == 4
    # Drag the first axis's head onto the third's place.
    page.page.locator('[data-testid="parallel-coords"]').scroll_into_view_if_needed()
    first = page.page.locator(f'[data-testid="pc-axis"][data-key="{start[0]}"] .pc-name').bounding_box()
    third = page.page.locator(f'[data-testid="pc-axis"][data-key="{start[2]}"] .pc-name').bounding_box()
    assert first is not None and third is not None
    page.page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    page.page.mouse.down()
    page.page.mouse.move(third["x"] + third["width"] / 2, third["y"] + third["height"] / 2, steps=8)
    page.page.mouse.up()
    moved = [start[1], start[2], start[0], start[3]]
    page.page.wait_for_function(f"() => [...document.querySelectorAll('[data-testid=pc-axis]')].map(h => h.dataset.key).join() === {json.dumps(','.join(moved))}")
    assert address(page)["axes"].split(",") == moved
    # With the keyboard: the focused head moves left and keeps the focus.
    name = page.page.locator(f'[data-testid="pc-axis"][data-key="{start[0]}"] .pc-name')
    name.focus()
    page.page.keyboard.press("ArrowLeft")
    back = [start[1], start[0], start[2], start[3]]
    page.page.wait_for_function(f"() => [...document.querySelectorAll('[data-testid=pc-axis]')].map(h => h.dataset.key).join() === {json.dumps(','.join(back))}")
    assert page.page.evaluate("() => document.activeElement.closest('[data-testid=pc-axis]')?.dataset.key") == start[0]
    # Drop an axis with its ×: the focus goes to the next head, which Delete drops.
    page.page.locator(f'[data-testid="pc-axis"][data-key="{start[2]}"] .pc-drop').click()
    sync_api.expect(page.page.locator('[data-testid="pc-axis"]')).to_have_count(3)
    assert page.page.evaluate("() => document.activeElement.closest('[data-testid=pc-axis]')?.dataset.key") == start[3]
    page.page.keyboard.press("Delete")
    sync_api.expect(page.page.locator('[data-testid="pc-axis"]')).to_have_count(2)
    assert address(page)["axes"].split(",") == [start[1], start[0]]
    # Add one back from the select, and another that is no param at all.
    page.page.locator('[data-testid="pc-add"]').select_option(start[2])
    sync_api.expect(page.page.locator('[data-testid="pc-axis"]')).to_have_count(3)
    page.page.locator('[data-testid="pc-add"]').select_option("duration")
    sync_api.expect(page.page.locator('[data-testid="pc-axis"]')).to_have_count(4)
    assert axis_keys(page) == [start[1], start[0], start[2], "duration"]
    # Back goes to the axes before.
    page.page.go_back()
    sync_api.expect(page.page.locator('[data-testid="pc-axis"]')).to_have_count(3)


def test_a_scatter_of_any_field_against_any_field(page: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    page.goto(compare_hash(runs))
    wait_loaded(page)
    scatter = page.page.locator('[data-testid="scatter"]')
    sync_api.expect(scatter).to_have_attribute("data-points", str(RUNS))
    for x, y in [("metrics.accuracy", "metrics.test_acc"), ("start_time", "duration"), ("params.optimizer", "params.lr"), ("group", "metrics.test_acc")]:
        page.page.locator('[data-testid="scatter-x"]').select_option(x)
        page.page.locator('[data-testid="scatter-y"]').select_option(y)
        sync_api.expect(scatter).to_have_attribute("data-x", x)
        sync_api.expect(scatter).to_have_attribute("data-y", y)
        sync_api.expect(scatter).to_have_attribute("data-points", str(RUNS))
        a = address(page)
        assert (a["sx"], a["sy"]) == (x, y)
    # A link opens the same scatter.
    page.goto(compare_hash(runs, "&sx=params.batch&sy=metrics.loss"))
    sync_api.expect(scatter).to_have_attribute("data-x", "params.batch", timeout=20_000)
    sync_api.expect(scatter).to_have_attribute("data-y", "metrics.loss")
    sync_api.expect(scatter).to_have_attribute("data-points", str(RUNS))
    scatter.scroll_into_view_if_needed()
    page.shot("compare-scatter")


def test_compare_on_a_phone_does_not_scroll_sideways(phone: Page, sweep: tuple[Path, list[dict[str, Any]]]) -> None:
    _, runs = sweep
    phone.goto(compare_hash(runs))
    wait_loaded(phone)
    sync_api.expect(phone.page.locator('[data-testid="single-values"] [data-testid="value-bar"]')).to_have_count(RUNS)
    sync_api.expect(phone.page.locator('[data-testid="scatter"]')).to_have_attribute("data-points", str(RUNS))
    # The folded chips stand two a row: four rows and the button.
    chips = phone.page.locator(".run-chips").bounding_box()
    assert chips is not None and chips["height"] < 200, chips
    width = phone.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    # Every card and plot fits the screen.
    wide = phone.page.eval_on_selector_all(
        ".compare-page .card, .compare-page canvas, .run-chips",
        "els => els.filter(e => e.getBoundingClientRect().right > 390.5).map(e => e.className || e.tagName)",
    )
    assert wide == []
    phone.shot("compare-50-phone")


MAKE_IMAGES = """
import json
import numpy as np
from lab.experiment import Experiment

ids = []
for i in range(4):
    e = Experiment("images")
    with e.start_run():
        e.log_parameter("seed", i)
        e.log_metric("loss", 1.0 / (i + 1))
        if i < 3:
            for step in range(3):
                # Each run and step a flat colour of its own, 16x12 pixels.
                e.log_image("samples", np.full((12, 16, 3), (40 * i + 10 * step, 80, 200 - 50 * i), dtype=np.uint8), step=step * 10)
        ids.append(e.run_id)
print(json.dumps(ids))
"""


@pytest.fixture(scope="module")
def images_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    project = tmp_path_factory.mktemp("compare-images") / "project"
    project.mkdir()
    script = project / "images.py"
    script.write_text(textwrap.dedent(MAKE_IMAGES))
    env = {**lab_env(project), "LAB_SYSTEM_METRICS": "0"}
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    with lab_ui(project) as base:
        yield base, ids


def test_compare_shows_one_image_per_run_side_by_side(browser: Any, images_server: tuple[str, list[str]]) -> None:
    base, ids = images_server
    for width, height, name in [(1440, 900, "compare-media-desktop"), (390, 844, "compare-media-phone")]:
        for p in open_page(browser, base, width, height):
            p.goto("#/compare?ids=" + ",".join(ids))
            card = p.page.locator('[data-testid="compare-media"]')
            sync_api.expect(card).to_be_visible(timeout=20_000)
            images = card.locator('[data-testid="media-image"]')
            # Three runs logged images; the fourth says it has none.
            sync_api.expect(images).to_have_count(3)
            sync_api.expect(card.locator(".media-cell")).to_have_count(4)
            sync_api.expect(card.locator(f'.media-cell[data-run-id="{ids[3]}"]')).to_contain_text("no image")
            # The last step first; each image is the run's own, and loads.
            sync_api.expect(card.locator('[data-testid="media-step"]')).to_have_text("20")
            for i in range(3):
                cell = card.locator(f'.media-cell[data-run-id="{ids[i]}"]')
                sync_api.expect(cell).to_have_attribute("data-step", "20")
            p.page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=media-image]')].every(i => i.complete && i.naturalWidth === 16 && i.naturalHeight === 12)"
            )
            # The slider goes back to step 0 for every run at once.
            slider = card.locator('[data-testid="media-slider"]')
            slider.focus()
            p.page.keyboard.press("Home")
            sync_api.expect(card.locator('[data-testid="media-step"]')).to_have_text("0")
            for i in range(3):
                sync_api.expect(card.locator(f'.media-cell[data-run-id="{ids[i]}"]')).to_have_attribute("data-step", "0")
            p.page.keyboard.press("ArrowRight")
            sync_api.expect(card.locator('[data-testid="media-step"]')).to_have_text("10")
            assert p.page.evaluate("() => document.documentElement.scrollWidth") <= width
            card.scroll_into_view_if_needed()
            p.shot(name)
