"""Lab's build backend: maturin's, with the native `lab` command as the wheel's script.

A wheel of Lab holds the Python package with its extension module `lab._lab`,
which maturin builds, and one script, `bin/lab`: the `lab` binary of
crates/lab_cli, so that the command runs without starting Python first.
Maturin builds one Rust target for a wheel, so this builds the binary with
cargo first and puts it in the data folder maturin packs (`[tool.maturin]
data` in pyproject.toml: `target/lab.data`). Installers copy the files of
its `scripts` into the environment's `bin` as they are.

Two ways in:

- as the PEP 517 backend of pyproject.toml, for `pip install .`,
  `pip wheel .` and installs from the sdist: the hooks that build a wheel
  stage the binary, built in the cargo profile maturin builds in
  (`release`, or the `--profile` or `--release` of `MATURIN_PEP517_ARGS` or
  of the `build-args` config setting), then hand over to maturin, whose
  other hooks are this module's too;
- as a script before `maturin develop` or `maturin build`, which do not go
  through PEP 517 (the Makefile does this):
  `python packaging/lab_build.py --profile dev`.

The binary is built with both `lab_cli` and `lab_py` selected, so cargo
resolves the same features as for maturin's build of `lab_py` and the two
share every compiled dependency: the binary adds its `main.rs` and a link.

The extension module holds no command line: `python -m lab.cli` runs this
binary too. So a wheel is never built without it: when cargo cannot build
it, the build fails, as it would for the extension module.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
# `[tool.maturin] data` in pyproject.toml.
DATA = ROOT / "target" / "lab.data"
SCRIPT = DATA / "scripts" / "lab"
MANIFEST = ROOT / "crates" / "lab_py" / "Cargo.toml"


def build_binary(profile: str, target: Optional[str] = None, locked: bool = False) -> Path:
    """Builds the `lab` binary with cargo; returns its path."""
    command = [
        os.environ.get("CARGO", "cargo"),
        "build",
        "--manifest-path",
        str(MANIFEST),
        "-p",
        "lab_cli",
        "-p",
        "lab_py",
        "--bin",
        "lab",
        "--profile",
        profile,
        "--message-format",
        "json-render-diagnostics",
    ]
    if target:
        command += ["--target", target]
    if locked:
        command.append("--locked")
    # Cargo's progress and errors go to stderr, as they come; its messages
    # on stdout say where the binary is, wherever the target folder is.
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`{shlex.join(command)}` failed (exit status {done.returncode})")
    for line in done.stdout.decode(errors="replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if (
            message.get("reason") == "compiler-artifact"
            and message.get("target", {}).get("name") == "lab"
            and "bin" in message.get("target", {}).get("kind", [])
            and message.get("executable")
        ):
            return Path(message["executable"])
    raise RuntimeError(f"`{shlex.join(command)}` named no `lab` executable")


def stage(source: Path, strip: bool) -> None:
    """Makes `source` the wheel's `bin/lab`, replacing what was there.

    With `strip`, the copy loses its symbol table (a fifth of its size), so
    that the wheel, which carries the command beside the extension module,
    installs no bigger than the module did when it held the command line
    too. (Setting the cargo profile's `strip` instead would rebuild every
    dependency apart from the module's.)
    """
    SCRIPT.parent.mkdir(parents=True, exist_ok=True)
    partial = SCRIPT.with_name(".lab.partial")
    shutil.copyfile(source, partial)
    partial.chmod(0o755)
    if strip:
        tool = shutil.which("strip")
        done = subprocess.run([tool, "--strip-all", str(partial)], check=False) if tool else None
        if done is None or done.returncode != 0:
            sys.stderr.write("warning: `strip` could not strip the `lab` command; it keeps its symbols\n")
    os.replace(partial, SCRIPT)


def ensure_data() -> None:
    """Makes the data folder, which maturin needs to exist for any hook."""
    DATA.mkdir(parents=True, exist_ok=True)


def cargo_args(config_settings: Optional[Mapping[str, Any]]) -> tuple[str, Optional[str]]:
    """The cargo profile and target maturin's PEP 517 build will use."""
    raw = None
    if config_settings:
        raw = config_settings.get("maturin.build-args", config_settings.get("build-args"))
    if raw is None:
        args = shlex.split(os.environ.get("MATURIN_PEP517_ARGS", ""))
    elif isinstance(raw, str):
        args = shlex.split(raw)
    else:
        args = list(raw)
    profile, target = "release", None
    for i, arg in enumerate(args):
        following = args[i + 1] if i + 1 < len(args) else None
        if arg in ("--release", "-r"):
            profile = "release"
        elif arg == "--profile" and following:
            profile = following
        elif arg.startswith("--profile="):
            profile = arg.split("=", 1)[1]
        elif arg == "--target" and following:
            target = following
        elif arg.startswith("--target="):
            target = arg.split("=", 1)[1]
    return profile, target


def stage_for_wheel(config_settings: Optional[Mapping[str, Any]]) -> None:
    profile, target = cargo_args(config_settings)
    stage(build_binary(profile, target), strip=profile != "dev")


# The PEP 517 hooks. Those not defined here are maturin's.


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    import maturin

    stage_for_wheel(config_settings)
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    import maturin

    stage_for_wheel(config_settings)
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None
) -> str:
    import maturin

    ensure_data()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_sdist(sdist_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    import maturin

    ensure_data()
    return maturin.build_sdist(sdist_directory, config_settings)


def __getattr__(name: str) -> Any:
    import maturin

    return getattr(maturin, name)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Build the native `lab` command and stage it as the wheel's `bin/lab`, "
        "before `maturin develop` or `maturin build`."
    )
    parser.add_argument("--profile", default="dev", help="the cargo profile, as maturin's (default: dev)")
    parser.add_argument("--target", help="the target triple, as maturin's")
    parser.add_argument("--locked", action="store_true", help="pass `--locked` to cargo")
    args = parser.parse_args(argv)
    try:
        binary = build_binary(args.profile, args.target, args.locked)
    except (OSError, RuntimeError) as e:
        sys.stderr.write(f"error: cannot build the native `lab` command: {e}\n")
        return 1
    stage(binary, strip=args.profile != "dev")
    print(f"{SCRIPT} is {binary}" + (", stripped" if args.profile != "dev" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
