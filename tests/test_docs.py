"""The docs' examples, run: every command shown with its output in README.md
and docs/*.md is run against the real `lab`, and must print what is shown.

How it works (the README's Development section says it for people):

- Every fenced block of the docs is one of: a shell session (lines starting
  with `$ `, each followed by what it prints), a Python session (`>>> `
  lines), a `bash` block of `lab` commands (run; they must succeed), code
  (```python, ```json, ...: not run), or a block listed in `NOT_RUN` below
  with the reason it is not run. A new block that is none of these fails
  `test_every_block_is_run_or_listed`.
- Sessions run in a real shell (bash), in a project that
  `tests/docs_scenario.py` makes the same way every time; the user guide is
  followed from an empty folder and makes the project most other docs show.
- What is printed is compared line by line with what the docs show, after
  the same normalisation of both sides: run ids and paths are mapped to the
  ones the docs use, and times, durations, versions, sizes of files whose
  bytes vary (models, journals), process ids and the like are masked.
  Everything else must match. A line `...` in the docs stands for any
  number of lines. A command shown without output must exit with status 0;
  one whose output shows `error:` (or a Python traceback) must fail.
- `<!-- test: NAME -->` just before a block runs it somewhere else than the
  file's default project: see `SETUPS`. Commands that serve until Ctrl-C
  (`lab ui`, `lab watch` of a live run) are read until their output settles,
  then stopped with Ctrl-C; `lab ui` in a network namespace of its own.

A failure shows the file and line of the example and a diff of what the
docs show against what Lab printed. `DOCS_UPDATE=1` writes what was printed
into the docs instead (for review; not where `...` elides lines), and
`DOCS_TEST_TIMES=1` prints how long each command took.
"""

from __future__ import annotations

import difflib
import fcntl
import itertools
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

import docs_scenario as sc
from conftest import sigint_default

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = ["README.md"] + sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))

# Blocks that are not run, each with the reason. Keyed by file and the
# block's first line. Anything that shows what a `lab` command prints belongs
# in a session instead, where it is checked.
NOT_RUN = {
    ("docs/import.md", "imported mlflow:1/5f36ea9054f54e87956849ce9d6233a3 as 0e6f12a4"):
        "needs MLflow's own store; tests/integrations/test_import_mlflow.py checks this summary against stores MLflow writes",
    ("docs/team.md", "lab login https://lab.example:8080"):
        "needs a running team server; tests/test_team_stream.py logs in to a real one",
    ("docs/team.md", "lab: the server does not answer; training goes on, and runs are sent when it does: cannot reach the server (io: Connection refused (os error 111)): https://lab.example:8080/api/v1/projects/iris/runs/0e631a23305b9fb5f71713d16f3c5544/journal?offset=0"):
        "the uploader's message on a server that is down; tests/test_team_client.py checks it is said once",
    ("docs/team.md", "lab: the server refused the token; training goes on and runs stay here: ..."):
        "the uploader's message on a revoked token; tests/test_team_stream.py checks it with a real server",
    ("docs/team.md", "lab: 1 run is not all on the server yet; `lab sync` sends the rest, and so does the next run in this project"):
        "the message at exit when the grace ran out; tests/test_team_client.py checks it",
    ("docs/team.md", "lab ls --remote --where \"accuracy > 0.9\" --sort -accuracy --limit 10"):
        "needs a running team server; tests/test_team_read.py reads a real one with each option",
    ("docs/team.md", "import lab"):
        "needs a running team server; tests/test_team_read.py reads a real one with `remote=True`",
    ("docs/team.md", "# /etc/systemd/system/lab-server.service"):
        "a systemd unit; tests/test_team_service.py starts `lab server` as its ExecStart and "
        "environment file say, against a real database and store",
    ("docs/team.md", "Lab is serving /home/ada/vision at http://127.0.0.1:5050/"):
        "what `lab ui` prints when logged in to a team server; tests/test_team_ui.py checks the "
        "line with a real server",
    ("docs/team.md", "lab sync"):
        "needs a running team server; tests/test_team_stream.py runs `lab sync` against a real one",
    ("README.md", "make demo    # build Lab (release) into .venv, run examples/iris.py twice, then `lab ls`"):
        "`make demo` builds Lab in release, minutes (`test_make_demo_is_what_the_readme_project_is` "
        "checks that the README's examples run in what it leaves); `make test` runs this test",
    ("docs/architecture.md", "lab_types  <-  lab_journal  <-  lab_store  <-  lab_sdk  <-  lab_py"):
        "a diagram of the crates",
    ("docs/benchmarks.md", "make bench                               # full sizes, as below"):
        "benchmarks: minutes, and their numbers are measurements",
    ("docs/benchmarks.md", "make bench-sysmetrics                                   # builds Lab in release into .venv, then runs it"):
        "the system metrics benchmark: minutes, and its numbers are measurements",
    ("docs/benchmarks.md", "make bench-runcost                                      # builds Lab in release into .venv, then runs it"):
        "the benchmark of a run's cost: a release build and minutes, and its numbers are measurements",
    ("docs/benchmarks.md", "python benches/gpu_check.py   # on a machine with a GPU; prints what it found, exits 1 on a failure"):
        "needs an NVIDIA GPU, which the test machines do not have",
    ("docs/benchmarks.md", "make bench-peers          # full sizes: about an hour and a half on 2 cores"):
        "benchmarks against other trackers: an hour, and installs them",
    ("docs/benchmarks.md", "make bench-epochs                                          # Lab's release wheel, every tracker, 5 rounds"):
        "installs MLflow and W&B beside the frameworks of .venv-int and trains for minutes; benches/epochs/run.py is the benchmark itself",
    ("docs/benchmarks.md", "make bench-team                                   # every scenario, full sizes (about 25 minutes here)"):
        "team-mode benchmarks: a PostgreSQL cluster, an S3 server and the peers' servers, minutes",
    ("docs/cli.md", "lab ls [SORT_BY] [-w QUERY] [-s [-]KEY]... [-e NAME] [--status S] [--params] [-c A,B] [-n N] [--after CURSOR] [--format table|csv|json] [--remote]"):
        "the synopsis of every command, not a command line",
    ("docs/cli.md", "warning: the journal of run `0e52f1df` is damaged at byte 2354: CRC mismatch; 37 bytes were skipped and the records after them read"):
        "the message about a journal damaged in the middle; its byte counts depend on the journal's "
        "content (paths, packages); tests/test_crash.py checks it",
    ("docs/cli.md", "warning: the journal of run `0e52f236` is damaged at byte 520: CRC mismatch; the 486 bytes from there to the end were moved to `journal.lab.damaged.1`"):
        "the message about a damaged tail; its byte counts depend on the journal's content; "
        "tests/test_crash.py checks it",
    ("docs/cli.md", "warning: the index could not be read as a database; it was moved aside to /tmp/labdocs/guide/.lab/index.sqlite.damaged.1"):
        "the message about a damaged index; tests/test_project.py checks it",
    ("docs/journal-format.md", "offset 0        16-byte header"):
        "the journal's layout",
    ("docs/journal-format.md", "0d 00 00 00  87 1d cf 1c  05  00 00 00 00  04 00 00 00  6c 6f 73 73"):
        "bytes of a journal record",
    ("docs/journal-format.md", "1d 00 00 00                 len       = 29"):
        "bytes of a journal record",
    ("docs/python-api.md", "Exception"):
        "the tree of exception classes",
    ("docs/storage.md", "<project>/"):
        "the layout of a project folder",
    ("docs/storage.md", "lab: /tmp/labdocs/guide is now a Lab project; runs are kept in /tmp/labdocs/guide/.lab (set LAB_PROJECT to keep them elsewhere)"):
        "the message of a project's first run, checked where the user guide's first run prints it",
    ("docs/user-guide.md", "pip install ."):
        "installs Lab; the test runs the installed one",
    ("docs/user-guide.md", "pip install scikit-learn"):
        "installs scikit-learn from the package index; the test environment has it",
    ("docs/user-guide.md", ".lab/"):
        "the layout of a project folder",
}
# Blocks of messages that Python raises or warns with, listed for reference
# without the call that raises them (tests/test_bad_input.py and
# tests/test_artifacts.py check them): their first lines start so.
MESSAGE_LISTS = ("`", "run `0e52f208`", "LabWarning: ")
# How what `lab` prints starts: a ```text block that starts so is output
# without its command, and must be a session or listed.
LOOKS_LIKE_OUTPUT = re.compile(
    r"^(error:|warning:|hint:|lab:|Run [0-9a-f]|ID  |Metrics$|Parameters$|Models$|Artifacts$|Indexed |Removed |Exported |Lab is serving)"
)


