"""Side-by-side benchmarks: Lab against MLflow, Aim and W&B, on this machine, in one run.

    python3 benches/peers/run.py            # full sizes (make bench-peers)
    python3 benches/peers/run.py --quick --lab-profile dev    # small sizes, a smoke run (make bench-peers-quick)

Each tool runs in a virtual environment of its own under bench-out/peers/venvs/,
with the versions pinned in benches/peers/requirements.txt; an environment is
made again only when that file changes (or its last install failed). Lab is
built from this checkout (`pip wheel`, not editable) in the cargo profile of
`--lab-profile` (release unless told) and installed into its environment on
every run.

Every measurement is a fresh child process (benches/peers/drivers/<tool>_driver.py)
in a fresh work folder, and the tools take turns within each scenario (the
order rotates every round) so that the machine's drift hits them alike. A tool
that failed to install, failed a scenario or ran out of its time limit is shown
as such in the table. The tables are printed and written as JSON
(bench-out/peers.json) and Markdown (bench-out/peers.md).

Runs with the machine's python3 and the standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DRIVERS = HERE / "drivers"
REQUIREMENTS = HERE / "requirements.txt"

PIP_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
# No tool may reach the network: W&B offline, no telemetry.
CHILD_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_CODE": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "AIM_UI_TELEMETRY_ENABLED": "0",
    "PYTHONWARNINGS": "ignore",
}


@dataclass
class Tool:
    key: str
    label: str
    env: str
    driver: str
    import_name: str
    mode: str = ""
    version: str = "?"
    broken: str = ""  # why the tool cannot run at all (a failed install)


TOOLS = [
    Tool("lab", "Lab", "lab", "lab_driver.py", "lab"),
    Tool("mlflow", "MLflow (sync)", "mlflow", "mlflow_driver.py", "mlflow", "sync"),
    Tool("mlflow-async", "MLflow (async)", "mlflow", "mlflow_driver.py", "mlflow", "async"),
    Tool("aim", "Aim", "aim", "aim_driver.py", "aim"),
    Tool("wandb", "W&B (offline)", "wandb", "wandb_driver.py", "wandb"),
]
BY_KEY = {t.key: t for t in TOOLS}
SAME_AS_SYNC = "same package and store as MLflow (sync): not run again"

SIZES = {
    "full": {
        "budget_s": 600,  # per tool and scenario: past it the tool is reported as timed out
        "import_reps": 11,
        "seed_reps": 3,
        "metric_n": 100_000,
        "metric_reps": 3,
        "metric_deadline_s": 45,
        # MLflow's async queue takes ~8 ms a point to drain into SQLite on this
        # machine: 10,000 calls already take ~90 s to become durable
        "metric_cap": {"mlflow-async": 10_000},
        "batch_steps": 1000,
        "batch_reps": 3,
        "batch_deadline_s": 60,
        "many_runs": 10_000,
        "many_deadline_s": {"aim": 240, "wandb": 240},
        "many_deadline_default_s": 540,
        "many_runs_cap": {"wandb": 1000},
        "query_reps": 5,
        # 5b. the query at sizes the peers' APIs cannot write in a benchmark's time
        "query_runs": [10_000, 50_000],
        "query_sample": 500,  # Lab and MLflow: runs written through the API (timed); the rest in bulk
        "query_fill_workers": 2,  # Aim: SDK processes writing side by side
        "query_aim_deadline_s": 200,  # Aim: writing time per size (indexing comes after)
        "query_timeout_s": 3600,  # per child process: a fill, or one query process
        "query_variant_budget_s": 240,  # per size and query: no new repetition past it
        "crash_rounds": 10,
        "crash_delay_s": (0.5, 3.0),
        "memory_n": 10_000_000,
        "memory_deadline_s": 120,
        "jobs": 1,
    },
    "quick": {
        "budget_s": 40,
        "import_reps": 1,
        "seed_reps": 1,
        "metric_n": 200,
        "metric_reps": 1,
        "metric_deadline_s": 1.5,
        "metric_cap": {},
        "batch_steps": 10,
        "batch_reps": 1,
        "batch_deadline_s": 1.5,
        "many_runs": 10,
        "many_deadline_s": {},
        "many_deadline_default_s": 3,
        "many_runs_cap": {},
        "query_reps": 1,
        "query_runs": [100],
        "query_sample": 10,
        "query_fill_workers": 2,
        "query_aim_deadline_s": 4,
        "query_timeout_s": 120,
        "query_variant_budget_s": 20,
        "crash_rounds": 1,
        "crash_delay_s": (0.1, 0.3),
        "memory_n": 50_000,
        "memory_deadline_s": 1,
        "jobs": 2,
    },
}
MANY_PARAMS = MANY_METRICS = 20
QUERY_PARAMS = QUERY_METRICS = 10  # the shape of the query scenario's runs
VERBOSE = False


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------ environments


def requirements() -> dict:
    """{'mlflow': [pins], ..., 'shared': [pins]} from requirements.txt."""
    groups: dict = {"shared": []}
    current = None
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.strip()
        if line.startswith("# tool:"):
            current = line.split(":", 1)[1].strip()
            groups[current] = []
        elif line.startswith("# shared"):
            current = "shared"
        elif line and not line.startswith("#"):
            groups[current or "shared"].append(line.split("#")[0].strip())
    return groups


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def footprint_now(venv: Path) -> tuple:
    sp = site_packages(venv)
    dists = sorted(p.name for p in sp.iterdir() if p.name.endswith(".dist-info"))
    size = 0
    for root, _, files in os.walk(venv):
        for f in files:
            try:
                size += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return dists, size


GENERIC = ("subprocess-exited-with-error", "failed building wheel", "error originates", "failed to build", "returned non-zero", "for more information")


def short_error(text: str) -> str:
    """The most telling line of an error output (a compiler's or pip's error), on one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    telling = [line for line in lines if "error" in line.lower() and not any(g in line.lower() for g in GENERIC)]
    pick = telling[0] if telling else (lines[-1] if lines else "no output")
    return pick[:300]


def pip(venv: Path, *args: str, timeout: float = 1800, env: dict | None = None) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **PIP_ENV, **(env or {})),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip {args[0]} failed: " + short_error(proc.stderr or proc.stdout))


