"""`lab ui` shows both: this machine's runs at `/`, and, after `lab login`,
the team server's copy of the project at `/team/`, read through `lab ui`
(its own token and checks in front) from a real `lab server` started by the
test. Looked at in Chromium, desktop and phone."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright import sync_api

from conftest import lab_env
from team_server import Server, free_port
# `browser`: the module's Chromium, as the page's own tests start it.
from test_ui_browser import SHOTS, browser  # noqa: F401

LAB = str(Path(sys.executable).parent / "lab")

TRAIN = """
import sys, lab
e = lab.Experiment(sys.argv[1])
for depth in (2, 5):
    with e.start_run():
        e.log_parameters({"max_depth": depth})
        for step in range(40):
            e.log_metric("loss", 1.0 / (step + depth), step=step)
        e.log_artifact("notes", "notes.txt")
"""
UI_TOKEN = "ui-token-0123456789abcdef"


def get(url: str, token: "str | None" = None) -> "tuple[int, bytes]":
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Iterator[dict]:
    """A team server holding the `shared` runs of a project; this machine's
    copy of the project has its own `local` runs too; `lab ui` on it."""
    folder = Path(tempfile.mkdtemp(prefix="lab-team-ui-"))
    os.chmod(folder, 0o755)
    server = Server(folder)
    home = tmp_path_factory.mktemp("ui")
    project = home / f"vision-{os.getpid()}"
    project.mkdir()
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    (project / "notes.txt").write_text("what was tried\n")
    token = server.token("member")
    streamed = dict(lab_env(project), LAB_SERVER=server.url, LAB_TOKEN=token, LAB_UPLOAD_GRACE_SECS="60")
    offline = dict(lab_env(project), LAB_SERVER="", LAB_TOKEN="", XDG_CONFIG_HOME=str(home / "none"))
    for env, experiment in ((streamed, "shared"), (offline, "local")):
        done = subprocess.run([sys.executable, "train.py", experiment], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    port = free_port()
    ui = subprocess.Popen([LAB, "ui", "--port", str(port), "--token", UI_TOKEN], cwd=project, env=streamed,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert ui.poll() is None and time.monotonic() < deadline, "lab ui did not start"
            time.sleep(0.1)
    yield {"server": server, "token": token, "project": project, "base": base, "ui": ui}
    ui.terminate()
    out, _ = ui.communicate(timeout=30)
    server.close()
    shutil.rmtree(folder, ignore_errors=True)
    assert f"The team's runs ({server.url}) are at {base}/team/" in out


def test_the_team_copy_is_read_through_lab_ui_as_the_server_gives_it(both) -> None:
    server, token, project, base = both["server"], both["token"], both["project"], both["base"]
    status, body = get(f"{base}/api/v1/team-info", UI_TOKEN)
    assert status == 200 and json.loads(body) == {"url": server.url, "project": project.name}
    # The server's runs, as the server gives them; this machine's differ.
    status, body = get(f"{base}/api/v1/team/runs?sort=start_time", UI_TOKEN)
    assert status == 200
    team = json.loads(body)
    assert team == server.get(f"/projects/{project.name}/runs?sort=start_time", token)
    assert {r["experiment"] for r in team["runs"]} == {"shared"}
    local = json.loads(get(f"{base}/api/v1/runs", UI_TOKEN)[1])
    assert {r["experiment"] for r in local["runs"]} == {"shared", "local"}
    # A run, its points and its files.
    run = team["runs"][0]["id"]
    status, body = get(f"{base}/api/v1/team/runs/{run}/metrics/loss?max_points=10", UI_TOKEN)
    assert status == 200 and json.loads(body)["total"] == 40
    status, body = get(f"{base}/api/v1/team/runs/{run}/artifacts/notes/notes.txt", UI_TOKEN)
    assert (status, body) == (200, b"what was tried\n")
    # No way out of the project's routes on the server.
    for escape in ("runs/%2E%2E/%2E%2E/other/runs", "runs/../../other/runs", "./runs"):
        status, body = get(f"{base}/api/v1/team/{escape}", UI_TOKEN)
        assert status == 400 and json.loads(body)["error"]["code"] == "bad_request", (escape, status, body)
    # lab ui's own checks stand in front: no token, no team.
    assert get(f"{base}/api/v1/team/runs")[0] == 401
    # The server's errors come back as they are.
    status, body = get(f"{base}/api/v1/team/runs?where=loss+%3C", UI_TOKEN)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_query"
    assert get(f"{base}/api/v1/team/runs/ffffffff", UI_TOKEN)[0] == 404


@pytest.mark.parametrize("size", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_page_switches_between_this_machines_runs_and_the_teams(both, browser, size) -> None:
    base = both["base"]
    name = "desktop" if size[0] > 600 else "phone"
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}/#token={UI_TOKEN}")
        rows = page.get_by_test_id("run-row")
        sync_api.expect(rows).to_have_count(4, timeout=10_000)
        switch = page.get_by_test_id("source-switch")
        sync_api.expect(switch).to_be_visible(timeout=10_000)
        sync_api.expect(page.get_by_test_id("source-local")).to_have_attribute("aria-current", "page")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"ui-local-with-team-{name}.png"), full_page=True)

        page.get_by_test_id("source-team").click()
        page.wait_for_url(f"{base}/team/**")
        sync_api.expect(rows).to_have_count(2, timeout=10_000)
        sync_api.expect(page.locator("main")).to_contain_text("shared")
        sync_api.expect(page.get_by_test_id("source-team")).to_have_attribute("aria-current", "page")
        page.screenshot(path=str(SHOTS / f"ui-team-copy-{name}.png"), full_page=True)
        # A run of the team's copy: its chart, and no Delete (the server keeps its runs).
        rows.first.click()
        sync_api.expect(page.locator("main")).to_contain_text("loss", timeout=10_000)
        assert page.get_by_role("button", name="Delete…").count() == 0
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / f"ui-team-run-{name}.png"), full_page=True)
        assert errors == []
    finally:
        ctx.close()


def test_a_refused_team_token_is_a_bad_gateway_not_the_pages_own(both) -> None:
    server = both["server"]
    # Last of this file's tests: `lab ui` keeps the token it started with.
    server.revoke("member")
    status, body = get(f"{both['base']}/api/v1/team/runs", UI_TOKEN)
    assert status == 502
    error = json.loads(body)["error"]
    assert error["code"] == "bad_gateway" and "refused the token `lab login` keeps" in error["message"]
    # This machine's runs are still shown.
    assert get(f"{both['base']}/api/v1/runs", UI_TOKEN)[0] == 200