# ---------------------------------------------------------------- parsing


@dataclass
class Block:
    file: str
    line: int  # of the opening fence, 1-based
    info: str
    body: list
    directives: list
    indent: str = ""

    @property
    def first(self) -> str:
        return self.body[0].strip() if self.body else ""

    @property
    def kind(self) -> str:
        if any(l.startswith("$ ") for l in self.body):
            return "shell"
        if any(l.startswith(">>> ") for l in self.body):
            return "python"
        if self.info in ("bash", "sh") and any(l.startswith("lab ") for l in self.body):
            return "commands"
        if self.info in ("python", "json", "bash", "sh", "toml", "ts"):
            return "code"
        return "plain"


@dataclass
class Step:
    line: int
    command: str
    expected: list  # None when the docs show no output
    indent: str = ""

    @property
    def output_line(self) -> int:
        """The line of the docs where the shown output starts."""
        return self.line + self.command.count("\n") + 1


def parse_blocks(file: str) -> list:
    lines = (REPO / file).read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+)(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
        directives = []
        k = i - 1
        while k >= 0 and (not lines[k].strip() or lines[k].strip().startswith("<!-- test:")):
            d = re.match(r"^\s*<!-- test: (.*?) -->\s*$", lines[k])
            if d:
                directives += [w.strip() for w in d.group(1).split(",")]
            k -= 1
        found.append(Block(file, i + 1, info, body, directives, indent))
        i = j + 1
    return found


def shell_steps(block: Block) -> list:
    steps = []
    for n, text in enumerate(block.body):
        if text.startswith("$ "):
            steps.append(Step(block.line + 1 + n, text[2:], None, block.indent))
        elif steps:
            steps[-1].expected = (steps[-1].expected or []) + [text]
        elif text.strip():
            raise AssertionError(f"{block.file}:{block.line + 1 + n}: output before the first `$ ` command")
    return steps


def python_steps(block: Block) -> list:
    steps = []
    for n, text in enumerate(block.body):
        if text.startswith(">>> "):
            steps.append(Step(block.line + 1 + n, text[4:], None, block.indent))
        elif text.startswith("... ") and steps and steps[-1].expected is None:
            steps[-1].command += "\n" + text[4:]
        elif steps:
            steps[-1].expected = (steps[-1].expected or []) + [text]
    return steps


# ---------------------------------------------------------- normalisation


def _digits(m: re.Match) -> str:
    return re.sub(r"\d", "#", m.group(0))


# What legitimately differs between the docs and a test run, masked on both
# sides. Each rule is as narrow as it can be.
MASKS = [
    # Times and dates.
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z?"), _digits),
    (re.compile(r"(?<![\d.])1\d{9}\.\d+"), "<time>"),
    # How long a run took: `ended 2026-11-27 08:39:23 UTC (4.5 s)`.
    (re.compile(r"^(\s*ended\s+\S+ \S+ UTC )\(.*\)$", re.M), r"\1(<duration>)"),
    # What the machine has: Python, user and host, git state, packages.
    (re.compile(r"^(\s*python\s+)\d+\.\d+\.\d+\S*$", re.M), r"\1<version>"),
    (re.compile(r"^(\s*user\s+)\S+$", re.M), r"\1<user>"),
    (re.compile(r"^(\s*git\s+)[0-9a-f]{40}( on \S+)?( \(uncommitted changes\))?$", re.M), r"\1<commit>"),
    (re.compile(r"^(\s*packages\s+)\d+ installed$", re.M), r"\1<n> installed"),
    (re.compile(r"^(Python:  |OS:      |CPUs:    ).*$", re.M), r"\1<machine>"),
    # A pickled model's bytes vary with the library's version.
    (
        re.compile(r"^(\s+\S+ \S+  (?:joblib|pickle)  \S+ )\S+(  )\d+(?:\.\d)? (?:B|KB|MB|GB)(  sha256 )[0-9a-f]{12}…$", re.M),
        r"\1<version>\2<size>\3<sha256>…",
    ),
    # Sizes that include journals (which record paths and packages).
    (re.compile(r"^(Project: .* \()\S+ \S+( in \.lab\))$", re.M), r"\1<size>\2"),
    (re.compile(r"^(Removed run .*\): )\S+ \S+$", re.M), r"\1<size>"),
    (re.compile(r"^(Removed \d+ (?:run|item)\(s\), freed )\S+ \S+$", re.M), r"\1<size>"),
    (re.compile(r"^(Removed a leftover trash folder \()[^)]*(\))", re.M), r"\1<size>\2"),
    # What `lab push` and `lab pull` sent: the journals among the files.
    (re.compile(r"(\d+ file\(s\)(?: sent)? \()[^)]*(\))"), r"\1<size>\2"),
    # Process ids in the names of temporary files.
    (re.compile(r"(\.project\.json\.)\d+"), r"\1<pid>"),
    (re.compile(r"(/\.[^/\s]+\.)\d+(-\d+\.tmp)"), r"\1<pid>\2"),
    (re.compile(r"(\.lab/spare/)\d+(-[0-9a-f]{16})"), r"\1<pid>\2"),
    # Temporary folders made by scripts (`tempfile.mkdtemp()`).
    (re.compile(r"/tmp/tmp[0-9a-z_]{8}\b"), "/tmp/tmpXXXXXXXX"),
    # A page's cursor holds the values of its last run.
    (re.compile(r"(`--after )[\w-]+(`)"), r"\1<cursor>\2"),
    # Line numbers inside Lab's own Python code, which move with any edit.
    (re.compile(r'(File "/work/main/python/lab/[^"]+", line )\d+'), r"\1<n>"),
]


def mask(text: str) -> str:
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{4,32}(?![0-9a-f])")


def _name_words() -> tuple:
    source = (REPO / "crates/lab_types/src/names.rs").read_text()
    adjectives = source[source.index("const ADJECTIVES") : source.index("const NOUNS")]
    nouns = source[source.index("const NOUNS") : source.index("#[cfg(test)]")]
    return re.findall(r'"(\w+)"', adjectives), re.findall(r'"(\w+)"', nouns)


NAME_WORDS = _name_words()


def generated_name(short: str) -> str:
    """The name Lab generates for a run with this short id (as
    `lab_types::names::generated_name` does)."""
    x = int(short, 16)
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return f"{NAME_WORDS[0][x >> 24]}-{NAME_WORDS[1][(x >> 16) & 0xFF]}-{x & 0xFFFF}"


class Ids:
    """Real run ids and the ids the docs show for them."""

    def __init__(self) -> None:
        self.doc_of: dict = {}  # real full id -> doc full id
        self.real_of: dict = {}  # doc full id -> real full id

    def register(self, real: str, doc: str) -> None:
        # A doc id may stand for a run made anew for each example (a live run).
        self.doc_of[real] = doc
        self.real_of[doc] = real

    def short(self, doc: str) -> str:
        return self.real_of[doc][:8]

    def command(self, text: str, present: set) -> tuple:
        """`text` with the doc ids and id prefixes in it turned into the real
        ones of the runs `present` (real full ids); and what to turn back."""
        back = {}

        def swap(m: re.Match) -> str:
            token = m.group(0)
            docs = [d for d, r in self.real_of.items() if r in present and d.startswith(token)]
            if not docs:
                return token
            reals = sorted(self.real_of[d] for d in docs)
            if len(docs) == 1:
                prefix = reals[0][: len(token)]
            else:
                prefix = os.path.commonprefix(reals)[: len(token)]
            matches = sorted(r for r in present if r.startswith(prefix))
            if matches != reals:
                raise AssertionError(
                    f"the id prefix `{token}` stands for {len(docs)} run(s) in the docs, "
                    f"but `{prefix}` matches {len(matches)} here: cannot translate it"
                )
            back[prefix] = token
            return prefix

        return HEX.sub(swap, text), back

    def output(self, text: str, back: dict) -> str:
        shorts = {r[:8]: d[:8] for r, d in self.doc_of.items()}

        def swap(m: re.Match) -> str:
            token = m.group(0)
            if token in self.doc_of:
                return self.doc_of[token]
            if token in back:
                return back[token]
            if len(token) == 8 and token in shorts:
                return shorts[token]
            return token

        text = HEX.sub(swap, text)
        # A generated name comes from the run's id: the docs show the one of
        # theirs. Tables keep names in a column of fixed width: the spaces
        # after a name make up for its length.
        names = {generated_name(r[:8]): generated_name(d[:8]) for r, d in self.doc_of.items()}
        if names:
            pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])( *)")

            def rename(m: re.Match) -> str:
                doc, pad = names[m.group(1)], m.group(2)
                if pad:
                    pad = " " * max(len(m.group(1)) + len(pad) - len(doc), 1)
                return doc + pad

            text = pattern.sub(rename, text)
        return text


