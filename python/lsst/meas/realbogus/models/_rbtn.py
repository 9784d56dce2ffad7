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

"""RBTN: the encoder of TransiNet as a real/bogus classifier.

TransiNet (Sedaghat & Mahabal 2018, MNRAS 476, 5365, "Effective image
differencing with convolutional neural networks for real-time transient
hunting") is an encoder-decoder network built like FlowNet (Dosovitskiy et
al. 2015). Here only its encoder is kept, fed with the template, science
and difference cutouts as three channels, and topped with global average
pooling and one linear output.
"""

from __future__ import annotations

__all__ = ["Rbtn", "RbtnConfig"]

import collections

import torch
from torch import nn

import lsst.pex.config as pexConfig

from ._base import RealBogusModel, dropout_field, modelRegistry
from ._limits import MAX_CHANNELS, MAX_KERNEL_SIZE, check_layer_list


class RbtnConfig(pexConfig.Config):
    """Configuration of `Rbtn`."""

    stemChannels = pexConfig.ListField(
        dtype=int,
        default=[64, 128, 256],
        doc="Output channels of the stride-2 stem convolutions (FlowNet's conv1 to conv3).",
    )
    stemKernelSizes = pexConfig.ListField(
        dtype=int,
        default=[7, 5, 5],
        doc="Kernel sizes (odd) of the stem convolutions; one per entry of stemChannels.",
    )
    stageChannels = pexConfig.ListField(
        dtype=int,
        default=[512, 512, 1024],
        doc="Output channels of each later stage: a 3x3 stride-2 convolution then a 3x3 stride-1 one "
        "(FlowNet's conv4/conv4_1 to conv6/conv6_1).",
    )
    leakySlope = pexConfig.RangeField(
        dtype=float, default=0.1, min=0.0, doc="Negative slope of the LeakyReLU after every convolution."
    )
    dropout = dropout_field(0.5, "Dropout on the pooled features, before the linear output.")

    def validate(self):
        super().validate()
        check_layer_list("stemChannels", self.stemChannels, MAX_CHANNELS)
        check_layer_list("stageChannels", self.stageChannels, MAX_CHANNELS, allow_empty=True)
        check_layer_list("stemKernelSizes", self.stemKernelSizes, MAX_KERNEL_SIZE, odd=True)
        if len(self.stemKernelSizes) != len(self.stemChannels):
            raise ValueError(
                f"stemKernelSizes has {len(self.stemKernelSizes)} entries for "
                f"{len(self.stemChannels)} stemChannels"
            )


def _conv(inChannels: int, outChannels: int, kernelSize: int, stride: int, slope: float) -> nn.Sequential:
    """Convolution with "same" padding, then LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(inChannels, outChannels, kernelSize, stride=stride, padding=kernelSize // 2),
        nn.LeakyReLU(slope, inplace=True),
    )


@pexConfig.registerConfigurable("rbtn", modelRegistry)
class Rbtn(RealBogusModel):
    """TransiNet's encoder with a classification head.

    Layers with the default config (FlowNet's names; "same" padding
    ``kernel // 2``; LeakyReLU(0.1) after every convolution)::

        conv1    7x7 stride 2,   64      conv5    3x3 stride 2,  512
        conv2    5x5 stride 2,  128      conv5_1  3x3 stride 1,  512
        conv3    5x5 stride 2,  256      conv6    3x3 stride 2, 1024
        conv4    3x3 stride 2,  512      conv6_1  3x3 stride 1, 1024
        conv4_1  3x3 stride 1,  512
        global average pool, dropout 0.5, linear 1024 -> 1

    A stride-2 layer takes a side ``n`` to ``ceil(n / 2)``: a 51x51 triplet
    gives maps of 26, 13, 7, 4, 2 and 1 pixels.

    Parameters
    ----------
    cutoutSize : `int`, optional
        Cutout side ``S``; default 51. Every size runs, but the minimum
        (17 by default) is the smallest ``S`` for which the first 3x3
        stride-2 layer (conv4) still yields at least 2x2 pixels,
        ``ceil(S / 2**(nStem + 1)) >= 2``. Below it, every layer after the
        stem sees one pixel surrounded by zero padding, so the 3x3 stages
        degenerate into dense layers and the encoder is no longer
        convolutional.
    config : `RbtnConfig`, optional
        Channels, kernel sizes, LeakyReLU slope and dropout.

    Notes
    -----
    The weights are initialized for LeakyReLU (He et al. 2015, normal,
    fan-in) with zero biases: with no batch normalization in this network,
    PyTorch's default initialization would shrink the activations layer
    after layer.
    """

    ConfigClass = RbtnConfig
    name = "rbtn"
    defaultCutoutSize = 51
    minCutoutSize = 2 ** (len(RbtnConfig.stemChannels.default) + 1) + 1

    @classmethod
    def supported_sizes(cls, config: RbtnConfig | None = None) -> tuple[int, int | None]:
        # Docstring inherited.
        config = config if config is not None else cls.ConfigClass()
        nStride2 = len(config.stemChannels) + (1 if config.stageChannels else 0)
        return 2**nStride2 + 1, None

    def __init__(self, cutoutSize: int | None = None, config: RbtnConfig | None = None):
        super().__init__(cutoutSize, config)
        slope = self.config.leakySlope
        layers = collections.OrderedDict()
        inChannels = 3
        for i, (channels, kernel) in enumerate(zip(self.config.stemChannels, self.config.stemKernelSizes)):
            layers[f"conv{i + 1}"] = _conv(inChannels, channels, kernel, 2, slope)
            inChannels = channels
        for i, channels in enumerate(self.config.stageChannels):
            number = len(self.config.stemChannels) + 1 + i
            layers[f"conv{number}"] = _conv(inChannels, channels, 3, 2, slope)
            layers[f"conv{number}_1"] = _conv(channels, channels, 3, 1, slope)
            inChannels = channels
        self.encoder = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(self.config.dropout)
        self.fc = nn.Linear(inChannels, 1)
        for module in self.encoder.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=slope, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(self.encoder(x)), 1)
        return self.fc(self.dropout(x))
