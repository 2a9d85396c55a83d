"""The line charts of the compare page and the run page, driven in headless Chromium.

One project of 50 runs made with Lab's Python API: 20 of them log `loss`
(3,000 points, more than a chart draws, so the series is downsampled) and
`acc` (every tenth step), with `lr` among four values, in two groups (`warm`
and `cold`, ten runs each); run 3 logs a NaN, a
+inf and a -inf; the others log a few points (the last no `acc`). The real `lab ui` serves it
(see tests/test_ui_browser.py for the harness). Screenshots go to
`tests-output/ui/`.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import lab_env
from test_ui_browser import browser, canvas_colours, lab_ui, open_page, Page  # noqa: F401 (browser: a fixture)

from playwright import sync_api

MAKE_RUNS = """
import json, math
from lab.experiment import Experiment

ids = []
for i in range(50):
    e = Experiment("charts")
    with e.start_run(group=("warm" if i < 10 else "cold") if i < 20 else None):
        ids.append(e.run_id)
        e.log_parameters({"lr": [0.1, 0.01, 0.001, 0.0001][i % 4], "bs": 32 * (1 + i % 2), "seed": i})
        e.log_tag("arch", ["cnn", "mlp", "vit"][i % 3])
        n = 3000 if i < 20 else 5
        for step in range(n):
            loss = 2.0 * math.exp(-step / 400) + 0.05 * i + 0.02 * math.sin(step)
            if i == 3 and step in (100, 1500, 2000):
                loss = {100: float("nan"), 1500: float("inf"), 2000: float("-inf")}[step]
            if step == n - 1:
                # Neither the smallest nor the largest of its neighbours: a
                # legend that shows a downsampled bucket's extreme is wrong.
                loss = 0.5 + i / 1000
            e.log_metric("loss", loss, step=step)
            if step % 10 == 0 and i != 49:
                e.log_metric("acc", step / n, step=step)
print(json.dumps(ids))
"""

LOSS = '[data-testid="compare-chart"][data-metric="loss"]'
ACC = '[data-testid="compare-chart"][data-metric="acc"]'


@pytest.fixture(scope="module")
def charts_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    project = tmp_path_factory.mktemp("charts") / "project"
    project.mkdir()
    script = project / "make_runs.py"
    script.write_text(textwrap.dedent(MAKE_RUNS))
    # No system metrics: this module-wide project is made before the
    # per-test fixture that turns them off.
    env = dict(lab_env(project), LAB_SYSTEM_METRICS="0")
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(ids) == 50
    return project, ids


@pytest.fixture(scope="module")
def server(charts_project: tuple[Path, list[str]]) -> Iterator[str]:
    with lab_ui(charts_project[0]) as base:
        yield base


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    ctx, p = open_page(browser, server)
    try:
        yield p
    finally:
        ctx.close()
    assert p.dialogs == [], "a dialog opened"
    assert p.errors == [], "the page reported errors"


def labels_by_id(server: str) -> dict[str, str]:
    """What a legend calls each run: its name, or its short id where it has none."""
    with urllib.request.urlopen(server + "/api/v1/runs?limit=100", timeout=10) as r:
        rows = json.load(r)["runs"]
    return {row["id"]: row.get("name") or row["short_id"] for row in rows}


def open_compare(page: Page, ids: list[str], extra: str = "") -> None:
    page.goto(f"#/compare?ids={','.join(ids)}{extra}")
    chart = page.page.locator(LOSS)
    sync_api.expect(chart).to_have_attribute("data-series", str(len(ids)), timeout=20_000)
    page.page.wait_for_selector(LOSS + " canvas")


def hover(page: Page, chart: str, fx: float, fy: float) -> None:
    """Moves the mouse to a fraction (`fx`, `fy`) of the chart's plotting area."""
    page.page.locator(chart).scroll_into_view_if_needed()
    box = page.page.locator(chart + " .u-over").bounding_box()
    assert box is not None
    page.page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def tooltip_rows(page: Page, chart: str) -> list[tuple[str, str]]:
    return page.page.eval_on_selector_all(
        chart + ' [data-testid="chart-tooltip"] tr',
        "rows => rows.map(r => [r.dataset.key, r.querySelector('.tip-value').textContent])",
    )


