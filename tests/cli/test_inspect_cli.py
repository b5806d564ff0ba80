"""msconv featuremaps and msconv gradcam end to end: PNG figures of the right shape for one and
several checkpoints, every CAM method, identity targets from a training checkpoint, clear errors
for bad layers, images and targets; the maps as .npy arrays (read with numpy.load, listed in
index.json), CAM faithfulness on a pair set, and agreement with pytorch-grad-cam's definitions on
the authors' MSNet."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import authors_msnet as am  # noqa: E402
import reference_models as rm  # noqa: E402

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

        cls.pairs = os.path.join(cls.tmp, "syn", "val.bin")
        r = run("data", "synth", "-o", os.path.join(cls.tmp, "syn"), "--identities", "4",
                "--images-per-id", "2", "--pairs", "8")
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def load_index(self, folder):
        with open(os.path.join(folder, "index.json")) as f:
            index = json.load(f)
        arrays = {}
        for e in index:
            self.assertEqual(set(e), {"file", "model", "layer", "method", "target", "shape"})
            a = np.load(os.path.join(folder, e["file"]))
            self.assertEqual(a.dtype, np.float32)
            self.assertEqual(list(a.shape), e["shape"])
            arrays[(e["model"], e["layer"], e["method"])] = a
        self.assertEqual(len(arrays), len(index))  # one file per model, layer and method
        return index, arrays

    def test_gradcam_save_arrays(self):
        d = os.path.join(self.tmp, "cam-arrays")
        r = run("gradcam", "--checkpoint", self.ckpts[0], "--checkpoint", self.ckpts[1],
                "--image", self.image, "--reference", self.reference, "--method",
                "gradcam,layercam", "--save-arrays", d)
        self.assertEqual(r.returncode, 0, r.stderr)
        index, arrays = self.load_index(d)
        layers = ["stage1.0", "stage2.0", "stage3.0", "stage4.0"]
        models = sorted({e["model"] for e in index})
        self.assertEqual(len(models), 2)
        self.assertEqual(len(index), 2 * 2 * 5)  # models x methods x (layers + mean)
        for e in index:
            self.assertEqual(e["shape"], [112, 112])
            self.assertEqual(e["target"], "cosine")
        for m in models:
            for method in ("gradcam", "layercam"):
                cams = [arrays[(m, l, method)] for l in layers]
                for c in cams:
                    self.assertGreaterEqual(c.min(), 0.0)
                    self.assertLessEqual(c.max(), 1.0 + 1e-6)
                # The mean column: the layers averaged, min-max rescaled.
                mean = np.mean(cams, axis=0)
                mean = (mean - mean.min()) / (mean.max() - mean.min())
                np.testing.assert_allclose(arrays[(m, "mean", method)], mean, atol=1e-5)
        # The figure draws one method; a list is for arrays and metrics.
        r = run("gradcam", "--checkpoint", self.ckpts[0], "--image", self.image,
                "--method", "gradcam,layercam", "-o", os.path.join(self.tmp, "two.png"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("one --method", r.stderr)

    def test_featuremaps_save_arrays(self):
        d = os.path.join(self.tmp, "fm-arrays")
        r = run("featuremaps", "--checkpoint", self.ckpts[0], "--image", self.image,
                "--save-arrays", d)
        self.assertEqual(r.returncode, 0, r.stderr)
        index, arrays = self.load_index(d)
        rows = {e["method"]: arrays[(e["model"], e["layer"], e["method"])] for e in index}
        self.assertEqual(set(rows), {"U1", "U2", "U1+U2", "U1*U2", "U1-U2", "out", "gate"})
        self.assertEqual({e["layer"] for e in index}, {"stage1.0.op"})
        self.assertTrue(all(e["target"] is None for e in index))
        u1, u2 = rows["U1"], rows["U2"]
        self.assertEqual(u1.ndim, 3)  # C x H x W, every channel
        self.assertEqual(rows["gate"].shape, (u1.shape[0],))
        np.testing.assert_allclose(rows["U1+U2"], u1 + u2, atol=1e-5)
        np.testing.assert_allclose(rows["U1*U2"], u1 * u2, atol=1e-5)
        np.testing.assert_allclose(rows["U1-U2"], u1 - u2, atol=1e-5)
        self.assertTrue(((rows["gate"] > 0) & (rows["gate"] < 1)).all())  # a sigmoid

    def test_gradcam_metrics(self):
        r = run("gradcam", "--checkpoint", self.ckpts[0], "--checkpoint", self.ckpts[1],
                "--metrics", "deletion,insertion,road,drop", "--pairs", self.pairs, "--n", "2",
                "--steps", "4", "--layers", "stage4.0", "--method", "gradcam,eigencam", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual((j["n"], j["steps"], j["baseline"]), (2, 4, "blur"))
        self.assertEqual(j["metrics"], ["deletion", "insertion", "road", "drop"])
        rows = j["rows"]
        self.assertEqual(len(rows), 2 * 2)  # models x methods, one layer
        self.assertEqual([x["method"] for x in rows], ["gradcam", "eigencam"] * 2)
        for x in rows:
            self.assertEqual((x["layer"], x["pairs"]), ("stage4.0", 2))
            for k in ("deletion_auc", "insertion_auc", "road_most", "road_least", "road_combined",
                      "increase"):
                self.assertTrue(np.isfinite(x[k]), k)
            for k in ("deletion_auc", "insertion_auc", "target"):
                self.assertLessEqual(abs(x[k]), 1.0 + 1e-6, k)  # cosines
            self.assertAlmostEqual(x["road_combined"], (x["road_least"] - x["road_most"]) / 2)
            self.assertIn(x["increase"], (0.0, 0.5, 1.0))
        # The table, with only the metrics asked for, and a mean row for several layers.
        r = run("gradcam", "--checkpoint", self.ckpts[0], "--metrics", "deletion", "--pairs",
                self.pairs, "--n", "1", "--steps", "2", "--baseline", "mean")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("mean baseline", lines[0])
        self.assertEqual(lines[1].split(), ["model", "layer", "method", "pairs", "target",
                                            "deletion"])
        self.assertEqual([l.split()[2] for l in lines[2:]],
                         ["stage1.0", "stage2.0", "stage3.0", "stage4.0", "mean"])

    def test_gradcam_metrics_bad_input(self):
        base = ["gradcam", "--checkpoint", self.ckpts[0]]
        r = run(*base, "--metrics", "deletion", "--pairs", self.pairs, "--n", "50")
        self.assertEqual(r.returncode, 1)
        self.assertIn("val.bin", r.stderr)  # the set has 4 genuine pairs
        self.assertIn("genuine pairs", r.stderr)
        r = run(*base, "--metrics", "deletion,sharpness", "--pairs", self.pairs)
        self.assertEqual(r.returncode, 1)
        self.assertIn("'sharpness'", r.stderr)
        r = run(*base, "--metrics", "drop", "--pairs", os.path.join(self.tmp, "none.bin"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("none.bin", r.stderr)
        r = run(*base, "--metrics", "drop", "--pairs", self.pairs, "--baseline", "zero")
        self.assertEqual(r.returncode, 1)
        self.assertIn("'zero'", r.stderr)
        r = run(*base, "--metrics", "drop", "--pairs", self.pairs, "--target", "norm")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--target is for the CAMs of --image", r.stderr)
        r = run(*base, "--image", self.image, "--pairs", self.pairs, "-o",
                os.path.join(self.tmp, "x.png"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("--pairs is an option of --metrics", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

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


# ---- pytorch-grad-cam's definitions, written out from its source (jacobgil/pytorch-grad-cam,
# base_cam.py, grad_cam.py, grad_cam_plusplus.py, xgrad_cam.py, layer_cam.py, eigen_cam.py,
# utils/svd_on_activations.py, utils/image.py, utils/model_targets.py), numpy as it computes them.

def scale_cam_image(cam, target_size=None):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2.resize(np.float32(img), target_size)
        result.append(img)
    return np.float32(result)


def get_2d_projection(activation_batch, fix_sign=False):
    """svd_on_activations.py's get_2d_projection. fix_sign: MSConv Lab's convention instead of the
    sign LAPACK returns (the first right singular vector's entries sum to a positive value)."""
    activation_batch = activation_batch.copy()
    activation_batch[np.isnan(activation_batch)] = 0
    projections, signs = [], []
    for activations in activation_batch:
        reshaped_activations = (activations).reshape(activations.shape[0], -1).transpose()
        reshaped_activations = reshaped_activations - reshaped_activations.mean(axis=0)
        U, S, VT = np.linalg.svd(reshaped_activations, full_matrices=True)
        v = VT[0, :]
        signs.append(1.0 if v.sum() >= 0 else -1.0)
        if fix_sign and v.sum() < 0:
            v = -v
        projection = reshaped_activations @ v
        projection = projection.reshape(activations.shape[1:])
        projections.append(projection)
    return np.float32(projections), signs


def cam_weights(method, activations, grads):
    if method == "gradcam":
        return np.mean(grads, axis=(2, 3))
    if method == "gradcam++":
        grads_power_2 = grads**2
        grads_power_3 = grads_power_2 * grads
        sum_activations = np.sum(activations, axis=(2, 3))
        eps = 0.000001
        aij = grads_power_2 / (2 * grads_power_2 +
                               sum_activations[:, :, None, None] * grads_power_3 + eps)
        aij = np.where(grads != 0, aij, 0)
        weights = np.maximum(grads, 0) * aij
        return np.sum(weights, axis=(2, 3))
    if method == "xgradcam":
        sum_activations = np.sum(activations, axis=(2, 3))
        eps = 1e-7
        weights = grads * activations / (sum_activations[:, :, None, None] + eps)
        return weights.sum(axis=(2, 3))
    raise ValueError(method)


def cam_image(method, activations, grads, fix_sign):
    if method == "layercam":
        return (np.maximum(grads, 0) * activations).sum(axis=1), None
    if method == "eigencam":
        return get_2d_projection(activations, fix_sign)
    weights = cam_weights(method, activations, grads)
    return (weights[:, :, None, None] * activations).sum(axis=1), None


def pytorch_grad_cam(model, target_layers, x, reference_features, method, fix_sign=False):
    """BaseCAM.forward with SimilarityToConceptTarget: per layer CAMs after ReLU and
    scale_cam_image, and aggregate_multi_layers' mean; EigenCAM's SVD signs."""
    activations, gradients = [], []

    def save(module, inputs, output):
        activations.append(output.cpu().detach())

        def store(grad):
            gradients.insert(0, grad.cpu().detach())
        output.register_hook(store)
    handles = [layer.register_forward_hook(save) for layer in target_layers]
    try:
        model.eval()
        outputs = model(x)
        # The authors' forward squeezes the batch of one away; the target sees the embedding.
        output = outputs.view(1, -1)[0]
        model.zero_grad()
        loss = torch.nn.CosineSimilarity(dim=0)(output, reference_features)
        loss.backward(retain_graph=True)
    finally:
        for h in handles:
            h.remove()
    size = (x.size(-1), x.size(-2))
    per_layer, signs = [], []
    for a, g in zip(activations, gradients):
        cam, sign = cam_image(method, a.numpy(), g.numpy(), fix_sign)
        signs.append(sign[0] if sign else None)
        cam = np.maximum(cam, 0)
        per_layer.append(scale_cam_image(cam, size)[:, None, :])
    stacked = np.maximum(np.concatenate(per_layer, axis=1), 0)
    mean = scale_cam_image(np.mean(stacked, axis=1))
    return [c[0, 0] for c in per_layer], mean[0], signs


def write_ppm(path, rgb):
    h, w, _ = rgb.shape
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())


