"""The runs the documentation talks about, made the same way every time.

`tests/test_docs.py` runs every command of README.md and docs/*.md and
compares what it prints with what the docs show. This module makes the
projects those commands run in:

- `guide`: the user guide is followed from an empty folder, command by
  command: it runs `examples/features.py`, `hyperparameters.py`,
  `metrics.py` (which fails), `iris.py --seed 1`, `2` and `3`,
  `tensorboard.py` and `model.py`, then `train.py` (below), killed while it
  trains. `iris.py` and `tensorboard.py` are seeded; the others, the
  original guide's snippets as it printed them, are not, so the test seeds
  numpy for them (`docs_seed/sitecustomize.py`): metrics, parameters and
  artifacts are the same each time.
- `demo`: a copy of the project the guide made, for docs/cli.md,
  docs/python-api.md and docs/storage.md; each example gets its own copy.
- `readme`: what `make demo` leaves: a checkout whose `examples/` project
  holds the iris runs of seeds 1 and 2 (copied from the guide's project:
  the same runs), and whose `.venv` is the test environment.
- `query`: small runs for docs/query.md, with the names its examples use.
- `empty`: a folder that is not a project.

Docs show realistic ids (`0e52f883`) and paths (`/tmp/labdocs/guide`); the
tables below say which real run and folder each stands for.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

# The ids the docs use for the runs of the guide's project, in the order the
# guide makes them. A doc that names a run by id names one of these.
GUIDE_RUN_IDS = [
    "0e52f80c0b9b8d047b91aa4a42fe04a7",  # examples/features.py
    "0e52f81df47538ab587ab351ec89271a",  # examples/hyperparameters.py
    "0e52f831e6f5bd404616dd1331d1c5a7",  # examples/metrics.py (failed)
    "0e52f84c94e8c89b4936465aa038f166",  # examples/iris.py --seed 1
    "0e52f867aabc9ebc743ef34b23836017",  # examples/iris.py --seed 2
    "0e52f883f35e70ba2cc4b0b18a436f7e",  # examples/iris.py --seed 3
    "0e52f8a1c4f56b9cc70eb02093ffe7cb",  # examples/tensorboard.py
    "0e52f8bc22ef971ff303e5460ebb352a",  # examples/model.py
    "0e52f8d88e2e18b385c3b67122d32454",  # train.py, killed (crashed)
]
IRIS_SEED_1, IRIS_SEED_2, IRIS_SEED_3 = GUIDE_RUN_IDS[3:6]
MODEL_RUN = GUIDE_RUN_IDS[7]

# Runs made later, by the setups of single examples.
LIVE_RUN_ID = "0e533c16b2a94d0e8f1c7d5a3e6b9f20"  # slow.py, training while looked at
WORKSPACE_RUN_ID = "0e53a1f27c4d9e0b1a6f3e8d2c5b7a94"  # `lab run train.py --seed 3`

# Where the docs say things are, and where they really are in a test.
DOC_REPO = "/work/main"
DOC_GUIDE = "/tmp/labdocs/guide"
DOC_EMPTY = "/tmp/labdocs/empty"
DOC_QUERY = "/tmp/labdocs/query"
DOC_WORKSPACE = "/tmp/labdocs/work"

# The user guide's `train.py`: logs a loss at every step, then goes on
# "training" (sleeping) until it is killed. It tells the test it has logged
# everything by creating the file named by DOCS_READY.
GUIDE_TRAIN_PY = '''\
import os
import time

from lab.experiment import Experiment

e = Experiment()

with e.start_run():
    for step in range(50):
        e.log_metric("loss", 1 / (step + 1))
    open(os.environ["DOCS_READY"], "w").close()
    time.sleep(600)
'''

# A run that is training when an example looks at it: three metrics, 57
# points each, then it waits to be stopped.
SLOW_PY = '''\
import math
import os
import time

from lab.experiment import Experiment

e = Experiment(name="slow")

with e.start_run():
    for step in range(57):
        e.log_metrics({
            "loss": round(1.2 * math.exp(-step / 12) + 0.01, 4),
            "acc": round(0.98 - 0.6 * math.exp(-step / 10), 4),
            "lr": round(0.05 + 0.05 * math.cos(step / 4), 4),
        }, step=step)
    open(os.environ["DOCS_READY"], "w").close()
    time.sleep(600)
'''

# The script of docs/cli.md's `lab run train.py --seed 3`.
WORKSPACE_TRAIN_PY = '''\
import argparse

from lab.experiment import Experiment

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

e = Experiment()

with e.start_run():
    e.log_parameter("seed", args.seed)
    e.log_metric("loss", 0.5 / (args.seed + 1))
'''

# The runs of docs/query.md: two experiments with the names its examples use
# (a metric `accuracy`, a parameter `lr`, a metric named `adam`).
QUERY_PY = '''\
from lab.experiment import Experiment

mnist = Experiment(name="mnist")
for lr, optimizer, accuracy, loss in [
    (0.1, "sgd", 0.91, 0.31),
    (0.01, "adam", 0.95, 0.18),
    (0.001, "adam", 0.93, 0.22),
]:
    with mnist.start_run():
        mnist.log_parameters({"lr": lr, "optimizer": optimizer, "epochs": 10})
        mnist.log_metric("accuracy", accuracy)
        mnist.log_metric("loss", loss)
        mnist.set_tag("team", "vision")

optimizers = Experiment(name="optimizers")
with optimizers.start_run():
    optimizers.log_metrics({"adam": 0.95, "sgd": 0.91})
'''


def python() -> str:
    """The Python of the test environment (the one `lab` belongs to)."""
    return sys.executable


def lab_exe() -> str:
    return str(Path(sys.executable).parent / "lab")


def clean_env(**extra: str) -> dict:
    """The environment examples run in: the test venv first on PATH, no
    colour, no project chosen by `LAB_PROJECT`, fixed locale and width."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTEST", "COLUMNS", "LINES"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["LC_ALL"] = "C.UTF-8"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # No system metrics: the machine's load would change every `lab show`,
    # `lab compare` and JSON listing the docs print (the user guide says so).
    env["LAB_SYSTEM_METRICS"] = "0"
    # Seeds the examples that take no seed (see docs_seed/sitecustomize.py).
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent / "docs_seed")
    env.update(extra)
    return env


