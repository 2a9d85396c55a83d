"""Keyset paging of the team server's runs (PostgreSQL and a real S3
server, started by the test): a limited listing gives `next`, the cursor of
its last run, as `lab ui` does; following it lists every run once, in the
listing's order; a bad cursor is a 400 naming `after`. `lab ls --remote`
pages with `--after` and prints the next page's line as `lab ls` does."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from conftest import lab_env
from team_server import Server
from test_ls_paging import assert_refuses_after

LAB = str(Path(sys.executable).parent / "lab")
NEXT = re.compile(r"^more runs: the next page is `--after (\S+)`$", re.M)

TRAIN = """
import lab
for experiment in ("sweep", "probe"):
    e = lab.Experiment(experiment)
    for i in range(12):
        with e.start_run():
            # Many ties on `lr`, on `acc` and on `kind`; some runs lack `acc`.
            e.log_parameter("lr", i % 3)
            if i % 5:
                e.log_metric("acc", (i % 4) / 4)
            if i % 2:
                e.set_tag("kind", "odd")
"""

RUNS = 24

# (sort keys, other parameters): several sorts, with and without filters.
LISTINGS = [
    ([], {}),
    (["acc"], {}),
    (["-acc"], {}),
    (["params.lr", "-acc"], {}),
    (["-start_time"], {}),
    (["tags.kind", "experiment"], {}),
    (["-acc"], {"where": "params.lr >= 1"}),
    (["params.lr"], {"experiment": "probe", "status": "finished"}),
    ([], {"where": "acc > 0 or tags.kind = 'odd'"}),
]


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A server on a real S3 server, a token, and a project whose runs all
    reached it."""
    folder = Path(tempfile.mkdtemp(prefix="lab-team-paging-"))
    os.chmod(folder, 0o755)
    server = Server(folder, s3=True)
    home = tmp_path_factory.mktemp("paging")
    project = home / f"pages-{os.getpid()}"
    project.mkdir()
    token = server.token("pager", role="writer")
    env = dict(lab_env(project), XDG_CONFIG_HOME=str(home / "config"), LAB_SERVER="", LAB_TOKEN="")
    login = subprocess.run(
        [LAB, "login", server.url, "--token-stdin"], input=token + "\n", capture_output=True, text=True, env=env, timeout=60
    )
    assert login.returncode == 0, login.stderr
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    proc = subprocess.run([sys.executable, "train.py"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    synced = subprocess.run([LAB, "sync"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    yield server, token, project, env
    server.close()
    shutil.rmtree(folder, ignore_errors=True)


def runs_path(project: Path, sort: list, extra: dict, **more: object) -> str:
    query = dict(extra, **{k: str(v) for k, v in more.items()})
    if sort:
        query["sort"] = ",".join(sort)
    return f"/projects/{project.name}/runs?{urllib.parse.urlencode(query)}"


@pytest.mark.parametrize(("sort", "extra"), LISTINGS, ids=lambda o: json.dumps(o) if o else "newest")
def test_following_next_lists_every_run_once_in_the_listings_order(team, sort: list, extra: dict) -> None:
    server, token, project, _ = team
    whole = server.get(runs_path(project, sort, extra), token)
    want = [r["id"] for r in whole["runs"]]
    assert whole["next"] is None, "an unlimited listing has no next page"
    assert len(want) == whole["total"] > 3
    if not extra:
        assert len(want) == RUNS
    got: list = []
    cursor = None
    for _ in range(RUNS):
        more = {"after": cursor} if cursor else {}
        page = server.get(runs_path(project, sort, extra, limit=4, **more), token)
        assert len(page["runs"]) <= 4
        assert page["total"] == len(want), "the total counts the whole listing"
        got += [r["id"] for r in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
        assert len(page["runs"]) == 4, "only a full page has a next one"
    assert got == want
    # A page as long as the listing still says more may follow; one longer does not.
    assert server.get(runs_path(project, sort, extra, limit=len(want)), token)["next"] is not None
    assert server.get(runs_path(project, sort, extra, limit=len(want) + 1), token)["next"] is None
    # `offset` counts from the cursor.
    first = server.get(runs_path(project, sort, extra, limit=2), token)
    skipped = server.get(runs_path(project, sort, extra, limit=2, offset=1, after=first["next"]), token)
    assert [r["id"] for r in skipped["runs"]] == want[3:5]


@pytest.mark.parametrize("cursor", ["nonsense", "e30", "7b7d", "!" * 5000])
def test_a_bad_cursor_is_a_400_naming_after(team, cursor: str) -> None:
    server, token, project, _ = team
    status, body, _ = server.answer(runs_path(project, ["acc"], {}, limit=3, after=cursor), token)
    assert status == 400, body
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["message"].startswith("`after` must be the `next` cursor"), body
    assert len(body["error"]["message"]) < 600, "a huge cursor is shown by its start only"


def test_a_cursor_of_another_sort_is_a_400_naming_after(team) -> None:
    server, token, project, _ = team
    cursor = server.get(runs_path(project, ["acc"], {}, limit=3), token)["next"]
    status, body, _ = server.answer(runs_path(project, ["-start_time"], {}, limit=3, after=cursor), token)
    assert status == 400 and "`after`" in body["error"]["message"], body
    assert "made for the sort `acc`" in body["error"]["message"], body


def lab(env: dict, project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("options", [[], ["acc"], ["--sort", "params.lr", "--sort", "-acc"], ["--where", "acc > 0", "--sort", "name"]])
def test_ls_remote_follows_its_cursors_to_the_end(team, options: list) -> None:
    _, _, project, env = team
    whole = lab(env, project, "ls", "--remote", *options, "--format", "json")
    assert whole.returncode == 0, whole.stderr
    want = [r["id"] for r in json.loads(whole.stdout)]
    assert len(want) > 5 and not NEXT.search(whole.stderr)
    got: list = []
    after: list = []
    for _ in range(RUNS):
        page = lab(env, project, "ls", "--remote", *options, "--limit", "5", "--format", "json", *after)
        assert page.returncode == 0, page.stderr
        got += [r["id"] for r in json.loads(page.stdout)]
        found = NEXT.search(page.stderr)
        if not found:
            break
        after = ["--after", found.group(1)]
    assert got == want
    # The table prints the same line, and the local listing's line reads alike.
    table = lab(env, project, "ls", "--remote", *options, "--limit", "5")
    assert table.returncode == 0 and NEXT.search(table.stderr), table.stderr
    local = lab(env, project, "ls", *options, "--limit", "5")
    assert local.returncode == 0 and NEXT.search(local.stderr), local.stderr


def test_python_reads_the_servers_pages_after_a_cursor(team) -> None:
    _, _, project, env = team
    code = """
import json, lab
whole = [r.id for r in lab.runs(remote=True, sort="-acc")]
first = lab.runs_page(sort="-acc", limit=5, remote=True)
after = [r.id for r in lab.runs(remote=True, sort="-acc", limit=5, after=first.next)]
page, pages = first, [r.id for r in first.runs]
while page.next is not None:
    page = lab.runs_page(sort="-acc", limit=5, after=page.next, remote=True)
    pages += [r.id for r in page.runs]
try:
    lab.runs(remote=True, sort="acc", after=first.next)
    refused = None
except ValueError as e:
    refused = str(e)
print(json.dumps({"whole": whole, "after": after, "pages": pages, "refused": refused}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["after"] == out["whole"][5:10]
    assert out["pages"] == out["whole"]
    assert out["refused"] and "`after`" in out["refused"]


def test_ls_remote_refuses_a_bad_cursor_in_its_own_words(team) -> None:
    _, _, project, env = team
    for cursor in ["nonsense", "!" * 10_000]:
        proc = lab(env, project, "ls", "--remote", "--limit", "3", "--after", cursor)
        assert_refuses_after(proc, cursor)
        assert "it is not a cursor Lab made" in proc.stderr
    made = NEXT.search(lab(env, project, "ls", "--remote", "--sort", "acc", "--limit", "3").stderr).group(1)  # type: ignore[union-attr]
    proc = lab(env, project, "ls", "--remote", "--sort", "name", "--limit", "3", "--after", made)
    assert_refuses_after(proc, made)
    assert "it was made for the sort `acc`, not `name`" in proc.stderr
    # One only the server can tell is wrong: its sort is right, its values are not.
    short = base64.urlsafe_b64encode(bytes([1, 1, 3]) + b"acc" + bytes([0])).decode().rstrip("=")
    proc = lab(env, project, "ls", "--remote", "--sort", "acc", "--limit", "3", "--after", short)
    assert_refuses_after(proc, short)
    assert "it holds 0 values where this listing orders by 3" in proc.stderr