# ------------------------------------------------------------- the shell

MARK = "__docs_test_status__"
BAD_LINE = "Traceback (most recent call last):"


def render(raw: bytes, terminal: bool) -> str:
    text = raw.decode("utf-8", "replace")
    if terminal:
        text = text.replace("\r\n", "\n")
        # What the screen shows: whatever came after the last clear.
        text = text.rsplit("\x1b[H\x1b[2J", 1)[-1]
    return text


class Shell:
    """One bash, fed command after command, like a person at a prompt.
    Output (stdout and stderr together) goes to a pipe, or to a terminal
    160 columns wide for blocks marked `terminal`."""

    def __init__(self, cwd: Path, env: dict, terminal: bool = False) -> None:
        self.terminal = terminal
        self.env = env
        if terminal:
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
            out = slave
        else:
            out = subprocess.PIPE
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        if terminal:
            os.close(slave)
            self.fd = master
        else:
            self.fd = self.proc.stdout.fileno()

    def run(self, command: str, timeout: float = 120) -> tuple:
        """Runs `command`; returns what it printed and its exit status."""
        # The status is printed after the output, then given back to `$?`
        # for the next command (`echo $?`).
        self.proc.stdin.write(
            f"{{ {command}\n}} </dev/null\n__docs_status=$?; printf '\\n{MARK} %d\\n' $__docs_status; "
            f"(exit $__docs_status)\n".encode()
        )
        self.proc.stdin.flush()
        raw = b""
        end = re.compile(rb"\r?\n" + MARK.encode() + rb" (\d+)\r?\n")
        deadline = time.monotonic() + timeout
        while not (m := end.search(raw)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"`{command}` did not finish in {timeout} s; it printed:\n{raw.decode(errors='replace')}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise AssertionError(f"the shell ended while running `{command}`")
                raw += chunk
        return render(raw[: m.start()], self.terminal), int(m.group(1))

    def quiet(self, command: str) -> None:
        """Runs a command the docs do not show (waiting for a process)."""
        self.run(f"{command} >/dev/null 2>&1")

    def state(self, scratch: Path) -> tuple:
        """The shell's current folder and environment."""
        cwd_file, env_file = scratch / f"cwd.{uuid.uuid4().hex}", scratch / f"env.{uuid.uuid4().hex}"
        self.run(f"pwd > {cwd_file}; env -0 > {env_file}")
        env = dict(kv.split("=", 1) for kv in env_file.read_text().split("\0") if "=" in kv)
        return Path(cwd_file.read_text().strip()), env

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc.stdin.close()
        if self.terminal:
            os.close(self.fd)
        else:
            self.proc.stdout.close()


def own_network() -> bool:
    """Whether this user may make a network namespace (root may). Without
    one, `lab ui` listens on this machine's port 5050, which may be taken."""
    global _OWN_NETWORK
    if _OWN_NETWORK is None:
        try:
            _OWN_NETWORK = subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0
        except OSError:
            _OWN_NETWORK = False
    return _OWN_NETWORK


_OWN_NETWORK: Optional[bool] = None

# How long the output of a command that serves must stay the same before
# Ctrl-C: `lab ui` prints its lines at once, `lab watch` redraws the same view.
SETTLE_SECS = 0.5


def serve_and_stop(command: str, cwd: Path, env: dict, terminal: bool) -> tuple:
    """Runs a command that goes on until Ctrl-C (`lab ui`, `lab watch`):
    reads what it prints until that stays the same for a moment, then
    presses Ctrl-C. `lab ui` runs in a network namespace of its own, so
    its port is free whatever else this machine serves."""
    argv = ["bash", "-c", command]
    if re.match(r"^lab ui\b", command) and own_network():
        argv = ["unshare", "--net", "bash", "-c", 'ip link set lo up && eval "$1"', "bash", command]
    if terminal:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True, preexec_fn=sigint_default)
        os.close(slave)
        fd = master
    else:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True, preexec_fn=sigint_default)
        fd = proc.stdout.fileno()
    raw = b""
    shown, since = None, time.monotonic()
    deadline = time.monotonic() + 60
    stopped = False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                raw += chunk
            screen = render(raw, terminal)
            if screen != shown:
                shown, since = screen, time.monotonic()
            elif screen.strip() and time.monotonic() - since > SETTLE_SECS and not stopped:
                os.killpg(proc.pid, signal.SIGINT)
                stopped = True
                deadline = time.monotonic() + 15
            if time.monotonic() > deadline:
                if not stopped:
                    os.killpg(proc.pid, signal.SIGINT)
                    stopped = True
                    deadline = time.monotonic() + 15
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
        status = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if terminal:
            os.close(fd)
        else:
            proc.stdout.close()
    # Ctrl-C ends `lab watch` by the signal, `lab ui` cleanly.
    if stopped and status in (-signal.SIGINT, 128 + signal.SIGINT):
        status = 0
    return render(raw, terminal), status


