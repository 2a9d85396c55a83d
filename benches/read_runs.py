"""Reading every matching run into Python, in one process: where `lab.runs` spends its time.

    python benches/read_runs.py --project bench-out/m10k   # a project of benches/million.py --keep

Times, in one process after a first call, `_lab.select_runs` (the query and
the decoding of the listing summaries), `lab.runs(where=..., sort=...)` and
the same with `as_frame=True`, and the frame made from a listing already
read, `--repeats` times each in turn, and prints the median and minimum of
each (the minimum is what a loaded machine disturbs least).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--where", default="m1 > 0.5")
    parser.add_argument("--sort", default="-m0")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ["LAB_PROJECT"] = str(args.project.resolve())

    import pandas  # noqa: F401  (imported before any clock starts)

    import lab
    from lab import _lab
    try:
        from lab.run import _frame
    except ImportError:  # a build before the frame was made of numpy arrays
        from datetime import datetime, timezone

        def _frame(listing: object) -> object:
            return pandas.DataFrame(listing.frame(datetime.fromtimestamp, timezone.utc))  # type: ignore[attr-defined]

    where, sort = args.where, args.sort
    cases = {
        "_lab.select_runs (query and decoding)": lambda: _lab.select_runs(None, where, [sort], [], None, False, None),
        f"lab.runs(where={where!r}, sort={sort!r})": lambda: lab.runs(where=where, sort=sort),
        "the same, as_frame=True": lambda: lab.runs(where=where, sort=sort, as_frame=True),
    }
    listing = cases["_lab.select_runs (query and decoding)"]()
    cases["the frame of a listing read"] = lambda: _frame(listing)
    times: dict = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():
            t = time.perf_counter()
            case()
            times[name].append((time.perf_counter() - t) * 1e3)
    print(f"{len(listing):,} runs match")
    print(f"{'case':<56} {'median ms':>10} {'min':>8}")
    for name, ms in times.items():
        print(f"{name:<56} {statistics.median(ms):>10.1f} {min(ms):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
