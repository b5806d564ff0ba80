"""PyTorch Python peer of bench_fusion.cpp's msconvOp: the msconv-official operator written the
authors' way (tests/python/reference_models.py), forward + backward in training mode at batch 16.

usage: msconv_op.py C H W SECONDS THREADS  -> prints {"passes_per_s": ...}
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "python"))
import reference_models as rm  # noqa: E402
from timing import time_calls  # noqa: E402


def main():
    c, h, w, seconds, threads = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                 float(sys.argv[4]), int(sys.argv[5]))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    op = rm.MSConv(c, 1)
    op.train()
    x = torch.randn(16, c, h, w, requires_grad=True)
    dy = torch.randn(16, c, h, w)

    def step():
        op.zero_grad()
        x.grad = None
        op(x).backward(dy)

    n, elapsed = time_calls(step, seconds)
    print(json.dumps({"passes_per_s": n / elapsed}))


if __name__ == "__main__":
    main()
