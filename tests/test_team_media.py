"""A run's images and tables travel to a team server with its artifacts, and
the server lists and serves them as `lab ui` does: `GET .../media` from its
index, each file by the path it gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import lab_env
from team_server import Server

LOG_MEDIA = """
import lab, numpy as np
e = lab.Experiment("team-media")
with e.start_run():
    for step in range(3):
        e.log_image("samples", np.full((6, 10, 3), step * 60, np.uint8))
    e.log_image("samples", np.zeros((6, 10, 3), np.uint8), step=0)
    e.log_table("preds", {"label": ["cat", "dog"], "score": [0.9, float("nan")]})
    e.log_artifact("media", "notes")
    open("run_id.txt", "w").write(e.run_id)
"""


def fetch(url: str, token: str) -> "tuple[int, bytes]":
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_media_reach_the_team_server_and_are_served_as_lab_ui_serves_them(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lab-team-media-"))
    os.chmod(folder, 0o755)
    server = Server(folder)
    try:
        project = tmp_path / f"media-{os.getpid()}"
        (project / "notes").mkdir(parents=True)
        (project / "notes" / "notes.txt").write_text("an artifact called media\n")
        (project / "log_media.py").write_text(textwrap.dedent(LOG_MEDIA))
        token = server.token("member")
        env = dict(lab_env(project), LAB_SERVER=server.url, LAB_TOKEN=token, LAB_UPLOAD_GRACE_SECS="60")
        done = subprocess.run([sys.executable, "log_media.py"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        run = (project / "run_id.txt").read_text()
        base = f"{server.url}/api/v1/projects/{project.name}/runs/{run}"
        deadline = time.monotonic() + 60
        while True:
            status, body = fetch(f"{base}/media", token)
            files = fetch(f"{base}/artifacts/media/samples/2.png", token)[0]
            if status == 200 and json.loads(body)["media"] and files == 200:
                break
            assert time.monotonic() < deadline, (status, body)
            time.sleep(0.2)
        media = json.loads(body)["media"]
        local = project / ".lab" / "runs" / run[:8]
        assert [(k["key"], k["kind"], [i["step"] for i in k["items"]]) for k in media] == [
            ("samples", "image", [0, 1, 2]),
            ("preds", "table", [0]),
        ]
        for key in media:
            for item in key["items"]:
                status, data = fetch(f"{base}/artifacts/{item['path']}", token)
                assert status == 200
                assert data == (local / item["path"]).read_bytes(), item["path"]
                assert item["bytes"] == len(data)
        assert (media[0]["items"][0]["width"], media[0]["items"][0]["height"]) == (10, 6)
        assert json.loads(fetch(f"{base}/artifacts/media/preds/0.json", token)[1]) == {
            "columns": ["label", "score"],
            "rows": [["cat", 0.9], ["dog", "NaN"]],
        }
        # An artifact named `media` is still read as an artifact.
        assert fetch(f"{base}/artifacts/media/notes.txt", token) == (200, b"an artifact called media\n")
        assert fetch(f"{base}/artifacts/media/samples/9.png", token)[0] == 404
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
