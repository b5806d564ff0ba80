"""msconv featuremaps and msconv gradcam end to end: PNG figures of the right shape for one and
several checkpoints, every CAM method, identity targets from a training checkpoint, and clear
errors for bad layers, images and targets."""
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

BIN = os.environ.get("MSCONV_BIN", "msconv")


def run(*args, timeout=600):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


class Inspect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        ws = os.path.join(cls.tmp, "ws")
        cls.ckpts = []
        for op in ("msconv-official", "skconv"):
            r = run("train", "--workspace", ws, "--name", op, "--set", "model.arch=msnet-tiny",
                    "--set", "model.op=" + op, "--set", "train.batch_size=8",
                    "--set", "train.max_steps=2", "--set", "data.synthetic_identities=6",
                    "--set", "data.synthetic_images_per_id=3", "--set", "data.val=",
                    "--set", "train.threads=1", "--set", "data.threads=1")
            assert r.returncode == 0, r.stderr
            cls.ckpts.append(r.stdout.strip().splitlines()[-1])
        faces = os.path.join(ws, "datasets")
        first = sorted(os.listdir(faces))[0]
        train = os.path.join(faces, first, "train")
        ident = sorted(os.listdir(train))[0]
        cls.image = os.path.join(train, ident, "000.jpg")
        cls.reference = os.path.join(train, ident, "001.jpg")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_featuremaps_figure_and_layers(self):
        out = os.path.join(self.tmp, "fm.png")
        r = run("featuremaps", "--checkpoint", self.ckpts[0], "--image", self.image, "-o", out,
                "--top", "3", "--colormap", "inferno")
        self.assertEqual(r.returncode, 0, r.stderr)
        w, h = png_size(out)
        self.assertGreater(w, 3 * 96)
        self.assertGreater(h, 6 * 96)  # U1, U2, add, multiply, subtract, out
        layers = run("featuremaps", "--checkpoint", self.ckpts[0], "--list-layers").stdout.split()
        self.assertEqual(layers[0], "stage1.0.op")
        r = run("featuremaps", "--checkpoint", self.ckpts[0], "--image", self.image, "-o", out,
                "--layer", "stage7.0.op")
        self.assertEqual(r.returncode, 1)
        self.assertIn("stage7.0.op", r.stderr)

    def test_gradcam_rows_methods_and_targets(self):
        out = os.path.join(self.tmp, "gc.png")
        r = run("gradcam", "--checkpoint", self.ckpts[0], "--checkpoint", self.ckpts[1],
                "--image", self.image, "--reference", self.reference, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        w, h = png_size(out)
        self.assertGreater(w, 5 * 112)  # four stages and their mean
        self.assertGreater(h, 2 * 112)
        for method in ("gradcam++", "xgradcam", "hirescam", "layercam", "eigencam", "scorecam"):
            r = run("gradcam", "--checkpoint", self.ckpts[0], "--image", self.image,
                    "--method", method, "--layers", "stage3.0,stage4.0", "-o", out)
            self.assertEqual(r.returncode, 0, method + ": " + r.stderr)
        r = run("gradcam", "--checkpoint", self.ckpts[0], "--image", self.image,
                "--target", "identity:2", "--flip", "--json", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"layers"', r.stdout)

    def test_gradcam_bad_input(self):
        out = os.path.join(self.tmp, "bad.png")
        cases = [
            (["--image", os.path.join(self.tmp, "nope.jpg")], "nope.jpg"),
            (["--image", self.image, "--target", "identity:999"], "999"),
            (["--image", self.image, "--target", "cosine"], "--reference"),
            (["--image", self.image, "--method", "magic"], "magic"),
            (["--image", self.image, "--layers", "stage1.9"], "stage1.9"),
            (["--image", self.image, "--alpha", "2"], "--alpha"),
        ]
        for extra, needle in cases:
            r = run("gradcam", "--checkpoint", self.ckpts[0], *extra, "-o", out)
            self.assertEqual(r.returncode, 1, extra)
            self.assertIn(needle, r.stderr, extra)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
