"""The msconv command-line tool end to end: exit codes, one-line errors, JSON, and a PyTorch
state_dict imported and embedded through the CLI alone, against PyTorch's own embeddings."""
import datetime
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

    def test_exact_parameter_counts_of_the_authors_models(self):
        # The counts of the authors' model.py, as tests/python/authors_msnet.py builds it.
        with open(os.path.join(FIX, "manifest.json")) as f:
            counts = json.load(f)["authors_params"]
        self.assertEqual(counts, {"msnet26": 18554881, "msnet50": 31555201, "msnet101": 57320265})
        for arch, n in counts.items():
            r = run("info", "--arch", arch, "--op", "msconv-official", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["params"], n, arch)

    def test_architecture_options(self):
        r = run("info", "--arch", "msnet50:width=0.125,blocks=1-1-1-1,G=8,L=8", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["arch"], "msnet-tiny")  # a preset is a name like any other
        tiny = json.loads(run("info", "--arch", "msnet-tiny", "--json").stdout)
        self.assertEqual((j["params"], j["macs"]), (tiny["params"], tiny["macs"]))
        r = run("info", "--arch", "msnet-tiny:embedding=128,prelu=channel", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["arch"], "msnet-tiny:embedding=128,prelu=channel")
        listed = {a["name"]: a for a in json.loads(run("info", "--list", "--json").stdout)
                  ["architectures"]}
        self.assertEqual(listed["msnet-tiny"]["equals"], "msnet50:width=0.125,blocks=1-1-1-1,G=8,L=8")
        self.assertEqual(listed["msnet50"]["prelu"], "shared")
        self.assertEqual(listed["iresnet50"]["prelu"], "channel")

    def test_paper_table(self):
        r = run("info", "--paper", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {row["model"]: row for row in json.loads(r.stdout)}
        self.assertEqual(set(rows), {"MSConv", "SKNet", "SCConv", "FasterNet-S", "GhostNet",
                                     "GhostNetV2", "StarNet"})
        for model in ("MSConv", "SKNet", "FasterNet-S"):  # the rows our reading reproduces
            row = rows[model]
            self.assertLess(abs(row["params"] - row["paper_params"]) / row["paper_params"], 0.01)
            self.assertLess(abs(row["macs"] - row["paper_macs"]) / row["paper_macs"], 0.01)
        for row in rows.values():
            self.assertTrue(row["reading"])
        self.assertIn("GhostNet", run("info", "--paper").stdout)

    def test_help_table_is_aligned(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.split("commands:\n")[1].split("\n\n")[0].splitlines()
        self.assertIn("featuremaps", "".join(lines))
        columns = set()
        for line in lines:
            name = line.split()[0]
            columns.add(len(line) - len(line[line.index(name) + len(name):].lstrip()))
        self.assertEqual(len(columns), 1, r.stdout)

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
        self.assertOneLineError(run("info", "--arch", "msnet50:width=0"), "option 'width'")
        self.assertOneLineError(run("info", "--arch", "msnet50:blocks=3-4-6"), "option 'blocks'")
        self.assertOneLineError(run("info", "--arch", "msnet-tiny:G=3"),
                                "not divisible by G=3", "architecture's option G")
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
                rel = ((emb - io["emb"][i]).norm() / io["emb"][i].norm()).item()
                print("%s image %d: max |embedding diff| vs PyTorch = %.3g, relative L2 %.3g"
                      % (name, i, diff, rel))
                self.assertLess(diff, 1e-4)
                self.assertLess(rel, 1e-4)

    def test_authors_msnet50(self):
        self.check("msnet50", "msnet50", "msconv-official")

    def test_authors_msnet26(self):
        self.check("msnet26", "msnet26", "msconv-official")

    def test_insightface_iresnet18(self):
        self.check("iresnet18", "iresnet18", "conv")


class ImportTrainingCheckpoints(unittest.TestCase):
    """arcface_torch's checkpoint_gpu_<rank>.pt, written by python3-torch as train_v2.py does."""

    def test_two_ranks_assemble_the_head_for_identity_targets(self):
        io = torch.load(os.path.join(FIX, "arcface_io.pt"))
        with tempfile.TemporaryDirectory() as d:
            ckpt = os.path.join(d, "m.ckpt")
            r = run("import", "--state-dict", os.path.join(FIX, "arcface2", "checkpoint_gpu_0.pt"),
                    "--state-dict", os.path.join(FIX, "arcface2", "checkpoint_gpu_1.pt"),
                    "--arch", "msnet-tiny", "-o", ckpt)
            self.assertEqual(r.returncode, 0, r.stderr)
            line = [l for l in r.stderr.splitlines() if l.startswith("import:")]
            self.assertEqual(len(line), 1, r.stderr)
            for needle in ("epoch 3", "global step 360", "head 11 classes x 512 from 2 ranks"):
                self.assertIn(needle, line[0])
            img = os.path.join(FIX, "msnet50_face0.ppm")
            # Class 10 lives in rank 1's shard: only an assembled head has it.
            out = os.path.join(d, "cam.png")
            r = run("--threads", "1", "gradcam", "--checkpoint", ckpt, "--image", img,
                    "--target", "identity:10", "-o", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run("--threads", "1", "gradcam", "--checkpoint", ckpt, "--image", img,
                    "--target", "identity:11", "-o", out)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("11 classes", r.stderr)
            r = run("embed", "--checkpoint", ckpt, "--image", img, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_checkpoint_files_write_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "x.ckpt")
            gpu0 = os.path.join(FIX, "arcface1", "checkpoint_gpu_0.pt")
            # A truncated .pt.
            cut = os.path.join(d, "checkpoint_gpu_0.pt")
            with open(gpu0, "rb") as f:
                data = f.read()
            with open(cut, "wb") as f:
                f.write(data[: len(data) // 2])
            r = run("import", "--state-dict", cut, "--arch", "msnet-tiny", "-o", out)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(cut, r.stderr)
            # A checkpoint dict without a backbone.
            nobb = os.path.join(d, "nobackbone.pt")
            torch.save({"epoch": 2, "global_step": 10, "state_optimizer": {"state": {}}}, nobb)
            r = run("import", "--state-dict", nobb, "--arch", "msnet-tiny", "-o", out)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(nobb, r.stderr)
            self.assertIn("without 'state_dict_backbone'", r.stderr)
            # A pickle with a foreign global: named, never executed.
            evil = os.path.join(d, "evil.pt")
            torch.save({"state_dict_backbone": {}, "epoch": 1, "date": datetime.date(2024, 1, 1)},
                       evil)
            r = run("import", "--state-dict", evil, "--arch", "msnet-tiny", "-o", out)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(evil, r.stderr)
            self.assertIn("datetime.date", r.stderr)
            # Another architecture's weights: the keys are named.
            r = run("import", "--state-dict", gpu0, "--arch", "msnet-small", "-o", out)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("checkpoint_gpu_0.pt: state_dict does not fit", r.stderr)
            self.assertFalse(os.path.exists(out))
            # --allow-partial still lists what it skipped.
            r = run("import", "--state-dict", gpu0, "--arch", "msnet-small", "-o", out,
                    "--allow-partial")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("mis-shaped", r.stderr)
            self.assertTrue(os.path.exists(out))



# Argument handling in many short processes: under a sanitizer each process takes seconds to
# start and to check for leaks at exit, for paths the Release run covers.
SANITIZED = os.environ.get("MSCONV_SANITIZER")


class CommandLine(unittest.TestCase):
    """What a new user types first: help for every command and subcommand, the version, and the
    mistakes (an unknown option, a bad MSCONV_THREADS, a workspace that is not there)."""

    COMMANDS = {"info": [], "import": [], "embed": [], "export": [], "train": [], "eval": [],
                "featuremaps": [], "gradcam": [], "failures": [], "compare": [],
                "data": ["info", "check", "pack", "pack-pairs", "synth", "synth-ijb"],
                "runs": ["list", "show", "export"], "study": ["new", "run", "status", "report"]}

    @unittest.skipIf(SANITIZED, "many short processes; the Release run checks them")
    def test_every_command_and_subcommand_has_help(self):
        top = run("--help")
        self.assertEqual(top.returncode, 0, top.stderr)
        table = top.stdout.split("commands:\n")[1].split("\n\n")[0]
        listed = {line.split()[0] for line in table.splitlines()}
        self.assertEqual(listed, set(self.COMMANDS))
        self.assertEqual(run("help").stdout, top.stdout)
        for command, subs in self.COMMANDS.items():
            for sub in [None, *subs]:
                words = [command] + ([sub] if sub else [])
                # -h and `msconv help ...` are the same path: checked on one of each kind.
                short = words in (["train"], ["data", "synth"])
                forms = [words + ["--help"]] + ([words + ["-h"], ["help"] + words] if short else [])
                first = None
                for form in forms:
                    r = run(*form)
                    self.assertEqual(r.returncode, 0, f"{form}: {r.stderr}")
                    self.assertEqual(r.stderr, "", form)
                    self.assertTrue(r.stdout.startswith("usage: msconv " + command), form)
                    self.assertIn("--", r.stdout, form)  # its options are listed
                    first = first or r.stdout
                    self.assertEqual(r.stdout, first, form)  # -h and help say what --help says
                if sub and command == "data":
                    self.assertIn(" ".join(words), run(*words, "--help").stdout)

    def test_version_names_the_revision(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^msconv \d+\.\d+\.\d+ \(revision [^)]+\)\n$")
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "CMakeLists.txt")) as f:
            version = [l for l in f if l.startswith("project(")][0].split("VERSION")[1].split()[0]
        self.assertIn(" " + version + " ", r.stdout)

    @unittest.skipIf(SANITIZED, "many short processes; the Release run checks them")
    def test_mistakes_are_one_line_errors(self):
        r = run("--bogus")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, "msconv: unknown option '--bogus' (see --help)\n")
        r = run("data", "synth", "--bogus")
        self.assertEqual(r.returncode, 1)
        self.assertIn("'--bogus'", r.stderr)
        r = run("help", "nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown command 'nosuch'", r.stderr)
        for bad in ("abc", "0", "-2", "3x"):
            r = subprocess.run([BIN, "info", "--list"], capture_output=True, text=True,
                               timeout=60, env=dict(os.environ, MSCONV_THREADS=bad))
            self.assertEqual(r.returncode, 1, bad)
            self.assertEqual(r.stderr,
                             f"msconv: MSCONV_THREADS wants a positive integer, got '{bad}'\n")
        for bad in ("abc", "4x"):
            r = run("--threads", bad, "info", "--list")
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"--threads wants a positive integer, got '{bad}'", r.stderr)
        # After the command word --threads is the command's own (or unknown to it).
        r = run("info", "--list", "--threads", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option '--threads'", r.stderr)

    def test_commands_that_read_refuse_a_workspace_that_is_not_there(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "typo")
            for args in (["runs", "list"], ["runs", "show", "r"], ["compare", "r"],
                         ["eval", "--checkpoint", "r", "--bin", "x.bin"]):
                r = run(*args, "--workspace", missing)
                self.assertEqual(r.returncode, 1, args)
                self.assertIn(missing, r.stderr, args)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertFalse(os.path.exists(missing), args)
            # A folder without a run store is named as such, and stays as it was.
            empty = os.path.join(tmp, "empty")
            os.makedirs(empty)
            r = run("runs", "list", "--workspace", empty)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no run store", r.stderr)
            self.assertEqual(os.listdir(empty), [])


if __name__ == "__main__":
    unittest.main()
