"""The examples of docs/integrations.md, run as they are shown: each
```python block is a whole script, run in a project of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "integrations.md"


def examples() -> list:
    text = DOC.read_text()
    found = []
    for m in re.finditer(r"^## (.+?)$|^```python\n(.*?)^```$", text, re.M | re.S):
        if m.group(1):
            section = m.group(1)
        else:
            found.append(pytest.param(m.group(2), id=section.split()[-1].lower()))
    return found


def test_every_framework_has_an_example():
    assert [p.id for p in examples()] == ["keras", "lightning", "transformers", "xgboost", "lightgbm", "scikit-learn", "optuna"]


@pytest.mark.parametrize("code", examples())
def test_example(code, project):
    script = project / "example.py"
    script.write_text(code)
    env = dict(os.environ, LAB_PROJECT=str(project), KERAS_BACKEND="torch")
    proc = subprocess.run([sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "LabWarning" not in proc.stderr
    lab = Path(sys.executable).parent / "lab"
    listing = subprocess.run([str(lab), "ls", "--format", "json"], cwd=project, env=env, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    runs = json.loads(listing.stdout)
    assert runs and all(r["status"] == "finished" for r in runs), runs
    assert all(r["metrics"] for r in runs), runs
