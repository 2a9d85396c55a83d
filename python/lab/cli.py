"""``python -m lab.cli`` and ``lab.cli.main``: the ``lab`` command from Python.

The ``lab`` command is a native binary (crates/lab_cli) that the wheel
installs as its script, beside the environment's ``python``: it starts
without starting Python. This module runs that same binary, in place of the
Python process, so that every command, its output and its exit status are
the binary's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath
from typing import Iterable, Optional


def _native(path: Path) -> bool:
    """Whether `path` is an executable file that is no script (a `#!` script
    here is the `lab` of a project's environment, which calls this module)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) != b"#!"
    except OSError:
        return False


def _scripts_of(dists: Iterable[object]) -> Optional[Path]:
    for dist in dists:
        for file in getattr(dist, "files", None) or ():
            if file.name == "lab" and file.parent.name in ("bin", "Scripts"):
                path = Path(dist.locate_file(file)).resolve()  # type: ignore[attr-defined]
                if _native(path):
                    return path
    return None


def _recorded(site: Path) -> Optional[Path]:
    """The `lab` script in the install record of the Lab in `site`, read
    directly: importing `importlib.metadata` costs more than the listing."""
    try:
        names = os.listdir(site)
    except OSError:
        return None
    for name in names:
        if name.endswith(".dist-info") and name.split("-")[0] == "lab":
            try:
                lines = (site / name / "RECORD").read_text(encoding="utf-8").splitlines()
            except OSError:
                continue
            for line in lines:
                recorded = PurePosixPath(line.rsplit(",", 2)[0])
                if recorded.name == "lab" and recorded.parent.name in ("bin", "Scripts"):
                    path = (site / recorded).resolve()
                    if _native(path):
                        return path
    return None


def command() -> Optional[Path]:
    """The native ``lab`` installed with this Lab package, if there is one.

    Found through the package's install record, so it is the one installed
    with this copy of Lab whatever the layout (a virtual environment,
    ``--user``, ``--prefix``), also from an environment the package is
    linked into (``lab init``).
    """
    import sysconfig

    # The folder this package is installed in, through the link `lab init`
    # makes; then this environment's, where an editable install's record is.
    found = _recorded(Path(__file__).resolve().parent.parent) or _recorded(Path(sysconfig.get_path("purelib")))
    if found is None:
        from importlib import metadata

        found = _scripts_of(metadata.distributions(name="lab"))
    if found is None:
        # An environment `lab init` made, linked to an editable install:
        # its own `lab` is a link to the command.
        beside = Path(sysconfig.get_path("scripts")) / "lab"
        if _native(beside):
            found = beside.resolve()
    return found


def main() -> int:
    """Runs ``lab`` with this process's arguments, in place of this process.

    The entry point of ``python -m lab.cli`` and of the ``lab`` script of an
    environment ``lab init`` makes: this process becomes the command (its
    output, its exit status, its Ctrl-C). Returns (status 3) only when the
    native command is missing.
    """
    import signal

    lab = command()
    if lab is None:
        sys.stderr.write(
            "lab: the `lab` command is not installed with this Lab package\n\n"
            "hint: install Lab with `pip install .` in its checkout (or `make develop`), "
            "which builds the command and puts it beside `python`\n"
        )
        return 3
    # Commands that build environments need the Python Lab runs in.
    os.environ.setdefault("LAB_PYTHON", sys.executable)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    # A signal ignored here stays ignored in the program exec'd: Python
    # ignores SIGXFSZ, which the command started from a shell does not.
    # (SIGINT's handler is Python's own, so the command gets the default.)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    os.execv(lab, ["lab", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
