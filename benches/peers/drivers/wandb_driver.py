"""W&B's side of the side-by-side benchmarks (see common.py for how it is run).

W&B runs offline (run.py sets WANDB_MODE=offline, WANDB_DIR to the work folder
and WANDB_SILENT=true): each run is a `.wandb` file under `wandb/`, written by
W&B's service process (wandb-core), which the SDK starts and feeds. System
statistics and console capture are turned off (less work for W&B).

W&B has no local reader: `wandb.Api()` queries the server. The reader here
decodes the `.wandb` files themselves (a LevelDB-style log of protobuf
records, decoded with W&B's own `wandb_internal_pb2`), counting history steps
and looking for the exit record a finished run ends with.
"""

from __future__ import annotations

import glob
import json
import os
import struct

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DIR", os.path.abspath("."))

import common  # noqa: E402
from common import clock  # noqa: E402

import wandb  # noqa: E402

SETTINGS = wandb.Settings(console="off", x_disable_stats=True)


def init(project: str, **kw):
    return wandb.init(project=project, dir=os.getcwd(), settings=SETTINGS, reinit="create_new", **kw)


def info(_: dict) -> dict:
    return {"version": common.version("wandb")}


class Tracker:
    def start(self):
        self.run = init("seed")

    def features(self, names):
        self.run.config["features"] = list(names)

    def parameter(self, key, value):
        self.run.config[key] = value

    def metric(self, key, value):
        self.run.log({key: value})

    def model(self, name, obj):
        import joblib

        path = os.path.join(os.getcwd(), f"{name}.joblib")
        joblib.dump(obj, path)
        art = wandb.Artifact(name, type="model")
        art.add_file(path)
        self.run.log_artifact(art)

    def end(self):
        self.run.finish()


def seed(p: dict) -> dict:
    return common.seed(Tracker(), p["quick"])


def log_metric(p: dict) -> dict:
    n, end = p["n"], common.deadline(p["deadline_s"])
    run = init("per-call")
    done = 0
    t0 = clock()
    for base in range(0, n, 100):  # the deadline is checked every 100 calls
        for i in range(base, min(base + 100, n)):
            run.log({"loss": i * 0.001}, step=i)
        done = min(base + 100, n)
        if clock() > end:
            break
    t1 = clock()
    common.emit({"partial": True, "calls": done, "us_per_call": (t1 - t0) / done * 1e6})  # what was measured, should waiting for durability time out
    t1b = clock()
    run.finish()
    t2 = clock()
    return {"calls": done, "us_per_call": (t1 - t0) / done * 1e6, "durable_s": (t1 - t0) + (t2 - t1b)}


def log_batch(p: dict) -> dict:
    steps, width, end = p["steps"], p["metrics"], common.deadline(p["deadline_s"])
    values = {f"m{k}": 0.5 + k for k in range(width)}
    run = init("batch")
    done = 0
    t0 = clock()
    for i in range(steps):
        run.log(values, step=i)
        done = i + 1
        if clock() > end:
            break
    t1 = clock()
    common.emit({"partial": True, "points": done * width, "calls_s": t1 - t0})  # what was measured, should waiting for durability time out
    t1b = clock()
    run.finish()
    t2 = clock()
    return {"points": done * width, "calls_s": t1 - t0, "durable_s": (t1 - t0) + (t2 - t1b)}


def many_write(p: dict) -> dict:
    """One wandb.init (parameters as its config), one log, one finish per run."""
    end = common.deadline(p["deadline_s"])
    done = 0
    t0 = clock()
    for i in range(p["runs"]):
        params, metrics = common.many_runs_data(i, p["params"], p["metrics"])
        run = init("many", config=params)
        run.log(metrics, step=0)
        run.finish()
        done = i + 1
        if clock() > end:
            break
    t1 = clock()
    return {"runs": done, "write_s": t1 - t0}


def crash_child(p: dict) -> None:
    run = init("crash")
    common.ack(-1)
    end = common.deadline(p["max_s"])
    i = 0
    while clock() < end:
        run.log({"loss": i * 0.001}, step=i)
        common.ack(i)
        i += 1
    run.finish()


def records(path: str):
    """The records of a .wandb file: a 7-byte header, then 32 KiB blocks of
    (CRC, length, type) framed chunks, LevelDB's log format. Stops at the first
    torn or unwritten chunk."""
    with open(path, "rb") as f:
        data = f.read()
    block, pos, buf = 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7 : pos + 7 + length]
        if kind == 0 or len(chunk) < length:
            return
        pos += 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            yield buf + chunk
            buf = b""
        else:
            return


def read(p: dict) -> dict:
    from wandb.proto import wandb_internal_pb2 as pb

    acked = p.get("acked")
    runs = []
    for path in sorted(glob.glob(os.path.join(os.getcwd(), "wandb", "*run-*", "run-*.wandb"))):
        steps, status = set(), "no exit record"
        for data in records(path):
            rec = pb.Record()
            rec.ParseFromString(data)
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                if rec.history.HasField("step"):
                    steps.add(rec.history.step.num)
                else:
                    for item in rec.history.item:
                        if item.key == "_step":
                            steps.add(int(json.loads(item.value_json)))
            elif kind == "exit":
                status = "finished" if rec.exit.exit_code == 0 else f"exit code {rec.exit.exit_code}"
        runs.append(
            {
                "status": status,
                "points": len(steps),
                "steps_below": None if acked is None else len({s for s in steps if s < acked}),
            }
        )
    return {"runs": runs}


def memory(p: dict) -> dict:
    n, end = p["n"], common.deadline(p["deadline_s"])
    run = init("memory")
    run.log({"loss": 0.0}, step=0)
    done = 0
    before = peak = common.rss_kb()
    for base in range(0, n, 100):  # the deadline is checked every 100 calls
        for i in range(base, min(base + 100, n)):
            run.log({"loss": i * 1e-7}, step=i)
        done = min(base + 100, n)
        peak = max(peak, common.rss_kb())
        if clock() > end:
            break
    common.emit({"points": done, "growth_mb": (peak - before) / 1024, "base_mb": before / 1024})
    os._exit(0)


if __name__ == "__main__":
    common.main(
        {
            "info": info,
            "seed": seed,
            "log_metric": log_metric,
            "log_batch": log_batch,
            "many_write": many_write,
            "crash_child": crash_child,
            "read": read,
            "memory": memory,
        }
    )
