"""Reading the team's runs from a real `lab server` (PostgreSQL and a folder
of blobs, started by the test): `lab ls --remote`, `lab show --remote`,
`lab.runs(remote=True)` and `lab.get_run(id, remote=True)` give what their
local versions give for the same runs; a bad query gives the local error;
a server that is down, a bad token or no server give a clear error at once."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import lab_env
from team_server import Server, free_port

LAB = str(Path(sys.executable).parent / "lab")

TRAIN = """
import math, sys, lab
e = lab.Experiment(sys.argv[1])
first = None
for i, (depth, rate) in enumerate([(2, 0.1), (4, 0.01), (8, 0.5), (3, 0.2)]):
    # One group per experiment, the later runs under the first: both travel.
    with e.start_run(group=sys.argv[1] + "-sweep", parent=first):
        first = first or e.run_id
        e.log_parameters({"max_depth": depth, "learning rate": rate, "layers": [depth, 2 * depth]})
        for step in range(50):
            e.log_metric("loss", 1.0 / (step + depth), step=step)
        e.log_metric("accuracy", 0.5 + depth / 20)
        if i == 2:
            e.log_metric("odd", math.nan)
        e.set_tag("stage", "candidate" if depth > 3 else "draft")
        e.log_artifact("notes", "notes.txt")
        e.log_model("model", {"depth": depth})
        print(f"trained depth {depth}")
        print(f"\x1b[33mwarning\x1b[0m: rate {rate}", file=sys.stderr)
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A server, a token, and a project (with a name of its own on the
    server) whose runs all reached it."""
    folder = Path(tempfile.mkdtemp(prefix="lab-team-read-"))
    os.chmod(folder, 0o755)
    server = Server(folder)
    home = tmp_path_factory.mktemp("read")
    project = home / f"iris-{os.getpid()}"
    project.mkdir()
    config = home / "config"
    token = server.token("reader-of-runs", role="writer")
    env = dict(lab_env(project), XDG_CONFIG_HOME=str(config), LAB_SERVER="", LAB_TOKEN="")
    login = subprocess.run(
        [LAB, "login", server.url, "--token-stdin"], input=token + "\n", capture_output=True, text=True, env=env, timeout=60
    )
    assert login.returncode == 0, login.stderr
    (project / "train.py").write_text(textwrap.dedent(TRAIN))
    (project / "notes.txt").write_text("what was tried\n")
    for experiment in ("iris", "wine"):
        proc = subprocess.run(
            [sys.executable, "train.py", experiment], cwd=project, env=env, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr
    synced = subprocess.run([LAB, "sync"], cwd=project, env=env, capture_output=True, text=True, timeout=180)
    assert synced.returncode == 0 and "0 runs sent, edits of 0 runs sent, 8 runs already" in synced.stdout, synced.stdout + synced.stderr
    yield server, token, project, env
    server.close()
    shutil.rmtree(folder, ignore_errors=True)


def lab(env: dict, project: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def both(team, *args: str) -> "tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]":
    _, _, project, env = team
    return lab(env, project, *args), lab(env, project, *args, "--remote")


LISTINGS = [
    [],
    ["accuracy"],
    ["--where", "accuracy > 0.6 and tags.stage = candidate"],
    ["--sort", "-params.max_depth", "--sort", "experiment", "--limit", "5"],
    ["--where", "params.`learning rate` < 0.3", "--sort", "loss"],
    ["--experiment", "wine", "--status", "finished"],
    ["--limit", "0"],
    ["--where", "odd != odd or accuracy >= 0.9"],
]


@pytest.mark.parametrize("options", LISTINGS, ids=lambda o: " ".join(o) or "all")
def test_ls_remote_gives_the_same_json_as_ls(team, options: "list[str]") -> None:
    local, remote = both(team, "ls", *options, "--format", "json")
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    # A limited listing with more runs names its next page alike.
    assert re.fullmatch(r"(more runs: the next page is `--after \S+`\n)?", remote.stderr), remote.stderr
    assert ("more runs" in remote.stderr) == ("more runs" in local.stderr), local.stderr + remote.stderr
    rows = json.loads(local.stdout)
    assert json.loads(remote.stdout) == rows
    if options in ([], ["accuracy"]):
        assert len(rows) == 8


def test_ls_remote_gives_the_same_csv_and_table(team) -> None:
    local, remote = both(team, "ls", "--format", "csv", "--sort", "start_time")
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    # The same rows and cells; the server sends names in name order, so the
    # columns after the run's own may come in another order.
    assert list(csv.DictReader(io.StringIO(remote.stdout))) == list(csv.DictReader(io.StringIO(local.stdout)))
    local, remote = both(team, "ls", "--columns", "accuracy,params.max_depth,tags.stage,experiment")
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    assert remote.stdout == local.stdout
    _, _, project, env = team
    for options in (["--where", "accuracy > 5"], ["--limit", "0"]):
        local, remote = both(team, "ls", *options)
        assert remote.returncode == 0 and remote.stdout == local.stdout == "No runs match.\n"


def test_show_remote_gives_the_same_report(team) -> None:
    _, _, project, env = team
    rows = json.loads(lab(env, project, "ls", "--format", "json").stdout)
    for row in rows[:3]:
        local, remote = both(team, "show", row["short_id"])
        assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
        # The same report, but for where the run is: its folder here, its
        # URL on the server (and so no tree of the artifact's files).
        def without_place(text: str) -> "list[str]":
            return [line for line in text.splitlines() if not line.lstrip().startswith(("folder", "└", "├", "│"))]
        # The server gives parameters, metrics and tags in name order.
        assert sorted(without_place(remote.stdout)) == sorted(without_place(local.stdout))
        assert without_place(remote.stdout)[:8] == without_place(local.stdout)[:8]
        folder = [line for line in remote.stdout.splitlines() if line.lstrip().startswith("folder")]
        assert folder and f"/api/v1/projects/{project.name}/runs/{row['id']}" in folder[0]
    missing = lab(env, project, "show", "ffffffff", "--remote")
    assert missing.returncode == 1 and "404" in missing.stderr and "ffffffff" in missing.stderr, missing.stderr


@pytest.mark.parametrize(
    "options",
    [
        ["--where", "accuracy >"],
        ["--where", "acuracy > 0.5"],
        ["--where", "params.max_depth = 'a' and (loss < 1"],
        ["--where", "é" * 50 + " = 1"],
        ["--where", "(" * 5000 + "loss < 1" + ")" * 5000],
        ["--sort", "accuracy", "--sort", "-nosuch"],
        ["--sort", "params.`unclosed"],
        ["--columns", "accuracy,zzz"],
        ["--columns", "params.zzz"],
    ],
    ids=["incomplete", "misspelt", "unbalanced", "unicode", "deep", "sort-name", "sort-syntax", "column", "scoped-column"],
)
def test_a_bad_query_gives_the_local_error(team, options: "list[str]") -> None:
    local, remote = both(team, "ls", *options)
    assert local.returncode == 1, local.stderr
    assert (remote.returncode, remote.stderr) == (1, local.stderr)
    assert remote.stdout == ""


def test_no_server_a_server_down_and_a_bad_token_are_said_at_once(team, tmp_path: Path) -> None:
    server, token, project, env = team
    nothing = dict(env, XDG_CONFIG_HOME=str(tmp_path / "nowhere"))
    none = lab(nothing, project, "ls", "--remote")
    assert none.returncode == 1 and "no team server to read runs from" in none.stderr and "lab login" in none.stderr
    down = f"http://127.0.0.1:{free_port()}"
    for args in (["ls", "--remote"], ["show", "0000", "--remote"]):
        started = time.monotonic()
        proc = lab(dict(env, LAB_SERVER=down, LAB_TOKEN=token), project, *args)
        assert time.monotonic() - started < 15
        assert proc.returncode == 1 and "cannot reach the server" in proc.stderr and down in proc.stderr, proc.stderr
    bad = lab(dict(env, LAB_TOKEN="not-a-token"), project, "ls", "--remote")
    assert bad.returncode == 1 and "401" in bad.stderr and f"hint: `lab login {server.url}`" in bad.stderr, bad.stderr


PYTHON = """
import json, lab
def view(r):
    return {
        "id": r.id, "short_id": r.short_id, "experiment": r.experiment, "status": r.status,
        # Times travel as ISO 8601 text to the microsecond.
        "start_time": r.start_time.timestamp(), "end_time": r.end_time.timestamp(), "source": r.source, "user": r.user,
        "host": r.host, "dataset": r.dataset, "python_version": r.python_version, "git_commit": r.git_commit,
        "features": r.features, "params": r.params, "metrics": {k: repr(v) for k, v in r.metrics.items()},
        "metric_summaries": repr(sorted(r.metric_summaries.items())), "tags": r.tags, "error": r.error, "damage": r.damage,
        "attrs": json.dumps(r.attrs, sort_keys=True), "duration": r.duration, "models": sorted(r.models),
        "artifacts": sorted(r.artifacts), "group": r.group, "parent": r.parent,
    }
