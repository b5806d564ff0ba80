"""msconv eval and msconv compare end to end on a tiny trained run: the table and the JSON
document, ROC CSVs thinned for plotting, IJB-format evaluation on the synthetic IJB set, the
comparison table in text, CSV and JSON, and clear errors for bad input."""
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MSCONV_BIN", "msconv")
SMALL = ["--set", "model.arch=msnet-tiny", "--set", "train.batch_size=16",
         "--set", "train.max_steps=12", "--set", "data.synthetic_identities=20",
         "--set", "data.synthetic_images_per_id=6", "--set", "train.threads=1",
         "--set", "data.threads=1", "--set", "train.log_every=2"]


def run(*args, timeout=600):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


class Eval(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.ws = os.path.join(cls.tmp, "ws")
        r = run("train", "--workspace", cls.ws, "--name", "a", *SMALL)
        assert r.returncode == 0, r.stderr
        cls.ckpt = r.stdout.strip().splitlines()[-1]
        r = run("train", "--workspace", cls.ws, "--name", "b", *SMALL, "--set", "model.op=skconv")
        assert r.returncode == 0, r.stderr
        cls.ijb = os.path.join(cls.tmp, "ijb")
        r = run("data", "synth-ijb", "-o", cls.ijb, "--identities", "6")
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_a_run_name_resolves_to_its_best_checkpoint(self):
        by_file = json.loads(run("eval", "--checkpoint", os.path.join(self.ws, "runs", "a",
                                                                      "best.ckpt"), "--json").stdout)
        r = run("eval", "--checkpoint", "a", "--workspace", self.ws, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        by_run = json.loads(r.stdout)
        self.assertTrue(by_run["checkpoint"].endswith(os.path.join("runs", "a", "best.ckpt")))
        self.assertEqual(by_run["sets"][0]["accuracy"], by_file["sets"][0]["accuracy"])
        r = run("eval", "--checkpoint", "nope", "--workspace", self.ws)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--checkpoint: 'nope' is neither a checkpoint file nor a run", r.stderr)

    def test_json_on_the_runs_validation_set_with_roc_csv(self):
        rocs = os.path.join(self.tmp, "rocs")
        r = run("eval", "--checkpoint", self.ckpt, "--json", "--roc-dir", rocs)
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        (s,) = j["sets"]
        self.assertEqual(s["kind"], "pairs")
        self.assertEqual(s["pairs"], 1000)
        for k in ("accuracy", "accuracy_std", "val", "auc"):
            self.assertTrue(0.0 <= s[k] <= 1.0, k)
        self.assertGreater(s["xnorm"], 0)
        self.assertIn("1e-01", s["tar_at_far"])
        with open(s["roc_csv"]) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 2000)
        fars = [float(x["far"]) for x in rows]
        self.assertEqual(fars, sorted(fars))
        self.assertAlmostEqual(fars[-1], 1.0)
        # The readable table names the set.
        t = run("eval", "--checkpoint", self.ckpt)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("val", t.stdout)
        self.assertIn("TAR@FAR", t.stdout.splitlines()[0])

    def test_ijb_format_set(self):
        r = run("eval", "--checkpoint", self.ckpt, "--ijb", self.ijb, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        (s,) = [x for x in json.loads(r.stdout)["sets"] if x["kind"] == "ijb"]
        self.assertEqual(s["templates"], 18)
        self.assertEqual(s["faces"], 72)
        self.assertEqual(sorted(s["tar_at_far"]), sorted(["1e-06", "1e-05", "1e-04", "1e-03",
                                                          "1e-02", "1e-01"]))
        self.assertGreater(s["auc"], 0.5)  # held-out identities, yet better than chance

    def test_ijb_pair_naming_an_unknown_template(self):
        bad = os.path.join(self.tmp, "ijb_bad")
        shutil.copytree(self.ijb, bad)
        with open(os.path.join(bad, "meta", "ijbc_template_pair_label.txt"), "a") as f:
            f.write("1 999 0\n")
        r = run("eval", "--checkpoint", self.ckpt, "--ijb", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("999", r.stderr)
        self.assertIn("ijbc_template_pair_label.txt", r.stderr)

    def test_corrupt_bin_is_named(self):
        bad = os.path.join(self.tmp, "bad.bin")
        with open(bad, "wb") as f:
            f.write(b"\x80\x04not a pickle")
        r = run("eval", "--checkpoint", self.ckpt, "--bin", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.bin", r.stderr)
        r = run("eval", "--checkpoint", os.path.join(self.tmp, "missing.ckpt"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.ckpt", r.stderr)

    def test_compare_runs_and_a_checkpoint(self):
        r = run("compare", "a", "b", self.ckpt, "--workspace", self.ws, "--format", "csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        self.assertEqual([x["model"] for x in rows], ["a", "b", "a"])
        self.assertEqual(rows[1]["operator"], "skconv")
        self.assertNotEqual(rows[0]["params (M)"], rows[1]["params (M)"])
        self.assertGreater(float(rows[0]["train samples/s"]), 0)
        self.assertTrue(rows[0]["validation"].startswith("best.ckpt step "), rows[0])
        self.assertEqual(rows[2]["validation"], "-")  # a checkpoint file: evaluated here
        acc = [k for k in rows[0] if k.endswith("/accuracy %")]
        self.assertEqual(len(acc), 1)
        self.assertTrue(0 <= float(rows[0][acc[0]]) <= 100)
        j = json.loads(run("compare", "a", "b", "--workspace", self.ws, "--format", "json").stdout)
        self.assertEqual(j[0]["op"], "msconv-official")
        self.assertGreater(j[0]["gmacs"], 0)
        out = os.path.join(self.tmp, "cmp.txt")
        r = run("compare", "a", "b", "--workspace", self.ws, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            self.assertIn("skconv", f.read())
        r = run("compare", "nope", "--workspace", self.ws)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope", r.stderr)


if __name__ == "__main__":
    unittest.main()
