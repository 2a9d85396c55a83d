"""A training epoch of Keras and of PyTorch Lightning, with and without Lab,
against MLflow's autolog and W&B's callbacks on the same training.

    make int-venv                          # the frameworks (torch, keras, lightning)
    python3 benches/epochs/run.py          # every tracker, 5 rounds (make bench-epochs)
    python3 benches/epochs/run.py --rounds 1 --epochs 3   # a smoke run
    python3 benches/epochs/run.py --lab-from-int-venv    # Lab's debug build, no release build

Each tracker gets an environment of its own under bench-out/epochs/venvs/,
which sees the frameworks of .venv-int through a .pth file and adds the
tracker: Lab's release wheel built from this checkout (as benches/peers
builds it), or MLflow and W&B at the versions benches/peers/requirements.txt
pins. Every measurement is a fresh process (driver.py) training the same
model on the same data for EPOCHS epochs; the first epoch is a warm-up and
is dropped. The trackers take turns within each round, in an order that
rotates, so the machine's drift hits them alike. Printed as a Markdown
table of median epoch times (and written to bench-out/epochs.json and
bench-out/epochs.md).

Runs with the machine's python3 and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _peers():
    """benches/peers/run.py, whose pins, pip and Lab's wheel this reuses."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("peers_run", HERE.parent / "peers" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["peers_run"] = module
    spec.loader.exec_module(module)
    return module


peers = _peers()

INT_VENV = ROOT / ".venv-int"
TRACKERS = {
    "keras": ["none", "lab", "lab-batch", "mlflow", "wandb"],
    "lightning": ["none", "lab", "mlflow", "wandb"],
}
LABELS = {
    "none": "no tracker",
    "lab": "Lab (`LabCallback` / `LabLogger`)",
    "lab-batch": "Lab, every batch logged too",
    "mlflow": "MLflow autolog",
    "wandb": "W&B offline (`wandb.log` per epoch / `WandbLogger`)",
}
ENV_OF = {"none": "lab", "lab": "lab", "lab-batch": "lab", "mlflow": "mlflow", "wandb": "wandb"}


def make_env(state: Path, name: str, pins: list) -> Path:
    """An environment that sees .venv-int's packages, with `pins` on top."""
    venv = state / "venvs" / name
    stamp = json.dumps([name, pins, sys.version, str(INT_VENV)])
    stamp_file = venv / ".bench-stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return venv
    peers.log(f"making the environment {name}: {' '.join(pins) or '(frameworks only)'}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    (peers.site_packages(venv) / "frameworks.pth").write_text(str(peers.site_packages(INT_VENV)) + "\n")
    if pins:
        peers.pip(venv, "install", *pins)
    stamp_file.write_text(stamp)
    return venv


def measure(venv: Path, framework: str, tracker: str, epochs: int) -> list:
    with tempfile.TemporaryDirectory(prefix="lab-epochs-") as work:
        env = dict(os.environ, **peers.CHILD_ENV)
        proc = subprocess.run(
            [str(venv / "bin" / "python"), str(HERE / "driver.py"), framework, tracker, str(epochs), work],
            capture_output=True,
            text=True,
            env=env,
            timeout=1200,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{framework}/{tracker} failed: {peers.short_error(proc.stderr)}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["epoch_s"][1:], out.get("inside_s", [])[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=6, help="epochs a measurement trains (the first is dropped)")
    ap.add_argument("--frameworks", default="keras,lightning")
    ap.add_argument("--trackers", default="none,lab,lab-batch,mlflow,wandb")
    ap.add_argument(
        "--lab-from-int-venv",
        action="store_true",
        help="run Lab (and no tracker) in .venv-int, with the debug build `make test-integrations` put there, "
        "instead of building Lab's release wheel: slower Lab calls, so an upper bound of its cost",
    )
    args = ap.parse_args()
    if not (INT_VENV / "bin" / "python").exists():
        sys.exit("error: .venv-int is missing; make it with `make int-venv`")
    state = ROOT / "bench-out" / "epochs"
    groups = peers.requirements()
    wanted = set(args.trackers.split(","))
    if args.lab_from_int_venv:
        venvs = {"lab": INT_VENV}
    else:
        venvs = {"lab": make_env(state, "lab", [])}
        built = peers.build_lab(state, ROOT)
        if not built["ok"]:
            sys.exit(f"error: Lab's wheel did not build: {built['error']}")
    for tool in ("mlflow", "wandb"):
        if tool in wanted:
            venvs[tool] = make_env(state, tool, groups[tool])
    results: dict = {}
    # Per epoch, the share of its time spent inside Lab's own hooks.
    within: dict = {}
    for framework in args.frameworks.split(","):
        trackers = [t for t in TRACKERS[framework] if t in wanted]
        for r in range(args.rounds):
            order = trackers[r % len(trackers):] + trackers[: r % len(trackers)]
            for tracker in order:
                t = time.perf_counter()
                epochs, inside = measure(venvs[ENV_OF[tracker]], framework, tracker, args.epochs)
                results.setdefault(framework, {}).setdefault(tracker, []).extend(epochs)
                if inside:
                    shares = [i / e for i, e in zip(inside, epochs)]
                    within.setdefault(framework, {}).setdefault(tracker, []).extend(shares)
                peers.log(f"{framework} {tracker} round {r + 1}: median epoch {statistics.median(epochs):.3f} s ({time.perf_counter() - t:.0f} s)")
    versions = {}
    for tool, venv in venvs.items():
        code = "import importlib.metadata as m; print(m.version(%r))" % {"lab": "lab", "mlflow": "mlflow", "wandb": "wandb"}[tool]
        versions[tool] = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True).stdout.strip()
    for pkg in ("torch", "keras", "pytorch-lightning"):
        code = "import importlib.metadata as m; print(m.version(%r))" % pkg
        versions[pkg] = subprocess.run([str(venvs["lab"] / "bin" / "python"), "-c", code], capture_output=True, text=True).stdout.strip()
    lines = []
    for framework, by_tracker in results.items():
        base = statistics.median(by_tracker["none"]) if "none" in by_tracker else None
        lines.append(f"\n{framework} ({args.rounds} rounds of {args.epochs - 1} timed epochs)\n")
        lines.append("| tracker | median epoch | min | max | vs no tracker | inside Lab's hooks | epochs timed |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for tracker, epochs in by_tracker.items():
            med = statistics.median(epochs)
            rel = f"{(med / base - 1) * 100:+.1f} %" if base else ""
            shares = within.get(framework, {}).get(tracker)
            own = f"{statistics.median(shares) * 100:.3f} %" if shares else ""
            lines.append(
                f"| {LABELS[tracker]} | {med:.3f} s | {min(epochs):.3f} | {max(epochs):.3f} | {rel} | {own} | {len(epochs)} |"
            )
    build = "debug build in .venv-int" if args.lab_from_int_venv else "release wheel"
    text = "\n".join(lines) + f"\n\nversions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f" (Lab: {build})\n"
    print(text)
    out = ROOT / "bench-out"
    out.mkdir(exist_ok=True)
    (out / "epochs.json").write_text(json.dumps({"results": results, "inside_share": within, "versions": versions, "args": vars(args)}, indent=1))
    (out / "epochs.md").write_text(text)


if __name__ == "__main__":
    main()
