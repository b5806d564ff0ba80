"""msconv train and msconv runs end to end: the last line is the final checkpoint, Ctrl-C saves
and stops cleanly, SIGKILL leaves a readable store that marks the run interrupted, --resume
finishes it, and runs list / show / export read the store."""
import csv
import io
import json
import re
import os
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("MSCONV_BIN", "msconv")

TINY = ["--set", "model.arch=msnet-tiny", "--set", "train.batch_size=8", "--set", "train.epochs=40",
        "--set", "data.synthetic_identities=8", "--set", "data.synthetic_images_per_id=4",
        "--set", "train.log_every=1", "--set", "train.threads=1", "--set", "data.threads=1",
        "--set", "data.val="]


def run(*args, timeout=600):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def wait_for_metrics(ws, name, count, proc, limit=120):
    """Polls msconv runs show until the run has logged `count` loss values."""
    start = time.time()
    while time.time() - start < limit:
        if proc.poll() is not None:
            raise AssertionError("training ended early: " + proc.stderr.read())
        r = run("runs", "export", name, "--workspace", ws, "--format", "json")
        if r.returncode == 0:
            j = json.loads(r.stdout)
            if sum(1 for m in j.get("metrics", []) if m["key"] == "loss") >= count:
                return
        time.sleep(0.3)
    raise AssertionError("no progress")


