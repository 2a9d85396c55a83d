"""Names, tags and notes: given at start, logged by the run, edited after it in
any state (from Python and the CLI), kept in each run's meta journal."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lab
from conftest import lab_cli, lab_env, wait_background
from lab import _lab
from lab.experiment import Experiment

NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,5}$")


def test_every_run_gets_a_readable_unique_name_unless_given(project: Path) -> None:
    e = Experiment("names")
    for _ in range(20):
        with e.start_run():
            pass

    @e.start_run(name="baseline")
    def train() -> None:
        e.log_metric("loss", 0.5)

    with e.start_run(name="lr=1e-3 bs=64"):
        pass
    wait_background()
    runs = lab.runs("names")
    generated = [r.name for r in runs if r.name not in ("baseline", "lr=1e-3 bs=64")]
    assert len(generated) == 20
    assert all(NAME.match(n) for n in generated), generated
    assert len(set(generated)) == 20
    assert lab.get_run("baseline").metrics == {"loss": 0.5}
    assert lab.get_run("lr=1e-3 bs=64").name == "lr=1e-3 bs=64"
    listed = json.loads(lab_cli(project, "ls", "--format", "json").stdout)
    assert sorted(r["name"] for r in listed) == sorted(r.name for r in runs)


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("", ValueError, "`name`"),
        ("   ", ValueError, "must not be empty or blank"),
        ("x" * 201, ValueError, "at most 200 characters"),
        ("a\nb", ValueError, "control characters"),
        (3, TypeError, "`name` must be a string or None: got int 3"),
    ],
)
def test_a_bad_name_at_start_makes_no_run(project: Path, name: object, error: type, message: str) -> None:
    e = Experiment("bad")
    with pytest.raises(error, match=re.escape(message)):
        with e.start_run(name=name):  # type: ignore[arg-type]
            pass
    wait_background()
    # Refused before anything is written (a type error before the project
    # is even made).
    assert not (project / ".lab").exists() or lab.runs("bad") == []


def test_a_run_logs_tags_and_a_note(project: Path) -> None:
    e = Experiment("logged")
    with e.start_run():
        e.log_tag("stage", "draft")
        e.set_tag("owner", 7)
        e.log_note("# Why\n\nfirst *try*")
        e.log_note("# Why\n\nsecond try")
        run_id = e.run_id
        with pytest.raises(TypeError, match="`markdown` must be a string: got int 3"):
            e.log_note(3)  # type: ignore[arg-type]
    wait_background()
    run = lab.get_run(run_id)
    assert run.tags == {"stage": "draft", "owner": "7"}
    assert run.note == "# Why\n\nsecond try"
    # A listing reads the note when asked.
    assert lab.runs("logged")[0].note == "# Why\n\nsecond try"


def test_a_run_is_edited_from_python_while_running_and_after(project: Path) -> None:
    e = Experiment("edited")
    with e.start_run():
        e.log_tag("stage", "draft")
        live = lab.get_run(e.run_id)
        assert live.status == "running"
        live.name = "renamed-live"
        live.tags = {"stage": "candidate", "k": 1}
        live.note = "while it ran"
        assert live.name == "renamed-live"
        assert live.tags == {"stage": "candidate", "k": "1"}
        run_id = e.run_id
    wait_background()
    run = lab.get_run("renamed-live")
    assert run.id == run_id and run.status == "finished"
    assert run.tags == {"stage": "candidate", "k": "1"}
    assert run.note == "while it ran"
    run.tags = {"k": "1"}
    assert lab.get_run(run_id).tags == {"k": "1"}
    with pytest.raises(TypeError, match="read-only: assign a dict"):
        run.tags["x"] = "y"
    with pytest.raises(TypeError, match="read-only"):
        run.tags.update(x="y")
    assert json.loads(json.dumps(run.tags)) == {"k": "1"}, "tags are a dict to JSON"
    assert lab.get_run(run_id).tags == {"k": "1"}
    with pytest.raises(ValueError, match="`name` must be a non-empty text"):
        run.name = ""
    with pytest.raises(TypeError, match="`note` must be a string"):
        run.note = None  # type: ignore[assignment]
    assert lab.get_run(run_id).name == "renamed-live"
    # The training journal is the run's own; edits went to meta.lab.
    assert (Path(run.path) / "meta.lab").is_file()


def test_names_resolve_and_an_ambiguous_one_lists_its_runs(project: Path) -> None:
    e = Experiment("twins")
    ids = []
    for _ in range(2):
        with e.start_run(name="twin"):
            ids.append(e.run_id)
    wait_background()
    with pytest.raises(_lab.AmbiguousRunError) as caught:
        lab.get_run("twin")
    for i in ids:
        assert i in str(caught.value)
    with pytest.raises(_lab.RunNotFoundError, match="no run is named `nobody`"):
        lab.get_run("nobody")
    out = lab_cli(project, "show", "twin")
    assert out.returncode == 1 and "is ambiguous" in out.stderr


def test_the_cli_edits_a_crashed_run(project: Path) -> None:
    code = (
        "import os, signal\n"
        "from lab.experiment import Experiment\n"
        "e = Experiment('crashing')\n"
        "with e.start_run(name='doomed'):\n"
        "    e.log_metric('loss', 1.0)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=project, env=lab_env(project), check=False)
    assert lab.get_run("doomed").status == "crashed"
    for args in (
        ["rename", "doomed", "post-mortem"],
        ["tag", "post-mortem", "cause=oom"],
        ["note", "post-mortem", "killed by the OOM killer"],
    ):
        out = lab_cli(project, *args)
        assert out.returncode == 0, out.stderr
    run = lab.get_run("post-mortem")
    assert run.status == "crashed"
    assert run.tags == {"cause": "oom"}
    assert run.note == "killed by the OOM killer"
    note = subprocess.run(
        [str(Path(sys.executable).parent / "lab"), "note", "post-mortem", "-"],
        cwd=project,
        env=lab_env(project),
        input="from **stdin**\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Wrote a note" in note.stdout
    assert lab.get_run("post-mortem").note == "from **stdin**\n"


def test_lab_note_edit_opens_the_editor_on_the_runs_note(project: Path) -> None:
    e = Experiment("noted")
    with e.start_run(name="edited"):
        e.log_note("first draft")
    seen = project / "seen.md"
    # An editor setting with an argument, as `code --wait` would be: the
    # script copies what it was given, then writes the new note.
    editor = project / "editor.sh"
    editor.write_text(
        '#!/bin/sh\n'
        'for last in "$@"; do :; done\n'
        'cp "$last" "$SEEN"\n'
        'printf "%s" "$NEW" > "$last"\n'
        'exit "${FAIL:-0}"\n'
    )
    editor.chmod(0o755)

    def note_edit(new: str, fail: int = 0) -> subprocess.CompletedProcess:
        env = lab_env(project) | {
            "VISUAL": "",
            "EDITOR": f"{editor} --wait",
            "SEEN": str(seen),
            "NEW": new,
            "FAIL": str(fail),
        }
        return subprocess.run(
            [str(Path(sys.executable).parent / "lab"), "note", "edited", "--edit"],
            cwd=project, env=env, capture_output=True, text=True, check=False, timeout=60,
        )

    out = note_edit("# Second\n\nwith *Markdown*\n")
    assert out.returncode == 0, out.stderr
    assert seen.read_text() == "first draft"
    assert "Wrote a note" in out.stdout
    assert lab.get_run("edited").note == "# Second\n\nwith *Markdown*\n"

    # Saved unchanged: nothing is appended to the run's edits.
    meta = Path(lab.get_run("edited").path) / "meta.lab"
    size = meta.stat().st_size
    out = note_edit("# Second\n\nwith *Markdown*\n")
    assert out.returncode == 0, out.stderr
    assert "is unchanged" in out.stdout
    assert meta.stat().st_size == size

    # An editor that fails changes nothing and says so.
    out = note_edit("lost", fail=3)
    assert out.returncode == 1
    assert "failed" in out.stderr and "the note was not changed" in out.stderr
    assert lab.get_run("edited").note == "# Second\n\nwith *Markdown*\n"

    # Text and --edit together are refused by name.
    both = lab_cli(project, "note", "edited", "text", "--edit")
    assert both.returncode == 2 and "--edit" in both.stderr


EDITOR = """
import sys
from lab import _lab

