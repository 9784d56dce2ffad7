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

"""VGG6: the braai classifier of the Zwicky Transient Facility.

Duev et al. 2019, MNRAS 489, 3582 ("Real-bogus classification for the
Zwicky Transient Facility using deep learning"). Two VGG blocks of
unpadded 3x3 convolutions, then a dense head; 312,081 parameters on
63x63 triplets.
"""

from __future__ import annotations

__all__ = ["Vgg6", "Vgg6Config"]

import torch
from torch import nn

import lsst.pex.config as pexConfig

from ._base import RealBogusModel, dropout_field, modelRegistry
from ._limits import MAX_CHANNELS, MAX_DENSE_WIDTH

# Each block shrinks the map by 4 pixels (two unpadded 3x3 convolutions)
# then pools by these factors.
_POOLS = (2, 4)


def _feature_side(cutoutSize: int) -> int:
    """Side of the map entering the dense head."""
    side = cutoutSize
    for pool in _POOLS:
        side = (side - 4) // pool
    return side


class Vgg6Config(pexConfig.Config):
    """Configuration of `Vgg6`."""

    block1Channels = pexConfig.RangeField(
        dtype=int, default=16, min=1, max=MAX_CHANNELS, inclusiveMax=True,
        doc="Filters of both 3x3 convolutions of the first block.",
    )
    block2Channels = pexConfig.RangeField(
        dtype=int, default=32, min=1, max=MAX_CHANNELS, inclusiveMax=True,
        doc="Filters of both 3x3 convolutions of the second block.",
    )
    denseWidth = pexConfig.RangeField(
        dtype=int, default=256, min=1, max=MAX_DENSE_WIDTH, inclusiveMax=True,
        doc="Width of the hidden dense layer.",
    )
    block1Dropout = dropout_field(0.25, "Dropout after the first block's 2x2 max-pool.")
    block2Dropout = dropout_field(0.25, "Dropout after the second block's 4x4 max-pool.")
    denseDropout = dropout_field(0.5, "Dropout after the hidden dense layer.")


@pexConfig.registerConfigurable("vgg6", modelRegistry)
class Vgg6(RealBogusModel):
    """The braai VGG6 network (Duev et al. 2019).

    Layers (``c1``, ``c2``, ``d`` from the config; defaults 16, 32, 256)::

        conv 3x3 c1, ReLU, conv 3x3 c1, ReLU, max-pool 2, dropout
        conv 3x3 c2, ReLU, conv 3x3 c2, ReLU, max-pool 4, dropout
        flatten, dense d, ReLU, dropout, dense 1

    All convolutions are unpadded ("valid"), as in braai, so the dense
    layer's input, and the parameter count, depend on the cutout size:
    312,081 parameters at 63x63 (braai's size).

    Parameters
    ----------
    cutoutSize : `int`, optional
        Cutout side ``S``; at least 20 (the smallest size leaving a 1x1 map
        after the second pool: ``((S - 4) // 2 - 4) // 4 >= 1``). Default 63.
    config : `Vgg6Config`, optional
        Layer widths and dropout rates.
    """

    ConfigClass = Vgg6Config
    name = "vgg6"
    defaultCutoutSize = 63
    minCutoutSize = 20

    def __init__(self, cutoutSize: int | None = None, config: Vgg6Config | None = None):
        super().__init__(cutoutSize, config)
        c1, c2, width = self.config.block1Channels, self.config.block2Channels, self.config.denseWidth
        side = _feature_side(self.cutoutSize)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c1, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(_POOLS[0]),
            nn.Dropout(self.config.block1Dropout),
            nn.Conv2d(c1, c2, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c2, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(_POOLS[1]),
            nn.Dropout(self.config.block2Dropout),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * side * side, width),
            nn.ReLU(inplace=True),
            nn.Dropout(self.config.denseDropout),
            nn.Linear(width, 1),
        )

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