class Train(unittest.TestCase):
    def test_short_run_prints_its_checkpoint_and_fills_the_store(self):
        with tempfile.TemporaryDirectory() as ws:
            r = run("train", "--workspace", ws, "--name", "short", *TINY, "--set", "train.max_steps=6")
            self.assertEqual(r.returncode, 0, r.stderr)
            last = r.stdout.strip().splitlines()[-1]
            self.assertEqual(last, os.path.join(ws, "runs", "short", "last.ckpt"))
            self.assertTrue(os.path.exists(last))
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual([(x["name"], x["status"]) for x in lst], [("short", "done")])
            show = json.loads(run("runs", "show", "short", "--workspace", ws).stdout)
            self.assertEqual(show["config"]["model"]["arch"], "msnet-tiny")
            self.assertEqual(show["last"]["loss"]["step"], 6)
            rows = list(csv.DictReader(io.StringIO(
                run("runs", "export", "short", "--workspace", ws, "--format", "csv").stdout)))
            self.assertEqual(len([x for x in rows if x["key"] == "loss"]), 6)
            # The checkpoint is a model checkpoint too: embed works on it.
            self.assertTrue(os.path.exists(os.path.join(ws, "runs", "short", "train.log")))
            # The closing line's loss is the one `runs list` shows (the store's last logged).
            closing = re.search(r"run short done at step 6 of 6, loss (\S+)\n", r.stderr)
            self.assertIsNotNone(closing, r.stderr)
            table = run("runs", "list", "--workspace", ws).stdout.splitlines()
            self.assertEqual(table[1].split()[-1], closing.group(1))
            self.assertEqual(float(closing.group(1)), round(show["last"]["loss"]["value"], 4))
            # Training a finished run again says so, trains nothing and keeps that loss.
            again = run("train", "--workspace", ws, "--resume", "short")
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertIn("run short is already finished (step 6 of 6, loss %s): nothing to train"
                          % closing.group(1), again.stderr)
            self.assertEqual(again.stdout, r.stdout)
            rows = json.loads(run("runs", "export", "short", "--workspace", ws).stdout)["metrics"]
            self.assertEqual(len([x for x in rows if x["key"] == "loss"]), 6)

    def test_every_peer_operator_trains(self):
        # The Table 7 peers in the tiny MSNet frame, and FasterNet-T0 itself: a few steps on one
        # repeated batch (train.max_steps, one identity set), and the loss falls.
        cases = [("msnet-tiny", op) for op in ("ghost", "ghostv2", "pconv", "star")]
        cases.append(("fasternet-t0", "pconv"))
        with tempfile.TemporaryDirectory() as ws:
            for arch, op in cases:
                name = "%s-%s" % (arch, op)
                r = run("train", "--workspace", ws, "--name", name, *TINY,
                        "--set", "model.arch=" + arch, "--set", "model.op=" + op,
                        "--set", "data.synthetic_identities=4", "--set", "train.lr=0.05",
                        "--set", "train.max_steps=12")
                self.assertEqual(r.returncode, 0, name + ": " + r.stderr)
                rows = json.loads(run("runs", "export", name, "--workspace", ws, "--format",
                                      "json").stdout)["metrics"]
                loss = [m["value"] for m in rows if m["key"] == "loss"]
                self.assertEqual(len(loss), 12, name)
                first, last = sum(loss[:3]) / 3, sum(loss[-3:]) / 3
                print("%s: loss %.3f -> %.3f" % (name, first, last))
                self.assertLess(last, first, name)

    def test_ctrl_c_saves_and_stops_cleanly(self):
        with tempfile.TemporaryDirectory() as ws:
            p = subprocess.Popen([BIN, "train", "--workspace", ws, "--name", "c", *TINY],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for_metrics(ws, "c", 3, p)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=120)
            # Stopped, not done: 130 as shells expect after SIGINT, once the checkpoint is there.
            self.assertEqual(p.returncode, 130, err)
            self.assertIn("run c stopped at step", err)
            self.assertIn("continue it with: msconv train --resume c", err)
            self.assertTrue(out.strip().endswith("last.ckpt"))
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(lst[0]["status"], "stopped")

    def test_ctrl_c_while_the_synthetic_set_is_generated(self):
        # The first run of a workspace generates its synthetic set (its progress on stderr);
        # Ctrl-C then stops it at once: exit 130, no run made, no partial set left behind.
        with tempfile.TemporaryDirectory() as ws:
            p = subprocess.Popen([BIN, "train", "--workspace", ws, "--name", "g",
                                  "--set", "model.arch=msnet-tiny",
                                  "--set", "data.synthetic_identities=400",
                                  "--set", "data.synthetic_images_per_id=20",
                                  "--set", "train.max_steps=5", "--set", "train.batch_size=8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first = p.stderr.readline()
            self.assertRegex(first, r"generating the synthetic set: \d+ of 10000 images")
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 130, err)
            self.assertIn("stopped before the first step", err)
            self.assertEqual(out.strip(), "")
            self.assertLess(time.monotonic() - t0, 30)  # not after the whole set (10,000 images)
            self.assertEqual(os.listdir(os.path.join(ws, "datasets")), [])
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(lst, [])

    def test_sigkill_then_resume(self):
        with tempfile.TemporaryDirectory() as ws:
            args = [BIN, "train", "--workspace", ws, "--name", "k", *TINY,
                    "--set", "train.checkpoint_every=2", "--set", "train.max_steps=150"]
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for_metrics(ws, "k", 5, p)
            # Long enough that the kill lands mid-run on a fast, quiet machine too (30 steps could
            # finish between two polls).
            self.assertIsNone(p.poll(), "the run ended before it could be killed")
            p.kill()
            p.communicate()
            # The store is readable and says what happened; metrics written before the kill stay.
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(lst[0]["status"], "interrupted")
            before = json.loads(run("runs", "export", "k", "--workspace", ws).stdout)
            steps = [m["step"] for m in before["metrics"] if m["key"] == "loss"]
            self.assertGreaterEqual(len(steps), 5)
            self.assertEqual(steps, list(range(1, len(steps) + 1)))
            r = run("train", "--workspace", ws, "--resume", "k")
            self.assertEqual(r.returncode, 0, r.stderr)
            after = json.loads(run("runs", "export", "k", "--workspace", ws).stdout)
            final = [m["step"] for m in after["metrics"] if m["key"] == "loss"]
            self.assertEqual(final[-1], 150)
            # Steps run again after the checkpoint replace their first rows: one row per step.
            self.assertEqual(final, list(range(1, 151)))
            self.assertEqual(json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)[0]["status"], "done")

    def test_bad_config_is_one_line(self):
        r = run("train", "--set", "train.lr=fast")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("'train.lr' must be a number", r.stderr)
        r = run("train", "--resume", "ghost", "--workspace", tempfile.gettempdir() + "/msconv-empty-ws")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ghost", r.stderr)

    def test_a_failed_run_keeps_its_error(self):
        with tempfile.TemporaryDirectory() as ws:
            r = run("train", "--workspace", ws, "--name", "blowup", *TINY, "--set", "train.lr=1e6",
                    "--set", "train.max_steps=6")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("NaN", r.stderr)
            lst = json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)
            self.assertEqual(lst[0]["status"], "failed")
            self.assertIn("the loss is NaN", lst[0]["error"])
            self.assertIn("error: step", run("runs", "list", "--workspace", ws).stdout)