PYTHON_RUNNER = r"""
import contextlib, io, json, sys, traceback
examples = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
results = []
for source in examples:
    out = io.StringIO()
    try:
        code = compile(source, "<doc>", "single")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
    except Exception as exc:
        out.write("Traceback (most recent call last):\n  ...\n" + "".join(traceback.format_exception_only(type(exc), exc)))
    results.append(out.getvalue())
json.dump(results, sys.__stdout__)
"""


# ----------------------------------------------------------- the projects


@dataclass
class Place:
    """Where a block runs: the folder, what the docs call its paths, and
    the projects in it whose new runs get the docs' ids."""

    cwd: Path
    paths: list  # (real path, doc path)
    env: dict
    projects: list
    new_ids: list  # doc ids for runs made here, in the order they are made
    scratch: Path
    live: Optional[sc.LiveRun] = None
    after: list = field(default_factory=list)  # callbacks when the block is done

    def real_path(self, text: str) -> str:
        for real, doc in sorted(self.paths, key=lambda p: -len(p[1])):
            text = text.replace(doc, str(real))
        return text

    def doc_path(self, text: str) -> str:
        for real, doc in sorted(self.paths, key=lambda p: -len(str(p[0]))):
            text = text.replace(str(real), doc)
        return text


def runs_of(project: Path) -> list:
    """The runs of a project, oldest first, as (full id, start time), read
    from the Start records of their journals (docs/journal-format.md): asking
    `lab` would fold the journals into the index, and the example after it
    would not print what it prints the first time."""
    found = []
    runs = project / ".lab" / "runs"
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        try:
            head = (folder / "journal.lab").read_bytes()[:49]
        except OSError:
            continue
        # Header (16 bytes), frame length and CRC (8), tag 1, id (16), time (8).
        if len(head) == 49 and head.startswith(b"LABJRNL\0") and head[24] == 1:
            found.append((head[25:41].hex(), int.from_bytes(head[41:49], "little", signed=True)))
    return [run_id for run_id, _ in sorted(found, key=lambda r: (r[1], r[0]))]


