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

"""Upper bounds of the architectures' configs.

A model package declares its architecture's config, and a reader builds
what it declares, so every width, depth and kernel has a ceiling well
above any sensible real/bogus network (the largest here, ResNet50, has
2048 channels) and far below what would exhaust a worker's memory.
"""

from __future__ import annotations

__all__ = ["MAX_BLOCKS", "MAX_CHANNELS", "MAX_DENSE_WIDTH", "MAX_KERNEL_SIZE", "check_layer_list"]

from collections.abc import Sequence

MAX_CHANNELS = 4096
"""Most output channels of one convolution."""
MAX_DENSE_WIDTH = 16384
"""Widest hidden dense layer."""
MAX_KERNEL_SIZE = 15
"""Largest convolution kernel side."""
MAX_BLOCKS = 8
"""Most entries of a per-block list (convolution blocks, stages)."""


def check_layer_list(
    name: str, values: Sequence[int], maximum: int, *, odd: bool = False, allow_empty: bool = False
) -> None:
    """Check a list field of layer widths or kernel sizes.

    Parameters
    ----------
    name : `str`
        Field name, for the message.
    values : `~collections.abc.Sequence` [`int`]
        The list.
    maximum : `int`
        Largest allowed entry.
    odd : `bool`, optional
        Whether entries must be odd (kernel sizes).
    allow_empty : `bool`, optional
        Whether the list may be empty.

    Raises
    ------
    ValueError
        Raised with a one-line message if the list is empty (unless
        allowed), longer than
        `MAX_BLOCKS`, or an entry is not in ``[1, maximum]`` (or not odd).
    """
    values = list(values)
    least = 0 if allow_empty else 1
    if not least <= len(values) <= MAX_BLOCKS:
        raise ValueError(f"{name} must have {least} to {MAX_BLOCKS} entries; got {len(values)}")
    if any(not 1 <= v <= maximum or (odd and v % 2 == 0) for v in values):
        kind = "odd integers" if odd else "integers"
        raise ValueError(f"{name} must be {kind} in [1, {maximum}]; got {values}")
