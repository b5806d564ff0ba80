"""The msconv command-line tool end to end: exit codes, one-line errors, JSON, and a PyTorch
state_dict imported and embedded through the CLI alone, against PyTorch's own embeddings."""
import json
import os
import subprocess
import tempfile
import unittest

import torch

BIN = os.environ.get("MSCONV_BIN", "msconv")
FIX = os.environ.get("MSCONV_FIXTURES", "fixtures")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)


class Info(unittest.TestCase):
    def test_json_reproduces_the_reference_table(self):
        for arch, op, params, gmacs in [("msnet50", "msconv-official", 31.56e6, 1.388e9),
                                        ("msnet50", "skconv", 26.50e6, 1.170e9)]:
            r = run("info", "--arch", arch, "--op", op, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            j = json.loads(r.stdout)
            self.assertLess(abs(j["params"] - params) / params, 0.005)
            self.assertLess(abs(j["macs"] - gmacs) / gmacs, 0.005)

    def test_list(self):
        r = run("info", "--list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        ops = {o["name"] for o in j["operators"]}
        self.assertTrue({"msconv", "msconv-official", "msconv*", "msconv-mo", "msconv-so",
                         "msconv-mo-so", "skconv", "scconv", "conv3x3"} <= ops)
        archs = {a["name"] for a in j["architectures"]}
        self.assertTrue({"msnet26", "msnet50", "msnet101", "iresnet18", "iresnet100",
                         "msnet-tiny", "iresnet-tiny"} <= archs)

    def test_several_operators_in_one_table(self):
        r = run("--threads", "1", "info", "--arch", "msnet-tiny", "--op", "msconv", "--op",
                "skconv", "--op", "scconv", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([row["op"] for row in json.loads(r.stdout)], ["msconv", "skconv", "scconv"])


class BadInput(unittest.TestCase):
    def assertOneLineError(self, r, *needles):
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_unknown_names_and_impossible_options(self):
        self.assertOneLineError(run("info", "--arch", "msnet50", "--op", "msconvx"),
                                "unknown operator 'msconvx'")
        self.assertOneLineError(run("info", "--arch", "resnet9"), "unknown architecture 'resnet9'")
        self.assertOneLineError(run("info", "--arch", "msnet50", "--op", "msconv:G=48"),
                                "not divisible by G=48", "stage1.0.op")
        self.assertOneLineError(run("info", "--bogus"), "unknown option '--bogus'")
        self.assertOneLineError(run("frobnicate"), "unknown command 'frobnicate'")
        self.assertOneLineError(run("--threads", "zero", "info", "--list"), "--threads")

    def test_unreadable_and_foreign_checkpoints(self):
        with tempfile.TemporaryDirectory() as d:
            junk = os.path.join(d, "junk.ckpt")
            with open(junk, "wb") as f:
                f.write(os.urandom(4096))
            img = os.path.join(FIX, "msnet50_face0.ppm")
            self.assertOneLineError(run("embed", "--checkpoint", junk, "--image", img),
                                    junk, "not an MSConv Lab checkpoint")
            sd = os.path.join(FIX, "msnet50_state.pt")
            self.assertOneLineError(run("embed", "--checkpoint", sd, "--image", img), "msconv import")
            self.assertOneLineError(run("import", "--state-dict", junk, "--arch", "msnet50",
                                        "-o", os.path.join(d, "x.ckpt")), junk)
            # Weights of MSNet-50 do not fit MSNet-26: the keys are named, nothing is written.
            out = os.path.join(d, "x.ckpt")
            r = run("import", "--state-dict", sd, "--arch", "msnet26", "-o", out)
            self.assertOneLineError(r, "448 unexpected", "stage_1.2.conv1.0.weight", "--allow-partial")
            self.assertFalse(os.path.exists(out))
            r = run("import", "--state-dict", sd, "--arch", "msnet26", "-o", out, "--allow-partial")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("unexpected", r.stderr)
            self.assertTrue(os.path.exists(out))


class ImportAndEmbed(unittest.TestCase):
    def check(self, name, arch, op):
        io = torch.load(os.path.join(FIX, name + "_io.pt"))
        with tempfile.TemporaryDirectory() as d:
            ckpt = os.path.join(d, name + ".ckpt")
            r = run("import", "--state-dict", os.path.join(FIX, name + "_state.pt"), "--arch", arch,
                    "--op", op, "-o", ckpt)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip().splitlines()[-1], ckpt)
            for i in range(2):
                r = run("embed", "--checkpoint", ckpt, "--image",
                        os.path.join(FIX, "%s_face%d.ppm" % (name, i)), "--json")
                self.assertEqual(r.returncode, 0, r.stderr)
                emb = torch.tensor(json.loads(r.stdout)["embedding"])
                self.assertEqual(emb.shape, (512,))
                diff = (emb - io["emb"][i]).abs().max().item()
                print("%s image %d: max |embedding diff| vs PyTorch = %.3g" % (name, i, diff))
                self.assertLess(diff, 1e-4)

    def test_authors_msnet50(self):
        self.check("msnet50", "msnet50", "msconv-official")

    def test_insightface_iresnet18(self):
        self.check("iresnet18", "iresnet18", "conv")


if __name__ == "__main__":
    unittest.main()
