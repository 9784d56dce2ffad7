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

"""Reading a model package's archive with hard limits that do not trust it.

A model package is a file anyone can hand to a Prompt Processing worker,
so nothing in it is believed before it is checked, and nothing large is
allocated on its word: the archive's members are streamed with a byte
budget (a member's declared size may lie), only stored and deflated
members are read (zipfile inflates bzip2 and LZMA members in one call, with
no bound on the output), names must be unique and known, the JSON metadata
is small and shallow, and the weights' safetensors header is parsed and
checked (dtypes, shapes, offsets) before the tensors are decoded.
"""

from __future__ import annotations

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_PACKAGE_BYTES",
    "MAX_WEIGHTS_BYTES",
    "TensorSpec",
    "parse_json",
    "read_members",
    "safetensors_header",
]

import dataclasses
import io
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

from ..errors import ModelPackageError

MAX_PACKAGE_BYTES = 512 * 1024**2
"""Largest package file read (ResNet50's package is 94 MB)."""
MAX_WEIGHTS_BYTES = 512 * 1024**2
"""Largest ``weights.safetensors`` once inflated."""
MAX_METADATA_BYTES = 1024**2
"""Largest ``metadata.json`` once inflated (a 100-epoch history is ~30 kB)."""
MAX_JSON_DEPTH = 16
"""Deepest nesting of lists and objects in the metadata."""
MAX_JSON_NUMBER_DIGITS = 40
"""Longest number literal in the metadata."""

_ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_CHUNK = 1024**2

# safetensors dtype codes and their sizes in bytes.
_DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """What the safetensors header says of one tensor."""

    dtype: str
    shape: tuple[int, ...]


