"""The web page of `lab ui`, driven in headless Chromium.

The module makes one project with Lab's Python API, starts the real server on
it (`lab ui --port <free port> --host 127.0.0.1`) and drives the page with
Playwright's sync API and the machine's Chromium (`/usr/bin/chromium`, or
`$LAB_TEST_CHROMIUM`); Playwright's own browsers are not used. Screenshots of
each page go to `tests-output/ui/`.

Needs the `playwright` package (pip, in `make venv`) and Chromium (`apt-get
install chromium`; `.ci/run` installs it). Without either the tests fail and
say what is missing: they are part of `make test`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import REPO, lab_env

from playwright import sync_api

CHROMIUM = os.environ.get("LAB_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = REPO / "tests-output" / "ui"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module", autouse=True)
def chromium_is_there() -> None:
    assert Path(CHROMIUM).exists(), f"the browser tests need Chromium at {CHROMIUM}: `apt-get install chromium`, or set LAB_TEST_CHROMIUM"


def png_bytes(width: int = 48, height: int = 32) -> bytes:
    """A small RGB gradient as a PNG, with nothing but zlib and struct."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 5 % 256, y * 8 % 256, 160)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# Four runs that end with known accuracies (A best, B worst, C between), and a
# failed one without accuracy. A's `note` param is an HTML injection attempt.
MAKE_RUNS = """
import json, math, sys
from lab.experiment import Experiment

ids = {}
for key, lr, optimizer, final in [("B", 0.01, "sgd", 0.6), ("C", 0.001, "rmsprop", 0.75), ("A", 0.1, "adam", 0.9)]:
    e = Experiment("browser")
    with e.start_run():
        ids[key] = e.run_id
        e.log_parameters({"lr": lr, "optimizer": optimizer, "layers": [64, 32], "note": NOTE if key == "A" else "plain"})
        e.log_features(["sepal length", "sepal width"])
        e.set_tag("stage", "candidate")
        for step in range(300):
            e.log_metric("loss", 2.0 * math.exp(-step / 60) + 0.01 * (step % 7), step=step)
            e.log_metric("accuracy", final * (1 - math.exp(-step / 50)) if step < 299 else final, step=step)
        if key == "A":
            e.log_artifact("plots", "art/plots")
            e.log_artifact("notes.txt", "art/notes.txt")
e = Experiment("browser")
try:
    with e.start_run():
        ids["D"] = e.run_id
        e.log_parameter("lr", 0.3)
        e.log_metric("loss", 5.0)
        raise RuntimeError("diverged <script>alert(2)</script>")
except RuntimeError:
    pass
print(json.dumps(ids))
"""

LIVE_WRITER = """
import sys, time
from lab.experiment import Experiment
e = Experiment("live")
with e.start_run():
    e.log_parameter("lr", 0.5)
    print(e.run_id, flush=True)
    for step in range(90):
        e.log_metric("live_loss", 1.0 / (step + 1), step=step)
        time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    project = tmp_path_factory.mktemp("ui") / "project"
    (project / "art" / "plots").mkdir(parents=True)
    (project / "art" / "plots" / "roc.png").write_bytes(png_bytes())
    (project / "art" / "notes.txt").write_text("first line\n<b>not bold</b>\n")
    script = project / "make_runs.py"
    script.write_text(textwrap.dedent(MAKE_RUNS).replace("NOTE", repr(XSS)))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=project, env=lab_env(project), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(ids) == {"A", "B", "C", "D"}
    return project, ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


@contextlib.contextmanager
def lab_ui(project: Path, *args: str) -> Iterator[str]:
    """`lab ui` on a free port of 127.0.0.1 until the block ends; gives its base URL."""
    port = free_port()
    exe = Path(sys.executable).parent / "lab"
    log_path = project / f"server-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(exe), "ui", "--port", str(port), "--host", "127.0.0.1", *args],
            cwd=project,
            env=lab_env(project),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    # The page itself needs no token.
                    with urllib.request.urlopen(base + "/", timeout=5) as r:
                        index = r.read().decode()
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"`lab ui` did not answer: {log_path.read_text()}") from None
                    time.sleep(0.1)
            assert 'type="module"' in index, f"this build of `lab ui` has no web page (rebuild Lab with npm available):\n{index}"
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(ui_project: tuple[Path, dict[str, str]]) -> Iterator[str]:
    with lab_ui(ui_project[0]) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page plus what it reported: dialogs (none may open) and script errors."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if "Content Security Policy" in m.text else None)

    def _dialog(self, d: Any) -> None:
        self.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    def goto(self, hash_: str) -> None:
        self.page.goto(self.base + "/" + hash_)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def row_ids(self) -> list[str]:
        return self.page.eval_on_selector_all('[data-testid="run-row"]', "rows => rows.map(r => r.dataset.runId)")

    def wait_rows(self, n: int) -> list[str]:
        sync_api.expect(self.page.locator('[data-testid="run-row"]')).to_have_count(n, timeout=10_000)
        return self.row_ids()


def open_page(browser: Any, base: str, width: int = 1440, height: int = 900, **options: Any) -> tuple[Any, Page]:
    """A page in a context of its own (close the context when done)."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, **options)
    return ctx, Page(ctx.new_page(), base)


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    p = Page(ctx.new_page(), server)
    try:
        yield p
    finally:
        ctx.close()
    assert p.dialogs == [], "a dialog opened: injected script ran"
    assert p.errors == [], "the page reported errors"