out = {}
for remote in (False, True):
    runs = lab.runs(where="accuracy > 0.55", sort=["-params.max_depth", "experiment"], limit=5, remote=remote)
    frame = lab.runs(remote=remote, as_frame=True)
    one = lab.get_run(runs[0].short_id, remote=remote)
    out[str(remote)] = {
        "runs": [view(r) for r in runs], "one": view(one), "remote": [r.remote for r in runs],
        "frame": frame.sort_index(axis=1).to_json(), "columns": sorted(frame.columns),
    }
    try:
        lab.runs(where="acuracy >", remote=remote)
    except ValueError as e:
        out[str(remote)]["error"] = str(e)
remote = lab.get_run(out["True"]["runs"][0]["id"], remote=True)
print(json.dumps(out))
"""


def test_the_python_api_reads_the_server_as_it_reads_the_project(team) -> None:
    _, _, project, env = team
    (project / "read.py").write_text(textwrap.dedent(PYTHON))
    proc = subprocess.run([sys.executable, "read.py"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    local, remote = out["False"], out["True"]
    assert remote["remote"] == [True] * len(remote["runs"]) and local["remote"] == [False] * len(local["runs"])
    assert len(local["runs"]) == 5
    assert {r["group"] for r in local["runs"]} == {"iris-sweep", "wine-sweep"}
    assert sum(r["parent"] is None for r in local["runs"]) <= 2
    assert remote["frame"] == local["frame"] and remote["columns"] == local["columns"]
    assert remote["error"] == local["error"] and "^" in local["error"]
    for got, want in zip([*remote["runs"], remote["one"]], [*local["runs"], local["one"]]):
        # Artifacts are named by where they are: here, or on the server.
        assert sorted(got) == sorted(want)
        for time in ("start_time", "end_time", "duration"):
            assert abs(got.pop(time) - want.pop(time)) < 2e-6
        assert {k: v for k, v in got.items() if k != "artifacts"} == {k: v for k, v in want.items() if k != "artifacts"}
        assert [a.rsplit("/", 1)[-1] for a in got["artifacts"]] == [a.rsplit("/", 1)[-1] for a in want["artifacts"]]


ERRORS = """
import lab, os, sys
from lab.errors import ServerError, RunNotFoundError
what = sys.argv[1]
try:
    if what == "missing":
        lab.get_run("ffffffff", remote=True)
    elif what == "model":
        run = lab.runs(remote=True, limit=1)[0]
        lab.load_model(run, "model")
    else:
        lab.runs(remote=True)
