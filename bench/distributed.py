#!/usr/bin/env python3
"""Data-parallel training on one machine (issue #17): for msnet-tiny and msnet-small, the same
global batch, seed and synthetic set trained as
  (a) 1 process x T threads          `msconv --threads T train ...`
  (b) 2 processes x T/2 threads      `MSCONV_THREADS=T/2 msconv train --nproc 2 ...`
  (c) as (b) with train.sync_bn=true
each run in a fresh temporary workspace, without validation and without step checkpoints
(log_every 1, telemetry off). A run's speed is the median of its train.log's samples/s (over the
global batch) after the first SKIP steps. The modes run in REPEATS interleaved rounds (a, b, c,
a, b, c, ...) and each mode's figure is its fastest round: other work on the machine can only
slow a run down, and the per-round figures are printed beside it. The exposed communication
share is rank 0's time blocked in collectives over its training time, from the last line of
train.log, taken from the same round as the speed.

Prints a table, what it means on this machine, then one JSON line:
{"threads", "repeats", "models": {MODEL: {"batch", "steps", "a_samples_per_s",
 "b_samples_per_s", "b_over_a", "b_comm_pct", "c_samples_per_s", "c_over_a", "c_comm_pct",
 and per round: "a_run_medians", "b_comm_pct_runs", "a_wall_s", ...}}}.
Exits non-zero only when a run fails (or its train.log lacks the lines read), never on speed.
Usage: distributed.py MSCONV_BIN [THREADS]"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

# model -> (global batch, train.max_steps). Synthetic set: IDS x PER_ID images, 1,024, so every
# run stays in its first epoch (no loader restart in the measured steps).
MODELS = {"msnet-tiny": (32, 30), "msnet-small": (32, 20)}
IDS, PER_ID = 128, 8
SKIP = 5  # steps left out of the median: allocator and oneDNN warm-up, loaders filling up
REPEATS = 2
SEED = 0

STEP = re.compile(r"^step (\d+)/\d+ .*\bsamples/s ([0-9.eE+-]+)")
COMM = re.compile(r"^communication: rank 0 blocked ([0-9.eE+-]+) s of ([0-9.eE+-]+) s "
                  r"\(([0-9.eE+-]+) %\) over (\d+) ranks")


def train(msconv, model, mode, threads, batch, steps):
    """One run in a fresh workspace; returns {median, steps, comm_pct, wall_s}."""
    half = max(1, threads // 2)
    sets = {"model.arch": model, "data.train": "synthetic", "data.synthetic_identities": IDS,
            "data.synthetic_images_per_id": PER_ID, "data.synthetic_seed": SEED,
            "data.val": "", "train.batch_size": batch, "train.max_steps": steps,
            "train.checkpoint_every": 1000000, "train.val_every": 1000000,
            "train.log_every": 1, "telemetry.every": 0, "seed": SEED}
    env = dict(os.environ)
    env.pop("MSCONV_THREADS", None)
    if mode == "a":
        cmd = [msconv, "--threads", str(threads), "train"]
    else:
        cmd = [msconv, "train", "--nproc", "2"]
        env["MSCONV_THREADS"] = str(half)
        if mode == "c":
            sets["train.sync_bn"] = "true"
    with tempfile.TemporaryDirectory(prefix="msconv-dist-") as tmp:
        ws = os.path.join(tmp, "ws")
        cmd += ["--workspace", ws, "--name", "bench"]
        for k, v in sets.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError("%s (%s) failed with status %d:\n%s" % (
                model, mode, r.returncode, r.stderr[-3000:]))
        log = os.path.join(ws, "runs", "bench", "train.log")
        with open(log) as f:
            lines = f.read().splitlines()
    speeds = {}
    comm = None
    for line in lines:
        m = STEP.match(line)
        if m:
            speeds[int(m.group(1))] = float(m.group(2))
        m = COMM.match(line)
        if m:
            comm = float(m.group(3))
    if len(speeds) != steps:
        raise RuntimeError("%s (%s): %d step lines in train.log, expected %d" % (
            model, mode, len(speeds), steps))
    if mode != "a" and comm is None:
        raise RuntimeError("%s (%s): no 'communication:' line in train.log" % (model, mode))
    steady = [s for step, s in sorted(speeds.items()) if step > SKIP]
    return {"median": statistics.median(steady), "steady": steady, "comm_pct": comm,
            "wall_s": wall}


def main():
    msconv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin", "msconv")
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else (os.cpu_count() or 2)
    half = max(1, threads // 2)
    load0 = os.getloadavg()[0]
    t_start = time.monotonic()
    out = {}
    for model, (batch, steps) in MODELS.items():
        runs = {"a": [], "b": [], "c": []}
        for _ in range(REPEATS):
            for mode in runs:
                runs[mode].append(train(msconv, model, mode, threads, batch, steps))
        res = {"batch": batch, "steps": steps}
        for mode, rs in runs.items():
            best = max(rs, key=lambda r: r["median"])
            res[mode + "_samples_per_s"] = best["median"]
            res[mode + "_run_medians"] = [r["median"] for r in rs]
            if mode != "a":
                res[mode + "_comm_pct"] = best["comm_pct"]
                res[mode + "_comm_pct_runs"] = [r["comm_pct"] for r in rs]
            res[mode + "_wall_s"] = [r["wall_s"] for r in rs]
        res["b_over_a"] = res["b_samples_per_s"] / res["a_samples_per_s"]
        res["c_over_a"] = res["c_samples_per_s"] / res["a_samples_per_s"]
        out[model] = res
    elapsed = time.monotonic() - t_start
    load1 = os.getloadavg()[0]

    print("data-parallel training on %d cores: (a) 1 process x %d threads, (b) 2 processes x %d "
          "thread%s, (c) = (b) + train.sync_bn" % (os.cpu_count() or 0, threads, half,
                                                   "" if half == 1 else "s"))
    print("synthetic %d x %d images, seed %d; a run's median samples/s (global batch) after step "
          "%d; %d interleaved rounds, the fastest shown" % (IDS, PER_ID, SEED, SKIP, REPEATS))
    print("%-12s %5s %5s %10s %10s %7s %8s %10s %7s %8s" % (
        "model", "batch", "steps", "a samp/s", "b samp/s", "b/a", "b comm%", "c samp/s", "c/a",
        "c comm%"))
    for model, r in out.items():
        print("%-12s %5d %5d %10.1f %10.1f %7.2f %8.1f %10.1f %7.2f %8.1f" % (
            model, r["batch"], r["steps"], r["a_samples_per_s"], r["b_samples_per_s"],
            r["b_over_a"], r["b_comm_pct"], r["c_samples_per_s"], r["c_over_a"], r["c_comm_pct"]))
        print("%-12s %11s %10s %10s %7s %8s %10s %7s %8s" % (
            "  per round", "",
            "/".join("%.0f" % v for v in r["a_run_medians"]),
            "/".join("%.0f" % v for v in r["b_run_medians"]), "",
            "/".join("%.0f" % v for v in r["b_comm_pct_runs"]),
            "/".join("%.0f" % v for v in r["c_run_medians"]), "",
            "/".join("%.0f" % v for v in r["c_comm_pct_runs"])))
        print("%-12s %11s %10s %10s %7s %8s %10s" % (
            "  wall s", "", "/".join("%.0f" % v for v in r["a_wall_s"]),
            "/".join("%.0f" % v for v in r["b_wall_s"]), "", "",
            "/".join("%.0f" % v for v in r["c_wall_s"])))
    print("took %.0f s; load average %.2f before, %.2f after" % (elapsed, load0, load1))
    if (os.cpu_count() or 0) <= 2:
        print("What a %d-core machine shows: (b) gets no more cores than (a); its two 1-thread "
              "ranks share the same %d cores with each rank's data.threads loader threads and "
              "Gloo's threads. Where b/a is above 1 here, that is (most likely) each rank running "
              "its ops single-threaded on half the batch instead of splitting small ops across "
              "two threads (intra-op overhead), not extra compute, and it does not predict "
              "scaling on more cores or machines. The comm share is time rank 0 waits in "
              "collectives; on oversubscribed cores that includes waiting for the other rank to "
              "be scheduled, not only transfer. sync_bn adds a collective per BatchNorm layer "
              "in forward and backward: many small Gloo all-reduces, each a round trip through "
              "both processes. Load average above ~0 before the run means other work shared "
              "these cores." % (os.cpu_count() or 0, os.cpu_count() or 0))
    print(json.dumps({"threads": threads, "repeats": REPEATS, "skip": SKIP, "models": out}))


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print("distributed.py: %s" % e, file=sys.stderr)
        sys.exit(1)
