"""msconv data end to end: synth -> info -> pack -> a RecordIO / pickle reader written here with the
standard library alone (as insightface's readers would see the files), plus bad-input exit codes."""
import json
import os
import pickle
import shutil
import struct
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MSCONV_BIN", "msconv")
FIX = os.environ.get("MSCONV_DATA_FIXTURES", "data_fixtures")
MAGIC = 0xCED7230A


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)


def read_rec(prefix):
    """MXNet's reader: the index, then records re-joined around the magic."""
    idx = {}
    with open(prefix + ".idx") as f:
        for line in f:
            k, off = line.split("\t")
            idx[int(k)] = int(off)
    out = {}
    with open(prefix + ".rec", "rb") as f:
        for k, off in idx.items():
            f.seek(off)
            data = b""
            while True:
                magic, lrec = struct.unpack("<II", f.read(8))
                assert magic == MAGIC
                cflag, n = lrec >> 29, lrec & ((1 << 29) - 1)
                data += f.read(n)
                f.read((-n) % 4)
                if cflag in (0, 3):
                    break
                data += struct.pack("<I", MAGIC)
            flag, label, _, _ = struct.unpack("<IfQQ", data[:24])
            labels = list(struct.unpack("<%df" % flag, data[24:24 + 4 * flag])) if flag else None
            out[k] = (label, labels, data[24 + 4 * flag:])
    return out


class Synth(unittest.TestCase):
    def test_synth_info_pack_roundtrip(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "faces")
            r = run("data", "synth", "-o", out, "--identities", "6", "--images-per-id", "4",
                    "--pairs", "10", "--seed", "3")
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(run("data", "info", out, "--json").stdout)
            self.assertEqual((info["kind"], info["identities"], info["images"], info["pairs"]),
                             ("folder", 6, 24, 0))
            pinfo = json.loads(run("data", "info", os.path.join(out, "val.bin"), "--json").stdout)
            self.assertEqual((pinfo["kind"], pinfo["images"], pinfo["pairs"]), ("pairs", 20, 10))
            # Python's own pickle reads what we wrote.
            with open(os.path.join(out, "val.bin"), "rb") as f:
                bins, issame = pickle.load(f, encoding="bytes")
            self.assertEqual(len(bins), 20)
            self.assertEqual(sum(issame), 6)  # pairs 0, 1, 4, 5, 8, 9
            self.assertTrue(bins[0][:2] == b"\xff\xd8")  # JPEG
            # Pack the identity folder into RecordIO; read it back with the reader above.
            r = run("data", "pack", os.path.join(out, "train"), "-o", os.path.join(d, "train"))
            self.assertEqual(r.returncode, 0, r.stderr)
            recs = read_rec(os.path.join(d, "train"))
            self.assertEqual(recs[0][1], [25.0, 31.0])  # header: identity keys 25..30
            for c in range(6):
                a, b = recs[25 + c][1]
                self.assertEqual((a, b), (1 + 4 * c, 5 + 4 * c))
                for k in range(int(a), int(b)):
                    self.assertEqual(recs[k][0], float(c))
            first = sorted(os.listdir(os.path.join(out, "train", "00000")))[0]
            with open(os.path.join(out, "train", "00000", first), "rb") as f:
                self.assertEqual(recs[1][2], f.read())
            info = json.loads(run("data", "info", os.path.join(d, "train.rec"), "--json").stdout)
            self.assertEqual((info["kind"], info["identities"], info["images"]), ("recordio", 6, 24))

    def test_same_seed_same_files(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ("a", "b"):
                r = run("data", "synth", "-o", os.path.join(d, name), "--identities", "4",
                        "--images-per-id", "2", "--pairs", "4", "--format", "recordio")
                self.assertEqual(r.returncode, 0, r.stderr)
            for f in ("train.rec", "train.idx", "val.bin"):
                with open(os.path.join(d, "a", f), "rb") as x, open(os.path.join(d, "b", f), "rb") as y:
                    self.assertEqual(x.read(), y.read(), f)


class PackPairs(unittest.TestCase):
    def test_pairs_list_to_bin(self):
        with tempfile.TemporaryDirectory() as d:
            for i in range(4):
                shutil.copy(os.path.join(FIX, "img_%02d.pnm" % i), d)
            with open(os.path.join(d, "pairs.txt"), "w") as f:
                f.write("img_00.pnm img_01.pnm 1\nimg_02.pnm img_03.pnm 0\n")
            out = os.path.join(d, "p.bin")
            r = run("data", "pack-pairs", os.path.join(d, "pairs.txt"), "-o", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                bins, issame = pickle.load(f)
            self.assertEqual(issame, [True, False])
            with open(os.path.join(FIX, "img_02.pnm"), "rb") as f:
                self.assertEqual(bins[2], f.read())


class BadInput(unittest.TestCase):
    def assertFails(self, r, *needles):
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)

    def test_errors_name_what_is_wrong(self):
        self.assertFails(run("data", "info", "/nonexistent/x"), "/nonexistent/x")
        self.assertFails(run("data", "info", os.path.join(FIX, "pairs_foreign.bin")),
                         "global 'os.system'")
        with tempfile.TemporaryDirectory() as d:
            for f in ("insightface.rec", "insightface.idx"):
                shutil.copy(os.path.join(FIX, f), d)
            with open(os.path.join(d, "insightface.rec"), "r+b") as f:
                f.seek(0)
                f.write(b"JUNK")
            self.assertFails(run("data", "info", os.path.join(d, "insightface.rec")), "key 0",
                             "wrong magic")
            # An undecodable image in a folder: check fails naming it, --skip-bad counts it.
            os.makedirs(os.path.join(d, "ids", "a"))
            shutil.copy(os.path.join(FIX, "img_00.pnm"), os.path.join(d, "ids", "a", "0.pnm"))
            with open(os.path.join(d, "ids", "a", "1.png"), "wb") as f:
                f.write(b"\x89PNG broken")
            self.assertFails(run("data", "check", os.path.join(d, "ids")), "1.png", "cannot decode")
            r = run("data", "check", os.path.join(d, "ids"), "--skip-bad")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 images decoded, 1 bad", r.stdout)
            self.assertFails(run("data", "pack", os.path.join(d, "ids"), "-o", os.path.join(d, "o")),
                             "1.png")
            r = run("data", "pack", os.path.join(d, "ids"), "-o", os.path.join(d, "o"), "--skip-bad")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 bad images skipped", r.stdout)


if __name__ == "__main__":
    unittest.main()
