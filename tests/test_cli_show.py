"""`lab show`: the report and the diagram of runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import lab_cli, wait_background
from lab.experiment import Experiment


def make_runs() -> list:
    ids = []
    for depth in (2, 4):
        e = Experiment("diagram", dataset="iris <v2>")
        with e.start_run():
            e.log_parameter("max_depth", depth)
            e.log_parameter("note", "a & b")
            e.log_metric("accuracy", 0.9 + depth / 100)
        ids.append(e.run_id)
    wait_background()
    return ids


def test_graph_of_one_run_as_svg(project: Path) -> None:
    first, _ = make_runs()
    out = project / "run.svg"
    proc = lab_cli(project, "show", first[:8], "--graph", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Wrote the diagram of 1 run(s)" in proc.stdout
    root = ET.parse(out).getroot()  # well-formed, user text escaped
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for expected in ("dataset", "script", "hyperparameters", "metrics", "iris <v2>", "max_depth = 2", "note = a & b", "accuracy = 0.92"):
        assert expected in texts, (expected, texts)
    assert not list(project.glob(".run.svg.*.tmp"))


def test_graph_of_every_run_as_dot(project: Path) -> None:
    first, second = make_runs()
    out = project / "all.dot"
    proc = lab_cli(project, "show", "--graph", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("digraph lab {")
    # One shared dataset and script, a parameters and a metrics box per run.
    assert text.count('label="iris <v2>"') == 1
    assert f"params_{first[:8]} -> metrics_{first[:8]};" in text
    assert f"params_{second[:8]} -> metrics_{second[:8]};" in text


def test_graph_bad_output(project: Path) -> None:
    make_runs()
    jpg = lab_cli(project, "show", "--graph", str(project / "x.jpg"))
    assert jpg.returncode == 2, "a file name that names no format is a usage error"
    assert "`--graph` writes `.svg`, `.png` or `.dot` files" in jpg.stderr
    assert not (project / "x.jpg").exists()
    missing = lab_cli(project, "show", "--graph", str(project / "no" / "such" / "dir.svg"))
    assert missing.returncode == 1
    assert "cannot write the diagram" in missing.stderr and "dir.svg" in missing.stderr
    neither = lab_cli(project, "show")
    assert neither.returncode == 2


def test_graph_as_png(project: Path) -> None:
    make_runs()
    out = project / "all.png"
    proc = lab_cli(project, "show", "--graph", str(out))
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 600 and height > 150, (width, height)