def fresh_install(venv: Path, pins: list) -> dict:
    """Makes an empty environment, installs `pins` into it and returns what that
    pulled in: packages and bytes, above the empty environment."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    before, size_before = footprint_now(venv)
    t = time.perf_counter()
    pip(venv, "install", *pins)
    seconds = time.perf_counter() - t
    after, size_after = footprint_now(venv)
    added = [d[: -len(".dist-info")] for d in after if d not in before]
    return {"packages": len(added), "mb": (size_after - size_before) / 1e6, "install_s": seconds, "list": added}


def ensure_env(name: str, pins: list, shared: list, state: Path) -> dict:
    """The environment `name`, reused when its stamp matches requirements.txt."""
    venv = state / "venvs" / name
    stamp = hashlib.sha256(json.dumps([name, pins, shared, sys.version]).encode()).hexdigest()
    stamp_file = venv / ".bench-stamp"
    fp_file = venv / ".bench-footprint.json"
    if stamp_file.exists() and stamp_file.read_text() == stamp and fp_file.exists():
        return {"ok": True, "footprint": json.loads(fp_file.read_text()), "cached": True}
    log(f"installing {name}: {' '.join(pins + shared)}")
    try:
        footprint = fresh_install(venv, pins) if pins else None
        if not pins:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        pip(venv, "install", *shared)
    except Exception as exc:  # reported in every table, and retried next time
        stamp_file.unlink(missing_ok=True)
        log(f"install of {name} failed: {exc}")
        return {"ok": False, "error": str(exc)[-800:]}
    fp_file.write_text(json.dumps(footprint))
    stamp_file.write_text(stamp)
    log(f"installed {name}")
    return {"ok": True, "footprint": footprint, "cached": False}


def build_lab(state: Path, source: Path, profile: str) -> dict:
    """Builds Lab's wheel from this checkout in the cargo profile `profile`
    and installs it (not editable) into Lab's environment; measures its
    footprint in an empty one."""
    venv = state / "venvs" / "lab"
    wheels = state / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    log(f"building Lab (wheel, cargo profile {profile})")
    t = time.perf_counter()
    try:
        # The build backend and maturin both read the profile from here.
        pip(venv, "wheel", "--no-deps", "-w", str(wheels), str(source), env={"MATURIN_PEP517_ARGS": f"--profile {profile}"})
        wheel = str(next(wheels.glob("lab-*.whl")))
        build_s = time.perf_counter() - t
        pip(venv, "install", "--force-reinstall", "--no-deps", wheel)
        digest = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
        cache = state / "lab-footprint.json"
        cached = json.loads(cache.read_text()) if cache.exists() else {}
        if cached.get("wheel_sha256") == digest:
            footprint = cached["footprint"]
        else:
            with tempfile.TemporaryDirectory(prefix="lab-footprint-") as d:
                footprint = fresh_install(Path(d) / "venv", [wheel])
            cache.write_text(json.dumps({"wheel_sha256": digest, "footprint": footprint}))
    except Exception as exc:
        return {"ok": False, "error": str(exc)[-800:]}
    log(f"built Lab in {build_s:.0f} s")
    return {"ok": True, "footprint": footprint, "build_s": build_s, "profile": profile}


def setup_envs(state: Path, tools: list, lab_source: Path, lab_profile: str, then: dict) -> dict:
    """Every environment, side by side (downloads overlap, and Lab builds while
    the peers install); then[env](), if any, runs once that environment is ready."""
    groups = requirements()
    shared = groups["shared"]
    envs = sorted({t.env for t in tools} | {"lab"})

    def prepare(env: str) -> dict:
        if env == "lab" and LAB_ENV:  # built elsewhere: nothing to install, no footprint
            return {"ok": True, "footprint": None, "prebuilt": str(LAB_ENV[0])}
        status = ensure_env(env, groups.get(env, []) if env != "lab" else [], shared, state)
        if env == "lab" and status["ok"]:
            built = build_lab(state, lab_source, lab_profile)
            status = built if not built["ok"] else status | built
        if status["ok"] and env in then:
            then[env]()
        return status

    with ThreadPoolExecutor(max_workers=len(envs)) as pool:
        futures = {e: pool.submit(prepare, e) for e in envs}
        return {e: f.result() for e, f in futures.items()}


# ------------------------------------------------------------ child processes


LAB_ENV: list = []  # --lab-env: an environment that has Lab installed already


def python_of(state: Path, tool: Tool) -> str:
    if tool.env == "lab" and LAB_ENV:
        return str(LAB_ENV[0] / "bin" / "python")
    return str(state / "venvs" / tool.env / "bin" / "python")


def tree_rss_kb(pid: int) -> int:
    """Resident memory of pid and all its descendants, in KiB."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page_kb
        except (OSError, IndexError, ValueError):
            pass
    return total


def descendants(pid: int) -> list:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            found.append(c)
            todo.append(c)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def child_env(workdir: Path) -> dict:
    return dict(os.environ, **CHILD_ENV, LAB_PROJECT=str(workdir), WANDB_DIR=str(workdir))


@dataclass
class Outcome:
    result: dict = field(default_factory=dict)
    error: str = ""  # "timeout after N s" or the tool's error
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0


MLFLOW_TEMPLATE: list = []  # the empty MLflow store made once per suite run


def run_driver(state: Path, tool: Tool, scenario: str, params: dict, workdir: Path, timeout: float, sample_rss: bool = False, nice: bool = False) -> Outcome:
    """Runs a driver's scenario in a child process; with `nice`, at the lowest
    priority (filling a store, which is set-up, not a measurement)."""
    params = dict(params, mode=params.get("mode", tool.mode))
    if tool.env == "mlflow" and MLFLOW_TEMPLATE and not (workdir / "mlflow.db").exists():
        shutil.copyfile(MLFLOW_TEMPLATE[0], workdir / "mlflow.db")
    cmd = [python_of(state, tool), str(DRIVERS / tool.driver), scenario, json.dumps(params)]
    if nice:
        cmd = ["nice", "-n", "19", *cmd]
    out = Outcome()
    t = time.perf_counter()
    name = f"{scenario}-{time.time_ns()}"
    with open(workdir / f"{name}.stdout", "w+") as so, open(workdir / f"{name}.stderr", "w+") as se:
        proc = subprocess.Popen(cmd, cwd=workdir, env=child_env(workdir), stdout=so, stderr=se, start_new_session=True)
        peak = 0
        while True:
            try:
                proc.wait(timeout=0.05 if sample_rss else 0.5)
                break
            except subprocess.TimeoutExpired:
                if sample_rss:
                    peak = max(peak, tree_rss_kb(proc.pid))
                if time.perf_counter() - t > timeout:
                    kill_tree(proc.pid)
                    proc.wait()
                    out.error = f"timeout after {timeout:.0f} s"
                    break
        out.wall_s = time.perf_counter() - t
        out.peak_rss_mb = peak / 1024
        kill_tree(proc.pid)  # anything the tool left running (a W&B service, a server)
        so.seek(0)
        se.seek(0)
        lines = [line for line in so.read().splitlines() if line.startswith("{")]
        stderr = se.read()
    if lines:
        try:
            out.result = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    if out.result.get("partial") and not out.error:
        out.error = "exit before its result: " + short_error(stderr)
    if VERBOSE:
        log(f"  {tool.key} {scenario}: {out.wall_s:.1f} s {out.error[:100]}")
    if not out.error:
        if "error" in out.result:
            out.error = out.result["error"]
        elif not out.result:
            tail = stderr.strip().splitlines()[-3:]
            out.error = f"exit {proc.returncode}, no result: " + short_error(stderr)
    return out


def kill_tree(pid: int) -> None:
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


# ------------------------------------------------------------ results


