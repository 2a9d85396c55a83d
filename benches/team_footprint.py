"""What a team server keeps per run and per point: PostgreSQL's bytes (the
index: tables and their indexes) and the object store's bytes (journals),
measured on a real `lab server` after runs of known shape streamed to it.

    python benches/team_footprint.py            # 3 shapes of 300 runs
    python benches/team_footprint.py --quick    # 3 shapes of 30 runs

Each shape is measured on a fresh server: runs x points is varied one at a
time, and the differences give the bytes per run and per point. Runs with
the Python of the environment `lab` is installed in (`make develop` or
`make venv`); needs PostgreSQL as the tests do (docs/team.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from team_server import Server  # noqa: E402  (the tests' real server)

LAB = str(Path(sys.executable).parent / "lab")

TRAIN = """
import sys, lab
runs, points = int(sys.argv[1]), int(sys.argv[2])
e = lab.Experiment("footprint")
for r in range(runs):
    with e.start_run():
        e.log_parameters({f"p{i}": i * r for i in range(10)})
        for name in ("loss", "accuracy", "lr", "grad_norm", "val_loss"):
            for step in range(points):
                e.log_metric(name, 1.0 / (step + r + 1), step=step)
        for t in ("stage", "owner", "dataset"):
            e.set_tag(t, f"{t}-{r % 7}")
"""


def psql(server: Server, sql: str) -> str:
    out = subprocess.run(
        [str(server.pg.bin / "psql"), "-h", "127.0.0.1", "-p", str(server.pg.port), "-U", "postgres",
         "-d", "lab", "-At", "-c", sql],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def measure(runs: int, points: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="lab-footprint-"))
    os.chmod(folder, 0o755)
    server = Server(folder)
    try:
        project = folder / "home" / "footprint"
        project.mkdir(parents=True)
        env = dict(os.environ, LAB_PROJECT=str(project), LAB_SERVER=server.url, LAB_TOKEN=server.token("bench"),
                   LAB_UPLOAD_GRACE_SECS="600", XDG_CONFIG_HOME=str(folder / "config"))
        (project / "train.py").write_text(textwrap.dedent(TRAIN))
        started = time.monotonic()
        subprocess.run([sys.executable, "train.py", str(runs), str(points)], cwd=project, env=env, check=True,
                       capture_output=True, text=True)
        synced = subprocess.run([LAB, "sync"], cwd=project, env=env, check=True, capture_output=True, text=True)
        assert f"0 runs sent, {runs} runs already" in synced.stdout, synced.stdout
        seconds = time.monotonic() - started
        psql(server, "VACUUM ANALYZE")
        sizes = {
            schema: int(psql(server, f"""
                SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind = 'r'"""))
            for schema in ("lab", "lab_team")
        }
        store = sum(p.stat().st_size for p in server.bucket.rglob("*") if p.is_file())
        objects = sum(1 for p in server.bucket.rglob("*") if p.is_file())
        return {"runs": runs, "points": runs * points * 5, "pg_lab": sizes["lab"], "pg_team": sizes["lab_team"],
                "store": store, "objects": objects, "seconds": seconds}
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 runs a shape, not 300")
    args = parser.parse_args()
    runs = 30 if args.quick else 300
    shapes = [(runs, 100), (2 * runs, 100), (runs, 1000)]
    rows = [measure(r, p) for r, p in shapes]
    for row in rows:
        print(json.dumps(row))
    base, more_runs, more_points = rows
    per_run_pg = (more_runs["pg_lab"] - base["pg_lab"]) / (more_runs["runs"] - base["runs"])
    per_point_pg = (more_points["pg_lab"] - base["pg_lab"]) / (more_points["points"] - base["points"])
    per_point_store = (more_points["store"] - base["store"]) / (more_points["points"] - base["points"])
    per_run_store = (more_runs["store"] - base["store"]) / (more_runs["runs"] - base["runs"]) - per_point_store * 500
    print()
    print("| what | PostgreSQL (index) | object store (journals) |")
    print("|---|---:|---:|")
    print(f"| per run (10 params, 5 metrics, 3 tags) | {per_run_pg:,.0f} B | {per_run_store:,.0f} B |")
    print(f"| per point | {per_point_pg:,.2f} B | {per_point_store:,.2f} B |")


if __name__ == "__main__":
    main()
