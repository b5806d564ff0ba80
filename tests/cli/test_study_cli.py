"""msconv study end to end: presets, a study refused before anything trains, a study that trains
its cells x seeds in parallel slots, trains nothing when run again, resumes after being killed,
keeps a failed run as a failed cell-seed, and reports the numbers `msconv eval` gives."""
import csv
import io
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("MSCONV_BIN", "msconv")

BASE = {"model.arch": "msnet-tiny", "train.batch_size": 8, "train.max_steps": 4,
        "train.val_every": 4, "train.checkpoint_every": 4, "train.log_every": 1,
        "data.synthetic_identities": 8, "data.synthetic_images_per_id": 4,
        "data.synthetic_seed": 0, "data.threads": 1, "telemetry.every": 0}


def run(*args, timeout=900):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def write_study(path, **fields):
    study = {"name": "s", "base": dict(BASE), "axes": {"model.op": ["msconv-official", "skconv"]},
             "seeds": [0, 1]}
    study.update(fields)
    with open(path, "w") as f:
        json.dump(study, f)
    return path


def status(ws, name):
    r = run("study", "status", name, "--workspace", ws, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


class Study(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        self.ws = os.path.join(self.tmp, "ws")

    def tearDown(self):
        self._tmp.cleanup()

    def test_presets_are_valid_studies(self):
        for preset, axis, count in [("table5", "model.op", 4), ("table6", "model.op", 5),
                                    ("operators", "model.op", 9), ("losses", "loss.type", 3)]:
            out = os.path.join(self.tmp, preset + ".json")
            r = run("study", "new", "--preset", preset, "-o", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                s = json.load(f)
            self.assertEqual(len(s["axes"][axis]), count, preset)
            self.assertEqual(s["seeds"], [0, 1, 2])
            self.assertEqual(s["base"]["data.synthetic_seed"], 0)
        self.assertIn("msconv*", s_axes(self.tmp, "table6"))
        r = run("study", "new", "--preset", "table9", "-o", os.path.join(self.tmp, "x.json"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("table9", r.stderr)

    def test_bad_values_refuse_the_study_before_anything_trains(self):
        cases = [({"axes": {"train.lr": [0.1, -1]}}, ["train.lr", "-1", "train.lr=-1"]),
                 ({"axes": {"train.learning_rate": [0.1]}}, ["train.learning_rate"]),
                 ({"axes": {"model.op": ["msconv", "nosuchop"]}}, ["model.op", "nosuchop"]),
                 ({"seeds": []}, ["seeds"]),
                 ({"reference": {"model.op": "conv"}}, ["reference", "conv"])]
        for fields, words in cases:
            path = write_study(os.path.join(self.tmp, "bad.json"), **fields)
            r = run("study", "run", path, "--workspace", self.ws)
            self.assertEqual(r.returncode, 1, fields)
            for w in words:
                self.assertIn(w, r.stderr, fields)
            self.assertFalse(os.path.exists(os.path.join(self.ws, "runs")), fields)
        path = write_study(os.path.join(self.tmp, "bad.json"),
                           base=dict(BASE, **{"data.train": "/no/such/train.rec"}))
        r = run("study", "run", path, "--workspace", self.ws)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/no/such/train.rec", r.stderr)

    def test_study_trains_reports_and_runs_again_training_nothing(self):
        path = write_study(os.path.join(self.tmp, "s.json"))
        r = run("study", "run", path, "--workspace", self.ws, "--parallel", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4 to train (2 at a time)", r.stderr)
        st = status(self.ws, "s")
        self.assertEqual([c["id"] for c in st["cells"]], ["msconv-official", "skconv"])
        runs = [x for c in st["cells"] for x in c["runs"]]
        self.assertEqual([x["status"] for x in runs], ["done"] * 4)
        self.assertEqual(len({x["run"] for x in runs}), 4)
        # One synthetic set for every seed (data.synthetic_seed).
        self.assertEqual(len(os.listdir(os.path.join(self.ws, "datasets"))), 1)
        again = run("study", "run", "s", "--workspace", self.ws)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("4 done, 0 failed, 0 running elsewhere, 0 to train", again.stderr)

        rep = run("study", "report", "s", "--workspace", self.ws, "--format", "json",
                  "--bootstrap", "200")
        self.assertEqual(rep.returncode, 0, rep.stderr)
        doc = json.loads(rep.stdout)
        self.assertEqual(doc["reference"], "msconv-official")
        cells = {c["id"]: c for c in doc["cells"]}
        acc = cells["skconv"]["metrics"]["val.bin/accuracy"]
        self.assertEqual(acc["n"], 2)
        self.assertAlmostEqual(acc["mean"], sum(acc["values"]) / 2, places=12)
        self.assertLessEqual(acc["ci95"][0], acc["mean"])
        self.assertGreater(cells["skconv"]["metrics"]["params_m"]["mean"], 0)
        # One number per name: the report's accuracy of a run is msconv eval's for its checkpoint.
        run0 = cells["skconv"]["runs"][0]
        ev = run("eval", "--checkpoint", run0["run"], "--workspace", self.ws, "--json")
        self.assertEqual(ev.returncode, 0, ev.stderr)
        ej = json.loads(ev.stdout)
        self.assertTrue(run0["checkpoint"].endswith("best.ckpt"))
        self.assertAlmostEqual(eval_accuracy(ej), acc["values"][0], places=12)
        # ... and the Compare table's (the validation that wrote best.ckpt).
        cmp = json.loads(run("compare", run0["run"], "--workspace", self.ws,
                             "--format", "json").stdout)
        self.assertEqual(cmp[0]["validation_of"], "best.ckpt")
        self.assertAlmostEqual(cmp[0]["metrics"]["val.bin/accuracy"], acc["values"][0], places=9)
        comps = [c for c in doc["comparisons"] if c["metric"] == "val.bin/accuracy"]
        self.assertEqual(len(comps), 1)
        self.assertEqual(comps[0]["n"], 2)
        self.assertIsNone(comps[0]["p_wilcoxon"])  # n < 6
        self.assertEqual(len(doc["within_seed"]), 2)
        for w in doc["within_seed"]:
            self.assertEqual(w["set"], "val.bin")
            self.assertLessEqual(w["mcnemar"]["p"], 1)
        self.assertTrue(doc["conclusions"])
        for fmt, marker in [("text", "against the reference"), ("markdown", "| cell |"),
                            ("latex", "\\begin{tabular}"), ("csv", "cell,metric,n,mean")]:
            out = os.path.join(self.tmp, "report." + fmt)
            r = run("study", "report", "s", "--workspace", self.ws, "--format", fmt, "-o", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                text = f.read()
            self.assertIn(marker, text, fmt)
            self.assertIn("skconv", text, fmt)
        rows = list(csv.reader(io.StringIO(text)))
        self.assertIn(["skconv", "val.bin/accuracy", "2"], [r[:3] for r in rows])
        self.check_faithfulness_columns(run0["run"])
        # Editing the file: a changed cell is a new cell, its old runs stay as they were.
        path = write_study(path, base=dict(BASE, **{"train.lr": 0.05}), seeds=[0])
        st2 = json.loads(run("study", "status", path, "--workspace", self.ws, "--json").stdout)
        self.assertEqual([x["status"] for c in st2["cells"] for x in c["runs"]], ["pending"] * 2)
        self.assertEqual(len(json.loads(run("runs", "list", "--workspace", self.ws,
                                            "--json").stdout)), 4)

    def check_faithfulness_columns(self, run0):
        """study report --faithfulness: each run's CAM faithfulness as a column group with the
        accuracies' statistics, the numbers `msconv gradcam --metrics` gives for the checkpoint,
        cached with the evaluation, and a bad request refused naming the set."""
        val = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.ws, "datasets"))
               for f in fs if f == "val.bin"][0]
        args = ["study", "report", "s", "--workspace", self.ws, "--format", "json",
                "--bootstrap", "200", "--faithfulness", val, "--faithfulness-n", "2"]
        rep = run(*args)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertIn("further metrics of", rep.stderr)
        doc = json.loads(rep.stdout)
        cells = {c["id"]: c for c in doc["cells"]}
        names = ["val.bin/faith.gradcam." + m for m in ("deletion", "insertion", "road", "drop")]
        for cell in cells.values():
            for name in names:
                self.assertEqual(cell["metrics"][name]["n"], 2, name)
        self.assertIn("val.bin/faith.gradcam.deletion", {c["metric"] for c in doc["comparisons"]})
        g = run("gradcam", "--checkpoint", run0, "--workspace", self.ws, "--metrics",
                "deletion,insertion,road,drop", "--pairs", val, "--n", "2", "--json")
        self.assertEqual(g.returncode, 0, g.stderr)
        mean = [r for r in json.loads(g.stdout)["rows"] if r["layer"] == "mean"][0]
        sk = cells["skconv"]["metrics"]
        for name, key in zip(names, ("deletion_auc", "insertion_auc", "road_combined", "drop")):
            self.assertAlmostEqual(sk[name]["values"][0], mean[key], places=9, msg=name)
        again = run(*args)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertNotIn("further metrics of", again.stderr)
        self.assertEqual(json.loads(again.stdout)["cells"], doc["cells"])
        # Without --faithfulness the cached columns are not shown.
        plain = json.loads(run("study", "report", "s", "--workspace", self.ws, "--format",
                               "json", "--bootstrap", "200").stdout)
        self.assertNotIn(names[0], plain["cells"][0]["metrics"])
        md = run(*args[:6], "markdown", *args[7:])
        self.assertEqual(md.returncode, 0, md.stderr)
        self.assertIn("val.bin/faith.gradcam.deletion |", md.stdout)
        bad = run(*args[:-1], "1000000")
        self.assertEqual(bad.returncode, 1)
        self.assertIn(val, bad.stderr)
        self.assertIn("genuine pairs", bad.stderr)

    def start_and_wait(self, path, step):
        """Starts `study run` in a session of its own (as a terminal's job) and waits until its
        run has logged `step`."""
        p = subprocess.Popen([BIN, "study", "run", path, "--workspace", self.ws],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        start = time.time()
        while time.time() - start < 300:
            st = status(self.ws, path)["cells"][0]["runs"][0]
            if st["step"] >= step:
                return p
            self.assertIsNone(p.poll(), "the study ended before it was stopped")
            time.sleep(0.3)
        self.fail("no progress")

    def test_killed_study_resumes_and_a_failed_run_stays_failed(self):
        # Long enough that the run is still training when the signal lands: at 60 steps (the
        # synthetic set's 20 epochs allowed 80), with the kernels on both threads, a run once
        # finished between two status polls.
        steps = 400
        base = dict(BASE, **{"train.max_steps": steps, "train.epochs": 1000,
                             "train.checkpoint_every": 5, "train.val_every": steps})
        path = write_study(os.path.join(self.tmp, "k.json"), name="k", base=base,
                           axes={"model.op": ["msconv-official"]}, seeds=[3])
        # Ctrl-C as a terminal sends it (to the whole job): the run stops with a checkpoint.
        p = self.start_and_wait(path, 4)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("run it again to resume", err)
        st = status(self.ws, path)["cells"][0]["runs"][0]
        self.assertEqual(st["status"], "stopped")
        stopped_at = st["step"]
        # Resumed, then SIGKILL to the study and its training process.
        p = self.start_and_wait(path, stopped_at + 6)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        p.stdout.close()
        p.stderr.close()
        for _ in range(100):  # the training process dies (and is reaped) a moment later
            st = status(self.ws, "k")["cells"][0]["runs"][0]
            if st["status"] != "running":
                break
            time.sleep(0.1)
        self.assertEqual(st["status"], "interrupted")
        r = run("study", "run", "k", "--workspace", self.ws)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("resuming", r.stderr)
        st = status(self.ws, "k")["cells"][0]["runs"][0]
        self.assertEqual((st["status"], st["step"]), ("done", steps))

        # A run the trainer fails (a learning rate that makes the loss NaN) is a failed cell-seed:
        # reported, excluded with its reason, not retried.
        path = write_study(os.path.join(self.tmp, "f.json"), name="f",
                           axes={"train.lr": [0.1, 1e6]}, seeds=[0],
                           base=dict(BASE, **{"train.clip_grad": 0}))
        r = run("study", "run", path, "--workspace", self.ws)
        self.assertEqual(r.returncode, 1)
        self.assertIn("failed", r.stderr)
        again = run("study", "run", "f", "--workspace", self.ws)
        self.assertEqual(again.returncode, 1)
        self.assertIn("not retried", again.stderr)
        self.assertIn("0 to train", again.stderr)
        doc = json.loads(run("study", "report", "f", "--workspace", self.ws, "--format",
                             "json", "--bootstrap", "100").stdout)
        self.assertEqual(len(doc["excluded"]), 1)
        self.assertIn("failed", doc["excluded"][0]["reason"])
        self.assertEqual(doc["cells"][1]["metrics"]["val.bin/accuracy"]["n"], 0)


def s_axes(tmp, preset):
    with open(os.path.join(tmp, preset + ".json")) as f:
        return json.load(f)["axes"]["model.op"]


def eval_accuracy(ej):
    """The accuracy of the first set in `msconv eval --json`."""
    sets = ej["sets"] if "sets" in ej else ej
    first = sets[0]
    return first["accuracy"]


if __name__ == "__main__":
    unittest.main()