class Checker:
    """Runs blocks and collects the differences from the docs."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.failures: list = []
        self.updates: list = []  # (file, first line, how many lines, new lines, indent)
        self.seen_folders: dict = {}

    def finish(self) -> None:
        """Fails with every difference found; with `DOCS_UPDATE=1`, first
        writes what was printed into the docs in place of what they showed
        (not where they elide lines with `...`)."""
        if os.environ.get("DOCS_UPDATE") == "1":
            for file in {u[0] for u in self.updates}:
                lines = (REPO / file).read_text().split("\n")
                for _, first, count, new, indent in sorted((u for u in self.updates if u[0] == file), key=lambda u: -u[1]):
                    lines[first - 1 : first - 1 + count] = [(indent + l).rstrip() if l else "" for l in new]
                (REPO / file).write_text("\n".join(lines))
        assert not self.failures, "\n\n".join(self.failures)

    def present(self, place: Place) -> set:
        found = set()
        for project in place.projects:
            runs = project / ".lab" / "runs"
            folders = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
            if self.seen_folders.get(project) != folders:
                self.seen_folders[project] = folders
                for run_id in runs_of(project):
                    # Runs the docs never name by id (docs/query.md's) keep their own.
                    if run_id not in self.ids.doc_of and place.new_ids:
                        self.ids.register(run_id, place.new_ids.pop(0))
            found |= {self.ids.real_of[d] for d in self.ids.real_of if self.ids.real_of[d][:8] in folders}
        return found

    def fail(self, file: str, step: Step, what: str, expected: list, actual: list) -> None:
        diff = "\n".join(
            difflib.unified_diff(expected, actual, "shown in the docs", "printed", lineterm="", n=2)
        )
        self.failures.append(f"{file}:{step.line}: `{step.command}` {what}\n{diff}")

    def compare(self, file: str, step: Step, place: Place, printed: str, status: int, back: dict) -> None:
        actual = mask(self.ids.output(place.doc_path(printed), back)).splitlines()
        while actual and not actual[-1].strip():
            actual.pop()
        if step.expected is None:
            if status != 0:
                self.failures.append(
                    f"{file}:{step.line}: `{step.command}` exited with {status}; the docs show no output, "
                    f"so it must succeed. It printed:\n" + "\n".join(actual)
                )
            return
        expected = mask("\n".join(step.expected)).splitlines()
        if not matches(expected, actual):
            self.fail(file, step, "printed something else than the docs show (- docs, + printed):", expected, actual)
            if not any(l.strip() == "..." for l in step.expected):
                shown = self.ids.output(place.doc_path(printed), back).rstrip().splitlines()
                self.updates.append((file, step.output_line, len(step.expected), keep_shown(step.expected, shown), step.indent))
        fails = any(l.startswith("error:") or l == BAD_LINE for l in expected)
        if fails and status == 0:
            self.failures.append(f"{file}:{step.line}: `{step.command}` succeeded; the docs show it failing")
        if not fails and status != 0:
            self.failures.append(f"{file}:{step.line}: `{step.command}` exited with {status}; the docs show no error:\n" + "\n".join(actual))

    def shell_block(self, block: Block, place: Place, shell: Optional[Shell] = None) -> None:
        own = shell is None
        terminal = "terminal" in block.directives
        if own:
            shell = Shell(place.cwd, place.env, terminal)
        try:
            steps = shell_steps(block) if block.kind == "shell" else [
                Step(block.line + 1 + n, l, None) for n, l in enumerate(block.body) if l.startswith("lab ")
            ]
            for step in steps:
                self.shell_step(block, step, place, shell, terminal)
        finally:
            if own:
                shell.close()

    def shell_step(self, block: Block, step: Step, place: Place, shell: Shell, terminal: bool) -> None:
        command = place.real_path(step.command)
        try:
            command, back = self.ids.command(command, self.present(place))
        except AssertionError as e:
            self.failures.append(f"{block.file}:{step.line}: {e}")
            return
        started = time.monotonic()
        bare = re.sub(r"\s+#.*$", "", command)
        if re.match(r"^lab (ui|watch)\b", bare):
            if re.match(r"^lab watch$", bare) and place.live is None:
                start_live_run(place, shell)
            cwd, env = shell.state(place.scratch)
            printed, status = serve_and_stop(command, cwd, env, terminal)
        else:
            printed, status = shell.run(command)
        if os.environ.get("DOCS_TEST_TIMES"):
            print(f"{time.monotonic() - started:6.2f} s  {block.file}:{step.line}: {step.command}", file=sys.stderr)
        for hook, action in HOOKS.items():
            if step.command == hook:
                action(place, shell)
        self.present(place)  # runs the command made get the docs' ids
        self.compare(block.file, step, place, printed, status, back)

    def python_block(self, block: Block, place: Place, cwd: Path) -> None:
        steps = python_steps(block)
        present = self.present(place)
        sources, backs = [], []
        for step in steps:
            source, back = self.ids.command(place.real_path(step.command), present)
            sources.append(source)
            backs.append(back)
        proc = subprocess.run(
            [sc.python(), "-c", PYTHON_RUNNER],
            input=json.dumps(sources),
            cwd=cwd,
            env=place.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            self.failures.append(f"{block.file}:{block.line}: the Python session did not run:\n{proc.stderr}")
            return
        for step, printed, back in zip(steps, json.loads(proc.stdout), backs):
            if step.expected is None:
                step.expected = []
            raised = printed.startswith(BAD_LINE)
            self.compare(block.file, step, place, printed, 1 if raised else 0, back)

    def python_script(self, block: Block, place: Place, cwd: Path) -> None:
        source, _ = self.ids.command(place.real_path("\n".join(block.body)), self.present(place))
        proc = subprocess.run([sc.python(), "-c", source], cwd=cwd, env=place.env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            self.failures.append(f"{block.file}:{block.line}: the Python example failed ({proc.returncode}):\n{proc.stderr}")


def keep_shown(shown: list, printed: list) -> list:
    """What to write in the docs for `printed`: the lines that differ only
    where the masks hide are kept as the docs show them."""
    new = []
    masked_shown = [mask(l) for l in shown]
    masked_printed = [mask(l) for l in printed]
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, masked_shown, masked_printed, autojunk=False).get_opcodes():
        new += shown[a1:a2] if op == "equal" else printed[b1:b2]
    return new


def matches(expected: list, actual: list) -> bool:
    """Line by line; a line `...` stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def start_live_run(place: Place, shell: Shell) -> None:
    cwd, _ = shell.state(place.scratch)
    project = next(p for p in place.projects if cwd == p or p in cwd.parents)
    place.live = sc.LiveRun(project, place.scratch)
    place.new_ids.insert(0, sc.LIVE_RUN_ID)
    place.after.append(place.live.stop)