def summary(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


@dataclass
class Table:
    """One measure of one scenario: a row per tool."""

    scenario: str
    title: str
    unit: str
    higher_is_better: bool = False
    rows: list = field(default_factory=list)  # dicts: tool, version, values | status, note

    def add(self, label: str, version: str, values: list = (), status: str = "", note: str = "", ref: bool = False) -> None:
        self.rows.append({"tool": label, "version": version, "values": list(values), "status": status, "note": note, "ref": ref})

    def as_json(self) -> dict:
        rows = []
        ref = self.reference()
        for r in self.rows:
            row = {"tool": r["tool"], "version": r["version"], "note": r["note"]}
            if r["values"]:
                s = summary(r["values"])
                row |= s
                if ref:
                    row["lab_lead"] = lead(ref, s["median"], self.higher_is_better)
            else:
                row["status"] = r["status"]
            rows.append(row)
        return {"scenario": self.scenario, "title": self.title, "unit": self.unit, "higher_is_better": self.higher_is_better, "rows": rows}

    def reference(self):
        for r in self.rows:
            if r["ref"] and r["values"]:
                return statistics.median(r["values"])
        return None


def lead(ref: float, value: float, higher_is_better: bool):
    """How many times better Lab's median is (below 1: Lab is behind)."""
    if higher_is_better:
        return ref / value if value else None
    return value / ref if ref else None


def fmt(x) -> str:
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def fmt_lead(x) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×" if x >= 1 else f"{x:.2f}×"


def render(table: dict, markdown: bool) -> str:
    head = ["tool", "version", f"median ({table['unit']})", "min–max", "n", "Lab's lead", "note"]
    body = []
    for r in table["rows"]:
        if "median" in r:
            cells = [r["tool"], r["version"], fmt(r["median"]), f"{fmt(r['min'])}–{fmt(r['max'])}", str(r["n"]), fmt_lead(r.get("lab_lead")), r["note"]]
        else:
            status = " ".join(r["status"].split())
            cells = [r["tool"], r["version"], "—", "", "", "", join(status if markdown else status[:200], r["note"])]
        body.append(cells)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---", "---:", "---:", "---:", "---:", "---"]) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max([len(head[i])] + [len(b[i]) for b in body]) for i in range(len(head) - 1)]  # a table may be empty
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  note"]
    for cells in body:
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1])
    return "\n".join(out)


# ------------------------------------------------------------ the suite


