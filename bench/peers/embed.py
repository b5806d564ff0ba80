"""PyTorch Python peer of bench_eval.cpp's embedThroughput: embeddings of a batch of 112 x 112
faces, forward only, eval mode, under torch.inference_mode, by the backbone as its authors wrote
it (tests/python/authors_msnet.py; SKNet-50 is that frame with SKNet's SKConv from
tests/python/reference_models.py in each unit, as the paper's Table 7 compares them), eager in
PyTorch's default layout and eager channels-last, timed the same way as ours.

usage: embed.py ARCH BATCH SECONDS THREADS
  -> prints {"images_per_s": ..., "images_per_s_channels_last": ...}
       embed.py --profile ARCH BATCH CALLS THREADS
  -> prints {"batch_ms": ..., "self_ms": {op: ms per batch}} from PyTorch's profiler, channels-last
     (wall time per batch under the profiler; self CPU time per op, ops with at least 0.5 % of
     the batch), as bench_eval.cpp's
     embedProfile reports ours
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "python"))
import authors_msnet as am  # noqa: E402
import reference_models as rm  # noqa: E402
from timing import time_calls  # noqa: E402


def sknet50():
    model = am.msnet50(512)
    for stage in (model.stage_1, model.stage_2, model.stage_3, model.stage_4):
        for unit in stage:
            first = unit.conv2_msconv.convs[0][0]
            unit.conv2_msconv = rm.SKConv(first.in_channels, first.stride[0], 32, 16, 32)
    return model


ARCHS = {"msnet26": lambda: am.msnet26(512), "msnet50": lambda: am.msnet50(512),
         "sknet50": sknet50}


def main():
    profile = sys.argv[1] == "--profile"
    if profile:
        del sys.argv[1]
    arch, batch, seconds, threads = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ARCHS[arch]().eval()
    x = torch.randn(batch, 3, 112, 112)
    if profile:
        m = model.to(memory_format=torch.channels_last)
        xi = x.contiguous(memory_format=torch.channels_last)
        calls = int(seconds)
        with torch.inference_mode():
            m(xi)  # warm-up
            with torch.autograd.profiler.profile() as prof:
                start = time.perf_counter()
                for _ in range(calls):
                    m(xi)
                wall_us = (time.perf_counter() - start) * 1e6 / calls  # wall time, as ours is
        rows = prof.key_averages()
        print(json.dumps({"batch_ms": wall_us / 1000.0,
                          "self_ms": {r.key: r.self_cpu_time_total / calls / 1000.0 for r in rows
                                      if r.self_cpu_time_total / calls >= 0.005 * wall_us}}))
        return
    out = {}
    for key, layout in (("images_per_s", torch.contiguous_format),
                        ("images_per_s_channels_last", torch.channels_last)):
        m = model.to(memory_format=layout)
        xi = x.contiguous(memory_format=layout)
        with torch.inference_mode():
            n, elapsed = time_calls(lambda: m(xi), seconds)
        out[key] = n * batch / elapsed
    print(json.dumps(out))


if __name__ == "__main__":
    main()