except (ServerError, RunNotFoundError) as e:
    print(type(e).__name__, isinstance(e, lab.errors.LabError), e)
else:
    print("loaded")
"""


def test_the_python_api_says_what_is_wrong_with_the_server(team, tmp_path: Path) -> None:
    server, token, project, env = team
    (project / "errors.py").write_text(textwrap.dedent(ERRORS))

    def run(what: str, **extra: str) -> str:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "errors.py", what], cwd=project, env=dict(env, **extra), capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert time.monotonic() - started < 20
        return proc.stdout

    down = f"http://127.0.0.1:{free_port()}"
    said = run("runs", LAB_SERVER=down)
    assert said.startswith("ServerError True cannot reach the server") and down in said, said
    said = run("runs", LAB_TOKEN="not-a-token")
    assert said.startswith("ServerError True the server answered 401") and "lab login" in said, said
    said = run("runs", XDG_CONFIG_HOME=str(tmp_path / "nowhere"))
    assert said.startswith("ServerError True no team server to read runs from"), said
    said = run("missing")
    assert said.startswith("RunNotFoundError True the server answered 404"), said
    # A model of a run that is also here is loaded from here.
    assert run("model") == "loaded\n"


ELSEWHERE = """
import json, os, sys, lab
run = lab.runs(remote=True, limit=1)[0]
assert run.remote and run.path.startswith("http://") and lab.runs() == []
cache = os.path.join(os.environ["XDG_CACHE_HOME"], "lab", "models", run.models["model"]["sha256"])
if sys.argv[1:] == ["damaged"]:
    with open(cache, "wb") as f:
        f.write(b"not the model")
