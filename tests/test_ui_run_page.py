"""The run page in headless Chromium: media (images with a step slider,
tables), the dataset and command as recorded, a crashed run explained, the
`lab.load_model(...)` line of each model, the theme button, and the phone
layout. The server and browser helpers are tests/test_ui_browser.py's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright import sync_api

from conftest import lab_env
from test_ui_browser import browser, lab_ui, open_page, Page, png_bytes  # noqa: F401 (browser: a fixture)

expect = sync_api.expect

# A run with media, a model and an image artifact, started as
# `python make_runs.py --lr 3` with a dataset given as plain text; then a run
# killed at step 41 with an artifact it never got to copy.
MAKE_RUNS = """
import json, os, signal, subprocess, sys
import numpy as np
import lab

e = lab.Experiment("media", dataset="mnist-train")
with e.start_run():
    e.log_parameter("lr", float(sys.argv[2]))
    for step in range(3):
        img = np.zeros((24, 32, 3), dtype=np.uint8)
        img[..., step] = 255
        e.log_image("samples", img)
        e.log_metric("loss", 1.0 / (step + 1), step=step)
    e.log_image("mask", np.eye(8) * 0.5)
    rows = [{"name": f"item-{i:03d}", "score": (i * 37) % 600 / 10, "ok": i % 2 == 0} for i in range(600)]
    e.log_table("predictions", rows)
    e.log_model("clf", {"weights": [1, 2, 3]})
    e.log_artifact("plots", "art/plots")
    media_id = e.run_id

