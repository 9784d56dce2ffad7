# This file is part of meas_realbogus.
#
# Developed for the LSST Data Management System.
# This product includes software developed by the LSST Project
# (https://www.lsst.org).
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

"""The command-line tools' outputs (checked first, written atomically, never
over a file that is not their own), the simulator's view of its target
path, and what the tools say about ``-C`` config files.
"""

import contextlib
import errno
import io
import os
import shutil
import stat
import struct
import tempfile
import unittest
import zlib
from unittest import mock

import lsst.utils.tests
from lsst.meas.realbogus.cli import _files
from lsst.meas.realbogus.cli._files import (
    check_output,
    is_gallery,
    is_model_package,
    is_report,
    mark_report,
    tag_gallery_png,
    write_bytes_atomically,
)
from lsst.meas.realbogus.errors import CliError
from lsst.meas.realbogus.simulation import INCOMPLETE_MARKER, world_state
from lsst.meas.realbogus.tests import package_dir


def _png(text_chunks=()):
    """A valid 1x1 grey PNG with the given (keyword, text) chunks."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    texts = b"".join(chunk(b"tEXt", k.encode() + b"\0" + t.encode()) for k, t in text_chunks)
    return (b"\x89PNG\r\n\x1a\n" + header + texts + chunk(b"IDAT", zlib.compress(b"\0\x80"))
            + chunk(b"IEND", b""))


class CheckOutputTestCase(lsst.utils.tests.TestCase):
    """`check_output`: what may be written, decided before any work."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_outputs_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def check(self, path, is_own=lambda p: False, overwrite=False):
        return check_output(path, what="an rb-test file", is_own=is_own, overwrite=overwrite, option="-o")

    def write(self, name, data=b"precious"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as stream:
            stream.write(data)
        return path

    def test_new_file_and_own_output_are_fine_and_nothing_is_left(self):
        path = os.path.join(self.tmp, "new.html")
        self.assertEqual(self.check(path), path)
        own = self.write("own.html")
        self.assertEqual(self.check(own, is_own=lambda p: True), own)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["own.html"])  # the probe is gone

    def test_foreign_file_refused_unless_overwrite(self):
        path = self.write("gen3.sqlite3")
        with self.assertRaisesRegex(CliError, r"-o .*gen3.sqlite3 exists and is not an rb-test file; "
                                    r".*--overwrite"):
            self.check(path)
        self.assertEqual(self.check(path, overwrite=True), path)
        with open(path, "rb") as stream:
            self.assertEqual(stream.read(), b"precious")

    def test_directories_and_devices_refused_even_with_overwrite(self):
        with self.assertRaisesRegex(CliError, "is a directory"):
            self.check(self.tmp, overwrite=True)
        with self.assertRaisesRegex(CliError, "not a regular file"):
            self.check(os.devnull, overwrite=True)

    def test_unwritable_places_refused(self):
        with self.assertRaisesRegex(CliError, "cannot write -o /proc/model.zip"):
            self.check("/proc/model.zip")
        with self.assertRaisesRegex(CliError, "does not exist"):
            self.check(os.path.join(self.tmp, "no", "such", "dir.html"))

    def test_symlink_is_followed(self):
        target = self.write("target.html")
        link = os.path.join(self.tmp, "link.html")
        os.symlink(target, link)
        self.assertEqual(self.check(link, overwrite=True), target)