def test_twenty_runs_legend_collapsed_named_with_last_values(page: Page, charts_project: tuple[Path, list[str]], server: str) -> None:
    _, ids = charts_project
    twenty = ids[:20]
    open_compare(page, twenty)
    legend = page.page.locator(LOSS + ' [data-testid="chart-legend"]')
    items = legend.locator(".legend-item")
    # Eight lines, and a button for the other twelve.
    sync_api.expect(items).to_have_count(8)
    more = legend.locator('[data-testid="legend-more"]')
    sync_api.expect(more).to_have_text("+12 more")
    assert more.get_attribute("aria-expanded") == "false"
    more.click()
    sync_api.expect(items).to_have_count(20)
    assert more.get_attribute("aria-expanded") == "true"
    # Names (or short ids before a run has a name), never full ids.
    names = labels_by_id(server)
    keys = items.evaluate_all("els => els.map(e => e.dataset.key)")
    labels = items.locator(".legend-label").all_inner_texts()
    assert keys == twenty
    assert labels == [names[i] for i in twenty]
    # The resting legend shows each run's last value (0.5 + i/1000), not the
    # last point of a downsampled bucket.
    chart = page.page.locator(LOSS)
    assert int(chart.get_attribute("data-points") or 0) < 20 * 3000, "the series are downsampled"
    values = items.locator(".legend-value").all_inner_texts()
    assert values == [f"{0.5 + i / 1000:.4g}" for i in range(20)]
    # Twenty different colours.
    colours = items.locator(".swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == 20, colours
    page.shot("charts-compare-20")


def test_fifty_runs_get_fifty_distinct_colours(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids)
    legend = page.page.locator(LOSS + ' [data-testid="chart-legend"]')
    sync_api.expect(legend.locator('[data-testid="legend-more"]')).to_have_text("+42 more")
    legend.locator('[data-testid="legend-more"]').click()
    colours = legend.locator(".legend-item .swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(colours) == 50
    rgb = [tuple(int(v) for v in re.findall(r"\d+", c)[:3]) for c in colours]
    assert len(set(rgb)) == 50, "a colour repeats"
    closest = min(math.dist(a, b) for i, a in enumerate(rgb) for b in rgb[i + 1 :])
    assert closest > 20, f"two colours are nearly the same ({closest:.1f} apart in RGB)"


def test_the_tooltip_lists_values_nearest_first_and_highlights_the_line(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    twenty = ids[:20]
    open_compare(page, twenty)
    chart = page.page.locator(LOSS)
    chart.locator('[data-testid="legend-more"]').click()
    tip = chart.locator('[data-testid="chart-tooltip"]')
    for fy in (0.2, 0.5, 0.8):
        before = tip.get_attribute("data-y")
        hover(page, LOSS, 0.3, fy)
        sync_api.expect(tip).to_be_visible()
        sync_api.expect(tip).not_to_have_attribute("data-y", before or "none")
        rows = tooltip_rows(page, LOSS)
        assert len(rows) == 12, "twelve rows, the rest counted"
        sync_api.expect(tip.locator(".tip-more")).to_have_text("+8 more")
        at = float(tip.get_attribute("data-y") or "nan")
        dist = [abs(float(v) - at) for _, v in rows]
        assert all(b >= a - 1e-3 for a, b in zip(dist, dist[1:])), (at, rows)
        # The nearest line is the highlighted one, in the chart and in the legend.
        sync_api.expect(chart).to_have_attribute("data-hover", rows[0][0])
        sync_api.expect(chart.locator(f'.legend-item.focused[data-key="{rows[0][0]}"]')).to_have_count(1)
    page.shot("charts-tooltip")
    # The mouse on a legend entry highlights its line.
    page.page.mouse.move(0, 0)
    sync_api.expect(tip).to_be_hidden()
    sync_api.expect(chart).to_have_attribute("data-hover", "")
    chart.locator(f'.legend-item[data-key="{twenty[5]}"]').hover()
    sync_api.expect(chart).to_have_attribute("data-hover", twenty[5])
    # And by keyboard: Tab to an entry.
    page.page.mouse.move(0, 0)
    chart.locator(f'.legend-item[data-key="{twenty[6]}"]').focus()
    sync_api.expect(chart).to_have_attribute("data-hover", twenty[6])
    page.page.keyboard.press("Tab")
    sync_api.expect(chart).to_have_attribute("data-hover", twenty[7])


def test_nan_and_infinities_are_marked_where_they_happened(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:20])
    chart = page.page.locator(LOSS)
    sync_api.expect(chart).to_have_attribute("data-nonfinite", "3")
    alt = chart.locator('[data-testid="chart-alt"]')
    text = alt.inner_text()
    for want in ("NaN at step 100", "Infinity at step 1500", "-Infinity at step 2000"):
        assert want in text, text
    assert "3 NaN or infinite values marked" in (chart.locator(".chart-plot").get_attribute("aria-label") or "")
    # The tooltip says so near the mark.
    hover(page, LOSS, 1500 / 2999, 0.5)
    sync_api.expect(chart.locator(".tip-note")).to_contain_text("Infinity at step 1500")


def test_the_charts_have_a_text_alternative(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:20])
    plot = page.page.locator(LOSS + " .chart-plot")
    assert plot.get_attribute("role") == "img"
    label = plot.get_attribute("aria-label") or ""
    # (Downsampled, the first bucket's extremes may come after step 0.)
    assert re.match(r"loss: 20 lines over step [0-9] to 2999; 3 NaN or infinite values marked\.$", label), label
    alt_id = plot.get_attribute("aria-describedby")
    table = page.page.locator(f"#{alt_id} table")
    sync_api.expect(table.locator("tbody tr")).to_have_count(20)
    first = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert first[0] == "0.5", first


def test_x_as_relative_or_wall_clock_time_or_another_metric(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:4])
    chart = page.page.locator(LOSS)
    select = page.page.locator('[data-testid="chart-x"]')
    select.select_option("time")
    page.page.wait_for_function("() => location.hash.includes('x=time')")
    page.page.wait_for_function(f"() => /over time [0-9.]+ ms to [0-9.]+ (ms|s)/.test(document.querySelector('{LOSS} .chart-plot').getAttribute('aria-label'))")
    select.select_option("wall")
    page.page.wait_for_function("() => location.hash.includes('x=wall')")
    page.page.wait_for_function(f"() => document.querySelector('{LOSS} .chart-plot').getAttribute('aria-label').includes('wall time')")
    # The runs ran one after the other: somewhere along the axis, one of them.
    tip = chart.locator('[data-testid="chart-tooltip"]')
    for fx in [i / 20 for i in range(1, 20)]:
        hover(page, LOSS, fx, 0.5)
        if tip.is_visible():
            break
    head = chart.locator(".tip-head").inner_text()
    assert re.search(r"wall time .*\d{1,2}:\d{2}", head), head
    assert canvas_colours(page, LOSS) > 2
    select.select_option("metrics.acc")
    page.page.wait_for_function("() => location.hash.includes('x=metrics.acc')")
    page.page.wait_for_function(f"() => document.querySelector('{LOSS} .chart-plot').getAttribute('aria-label').includes('over acc 0 to 0.996667')")
    # Paired by step: one point per tenth step of each run.
    sync_api.expect(chart).to_have_attribute("data-points", str(4 * 300))
    hover(page, LOSS, 0.5, 0.5)
    assert chart.locator(".tip-head").inner_text().startswith("acc ")
    # The address brings it back.
    page.page.reload()
    sync_api.expect(page.page.locator('[data-testid="chart-x"]')).to_have_value("metrics.acc")
    sync_api.expect(page.page.locator(LOSS)).to_have_attribute("data-points", str(4 * 300), timeout=10_000)