subprocess.run([sys.executable, "crash.py"], capture_output=True)
print(json.dumps({"media": media_id, "crashed": open("crashed.txt").read()}))
"""

CRASH = """
import os, signal, lab
e = lab.Experiment("crashy")
with e.start_run():
    # Not printed: a killed run's last output may not reach its console.
    with open("crashed.txt", "w") as f:
        f.write(e.run_id)
    for step in range(42):
        e.log_metric("loss", 10.0 - step / 10, step=step)
    e.log_artifact("ckpt", "art/plots")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def run_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    project = tmp_path_factory.mktemp("runpage") / "project"
    (project / "art" / "plots").mkdir(parents=True)
    (project / "art" / "plots" / "roc.png").write_bytes(png_bytes(480, 320))
    (project / "make_runs.py").write_text(textwrap.dedent(MAKE_RUNS))
    (project / "crash.py").write_text(textwrap.dedent(CRASH))
    proc = subprocess.run(
        [sys.executable, "make_runs.py", "--lr", "3"], cwd=project, env=lab_env(project), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return project, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def server(run_project: tuple[Path, dict[str, str]]) -> Iterator[str]:
    with lab_ui(run_project[0]) as base:
        yield base


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    ctx, p = open_page(browser, server)
    try:
        yield p
    finally:
        ctx.close()
    assert p.dialogs == [] and p.errors == [], (p.dialogs, p.errors)


def image_state(p: Page, key: str) -> dict:
    return p.page.eval_on_selector(
        f'[data-testid="media-key"][data-key="{key}"] img',
        """img => {
            if (!img.complete || !img.naturalWidth) return {step: img.dataset.step, loaded: false};
            const c = document.createElement("canvas");
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext("2d"); g.drawImage(img, 0, 0);
            const d = g.getImageData(1, 1, 1, 1).data;
            return {step: img.dataset.step, loaded: true, width: img.naturalWidth, rgb: [d[0], d[1], d[2]]};
        }""",
    )


def wait_image(p: Page, key: str, step: str) -> dict:
    state: dict = {}
    for _ in range(100):
        state = image_state(p, key)
        if state["step"] == step and state["loaded"]:
            return state
        p.page.wait_for_timeout(50)
    raise AssertionError(f"the image of `{key}` at step {step} did not load: {state}")


def test_images_have_a_step_slider(page: Page, run_project: tuple[Path, dict[str, str]]) -> None:
    ids = run_project[1]
    page.goto(f"#/run/{ids['media']}")
    section = page.page.get_by_test_id("media-section")
    expect(section).to_be_visible(timeout=10_000)
    samples = page.page.locator('[data-testid="media-key"][data-key="samples"]')
    # It opens at the newest step: blue, step 2.
    assert wait_image(page, "samples", "2")["rgb"] == [0, 0, 255]
    expect(samples.get_by_test_id("media-step")).to_have_text("step 2 (3 of 3)")
    slider = samples.get_by_test_id("media-slider")
    expect(slider).to_have_attribute("aria-label", "Step of samples")
    slider.focus()
    page.page.keyboard.press("Home")
    assert wait_image(page, "samples", "0") == {"step": "0", "loaded": True, "width": 32, "rgb": [255, 0, 0]}
    page.page.keyboard.press("ArrowRight")
    assert wait_image(page, "samples", "1")["rgb"] == [0, 255, 0]
    expect(samples.get_by_test_id("media-step")).to_have_text("step 1 (2 of 3)")
    # A key of one image has no slider; a small image is scaled up, sharp.
    mask = page.page.locator('[data-testid="media-key"][data-key="mask"]')
    expect(mask.get_by_test_id("media-slider")).to_be_hidden()
    assert wait_image(page, "mask", "0")["rgb"] == [128, 128, 128]
    assert mask.locator("img").evaluate("i => [i.width, getComputedStyle(i).imageRendering]") == [160, "pixelated"]
    page.shot("run-media")


def test_tables_are_sortable_and_capped(page: Page, run_project: tuple[Path, dict[str, str]]) -> None:
    page.goto(f"#/run/{run_project[1]['media']}")
    table = page.page.locator('[data-testid="media-key"][data-key="predictions"]')
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(500, timeout=10_000)
    expect(table.get_by_test_id("media-table-note")).to_have_text("The first 500 of 600 rows.")
    assert table.locator("thead th").all_inner_texts() == ["name", "score", "ok"]
    assert rows.first.locator("td").all_inner_texts() == ["item-000", "0", "true"]
    score = table.locator("thead th").nth(1)
    score.get_by_role("button").click()
    expect(score).to_have_attribute("aria-sort", "ascending")
    score.get_by_role("button").click()
    expect(score).to_have_attribute("aria-sort", "descending")
    # 59.9 is the largest score of the 600 rows, whichever 500 were first.
    assert rows.first.locator("td").nth(1).inner_text() == "59.9"
    expect(table.get_by_test_id("media-table-note")).to_have_text("The first 500 of 600 rows in this order.")


def test_dataset_text_and_the_full_command(page: Page, run_project: tuple[Path, dict[str, str]]) -> None:
    page.goto(f"#/run/{run_project[1]['media']}")
    expect(page.page.get_by_test_id("run-dataset")).to_have_text("mnist-train", timeout=10_000)
    python = Path(sys.executable).name
    expect(page.page.get_by_test_id("run-command")).to_have_text(f"{python} make_runs.py --lr 3")


def test_a_crashed_run_says_what_happened(page: Page, run_project: tuple[Path, dict[str, str]]) -> None:
    page.goto(f"#/run/{run_project[1]['crashed']}")
    panel = page.page.get_by_test_id("crash-panel")
    expect(panel).to_be_visible(timeout=10_000)
    expect(panel).to_contain_text("This run crashed.")
    expect(panel).to_contain_text("stopped without ending the run")
    expect(page.page.get_by_test_id("crash-last-point")).to_contain_text("Last point: step 41 of loss (5.9)")
    expect(page.page.get_by_test_id("crash-not-copied")).to_contain_text("ckpt from")
    page.shot("run-crashed")


def test_each_model_has_a_load_model_line_that_works(browser: Any, server: str, run_project: tuple[Path, dict[str, str]]) -> None:
    project, ids = run_project
    ctx, p = open_page(browser, server, permissions=["clipboard-read", "clipboard-write"])
    try:
        p.goto(f"#/run/{ids['media']}?tab=models")
        line = p.page.get_by_test_id("load-model-line")
        want = f'lab.load_model("{ids["media"][:8]}", "clf")'
        expect(line).to_have_text(want, timeout=10_000)
        p.page.get_by_test_id("copy-button").click()
        expect(p.page.get_by_test_id("copy-button")).to_have_text("Copied")
        assert p.page.evaluate("navigator.clipboard.readText()") == want
    finally:
        ctx.close()
    # The line loads the model, as written.
    out = subprocess.run(
        [sys.executable, "-c", f"import lab; print({want})"], cwd=project, env=lab_env(project), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'weights': [1, 2, 3]}"


def background(p: Page) -> str:
    return p.page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_the_theme_button_cycles_system_light_dark_and_is_remembered(browser: Any, server: str, run_project: tuple[Path, dict[str, str]]) -> None:
    ctx, p = open_page(browser, server, color_scheme="dark")
    try:
        p.goto(f"#/run/{run_project[1]['media']}")
        button = p.page.get_by_test_id("theme-toggle")
        expect(button).to_have_attribute("data-theme", "system", timeout=10_000)
        root = p.page.locator("html")
        expect(root).to_have_attribute("data-theme", "dark")
        dark = background(p)
        button.click()
        expect(button).to_have_attribute("data-theme", "light")
        expect(root).to_have_attribute("data-theme", "light")
        light = background(p)
        assert light != dark
        p.shot("run-light")
        button.click()
        expect(root).to_have_attribute("data-theme", "dark")
        p.page.reload()
        expect(p.page.get_by_test_id("theme-toggle")).to_have_attribute("data-theme", "dark", timeout=10_000)
        expect(root).to_have_attribute("data-theme", "dark")
        assert background(p) == dark
        wait_image(p, "samples", "2")
        p.shot("run-dark")
        p.page.get_by_test_id("theme-toggle").click()
        expect(p.page.get_by_test_id("theme-toggle")).to_have_attribute("data-theme", "system")
        # Back to the system's: this browser says dark; a light system is followed too.
        expect(root).to_have_attribute("data-theme", "dark")
        p.page.emulate_media(color_scheme="light")
        expect(root).to_have_attribute("data-theme", "light")
        assert p.errors == []
    finally:
        ctx.close()


def page_width(p: Page) -> int:
    return p.page.evaluate("document.documentElement.scrollWidth")


def test_the_run_page_fits_a_phone(browser: Any, server: str, run_project: tuple[Path, dict[str, str]]) -> None:
    ids = run_project[1]
    ctx, p = open_page(browser, server, 390, 844)
    try:
        p.goto(f"#/run/{ids['media']}")
        expect(p.page.get_by_test_id("media-section")).to_be_visible(timeout=10_000)
        wait_image(p, "samples", "2")
        assert page_width(p) <= 390
        # Every tab is in view, none cut at the screen's edge.
        tabs = p.page.locator(".tabs")
        assert tabs.evaluate("t => t.scrollWidth <= t.clientWidth"), "the tabs row scrolls sideways"
        p.shot("run-phone")
        p.goto(f"#/run/{ids['media']}?tab=models")
        expect(p.page.get_by_test_id("load-model-line")).to_be_visible(timeout=10_000)
        assert page_width(p) <= 390
        p.shot("run-models-phone")
        p.goto(f"#/run/{ids['media']}?tab=artifacts&file=plots/roc.png")
        img = p.page.locator('[data-testid="artifact-preview"] img')
        expect(img).to_be_visible(timeout=10_000)
        p.page.wait_for_function("() => { const i = document.querySelector('[data-testid=\"artifact-preview\"] img'); return i && i.complete && i.naturalWidth > 0; }")
        box = img.bounding_box()
        assert box is not None and box["width"] >= 300, box
        assert page_width(p) <= 390
        p.shot("run-artifact-phone")
        p.goto(f"#/run/{ids['crashed']}")
        expect(p.page.get_by_test_id("crash-panel")).to_be_visible(timeout=10_000)
        assert page_width(p) <= 390
        p.shot("run-crashed-phone")
        assert p.errors == []
    finally:
        ctx.close()


def test_desktop_screenshots(browser: Any, server: str, run_project: tuple[Path, dict[str, str]]) -> None:
    ids = run_project[1]
    ctx, p = open_page(browser, server, 1440, 900)
    try:
        p.goto(f"#/run/{ids['media']}")
        expect(p.page.get_by_test_id("media-section")).to_be_visible(timeout=10_000)
        wait_image(p, "samples", "2")
        expect(p.page.locator('[data-testid="media-key"][data-key="predictions"] tbody tr')).to_have_count(500)
        p.shot("run-desktop")
        p.goto(f"#/run/{ids['media']}?tab=models")
        expect(p.page.get_by_test_id("load-model-line")).to_be_visible(timeout=10_000)
        p.shot("run-models-desktop")
        assert p.errors == []
    finally:
        ctx.close()


LIVE_IMAGES = """
import sys, time
import numpy as np
import lab
e = lab.Experiment("live-media")
with e.start_run():
    print(e.run_id, flush=True)
    for step in range(60):
        e.log_image("frames", np.full((8, 8), step * 6, np.uint8))
        time.sleep(0.25)
"""


def test_a_running_run_s_new_images_join_the_slider(browser: Any, server: str, run_project: tuple[Path, dict[str, str]]) -> None:
    # No metric is logged: the page reads the media again by itself.
    project = run_project[0]
    (project / "live_images.py").write_text(textwrap.dedent(LIVE_IMAGES))
    env = lab_env(project)
    env["LAB_CAPTURE"] = "0"
    writer = subprocess.Popen([sys.executable, "live_images.py"], cwd=project, env=env, stdout=subprocess.PIPE, text=True)
    ctx, p = open_page(browser, server)
    try:
        assert writer.stdout is not None
        run_id = writer.stdout.readline().strip()
        p.goto(f"#/run/{run_id}")
        step = p.page.locator('[data-testid="media-key"][data-key="frames"] [data-testid="media-step"]')
        expect(step).to_be_visible(timeout=10_000)
        first = int(step.inner_text().split()[1])
        # At the newest step, the slider follows the run: several steps later, without a reload.
        p.page.wait_for_function(
            """n => {
                const s = document.querySelector('[data-key="frames"] [data-testid="media-step"]');
                return s !== null && parseInt(s.textContent.split(" ")[1]) >= n;
            }""",
            arg=first + 8,
            timeout=8_000,
        )
        # ... while it still runs (it takes 15 s): not only once it ended.
        expect(p.page.get_by_test_id("run-status").first).to_have_attribute("data-status", "running")
        assert p.errors == []
    finally:
        ctx.close()
        writer.kill()
        writer.wait(timeout=60)
        assert writer.stdout is not None
        writer.stdout.close()


def test_name_tags_and_note_are_edited_in_place(browser: Any, server: str, run_project: tuple[Path, dict[str, str]]) -> None:
    project, ids = run_project
    run = ids["media"]
    ctx, p = open_page(browser, server)
    other_ctx, other = open_page(browser, server)
    try:
        p.goto(f"#/run/{run}")
        other.goto(f"#/run/{run}")
        name = p.page.get_by_test_id("run-name")
        expect(name).to_be_visible(timeout=10_000)
        # Rename: Escape cancels, a bad name is refused with the server's word, Enter saves.
        p.page.get_by_test_id("run-name-edit").click()
        field = p.page.get_by_test_id("run-name-input")
        field.fill("never-saved")
        field.press("Escape")
        expect(p.page.get_by_test_id("run-name-input")).to_have_count(0)
        expect(name).not_to_contain_text("never-saved")
        p.page.get_by_test_id("run-name-edit").click()
        field = p.page.get_by_test_id("run-name-input")
        field.fill("")
        field.press("Enter")
        expect(p.page.get_by_test_id("run-name-error")).to_contain_text("name")
        field.fill("mnist <b>baseline</b>")
        field.press("Enter")
        expect(name).to_have_text("mnist <b>baseline</b>✎")
        # Another page open on the run shows the new name by itself.
        expect(other.page.get_by_test_id("run-name")).to_have_text("mnist <b>baseline</b>✎", timeout=5_000)
        # Tags: add one as key=value, remove it again.
        p.page.get_by_test_id("tag-add").click()
        p.page.get_by_test_id("tag-input").fill("stage=best")
        p.page.get_by_test_id("tag-input").press("Enter")
        tag = p.page.locator('[data-testid="tag"][data-key="stage"]')
        expect(tag).to_have_text("stage: best×")
        tag.get_by_test_id("tag-remove").click()
        expect(tag).to_have_count(0)
        # The note: Markdown shown safely (text only), Ctrl+Enter saves.
        p.page.get_by_test_id("note-edit").click()
        p.page.get_by_test_id("note-input").fill("# Why\n\nTried **lr=3** with `adam`.\n\n- one\n- two\n\n<img src=x onerror=alert(1)>")
        p.page.get_by_test_id("note-input").press("Control+Enter")
        view = p.page.get_by_test_id("note-view")
        expect(view.locator("h3")).to_have_text("Why")
        expect(view.locator("strong")).to_have_text("lr=3")
        expect(view.locator("code")).to_have_text("adam")
        expect(view.locator("li")).to_have_count(2)
        expect(view).to_contain_text("<img src=x onerror=alert(1)>")
        assert view.locator("img").count() == 0
        p.shot("run-edited")
        # The edits are the run's: read back from Python too.
        out = subprocess.run(
            [sys.executable, "-c", f"import lab; r = lab.get_run({run!r}); print(r.name); print(r.tags); print(r.note)"],
            cwd=project, env=lab_env(project), capture_output=True, text=True,
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == "mnist <b>baseline</b>"
        assert "stage" not in lines[1]
        assert lines[2] == "# Why"
        assert p.errors == [] and p.dialogs == [] and other.errors == []
    finally:
        ctx.close()
        other_ctx.close()