class WriteAtomicallyTestCase(lsst.utils.tests.TestCase):
    """`write_bytes_atomically`: the old file or the new one, never a mix."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_atomic_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.path = os.path.join(self.tmp, "out.bin")

    def test_write_and_replace(self):
        write_bytes_atomically(self.path, b"one")
        write_bytes_atomically(self.path, b"two")
        with open(self.path, "rb") as stream:
            self.assertEqual(stream.read(), b"two")
        self.assertEqual(os.listdir(self.tmp), ["out.bin"])
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o666 & ~umask)

    def test_failure_keeps_the_old_file_and_leaves_no_temporary(self):
        write_bytes_atomically(self.path, b"old")
        full = OSError(errno.ENOSPC, "No space left on device")
        with mock.patch.object(_files.os, "fsync", side_effect=full):
            with self.assertRaises(OSError):
                write_bytes_atomically(self.path, b"new" * 1000)
        with open(self.path, "rb") as stream:
            self.assertEqual(stream.read(), b"old")
        self.assertEqual(os.listdir(self.tmp), ["out.bin"])


class OwnOutputTestCase(lsst.utils.tests.TestCase):
    """How each tool recognizes its own output."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_own_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as stream:
            stream.write(data)
        return path

    def test_report_marker(self):
        page = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>x</title></head><body></body></html>"
        self.assertTrue(is_report(self.write("marked.html", mark_report(page).encode())))
        self.assertFalse(is_report(self.write("plain.html", page.encode())))
        self.assertFalse(is_report(self.write("registry", b"SQLite format 3\0" + bytes(100))))
        legacy = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Real/bogus evaluation: DC2 "
                  "tract 4024")
        self.assertTrue(is_report(self.write("legacy.html", legacy.encode())))

    def test_gallery_text_chunk(self):
        drawn = self.write("drawn.png", _png([("Software", "Matplotlib version3.10")]))
        self.assertFalse(is_gallery(drawn))
        tag_gallery_png(drawn)
        self.assertTrue(is_gallery(drawn))
        with open(drawn, "rb") as stream:
            data = stream.read()
        # One Software chunk, naming both; the image still decodes.
        self.assertEqual(data.count(b"tEXtSoftware"), 1)
        self.assertIn(b"rb-gallery (lsst.meas.realbogus); Matplotlib version3.10", data)
        import matplotlib.image

        self.assertEqual(matplotlib.image.imread(io.BytesIO(data)).shape[:2], (1, 1))
        self.assertFalse(is_gallery(self.write("other.png", _png([("Software", "GIMP")]))))
        self.assertFalse(is_gallery(self.write("text.png", b"not a png")))

    def test_model_package(self):
        from lsst.meas.realbogus.models import ModelPackage, build_model, make_model_config
        from lsst.meas.realbogus.triplets import CutoutConfig

        config = make_model_config("rbcnn", {})
        package = ModelPackage.from_model(build_model("rbcnn", 51, config), architecture="rbcnn",
                                          model_config=config.toDict(), cutout_config=CutoutConfig())
        path = os.path.join(self.tmp, "model.zip")
        package.write(path)
        self.assertTrue(is_model_package(path))
        with open(path, "rb") as stream:
            data = stream.read()
        self.assertFalse(is_model_package(self.write("cut.zip", data[: len(data) // 2])))
        self.assertFalse(is_model_package(self.write("notes.txt", b"PK but not a zip")))


def _run(main, *argv):
    """Run a CLI entry point in this process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _snapshot(path):
    with open(path, "rb") as stream:
        return stream.read(), os.stat(path).st_mtime_ns


class CliOutputTestCase(lsst.utils.tests.TestCase):
    """The tools refuse, with one line and exit status 2, an output path that
    would replace a file they did not write, and leave that file untouched.
    """

    @classmethod
    def setUpClass(cls):
        from lsst.daf.butler import Butler

        cls.tmp = tempfile.mkdtemp(prefix="rb_cli_outputs_")
        cls.repo = os.path.join(cls.tmp, "repo")
        Butler.makeRepo(cls.repo)
        cls.registry = os.path.join(cls.repo, "gen3.sqlite3")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_one_line(self, err, prog, fragment):
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith(f"{prog}: error: "), lines[0])
        self.assertIn(fragment, lines[0])

    def test_report_refuses_to_replace_the_registry(self):
        from lsst.daf.butler import Butler
        from lsst.meas.realbogus.cli.report import main

        before = _snapshot(self.registry)
        code, out, err = _run(main, self.repo, "-i", "u/me/eval", "--tract", "4024", "-o", self.registry)
        self.assertEqual(code, 2)
        self.assert_one_line(err, "rb-report", f"-o {self.registry} exists and is not an rb-report page; "
                             "choose another path, or pass --overwrite to replace it.")
        self.assertEqual(out, "")
        self.assertEqual(_snapshot(self.registry), before)
        Butler.from_config(self.repo).collections.query("*")  # the registry still opens
        self.assertEqual(sorted(os.listdir(self.repo)), ["butler.yaml", "gen3.sqlite3"])

    def test_report_checks_the_path_before_the_repository(self):
        from lsst.meas.realbogus.cli.report import main

        code, _, err = _run(main, os.path.join(self.tmp, "no-such-repo"), "-i", "x", "--tract", "4024",
                            "-o", "/proc/report.html")
        self.assertEqual(code, 2)
        self.assert_one_line(err, "rb-report", "cannot write -o /proc/report.html")

    def test_gallery_refuses_to_replace_a_foreign_file(self):
        from lsst.meas.realbogus.cli.gallery import main

        config = os.path.join(self.repo, "butler.yaml")
        before = _snapshot(config)
        code, _, err = _run(main, self.repo, config)
        self.assertEqual(code, 2)
        self.assert_one_line(err, "rb-gallery", f"OUTPUT {config} exists and is not an rb-gallery PNG")
        self.assertEqual(_snapshot(config), before)

    def test_simulate_checks_its_gallery_before_simulating(self):
        from lsst.meas.realbogus.cli.simulate import main

        root = os.path.join(self.tmp, "world")
        with mock.patch("lsst.meas.realbogus.cli.simulate.Simulator") as never:
            code, _, err = _run(main, root, "--preset", "ci", "--gallery", self.registry)
        self.assertEqual(code, 2)
        self.assert_one_line(err, "rb-simulate", f"--gallery {self.registry} exists and is not an "
                             "rb-gallery PNG")
        never.assert_not_called()
        self.assertFalse(os.path.exists(root))


    def test_simulate_ctrl_c_in_the_gallery_is_one_line(self):
        from lsst.meas.realbogus.cli.simulate import main
        from lsst.meas.realbogus.simulation import SimulationSummary

        root, png = os.path.join(self.tmp, "drawn"), os.path.join(self.tmp, "gallery.png")
        draw = "lsst.meas.realbogus.cli.gallery.write_gallery_file"
        with mock.patch("lsst.meas.realbogus.cli.simulate.Simulator") as simulator, \
                mock.patch(draw, side_effect=KeyboardInterrupt):
            simulator.return_value.run.return_value = SimulationSummary()
            code, _, err = _run(main, root, "--preset", "ci", "--gallery", png)
        self.assertEqual(code, 130)
        self.assertEqual(err.strip().splitlines(), [
            "rb-simulate: interrupted; the repository is complete, but the gallery was not written "
            "(rb-gallery draws it)."])
        self.assertFalse(os.path.exists(png))


class WorldStateTestCase(lsst.utils.tests.TestCase):
    """`world_state`: what the simulator's target path holds."""

    def test_states(self):
        tmp = tempfile.mkdtemp(prefix="rb_state_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        root = os.path.join(tmp, "r")
        self.assertEqual(world_state(root), "absent")
        os.makedirs(root)
        self.assertEqual(world_state(root), "empty")
        open(os.path.join(root, "notes.txt"), "w").close()
        self.assertEqual(world_state(root), "foreign")
        open(os.path.join(root, "butler.yaml"), "w").close()
        self.assertEqual(world_state(root), "repository")
        open(os.path.join(root, INCOMPLETE_MARKER), "w").close()
        self.assertEqual(world_state(root), "incomplete")
        self.assertEqual(world_state(os.path.join(root, "notes.txt")), "file")


class ConfigFilesArePythonTestCase(lsst.utils.tests.TestCase):
    """``-C`` files are Python that runs with the user's permissions (by
    design, as pipetask's); the README and every ``--help`` say so.
    """

    def test_readme_and_help_say_config_files_are_python(self):
        from lsst.meas.realbogus.cli.simulate import _parser as simulate_parser
        from lsst.meas.realbogus.cli.train import _parser as train_parser

        with open(package_dir() / "README.rst") as stream:
            readme = " ".join(stream.read().split())
        for command in ("rb-simulate", "rb-train"):
            with self.subTest(command=command):
                sentence = f"``-C`` files of ``{command}`` are Python: they run with your permissions"
                self.assertTrue(sentence in readme, f"README.rst lacks: {sentence}")
        for parser in (simulate_parser(), train_parser()):
            with self.subTest(prog=parser.prog):
                help_text = " ".join(parser.format_help().split())
                self.assertRegex(help_text, r"-C.*executed as Python code: use only files you trust")

    def test_a_config_file_runs_its_code(self):
        """What the warning is about: loading a -C file runs it."""
        from lsst.meas.realbogus.cli._options import apply_config_overrides
        from lsst.meas.realbogus.simulation import make_config

        tmp = tempfile.mkdtemp(prefix="rb_cfile_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        witness = os.path.join(tmp, "ran")
        path = os.path.join(tmp, "overrides.py")
        with open(path, "w") as stream:
            stream.write(f"open({witness!r}, 'w').close()\nconfig.seed = 3\n")
        config = make_config("ci")
        apply_config_overrides(config, [path], [])
        self.assertEqual(config.seed, 3)
        self.assertTrue(os.path.exists(witness))


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