def wait_for_training(place: Place, shell: Shell) -> None:
    ready = Path(place.env["DOCS_READY"])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline, "train.py did not log its steps"
        time.sleep(0.05)


# Commands after which the test waits, unseen, for what a person would wait
# for before typing the next one.
HOOKS: dict = {
    # `lab ls` looks while the script trains: once it has logged its steps.
    "python train.py & PID=$!": wait_for_training,
    # The shell has reaped the killed process: its run is over.
    "kill -9 $PID": lambda place, shell: shell.quiet("wait $PID"),
}


# -------------------------------------------------------------- fixtures


@dataclass
class Guide:
    ids: Ids
    project: Path
    checker: "Checker"


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs").resolve()


@pytest.fixture(scope="session")
def guide(scratch: Path) -> Guide:
    """Follows the user guide from an empty folder; its project is the one
    most examples of the other docs run in."""
    ids = Ids()
    checker = Checker(ids)
    folder = scratch / "guide"
    folder.mkdir()
    (folder / "train.py").write_text(sc.GUIDE_TRAIN_PY)
    place = Place(
        cwd=scratch,
        paths=[(folder, sc.DOC_GUIDE), (REPO, sc.DOC_REPO)],
        env=sc.clean_env(DOCS_READY=str(scratch / "train.ready")),
        projects=[folder],
        new_ids=list(sc.GUIDE_RUN_IDS),
        scratch=scratch,
    )
    shell = Shell(scratch, place.env)
    try:
        for block in parse_blocks("docs/user-guide.md"):
            if block.kind in ("shell", "commands"):
                checker.shell_block(block, place, shell)
            elif block.kind == "python":
                cwd, _ = shell.state(scratch)
                started = time.monotonic()
                checker.python_block(block, place, cwd)
                if os.environ.get("DOCS_TEST_TIMES"):
                    print(f"{time.monotonic() - started:6.2f} s  {block.file}:{block.line}: Python", file=sys.stderr)
    finally:
        shell.close()
        for stop in place.after:
            stop()
    checker.present(place)
    missing = [d for d in sc.GUIDE_RUN_IDS if d not in ids.real_of]
    assert not missing, "the user guide made fewer runs than docs_scenario.GUIDE_RUN_IDS lists:\n\n" + "\n\n".join(checker.failures)
    project = scratch / "guide-project"
    sc.copy_project(folder, project)
    return Guide(ids, project, checker)


@pytest.fixture(scope="session")
def query_project(scratch: Path) -> Path:
    folder = scratch / "query-project"
    folder.mkdir()
    subprocess.run(
        [sc.python(), "-c", sc.QUERY_PY],
        cwd=folder,
        env=sc.clean_env(LAB_PROJECT=str(folder)),
        check=True,
        capture_output=True,
    )
    return folder


FRESH = itertools.count(1)