def copy_project(src: Path, dst: Path) -> Path:
    """A copy of a project folder; the index is derived, so a copy works."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def dead_pid() -> int:
    """A process id no process has now."""
    pid = 4_000_000
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return pid


class LiveRun:
    """A run that is training: `slow.py` started in a project, stopped at the
    end with `kill -9` (so it ends as a crashed run, like any killed one)."""

    def __init__(self, project: Path, scratch: Path) -> None:
        self.ready = scratch / f"slow.{uuid.uuid4().hex}.ready"
        script = scratch / "slow.py"
        script.write_text(SLOW_PY)
        self.proc = subprocess.Popen(
            [python(), str(script)],
            cwd=project,
            env=clean_env(LAB_PROJECT=str(project), DOCS_READY=str(self.ready)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("slow.py did not start its run")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def make_leftovers(project: Path, short_id) -> None:
    """What interrupted commands leave behind, for `lab gc` to find: a run
    folder moved to the trash (a `lab rm` stopped halfway), temporary files
    of processes that are gone, and an artifact whose copy never completed.
    `short_id(doc_id)` is the real short id of a run the docs name."""
    store = project / ".lab"
    trash = store / "trash"
    trash.mkdir()
    iris2 = short_id(IRIS_SEED_2)
    shutil.move(str(store / "runs" / iris2), str(trash / iris2))
    pid = dead_pid()
    (store / f".project.json.{pid}").write_text('{"f')
    models = store / "runs" / short_id(MODEL_RUN) / "models"
    (models / f".GridSearchCV.{pid}-0.tmp").write_bytes(b"\0" * 1536)
    code = store / "runs" / short_id(IRIS_SEED_3) / "artifacts" / "code"
    code.mkdir()
    (code / "train.py").write_text("print('training')\n" * 40)
    # The spare run folders a killed process made ahead: the guide's
    # `train.py`, killed, leaves some or none, by how far its background
    # thread got; here exactly one, of a process that is gone, made a
    # minute ago.
    shutil.rmtree(store / "spare", ignore_errors=True)
    spare = store / "spare" / f"{pid}-5d2c0f9a61e3b7d4"
    spare.mkdir(parents=True)
    header = (store / "runs" / short_id(IRIS_SEED_3) / "journal.lab").read_bytes()[:16]
    (spare / "journal.lab").write_bytes(header)
    old = time.time() - 60
    os.utime(spare / "journal.lab", (old, old))
    os.utime(spare, (old, old))


# The S3 server the examples of `lab push` and `lab pull` send to: s3s-fs
# (`cargo install --locked s3s-fs --version 0.14.1 --features binary`;
# .ci/run installs it), on a free port of the loopback, with one bucket.
S3_ACCESS_KEY = "lab"
S3_SECRET_KEY = "lab-secret-key"
S3_BUCKET = "lab-runs"
# What the docs show for the server's address, and for the user's
# configuration folder (`XDG_CONFIG_HOME`).
DOC_S3_ADDRESS = "127.0.0.1:9000"
DOC_CONFIG = "/home/alice/.config"


class S3Server:
    """A running s3s-fs whose root is a folder of `scratch`, stopped by `stop`."""

    def __init__(self, scratch: Path) -> None:
        import socket

        self.root = scratch / f"s3.{uuid.uuid4().hex}"
        (self.root / S3_BUCKET).mkdir(parents=True)
        # A free port may be taken by another server before this one binds
        # it: then it exits, and another port is tried.
        for _ in range(10):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            self.address = f"127.0.0.1:{self.port}"
            self.proc = subprocess.Popen(
                ["s3s-fs", "--host", "127.0.0.1", "--port", str(self.port),
                 "--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY, str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 20
            while self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise AssertionError("s3s-fs did not start")
                    time.sleep(0.05)
            # Listening, and not some other server on that port.
            time.sleep(0.1)
            if self.proc.poll() is None:
                return
            self.proc.wait()
        raise AssertionError("s3s-fs could not listen on any port")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