def test_runs_without_the_x_metric_are_named(page: Page, charts_project: tuple[Path, list[str]], server: str) -> None:
    _, ids = charts_project
    three = [ids[0], ids[1], ids[49]]
    page.goto(f"#/compare?ids={','.join(three)}&x=metrics.acc")
    chart = page.page.locator(LOSS)
    sync_api.expect(chart).to_have_attribute("data-series", "2", timeout=20_000)
    name = labels_by_id(server)[ids[49]]
    sync_api.expect(chart.locator(".chart-note")).to_have_text(f"Not drawn, as it has no `acc`: {name}.")


def test_zoom_and_crosshair_are_synced_and_the_zoom_is_in_the_address(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:3])
    page.page.wait_for_selector(ACC + " canvas")
    # The crosshair: the mouse in one chart moves the other's cursor.
    hover(page, LOSS, 0.5, 0.5)
    left = page.page.eval_on_selector(ACC + " .u-cursor-x", "e => e.getBoundingClientRect().left")
    over = page.page.locator(ACC + " .u-over").bounding_box()
    assert over is not None and abs(left - (over["x"] + over["width"] * 0.5)) < 4, (left, over)
    # Drag across the loss chart: both charts zoom, and the address keeps it.
    box = page.page.locator(LOSS + " .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.page.mouse.up()
    page.page.wait_for_function("() => /[?&]zoom=[0-9.e+-]+,[0-9.e+-]+/.test(location.hash)")
    zoom = re.search(r"zoom=([^&]+)", page.page.evaluate("location.hash"))
    assert zoom is not None
    x0, x1 = (float(v) for v in urllib.request.unquote(zoom.group(1)).split(","))
    assert 500 < x0 < 1000 and 1200 < x1 < 1700, (x0, x1)
    for chart in (LOSS, ACC):
        sync_api.expect(page.page.locator(chart + " .chart-info")).to_contain_text("zoomed")
    sync_api.expect(page.page.locator(ACC)).to_have_attribute("data-total", str(3 * len([s for s in range(0, 3000, 10) if x0 <= s <= x1])))
    # A fresh page of the address opens zoomed.
    url = page.page.url
    ctx, other = open_page(page.page.context.browser, page.base)
    try:
        other.page.goto(url)
        for chart in (LOSS, ACC):
            sync_api.expect(other.page.locator(chart + " .chart-info")).to_contain_text("zoomed", timeout=10_000)
        total = int(other.page.locator(LOSS).get_attribute("data-total") or 0)
        assert 0 < total < 3 * 3000
    finally:
        ctx.close()
    # A double-click goes back to the whole run, in every chart and the address.
    page.page.locator(ACC + " .u-over").dblclick()
    page.page.wait_for_function("() => !location.hash.includes('zoom=')")
    for chart in (LOSS, ACC):
        sync_api.expect(page.page.locator(chart + " .chart-info")).not_to_contain_text("zoomed")


def test_runs_grouped_by_a_parameter_are_a_mean_with_a_band(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:20])
    chart = page.page.locator(LOSS)
    before = canvas_colours(page, LOSS)
    page.page.locator('[data-testid="chart-group-by"]').select_option("params.lr")
    page.page.wait_for_function("() => location.hash.includes('group=params.lr')")
    # Four lr values: four lines, each a band.
    sync_api.expect(chart).to_have_attribute("data-lines", "4")
    sync_api.expect(chart).to_have_attribute("data-bands", "4")
    labels = sorted(chart.locator(".legend-item .legend-label").all_inner_texts())
    assert labels == ["lr=0.0001 (5)", "lr=0.001 (5)", "lr=0.01 (5)", "lr=0.1 (5)"]
    # The tooltip gives the mean and its range.
    hover(page, LOSS, 0.1, 0.5)
    values = [v for _, v in tooltip_rows(page, LOSS)]
    assert len(values) == 4 and all(re.fullmatch(r"[-0-9.e]+ \([-0-9.e]+ – [-0-9.e]+\)", v) for v in values), values
    page.shot("charts-group-band")
    page.page.locator('[data-testid="chart-band"]').select_option("std")
    page.page.wait_for_function("() => location.hash.includes('band=std')")
    sync_api.expect(chart).to_have_attribute("data-bands", "4")
    assert canvas_colours(page, LOSS) > 2 and before > 2
    # The address brings the grouping back; none gives twenty lines again.
    page.page.reload()
    sync_api.expect(page.page.locator(LOSS)).to_have_attribute("data-lines", "4", timeout=20_000)
    sync_api.expect(page.page.locator('[data-testid="chart-band"]')).to_have_value("std")
    page.page.locator('[data-testid="chart-group-by"]').select_option("")
    sync_api.expect(page.page.locator(LOSS)).to_have_attribute("data-lines", "20")


