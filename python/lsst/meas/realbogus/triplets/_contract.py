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

"""The triplet contract: the channel order and `CutoutConfig`, the settings
a triplet is cut with.

Training records a `CutoutConfig` in the model package and scoring cuts
with the package's, so that a model always sees cutouts made the way it was
trained on; the channel order is fixed and checked when a package is read.
"""

from __future__ import annotations

__all__ = ["CHANNELS", "CutoutConfig"]

from collections.abc import Mapping
from typing import Any

import lsst.pex.config as pexConfig

from ..errors import first_line

CHANNELS = ("template", "science", "difference")
"""Channel order of every triplet, fixed: index 0 is the template, 1 the
science image, 2 the difference image (as Rubin's production model,
DMTN-337).
"""


class CutoutConfig(pexConfig.Config):
    """How triplets are cut and normalized.

    Training records these values in the model package and scoring uses the
    model's values, so a model always sees cutouts made the way it was
    trained on.
    """

    size = pexConfig.RangeField(
        dtype=int,
        default=51,
        min=4,
        max=256,
        doc="Cutout side in pixels: 51 as in Rubin production, 63 for braai-style VGG6, "
        "up to 256 as in DMTN-272. Odd sizes put the source pixel at the exact centre.",
    )
    normalization = pexConfig.ChoiceField(
        dtype=str,
        default="snrAsinh",
        allowed={
            "snr": "Per channel: subtract the cutout median, divide by the square root of the "
            "median variance of the cutout, so pixels are in units of the image noise.",
            "snrAsinh": "As 'snr', then s*asinh(v/s) with s = asinhSoftening: linear within a "
            "few sigma, logarithmic for bright stars so that saturated cores do not dominate.",
            "l2": "Per channel: subtract the cutout median and divide by the L2 norm (braai).",
            "none": "Pixels as stored (nJy).",
        },
        doc="Per-cutout, per-channel normalization.",
    )
    asinhSoftening = pexConfig.RangeField(
        dtype=float,
        default=10.0,
        min=0.0,
        inclusiveMin=False,
        # The bound keeps s*asinh(v/s) finite for every finite float32 v/s.
        max=1.0e6,
        inclusiveMax=True,
        doc="Softening s, in noise sigma, of the 'snrAsinh' normalization.",
    )
    badMaskPlanes = pexConfig.ListField(
        dtype=str,
        default=["NO_DATA"],
        doc="Mask planes whose pixels count as missing: they are filled and the source flagged "
        "'cutoutFlags_noData', like NaN and inf pixels.",
    )
    fillValue = pexConfig.Field(
        dtype=float,
        default=0.0,
        doc="Value, after normalization, of pixels that are off the image or missing "
        "(0 is the background level of the normalized channels).",
    )

    def to_metadata(self) -> dict[str, Any]:
        """Return the values a model package records, channel order
        included.
        """
        return {
            "size": int(self.size),
            "channels": list(CHANNELS),
            "normalization": str(self.normalization),
            "asinhSoftening": float(self.asinhSoftening),
            "badMaskPlanes": list(self.badMaskPlanes),
            "fillValue": float(self.fillValue),
        }

    @classmethod
    def from_metadata(cls, values: Mapping[str, Any]) -> CutoutConfig:
        """Rebuild a config from `to_metadata` output.

        Raises
        ------
        ValueError
            Raised if the channel order differs from `CHANNELS` or a field
            is unknown or invalid.
        """
        values = dict(values)
        channels = tuple(values.pop("channels", CHANNELS))
        if channels != CHANNELS:
            raise ValueError(f"channel order {list(channels)} differs from this package's {list(CHANNELS)}.")
        config = cls()
        for key, value in values.items():
            if key not in config:
                raise ValueError(f"unknown cutout setting {key!r}.")
            try:
                setattr(config, key, value)
            except Exception as err:  # pex_config raises several types, with multi-line messages
                raise ValueError(f"invalid cutout setting {key}={value!r}: {first_line(err)}") from None
        try:
            config.validate()
        except Exception as err:
            raise ValueError(f"invalid cutout settings: {first_line(err)}") from None
        return config