run = sys.argv[1]
i = 0
while True:
    _lab.edit_run(run, tags=[(f"k{i}", str(i))], note=f"note {i}")
    print(i, flush=True)
    i += 1
"""


def test_kill_minus_nine_during_edits_loses_no_acknowledged_edit(project: Path) -> None:
    e = Experiment("target")
    with e.start_run():
        run_id = e.run_id
    wait_background()
    script = project / "editor.py"
    script.write_text(EDITOR)
    rng = random.Random(99)
    for round_ in range(8):
        with subprocess.Popen(
            [sys.executable, str(script), run_id],
            cwd=project,
            env=lab_env(project),
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None
            acknowledged = [int(child.stdout.readline())]
            deadline = time.monotonic() + rng.choice([0.0, 0.01, 0.05, 0.2])
            while time.monotonic() < deadline:
                line = child.stdout.readline()
                if line:
                    acknowledged.append(int(line))
            child.send_signal(signal.SIGKILL)
            acknowledged += [int(x) for x in child.stdout.read().split()]
        assert child.returncode == -signal.SIGKILL
        run = lab.get_run(run_id)
        missing = [i for i in acknowledged if run.tags.get(f"k{i}") != str(i)]
        assert not missing, f"round {round_}: acknowledged edits lost: {missing[:10]}"
        last = int(run.note.split()[1])
        assert last >= acknowledged[-1], f"round {round_}"
        # The next edit is whole after whatever the kill left.
        run.name = f"after-round-{round_}"
        assert lab.get_run(run_id).name == f"after-round-{round_}"
    out = lab_cli(project, "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
