"""ONNX out and in, each read back by an independent implementation.

Out: `msconv export` of every operator (on MSNet-tiny) and of the iResNet and FasterNet presets,
checked by python3-onnx's checker (with shape inference) and run by OpenCV's DNN module, whose
embeddings must match `msconv embed` within 1e-4 relative; a dynamic batch and opset 13 as well;
bad requests write nothing.
In: an insightface iResNet exported by python3-torch's torch.onnx.export in the test itself (as
arcface_torch's torch2onnx.py does), embedded, evaluated, compared and inspected by msconv through
OpenCV's DNN module, against PyTorch and against the same weights imported as a checkpoint."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import cv2
import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import reference_models as rm  # noqa: E402

BIN = os.environ.get("MSCONV_BIN", "msconv")

# (arch, op): every operator on the tiny MSNet, and the other families' presets.
MODELS = [("msnet-tiny", op) for op in (
    "msconv-official", "msconv", "msconv*", "msconv-mo", "msconv-so", "msconv-mo-so",
    "conv3x3", "skconv", "scconv", "ghost", "ghostv2", "pconv", "star")] + [
    ("msnet-tiny:prelu=channel", "msconv"), ("iresnet-tiny", "conv"), ("fasternet-t0", "pconv")]

# Standard ONNX that OpenCV 4.6's reader does not implement (its importer names the node):
# SCConv's gate thresholds with Where; StarNet's ReLU6 is Clip with its bounds as inputs, the
# only form opset 11 has (OpenCV 4.6 reads Clip only with the bounds as attributes, opset <= 10).
OPENCV_CANNOT = {"scconv": "Where", "star": "Clip"}


def run(*args, timeout=600):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def slug(arch, op):
    return "".join(c if c.isalnum() or c == "-" else "_" for c in arch + "-" + op)


def face(rng, path):
    """A smooth random face-sized image written as BGR; returns the network input (RGB)."""
    coarse = rng.uniform(0, 255, (7, 7, 3)).astype(np.float32)
    rgb = cv2.resize(coarse, (112, 112), interpolation=cv2.INTER_CUBIC)
    rgb = np.clip(rgb + rng.normal(0, 10, rgb.shape), 0, 255).round().astype(np.uint8)
    cv2.imwrite(path, rgb[:, :, ::-1])
    return ((rgb.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)


def opencv_embed(path, blob):
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(blob)
    return net.forward()


class OnnxOut(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        ws = os.path.join(cls.tmp, "ws")
        cls.ckpt = {}
        for arch, op in MODELS:
            name = slug(arch, op)
            r = run("--threads", "2", "train", "--workspace", ws, "--name", name,
                    "--set", "model.arch=" + arch, "--set", "model.op=" + op,
                    "--set", "train.batch_size=4", "--set", "train.max_steps=1",
                    "--set", "data.synthetic_identities=4", "--set", "data.synthetic_images_per_id=2",
                    "--set", "data.val=", "--set", "data.threads=1")
            assert r.returncode == 0, (name, r.stderr)
            cls.ckpt[(arch, op)] = r.stdout.strip().splitlines()[-1]
        rng = np.random.default_rng(19)
        cls.images = []
        for i in range(3):
            path = os.path.join(cls.tmp, "face%d.png" % i)
            cls.images.append((path, face(rng, path)))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def embed(self, ckpt, image):
        r = run("embed", "--checkpoint", ckpt, "--image", image, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return np.array(json.loads(r.stdout)["embedding"], dtype=np.float64)

    def export(self, arch, op, *extra):
        out = os.path.join(self.tmp, slug(arch, op) + "-".join(("",) + extra) + ".onnx")
        r = run("export", "--checkpoint", self.ckpt[(arch, op)], "--onnx", out, "--json", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out, json.loads(r.stdout)

    def test_every_model_checks_and_runs_in_opencv(self):
        worst = 0.0
        for arch, op in MODELS:
            with self.subTest(arch=arch, op=op):
                path, summary = self.export(arch, op)
                model = onnx.load(path)
                onnx.checker.check_model(model, full_check=True)
                # insightface's layout: "data" 1x3x112x112 in, "embedding" 1xD out.
                self.assertEqual([i.name for i in model.graph.input], ["data"])
                dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
                self.assertEqual(dims, [1, 3, 112, 112])
                self.assertEqual([o.name for o in model.graph.output], ["embedding"])
                self.assertEqual(model.opset_import[0].version, 11)
                meta = {p.key: p.value for p in model.metadata_props}
                self.assertEqual(meta["input_mean"], "127.5")
                # Every parameter is in the file (as itself, or reshaped once).
                floats = sum(int(np.prod(i.dims)) for i in model.graph.initializer
                             if i.data_type == onnx.TensorProto.FLOAT)
                self.assertGreaterEqual(floats, summary["parameters"] * 0.99)
                if op in OPENCV_CANNOT:
                    self.assertIn(OPENCV_CANNOT[op], summary["op_types"])
                    continue
                for image, blob in self.images[:2]:
                    ours = self.embed(self.ckpt[(arch, op)], image)
                    theirs = opencv_embed(path, blob[None]).ravel()
                    rel = np.abs(theirs - ours).max() / np.abs(ours).max()
                    worst = max(worst, rel)
                    self.assertLess(rel, 1e-4, (arch, op))
        print("\nworst relative difference, OpenCV DNN against msconv embed: %.2e" % worst)

    def test_the_fused_stage_exports_as_plain_operators_with_its_parts_named(self):
        path, summary = self.export("msnet-tiny", "msconv")
        self.assertIn("stage1.0.op/fused", summary["named_values"])
        self.assertIn("stage4.0/out", summary["named_values"])
        model = onnx.load(path)
        names = {o for n in model.graph.node for o in n.output}
        self.assertIn("stage1.0.op/U1", names)
        self.assertTrue({n.op_type for n in model.graph.node} <= {
            "Conv", "BatchNormalization", "PRelu", "Mul", "Sub", "Add", "ReduceMean", "Reshape",
            "Gemm", "Sigmoid", "Relu", "MaxPool", "Flatten", "Identity", "Slice", "Transpose"})
        # An intermediate tensor by name, from OpenCV (fusion off, so the layer keeps its output;
        # OpenCV 4.6 names a node's layer "onnx_node!" + the node's name, here its output's).
        net = cv2.dnn.readNetFromONNX(path)
        net.enableFusion(False)
        net.setInput(self.images[0][1][None])
        fused = net.forward("onnx_node!stage1.0.op/fused")
        self.assertEqual(fused.ndim, 4)
        self.assertEqual(fused.shape[0], 1)

    def test_a_dynamic_batch_and_opset_13(self):
        # OpenCV 4.6 runs a batch of 3 through a dynamic-batch model unless a per-sample tensor
        # multiplies a map by broadcasting (MSConv's and SKConv's gates: its Eltwise layer then
        # asserts); those run there one image at a time, and onnx.checker infers every shape.
        blob = np.stack([b for _, b in self.images])
        for arch, op, batch in (("msnet-tiny", "msconv-official", 1), ("msnet-tiny", "skconv", 1),
                                ("fasternet-t0", "pconv", 3), ("iresnet-tiny", "conv", 3)):
            for opset in ("11", "13"):
                with self.subTest(arch=arch, op=op, opset=opset):
                    path, _ = self.export(arch, op, "--dynamic-batch", "--opset", opset)
                    model = onnx.load(path)
                    onnx.checker.check_model(model, full_check=True)
                    self.assertEqual(model.opset_import[0].version, int(opset))
                    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
                    self.assertEqual(dim.dim_param, "None")
                    theirs = np.concatenate([opencv_embed(path, blob[i:i + batch])
                                             for i in range(0, 3, batch)])
                    self.assertEqual(theirs.shape[0], 3)
                    for i, (image, _) in enumerate(self.images):
                        ours = self.embed(self.ckpt[(arch, op)], image)
                        rel = np.abs(theirs[i] - ours).max() / np.abs(ours).max()
                        self.assertLess(rel, 1e-4, (arch, op, i))

    def test_bad_requests_write_nothing(self):
        out = os.path.join(self.tmp, "bad.onnx")
        ckpt = self.ckpt[("msnet-tiny", "msconv")]
        r = run("export", "--checkpoint", ckpt, "--onnx", out, "--opset", "9")
        self.assertEqual(r.returncode, 1)
        self.assertIn("opset 9", r.stderr)
        r = run("export", "--checkpoint", os.path.join(self.tmp, "none.ckpt"), "--onnx", out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("none.ckpt", r.stderr)
        r = run("export", "--checkpoint", ckpt, "--onnx", os.path.join(self.tmp, "no", "x.onnx"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("x.onnx", r.stderr)
        r = run("export", "--checkpoint", ckpt)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--onnx", r.stderr)
        self.assertFalse(os.path.exists(out))
        self.assertEqual([f for f in os.listdir(self.tmp) if f.startswith("bad")], [])


class OnnxIn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp()
        gen = torch.Generator().manual_seed(19)
        torch.manual_seed(19)
        cls.model = rm.IResNet([1, 1, 1, 1], width=0.125)
        rm.randomize(cls.model, gen)
        cls.model.eval()
        # As arcface_torch's torch2onnx.py: input "data", opset 11, batch axis named None.
        cls.onnx = os.path.join(cls.tmp, "iresnet.onnx")
        torch.onnx.export(cls.model, torch.zeros(1, 3, 112, 112), cls.onnx, input_names=["data"],
                          keep_initializers_as_inputs=False, opset_version=11)
        m = onnx.load(cls.onnx)
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "None"
        onnx.save(m, cls.onnx)
        cls.tensors = [n.output[0] for n in m.graph.node]
        # The same weights as an MSConv Lab checkpoint.
        sd = os.path.join(cls.tmp, "iresnet.pt")
        torch.save(cls.model.state_dict(), sd)
        cls.ckpt = os.path.join(cls.tmp, "iresnet.ckpt")
        r = run("import", "--state-dict", sd, "--arch", "iresnet50:width=0.125,blocks=1-1-1-1",
                "-o", cls.ckpt)
        assert r.returncode == 0, r.stderr
        r = run("data", "synth", "-o", os.path.join(cls.tmp, "syn"), "--identities", "6",
                "--images-per-id", "3", "--pairs", "40")
        assert r.returncode == 0, r.stderr
        cls.bin = os.path.join(cls.tmp, "syn", "val.bin")
        rng = np.random.default_rng(7)
        cls.image = os.path.join(cls.tmp, "face.png")
        cls.blob = face(rng, cls.image)
        cls.reference = os.path.join(cls.tmp, "face2.png")
        face(rng, cls.reference)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_embed_equals_pytorch(self):
        r = run("embed", "--checkpoint", self.onnx, "--image", self.image, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        ours = np.array(json.loads(r.stdout)["embedding"])
        with torch.no_grad():
            ref = self.model(torch.from_numpy(self.blob)[None]).numpy().ravel()
        self.assertLess(np.abs(ours - ref).max() / np.abs(ref).max(), 1e-4)

    def test_eval_and_compare_beside_the_imported_checkpoint(self):
        ws = os.path.join(self.tmp, "ws")
        results = {}
        for name, model in (("onnx", self.onnx), ("ckpt", self.ckpt)):
            r = run("eval", "--checkpoint", model, "--bin", self.bin, "--workspace", ws, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            results[name] = json.loads(r.stdout)
        a, b = (results[k]["sets"][0] for k in ("onnx", "ckpt"))
        self.assertEqual(a["accuracy"], b["accuracy"])
        self.assertAlmostEqual(a["auc"], b["auc"], places=5)
        self.assertAlmostEqual(a["eer"], b["eer"], places=5)
        r = run("compare", self.onnx, self.ckpt, "--bin", self.bin, "--workspace", ws,
                "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual(len(rows["rows"] if isinstance(rows, dict) else rows), 2)

    def test_feature_maps_and_gradient_free_cams_of_named_tensors(self):
        conv = next(t for t in self.tensors if t)  # the stem's output
        out = os.path.join(self.tmp, "fm.png")
        arrays = os.path.join(self.tmp, "fm")
        r = run("featuremaps", "--checkpoint", self.onnx, "--image", self.image, "--layer", conv,
                "-o", out, "--save-arrays", arrays)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.getsize(out) > 0)
        with open(os.path.join(arrays, "index.json")) as f:
            index = json.load(f)
        entry = index[0] if isinstance(index, list) else index["arrays"][0]
        saved = np.load(os.path.join(arrays, entry["file"]))
        with torch.no_grad():
            first = self.model.prelu(self.model.bn1(self.model.conv1(
                torch.from_numpy(self.blob)[None])))[0].numpy()
        # The tensor OpenCV computed is PyTorch's (its channel count and values).
        self.assertEqual(saved.shape[-2:], first.shape[-2:])
        layer4 = [t for t in self.tensors if t][-6]
        for method in ("eigencam", "scorecam"):
            r = run("gradcam", "--checkpoint", self.onnx, "--image", self.image, "--reference",
                    self.reference, "--method", method, "--layers", layer4, "-o",
                    os.path.join(self.tmp, method + ".png"), "--json")
            self.assertEqual(r.returncode, 0, (method, r.stderr))
        r = run("gradcam", "--checkpoint", self.onnx, "--image", self.image, "--method", "gradcam",
                "--layers", layer4, "-o", os.path.join(self.tmp, "g.png"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs gradients", r.stderr)
        self.assertIn("eigencam", r.stderr)

    def test_bad_onnx_files_are_named(self):
        bad = os.path.join(self.tmp, "broken.onnx")
        with open(bad, "wb") as f:
            f.write(b"not a model")
        r = run("embed", "--checkpoint", bad, "--image", self.image)
        self.assertEqual(r.returncode, 1)
        self.assertIn("broken.onnx", r.stderr)
        r = run("export", "--checkpoint", self.onnx, "--onnx", os.path.join(self.tmp, "x.onnx"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a LibTorch network", r.stderr)


if __name__ == "__main__":
    unittest.main()
