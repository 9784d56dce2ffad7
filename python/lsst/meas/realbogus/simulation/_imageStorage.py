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

"""How the simulator's repositories store images.

lsst.images' formatter compresses every plane with lossless GZIP_2 in one
tile per image row: writing a 512x512 visit image then costs 0.56 s and
reading it back 0.26 s here, most of the simulation and of
``buildTriplets``. Simulated float noise barely compresses (1.36 MB against
3.21 MB), so the simulator's repositories store the image and variance
planes uncompressed (0.10 s to write, 0.04 s to read; masks stay
compressed): `SimulationConfig.compressImages` turns compression back on.
The files are ordinary lsst.images FITS, readable by its own formatter.
"""

from __future__ import annotations

__all__ = ["UncompressedImageFormatter", "image_storage_config"]

from typing import Any

from lsst.images.fits import FitsCompressionOptions
from lsst.images.formatters import GenericFormatter

# The planes left uncompressed; the others keep the recipe's options.
_UNCOMPRESSED_PLANES = ("image", "variance")


class UncompressedImageFormatter(GenericFormatter):
    """lsst.images' formatter, writing the image and variance planes
    uncompressed.
    """

    def _get_compression_options(self) -> dict[str, FitsCompressionOptions | None]:
        # Docstring inherited.
        options: dict[str, FitsCompressionOptions | None] = dict(super()._get_compression_options())
        options.update({plane: None for plane in _UNCOMPRESSED_PLANES})
        return options


def image_storage_config(compress: bool) -> dict[str, Any]:
    """Return the datastore configuration of a new simulated repository's
    images.

    Parameters
    ----------
    compress : `bool`
        Keep lsst.images' default compression of every plane.

    Returns
    -------
    config : `dict`
        ``datastore.formatters`` entries for the image storage classes
        (empty if ``compress``).
    """
    if compress:
        return {}
    name = f"{__name__.rsplit('.', 1)[0]}.{UncompressedImageFormatter.__name__}"
    return {"datastore": {"formatters": {sc: name for sc in ("VisitImage", "DifferenceImage")}}}
