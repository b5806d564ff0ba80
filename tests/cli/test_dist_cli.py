"""Multi-process training over c10d (TCPStore + ProcessGroupGloo on loopback), launched as torchrun
would (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set by the test)
and by msconv train --nproc N:

- two processes with train.sync_bn=true train exactly what one process does with the same global
  batch (losses of 20 steps and final weights), and three processes over 11 classes (not
  divisible by 3) too;
- without sync_bn, two processes train what two in-process ranks (threads) do;
- a checkpoint written by two ranks resumes on one;
- a rank killed with SIGKILL stops the other within the timeout, naming the rank; the store says
  failed and the last checkpoint evaluates;
- Ctrl-C on the launcher stops every rank with a checkpoint;
- bad launches are one-line errors, the same on every rank, and only rank 0 writes."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import torch

BIN = os.environ.get("MSCONV_BIN", "msconv")

# A well-conditioned tiny run: at a small learning rate the runs' float rounding differences
# (which one process with 1 or 2 threads shows too) stay far below the tolerances.
BASE = ["--set", "model.arch=msnet-tiny", "--set", "train.log_every=1", "--set", "data.val=",
        "--set", "data.flip=false", "--set", "data.threads=1", "--set", "seed=3",
        "--set", "data.synthetic_identities=11", "--set", "data.synthetic_images_per_id=6",
        "--set", "train.lr=0.0001", "--set", "train.dist_timeout=20"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(rank, world, port, **extra):
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
               LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               MSCONV_THREADS="1")
    env.update(extra)
    return env


def start_ranks(world, args, per_rank=None):
    """Starts `world` msconv train processes with torchrun's variables, as a launcher would."""
    port = free_port()
    procs = []
    for r in range(world):
        a = list(args) + (per_rank[r] if per_rank else [])
        procs.append(subprocess.Popen([BIN, "train", *a], env=env_for(r, world, port),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs, timeout=300):
    out = []
    for p in procs:
        o, e = p.communicate(timeout=timeout)
        out.append((p.returncode, o, e))
    return out


def run(*args, env=None, timeout=300):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else dict(os.environ, MSCONV_THREADS="1"))


def losses(ws, name):
    with open(os.path.join(ws, "runs", name, "train.log")) as f:
        return [float(line.split(" loss ")[1].split()[0]) for line in f
                if line.startswith("step ") and " loss " in line]


def wait_for_steps(ws, name, steps, limit=120):
    """Waits until the run's train.log has logged `steps` losses."""
    log = os.path.join(ws, "runs", name, "train.log")
    start = time.time()
    while time.time() - start < limit:
        if os.path.exists(log) and len(losses(ws, name)) >= steps:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name}: fewer than {steps} steps after {limit} s")


def weights(path):
    m = torch.jit.load(path)
    return {k: v.detach().clone() for k, v in m.named_parameters() if k.startswith("model.")}