def read_members(
    source: str | bytes, limits: Mapping[str, int], name: str = "model package"
) -> dict[str, bytes]:
    """Read exactly the named members of a zip archive, each within a byte
    budget.

    Parameters
    ----------
    source : `str` or `bytes`
        Path of the archive, or its bytes.
    limits : `~collections.abc.Mapping` [`str`, `int`]
        Every member the archive must hold, with the most bytes it may
        inflate to; any other member is refused.
    name : `str`, optional
        Name of the archive in messages.

    Returns
    -------
    members : `dict` [`str`, `bytes`]

    Raises
    ------
    lsst.meas.realbogus.errors.ModelPackageError
        Raised with a one-line message for an unreadable, oversized or
        malformed archive.
    """
    size = len(source) if isinstance(source, bytes) else _file_size(source, name)
    if size > MAX_PACKAGE_BYTES:
        raise ModelPackageError(f"{name} is {size} bytes; a model package is at most {MAX_PACKAGE_BYTES}.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as err:
        raise ModelPackageError(f"{name} is not a model package (zip): {err}") from None
    except OSError as err:
        raise ModelPackageError(f"cannot read model package {name}: {err.strerror or err}") from None
    with archive:
        infos = _check_directory(archive, limits, name)
        return {info.filename: _read_bounded(archive, info, limits[info.filename], name) for info in infos}


def _file_size(path: str, name: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as err:
        raise ModelPackageError(f"cannot read model package {name}: {err.strerror or err}") from None


def _check_directory(archive: zipfile.ZipFile, limits: Mapping[str, int], name: str) -> list[zipfile.ZipInfo]:
    """Check the central directory: unique, known, present members, of
    allowed compression and declared sizes within budget.
    """
    infos = archive.infolist()
    names = [info.filename for info in infos]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ModelPackageError(f"{name} holds {repeated[0]!r} more than once; a model package names each "
                                "member once.")
    unknown = sorted(set(names) - set(limits))
    if unknown:
        raise ModelPackageError(f"{name} holds an unexpected member {unknown[0]!r}; a model package holds "
                                f"only {', '.join(sorted(limits))}.")
    for member in sorted(limits):
        if member not in names:
            raise ModelPackageError(f"{name} has no {member}.")
    for info in infos:
        if info.compress_type not in _ALLOWED_COMPRESSION:
            raise ModelPackageError(f"{name}: {info.filename} uses zip compression method "
                                    f"{info.compress_type}; "
                                    "a model package's members are stored or deflated.")
        if info.file_size > limits[info.filename]:
            raise ModelPackageError(f"{name}: {info.filename} declares {info.file_size} bytes; at most "
                                    f"{limits[info.filename]} are read.")
    return infos


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str) -> bytes:
    """Stream one member, refusing it as soon as it inflates past ``limit``
    (whatever its declared size says).
    """
    chunks, total = [], 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise ModelPackageError(f"{name}: {info.filename} inflates to more than {limit} bytes.")
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as err:
        raise ModelPackageError(f"{name} is corrupt: {info.filename}: {err}") from None
    return b"".join(chunks)


def parse_json(raw: bytes, what: str) -> Any:
    """Parse small, shallow JSON.

    Parameters
    ----------
    raw : `bytes`
        UTF-8 JSON text, already within its byte budget.
    what : `str`
        Its name in messages.

    Raises
    ------
    lsst.meas.realbogus.errors.ModelPackageError
        Raised if it is not JSON, nests deeper than `MAX_JSON_DEPTH`, or
        holds a number literal longer than `MAX_JSON_NUMBER_DIGITS`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelPackageError(f"{what} is not valid JSON: {err}") from None
    _check_depth(text, what)
    try:
        return json.loads(text, parse_int=_bounded_number(int, what),
                          parse_float=_bounded_number(float, what), parse_constant=_no_constant(what))
    except json.JSONDecodeError as err:
        raise ModelPackageError(f"{what} is not valid JSON: {err}") from None
    except (RecursionError, ValueError) as err:
        raise ModelPackageError(f"{what} is not valid JSON: {str(err).splitlines()[0]}") from None


def _check_depth(text: str, what: str) -> None:
    """Refuse nesting deeper than `MAX_JSON_DEPTH` before the parser
    recurses into it (brackets inside strings are skipped).
    """
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ModelPackageError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels.")
        elif char in "]}":
            depth -= 1


def _bounded_number(kind: type, what: str):
    def parse(literal: str) -> int | float:
        if len(literal) > MAX_JSON_NUMBER_DIGITS:
            raise ModelPackageError(f"{what} holds a number of {len(literal)} characters; at most "
                                    f"{MAX_JSON_NUMBER_DIGITS} are read.")
        return kind(literal)

    return parse


def _no_constant(what: str):
    def parse(literal: str) -> None:
        raise ModelPackageError(f"{what} holds {literal}, which is not JSON.")

    return parse


def safetensors_header(data: bytes, what: str) -> dict[str, TensorSpec]:
    """Read and check the header of a safetensors serialization without
    decoding any tensor.

    Parameters
    ----------
    data : `bytes`
        The serialization.
    what : `str`
        Its name in messages.

    Returns
    -------
    tensors : `dict` [`str`, `TensorSpec`]
        Dtype and shape of every tensor.

    Raises
    ------
    lsst.meas.realbogus.errors.ModelPackageError
        Raised if the header is malformed, or its offsets do not tile the
        data exactly as its dtypes and shapes require.
    """
    if len(data) < 8:
        raise ModelPackageError(f"{what} is corrupt: too short for a safetensors header.")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(len(data) - 8, MAX_METADATA_BYTES):
        raise ModelPackageError(f"{what} is corrupt: its header claims {length} bytes.")
    try:
        header = parse_json(data[8 : 8 + length], "its header")
    except ModelPackageError as err:
        raise ModelPackageError(f"{what} is corrupt: {err}") from None
    if not isinstance(header, dict):
        raise ModelPackageError(f"{what} is corrupt: its header is not an object.")
    tensors, spans = {}, []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        tensors[key], span = _tensor_entry(key, entry, what)
        spans.append(span)
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise ModelPackageError(f"{what} is corrupt: tensor data overlap or leave gaps.")
        end = stop
    if 8 + length + end != len(data):
        raise ModelPackageError(f"{what} is corrupt: its tensors take {end} bytes but "
                                f"{len(data) - 8 - length} follow the header.")
    return tensors


def _tensor_entry(key: str, entry: Any, what: str) -> tuple[TensorSpec, tuple[int, int]]:
    try:
        dtype, shape, (start, stop) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        valid = (dtype in _DTYPE_SIZES and all(isinstance(n, int) and n >= 0 for n in shape)
                 and isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop)
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        raise ModelPackageError(f"{what} is corrupt: tensor {key!r} has a malformed header entry.")
    count = 1
    for n in shape:
        count *= n
    if (stop - start) != count * _DTYPE_SIZES[dtype]:
        raise ModelPackageError(f"{what} is corrupt: tensor {key!r} takes {stop - start} bytes, not the "
                                f"{count * _DTYPE_SIZES[dtype]} its shape needs.")
    return TensorSpec(dtype, shape), (start, stop)
