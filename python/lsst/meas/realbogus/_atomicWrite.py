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

"""Atomic file writes: a temporary file in the target's directory, synced
and renamed over it, so a kill, a full disk or an exception leaves either
the old file or the new one, never a mixture, and no temporary file behind.

The command-line tools (`lsst.meas.realbogus.cli`) write their outputs with
it and the simulator its incomplete-world marker.
"""

from __future__ import annotations

__all__ = ["write_atomically", "write_bytes_atomically"]

import os
import stat
import tempfile
from collections.abc import Callable


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Write a file through a temporary file in its directory and an
    atomic rename.

    Parameters
    ----------
    path : `str`
        The file to write (as returned by `check_output`).
    write : `~collections.abc.Callable` [[`str`], `None`]
        Writes the whole content to the temporary path it is given.

    Raises
    ------
    OSError
        Raised if writing, syncing or renaming fails; ``path`` is then
        untouched and the temporary file removed.

    Notes
    -----
    The new file gets the permissions a plain ``open(path, "w")`` would
    give it (``0o666`` less the umask), or those of the file it replaces.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_bytes_atomically(path: str, data: bytes) -> None:
    """`write_atomically` for content already in memory."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as stream:
            stream.write(data)

    write_atomically(path, write)


def _mode_for(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
