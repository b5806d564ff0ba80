"""msconv-lab from the command line: the headless report (no display needed) and a prepared run
queue opening in a real window under Xvfb (checked through its screenshots)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MSCONV_BIN", "msconv")
LAB = os.path.join(os.path.dirname(BIN), "msconv-lab")
XVFB = shutil.which("xvfb-run")


def headless_env():
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


class Lab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.ws = os.path.join(cls.tmp, "ws")
        sets = ["model.arch=msnet-tiny", "train.batch_size=8", "train.max_steps=6",
                "data.synthetic_identities=6", "data.synthetic_images_per_id=4",
                "train.val_every=3", "train.threads=1", "data.threads=1"]
        for name, op in [("ms", "msconv-official"), ("sk", "skconv")]:
            args = [BIN, "train", "--workspace", cls.ws, "--name", name, "--set", "model.op=" + op]
            for kv in sets:
                args += ["--set", kv]
            r = subprocess.run(args, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
        faces = os.path.join(cls.ws, "datasets")
        cls.face = next(os.path.join(d, f) for d, _, fs in sorted(os.walk(faces)) for f in sorted(fs)
                        if f.endswith((".jpg", ".png")))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_report_without_a_display(self):
        out = os.path.join(self.tmp, "report")
        r = subprocess.run([LAB, self.ws, "--report", out, "--image", self.face],
                           capture_output=True, text=True, timeout=300, env=headless_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip().splitlines()[-1], os.path.join(out, "index.html"))
        with open(os.path.join(out, "index.html")) as f:
            html = f.read()
        for png in ["training.png", "roc.png", "gradcam.png", "featuremaps-ms.png",
                    "featuremaps-sk.png"]:
            self.assertIn('src="%s"' % png, html)
            with open(os.path.join(out, png), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", png)
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        self.assertEqual([r["name"] for r in m["runs"]], ["ms", "sk"])
        for run in m["runs"]:
            ev = run["evaluation"][0]
            self.assertEqual(ev["set"], "val")
            self.assertTrue(0 <= ev["accuracy"] <= 1)
            self.assertAlmostEqual(ev["accuracy"], run["metrics"]["val.bin/accuracy"], places=9)
        with open(os.path.join(out, "compare.csv")) as f:
            self.assertEqual(len(f.read().strip().splitlines()), 3)

    def test_report_of_a_foreign_store_names_it(self):
        ws = os.path.join(self.tmp, "foreign")
        os.makedirs(ws)
        with open(os.path.join(ws, "runs.sqlite"), "wb") as f:
            f.write(b"not a database at all" * 10)
        r = subprocess.run([LAB, "--workspace", ws, "--report", os.path.join(self.tmp, "r2")],
                           capture_output=True, text=True, timeout=120, env=headless_env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("runs.sqlite", r.stderr)

    def test_command_line_answers_without_a_display(self):
        """--help, --version and mistakes are answered before Qt starts (no display needed),
        the way msconv answers them; --workspace DIR is the positional WORKSPACE."""
        def lab(*args):
            return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=120,
                                  env=headless_env())
        r = lab("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("usage: msconv-lab [WORKSPACE | --workspace DIR]"))
        r = lab("--version")
        version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout
        self.assertEqual(r.stdout, version.replace("msconv ", "msconv-lab ", 1))
        # Qt's own options pass to QApplication in each of Qt's spellings.
        for qt in (["-style", "fusion"], ["--style=fusion"], ["-reverse"], ["--platform", "xcb"]):
            r = lab(*qt, "--version")
            self.assertEqual((r.returncode, r.stderr), (0, ""), qt)
        for args, said in [(["--bogus"], "unknown option '--bogus' (see --help)"),
                           (["--workspace"], "option '--workspace' needs a value"),
                           (["--workspace="], "option '--workspace' needs a value"),
                           (["--train-queued=1"], "option '--train-queued' takes no '=' value"),
                           (["a", "--workspace", "b"], "two workspaces given ('b')"),
                           (["--enqueue", "x"], "option '--enqueue' needs a NAME and SETTINGS")]:
            r = lab(*args)
            self.assertEqual((r.returncode, r.stderr), (2, "msconv-lab: " + said + "\n"), args)
        # --enqueue is checked as the New Run form checks it: the key is named, nothing queued.
        ws = os.path.join(self.tmp, "bad-queue")
        r = lab(ws, "--enqueue", "q", "model.arch=msnet-tiny train.lr=fast")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--enqueue q: ", r.stderr)
        self.assertIn("'train.lr' must be a number", r.stderr)
        self.assertFalse(os.path.exists(ws))
        # A report only reads: a workspace that is not there is an error, and is not created.
        missing = os.path.join(self.tmp, "typo")
        r = lab("--workspace=" + missing, "--report", os.path.join(self.tmp, "r3"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("workspace '%s' does not exist" % missing, r.stderr)
        self.assertFalse(os.path.exists(missing))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "r3")))
        r = subprocess.run([LAB, "--report", os.path.join(self.tmp, "r4")], capture_output=True,
                           text=True, timeout=120, env=headless_env(), cwd=self.tmp)
        self.assertEqual(r.returncode, 1)  # the default workspace, ./runs, as msconv's
        self.assertIn("workspace 'runs' does not exist", r.stderr)

    @unittest.skipUnless(XVFB, "xvfb-run is not installed")
    def test_enqueue_opens_the_window_on_the_queue(self):
        ws = os.path.join(self.tmp, "queued")
        shots = os.path.join(self.tmp, "shots")
        run = [XVFB, "-a", "-s", "-screen 0 1400x1000x24", LAB, ws,
               "--enqueue", "q-msconv", "model.arch=msnet-tiny model.op=msconv-official",
               "--enqueue", "q-scconv", "model.arch=msnet-tiny model.op=scconv",
               "--screenshot", shots]
        for _ in range(2):  # a second start does not queue the same runs again
            r = subprocess.run(run, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(ws, "lab-queue.json")) as f:
            queue = json.load(f)["queue"]
        self.assertEqual([q["name"] for q in queue], ["q-msconv", "q-scconv"])
        self.assertEqual(queue[1]["settings"], ["model.arch=msnet-tiny", "model.op=scconv"])
        for panel in ["runs", "training", "evaluation", "inspect", "compare"]:
            with open(os.path.join(shots, "lab-%s.png" % panel), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", panel)
        # A run already in the store is not queued again either.
        r = subprocess.run([XVFB, "-a", LAB, self.ws, "--enqueue", "ms", "model.arch=msnet-tiny",
                            "--screenshot", shots], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.ws, "lab-queue.json")) as f:
            self.assertEqual(json.load(f)["queue"], [])


if __name__ == "__main__":
    unittest.main()
