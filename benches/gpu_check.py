"""The GPU half of the system metrics, checked on a machine with an NVIDIA GPU.

    python benches/gpu_check.py            # with Lab and PyTorch (or CuPy) installed

Lab's tests run without a GPU: they check NVML's absence, and its calls
against a stand-in library. This script is the check on real hardware. It
keeps GPU 0 busy with matrix products for a few seconds inside a run that
samples every 0.5 s, then reads the run back and asserts that the
`sys/gpu0/...` metrics are there with plausible values (utilisation up
while busy, memory in use within the board's, a temperature, a power draw
where the board reports one), and compares them with `nvidia-smi` when it
is on the PATH. It prints what it found and exits non-zero on a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

SECONDS = 6.0
INTERVAL = 0.5


def busy_gpu(seconds: float) -> str:
    """Matrix products on GPU 0 for `seconds`; says which library did them."""
    try:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("PyTorch sees no CUDA device: is this a machine with an NVIDIA GPU and its driver?")
        a = torch.randn(4096, 4096, device="cuda")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize()
        return f"torch {torch.__version__}"
    except ImportError:
        pass
    try:
        import cupy

        a = cupy.random.standard_normal((4096, 4096), dtype=cupy.float32)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            a = cupy.clip(a @ a, -1, 1)
            cupy.cuda.Device(0).synchronize()
        return f"cupy {cupy.__version__}"
    except ImportError:
        raise SystemExit("the check needs PyTorch or CuPy to keep the GPU busy: `pip install torch`") from None


def nvidia_smi() -> "dict | None":
    """GPU 0's memory total (bytes) and power limit (W), as nvidia-smi says."""
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(
        ["nvidia-smi", "--id=0", "--query-gpu=memory.total,power.limit,name", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return None
    total, limit, name = [x.strip() for x in out.stdout.strip().split(",", 2)]
    try:
        power = float(limit)
    except ValueError:
        power = None
    return {"memory_total_bytes": float(total) * 1024 * 1024, "power_limit_watts": power, "name": name}


def main() -> int:
    os.environ.pop("LAB_SYSTEM_METRICS", None)
    os.environ.pop("LAB_SYSTEM_METRICS_INTERVAL", None)
    folder = tempfile.mkdtemp(prefix="lab-gpu-check-")
    os.environ["LAB_PROJECT"] = folder
    os.chdir(folder)

    import lab
    from lab import Experiment

    e = Experiment("gpu-check", system_metrics_interval=INTERVAL)
    with e.start_run():
        # Idle first, so the samples show the rise.
        time.sleep(1.5)
        library = busy_gpu(SECONDS)
    run = lab.get_run(e.run_id)
    names = sorted(n for n in run.metrics if n.startswith("sys/gpu"))
    print(f"run {run.short_id}, GPU kept busy with {library}; GPU metrics: {names}")
    problems = []

    def history(name: str) -> list:
        return [v for _, _, v in run.metric_history(name)]

    util = history("sys/gpu0/util_percent")
    mem = history("sys/gpu0/mem_used_bytes")
    mem_pct = history("sys/gpu0/mem_percent")
    temp = history("sys/gpu0/temp_c")
    power = history("sys/gpu0/power_watts")
    for label, values in [("util_percent", util), ("mem_used_bytes", mem), ("mem_percent", mem_pct), ("temp_c", temp), ("power_watts", power)]:
        print(f"  sys/gpu0/{label}: {len(values)} samples, min {min(values, default=float('nan')):.4g}, max {max(values, default=float('nan')):.4g}")
    expected = (1.5 + SECONDS) / INTERVAL
    if not util or len(util) < 0.6 * expected:
        problems.append(f"sys/gpu0/util_percent has {len(util)} samples, expected about {expected:.0f}")
    if util and not all(0 <= v <= 100 for v in util):
        problems.append(f"utilisation out of 0..100: {util}")
    if util and max(util) < 50:
        problems.append(f"utilisation never reached 50 % while the GPU multiplied matrices: {util}")
    if util and max(util) - min(util[:2]) < 20:
        problems.append(f"utilisation did not rise from the idle start (is another process using GPU 0?): {util}")
    if not mem or min(mem) <= 0:
        problems.append(f"memory in use should be above 0 (a CUDA context holds some): {mem}")
    if mem_pct and not all(0 < v <= 100 for v in mem_pct):
        problems.append(f"memory percent out of 0..100: {mem_pct}")
    if not temp or not all(5 <= v <= 110 for v in temp):
        problems.append(f"temperature should be 5..110 °C: {temp}")
    if power and not all(0 < v <= 2000 for v in power):
        problems.append(f"power should be 0..2000 W: {power}")
    if not power:
        print("  (no power readings: this board does not report its power through NVML)")
    smi = nvidia_smi()
    if smi is not None:
        print(f"  nvidia-smi: {smi['name']}, {smi['memory_total_bytes'] / 2**30:.1f} GiB, power limit {smi['power_limit_watts']} W")
        if mem and max(mem) > smi["memory_total_bytes"] * 1.01:
            problems.append(f"memory in use {max(mem)} is above the board's {smi['memory_total_bytes']}")
        if power and smi["power_limit_watts"] and max(power) > smi["power_limit_watts"] * 1.5:
            problems.append(f"power {max(power)} W is far above the board's limit {smi['power_limit_watts']} W")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print("GPU system metrics: OK")
    shutil.rmtree(folder, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
