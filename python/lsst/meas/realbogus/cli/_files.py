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

"""The output files of the command-line tools: checked before the work,
written atomically, and never put over a file that is not the tool's own.

Every front end that writes a file (``rb-report -o``, ``rb-train
--package``, ``rb-gallery`` and ``rb-simulate --gallery``) does so in two
steps:

1. `check_output`, before any long work: the path must be a regular file
   or absent (never a directory, device, FIFO or socket, whatever the
   flags); an existing file must be the tool's own output (`is_report`,
   `is_model_package`, `is_gallery`) unless ``--overwrite`` is given; and a
   temporary file must be creatable beside it (this catches ``/proc``,
   read-only file systems, missing directories and permissions before an
   hour of training, not after).
2. `write_atomically`: the file is written as a temporary file in the same
   directory, flushed to disk and renamed over the target, so a kill,
   a full disk or an exception leaves either the old file or the new one,
   never a mixture, and no temporary file behind.

A symbolic link is followed: the file it points to is checked and
replaced, and the link stays.
"""

from __future__ import annotations

__all__ = [
    "GALLERY_SOFTWARE",
    "REPORT_GENERATOR",
    "check_output",
    "is_gallery",
    "is_model_package",
    "is_report",
    "mark_report",
    "tag_gallery_png",
    "write_atomically",
    "write_bytes_atomically",
]

import os
import stat
import struct
import tempfile
import zlib
from collections.abc import Callable

from .._atomicWrite import write_atomically, write_bytes_atomically
from ..errors import CliError

REPORT_GENERATOR = "rb-report (lsst.meas.realbogus)"
"""Content of the ``<meta name='generator'>`` tag that marks an rb-report
page."""

GALLERY_SOFTWARE = "rb-gallery (lsst.meas.realbogus)"
"""Start of the PNG ``Software`` text chunk that marks an rb-gallery
picture (``rb-gallery`` and ``rb-simulate --gallery``)."""

_REPORT_MARKER = f"<meta name='generator' content='{REPORT_GENERATOR}'>"
# Pages written before the marker existed start like this (render_report).
_LEGACY_REPORT_START = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Real/bogus evaluation: "
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SNIFF_BYTES = 65536


def check_output(path: str, *, what: str, is_own: Callable[[str], bool], overwrite: bool, option: str,
                 make_parents: bool = False) -> str:
    """Check, before any long work, that ``path`` may be written.

    Parameters
    ----------
    path : `str`
        The output path the user gave.
    what : `str`
        What the tool writes there, for messages ("an rb-report page").
    is_own : `~collections.abc.Callable` [[`str`], `bool`]
        Whether an existing regular file is this tool's own output, which
        is replaced without ``--overwrite``.
    overwrite : `bool`
        Whether ``--overwrite`` was given: then any existing regular file
        may be replaced.
    option : `str`
        The option or argument that names the path, for messages
        (``-o``, ``--package``).
    make_parents : `bool`, optional
        Create missing parent directories (rb-gallery always has); by
        default the directory must exist.

    Returns
    -------
    target : `str`
        The absolute path to write (a symbolic link resolved).

    Raises
    ------
    lsst.meas.realbogus.errors.CliError
        Raised, with one line, if the path is a directory or another
        non-regular file, if an existing file is not the tool's own output
        and ``overwrite`` is off, or if no file can be created in its
        directory.
    """
    target = os.path.realpath(path)
    if os.path.lexists(target):
        mode = os.stat(target).st_mode
        if stat.S_ISDIR(mode):
            raise CliError(f"{option} {path} is a directory; give a file name.")
        if not stat.S_ISREG(mode):
            raise CliError(f"{option} {path} exists and is not a regular file; refusing to replace it.")
        if not overwrite and not is_own(target):
            raise CliError(f"{option} {path} exists and is not {what}; choose another path, or pass "
                           "--overwrite to replace it.")
    directory = os.path.dirname(target)
    if make_parents and not os.path.isdir(directory):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create the directory of {option} {path}: {_reason(exc)}") from None
    elif not os.path.isdir(directory):
        raise CliError(f"cannot write {option} {path}: directory {directory} does not exist.")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".probe")
    except OSError as exc:
        raise CliError(f"cannot write {option} {path}: {_reason(exc)}") from None
    os.close(fd)
    os.unlink(probe)
    return target


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _head(path: str, size: int = _SNIFF_BYTES) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(size)
    except OSError:
        return b""


# -- the tools' own outputs ---------------------------------------------------


def mark_report(page: str) -> str:
    """Return an rb-report page with the generator tag that `is_report`
    recognizes, at the start of its ``<head>``.
    """
    head = page.find("<head>")
    if head < 0:
        return _REPORT_MARKER + page
    head += len("<head>")
    return page[:head] + _REPORT_MARKER + page[head:]


def is_report(path: str) -> bool:
    """Whether a file is a page rb-report wrote: HTML whose head carries
    its generator tag (or, for pages from before the tag, that starts as
    rb-report's pages do).
    """
    head = _head(path, 4096).decode("utf-8", errors="replace")
    return head.startswith("<!DOCTYPE html>") and (_REPORT_MARKER in head
                                                   or head.startswith(_LEGACY_REPORT_START))


def is_model_package(path: str) -> bool:
    """Whether a file is a valid model package (it reads with
    `~lsst.meas.realbogus.models.ModelPackage.read`, checksums, schema
    and all).
    """
    from ..models import ModelPackage

    if not _head(path, 4).startswith(b"PK"):
        return False
    try:
        ModelPackage.read(path)
    except Exception:
        return False
    return True


def is_gallery(path: str) -> bool:
    """Whether a file is a PNG that rb-gallery wrote: its ``Software``
    text chunk starts with `GALLERY_SOFTWARE`.
    """
    head = _head(path)
    if not head.startswith(_PNG_SIGNATURE):
        return False
    for kind, data in _chunks(head):
        if kind == b"tEXt":
            keyword, _, text = data.partition(b"\0")
            if keyword == b"Software" and text.startswith(GALLERY_SOFTWARE.encode()):
                return True
        if kind == b"IDAT":
            break
    return False


def tag_gallery_png(path: str) -> None:
    """Mark a PNG file as rb-gallery's: put a ``Software`` text chunk
    naming rb-gallery (and what drew it) right after the header, in place
    of any other ``Software`` chunk.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file.")
    chunks = list(_chunks(data))
    drawn_by = [text for kind, body in chunks if kind == b"tEXt"
                for keyword, _, text in [body.partition(b"\0")] if keyword == b"Software"]
    software = GALLERY_SOFTWARE.encode() + (b"; " + drawn_by[0] if drawn_by else b"")
    out = [_PNG_SIGNATURE]
    for i, (kind, body) in enumerate(chunks):
        if kind == b"tEXt" and body.partition(b"\0")[0] == b"Software":
            continue
        out.append(_chunk(kind, body))
        if i == 0:  # after IHDR
            out.append(_chunk(b"tEXt", b"Software\0" + software))
    with open(path, "wb") as stream:
        stream.write(b"".join(out))


def _chunks(data: bytes):
    """Yield (type, data) of the PNG chunks in ``data`` (which may be cut
    short: the incomplete last chunk is not yielded).
    """
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 8 + length + 4
        if end > len(data):
            return
        yield kind, data[offset + 8:offset + 8 + length]
        offset = end


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