class Distributed(unittest.TestCase):
    def assertSameTraining(self, ws, a, b, steps):
        la, lb = losses(ws, a), losses(ws, b)
        self.assertEqual(len(la), steps)
        self.assertEqual(len(lb), steps)
        for i, (x, y) in enumerate(zip(la, lb)):
            self.assertLess(abs(x - y) / abs(x), 1e-4, f"step {i + 1}: {x} vs {y}")
        wa = weights(os.path.join(ws, "runs", a, "last.ckpt"))
        wb = weights(os.path.join(ws, "runs", b, "last.ckpt"))
        self.assertEqual(wa.keys(), wb.keys())
        num = sum(float(((wa[k] - wb[k]) ** 2).sum()) for k in wa)
        den = sum(float((wa[k] ** 2).sum()) for k in wa)
        self.assertLess((num / den) ** 0.5, 1e-4)
        worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
        self.assertLess(worst, 1e-3)

    def test_two_processes_with_sync_bn_train_what_one_process_trains(self):
        with tempfile.TemporaryDirectory() as ws:
            common = ["--workspace", ws, *BASE, "--set", "train.batch_size=16",
                      "--set", "train.max_steps=20"]
            one = run("train", *common, "--name", "one")
            self.assertEqual(one.returncode, 0, one.stderr)
            outs = finish(start_ranks(2, [*common, "--name", "two", "--set", "train.sync_bn=true"]))
            for rc, _, err in outs:
                self.assertEqual(rc, 0, err)
            # Only rank 0 speaks for the run: the checkpoint's path on its stdout, nothing on rank 1's.
            self.assertTrue(outs[0][1].strip().endswith("last.ckpt"))
            self.assertEqual(outs[1][1], "")
            self.assertSameTraining(ws, "one", "two", 20)
            # One run in the store per training, whatever the number of ranks.
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(sorted((x["name"], x["status"]) for x in lst),
                             [("one", "done"), ("two", "done")])
            # Without sync_bn each rank normalises its own half batch: the first loss differs.
            r = run("train", "--nproc", "2", *common, "--name", "local-bn",
                    "--set", "train.max_steps=1")
            self.assertEqual(r.returncode, 0, r.stderr)
            x, y = losses(ws, "one")[0], losses(ws, "local-bn")[0]
            self.assertGreater(abs(x - y) / x, 1e-3)

    def test_three_processes_over_classes_not_divisible_by_three(self):
        with tempfile.TemporaryDirectory() as ws:
            common = ["--workspace", ws, *BASE, "--set", "train.batch_size=18",
                      "--set", "train.max_steps=10", "--set", "train.sync_bn=true"]
            one = run("train", *common, "--name", "one")
            self.assertEqual(one.returncode, 0, one.stderr)
            three = run("train", "--nproc", "3", *common, "--name", "three")
            self.assertEqual(three.returncode, 0, three.stderr)
            self.assertSameTraining(ws, "one", "three", 10)
            # The head was sharded 4 + 4 + 3 and gathered whole into the checkpoint.
            head = dict(torch.jit.load(os.path.join(ws, "runs", "three", "last.ckpt"))
                        .named_parameters())["head.weight"]
            self.assertEqual(tuple(head.shape), (11, 512))

    def test_two_processes_train_what_two_threads_train(self):
        with tempfile.TemporaryDirectory() as ws:
            common = ["--workspace", ws, *BASE, "--set", "train.batch_size=16",
                      "--set", "train.max_steps=12"]
            threads = run("train", "--nproc", "2", "--threads-as-ranks", *common, "--name", "threads")
            self.assertEqual(threads.returncode, 0, threads.stderr)
            procs = run("train", "--nproc", "2", *common, "--name", "procs")
            self.assertEqual(procs.returncode, 0, procs.stderr)
            self.assertIn("started 2 ranks", procs.stderr)
            self.assertSameTraining(ws, "threads", "procs", 12)
            with open(os.path.join(ws, "runs", "procs", "train.log")) as f:
                self.assertIn("communication: rank 0 blocked", f.read())

    def test_a_checkpoint_of_two_ranks_resumes_on_one(self):
        with tempfile.TemporaryDirectory() as ws:
            common = ["--workspace", ws, *BASE, "--set", "train.batch_size=16",
                      "--set", "train.max_steps=8", "--set", "train.sync_bn=true",
                      "--set", "train.checkpoint_every=4", "--set", "train.keep_last=5"]
            two = run("train", "--nproc", "2", *common, "--name", "two")
            self.assertEqual(two.returncode, 0, two.stderr)
            ckpt = os.path.join(ws, "runs", "two", "step-4.ckpt")
            self.assertTrue(os.path.exists(ckpt), os.listdir(os.path.dirname(ckpt)))
            one = run("train", "--workspace", ws, "--resume", ckpt, "--name", "resumed")
            self.assertEqual(one.returncode, 0, one.stderr)
            # Steps 5-8 on one process continue what the two ranks did.
            la, lb = losses(ws, "two")[4:], losses(ws, "resumed")
            self.assertEqual(len(lb), 4)
            for x, y in zip(la, lb):
                self.assertLess(abs(x - y) / x, 1e-4)

    def test_a_killed_rank_stops_the_other_within_the_timeout(self):
        with tempfile.TemporaryDirectory() as ws:
            args = ["--workspace", ws, *BASE, "--set", "train.batch_size=16", "--name", "killed",
                    "--set", "train.epochs=10000", "--set", "train.checkpoint_every=2",
                    "--set", "train.dist_timeout=10"]
            procs = start_ranks(2, args)
            last = os.path.join(ws, "runs", "killed", "last.ckpt")
            start = time.time()
            while not os.path.exists(last) and time.time() - start < 120:
                self.assertIsNone(procs[0].poll(), procs[0].stderr.read() if procs[0].poll() else "")
                time.sleep(0.2)
            self.assertTrue(os.path.exists(last))
            procs[1].send_signal(signal.SIGKILL)
            killed = time.time()
            procs[0].wait(timeout=60)
            waited = time.time() - killed
            err = procs[0].stderr.read()
            procs[1].wait()
            self.assertNotEqual(procs[0].returncode, 0)
            self.assertLess(waited, 10 + 15, err)
            self.assertIn("rank 1", err.strip().splitlines()[-1])
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(lst[0]["status"], "failed")
            self.assertIn("rank 1", lst[0]["error"])
            # The last good checkpoint evaluates.
            val = os.path.join(ws, "datasets", "synthetic-11x6-seed3", "val.bin")
            ev = run("eval", "--checkpoint", last, "--bin", val, "--json")
            self.assertEqual(ev.returncode, 0, ev.stderr)

    def test_a_hung_rank_stops_the_other_within_the_timeout(self):
        with tempfile.TemporaryDirectory() as ws:
            args = ["--workspace", ws, *BASE, "--set", "train.batch_size=16", "--name", "hung",
                    "--set", "train.epochs=10000", "--set", "train.dist_timeout=4"]
            procs = start_ranks(2, args)
            wait_for_steps(ws, "hung", 3)
            procs[1].send_signal(signal.SIGSTOP)  # alive, answering nothing
            stopped = time.time()
            try:
                procs[0].wait(timeout=60)
                waited = time.time() - stopped
            finally:
                procs[1].kill()
                procs[1].wait()
            err = procs[0].stderr.read()
            self.assertNotEqual(procs[0].returncode, 0)
            # The timeout, then three seconds to see whose heartbeat stopped.
            self.assertLess(waited, 4 + 3 + 10, err)
            self.assertIn("rank 1 has died or stopped answering", err)

    def test_ctrl_c_on_the_launcher_stops_every_rank_with_a_checkpoint(self):
        with tempfile.TemporaryDirectory() as ws:
            p = subprocess.Popen([BIN, "train", "--nproc", "2", "--workspace", ws, *BASE,
                                  "--set", "train.batch_size=16", "--set", "train.epochs=10000",
                                  "--name", "stopped"],
                                 env=dict(os.environ, MSCONV_THREADS="1"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            wait_for_steps(ws, "stopped", 3)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 130, err)  # stopped by Ctrl-C, not done
            self.assertNotIn("exited with status", err)  # the ranks stopped, none failed
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(lst[0]["status"], "stopped")
            steps = len(losses(ws, "stopped"))
            self.assertTrue(os.path.exists(os.path.join(ws, "runs", "stopped",
                                                        f"step-{steps}.ckpt")))

    def test_bad_launches_are_one_line_errors_and_every_rank_agrees(self):
        with tempfile.TemporaryDirectory() as ws:
            common = ["--workspace", ws, *BASE, "--set", "train.max_steps=2",
                      "--set", "train.dist_timeout=5"]
            # A global batch that does not split over the ranks: the same message on each rank.
            outs = finish(start_ranks(2, [*common, "--set", "train.batch_size=9"]))
            msgs = {e.strip().splitlines()[-1] for _, _, e in outs}
            self.assertEqual(len(msgs), 1, msgs)
            self.assertIn("train.batch_size", msgs.pop())
            self.assertTrue(all(rc != 0 for rc, _, _ in outs))
            # Ranks started with different models.
            outs = finish(start_ranks(2, [*common, "--set", "train.batch_size=8"],
                                      [[], ["--set", "model.arch=msnet-small"]]))
            msgs = {e.strip().splitlines()[-1] for _, _, e in outs}
            self.assertEqual(len(msgs), 1, msgs)
            self.assertIn("model.arch", msgs.pop())
            # Nothing was trained, and nothing written by a rank other than 0: no run.
            self.assertFalse(os.path.exists(os.path.join(ws, "runs")) and
                             any(os.scandir(os.path.join(ws, "runs"))))
            # A mismatched WORLD_SIZE.
            port = free_port()
            r0 = subprocess.Popen([BIN, "train", *common, "--set", "train.batch_size=8"],
                                  env=env_for(0, 2, port), stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            r1 = run("train", *common, "--set", "train.batch_size=8", env=env_for(1, 3, port))
            _, e0 = r0.communicate(timeout=60)
            self.assertIn("WORLD_SIZE mismatch", r1.stderr)
            self.assertIn("WORLD_SIZE mismatch", e0)
            # No master.
            r = run("train", *common, env=env_for(1, 2, free_port()))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("cannot reach the master", r.stderr)
            # The port is taken.
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                s.listen()
                r = run("train", *common, env=env_for(0, 2, s.getsockname()[1]))
            self.assertIn("the port is in use", r.stderr)
            # Malformed variables.
            r = run("train", *common, env=dict(env_for(0, 2, 1), RANK="two"))
            self.assertIn("RANK='two'", r.stderr)
            r = run("train", "--nproc", "2", *common, env=env_for(0, 2, 1))
            self.assertIn("--nproc starts its own ranks", r.stderr)


if __name__ == "__main__":
    unittest.main()