class Suite:
    def __init__(self, args, state: Path, sizes: dict, tools: list):
        self.args, self.state, self.sizes, self.tools = args, state, sizes, tools
        self.tables: list = []
        self.work = Path(tempfile.mkdtemp(prefix="lab-peers-", dir=args.workdir))
        self.deferred_reads: dict = {}  # tool key -> [(folder, params, callback)]
        self.raw: list = []  # every rounds() result, for the JSON
        self.rng = random.Random(args.seed)

    def workdir(self, name: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix=name + "-", dir=self.work))
        return d

    def table(self, *a, **kw) -> Table:
        t = Table(*a, **kw)
        self.tables.append(t)
        return t

    def usable(self, keys) -> list:
        return [BY_KEY[k] for k in keys if BY_KEY[k] in self.tools]

    def rounds(self, tools: list, reps: int, work, budget_s: float = None) -> dict:
        """Runs work(tool, rep) -> Outcome for every tool, `reps` times, in a
        rotating order; a tool that fails or runs out of its budget stops.
        Returns {tool key: [Outcome]}."""
        budget_s = budget_s or self.sizes["budget_s"]
        results = {t.key: [] for t in tools}
        self.raw.append(results)
        spent = {t.key: 0.0 for t in tools}
        stopped = {t.key: t.broken for t in tools}
        for rep in range(reps):
            order = tools[rep % len(tools) :] + tools[: rep % len(tools)] if tools else []
            todo = [t for t in order if not stopped[t.key]]

            def one(t, rep=rep):
                left = budget_s - spent[t.key]
                o = work(t, rep, max(left, 1))
                spent[t.key] += o.wall_s
                results[t.key].append(o)
                if o.error:
                    stopped[t.key] = o.error
                elif spent[t.key] >= budget_s and rep + 1 < reps:
                    stopped[t.key] = "budget"

            if self.sizes["jobs"] > 1:
                with ThreadPoolExecutor(self.sizes["jobs"]) as pool:
                    list(pool.map(one, todo))
            else:
                for t in todo:
                    one(t)
        return results

    def fill(self, table: Table, tools: list, results: dict, value, note=None, ref_key="lab", partial_ok=False) -> None:
        """A row per tool: the values of its good outcomes, else why it has none.
        With partial_ok, an outcome that timed out after measuring what the table
        shows (a driver's "partial" line) counts, and the timeout is noted."""
        for t in tools:
            outs = results.get(t.key, [])
            good = [o for o in outs if not o.error or (partial_ok and o.result.get("partial"))]
            bad = [o for o in outs if o not in good]
            late = [o for o in good if o.error]
            n = note(t, good) if note and good else ""
            if t.broken:
                table.add(t.label, t.version, status=f"not run: {t.broken}")
            elif good:
                if bad:
                    n = join(n, f"{len(bad)} run(s) failed: {bad[0].error}")
                if late:
                    n = join(n, f"{len(late)} run(s) then waited for durability past the time limit ({late[0].error})")
                table.add(t.label, t.version, [value(o) for o in good], note=n, ref=t.key == ref_key)
            elif bad:
                table.add(t.label, t.version, status=("timed out" if bad[0].error.startswith("timeout") else "failed") + f": {bad[0].error}")
            else:
                table.add(t.label, t.version, status="not run")

    # -------------------------------------------------- 1. seed example

    def seed(self) -> None:
        tools = self.tools
        reps = self.sizes["seed_reps"]

        def work(t, rep, timeout):
            return run_driver(self.state, t, "seed", {"quick": self.args.quick}, self.workdir("seed"), timeout)

        res = self.rounds(tools, reps, work)
        self.fill(self.table("1 seed", "Seed example: tracking time (run start, features, 2 params, 2 metrics, run end)", "ms"), tools, res, lambda o: o.result["tracking_ms"])
        self.fill(self.table("1 seed", "Seed example: logging the model (reported apart)", "ms"), tools, res, lambda o: o.result["model_ms"], note=model_note)
        self.fill(self.table("1 seed", "Seed example: training, the same work for every tool (for scale)", "ms"), tools, res, lambda o: o.result["training_ms"], ref_key=None)

    # -------------------------------------------------- 2. import

    def imports(self) -> None:
        tools = self.usable(["lab", "mlflow", "aim", "wandb"])
        reps = self.sizes["import_reps"]

        def timed(py, code):
            t = time.perf_counter()
            p = subprocess.run([py, "-c", code], capture_output=True, text=True, env=dict(os.environ, **CHILD_ENV))
            elapsed = time.perf_counter() - t
            if p.returncode:
                raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}")
            return elapsed

        if not self.args.quick:  # compile every .pyc first: imports are measured warm
            for t in tools:
                if not t.broken:
                    try:
                        timed(python_of(self.state, t), f"import {t.import_name}")
                    except RuntimeError:
                        pass

        def work(t, rep, timeout):
            py = python_of(self.state, t)
            try:
                bare = timed(py, "pass")
                full = timed(py, f"import {t.import_name}")
            except RuntimeError as exc:
                return Outcome(error=str(exc))
            return Outcome(result={"import_ms": (full - bare) * 1e3}, wall_s=bare + full)

        res = self.rounds(tools, reps, work)
        table = self.table("2 import", "`python -c \"import <tool>\"` minus a bare `python -c pass`", "ms")
        self.fill(table, tools, res, lambda o: o.result["import_ms"])
        self.note_async(table)

    def note_async(self, table: Table) -> None:
        if BY_KEY["mlflow-async"] in self.tools:
            table.add(BY_KEY["mlflow-async"].label, BY_KEY["mlflow"].version, status="n/a", note=SAME_AS_SYNC)

    # -------------------------------------------------- 3 + 7a. per-call logging

    def per_call(self) -> None:
        tools = self.tools
        n = self.sizes["metric_n"]

        def work(t, rep, timeout):
            d = self.workdir("per-call")
            params = {"n": min(n, self.sizes["metric_cap"].get(t.key, n)), "deadline_s": self.sizes["metric_deadline_s"]}
            o = run_driver(self.state, t, "log_metric", params, d, timeout, sample_rss=True)
            if not o.error:
                self.defer_read(t, d, {"acked": o.result["calls"]}, o)
            return o

        res = self.rounds(tools, self.sizes["metric_reps"], work)
        self.per_call_results = res

        def calls_note(t, good):
            made = min(o.result["calls"] for o in good)
            cap = self.sizes["metric_cap"].get(t.key)
            if cap and made >= cap:
                return f"capped at {cap:,} calls (see the next table)"
            return "" if made >= n else f"time-capped: {made:,} of {n:,} calls made"

        self.fill(self.table("3 per-call", f"Per-call logging: `log_metric(name, value, step=i)`, {n:,} calls in one run", "µs per call"), tools, res, lambda o: o.result["us_per_call"], note=calls_note, partial_ok=True)
        self.fill(self.table("3 per-call", "Per-call logging: from the first call until every point is durable, per point", "µs per point"), tools, res, lambda o: o.result["durable_s"] / o.result["calls"] * 1e6, note=lambda t, good: join(calls_note(t, good), DURABLE[t.key]))
        self.fill(self.table("7 memory", f"Memory: peak resident memory of the per-call run ({n:,} calls), the tool's processes together", "MB"), tools, res, lambda o: o.peak_rss_mb, note=calls_note)

    def defer_read(self, t: Tool, folder: Path, params: dict, outcome: Outcome) -> None:
        self.deferred_reads.setdefault(t.key, []).append((str(folder), params, outcome))

    # -------------------------------------------------- 4. batch logging

    def batch(self) -> None:
        tools = self.tools
        steps, width = self.sizes["batch_steps"], 100
        params = {"steps": steps, "metrics": width, "deadline_s": self.sizes["batch_deadline_s"]}

        def work(t, rep, timeout):
            d = self.workdir("batch")
            o = run_driver(self.state, t, "log_batch", params, d, timeout)
            shutil.rmtree(d, ignore_errors=True)
            return o

        res = self.rounds(tools, self.sizes["batch_reps"], work)

        def note(t, good):
            made = min(o.result["points"] for o in good)
            return join(BATCH_CALL[t.key], "" if made >= steps * width else f"time-capped: {made:,} of {steps * width:,} points")

        title = f"Batch logging: {steps:,} steps × {width} metrics through the batch call"
        self.fill(self.table("4 batch", title + ", calls only", "M points/s", higher_is_better=True), tools, res, lambda o: o.result["points"] / o.result["calls_s"] / 1e6, note=note, partial_ok=True)
        self.fill(self.table("4 batch", title + ", until durable", "M points/s", higher_is_better=True), tools, res, lambda o: o.result["points"] / o.result["durable_s"] / 1e6, note=lambda t, g: join(note(t, g), DURABLE[t.key]))

    # -------------------------------------------------- 5. many runs

    def many(self) -> None:
        tools = self.usable(["lab", "mlflow", "aim", "wandb"])
        n = self.sizes["many_runs"]
        dirs: dict = {}
        folders = {t.key: self.workdir("many") for t in tools}
        mlflow = BY_KEY["mlflow"]
        if MLFLOW_TEMPLATE and "mlflow" in folders:
            shutil.copyfile(MLFLOW_TEMPLATE[0], folders["mlflow"] / "mlflow.db")
        early_rest = None
        if self.sizes["jobs"] > 1 and mlflow in tools and not mlflow.broken:
            # quick mode: MLflow's server starts while the runs are written, and
            # queries once they are (its start-up is the slowest step of the suite)
            bg = ThreadPoolExecutor(1)
            p = {"runs": n, "params": MANY_PARAMS, "metrics": MANY_METRICS, "mode": "rest", "wait_for": "writes-done"}
            early_rest = bg.submit(run_driver, self.state, mlflow, "many_query", p, folders["mlflow"], self.sizes["budget_s"] * 2)
            bg.shutdown(wait=False)

        def work(t, rep, timeout):
            d = folders[t.key]
            runs = min(n, self.sizes["many_runs_cap"].get(t.key, n))
            deadline = self.sizes["many_deadline_s"].get(t.key, self.sizes["many_deadline_default_s"])
            o = run_driver(self.state, t, "many_write", {"runs": runs, "params": MANY_PARAMS, "metrics": MANY_METRICS, "deadline_s": deadline}, d, timeout)
            dirs[t.key] = (d, o.result.get("runs", 0))
            (d / "writes-done").write_text(json.dumps({"runs": o.result.get("runs", 0)}))
            return o

        res = self.rounds(tools, 1, work)

        def runs_note(t, good):
            made = good[0].result["runs"]
            cap = self.sizes["many_runs_cap"].get(t.key)
            if made >= n:
                return ""
            why = f"capped at {cap:,} runs" if cap and made >= cap else "time-capped"
            return f"{why}: {made:,} of {n:,} runs; per run ×{n / made:,.0f} would be the full size"

        def per_run_ms(o):
            return o.result["write_s"] / o.result["runs"] * 1e3

        self.fill(self.table("5 many runs", f"Many runs: writing {n:,} runs × {MANY_PARAMS} params × {MANY_METRICS} metrics (totals differ where capped: see the next table)", "s"), tools, res, lambda o: o.result["write_s"], note=runs_note, ref_key=None)
        self.fill(self.table("5 many runs", "Many runs: write time per run", "ms per run"), tools, res, per_run_ms, note=lambda t, g: join(runs_note(t, g), WRITE_PATH[t.key]))
        queryable = [t for t in tools if t.key != "wandb"]
        self.fill(self.table("5 many runs", "Many runs: from the first write until a query sees every run, per run", "ms per run"), queryable, res, lambda o: o.result["until_queryable_s"] / o.result["runs"] * 1e3, note=lambda t, g: join(runs_note(t, g), QUERYABLE[t.key]))

        # the query, m1 > 0.5 sorted by m0 largest first, each in a fresh process
        variants = [
            ("lab", "api", "Lab: lab.runs(where=…, sort=…)"),
            ("lab", "cli", "Lab: lab ls --where … --sort … (whole process)"),
            ("mlflow", "search", "MLflow: mlflow.search_runs"),
            ("aim", "query", "Aim: repo.query_runs + sort in Python"),
            ("mlflow", "rest", "MLflow: REST runs/search (mlflow server)"),
            ("lab", "rest", "Lab: REST /api/v1/runs (lab ui)"),
        ]
        qt_first = self.table("5 many runs", "Many runs: query `m1 > 0.5` sorted by `m0` descending, first call in a fresh process", "ms")
        qt_warm = self.table("5 many runs", "Many runs: the same query, second call in the same process", "ms")
        qt_page = self.table("5 many runs", "Many runs: REST, the first page of 100 of the same query, server warm (what a web page asks for)", "ms")
        def query(variant):
            """Runs one variant of the query; returns the rows to add to the two tables."""
            key, mode, label = variant
            t = BY_KEY[key]
            if t not in tools:
                return []
            if t.broken or key not in dirs or not dirs[key][1]:
                why = t.broken or (res[key][0].error if res.get(key) else "no runs written")
                return [(table, (label, t.version), {"status": f"not run: {why}"}) for table in (qt_first, qt_warm)]
            d, runs = dirs[key]
            p = {"runs": runs, "params": MANY_PARAMS, "metrics": MANY_METRICS, "mode": mode}
            reps = 1 if mode == "rest" else self.sizes["query_reps"]
            outs = []
            spent = 0.0
            if mode == "rest" and key == "mlflow" and early_rest:
                outs, reps = [early_rest.result()], 0
            for _ in range(reps):
                o = run_driver(self.state, t, "many_query", p, d, max(self.sizes["budget_s"] - spent, 1))
                spent += o.wall_s
                outs.append(o)
                if o.error or spent > self.sizes["budget_s"]:
                    break
            good = [o for o in outs if not o.error]
            note = [f"{runs:,} runs"] if runs != n else []
            if good:
                r = good[0].result
                if not r.get("correct"):
                    note.append(f"WRONG ANSWER: {r.get('rows')} rows, expected {r.get('expected_rows')}")
                if r.get("how") == "python":
                    note.append("lab.runs() filtered and sorted in Python: no where=/sort= yet" if mode == "api" else "`lab ls m0` sorted, filtered in Python: no --where yet")
                if mode == "cli":
                    note.append(f"whole process: `{r.get('command', 'lab ls')}`")
                if mode == "rest":
                    size = "50,000" if key == "mlflow" else "10,000"
                    note.append(f"server started in {r['server_start_s']:.1f} s (not counted); {r['pages']} page(s) of up to {size}")
                if key == "aim":
                    note.append("Aim's SDK has no sort")
            label_ref = key == "lab" and mode == "api"
            rows = []
            if mode == "rest":
                pages = [v * 1e3 for o in good for v in o.result.get("page_s", [])]
                if pages:
                    server = [v for o in good for v in o.result.get("page_server_ms", [])]
                    told = f"; the server's own time (Server-Timing) {statistics.median(server):.1f} ms" if server else ""
                    rows.append((qt_page, (label, t.version, pages), {"note": f"{runs:,} runs; median of {len(pages)} calls{told}", "ref": key == "lab"}))
            for table, field_ in ((qt_first, "first_s"), (qt_warm, "warm_s")):
                vals = [o.result[field_] * 1e3 for o in good if field_ in o.result]
                if vals:
                    rows.append((table, (label, t.version, vals), {"note": "; ".join(note), "ref": label_ref}))
                elif outs and outs[0].error:
                    rows.append((table, (label, t.version), {"status": f"failed: {outs[0].error}"}))
                elif good:
                    rows.append((table, (label, t.version), {"status": "n/a", "note": "one call per process"}))
            return rows

        with ThreadPoolExecutor(self.sizes["jobs"]) as pool:  # one at a time in a full run
            futures = {v: pool.submit(query, v) for v in sorted(variants, key=lambda v: v[1] != "rest")}  # the slow one first
            for v in variants:
                for table, a, kw in futures[v].result():
                    table.add(*a, **kw)
        for table in (qt_first, qt_warm):
            if BY_KEY["wandb"] in tools:
                table.add("W&B (offline)", BY_KEY["wandb"].version, status="not available: W&B queries runs only through its server (wandb.Api)")
        for d, _ in dirs.values():
            shutil.rmtree(d, ignore_errors=True)

    # -------------------------------------------------- 5b. querying many runs

    def query(self) -> None:
        """The many-runs query at sizes (10,000 and 50,000 runs) past what the
        peers' APIs write in a benchmark's time. Each store grows size by size:
        Lab's and MLflow's through the API for a sample (the write figure),
        the rest written in bulk (Lab: journals, record for record as its API
        writes them; MLflow: rows inserted into the schema it made), checked
        to read back as the API's runs do; Aim's through its SDK in parallel
        processes until a deadline (it has no bulk path), so Aim is queried at
        the largest size it reached."""
        tools = self.usable(["lab", "mlflow", "aim"])
        shape = {"params": QUERY_PARAMS, "metrics": QUERY_METRICS}
        folders = {t.key: self.workdir("query") for t in tools}
        if MLFLOW_TEMPLATE and "mlflow" in folders:
            shutil.copyfile(MLFLOW_TEMPLATE[0], folders["mlflow"] / "mlflow.db")
        reached = {t.key: 0 for t in tools}
        failed = {t.key: t.broken for t in tools}
        fills: dict = {t.key: [] for t in tools}  # every fill's outcome, size by size
        self.raw.append(fills)
        sz = self.sizes

        def fill(t, n):
            p = shape | {"from": reached[t.key], "to": n, "sample": sz["query_sample"], "workers": sz["query_fill_workers"], "deadline_s": sz["query_aim_deadline_s"]}
            return run_driver(self.state, t, "query_fill", p, folders[t.key], sz["query_timeout_s"], nice=True)

        for n in sz["query_runs"]:
            todo = [t for t in tools if not failed[t.key]]
            log(f"  filling to {n:,} runs: {', '.join(t.key for t in todo)}")
            with ThreadPoolExecutor(sz["jobs"]) as pool:
                outs = dict(zip([t.key for t in todo], pool.map(lambda t, n=n: fill(t, n), todo)))
            for key, o in outs.items():
                fills[key].append(o)
                if o.error:
                    failed[key] = o.error
                else:
                    reached[key] = o.result["runs"]
            self.query_fill_table(n, tools, fills, reached, failed)
            self.query_tables(n, tools, folders, reached, failed, shape)
        for d in folders.values():
            shutil.rmtree(d, ignore_errors=True)

    def query_fill_table(self, n: int, tools: list, fills: dict, reached: dict, failed: dict) -> None:
        table = self.table("5b query", f"Query {n:,} runs × {QUERY_PARAMS} params × {QUERY_METRICS} metrics: the stores, and the time to write a run through each tool's API", "ms per run")
        for t in tools:
            outs = [o for o in fills[t.key] if not o.error]
            if t.broken:
                table.add(t.label, t.version, status=f"not run: {t.broken}")
                continue
            if failed[t.key] and not reached[t.key]:
                table.add(t.label, t.version, status=f"failed: {failed[t.key]}")
                continue
            api_runs = sum(o.result["api_runs"] for o in outs)
            api_s = sum(o.result["api_write_s"] for o in outs)
            runs = reached[t.key]
            held = f"{runs:,} runs" + ("" if runs >= n else f" of {n:,}")
            if t.key == "lab":
                note = f"{held}: {api_runs:,} through the API ({WRITE_PATH['lab']}), timed, waiting every 100 runs for the background thread that syncs ended runs; the other {runs - api_runs:,} written in bulk as journals, record for record as the API writes them (the fill checks that Lab reads both alike); then folded into the index"
            elif t.key == "mlflow":
                note = f"{held}: {api_runs:,} through the API ({WRITE_PATH['mlflow']}), timed; the other {runs - api_runs:,} inserted in bulk into the SQLite schema MLflow made, as its API writes them (the fill checks that search_runs reads both alike)"
            else:
                workers = outs[0].result.get("workers", 1) if outs else 1
                note = f"{held}, every one through the SDK ({WRITE_PATH['aim']}) in {workers} processes, {self.sizes['query_aim_deadline_s']} s of writing per size (no bulk path), then indexed; per run: the processes' own time"
            if failed[t.key]:
                note = join(note, f"the next fill failed: {failed[t.key]}")
            if api_runs:
                table.add(t.label, t.version, [api_s / api_runs * 1e3], note=note, ref=t.key == "lab")
            else:
                table.add(t.label, t.version, status="n/a", note=note)

    def query_tables(self, n: int, tools: list, folders: dict, reached: dict, failed: dict, shape: dict) -> None:
        """The query `m1 > 0.5` sorted by `m0` largest first, every variant in
        fresh processes, repeated up to query_reps times within a time budget."""
        variants = [
            ("lab", "api", "Lab: lab.runs(where=…, sort=…)", "in process, every matching run"),
            ("lab", "cli", "Lab: lab ls --where … --sort … (whole process)", ""),
            ("lab", "rest", "Lab: REST /api/v1/runs (lab ui)", "GET, every page of up to 10,000"),
            ("mlflow", "search", "MLflow: mlflow.search_runs", "in process, every matching run (its pages followed)"),
            ("mlflow", "rest", "MLflow: REST runs/search (mlflow server)", "POST, every page of up to 50,000"),
            ("aim", "query", "Aim: repo.query_runs + sort in Python", "in process, every matching run; Aim's SDK has no sort"),
        ]
        title = f"Query {n:,} runs: `m1 > 0.5` sorted by `m0` descending"
        qt_first = self.table("5b query", f"{title}, first call in a fresh process", "ms")
        qt_warm = self.table("5b query", f"{title}, second call in the same process", "ms")
        qt_page = self.table("5b query", f"{title}, REST, the first page of 100, server warm (what a web page asks for)", "ms")
        sz = self.sizes

        def one(variant):
            key, mode, label, what = variant
            t = BY_KEY[key]
            if t not in tools:
                return []
            runs = reached[key]
            if t.broken or not runs or failed[key]:  # a failed fill may have left more runs than it reported
                why = t.broken or (f"its fill failed: {failed[key]}" if failed[key] else "no runs written")
                return [(table, (label, t.version), {"status": f"not run: {why}"}) for table in (qt_first, qt_warm)]
            p = shape | {"runs": runs, "mode": mode}
            outs, spent = [], 0.0
            for _ in range(sz["query_reps"]):
                o = run_driver(self.state, t, "many_query", p, folders[key], sz["query_timeout_s"])  # the budget only stops repetitions
                spent += o.wall_s
                outs.append(o)
                if o.error or spent > sz["query_variant_budget_s"]:
                    break
            good = [o for o in outs if not o.error]
            note = [what] if what else []
            if runs < n:
                note.insert(0, f"{runs:,} runs (the most it reached)")
            if good:
                r = good[0].result
                if not all(o.result.get("correct") for o in good):
                    bad = next(o.result for o in good if not o.result.get("correct"))
                    note.append(f"WRONG ANSWER: {bad.get('rows')} rows, expected {bad.get('expected_rows')}")
                if mode == "cli":
                    note.append(f"whole process: `{r.get('command', 'lab ls')}`")
                if mode == "rest":
                    start = statistics.median(o.result["server_start_s"] for o in good)
                    note.append(f"server start ({start:.1f} s) not counted")
                if len(good) < sz["query_reps"] and not outs[-1].error:
                    note.append(f"{len(good)} process(es) within {sz['query_variant_budget_s']} s")
            if outs and outs[-1].error and good:
                note.append(f"then failed: {outs[-1].error}")
            rows = []
            if mode == "rest":
                pages = [v * 1e3 for o in good for v in o.result.get("page_s", [])]
                if pages:
                    server = [v for o in good for v in o.result.get("page_server_ms", [])]
                    told = f"; the server's own time (Server-Timing) {statistics.median(server):.1f} ms" if server else ""
                    rows.append((qt_page, (label, t.version, pages), {"note": f"{runs:,} runs; 5 calls per server, {len(good)} server(s){told}", "ref": key == "lab"}))
            for table, field_ in ((qt_first, "first_s"), (qt_warm, "warm_s")):
                vals = [o.result[field_] * 1e3 for o in good if field_ in o.result]
                if vals:
                    rows.append((table, (label, t.version, vals), {"note": "; ".join(note), "ref": key == "lab" and mode == "api"}))
                elif outs and outs[0].error:
                    rows.append((table, (label, t.version), {"status": f"failed: {outs[0].error}"}))
                elif good:
                    rows.append((table, (label, t.version), {"status": "n/a", "note": "one call per process"}))
            return rows

        with ThreadPoolExecutor(sz["jobs"]) as pool:  # one at a time in a full run
            futures = {v: pool.submit(one, v) for v in sorted(variants, key=lambda v: v[1] != "rest")}  # the slow ones first
            for v in variants:
                for table, a, kw in futures[v].result():
                    table.add(*a, **kw)
        if BY_KEY["wandb"] in self.tools:
            for table in (qt_first, qt_warm):
                table.add(BY_KEY["wandb"].label, BY_KEY["wandb"].version, status="not available: W&B queries runs only through its server (wandb.Api); offline it keeps each run in a .wandb file and has no local query")

    # -------------------------------------------------- 6. crash durability

    def crash(self) -> None:
        tools = self.tools
        lo, hi = self.sizes["crash_delay_s"]
        rounds_ = self.sizes["crash_rounds"]

        def work(t, rep, timeout):
            d = self.workdir("crash")
            delay = self.rng.uniform(lo, hi)
            o = crash_round(self.state, t, d, delay, timeout)
            if not o.error:
                self.defer_read(t, d, {"acked": o.result["acked"]}, o)
            return o

        self.crash_results = self.rounds(tools, rounds_, work)

    def crash_tables(self) -> None:
        tools = self.tools
        res = self.crash_results
        t_lost = self.table("6 crash", f"Crash durability: acknowledged steps lost when SIGKILLed, {self.sizes['crash_rounds']} rounds", "steps lost", higher_is_better=False)
        for t in tools:
            outs = res.get(t.key, [])
            good = [o for o in outs if not o.error and "stored" in o.result]
            if t.broken:
                t_lost.add(t.label, t.version, status=f"not run: {t.broken}")
                continue
            if not good:
                err = next((o.error or o.result.get("read_error", "") for o in outs), "no rounds")
                t_lost.add(t.label, t.version, status=f"failed: {err}")
                continue
            lost = [o.result["acked"] - o.result["stored"] for o in good]
            acked = sum(o.result["acked"] for o in good)
            statuses = sorted({o.result["status"] for o in good})
            rounds_lost = sum(1 for x in lost if x > 0)
            note = f"{sum(lost):,} of {acked:,} acknowledged steps lost in all ({rounds_lost} of {len(good)} rounds lost some); run left as: {', '.join(statuses)}"
            t_lost.rows.append({"tool": t.label, "version": t.version, "values": lost, "status": "", "note": note, "ref": False})

    # -------------------------------------------------- 7b. memory of a long run

    def memory(self) -> None:
        tools = self.tools
        n = self.sizes["memory_n"]

        def work(t, rep, timeout):
            d = self.workdir("memory")
            o = run_driver(self.state, t, "memory", {"n": n, "deadline_s": self.sizes["memory_deadline_s"]}, d, timeout, sample_rss=True)
            shutil.rmtree(d, ignore_errors=True)
            return o

        res = self.rounds(tools, 1, work)

        def note(t, good):
            made = good[0].result["points"]
            return f"{made:,} points (time-capped at {self.sizes['memory_deadline_s']} s)" if made < n else f"{made:,} points"

        self.fill(self.table("7 memory", f"Memory: a run of {n:,} points (per-call log_metric), peak resident memory of the tool's processes", "MB"), tools, res, lambda o: o.peak_rss_mb, note=note)
        self.fill(self.table("7 memory", "Memory: the same run, growth of the logging process while it logs", "MB"), tools, res, lambda o: o.result["growth_mb"], note=note)

    # -------------------------------------------------- deferred reads

    def reads(self) -> None:
        """One fresh reader process per tool checks what the per-call runs stored
        and what the crashed runs kept."""
        groups: dict = {}
        for key, items in self.deferred_reads.items():
            groups.setdefault(BY_KEY[key].env, []).extend(items)

        def one(env):
            items = groups[env]
            t = next(x for x in self.tools if x.env == env)
            d = self.workdir("read")
            dirs = [[folder, params] for folder, params, _ in items]
            o = run_driver(self.state, t, "read", {"dirs": dirs}, d, max(self.sizes["budget_s"], 120))
            reads = o.result.get("reads", [])
            for i, (folder, params, outcome) in enumerate(items):
                r = reads[i] if i < len(reads) else {"error": o.error or "no result"}
                runs = r.get("runs", [])
                if "error" in r or len(runs) != 1:
                    outcome.result["read_error"] = r.get("error", f"{len(runs)} runs found")
                    continue
                outcome.result["stored"] = runs[0]["steps_below"]
                outcome.result["status"] = runs[0]["status"]
                outcome.result["points_stored"] = runs[0]["points"]
                shutil.rmtree(folder, ignore_errors=True)

        with ThreadPoolExecutor(self.sizes["jobs"]) as pool:
            list(pool.map(one, sorted(groups)))

    def verify_per_call(self) -> None:
        """Appends to the per-call tables whether every logged point was read back."""
        for table in self.tables:
            if table.scenario == "3 per-call" and "durable" in table.title:
                for row in table.rows:
                    t = next((x for x in self.tools if x.label == row["tool"]), None)
                    if not t:
                        continue
                    outs = [o for o in self.per_call_results.get(t.key, []) if not o.error]
                    short = [o for o in outs if o.result.get("stored") != o.result["calls"]]
                    if outs and not short:
                        row["note"] = join(row["note"], "a fresh reader found every point")
                    elif short:
                        o = short[0]
                        row["note"] = join(row["note"], f"READ BACK {o.result.get('stored')} of {o.result['calls']} points ({o.result.get('read_error', '')})")

    # -------------------------------------------------- 8. footprint

    def footprint(self, status: dict) -> None:
        tools = self.usable(["lab", "mlflow", "aim", "wandb"])
        pk = self.table("8 footprint", "Install footprint: packages a fresh `pip install <tool>` pulls in (the tool included)", "packages")
        mb = self.table("8 footprint", "Install footprint: disk used by that install", "MB")
        for t in tools:
            s = status.get(t.env, {})
            fp = s.get("footprint") if s.get("ok") else None
            if not fp:
                for table in (pk, mb):
                    table.add(t.label, t.version, status=f"not measured: {t.broken or s.get('error', 'install failed')}")
                continue
            note = f"Lab's wheel, built from this checkout (cargo profile {s.get('profile', 'release')})" if t.key == "lab" else f"pip install {requirements()[t.env][0]}"
            pk.add(t.label, t.version, [fp["packages"]], note=note, ref=t.key == "lab")
            mb.add(t.label, t.version, [fp["mb"]], note=note, ref=t.key == "lab")
        self.note_async(pk)
        self.note_async(mb)