class FullDisk(unittest.TestCase):
    """Training into a 4 MiB filesystem that fills up (a tmpfs this test mounts: root only)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.fs = os.path.join(self.tmp, "small")
        os.makedirs(self.fs)
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.fs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: " + r.stderr.strip())

    def tearDown(self):
        subprocess.run(["umount", self.fs], capture_output=True)
        subprocess.run(["rm", "-rf", self.tmp])

    def test_a_full_disk_fails_the_run_in_one_line_and_loses_nothing(self):
        data = os.path.join(self.tmp, "faces")  # outside the small filesystem
        r = run("data", "synth", "-o", data, "--identities", "8", "--images-per-id", "4",
                "--pairs", "20")
        self.assertEqual(r.returncode, 0, r.stderr)
        ws = os.path.join(self.fs, "ws")
        r = run("train", "--workspace", ws, "--name", "full", "--set", "model.arch=msnet-tiny",
                "--set", "train.batch_size=8", "--set", "train.max_steps=400",
                "--set", "train.checkpoint_every=2", "--set", "train.keep_last=400",
                "--set", "data.train=" + os.path.join(data, "train"), "--set", "data.val=",
                "--set", "telemetry.every=0", "--set", "train.threads=1",
                "--set", "data.threads=1")
        self.assertEqual(r.returncode, 1, r.stderr)
        err = r.stderr.strip().splitlines()[-1]
        self.assertRegex(err, r"^msconv: .*/runs/full/step-\d+\.ckpt: cannot write: "
                              r"No space left on device$")
        self.assertNotIn("terminate called", r.stderr)
        run_dir = os.path.join(ws, "runs", "full")
        self.assertEqual([f for f in os.listdir(run_dir) if ".tmp" in f], [])
        # Fill what is left: reading commands still work on the full disk.
        with open(os.path.join(self.fs, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        r = run("runs", "list", "--workspace", ws, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        (row,) = json.loads(r.stdout)
        self.assertEqual(row["status"], "failed")
        self.assertIn("No space left on device", row["error"])
        last = os.path.join(run_dir, "last.ckpt")
        r = run("eval", "--checkpoint", last, "--bin", os.path.join(data, "val.bin"), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        # With room again, the last good checkpoint resumes (and trains until the disk, a little
        # larger now, is full again).
        failed_at = int(err.rsplit("step-", 1)[1].split(".")[0])
        os.remove(os.path.join(self.fs, "filler"))
        subprocess.run(["mount", "-o", "remount,size=12m", self.fs], check=True)
        r = run("train", "--workspace", ws, "--resume", "full")
        self.assertIn("(from step %d)" % (failed_at - 2), r.stderr)
        self.assertEqual(r.returncode, 1, r.stderr)
        again = int(r.stderr.strip().splitlines()[-1].rsplit("step-", 1)[1].split(".")[0])
        self.assertGreater(again, failed_at)


@unittest.skipIf(os.environ.get("MSCONV_SANITIZER"),
                 "the sanitizer run (tests/sanitize/run.sh) kills and resumes once "
                 "(Train.test_sigkill_then_resume); these 40 kills repeat it, in the Release run")
class KillAnywhere(unittest.TestCase):
    """SIGKILL at 20 moments spread over a run (start-up, steps, checkpoint writes, store
    writes): each time the store opens, the run reads interrupted, the metrics before its last
    checkpoint are there, and a resume ends with exactly the losses of an uninterrupted run."""

    ARGS = [*TINY, "--set", "train.max_steps=24", "--set", "train.checkpoint_every=3",
            "--set", "telemetry.every=4", "--set", "seed=5"]

    def losses(self, ws, name):
        j = json.loads(run("runs", "export", name, "--workspace", ws).stdout)
        return [m["value"] for m in j.get("metrics", []) if m["key"] == "loss"]  # none: no key

    def test_kill_at_twenty_moments_then_resume_exactly(self):
        with tempfile.TemporaryDirectory() as ws:
            t0 = time.monotonic()
            r = run("train", "--workspace", ws, "--name", "ref", *self.ARGS)
            self.assertEqual(r.returncode, 0, r.stderr)
            span = time.monotonic() - t0
            ref = self.losses(ws, "ref")
            self.assertEqual(len(ref), 24)
            killed = resumed = 0
            for i in range(20):
                name = "k%d" % i
                p = subprocess.Popen([BIN, "train", "--workspace", ws, "--name", name, *self.ARGS],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                time.sleep(span * (i + 0.5) / 20)
                if p.poll() is None:
                    p.kill()
                    killed += 1
                p.communicate()
                runs = {x["name"]: x for x in
                        json.loads(run("runs", "list", "--workspace", ws, "--json").stdout)}
                if name not in runs:  # killed before the store knew it: nothing to resume
                    continue
                self.assertIn(runs[name]["status"], ("interrupted", "done"), name)
                run_dir = os.path.join(ws, "runs", name)
                if not os.path.exists(os.path.join(run_dir, "last.ckpt")):
                    continue  # killed before its first checkpoint
                before = self.losses(ws, name)
                self.assertEqual(before, ref[:len(before)], name)  # nothing lost, nothing altered
                r = run("train", "--workspace", ws, "--resume", name)
                self.assertEqual(r.returncode, 0, name + ": " + r.stderr)
                self.assertEqual(self.losses(ws, name), ref, name)
                self.assertEqual([f for f in os.listdir(run_dir) if ".tmp" in f], [], name)
                resumed += 1
            print("\nkilled %d of 20 runs while alive; %d resumed to the reference losses"
                  % (killed, resumed))
            self.assertGreaterEqual(killed, 10)  # most kills landed while the run was alive

    def test_kill_inside_checkpoint_writes_and_store_transactions(self):
        # Aimed kills: MSCONV_KILL_AT_FILE_OPERATION=N makes msconv train SIGKILL itself at its
        # N-th file operation (a write, fsync or rename of a checkpoint or config.json, a write or
        # sync of the store's SQLite files), so the kills land inside those writes. N grows by a
        # third each time until a run outlives it.
        with tempfile.TemporaryDirectory() as ws:
            r = run("train", "--workspace", ws, "--name", "ref", *self.ARGS)
            self.assertEqual(r.returncode, 0, r.stderr)
            ref = self.losses(ws, "ref")
            kinds = {"checkpoint": 0, "store": 0, "other": 0}
            n, kills, resumed = 1, 0, 0
            while True:
                name = "at%d" % n
                env = dict(os.environ, MSCONV_KILL_AT_FILE_OPERATION=str(n))
                p = subprocess.run([BIN, "train", "--workspace", ws, "--name", name, *self.ARGS],
                                   capture_output=True, text=True, env=env, timeout=600)
                if p.returncode == 0:  # the run has fewer operations than n
                    break
                self.assertEqual(p.returncode, -signal.SIGKILL, name + ": " + p.stderr)
                said = [l for l in p.stderr.splitlines() if "killed at file operation" in l]
                self.assertEqual(len(said), 1, p.stderr)
                kinds["checkpoint" if ".ckpt" in said[0] else
                      "store" if "runs.sqlite" in said[0] else "other"] += 1
                kills += 1
                # The store opens and reads the run as interrupted (or never created).
                listing = run("runs", "list", "--workspace", ws, "--json")
                self.assertEqual(listing.returncode, 0, said[0] + ": " + listing.stderr)
                runs = {x["name"]: x for x in json.loads(listing.stdout)}
                if name in runs and runs[name]["status"] == "done":  # killed as the store closed
                    self.assertEqual(self.losses(ws, name), ref, said[0])
                elif name in runs:
                    self.assertEqual(runs[name]["status"], "interrupted", said[0])
                    before = self.losses(ws, name)
                    self.assertEqual(before, ref[:len(before)], said[0])
                    run_dir = os.path.join(ws, "runs", name)
                    if os.path.exists(os.path.join(run_dir, "last.ckpt")):
                        r = run("train", "--workspace", ws, "--resume", name)
                        self.assertEqual(r.returncode, 0, said[0] + ": " + r.stderr)
                        self.assertEqual(self.losses(ws, name), ref, said[0])
                        self.assertEqual([f for f in os.listdir(run_dir) if ".tmp" in f], [],
                                         said[0])
                        resumed += 1
                n += max(1, n // 3)
            print("\n%d aimed kills (%d in a checkpoint write, %d in a store write, %d elsewhere) "
                  "up to file operation %d; %d resumed to the reference losses"
                  % (kills, kinds["checkpoint"], kinds["store"], kinds["other"], n, resumed))
            self.assertGreater(kinds["checkpoint"], 2)
            self.assertGreater(kinds["store"], 2)
            self.assertGreater(resumed, 5)


if __name__ == "__main__":
    unittest.main()