class AgreesWithPytorchGradCam(unittest.TestCase):
    """GradCAM, GradCAM++, XGradCAM, LayerCAM and EigenCAM of the authors' MSNet (msnet_tiny, as
    their model.py writes it) with a cosine-similarity target to a reference image's embedding, at
    the last unit of each stage (their stage_S[-1], our stageS.U), computed as pytorch-grad-cam's
    source computes them, equal `msconv gradcam --save-arrays` within 1e-3 absolute."""

    METHODS = ["gradcam", "gradcam++", "xgradcam", "layercam", "eigencam"]

    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        gen = torch.Generator().manual_seed(18)
        torch.manual_seed(18)
        cls.model = am.msnet_tiny(512)
        rm.randomize(cls.model, gen)
        cls.model.eval()
        sd = os.path.join(cls.tmp, "msnet_tiny_state.pt")
        torch.save(cls.model.state_dict(), sd)
        cls.ckpt = os.path.join(cls.tmp, "tiny.ckpt")
        r = run("import", "--state-dict", sd, "--arch", "msnet-tiny", "-o", cls.ckpt)
        assert r.returncode == 0, r.stderr
        # Two smooth images: coarse random colours, bilinearly enlarged, some noise.
        rng = np.random.default_rng(18)
        cls.images = []
        for i in range(2):
            coarse = rng.uniform(0, 255, (7, 7, 3)).astype(np.float32)
            img = cv2.resize(coarse, (112, 112), interpolation=cv2.INTER_CUBIC)
            img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).round().astype(np.uint8)
            path = os.path.join(cls.tmp, "face%d.ppm" % i)
            write_ppm(path, img)
            x = torch.from_numpy(img).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
            cls.images.append((path, x.unsqueeze(0)))
        cls.arrays = os.path.join(cls.tmp, "arrays")
        r = run("--threads", "1", "gradcam", "--checkpoint", cls.ckpt, "--image",
                cls.images[0][0], "--reference", cls.images[1][0], "--method",
                ",".join(cls.METHODS), "--save-arrays", cls.arrays, "--json")
        assert r.returncode == 0, r.stderr
        cls.cli = json.loads(r.stdout.splitlines()[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def ours(self, method, layer):
        with open(os.path.join(self.arrays, "index.json")) as f:
            (e,) = [e for e in json.load(f) if e["method"] == method and e["layer"] == layer]
        return np.load(os.path.join(self.arrays, e["file"]))

    def test_the_arrays_equal_pytorch_grad_cams(self):
        m = self.model
        layers = [m.stage_1[-1], m.stage_2[-1], m.stage_3[-1], m.stage_4[-1]]
        names = ["stage1.0", "stage2.0", "stage3.0", "stage4.0"]
        (_, x), (_, ref) = self.images
        with torch.no_grad():
            reference_features = m(ref).view(-1)
            target = torch.nn.functional.cosine_similarity(m(x).view(-1), reference_features,
                                                           dim=0).item()
        for j in self.cli:
            self.assertAlmostEqual(j["target"], target, places=5)
            self.assertEqual(j["layers"], names)
        worst, nonempty, lapack_signs = {}, 0, []
        for method in self.METHODS:
            # EigenCAM: MSConv Lab fixes the SVD's sign (the component's channel weights sum to a
            # positive value); pytorch-grad-cam keeps the sign LAPACK returns. Compared under our
            # convention, and as pytorch-grad-cam returns them where LAPACK's sign agrees.
            theirs, mean, signs = pytorch_grad_cam(m, layers, x, reference_features, method,
                                                   fix_sign=True)
            as_is, as_is_mean, _ = pytorch_grad_cam(m, layers, x, reference_features, method)
            for name, cam, raw, sign in zip(names, theirs, as_is, signs):
                with self.subTest(method=method, layer=name):
                    a = self.ours(method, name)
                    self.assertEqual(a.shape, (112, 112))
                    nonempty += cam.max() > 0.5
                    diff = np.abs(a - cam).max()
                    worst[(method, name)] = diff
                    self.assertLess(diff, 1e-3)
                    if sign is not None:
                        lapack_signs.append("%s %+d" % (name, sign))
                    if sign is None or sign > 0:
                        self.assertLess(np.abs(a - raw).max(), 1e-3)
            with self.subTest(method=method, layer="mean"):
                self.assertLess(np.abs(self.ours(method, "mean") - mean).max(), 1e-3)
        # ReLU may leave a layer's map empty (all zero on both sides); most must not be.
        self.assertGreaterEqual(nonempty, 18)
        print("\nEigenCAM: LAPACK's sign against ours per layer: " + ", ".join(lapack_signs))
        print("max |msconv - pytorch-grad-cam| per method and layer: " +
              ", ".join("%s %s %.2g" % (k[0], k[1], v) for k, v in sorted(worst.items())))


if __name__ == "__main__":
    unittest.main()
