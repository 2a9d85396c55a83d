"""The team server's web page, driven in headless Chromium: a real `lab
server` (PostgreSQL and a folder of blobs, started by the test) that a
training script streamed a run to; the page logs in with a token, lists the
projects, opens the project and its run, and logs out. Screenshots go to
`tests-output/ui/` at desktop (1280×800) and phone (390×844) sizes.

Needs what tests/test_ui_browser.py needs (Playwright and /usr/bin/chromium)
and PostgreSQL, as tests/test_team_stream.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright import sync_api

from conftest import lab_env
from team_server import Server
# `browser`: the module's Chromium, as the page's own tests start it.
from test_ui_browser import SHOTS, browser  # noqa: F401

TRAIN = """
import lab
e = lab.Experiment("team-page")
with e.start_run():
    print(e.run_id, flush=True)
    e.log_parameters({"lr": 0.1, "note": "<b>not bold</b>"})
    for i in range(200):
        e.log_metric("loss", 1.0 / (i + 1), step=i)
    e.log_artifact("notes", "notes.md")
    print("\x1b[31mdone\x1b[0m training <i>here</i>", flush=True)
"""


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="lab-team-web-"))
    os.chmod(folder, 0o755)
    s = Server(folder)
    yield s
    s.close()


def streamed_run(project: Path, server: Server) -> str:
    """A run trained in `project` while logged in to `server`; its id once
    the server holds it whole."""
    token = server.token(f"writer-{time.monotonic_ns()}")
    login = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "login", server.url, "--token-stdin"],
        input=token + "\n", capture_output=True, text=True, env=lab_env(project), cwd=project, timeout=60,
    )
    assert login.returncode == 0, login.stderr
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    (project / "notes.md").write_text("# Tried\n\nA <b>bold</b> guess.\n")
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=project, env=lab_env(project), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    deadline = time.monotonic() + 60
    while True:
        try:
            detail = server.get(f"/projects/{project.name}/runs/{run_id}", token)
            files = server.get(f"/projects/{project.name}/runs/{run_id}/files", token)["files"]
            if detail.get("status") == "finished" and files:
                return run_id
        except Exception:  # noqa: BLE001 - not there yet
            pass
        assert time.monotonic() < deadline, "the run did not reach the server"
        time.sleep(0.2)


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_the_page_logs_in_lists_projects_and_opens_a_run(
    browser: Any, server: Server, project: Path, size: tuple[int, int]
) -> None:
    run_id = streamed_run(project, server)
    reader = server.token(f"reader-{time.monotonic_ns()}", role="reader")
    name = "desktop" if size[0] > 600 else "phone"
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(server.url + "/")
        assert page.url == server.url + "/projects/"
        box = page.get_by_test_id("token-box")
        sync_api.expect(box).to_be_visible(timeout=10_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"team-login-{name}.png"), full_page=True)

        # A wrong token is refused and said so; the box stays.
        page.fill("#token-input", "lab_" + "0" * 64)
        page.get_by_role("button", name="Log in").click()
        sync_api.expect(page.get_by_test_id("login-error")).to_contain_text("refused", timeout=10_000)
        assert ctx.cookies() == []

        page.fill("#token-input", reader)
        page.get_by_role("button", name="Log in").click()
        sync_api.expect(box).to_have_count(0, timeout=10_000)
        link = page.get_by_test_id("project-link").filter(has_text=project.name)
        sync_api.expect(link).to_be_visible(timeout=10_000)
        # The session cookie: HttpOnly, SameSite=Strict; the token is kept nowhere.
        cookies = ctx.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("lab_session", True, "Strict")]
        assert reader not in page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage) + document.cookie")
        page.screenshot(path=str(SHOTS / f"team-projects-{name}.png"), full_page=True)

        link.click()
        page.wait_for_url(f"{server.url}/projects/{project.name}/**")
        row = page.locator(f'[data-testid="run-row"][data-run-id="{run_id}"]')
        sync_api.expect(row).to_have_count(1, timeout=10_000)
        sync_api.expect(page.get_by_test_id("project-name")).to_have_text(project.name)
        page.screenshot(path=str(SHOTS / f"team-runs-{name}.png"), full_page=True)

        page.goto(f"{server.url}/projects/{project.name}/#/run/{run_id}")
        sync_api.expect(page.locator("main")).to_contain_text("<b>not bold</b>", timeout=10_000)
        sync_api.expect(page.locator("main")).to_contain_text("loss", timeout=10_000)
        # The server deletes no runs: the page offers no Delete.
        assert page.get_by_role("button", name="Delete…").count() == 0
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / f"team-run-{name}.png"), full_page=True)

        # The run's artifacts, listed and shown from the server's blobs.
        page.goto(f"{server.url}/projects/{project.name}/#/run/{run_id}?tab=artifacts")
        tree = page.locator('[data-testid="artifact-tree"]')
        file = tree.locator('[data-testid="artifact-file"][data-path$="notes.md"]')
        sync_api.expect(file).to_have_count(1, timeout=10_000)
        file.click()
        sync_api.expect(page.get_by_test_id("artifact-preview")).to_contain_text("A <b>bold</b> guess.", timeout=10_000)
        page.screenshot(path=str(SHOTS / f"team-artifacts-{name}.png"), full_page=True)

        # What the run printed, from the journal the server holds.
        page.goto(f"{server.url}/projects/{project.name}/#/run/{run_id}?tab=logs")
        sync_api.expect(page.locator("main")).to_contain_text("done training <i>here</i>", timeout=10_000)
        assert page.locator("main i").count() == 0
        page.screenshot(path=str(SHOTS / f"team-logs-{name}.png"), full_page=True)

        # A page loaded again keeps the session; logging out ends it.
        page.reload()
        logout = page.get_by_test_id("logout")
        sync_api.expect(logout).to_be_visible(timeout=10_000)
        logout.click()
        sync_api.expect(page.get_by_test_id("token-box")).to_be_visible(timeout=10_000)
        assert ctx.cookies() == []
        status = page.evaluate("fetch('/api/v1/projects').then(r => r.status)")
        assert status == 401
    finally:
        ctx.close()
    assert errors == [], errors