print(json.dumps({
    "id": run.id,
    "model": lab.load_model(run, "model"),
    "history": run.metric_history("loss"),
    "cached": os.path.isfile(cache),
}))
"""

LOCAL = """
import json, sys, lab
run = lab.get_run(sys.argv[1])
print(json.dumps({"model": lab.load_model(run, "model"), "history": run.metric_history("loss")}))
"""


def test_a_remote_run_not_here_gives_its_model_and_every_point_from_the_server(team, tmp_path: Path) -> None:
    _, _, project, env = team
    # The same project elsewhere: its name on the server, none of its runs.
    made = subprocess.run(
        [LAB, "init", "--name", project.name, "--no-venv"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    elsewhere = tmp_path / project.name
    (elsewhere / "read.py").write_text(textwrap.dedent(ELSEWHERE))
    there = dict(env, LAB_PROJECT=str(elsewhere), XDG_CACHE_HOME=str(tmp_path / "cache"))
    got = []
    for args in ([], [], ["damaged"]):
        proc = subprocess.run([sys.executable, "read.py", *args], cwd=elsewhere, env=there,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        got.append(json.loads(proc.stdout))
    (project / "local.py").write_text(textwrap.dedent(LOCAL))
    proc = subprocess.run([sys.executable, "local.py", got[0]["id"]], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    local = json.loads(proc.stdout)
    assert len(local["history"]) == 50
    # Fetched; again with the cached copy there; and over a damaged copy.
    for remote in got:
        assert remote["model"] == local["model"] and remote["history"] == local["history"]
        assert remote["cached"]


def test_remote_must_be_a_bool(project: Path) -> None:
    import lab

    for call in (lambda: lab.runs(remote="yes"), lambda: lab.get_run("0e63", remote=1)):
        with pytest.raises(TypeError, match="`remote` must be True or False"):
            call()


def test_a_runs_artifacts_and_models_are_served_as_lab_ui_serves_them(team) -> None:
    server, token, project, env = team
    local = json.loads(lab(env, project, "ls", "--format", "json", "--sort", "start_time").stdout)
    run = local[0]
    base = f"/projects/{project.name}/runs/{run['id']}"
    listed = server.get(f"{base}/artifacts", token)["files"]
    assert listed == [{"path": "notes/notes.txt", "size": 15, "artifact": "notes"}]

    def fetch(path: str, headers: "dict | None" = None):
        request = urllib.request.Request(
            f"{server.url}/api/v1{base}/{path}", headers={"Authorization": f"Bearer {token}", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    status, headers, body = fetch("artifacts/notes/notes.txt")
    assert (status, body) == (200, b"what was tried\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff" and headers["content-security-policy"].startswith("sandbox")
    status, headers, body = fetch("artifacts/notes/notes.txt", {"Range": "bytes=5-7"})
    assert (status, body, headers["content-range"]) == (206, b"was", "bytes 5-7/15")
    # The model's file, as a download with its bytes.
    folder = project / ".lab" / "runs" / run["id"][:8]
    [model] = [p for p in (folder / "models").iterdir() if p.name.startswith("model.")]
    status, headers, body = fetch("models/model")
    assert status == 200 and headers["content-disposition"].startswith("attachment;")
    assert body == model.read_bytes() and model.name in headers["content-disposition"]
    # What is not there, or leaves the run, is not found; the error names it.
    for path, code in [("artifacts/notes/other.txt", 404), ("artifacts/../models/model/x", 404), ("models/nope", 404)]:
        status, _, body = fetch(path)
        assert status == code, (path, status, body)
        assert json.loads(body)["error"]["code"] == "not_found"


LOGS = """
import json, sys, lab
print(json.dumps([lab.get_run(sys.argv[1], remote=remote).logs(lines=True) for remote in (False, True)]))
"""


def test_a_runs_console_is_read_from_the_server_as_here(team) -> None:
    server, token, project, env = team
    local = json.loads(lab(env, project, "ls", "--format", "json", "--sort", "start_time").stdout)
    run = local[0]
    (project / "logs.py").write_text(LOGS)
    proc = subprocess.run([sys.executable, "logs.py", run["id"]], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    here, there = json.loads(proc.stdout)
    assert [(s, t) for _, s, t in here] == [("stdout", "trained depth 2"), ("stderr", "\x1b[33mwarning\x1b[0m: rate 0.1")]
    assert there == here
    # The server's route answers as `lab ui`'s does.
    base = f"/projects/{project.name}/runs/{run['id']}/logs"
    body = server.get(base, token)
    assert [(line["stream"], line["text"]) for line in body["lines"]] == [(s, t) for _, s, t in here]
    assert body["done"] is True and body["next"] > 0
    assert [line["stream"] for line in server.get(f"{base}?stream=stderr", token)["lines"]] == ["stderr"]
    assert server.get(f"{base}?after={body['next']}", token)["lines"] == []
    for query, message in [("stream=both", "`stream` must be `stdout` or `stderr`"), ("after=99999999", "`after` must be an offset")]:
        request = urllib.request.Request(f"{server.url}/api/v1{base}?{query}", headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 400
        assert message in json.loads(refused.value.read())["error"]["message"]
