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

"""Transitional: the names this module held, now in the modules that
implement them, for the modules of other stages that still import
``triplets._cutouts``. New code imports from `lsst.meas.realbogus.triplets`;
remove this module once nothing imports it.

- `CHANNELS`, `CutoutConfig`: ``_contract``
- `stamp_origin`, `extract_stamps`: ``_stamps``
- `ImagePlanes`, `Triplets`, `extract_triplets`: ``_extractTriplets``
- `planes_from_image`, `check_same_grid`, `extract_triplets_from_images`,
  `TripletImagesConfig`: ``_images``
"""

from __future__ import annotations

__all__ = [
    "CHANNELS",
    "CutoutConfig",
    "ImagePlanes",
    "TripletImagesConfig",
    "Triplets",
    "check_same_grid",
    "extract_stamps",
    "extract_triplets",
    "extract_triplets_from_images",
    "planes_from_image",
    "stamp_origin",
]

from ._contract import CHANNELS, CutoutConfig
from ._extractTriplets import ImagePlanes, Triplets, extract_triplets
from ._images import TripletImagesConfig, check_same_grid, extract_triplets_from_images, planes_from_image
from ._stamps import extract_stamps, stamp_origin
