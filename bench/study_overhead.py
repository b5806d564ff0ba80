#!/usr/bin/env python3
"""A study's overhead: a 6-run study of msnet-tiny at 100 steps (MSConv, SKNet, SCConv x 2 seeds,
one at a time), its wall time (what `msconv study run` reports, after the synthetic set exists)
against the sum of its runs' training-step time (batch / samples_per_s of every logged step,
log_every 1). The difference is process start, model and data set-up, validation (embedding the
1,000 pairs once per run) and checkpoints. Prints one JSON line:
{"wall_s", "steps_s", "validation_s", "overhead_pct", "overhead_without_validation_pct"}.
Usage: study_overhead.py MSCONV_BIN [THREADS]"""
import json
import os
import re
import subprocess
import sys
import tempfile

BATCH = 64


def main():
    msconv = sys.argv[1]
    threads = sys.argv[2] if len(sys.argv) > 2 else str(os.cpu_count())
    env = dict(os.environ, MSCONV_THREADS=threads)
    with tempfile.TemporaryDirectory() as tmp:
        ws = os.path.join(tmp, "ws")
        study = {"name": "overhead",
                 "base": {"model.arch": "msnet-tiny", "train.batch_size": BATCH,
                          "train.max_steps": 100, "train.val_every": 100,
                          "train.checkpoint_every": 100, "train.log_every": 1, "train.lr": 0.1,
                          "data.synthetic_seed": 0, "telemetry.every": 0},
                 "axes": {"model.op": ["msconv-official", "skconv", "scconv"]},
                 "seeds": [0, 1]}
        path = os.path.join(tmp, "study.json")
        with open(path, "w") as f:
            json.dump(study, f)
        r = subprocess.run([msconv, "study", "run", path, "--workspace", ws], env=env,
                           capture_output=True, text=True, check=True)
        wall = float(re.search(r"6 trained in ([0-9.]+) s", r.stderr).group(1))
        status = json.loads(subprocess.run([msconv, "study", "status", "overhead", "--workspace",
                                            ws, "--json"], capture_output=True, text=True,
                                           check=True).stdout)
        steps_s = 0.0
        val_s = 0.0
        for cell in status["cells"]:
            for run in cell["runs"]:
                j = json.loads(subprocess.run([msconv, "runs", "export", run["run"],
                                               "--workspace", ws, "--format", "json"],
                                              capture_output=True, text=True,
                                              check=True).stdout)
                speeds = [m["value"] for m in j["metrics"] if m["key"] == "samples_per_s"]
                assert len(speeds) == 100, len(speeds)
                steps_s += sum(BATCH / s for s in speeds)
                # the validation's time: from the last step's log to the validation's rows
                walls = {}
                for m in j["metrics"]:
                    if m["key"] == "samples_per_s" and m["step"] == 100:
                        walls["step"] = m["wall"]
                    if m["key"].startswith("val/") and m["step"] == 100:
                        walls["val"] = m["wall"]
                if "step" in walls and "val" in walls:
                    val_s += max(0.0, walls["val"] - walls["step"])
        over = 100.0 * (wall - steps_s) / steps_s
        over_nv = 100.0 * (wall - steps_s - val_s) / steps_s
        print(json.dumps({"wall_s": wall, "steps_s": steps_s, "validation_s": val_s,
                          "overhead_pct": over, "overhead_without_validation_pct": over_nv}))


if __name__ == "__main__":
    main()
