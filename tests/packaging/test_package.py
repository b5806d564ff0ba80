"""./lab package: the Debian package is built, listed, its desktop entries, AppStream file and man
pages validated by their own tools, and its programs run from an unpacked root."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("MSCONV_BUILD_DIR", os.path.join(ROOT, "build"))
APPS = {"io.github.msconvlab.Lab": "msconv-lab", "io.github.msconvlab.Scope": "msconv-scope"}


def version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(\S+ VERSION (\S+)", f.read()).group(1)


def run(*args, timeout=600, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


TOOLS = ("dpkg-deb", "dpkg-shlibdeps", "help2man", "desktop-file-validate", "appstreamcli", "cpack")


@unittest.skipUnless(all(shutil.which(t) for t in TOOLS) and
                     os.path.exists(os.path.join(BUILD, "build.ninja")),
                     "needs ./lab's build folder and " + ", ".join(TOOLS))
class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        r = run(os.path.join(ROOT, "lab"), "package", env=dict(os.environ, MSCONV_BUILD_DIR=BUILD),
                timeout=1800)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
        cls.deb = r.stdout.strip().splitlines()[-1]
        cls.root = tempfile.mkdtemp()
        x = run("dpkg-deb", "-x", cls.deb, cls.root)
        assert x.returncode == 0, x.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def test_file_name_and_control_fields(self):
        arch = run("dpkg", "--print-architecture").stdout.strip()
        self.assertEqual(self.deb, os.path.join(BUILD, "msconv-lab_%s_%s.deb" % (version(), arch)))
        self.assertTrue(os.path.isfile(self.deb))
        fields = run("dpkg-deb", "-f", self.deb, "Package", "Version", "Architecture",
                     "Section", "Depends", "Recommends").stdout
        self.assertIn("Package: msconv-lab\n", fields)
        self.assertIn("Version: %s\n" % version(), fields)
        self.assertIn("Architecture: %s\n" % run("dpkg", "--print-architecture").stdout.strip(),
                      fields)
        self.assertIn("Section: science\n", fields)
        self.assertIn("Recommends: libopenblas0-pthread\n", fields)
        depends = re.search(r"Depends: (.*)", fields).group(1)
        # dpkg-shlibdeps's: the shared libraries the three programs load, by their packages.
        for lib in ("libtorch", "libqt6widgets6", "libopencv-core", "libsqlite3", "libglfw3",
                    "libc6"):
            self.assertIn(lib, depends)

    def test_contents(self):
        listing = run("dpkg-deb", "-c", self.deb).stdout
        paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
        expected = {"/usr/bin/msconv", "/usr/bin/msconv-lab", "/usr/bin/msconv-scope",
                    "/usr/share/metainfo/io.github.msconvlab.Lab.metainfo.xml"}
        for app, program in APPS.items():
            expected.add("/usr/share/applications/%s.desktop" % app)
            expected.add("/usr/share/icons/hicolor/scalable/apps/%s.svg" % app)
            for size in (48, 64, 128, 256):
                expected.add("/usr/share/icons/hicolor/%dx%d/apps/%s.png" % (size, size, app))
            expected.add("/usr/share/man/man1/%s.1" % program)
        expected.add("/usr/share/man/man1/msconv.1")
        self.assertEqual(expected - paths, set())
        # Nothing of the build tree (tests, benchmarks, static libraries) goes in.
        self.assertEqual([p for p in paths if p.endswith((".a", ".h")) or "test" in p], [])

    def test_programs_run_from_the_unpacked_root(self):
        bin_dir = os.path.join(self.root, "usr", "bin")
        r = run(os.path.join(bin_dir, "msconv"), "info", "--list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("msconv-official", r.stdout)
        built = run(os.path.join(BUILD, "bin", "msconv"), "--version").stdout
        self.assertEqual(run(os.path.join(bin_dir, "msconv"), "--version").stdout, built)
        env = dict(os.environ)
        env.pop("DISPLAY", None)
        for program in ("msconv-lab", "msconv-scope"):
            r = run(os.path.join(bin_dir, program), "--version", env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith("%s %s" % (program, version())), r.stdout)

    def test_desktop_entries_icons_and_appstream_validate(self):
        share = os.path.join(self.root, "usr", "share")
        for app, program in APPS.items():
            desktop = os.path.join(share, "applications", app + ".desktop")
            r = run("desktop-file-validate", desktop)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), desktop)
            with open(desktop) as f:
                entry = dict(line.strip().split("=", 1) for line in f if "=" in line)
            self.assertEqual(entry["Exec"].split()[0], program)
            self.assertTrue(os.access(os.path.join(self.root, "usr", "bin", program), os.X_OK))
            self.assertEqual(entry["Icon"], app)
            with open(os.path.join(share, "icons", "hicolor", "256x256", "apps", app + ".png"),
                      "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
            self.assertEqual(int.from_bytes(head[16:20], "big"), 256)  # IHDR width
        r = run("appstreamcli", "validate", "--no-net",
                os.path.join(share, "metainfo", "io.github.msconvlab.Lab.metainfo.xml"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(share, "metainfo", "io.github.msconvlab.Lab.metainfo.xml")) as f:
            self.assertIn('<release version="%s"' % version(), f.read())

    def test_man_pages_are_the_programs_help(self):
        man = os.path.join(self.root, "usr", "share", "man", "man1")
        for program, option in (("msconv", "COMMAND"), ("msconv-lab", "--workspace"),
                                ("msconv-scope", "--screenshot")):
            with open(os.path.join(man, program + ".1")) as f:
                page = f.read()
            self.assertIn("help2man", page.splitlines()[0])
            self.assertRegex(page, r'\.TH "?%s"? "?1"?' % re.escape(program.upper()))
            self.assertIn(option.replace("-", r"\-"), page)
            self.assertIn(version(), page)


if __name__ == "__main__":
    unittest.main()