def test_runs_of_a_group_are_a_mean_with_a_band(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:20], "&group=group")
    chart = page.page.locator(LOSS)
    sync_api.expect(chart).to_have_attribute("data-lines", "2")
    sync_api.expect(chart).to_have_attribute("data-bands", "2")
    assert chart.locator(".legend-item").evaluate_all("els => els.map(e => e.dataset.key)") == ["group:warm", "group:cold"]
    assert chart.locator(".legend-item .legend-label").all_inner_texts() == ["warm (10)", "cold (10)"]
    # The group's resting value is the mean of its runs' last values.
    warm = chart.locator('.legend-item[data-key="group:warm"] .legend-value').inner_text()
    assert float(warm) == pytest.approx(sum(0.5 + i / 1000 for i in range(10)) / 10, abs=1e-4)
    sync_api.expect(page.page.locator('[data-testid="chart-group-by"]')).to_have_value("group")


def test_lines_coloured_on_a_scale_by_a_parameter_or_a_metric(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    twenty = ids[:20]
    open_compare(page, twenty)
    chart = page.page.locator(LOSS)
    chart.locator('[data-testid="legend-more"]').click()
    swatches = chart.locator(".legend-item .swatch")

    def colours() -> list[str]:
        return swatches.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")

    page.page.locator('[data-testid="chart-color-by"]').select_option("params.lr")
    page.page.wait_for_function("() => location.hash.includes('color=params.lr')")
    key = page.page.locator('[data-testid="chart-color-key"]')
    sync_api.expect(key).to_have_text("0.00010.1 (log)")
    by_lr = colours()
    # One colour per lr value (four), the same for runs of the same lr.
    assert len(set(by_lr)) == 4, by_lr
    assert all(by_lr[i] == by_lr[i % 4] for i in range(20))
    page.page.locator('[data-testid="chart-color-by"]').select_option("metrics.loss")
    sync_api.expect(key).to_have_text("0.50.519")
    by_loss = colours()
    assert len(set(by_loss)) == 20 and by_loss != by_lr
    # The address brings it back.
    page.page.reload()
    sync_api.expect(page.page.locator('[data-testid="chart-color-key"]')).to_have_text("0.50.519", timeout=20_000)


def test_lines_grouped_and_coloured_by_a_tag(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:20])
    chart = page.page.locator(LOSS)
    page.page.locator('[data-testid="chart-group-by"]').select_option("tags.arch")
    page.page.wait_for_function("() => location.hash.includes('group=tags.arch')")
    # Runs 0..19 tagged cnn, mlp, vit in turn: seven, seven and six.
    sync_api.expect(chart).to_have_attribute("data-lines", "3")
    sync_api.expect(chart).to_have_attribute("data-bands", "3")
    assert sorted(chart.locator(".legend-item .legend-label").all_inner_texts()) == ["arch=cnn (7)", "arch=mlp (7)", "arch=vit (6)"]
    # The address brings it back.
    page.page.reload()
    sync_api.expect(page.page.locator(LOSS)).to_have_attribute("data-lines", "3", timeout=20_000)
    sync_api.expect(page.page.locator('[data-testid="chart-group-by"]')).to_have_value("tags.arch")
    page.page.locator('[data-testid="chart-group-by"]').select_option("")
    sync_api.expect(chart).to_have_attribute("data-lines", "20")

    # Coloured by the tag: one colour per value, the same for runs that share it.
    page.page.locator('[data-testid="chart-color-by"]').select_option("tags.arch")
    page.page.wait_for_function("() => location.hash.includes('color=tags.arch')")
    sync_api.expect(page.page.locator('[data-testid="chart-color-key"]')).to_contain_text("arch")
    chart.locator('[data-testid="legend-more"]').click()
    colours = chart.locator(".legend-item .swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(colours) == 20
    assert len(set(colours)) == 3, colours
    assert all(colours[i] == colours[i % 3] for i in range(20))


def test_labels_built_from_parameters(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    open_compare(page, ids[:4])
    page.page.locator('[data-testid="chart-labels"] summary').click()
    page.page.locator('[data-testid="chart-labels"] input[value="lr"]').check()
    page.page.locator('[data-testid="chart-labels"] input[value="bs"]').check()
    page.page.wait_for_function("() => /label=lr(%2C|,)bs/.test(location.hash)")
    labels = page.page.locator(LOSS + " .legend-item .legend-label").all_inner_texts()
    assert labels == ["lr=0.1 bs=32", "lr=0.01 bs=64", "lr=0.001 bs=32", "lr=0.0001 bs=64"]
    title = page.page.locator(LOSS + " .legend-item").first.get_attribute("title") or ""
    assert ids[0][:8] in title, title


def test_the_run_page_zoom_is_synced_and_in_the_address(page: Page, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    page.goto(f"#/run/{ids[3]}?zoom=1000,2000")
    loss = '[data-testid="metric-chart"][data-metric="loss"]'
    acc = '[data-testid="metric-chart"][data-metric="acc"]'
    sync_api.expect(page.page.locator(loss)).to_have_attribute("data-total", "1001", timeout=10_000)
    sync_api.expect(page.page.locator(acc)).to_have_attribute("data-total", "101")
    # Only the marks of the range: +inf at 1500 and -inf at 2000.
    sync_api.expect(page.page.locator(loss)).to_have_attribute("data-nonfinite", "2")
    page.page.locator(loss + " .chart-reset").click()
    page.page.wait_for_function("() => !location.hash.includes('zoom=')")
    sync_api.expect(page.page.locator(acc)).to_have_attribute("data-total", "300")
    sync_api.expect(page.page.locator(loss + ' [data-testid="chart-legend"] .legend-value')).to_have_text("0.503")


def test_phone_layout_of_twenty_runs(browser: Any, server: str, charts_project: tuple[Path, list[str]]) -> None:
    _, ids = charts_project
    ctx, p = open_page(browser, server, 390, 844)
    try:
        p.goto(f"#/compare?ids={','.join(ids[:20])}")
        p.page.locator(LOSS).scroll_into_view_if_needed()
        sync_api.expect(p.page.locator(LOSS)).to_have_attribute("data-series", "20", timeout=20_000)
        for part in (LOSS, LOSS + ' [data-testid="chart-legend"]'):
            box = p.page.locator(part).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (part, box)
        sync_api.expect(p.page.locator(LOSS + " .legend-item")).to_have_count(8)
        p.page.locator(LOSS).scroll_into_view_if_needed()
        p.shot("charts-compare-20-phone")
        assert p.errors == []
    finally:
        ctx.close()
