"""msconv-scope in a real window under Xvfb: a live run's telemetry, a missing run and a cut
telemetry file all give a window (checked through its screenshot) and no crash."""
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

BIN = os.environ.get("MSCONV_BIN", "msconv")
SCOPE = os.path.join(os.path.dirname(BIN), "msconv-scope")
XVFB = shutil.which("xvfb-run")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def scope(target, shot):
    return subprocess.run([XVFB, "-a", "-s", "-screen 0 1400x1000x24", SCOPE, target,
                           "--screenshot", shot, "--frames", "3", "--size", "1000x700"],
                          capture_output=True, text=True, timeout=120)


@unittest.skipUnless(XVFB, "xvfb-run is not installed")
class Scope(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.ws = os.path.join(cls.tmp, "ws")
        r = subprocess.run([BIN, "train", "--workspace", cls.ws, "--name", "s",
                            "--set", "model.arch=msnet-tiny", "--set", "train.batch_size=8",
                            "--set", "train.max_steps=6", "--set", "data.synthetic_identities=6",
                            "--set", "data.synthetic_images_per_id=4", "--set", "data.val=",
                            "--set", "telemetry.every=1", "--set", "train.threads=1",
                            "--set", "data.threads=1"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_run_workspace_missing_and_cut(self):
        for name, target in [("run", os.path.join(self.ws, "runs", "s")), ("ws", self.ws),
                             ("missing", os.path.join(self.tmp, "nowhere"))]:
            shot = os.path.join(self.tmp, name + ".png")
            r = scope(target, shot)
            self.assertEqual(r.returncode, 0, name + ": " + r.stderr)
            self.assertEqual(png_size(shot), (1000, 700), name)
        cut = os.path.join(self.tmp, "cut.bin")
        shutil.copy(os.path.join(self.ws, "runs", "s", "telemetry.bin"), cut)
        os.truncate(cut, os.path.getsize(cut) - 11)
        r = scope(cut, os.path.join(self.tmp, "cut.png"))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.tmp, "garbage.bin"), "wb") as f:
            f.write(b"\0" * 100)
        r = scope(os.path.join(self.tmp, "garbage.bin"), os.path.join(self.tmp, "garbage.png"))
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