DURABLE = {
    "lab": "durable when the call returns (the record is in the page cache): nothing to wait for",
    "mlflow": "each call commits to SQLite before it returns",
    "mlflow-async": "until mlflow.flush_async_logging() returns",
    "aim": "until run.close() returns",
    "wandb": "until wandb.finish() returns",
}
BATCH_CALL = {
    "lab": "e.log_metrics(dict, step=i)",
    "mlflow": "mlflow.log_metrics(dict, step=i)",
    "mlflow-async": "mlflow.log_metrics(dict, step=i), queued",
    "aim": "run.track(dict, step=i)",
    "wandb": "run.log(dict, step=i)",
}
WRITE_PATH = {
    "lab": "with e.start_run(): log_parameters + log_metrics",
    "mlflow": "MlflowClient: create_run + log_batch + set_terminated",
    "aim": "Run(...), run['hparams'] = …, run.track(dict), run.close()",
    "wandb": "wandb.init(config=…), run.log(dict), run.finish()",
}
QUERYABLE = {
    "lab": "writes, then the first lab.runs() that folds the journals into the index",
    "mlflow": "each call commits: queryable as soon as written",
    "aim": "writes, then indexing every run (Aim's UI does this in the background)",
}


def model_note(t: Tool, good: list) -> str:
    return {
        "lab": "e.log_model: joblib file, SHA-256",
        "mlflow": "mlflow.sklearn.log_model (cloudpickle, with environment files)",
        "mlflow-async": "mlflow.sklearn.log_model (cloudpickle, with environment files)",
        "aim": "joblib file + run.log_artifact (Aim has no model logging)",
        "wandb": "joblib file + wandb.Artifact",
    }[t.key]


