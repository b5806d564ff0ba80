"""msconv eval, msconv compare and msconv failures end to end on a tiny trained run: the table
and the JSON document, ROC and DET CSVs thinned for plotting, per-pair scores (--pairs-out) checked
against the JSON's accuracy, EER and histogram with numpy/scipy/scikit-learn, IJB-format
evaluation on the synthetic IJB set, the comparison table in text, CSV and JSON, the failure lists
checked against the kept scores, and clear errors for bad input."""
import csv
import glob
import io
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

BIN = os.environ.get("MSCONV_BIN", "msconv")
SMALL = ["--set", "model.arch=msnet-tiny", "--set", "train.batch_size=16",
         "--set", "train.max_steps=12", "--set", "data.synthetic_identities=20",
         "--set", "data.synthetic_images_per_id=6", "--set", "train.threads=1",
         "--set", "data.threads=1", "--set", "train.log_every=2"]


def run(*args, timeout=600):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def read_pairs(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def eer_recipe(scores, labels):
    """scikit-learn's ROC and the usual EER recipe: brentq(1 - x - interp1d(fpr, tpr)(x)), the
    threshold interp1d(fpr, thresholds)(eer)."""
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve
    fpr, tpr, thr = roc_curve(labels, scores)
    eer = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    return eer, float(interp1d(fpr, thr)(eer))


def csv_scores(rows):
    """The score column as the float32 values msconv wrote (%.9g round-trips a float)."""
    return np.array([float(r["score"]) for r in rows], dtype=np.float32).astype(np.float64)


def threshold_at_far(scores, labels, far):
    """The lowest threshold (accept when score >= it) accepting at most floor(far * N)
    impostors: just above the (k+1)-th highest impostor score, from a full sort."""
    imp = np.sort(np.asarray(scores, dtype=np.float32)[np.asarray(labels) == 0])[::-1]
    k = int(np.floor(far * len(imp) * (1 + 1e-12)))
    if k >= len(imp):
        return float(imp[-1])
    return float(np.nextafter(imp[k], np.float32(np.inf)))


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
        cls.ckpt_b = r.stdout.strip().splitlines()[-1]
        cls.ijb = os.path.join(cls.tmp, "ijb")
        r = run("data", "synth-ijb", "-o", cls.ijb, "--identities", "6")
        assert r.returncode == 0, r.stderr
        (cls.val,) = glob.glob(os.path.join(cls.ws, "datasets", "*", "val.bin"))
        cls.pairs_csv = {}  # (checkpoint, set args) -> (set JSON, rows, CSV file)

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

    def test_inference_form_agrees_with_the_training_graph(self):
        # msconv eval embeds with the inference form (BatchNorm folded, channels-last) unless
        # --training-graph: the same metrics, and scores within float rounding, on .bin and IJB.
        for set_args in (["--bin", self.val], ["--ijb", self.ijb]):
            outs = []
            for extra in ([], ["--training-graph"]):
                csv_path = os.path.join(self.tmp, "form%d.csv" % len(outs))
                r = run("eval", "--checkpoint", self.ckpt, *set_args, "--pairs-out", csv_path,
                        "--json", *extra)
                self.assertEqual(r.returncode, 0, r.stderr)
                outs.append((json.loads(r.stdout)["sets"][0], csv_scores(read_pairs(csv_path))))
            (fast, fast_scores), (graph, graph_scores) = outs
            self.assertLess(np.abs(fast_scores - graph_scores).max(), 1e-5)
            for k in ("auc", "eer"):
                self.assertAlmostEqual(fast[k], graph[k], places=4, msg=k)
            if "accuracy" in fast:
                self.assertAlmostEqual(fast["accuracy"], graph["accuracy"], places=3)
                self.assertAlmostEqual(fast["xnorm"], graph["xnorm"], places=3)

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
        # A readable set too small for the ten folds: the error names it too.
        faces = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.ws, "datasets"))
                       for f in fs if f.endswith(".jpg"))[:3]
        pairs = os.path.join(self.tmp, "two.txt")
        with open(pairs, "w") as f:
            f.write("%s %s 1\n%s %s 0\n" % (faces[0], faces[1], faces[0], faces[2]))
        small = os.path.join(self.tmp, "two.bin")
        r = run("data", "pack-pairs", pairs, "-o", small, "--root", "/")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("eval", "--checkpoint", self.ckpt, "--bin", small)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip().splitlines()[-1],
                         "msconv: %s: verification: needs at least 10 pairs" % small)

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

    # --pairs-out, --det-dir and the JSON's eer/det/histogram; msconv failures on kept scores.

    def eval_pairs(self, ckpt, *extra):
        """eval --pairs-out of a checkpoint on one set (once per class): set JSON, rows, file."""
        key = (ckpt,) + extra
        if key not in self.pairs_csv:
            out = os.path.join(self.tmp, "pairs%d.csv" % len(self.pairs_csv))
            r = run("eval", "--checkpoint", ckpt, "--pairs-out", out, "--json", *extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.pairs_csv[key] = (json.loads(r.stdout)["sets"][0], read_pairs(out), out)
        return self.pairs_csv[key]

    def a_on_val(self):
        return self.eval_pairs(self.ckpt, "--bin", self.val, "--det-dir",
                               os.path.join(self.tmp, "dets"), "--far", "0.01")

    def test_pairs_out_agrees_with_the_json(self):
        s, rows, _ = self.a_on_val()
        self.assertEqual(len(rows), 1000)
        self.assertEqual(list(rows[0]), ["pair", "score", "label", "dist", "fold",
                                         "fold_threshold"])
        self.assertEqual([int(r["pair"]) for r in rows], list(range(1000)))
        scores = csv_scores(rows)
        labels = np.array([int(r["label"]) for r in rows])
        # The 10-fold decisions reproduce the reported accuracy.
        fold = np.array([int(r["fold"]) for r in rows])
        right = (np.array([float(r["dist"]) for r in rows]) <
                 np.array([float(r["fold_threshold"]) for r in rows])) == (labels == 1)
        acc = np.mean([right[fold == f].mean() for f in range(10)])
        self.assertAlmostEqual(acc, s["accuracy"], places=12)
        # EER and its threshold as scipy's brentq + interp1d on scikit-learn's ROC find them.
        eer, thr = eer_recipe(scores, labels)
        self.assertAlmostEqual(s["eer"], eer, places=8)
        self.assertAlmostEqual(s["eer_threshold"], thr, places=5)
        # DET points: FNMR is the genuine share below each point's threshold.
        det = s["det"]
        self.assertEqual(len(det), 500)
        for p in det[::37]:  # threshold null: above every score (nothing accepted)
            thr = np.inf if p["threshold"] is None else p["threshold"]
            self.assertAlmostEqual(p["fnmr"], np.mean(scores[labels == 1] < thr), places=12)
        with open(s["det_csv"]) as f:
            csv_det = list(csv.DictReader(f))
        self.assertEqual(len(csv_det), 500)
        self.assertAlmostEqual(float(csv_det[100]["fnmr"]), det[100]["fnmr"], places=6)
        # The histogram: every pair counted; its threshold at FAR 1e-2 from a full sort.
        h = s["histogram"]
        self.assertEqual(h["far"], 0.01)
        self.assertEqual(sum(h["genuine"]), int(labels.sum()))
        self.assertEqual(sum(h["impostor"]), int((labels == 0).sum()))
        self.assertAlmostEqual(h["lo"], scores.min(), places=6)
        self.assertEqual(h["threshold"], threshold_at_far(scores, labels, 0.01))
        # Two sets and one file: refused before evaluating.
        r = run("eval", "--checkpoint", self.ckpt, "--bin", self.val, "--ijb", self.ijb,
                "--pairs-out", os.path.join(self.tmp, "two.csv"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("--pairs-out", r.stderr)
        self.assertIn("2 sets", r.stderr)

    def test_ijb_pairs_out_ranks_as_the_roc(self):
        from sklearn.metrics import roc_auc_score
        s, rows, _ = self.eval_pairs(self.ckpt, "--ijb", self.ijb)
        self.assertEqual(len(rows), s["pairs"])
        self.assertEqual(list(rows[0])[-2:], ["template1", "template2"])
        with open(os.path.join(self.ijb, "meta", "ijbc_template_pair_label.txt")) as f:
            meta = [line.split() for line in f if line.strip()]
        self.assertEqual([(r["template1"], r["template2"], r["label"]) for r in rows],
                         [tuple(m) for m in meta])
        scores = csv_scores(rows)
        labels = np.array([int(r["label"]) for r in rows])
        self.assertAlmostEqual(roc_auc_score(labels, scores), s["auc"], places=9)
        self.assertAlmostEqual(s["eer"], eer_recipe(scores, labels)[0], places=8)

    def failures(self, *args):
        r = run("failures", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_failures_of_one_model_and_of_two_read_kept_scores(self):
        ws2 = os.path.join(self.tmp, "ws2")
        args = ["--checkpoint", self.ckpt, "--bin", self.val, "--workspace", ws2, "--far", "0.05",
                "--top", "4"]
        first = self.failures(*args, "--json")
        self.assertIn("scores computed", first.stderr)
        second = self.failures(*args, "--json")
        self.assertIn("scores read from the workspace", second.stderr)
        self.assertNotIn("computed", second.stderr)
        self.assertEqual(first.stdout, second.stdout)
        j = json.loads(second.stdout)
        # Against the per-pair scores: threshold, counts and the top rows by margin.
        _, rows, a_csv = self.a_on_val()
        scores = csv_scores(rows).astype(np.float32)
        labels = np.array([int(r["label"]) for r in rows])
        t = threshold_at_far(scores, labels, 0.05)
        self.assertEqual(j["models"][0]["threshold"], t)
        accepted = scores >= np.float32(t)
        fa = np.where(accepted & (labels == 0))[0]
        fr = np.where(~accepted & (labels == 1))[0]
        self.assertEqual(j["false_accepts"], len(fa))
        self.assertEqual(j["false_rejects"], len(fr))
        want = sorted(fa, key=lambda i: (-(float(scores[i]) - t), i))[:4] + \
            sorted(fr, key=lambda i: (-(t - float(scores[i])), i))[:4]
        self.assertEqual([r["pair"] for r in j["rows"]], [int(i) for i in want])
        for r in j["rows"]:
            self.assertEqual(r["first"], {"image": 2 * r["pair"]})
            self.assertEqual(r["second"], {"image": 2 * r["pair"] + 1})
            self.assertEqual(r["kind"], "false accept" if r["pair"] in fa else "false reject")
        # The same model given by its pairs file: the same list.
        by_csv = json.loads(self.failures("--pairs", a_csv, "--bin", self.val, "--far", "0.05",
                                          "--top", "4", "--json").stdout)
        self.assertEqual(by_csv["rows"], j["rows"])
        # Two models at the 10-fold thresholds: the disagreements, both ways.
        # (eval keeps B's scores in ws2 too: failures reads both.)
        _, b_rows, _ = self.eval_pairs(self.ckpt_b, "--bin", self.val, "--workspace", ws2)
        both = ["--checkpoint", self.ckpt, "--checkpoint", self.ckpt_b, "--bin", self.val,
                "--workspace", ws2, "--threshold-from-folds", "--top", "3"]
        r = self.failures(*both, "--json")
        self.assertIn(self.ckpt + ": scores read from the workspace", r.stderr)
        self.assertIn(self.ckpt_b + ": scores read from the workspace", r.stderr)
        j2 = json.loads(r.stdout)

        def right(rs):
            return np.array([(float(x["dist"]) < float(x["fold_threshold"])) == (x["label"] == "1")
                             for x in rs])
        ra, rb = right(rows), right(b_rows)
        self.assertEqual(j2["a_right_b_wrong"], int(np.sum(ra & ~rb)))
        self.assertEqual(j2["a_wrong_b_right"], int(np.sum(~ra & rb)))
        for row in j2["rows"]:
            i = row["pair"]
            self.assertEqual(row["kind"] == "A right, B wrong", bool(ra[i] and not rb[i]))
            self.assertEqual(len(row["scores"]), 2)
            self.assertAlmostEqual(row["scores"][1], float(b_rows[i]["score"]), places=6)
        text = self.failures(*both).stdout
        self.assertIn("A right, B wrong: %d" % j2["a_right_b_wrong"], text)
        self.assertIn("B score", text)

    def test_failures_on_ijb_name_the_templates_media(self):
        self.eval_pairs(self.ckpt, "--ijb", self.ijb)  # keeps the scores in the run's workspace
        r = self.failures("--checkpoint", self.ckpt, "--ijb", self.ijb, "--far", "0.1", "--top",
                          "2", "--json")
        self.assertIn("scores read from the workspace", r.stderr)
        j = json.loads(r.stdout)
        self.assertTrue(j["rows"])
        with open(os.path.join(self.ijb, "meta", "ijbc_template_pair_label.txt")) as f:
            meta = [line.split() for line in f if line.strip()]
        for row in j["rows"]:
            t1, t2, _ = meta[row["pair"]]
            self.assertEqual(row["first"]["template"], int(t1))
            self.assertEqual(row["second"]["template"], int(t2))
            self.assertTrue(row["first"]["images"])
            for image in row["first"]["images"] + row["second"]["images"]:
                self.assertTrue(os.path.exists(image), image)

    def test_failures_bad_input(self):
        # A pairs file of another set (the IJB set's pairs against the .bin).
        _, _, ijb_csv = self.eval_pairs(self.ckpt, "--ijb", self.ijb)
        r = run("failures", "--pairs", ijb_csv, "--bin", self.val)
        self.assertEqual(r.returncode, 1)
        self.assertIn(ijb_csv, r.stderr)
        self.assertIn("another set", r.stderr)
        r = run("failures", "--checkpoint", self.ckpt, "--bin", self.val, "--frobnicate")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option '--frobnicate'", r.stderr)
        r = run("failures", "--checkpoint", self.ckpt, "--bin", self.val, "--ijb", self.ijb)
        self.assertEqual(r.returncode, 1)
        self.assertIn("one of them", r.stderr)
        r = run("failures", "--checkpoint", self.ckpt, "--ijb", self.ijb, "--threshold-from-folds")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--far", r.stderr)
        r = run("failures", "--checkpoint", self.ckpt, "--bin", self.val, "--far", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--far", r.stderr)
        # Scores that cannot be kept (the workspace is under a file): the evaluation stands.
        blocked = os.path.join(self.tmp, "a_file")
        open(blocked, "w").close()
        r = run("eval", "--checkpoint", self.ckpt, "--ijb", self.ijb, "--workspace",
                os.path.join(blocked, "ws"), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("per-pair scores not kept", r.stderr)
        self.assertIn("a_file", r.stderr)
        self.assertGreater(json.loads(r.stdout)["sets"][0]["auc"], 0)
        # A checkpoint replaced by one of another embedding size: its kept scores are not
        # reused (the key follows the file), and its scores are its own.
        ws4 = os.path.join(self.tmp, "ws4")
        r = run("train", "--workspace", self.ws, "--name", "c", *SMALL, "--set",
                "model.arch=msnet-tiny:embedding=64", "--set", "train.max_steps=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        c = r.stdout.strip().splitlines()[-1]
        loose = os.path.join(self.tmp, "loose.ckpt")
        shutil.copyfile(self.ckpt, loose)
        args = ["--checkpoint", loose, "--bin", self.val, "--workspace", ws4, "--top", "1",
                "--json"]
        j1 = json.loads(self.failures(*args).stdout)
        self.assertIn("scores read", self.failures(*args).stderr)
        shutil.copyfile(c, loose)
        r = self.failures(*args)
        self.assertIn("scores computed", r.stderr)
        self.assertNotEqual(json.loads(r.stdout)["models"][0]["threshold"],
                            j1["models"][0]["threshold"])
        # Models of different embedding sizes (64 and 512) compare on their scores.
        _, _, a_csv = self.a_on_val()
        r = self.failures("--checkpoint", loose, "--pairs", a_csv, "--bin", self.val,
                          "--workspace", ws4, "--json")
        self.assertIn("scores read", r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["models"]), 2)


if __name__ == "__main__":
    unittest.main()
