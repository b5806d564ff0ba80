"""PyTorch Python peer of bench_train.cpp: the same training step (forward, backward, SGD) on the
same backbone as the authors' model.py writes it (tests/python/authors_msnet.py), timed the same
way.

usage: train_step.py ARCH BATCH SECONDS THREADS  -> prints {"samples_per_s": ...}
       train_step.py --profile ARCH BATCH STEPS THREADS
         -> prints {"step_ms": ..., "self_ms": {op: ms per step}} from PyTorch's profiler (self
            CPU time per op, ops with at least 0.5 % of the step), as bench_train.cpp's
            stepProfile reports ours
"""
import json
import resource
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "python"))
import authors_msnet as am  # noqa: E402
from timing import time_calls  # noqa: E402

ARCHS = {
    "msnet-tiny": lambda: am.msnet_tiny(512),
    "msnet50": lambda: am.msnet50(512),
}


def main():
    profile = sys.argv[1] == "--profile"
    if profile:
        del sys.argv[1]
    arch, batch, seconds, threads = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ARCHS[arch]()
    model.train()
    head = torch.nn.Linear(512, 1000)
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.02,
                          momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 112, 112)
    y = torch.randint(0, 1000, (batch,))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(model(x)), y).backward()
        opt.step()

    if profile:
        step()  # warm-up
        steps = int(seconds)
        with torch.autograd.profiler.profile() as prof:
            start = time.perf_counter()
            for _ in range(steps):
                step()
            wall_us = (time.perf_counter() - start) * 1e6 / steps  # wall time, as ours is
        rows = prof.key_averages()
        self_ms = {r.key: r.self_cpu_time_total / steps / 1000.0 for r in rows
                   if r.self_cpu_time_total / steps >= 0.005 * wall_us}
        print(json.dumps({"step_ms": wall_us / 1000.0, "self_ms": self_ms}))
        return
    n, elapsed = time_calls(step, seconds)
    print(json.dumps({"samples_per_s": n * batch / elapsed,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