def join(*parts) -> str:
    return "; ".join(p for p in parts if p)


def crash_round(state: Path, t: Tool, workdir: Path, delay_s: float, timeout: float) -> Outcome:
    """Starts the crash child, waits until it logs, lets it log for delay_s,
    SIGKILLs it and counts the steps it acknowledged."""
    if t.env == "mlflow" and MLFLOW_TEMPLATE:
        shutil.copyfile(MLFLOW_TEMPLATE[0], workdir / "mlflow.db")
    cmd = [python_of(state, t), str(DRIVERS / t.driver), "crash_child", json.dumps({"max_s": 60, "mode": t.mode})]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, env=child_env(workdir), stdout=subprocess.PIPE, stderr=open(workdir / "driver.stderr", "w"), start_new_session=True)
    lines = []
    ready = threading.Event()

    def reader():
        buf = b""
        while True:
            chunk = proc.stdout.read1(1 << 16)
            if not chunk:
                break
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for line in complete:
                lines.append(line)
                if line == b"-1":
                    ready.set()
        ready.set()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    if not ready.wait(timeout) or proc.poll() is not None:
        kill_tree(proc.pid)
        err = (workdir / "driver.stderr").read_text().strip().splitlines()[-1:] or ["no output"]
        return Outcome(error=f"crash child did not start: {err[0][:300]}", wall_s=time.perf_counter() - t0)
    time.sleep(delay_s)
    helpers = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # what the tool left behind (W&B's service) may still write what it was sent: let it
    end = time.perf_counter() + 10
    while any(alive(p) for p in helpers) and time.perf_counter() < end:
        time.sleep(0.05)
    kill_tree(proc.pid)
    for p in helpers:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    th.join(5)
    steps = [int(x) for x in lines if x.strip().lstrip(b"-").isdigit()]
    acked = max(steps) + 1 if steps else 0
    return Outcome(result={"acked": acked, "delay_s": delay_s}, wall_s=time.perf_counter() - t0)


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = f"{int(open('/proc/meminfo').readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    os_name = ""
    try:
        os_name = next(line.split("=", 1)[1].strip().strip('"') for line in open("/etc/os-release") if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "os": os_name,
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
    }


