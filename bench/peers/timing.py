"""Shared by the PyTorch peers: one warm-up call, then calls until `seconds` (and 3 calls) pass."""
import time


def time_calls(fn, seconds):
    """Returns (calls, elapsed seconds) after a warm-up call."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            return n, elapsed