def canvas_colours(page: Page, chart: str, at_least: int = 3, timeout: float = 5.0) -> int:
    """How many distinct colours the chart's canvas holds (sampled), waiting
    up to `timeout` seconds for at least `at_least` (drawing may lag a frame)."""
    deadline = time.monotonic() + timeout
    while True:
        n = _canvas_colours(page, chart)
        if n >= at_least or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def _canvas_colours(page: Page, chart: str) -> int:
    return page.page.eval_on_selector(
        chart + " canvas",
        """c => {
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4 * 3) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2] | (d[i + 3] << 24));
            return seen.size;
        }""",
    )


def test_runs_table_lists_every_run(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    shown = page.wait_rows(4)
    assert set(shown) == set(ids.values())
    assert shown[0] == ids["D"], "newest first by default"
    assert page.page.inner_text(".count") == "4 runs"
    # Status badges say the status in words.
    failed = page.page.locator(f'[data-testid="run-row"][data-run-id="{ids["D"]}"] .badge')
    assert failed.inner_text().strip().endswith("failed")
    page.shot("runs")


def test_clicking_a_metric_header_sorts(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    header = page.page.locator('[data-testid="sort-header-metrics.accuracy"]')
    header.click()
    page.page.wait_for_function("() => location.hash.includes('sort=accuracy')")
    sync_api.expect(page.page.locator('[data-testid="run-row"]').first).to_have_attribute("data-run-id", ids["B"])
    assert page.row_ids() == [ids["B"], ids["C"], ids["A"], ids["D"]], "smallest first, the run without it last"
    header.click()
    sync_api.expect(page.page.locator('[data-testid="run-row"]').first).to_have_attribute("data-run-id", ids["A"])
    assert page.row_ids() == [ids["A"], ids["C"], ids["B"], ids["D"]]
    assert "sort=-accuracy" in page.page.evaluate("() => location.hash")
    # The address reproduces the view.
    page.page.reload()
    sync_api.expect(page.page.locator('[data-testid="run-row"]').first).to_have_attribute("data-run-id", ids["A"])


def test_run_fields_in_the_address_read_as_fields_on_first_load(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    # Which names are run fields comes from the server (`names.fields`): a
    # fresh page must have them before it reads `sort` and `cols`, or
    # `start_time` and `user` would read as metrics.
    _, ids = ui_project
    page.goto("#/?sort=start_time&cols=user,accuracy")
    sync_api.expect(page.page.locator('[data-testid="run-row"]').first).to_have_attribute("data-run-id", ids["B"])
    assert page.row_ids() == [ids["B"], ids["C"], ids["A"], ids["D"]], "oldest first, as they were made"
    assert page.page.locator('[data-testid="sort-header-start_time"]').locator("..").get_attribute("aria-sort") == "ascending"
    assert page.page.locator('[data-testid="sort-header-metrics.accuracy"]').count() == 1
    assert page.page.locator('[data-testid="sort-header-metrics.user"]').count() == 0, "`user` is a field, not a metric"
    assert page.page.locator('[data-testid="filter-error"]').inner_text().strip() == ""


def test_typing_a_filter_changes_the_rows(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    box = page.page.locator('[data-testid="filter-input"]')
    box.fill("optimizer = 'adam'")
    box.press("Enter")
    assert page.wait_rows(1) == [ids["A"]]
    box.fill("lr < 0.05")
    box.press("Enter")
    assert set(page.wait_rows(2)) == {ids["B"], ids["C"]}
    assert page.page.inner_text(".count") == "2 runs"
    assert page.page.locator('[data-testid="filter-error"]').is_hidden()


def test_the_filter_placeholder_is_a_working_query(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    box = page.page.locator('[data-testid="filter-input"]')
    example = (box.get_attribute("placeholder") or "").split("e.g. ", 1)[1]
    assert example == "accuracy > 0.9 and status = finished"
    # A has 0.9: none is above it; with the bar lower, the finished runs are.
    box.fill(example)
    box.press("Enter")
    page.wait_rows(0)
    assert page.page.locator('[data-testid="filter-error"]').is_hidden()
    box.fill(example.replace("0.9", "0.7"))
    box.press("Enter")
    assert set(page.wait_rows(2)) == {ids["A"], ids["C"]}
    assert page.page.locator('[data-testid="filter-error"]').is_hidden()


def test_a_bad_query_shows_its_error(page: Page) -> None:
    page.goto("#/")
    page.wait_rows(4)
    box = page.page.locator('[data-testid="filter-input"]')
    box.fill("accuracy > and loss < 1")
    box.press("Enter")
    error = page.page.locator('[data-testid="filter-error"]')
    sync_api.expect(error).to_be_visible(timeout=10_000)
    assert "expected a value after `>`" in error.inner_text()
    # The bad part of the query is marked.
    assert error.locator("mark").inner_text() == "and"
    page.wait_rows(0)
    page.shot("bad-query")
    # An unknown name, and the fix.
    box.fill("acuracy > 0.5")
    box.press("Enter")
    sync_api.expect(error).to_contain_text("acuracy")
    assert error.locator("mark").inner_text() == "acuracy"
    box.fill("accuracy > 0.5")
    box.press("Enter")
    page.wait_rows(3)
    sync_api.expect(error).to_be_hidden()


def test_an_html_param_is_shown_as_text(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    # In the table (the `note` column is among the default ones) ...
    cell = page.page.locator(f'[data-testid="run-row"][data-run-id="{ids["A"]}"] .vt-cell', has_text=XSS)
    sync_api.expect(cell).to_have_count(1)
    # ... and on the run's page.
    page.goto(f"#/run/{ids['A']}")
    params = page.page.locator('[data-testid="params-table"]')
    sync_api.expect(params).to_contain_text(XSS)
    assert page.page.locator("img[src='x']").count() == 0, "the param became an element"
    # A failed run's error, with its traceback, as text too.
    page.goto(f"#/run/{ids['D']}")
    sync_api.expect(page.page.locator('[data-testid="run-status"]')).to_have_attribute("data-status", "failed")
    traceback = page.page.locator("pre.traceback")
    sync_api.expect(traceback).to_contain_text("RuntimeError: diverged <script>alert(2)</script>")
    assert page.page.locator("#app script").count() == 0
    page.shot("failed-run")
    assert page.dialogs == []


def test_the_run_page_draws_a_chart(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto(f"#/run/{ids['A']}")
    chart = '[data-testid="metric-chart"][data-metric="loss"]'
    page.page.wait_for_selector(chart + " canvas")
    page.page.wait_for_function(f"() => Number(document.querySelector('{chart}').dataset.points) > 0")
    assert page.page.get_attribute(chart, "data-total") == "300"
    assert canvas_colours(page, chart) > 2, "the canvas is blank"
    assert page.page.locator('[data-testid="metric-chart"]').count() == 2  # loss and accuracy
    sync_api.expect(page.page.locator('[data-testid="run-status"]')).to_have_attribute("data-status", "finished")
    # The legend shows the last value while the cursor is away.
    legend = page.page.locator(f'{chart} [data-testid="chart-legend"]')
    sync_api.expect(legend).to_contain_text("loss")
    assert legend.locator(".legend-value").inner_text() == f"{2.0 * math.exp(-299 / 60) + 0.01 * (299 % 7):.5g}"
    page.shot("run")


def test_an_image_artifact_previews(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto(f"#/run/{ids['A']}?tab=artifacts")
    tree = page.page.locator('[data-testid="artifact-tree"]')
    sync_api.expect(tree.locator('[data-testid="artifact-file"]')).to_have_count(2)
    png = tree.locator('[data-testid="artifact-file"][data-path$="roc.png"]')
    png.click()
    preview = page.page.locator('[data-testid="artifact-preview"] img')
    sync_api.expect(preview).to_be_visible()
    page.page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=artifact-preview] img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    assert preview.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [48, 32]
    page.shot("artifacts")
    # A text file shows as text (its HTML literally).
    tree.locator('[data-testid="artifact-file"][data-path$="notes.txt"]').click()
    sync_api.expect(page.page.locator('[data-testid="artifact-preview"] pre')).to_contain_text("<b>not bold</b>")


def test_compare_overlays_two_runs(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    for key in ("A", "B"):
        page.page.locator(f'[data-testid="run-row"][data-run-id="{ids[key]}"] [data-testid="row-select"]').check()
    button = page.page.locator('[data-testid="compare-button"]')
    sync_api.expect(button).to_have_text("Compare (2)")
    button.click()
    page.page.wait_for_function("() => location.hash.startsWith('#/compare')")
    chart = page.page.locator('[data-testid="compare-chart"][data-metric="loss"]')
    sync_api.expect(chart).to_have_attribute("data-series", "2", timeout=10_000)
    labels = chart.locator('[data-testid="chart-legend"] .legend-label').all_inner_texts()
    # One line per run, by name (by short id where a run has none).
    rows = {r["id"]: r.get("name") or r["short_id"] for r in get_json(page.base + "/api/v1/runs")["runs"]}
    assert sorted(labels) == sorted([rows[ids["A"]], rows[ids["B"]]])
    assert canvas_colours(page, '[data-testid="compare-chart"][data-metric="loss"]') > 2
    params = page.page.locator('[data-testid="compare-params"]')
    sync_api.expect(params.locator('tr.diff[data-name="lr"]')).to_have_count(1)
    sync_api.expect(params.locator('tr:not(.diff)[data-name="layers"]')).to_have_count(1)
    assert page.page.locator('[data-testid="parallel-coords"] canvas').count() == 1
    assert page.page.locator('[data-testid="scatter"]').get_attribute("data-points") == "2"
    page.shot("compare")


def test_a_server_with_a_token(browser: Any, ui_project: tuple[Path, dict[str, str]]) -> None:
    project, ids = ui_project
    with lab_ui(project, "--token", "s3cret-t0ken-0123") as base:
        with pytest.raises(urllib.error.HTTPError) as refused:
            get_json(base + "/api/v1/runs")
        assert refused.value.code == 401
        refused.value.close()
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = Page(ctx.new_page(), base)
            # The address `lab ui` prints: the page keeps the token and takes it out of the address.
            page.goto("#token=s3cret-t0ken-0123")
            page.wait_rows(4)
            assert page.page.evaluate("() => location.hash") == "#/"
            assert page.page.evaluate("() => sessionStorage.getItem('lab.token')") == "s3cret-t0ken-0123"
            sync_api.expect(page.page.locator("#live")).to_have_attribute("data-state", "live")
            # Images carry it in their address.
            page.goto(f"#/run/{ids['A']}?tab=artifacts&file=plots/roc.png")
            img = page.page.locator('[data-testid="artifact-preview"] img')
            sync_api.expect(img).to_have_attribute("src", re.compile(r"[?&]token=s3cret-t0ken-0123"))
            page.page.wait_for_function(
                "() => { const i = document.querySelector('[data-testid=artifact-preview] img'); return i && i.complete && i.naturalWidth > 0; }"
            )
            # Without it (a new tab), the page asks for it.
            other = Page(ctx.new_page(), base)
            other.goto("#/")
            box = other.page.locator('[data-testid="token-box"]')
            sync_api.expect(box).to_be_visible()
            box.locator("input").fill("s3cret-t0ken-0123")
            box.locator("input").press("Enter")
            other.wait_rows(4)
            sync_api.expect(box).to_have_count(0)
            assert page.dialogs == other.dialogs == []
            assert page.errors == other.errors == []
        finally:
            ctx.close()


def test_the_page_deletes_a_run_and_a_rebinding_page_cannot(
    browser: Any, ui_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    # A copy of the project: the other tests keep their four runs.
    source, ids = ui_project
    project = tmp_path / "project"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("server-*.log"))
    runs = project / ".lab" / "runs"
    with lab_ui(project) as base:
        port = base.rsplit(":", 1)[1]
        # A hostile page whose DNS name now points at 127.0.0.1: for the
        # browser it is the same origin as the server, so it could read every
        # answer, but each request names its own host.
        rebinding = browser.browser_type.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"]
        )
        try:
            hostile = rebinding.new_page()
            answer = hostile.goto(f"http://evil.example:{port}/")
            assert answer is not None and answer.status == 421
            seen = hostile.evaluate(
                """async (id) => {
                    const list = await fetch("/api/v1/runs");
                    const del = await fetch("/api/v1/runs/" + id, { method: "DELETE" });
                    return [list.status, await list.text(), del.status];
                }""",
                ids["B"],
            )
        finally:
            rebinding.close()
        assert seen[0] == 421 and seen[2] == 421, seen
        assert ids["A"] not in seen[1] and '"bad_host"' in seen[1], seen
        assert (runs / ids["B"][:8]).exists(), "the hostile page deleted a run"
        # The page itself deletes (its DELETE carries the browser's `Origin`),
        # at either loopback name.
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            for at, key, left in [(base, "B", 3), (base.replace("127.0.0.1", "localhost"), "C", 2)]:
                page = Page(ctx.new_page(), at)
                page.goto(f"#/run/{ids[key]}")
                sync_api.expect(page.page.locator('[data-testid="run-status"]')).to_have_attribute("data-status", "finished")
                page.page.get_by_role("button", name="Delete…").click()
                page.page.get_by_role("button", name="Delete", exact=True).click()
                assert ids[key] not in page.wait_rows(left)
                assert not (runs / ids[key][:8]).exists()
                assert page.dialogs == [] and page.errors == []
        finally:
            ctx.close()


def test_the_column_chooser_changes_the_columns(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    note = page.page.locator('[data-testid="sort-header-params.note"]')
    stage = page.page.locator('[data-testid="sort-header-tags.stage"]')
    sync_api.expect(note).to_have_count(1)
    assert stage.count() == 0, "tags are not among the default columns"
    button = page.page.get_by_role("button", name="Columns ▾")
    button.click()
    chooser = page.page.get_by_role("dialog", name="Columns")
    sync_api.expect(chooser).to_be_visible()
    assert button.get_attribute("aria-expanded") == "true"
    # Finding a column hides the others; ticking one adds it to the table and the address.
    chooser.locator(".chooser-search").fill("sta")
    sync_api.expect(chooser.locator(".chooser-item:visible")).to_have_count(1)
    chooser.locator(".chooser-item", has_text="stage").locator("input").check()
    sync_api.expect(stage).to_have_count(1)
    assert "cols=" in page.page.evaluate("() => location.hash")
    cell = page.page.locator(f'[data-testid="run-row"][data-run-id="{ids["A"]}"] .vt-cell', has_text="candidate")
    sync_api.expect(cell).to_have_count(1)
    chooser.locator(".chooser-search").fill("")
    chooser.locator(".chooser-item", has_text="note").locator("input").uncheck()
    sync_api.expect(note).to_have_count(0)
    # Escape closes it and gives the focus back to its button.
    page.page.keyboard.press("Escape")
    sync_api.expect(chooser).to_have_count(0)
    assert button.get_attribute("aria-expanded") == "false"
    assert page.page.evaluate("() => document.activeElement.textContent") == "Columns ▾"
    # The address reproduces the choice.
    page.page.reload()
    page.wait_rows(4)
    sync_api.expect(stage).to_have_count(1)
    sync_api.expect(note).to_have_count(0)
    # A click outside closes it; "Default" brings back the default columns.
    button.click()
    sync_api.expect(chooser).to_be_visible()
    page.page.locator(".count").click()
    sync_api.expect(chooser).to_have_count(0)
    button.click()
    chooser.get_by_role("button", name="Default").click()
    sync_api.expect(note).to_have_count(1)
    sync_api.expect(stage).to_have_count(0)
    sync_api.expect(chooser).to_have_count(0)
    assert "cols=" not in page.page.evaluate("() => location.hash")


def test_status_chips_and_the_experiment_select_filter(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    failed = page.page.locator(".status-chip.status-failed")
    finished = page.page.locator(".status-chip.status-finished")
    failed.click()
    assert page.wait_rows(1) == [ids["D"]]
    sync_api.expect(failed).to_have_attribute("aria-pressed", "true")
    assert "status=failed" in page.page.evaluate("() => location.hash")
    finished.click()
    page.wait_rows(4)
    assert "status=finished,failed" in page.page.evaluate("() => location.hash")
    failed.click()
    assert set(page.wait_rows(3)) == {ids["A"], ids["B"], ids["C"]}
    sync_api.expect(failed).to_have_attribute("aria-pressed", "false")
    select = page.page.get_by_label("Experiment")
    assert select.locator("option").first.inner_text() == "all experiments"
    select.select_option("browser")
    page.page.wait_for_function("() => location.hash.includes('experiment=browser')")
    # The address reproduces the view.
    page.page.reload()
    assert set(page.wait_rows(3)) == {ids["A"], ids["B"], ids["C"]}
    sync_api.expect(finished).to_have_attribute("aria-pressed", "true")
    sync_api.expect(page.page.get_by_label("Experiment")).to_have_value("browser")
    assert page.page.inner_text(".count") == "3 runs"


def test_the_keyboard_ticks_runs_and_the_tab_keeps_them(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    _, ids = ui_project
    page.goto("#/")
    shown = page.wait_rows(4)
    rows = page.page.locator('[data-testid="run-row"]')
    active = page.page.locator('[data-testid="run-row"].active')
    compare = page.page.locator('[data-testid="compare-button"]')
    nav = page.page.locator('.topnav a[data-nav="compare"]')
    clear = page.page.get_by_role("button", name="Clear")
    sync_api.expect(compare).to_have_text("Compare (0)")
    sync_api.expect(compare).to_be_disabled()
    sync_api.expect(clear).to_be_hidden()
    # Arrows move the active row, space ticks it, End goes to the last one.
    rows.first.focus()
    page.page.keyboard.press("ArrowDown")
    sync_api.expect(active).to_have_attribute("data-run-id", shown[1])
    page.page.keyboard.press("Space")
    sync_api.expect(active).to_have_attribute("aria-selected", "true")
    page.page.keyboard.press("End")
    sync_api.expect(active).to_have_attribute("data-run-id", shown[3])
    page.page.keyboard.press("Space")
    sync_api.expect(compare).to_have_text("Compare (2)")
    sync_api.expect(compare).to_be_enabled()
    href = nav.get_attribute("href") or ""
    assert href.startswith("#/compare?ids=") and shown[1] in href and shown[3] in href
    # A control-click ticks without opening the run.
    rows.nth(0).click(modifiers=["Control"])
    sync_api.expect(compare).to_have_text("Compare (3)")
    assert page.page.evaluate("() => location.hash") == "#/"
    # The header's box ticks the runs in view; Clear unticks every run and that box.
    page.page.locator(".select-page").check()
    sync_api.expect(compare).to_have_text("Compare (4)")
    clear.click()
    sync_api.expect(compare).to_have_text("Compare (0)")
    sync_api.expect(page.page.locator('[data-testid="run-row"][aria-selected="true"]')).to_have_count(0)
    assert not page.page.locator(".select-page").is_checked()
    assert nav.get_attribute("href") == "#/compare"
    # Enter opens the active run; it is ticked there, and the table shows it ticked on the way back,
    # with the same row active.
    rows.nth(2).focus()
    page.page.keyboard.press("Enter")
    page.page.wait_for_function("() => location.hash.startsWith('#/run/')")
    assert shown[2] in page.page.evaluate("() => location.hash")
    tick = page.page.locator(".run-title button[aria-pressed]")
    sync_api.expect(tick).to_have_text("Select for compare")
    tick.click()
    sync_api.expect(tick).to_have_text("✓ Selected for compare")
    sync_api.expect(tick).to_have_attribute("aria-pressed", "true")
    page.page.go_back()
    page.wait_rows(4)
    sync_api.expect(active).to_have_attribute("data-run-id", shown[2])
    sync_api.expect(active).to_have_attribute("aria-selected", "true")
    sync_api.expect(compare).to_have_text("Compare (1)")
    # The tab keeps the ticks across a reload.
    page.page.reload()
    page.wait_rows(4)
    sync_api.expect(compare).to_have_text("Compare (1)")
    sync_api.expect(page.page.locator(f'[data-testid="run-row"][data-run-id="{shown[2]}"]')).to_have_attribute("aria-selected", "true")


def test_a_live_run_appears_and_its_chart_grows(page: Page, ui_project: tuple[Path, dict[str, str]]) -> None:
    project, ids = ui_project
    page.goto("#/")
    page.wait_rows(4)
    sync_api.expect(page.page.locator("#live")).to_have_attribute("data-state", "live")
    (project / "live.py").write_text(textwrap.dedent(LIVE_WRITER))
    with subprocess.Popen(
        [sys.executable, str(project / "live.py")], cwd=project, env=lab_env(project), stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None
        run_id = writer.stdout.readline().strip()
        # It appears in the table without a reload, on top (newest first).
        row = page.page.locator(f'[data-testid="run-row"][data-run-id="{run_id}"]')
        sync_api.expect(row).to_have_count(1, timeout=10_000)
        assert page.row_ids()[0] == run_id
        assert row.locator(".badge").inner_text().strip().endswith("running")
        row.click()
        chart = '[data-testid="metric-chart"][data-metric="live_loss"]'
        page.page.wait_for_selector(chart + " canvas", timeout=10_000)
        seen = [int(page.page.get_attribute(chart, "data-points") or 0)]
        deadline = time.monotonic() + 10
        while writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
            seen.append(int(page.page.get_attribute(chart, "data-points") or 0))
            if len(seen) == 3:
                page.shot("live")  # while it runs
        writer.wait(timeout=30)
    grew = [b for a, b in zip(seen, seen[1:]) if b > a]
    assert grew, f"the chart did not grow while the run logged: {seen}"
    # Once it ends: every point, and the badge says so.
    sync_api.expect(page.page.locator('[data-testid="run-status"]')).to_have_attribute("data-status", "finished", timeout=10_000)
    page.page.wait_for_function(f"() => document.querySelector('{chart}').dataset.points === '90'", timeout=10_000)
    assert page.dialogs == []


# A run that prints: colours, an HTML injection attempt, a progress bar,
# both streams; then one that prints while the page follows it.
PRINTER = """
import json, sys, time
from lab.experiment import Experiment
e = Experiment("printer")
with e.start_run():
    print("\\x1b[1;31mERROR\\x1b[0m in \\x1b[32mgreen\\x1b[0m and \\x1b[38;5;208morange\\x1b[0m")
    print(XSS)
    for i in range(101):
        sys.stdout.write(f"\\r{i:3d}% |{'#' * (i // 5):<20}|")
    print()
    for epoch in range(40):
        print(f"epoch {epoch:2d}  loss {1 / (epoch + 1):.4f}  accuracy {1 - 1 / (epoch + 2):.4f}")
    print("a warning on stderr", file=sys.stderr)
print(json.dumps(e.run_id))
"""

SLOW_PRINTER = """
import sys, time
from lab.experiment import Experiment
e = Experiment("slow")
with e.start_run():
    sys.__stderr__.write(e.run_id + "\\n")
    sys.__stderr__.flush()
    for i in range(40):
        print(f"tick {i}", flush=True)
        time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def logs_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    project = tmp_path_factory.mktemp("logs") / "project"
    project.mkdir()
    (project / "printer.py").write_text(textwrap.dedent(PRINTER).replace("XSS", repr(XSS)))
    proc = subprocess.run(
        [sys.executable, str(project / "printer.py")], cwd=project, env=lab_env(project), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return project, json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_logs_tab_shows_colours_as_styles_and_searches(browser: Any, logs_project: tuple[Path, str]) -> None:
    project, run_id = logs_project
    with lab_ui(project) as base:
        for name, size in [("logs", (1440, 900)), ("logs-phone", (390, 844))]:
            ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
            page = Page(ctx.new_page(), base)
            try:
                page.goto(f"#/run/{run_id}?tab=logs")
                lines = page.page.locator(".log-line")
                sync_api.expect(lines).to_have_count(44, timeout=10_000)
                first = lines.nth(0)
                # Colours are classes and styles on spans; the escape bytes are gone.
                assert first.inner_text().endswith("ERROR in green and orange")
                assert first.locator(".log-text span.fg-c1.b").inner_text() == "ERROR"
                assert first.locator(".log-text span.fg-c2").inner_text() == "green"
                assert "rgb(255, 135, 0)" in first.locator(".log-text span").nth(2).evaluate("s => getComputedStyle(s).color")
                # HTML from the log is text.
                assert lines.nth(1).locator(".log-text").inner_text() == XSS
                assert page.page.locator(".log-lines img").count() == 0
                # The progress bar is its final state; stderr is marked.
                assert lines.nth(2).locator(".log-text").inner_text() == "100% |####################|"
                sync_api.expect(page.page.locator(".log-line.stderr")).to_have_count(1)
                sync_api.expect(page.page.locator(".log-status")).to_contain_text("44 lines")
                sync_api.expect(page.page.locator(".log-status")).to_contain_text("ended")
                # The page is no wider than the screen.
                assert page.page.evaluate("document.documentElement.scrollWidth") <= size[0]
                page.page.eval_on_selector(".log-lines", "l => { l.scrollTop = 0; }")
                page.shot(name)
                page.page.fill(".log-search", "EPOCH 3")
                sync_api.expect(lines).to_have_count(10)  # epochs 30-39, whatever the case
                sync_api.expect(page.page.locator(".log-status")).to_contain_text("10 of 44 lines")
                page.page.fill(".log-search", "")
                page.page.select_option(".log-bar select", "stderr")
                sync_api.expect(lines).to_have_count(1)
                assert lines.nth(0).locator(".log-text").inner_text() == "a warning on stderr"
            finally:
                ctx.close()
            assert page.dialogs == [] and page.errors == []


def test_the_logs_tab_follows_a_running_run(browser: Any, logs_project: tuple[Path, str]) -> None:
    project, _ = logs_project
    (project / "slow.py").write_text(textwrap.dedent(SLOW_PRINTER))
    with lab_ui(project) as base:
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        page = Page(ctx.new_page(), base)
        try:
            with subprocess.Popen(
                [sys.executable, str(project / "slow.py")], cwd=project, env=lab_env(project), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            ) as writer:
                assert writer.stderr is not None
                run_id = writer.stderr.readline().strip()
                page.goto(f"#/run/{run_id}?tab=logs")
                lines = page.page.locator(".log-line")
                sync_api.expect(lines.first).to_be_visible(timeout=10_000)
                sync_api.expect(page.page.locator(".log-status")).to_contain_text("following the run")
                seen = [lines.count()]
                while writer.poll() is None:
                    time.sleep(0.5)
                    seen.append(lines.count())
                writer.wait(timeout=30)
            assert any(b > a for a, b in zip(seen, seen[1:])), f"the lines did not grow while the run printed: {seen}"
            # The ticks, and the run id the script wrote to fd 2 (captured too).
            sync_api.expect(lines).to_have_count(41, timeout=10_000)
            sync_api.expect(page.page.locator(".log-status")).to_contain_text("ended", timeout=10_000)
            assert lines.last.locator(".log-text").inner_text() == "tick 39"
            # Following keeps the newest line in view.
            assert lines.last.is_visible()
        finally:
            ctx.close()
        assert page.dialogs == [] and page.errors == []