SCENARIOS = ["seed", "import", "per-call", "batch", "many", "query", "crash", "memory", "footprint"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, every scenario, under two minutes (after the one-time installs)")
    parser.add_argument("--tools", default=",".join(t.key for t in TOOLS), help="comma-separated: " + ",".join(t.key for t in TOOLS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--state", type=Path, default=ROOT / "bench-out" / "peers", help="where the environments and Lab's wheel are kept")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results (default bench-out/peers[-quick].json)")
    parser.add_argument("--markdown", type=Path, default=None, help="where to write the tables as Markdown (default bench-out/peers[-quick].md)")
    parser.add_argument("--workdir", default=None, help="parent of the temporary work folders (default: the system's)")
    parser.add_argument("--lab-source", type=Path, default=ROOT, help="the Lab checkout to build (default: this one)")
    parser.add_argument("--lab-profile", default="release", help="the cargo profile Lab's wheel is built in (default release; `dev` reuses the debug build of `make test`, for a smoke run: its figures are a debug build's)")
    parser.add_argument("--lab-env", type=Path, default=None, help="use the Lab installed in this virtual environment (a release build made elsewhere, e.g. `.venv` after `make venv`) instead of building a wheel; the seed scenario needs scikit-learn there, and the footprint scenario has no Lab row")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every child process and its time")
    parser.add_argument("--seed", type=int, default=None, help="seed of the crash scenario's kill moments")
    parser.add_argument("--query-sizes", default=None, help="comma-separated store sizes of the query scenario (default 10000,50000; --quick: 100)")
    parser.add_argument("--query-timeout", type=float, default=None, help="seconds each process of the query scenario may take, a fill or one query (default 3600; --quick: 120); a query past it is reported as timed out")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    suffix = "-quick" if args.quick else ""
    args.json = args.json or ROOT / "bench-out" / f"peers{suffix}.json"
    args.markdown = args.markdown or ROOT / "bench-out" / f"peers{suffix}.md"
    sizes = dict(SIZES["quick" if args.quick else "full"])
    if args.query_sizes:
        try:
            sizes["query_runs"] = sorted(int(x) for x in args.query_sizes.split(","))
        except ValueError:
            parser.error(f"--query-sizes takes comma-separated numbers of runs, not {args.query_sizes!r}")
    if args.query_timeout is not None:
        if args.query_timeout <= 0:
            parser.error(f"--query-timeout takes a positive number of seconds, not {args.query_timeout}")
        sizes["query_timeout_s"] = args.query_timeout
    wanted = [BY_KEY[k.strip()] for k in args.tools.split(",") if k.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}")
    if "lab" not in [t.key for t in wanted]:
        wanted.insert(0, BY_KEY["lab"])  # every ratio is to Lab

    started = time.time()
    t_start = time.perf_counter()
    args.state.mkdir(parents=True, exist_ok=True)
    if args.lab_env:
        LAB_ENV.append(args.lab_env.resolve())

    def mlflow_store():
        d = Path(tempfile.mkdtemp(prefix="lab-peers-mlflow-", dir=args.workdir))
        o = run_driver(args.state, BY_KEY["mlflow"], "init_store", {}, d, 300)
        if o.error:
            for t in wanted:
                if t.env == "mlflow":
                    t.broken = f"could not make its store: {o.error}"
        else:
            MLFLOW_TEMPLATE.append(o.result["store"])

    status = setup_envs(args.state, wanted, args.lab_source, args.lab_profile, {"mlflow": mlflow_store})
    for t in wanted:
        s = status[t.env]
        if not s["ok"]:
            t.broken = f"install failed: {s['error']}"
            continue
        dist = "lab" if t.env == "lab" else t.env
        p = subprocess.run([python_of(args.state, t), "-c", f"from importlib.metadata import version; print(version({dist!r}))"], capture_output=True, text=True)
        if p.returncode:
            t.broken = f"not installed: {short_error(p.stderr)}"
        else:
            t.version = p.stdout.strip()

    setup_s = time.perf_counter() - t_start
    if BY_KEY["lab"].broken:
        log(f"Lab itself is unusable: {BY_KEY['lab'].broken}")

    suite = Suite(args, args.state, sizes, wanted)
    t_run = time.perf_counter()
    steps = {
        "seed": suite.seed,
        "import": suite.imports,
        "per-call": suite.per_call,
        "batch": suite.batch,
        "many": suite.many,
        "query": suite.query,
        "crash": suite.crash,
        "memory": suite.memory,
        "footprint": lambda: suite.footprint(status),
    }
    for s in scenarios:
        log(f"scenario {s}")
        t = time.perf_counter()
        steps[s]()
        log(f"scenario {s}: {time.perf_counter() - t:.0f} s")
    if suite.deferred_reads:
        log("reading back what was stored")
        suite.reads()
        if "per-call" in scenarios:
            suite.verify_per_call()
        if "crash" in scenarios:
            suite.crash_tables()
    run_s = time.perf_counter() - t_run
    shutil.rmtree(suite.work, ignore_errors=True)
    for store in MLFLOW_TEMPLATE:
        shutil.rmtree(Path(store).parent, ignore_errors=True)

    order = {s: i for i, s in enumerate(["1 seed", "2 import", "3 per-call", "4 batch", "5 many runs", "5b query", "6 crash", "7 memory", "8 footprint"])}
    tables = sorted((t.as_json() for t in suite.tables), key=lambda t: order[t["scenario"]])
    command = (
        "python3 benches/peers/run.py"
        + (" --quick" if args.quick else "")
        + ("" if args.lab_profile == "release" else f" --lab-profile {args.lab_profile}")
        + ("" if args.tools == parser.get_default("tools") else f" --tools {args.tools}")
    )
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "command": command,
        "quick": args.quick,
        "lab_profile": args.lab_profile,
        "machine": machine(),
        "sizes": {k: v for k, v in sizes.items()},
        "versions": {t.key: t.version for t in wanted},
        "install": {e: {k: v for k, v in s.items() if k != "footprint"} for e, s in status.items()},
        "setup_s": setup_s,
        "run_s": run_s,
        "tables": tables,
        "raw": [
            {key: [{"result": o.result, "error": o.error, "wall_s": o.wall_s, "peak_rss_mb": o.peak_rss_mb} for o in outs] for key, outs in r.items()}
            for r in suite.raw
        ],
    }
    text, md = [], []
    for tb in tables:
        text.append(f"\n{tb['title']}\n" + render(tb, markdown=False))
        md.append(f"\n#### {tb['title']}\n\n" + render(tb, markdown=True))
    print("\n".join(text))
    print(f"\nset-up {setup_s:.0f} s, scenarios {run_s:.0f} s; Lab's lead: how many times better Lab's median is (below 1×: behind)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    header = f"{results['date']}, `{command}`, {m['cpus']} cores ({m['cpu']}), {m['memory']}, {m['os']}, Python {m['python']}"
    args.markdown.write_text(header + "\n" + "\n".join(md) + "\n")
    print(f"written to {args.json} and {args.markdown}")
    # A peer that fails is a result; Lab failing, or answering wrong, is a bug.
    problems = [
        f"{tb['title']}: {r['tool']}: {r.get('status') or r['note']}"
        for tb in tables
        for r in tb["rows"]
        if r["tool"].startswith("Lab")
        and (r.get("status", "").startswith(("failed", "timed out", "not run", "not measured")) or "WRONG ANSWER" in r["note"] or "READ BACK" in r["note"])
    ]
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