class Places:
    """Makes a fresh place for each block."""

    def __init__(self, scratch: Path, guide: Guide, query_project: Path) -> None:
        self.scratch = scratch
        self.guide = guide
        self.query = query_project

    def fresh(self, name: str) -> Path:
        return self.scratch / f"{name}-{next(FRESH)}"

    def demo(self) -> Place:
        folder = sc.copy_project(self.guide.project, self.fresh("demo"))
        return Place(folder, [(folder, sc.DOC_GUIDE), (REPO, sc.DOC_REPO)], sc.clean_env(), [folder], [], self.scratch)

    def readme(self) -> Place:
        """What `make demo` leaves, after `source .venv/bin/activate`'s
        prerequisites: a checkout with `.venv` and a project in `examples/`
        holding the iris runs of seeds 1 and 2."""
        checkout = self.fresh("checkout")
        examples = checkout / "examples"
        (examples / ".lab" / "runs").mkdir(parents=True)
        (checkout / ".venv").symlink_to(Path(sys.prefix))
        shutil.copy(self.guide.project / ".lab" / "project.json", examples / ".lab" / "project.json")
        for doc in (sc.IRIS_SEED_1, sc.IRIS_SEED_2):
            short = self.guide.ids.short(doc)
            shutil.copytree(self.guide.project / ".lab" / "runs" / short, examples / ".lab" / "runs" / short)
        env = sc.clean_env()
        # As on a fresh machine: `lab` is not on PATH until the venv is activated.
        env["PATH"] = env["PATH"].split(os.pathsep, 1)[1]
        return Place(checkout, [(checkout, sc.DOC_REPO)], env, [examples], [], self.scratch)

    def empty(self) -> Place:
        folder = self.fresh("empty")
        folder.mkdir()
        return Place(folder, [(folder, sc.DOC_EMPTY), (REPO, sc.DOC_REPO)], sc.clean_env(), [], [], self.scratch)

    def query_place(self) -> Place:
        folder = sc.copy_project(self.query, self.fresh("query"))
        return Place(folder, [(folder, sc.DOC_QUERY), (REPO, sc.DOC_REPO)], sc.clean_env(), [folder], [], self.scratch)

    def workspace(self) -> Place:
        """A project of its own (`lab init --no-venv`) with a `train.py`."""
        parent = self.fresh("work")
        parent.mkdir()
        subprocess.run([sc.lab_exe(), "init", "--name", "work", "--no-venv"], cwd=parent, env=sc.clean_env(), check=True, capture_output=True)
        folder = parent / "work"
        (folder / "train.py").write_text(sc.WORKSPACE_TRAIN_PY)
        return Place(folder, [(folder, sc.DOC_WORKSPACE), (REPO, sc.DOC_REPO)], sc.clean_env(), [folder], [sc.WORKSPACE_RUN_ID], self.scratch)


def _leftovers(places: Places, ids: Ids) -> Place:
    place = places.demo()
    sc.make_leftovers(place.cwd, ids.short)
    return place


def _live(places: Places, ids: Ids) -> Place:
    place = places.demo()
    place.live = sc.LiveRun(place.cwd, place.scratch)
    place.new_ids.append(sc.LIVE_RUN_ID)
    place.after.append(place.live.stop)
    return place


def _s3(places: Places, ids: Ids, remote: bool = False) -> Place:
    """A copy of the guide's project in a folder `guide` (the name it is
    pushed under), an S3 server with a bucket `lab-runs`, and a
    configuration folder of its own; with `remote`, the server is
    configured as the remote `minio` already."""
    parent = places.fresh("s3")
    parent.mkdir()
    folder = sc.copy_project(places.guide.project, parent / "guide")
    server = sc.S3Server(places.scratch)
    config = parent / "config"
    config.mkdir()
    env = sc.clean_env(XDG_CONFIG_HOME=str(config))
    paths = [
        (folder, sc.DOC_GUIDE),
        (parent, "/tmp/labdocs"),
        (config, sc.DOC_CONFIG),
        (Path(server.address), sc.DOC_S3_ADDRESS),
        (REPO, sc.DOC_REPO),
    ]
    place = Place(folder, paths, env, [folder], [], places.scratch)
    place.after.append(server.stop)
    if remote:
        subprocess.run(
            [sc.lab_exe(), "config", "minio", "--tag", "minio", "--endpoint", server.address,
             "--accesskey", sc.S3_ACCESS_KEY, "--secretkey", sc.S3_SECRET_KEY],
            env=env, check=True, capture_output=True,
        )
    return place


def _unreadable(places: Places, ids: Ids) -> Place:
    place = places.demo()
    folder = place.cwd / ".lab" / "runs" / "deadbeef"
    folder.mkdir()
    (folder / "journal.lab").write_bytes(b"this is not a journal\n")
    return place


# `<!-- test: NAME -->` before a block: where it runs instead of the file's
# default place. `terminal` runs it with a terminal as its output.
SETUPS: dict = {
    "demo": lambda places, ids: places.demo(),
    "empty": lambda places, ids: places.empty(),
    "query": lambda places, ids: places.query_place(),
    "workspace": lambda places, ids: places.workspace(),
    "leftovers": _leftovers,
    "live run": _live,
    "unreadable journal": _unreadable,
    "s3": _s3,
    "s3 remote": lambda places, ids: _s3(places, ids, remote=True),
}
DEFAULT_PLACE = {"README.md": "readme", "docs/query.md": "query"}
OTHER_DIRECTIVES = {"terminal", "run"}


def place_for(block: Block, places: Places, ids: Ids) -> Place:
    named = [d for d in block.directives if d in SETUPS]
    unknown = [d for d in block.directives if d not in SETUPS and d not in OTHER_DIRECTIVES]
    assert not unknown, f"{block.file}:{block.line}: unknown `<!-- test: -->` directive {unknown}; known: {sorted(SETUPS) + sorted(OTHER_DIRECTIVES)}"
    assert len(named) <= 1, f"{block.file}:{block.line}: more than one place: {named}"
    if named:
        return SETUPS[named[0]](places, ids)
    if DEFAULT_PLACE.get(block.file) == "readme":
        return places.readme()
    if DEFAULT_PLACE.get(block.file) == "query":
        return places.query_place()
    return places.demo()


