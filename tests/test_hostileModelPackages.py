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

"""Crafted model packages that lie (issue: hostile inputs, rows 1 to 4):
every one is refused with a one-line ModelPackageError, and reading all of
them costs the process less than 1 GB (measured under a memory limit, so a
regression fails here instead of exhausting the machine).
"""

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import unittest
import zipfile
import zlib

import torch
from safetensors.torch import save as save_safetensors

import lsst.utils.tests
from lsst.meas.realbogus.errors import ModelPackageError
from lsst.meas.realbogus.models import ModelPackage, build_model, make_model_config
from lsst.meas.realbogus.triplets import CutoutConfig

MiB = 1024**2


def good_package(name="rbcnn", **config_values):
    torch.manual_seed(0)
    config = make_model_config(name, config_values)
    return ModelPackage.from_model(build_model(name, 51, config), architecture=name,
                                   model_config=config.toDict(), cutout_config=CutoutConfig())


def members_of(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def archive(members, compression=zipfile.ZIP_STORED):
    """A zip of (name, bytes) pairs, repeated names allowed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as out:
        for name, data in members:
            with warnings_off():
                out.writestr(name, data)
    return buffer.getvalue()


class warnings_off:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def with_state(package, state, **meta_changes):
    """A package whose weights are ``state`` with a consistent checksum and
    version (a well-formed lie), and metadata changes applied.
    """
    weights = save_safetensors(state)
    meta = json.loads(members_of(package.to_bytes())["metadata.json"])
    meta["weightsSha256"] = hashlib.sha256(weights).hexdigest()
    meta["version"] = f"{meta['architecture']}-{meta['weightsSha256'][:12]}"
    for key, value in meta_changes.items():
        meta[key] = value
    return archive([("metadata.json", json.dumps(meta).encode()), ("weights.safetensors", weights)])


def patch_declared_size(data, member, size):
    """Rewrite the uncompressed size a zip declares for ``member`` (local
    header and central directory), leaving its data as it is.
    """
    data = bytearray(data)
    name = member.encode()
    for signature, offset, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            length_at = start + name_at - (4 if signature == b"PK\x03\x04" else 18)
            (length,) = struct.unpack_from("<H", data, length_at)
            if data[start + name_at : start + name_at + length] == name:
                struct.pack_into("<I", data, start + offset, size)
            start += 4
    return bytes(data)


def deflate_bomb(inflated_bytes):
    """A raw deflate stream of zeros and its CRC, made in 1 MiB steps."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk, parts, crc = bytes(MiB), [], 0
    for _ in range(inflated_bytes // MiB):
        parts.append(compressor.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(compressor.flush())
    return b"".join(parts), crc


def lying_deflate_archive(good, inflated_bytes, declared_bytes):
    """metadata.json of ``good`` plus a deflated weights member that
    declares ``declared_bytes`` but inflates to ``inflated_bytes``.
    """
    members = members_of(good.to_bytes())
    small = archive([("metadata.json", members["metadata.json"]), ("weights.safetensors", b"x")],
                    compression=zipfile.ZIP_DEFLATED)
    stream, crc = deflate_bomb(inflated_bytes)
    # Rebuild by hand: zipfile cannot write a member whose sizes lie.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("metadata.json", members["metadata.json"])
        info = zipfile.ZipInfo("weights.safetensors", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.CRC, info.compress_size, info.file_size = crc, len(stream), declared_bytes
        out.fp.write(info.FileHeader(zip64=False))
        info.header_offset = out.fp.tell() - len(info.FileHeader(zip64=False))
        out.fp.write(stream)
        out.filelist.append(info)
        out.NameToInfo[info.filename] = info
        out.start_dir = out.fp.tell()
    del small
    return buffer.getvalue()


def crafted_packages():
    """The heaviest crafted packages of the tests above, by name: what the
    memory test reads.
    """
    good = good_package()
    members = members_of(good.to_bytes())
    meta = json.loads(members["metadata.json"])
    huge_model = dict(meta, modelConfig=dict(meta["modelConfig"], channels=[4096] * 3, denseWidth=16384))
    state = good.state_dict()
    return {
        "lyingDeflate600MiB": lying_deflate_archive(good, 600 * MiB, 1024),
        "declared3.9GiB": patch_declared_size(good.to_bytes(), "weights.safetensors", int(3.9 * 1024**3)),
        "bzip2": archive(list(members.items()), compression=zipfile.ZIP_BZIP2),
        "metadata2MiB": archive([("metadata.json", json.dumps(dict(meta, training={"h": [0] * MiB})).encode(),
                                  ),
                                 ("weights.safetensors", members["weights.safetensors"])],
                                compression=zipfile.ZIP_DEFLATED),
        "architecture2.4e9": archive([("metadata.json", json.dumps(huge_model).encode()),
                                      ("weights.safetensors", members["weights.safetensors"])]),
        "deepJson": archive([("metadata.json", b"[" * 100_000 + b"]" * 100_000),
                             ("weights.safetensors", members["weights.safetensors"])]),
        "overflowingWeights": with_state(good, {k: v * 1e30 for k, v in state.items()}),
    }


class HostilePackageTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.good = good_package()
        cls.members = members_of(cls.good.to_bytes())
        cls.meta = json.loads(cls.members["metadata.json"])

    def refuse(self, data, pattern):
        with self.assertRaisesRegex(ModelPackageError, pattern) as cm:
            ModelPackage.from_bytes(data, source="pkg.zip").build_model()
        self.assertNotIn("\n", str(cm.exception))
        return cm.exception

    def with_metadata(self, meta):
        return archive([("metadata.json", json.dumps(meta).encode()),
                        ("weights.safetensors", self.members["weights.safetensors"])])

    # -- row 1: weights that give NaN scores ---------------------------------

    def test_nan_bias_refused_at_load(self):
        state = self.good.state_dict()
        state["classifier.4.bias"] = torch.full_like(state["classifier.4.bias"], float("nan"))
        self.refuse(with_state(self.good, state), r"classifier\.4\.bias hold NaN or infinite")

    def test_overflowing_finite_weights_refused_by_the_probe(self):
        state = {k: v * 1e30 if v.is_floating_point() else v for k, v in self.good.state_dict().items()}
        self.refuse(with_state(self.good, state), "non-finite logits on the probe batch")

    # -- row 2: archives whose sizes lie ------------------------------------

    def test_bzip2_member_refused_before_inflating(self):
        # Declares a tiny size; would inflate to 64 MiB in one call.
        import bz2

        bomb = bz2.compress(bytes(64 * MiB))
        data = archive([("metadata.json", self.members["metadata.json"]), ("weights.safetensors", b"x")],
                       compression=zipfile.ZIP_BZIP2)
        self.assertLess(len(bomb), 64 * 1024)
        self.refuse(data, "compression method 12; a model package's members are stored or deflated")

    def test_deflate_member_that_declares_less_than_it_inflates(self):
        data = lying_deflate_archive(self.good, inflated_bytes=600 * MiB, declared_bytes=1024)
        self.assertLess(len(data), 2 * MiB)
        self.refuse(data, "is corrupt|inflates to more than")

    def test_honest_huge_member_refused_by_its_declared_size(self):
        data = patch_declared_size(self.good.to_bytes(), "weights.safetensors", int(3.9 * 1024**3))
        self.refuse(data, r"weights\.safetensors declares 4187593113 bytes; at most 536870912 are read")

    def test_oversized_metadata_refused(self):
        meta = dict(self.meta, training={"history": [0] * (600 * 1024)})
        data = archive([("metadata.json", json.dumps(meta).encode()),
                        ("weights.safetensors", self.members["weights.safetensors"])],
                       compression=zipfile.ZIP_DEFLATED)
        self.assertLess(len(data), MiB)
        self.refuse(data, r"metadata\.json declares \d+ bytes; at most 1048576 are read")

    # -- row 3: metadata that makes the reader allocate ---------------------

    def test_architecture_fields_are_bounded(self):
        for key, value in (("denseWidth", 2_000_000), ("kernelSize", 999), ("channels", [10**6, 32, 64]),
                           ("channels", [16] * 100)):
            with self.subTest(key=key, value=str(value)[:20]):
                meta = json.loads(self.members["metadata.json"])
                meta["modelConfig"][key] = value
                self.refuse(self.with_metadata(meta), "unusable architecture")

    def test_architecture_too_large_is_refused_before_allocation(self):
        # Every field within its bound, the whole 2.4e9 parameters: refused
        # from the meta-device copy (building it for real needs 10 GB).
        meta = json.loads(self.members["metadata.json"])
        meta["modelConfig"].update(channels=[4096, 4096, 4096], denseWidth=16384)
        self.refuse(self.with_metadata(meta), r"with \d+ parameters; at most 100000000 are built")

    # -- row 4: wrong dtypes, swapped files, hostile JSON, repeated names ---

    def test_weights_of_another_dtype_are_refused(self):
        for dtype in (torch.int8, torch.uint8, torch.bool, torch.int64, torch.float64, torch.float16):
            with self.subTest(dtype=str(dtype)):
                state = {k: (v.to(dtype) if v.is_floating_point() else v)
                         for k, v in self.good.state_dict().items()}
                self.refuse(with_state(self.good, state), "do not fit architecture 'rbcnn'.*dtype")
        state = dict(self.good.state_dict())
        state["classifier.4.bias"] = state["classifier.4.bias"].to(torch.complex64)
        self.refuse(with_state(self.good, state), "weights.safetensors is corrupt|dtype")

    def test_package_claiming_another_packages_version_is_refused(self):
        other = good_package(denseWidth=32, dropout=0.1)
        torch.manual_seed(5)
        swapped = with_state(self.good, build_model("rbcnn", 51).state_dict(), version=self.good.version)
        self.refuse(swapped, f"version '{self.good.version}' does not name its weights")
        self.assertEqual(ModelPackage.from_bytes(other.to_bytes()).version, other.version)

    def test_hostile_json_gives_one_line_errors(self):
        weights = self.members["weights.safetensors"]
        for text, pattern in (("[" * 100_000 + "]" * 100_000, "nests deeper than 16 levels"),
                              ('{"formatVersion": 1' + "0" * 5000 + "}", "number of 5001 characters"),
                              ('{"formatVersion": NaN}', "holds NaN, which is not JSON")):
            with self.subTest(pattern=pattern):
                self.refuse(archive([("metadata.json", text.encode()), ("weights.safetensors", weights)]),
                            pattern)

    def test_repeated_and_unknown_members_are_refused(self):
        m = self.members
        self.refuse(archive([("metadata.json", m["metadata.json"]), ("weights.safetensors", b"evil"),
                             ("weights.safetensors", m["weights.safetensors"])]),
                    "holds 'weights.safetensors' more than once")
        self.refuse(archive([*m.items(), ("payload.py", b"import os")]), "unexpected member 'payload.py'")

    # -- the memory bound ----------------------------------------------------

    def test_reading_every_crafted_package_costs_under_1_gb(self):
        """Run the crafted reads in a child under RLIMIT_DATA (its imports
        plus 1.5 GB): a regression dies there with MemoryError, and the
        child reports its peak RSS above its footprint after the imports.
        """
        here = os.path.dirname(os.path.abspath(__file__))
        result = subprocess.run([sys.executable, os.path.join(here, "readCraftedPackages.py")],
                                capture_output=True, text=True, timeout=600, cwd=here)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        report = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(report["refused"], report["cases"], report)
        self.assertLess(report["peakAboveFootprintBytes"], 1024**3, report)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
