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

"""RBCNN: a small convolutional network of the kind Rubin runs in
production.

Modelled on the real/bogus CNN described in DMTN-337: three 5x5
convolution / ReLU / 2x2 max-pool blocks on 51x51 triplets, then a small
dense head. About 139 thousand parameters at 51x51; cheap enough to score
every DIA source of a visit on a CPU.
"""

from __future__ import annotations

__all__ = ["Rbcnn", "RbcnnConfig"]

import torch
from torch import nn

import lsst.pex.config as pexConfig

from ._base import RealBogusModel, dropout_field, modelRegistry
from ._limits import MAX_CHANNELS, MAX_DENSE_WIDTH, MAX_KERNEL_SIZE, check_layer_list


class RbcnnConfig(pexConfig.Config):
    """Configuration of `Rbcnn`."""

    channels = pexConfig.ListField(
        dtype=int,
        default=[16, 32, 64],
        doc="Output channels of the convolution blocks (convolution, ReLU, 2x2 max-pool), in order.",
    )
    kernelSize = pexConfig.RangeField(
        dtype=int, default=5, min=1, max=MAX_KERNEL_SIZE, inclusiveMax=True,
        doc="Side of the convolution kernels (odd; padded by kernelSize // 2).",
    )
    dropout = dropout_field(0.4, "Dropout on the flattened features, before the hidden dense layer.")
    denseWidth = pexConfig.RangeField(
        dtype=int, default=32, min=1, max=MAX_DENSE_WIDTH, inclusiveMax=True,
        doc="Width of the hidden dense layer.",
    )

    def validate(self):
        super().validate()
        check_layer_list("channels", self.channels, MAX_CHANNELS)
        if self.kernelSize % 2 == 0:
            raise ValueError(f"kernelSize must be odd and positive; got {self.kernelSize}")


@pexConfig.registerConfigurable("rbcnn", modelRegistry)
class Rbcnn(RealBogusModel):
    """Small real/bogus CNN (DMTN-337 style).

    Layers with the default config::

        conv 5x5 16, padding 2, ReLU, max-pool 2
        conv 5x5 32, padding 2, ReLU, max-pool 2
        conv 5x5 64, padding 2, ReLU, max-pool 2
        flatten, dropout 0.4, dense 32, ReLU, dense 1

    The "same" padding keeps each map's side, and each pool halves it
    (rounding down), so the dense layer sees ``S // 8`` squared pixels per
    channel: 6x6 at 51x51.

    Parameters
    ----------
    cutoutSize : `int`, optional
        Cutout side ``S``; default 51, at least ``2**nBlocks`` (8 by
        default) so that the last pool leaves one pixel.
    config : `RbcnnConfig`, optional
        Channels, kernel size, dropout and dense width.
    """

    ConfigClass = RbcnnConfig
    name = "rbcnn"
    defaultCutoutSize = 51
    minCutoutSize = 2 ** len(RbcnnConfig.channels.default)

    @classmethod
    def supported_sizes(cls, config: RbcnnConfig | None = None) -> tuple[int, int | None]:
        # Docstring inherited.
        config = config if config is not None else cls.ConfigClass()
        return 2 ** len(config.channels), None

    def __init__(self, cutoutSize: int | None = None, config: RbcnnConfig | None = None):
        super().__init__(cutoutSize, config)
        kernel = self.config.kernelSize
        blocks = []
        inChannels = 3
        for channels in self.config.channels:
            blocks += [
                nn.Conv2d(inChannels, channels, kernel, padding=kernel // 2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            inChannels = channels
        self.features = nn.Sequential(*blocks)
        side = self.cutoutSize // 2 ** len(self.config.channels)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(self.config.dropout),
            nn.Linear(inChannels * side * side, self.config.denseWidth),
            nn.ReLU(inplace=True),
            nn.Linear(self.config.denseWidth, 1),
        )

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