# ----------------------------------------------------------------- tests


def test_user_guide(guide: Guide) -> None:
    guide.checker.finish()


@pytest.mark.parametrize("file", [f for f in DOC_FILES if f != "docs/user-guide.md"])
def test_doc(file: str, guide: Guide, scratch: Path, query_project: Path) -> None:
    checker = Checker(guide.ids)
    places = Places(scratch, guide, query_project)
    readme_place = None
    for block in parse_blocks(file):
        runs = block.kind in ("shell", "commands", "python") or (block.kind == "code" and "run" in block.directives)
        if not runs:
            continue
        if file == "README.md" and not [d for d in block.directives if d in SETUPS]:
            # The README is read top to bottom in one checkout.
            readme_place = readme_place or places.readme()
            place = readme_place
        else:
            place = place_for(block, places, guide.ids)
        try:
            if block.kind in ("shell", "commands"):
                checker.shell_block(block, place)
            elif block.kind == "python":
                checker.python_block(block, place, place.projects[0] if place.projects else place.cwd)
            else:
                # A Python example run as a script where the session before it left off.
                checker.python_script(block, place, place.projects[0] if place.projects else place.cwd)
        finally:
            if place is not readme_place:
                for stop in place.after:
                    stop()
    if readme_place:
        for stop in readme_place.after:
            stop()
    checker.finish()


def test_every_block_is_run_or_listed() -> None:
    """A new example that the test cannot run must be listed, with why."""
    unlisted, used = [], set()
    for file in DOC_FILES:
        for block in parse_blocks(file):
            key = (file, block.first)
            if key in NOT_RUN:
                used.add(key)
                assert block.kind in ("plain", "code"), f"{file}:{block.line} is listed in NOT_RUN but is a {block.kind} block, which runs"
                continue
            if block.kind == "plain" and not block.first.startswith(MESSAGE_LISTS) and block.info != "text":
                unlisted.append(f"{file}:{block.line}: {block.first}")
            if block.kind == "plain" and block.info == "text" and LOOKS_LIKE_OUTPUT.match(block.first):
                unlisted.append(f"{file}:{block.line}: {block.first}")
    assert not unlisted, (
        "blocks that are neither a session (`$ ` or `>>> ` lines) nor code nor listed in NOT_RUN "
        "in tests/test_docs.py; make them sessions, or list them with the reason:\n" + "\n".join(unlisted)
    )
    stale = set(NOT_RUN) - used
    assert not stale, f"NOT_RUN lists blocks that are gone: {sorted(stale)}"


def test_make_demo_is_what_the_readme_project_is() -> None:
    """The README's examples run in a copy of what `make demo` leaves: the
    iris runs of seeds 1 and 2 in `examples/`."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "cd examples && ../$(PY) iris.py --seed 1 && ../$(PY) iris.py --seed 2 && ../$(VENV)/bin/lab ls" in recipe, recipe


def test_masks_and_ids_keep_the_rest() -> None:
    """The normalisation masks only what varies: a changed value, column or
    word is still a difference."""
    ids = Ids()
    ids.register("0e628a6b1234567890abcdef12345678", "0e52f84c94e8c89b4936465aa038f166")
    shown = "0e52f84c  iris.py  2026-11-27 08:47  finished  0.9737"
    assert mask(ids.output("0e628a6b  iris.py  2030-01-02 03:04  finished  0.9737", {})) == mask(shown)
    assert mask(ids.output("0e628a6b  iris.py  2030-01-02 03:04  finished  0.9738", {})) != mask(shown)
    assert mask(ids.output("0e628a6c  iris.py  2030-01-02 03:04  finished  0.9737", {})) != mask(shown)
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert not matches(["a", "...", "d"], ["a", "b", "c"])
    command, back = ids.command("lab show 0e52f84c", {"0e628a6b1234567890abcdef12345678"})
    assert command == "lab show 0e628a6b" and back == {"0e628a6b": "0e52f84c"}
    # Generated names as Lab makes them (its own test has this one), and
    # swapped for the docs' in a column of fixed width.
    assert generated_name("01234567") == "brisk-vole-17107"
    real, doc = generated_name("0e628a6b"), generated_name("0e52f84c")
    row = f"0e628a6b  {real:<27}  iris.py"
    assert ids.output(row, {}) == f"0e52f84c  {doc:<27}  iris.py"
    assert ids.output(f'"name": "{real}",', {}) == f'"name": "{doc}",'


def test_a_drifted_example_fails_with_its_file_line_and_a_diff(scratch: Path) -> None:
    """What a maintainer sees when the docs and Lab disagree."""
    version = subprocess.run([sc.lab_exe(), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    body = ["$ lab --version", "lab 9.9.9", "$ lab show ffff", "$ lab ls --nope", "error: unexpected argument"]
    block = Block("docs/example.md", 10, "", body, [])
    checker = Checker(Ids())
    folder = scratch / f"drift-{next(FRESH)}"
    folder.mkdir()
    checker.shell_block(block, Place(folder, [(folder, sc.DOC_EMPTY)], sc.clean_env(), [], [], scratch))
    assert len(checker.failures) == 3, checker.failures
    drift, status, output = checker.failures
    assert drift.startswith("docs/example.md:11: `lab --version` printed something else than the docs show")
    assert "\n-lab 9.9.9\n" in drift and f"\n+{version}" in drift
    # Shown without output, it must succeed.
    assert status.startswith("docs/example.md:13: `lab show ffff` exited with 1")
    assert output.startswith("docs/example.md:14: `lab ls --nope` printed something else")
