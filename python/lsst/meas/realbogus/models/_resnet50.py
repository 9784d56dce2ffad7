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

"""ResNet-50 (He et al. 2016) adapted to small cutout triplets.

The network is torchvision's `torchvision.models.resnet50`, built without
pretrained weights (nothing is ever downloaded) and with one output. Its
ImageNet stem (7x7 stride-2 convolution, then a stride-2 max-pool) divides
a 224-pixel image by 4 before the first residual stage; on a 51-pixel
triplet it would leave 13x13 pixels to layer1 and 2x2 to layer4, throwing
away most of the resolution a point source has. The default replaces the
stem by a 3x3 stride-1 convolution without max-pool (as is usual for
small-image ResNets, e.g. on CIFAR), so a 51x51 triplet reaches layer1 at
51x51 and layer4 at 7x7.
"""

from __future__ import annotations

__all__ = ["ResNet50", "ResNet50Config"]

import math

import torch
import torchvision
from torch import nn

import lsst.pex.config as pexConfig

from ._base import RealBogusModel, dropout_field, modelRegistry

# Downsampling by each stride-2 step; with kernel k, padding k // 2 and
# stride 2 a side n becomes ceil(n / 2).
_STRIDE_SMALL_STEM = 8  # layer2, layer3, layer4
_STRIDE_IMAGENET_STEM = 32  # conv1 and max-pool, then layer2, layer3, layer4


class ResNet50Config(pexConfig.Config):
    """Configuration of `ResNet50`."""

    smallInputStem = pexConfig.Field(
        dtype=bool,
        default=True,
        doc="Replace the ImageNet stem (7x7 stride-2 conv1 and 3x3 stride-2 max-pool) by a 3x3 stride-1 "
        "conv1 and no max-pool, keeping the resolution of small cutouts. False keeps torchvision's stem "
        "(and needs cutouts of at least 33 pixels).",
    )
    dropout = dropout_field(0.0, "Dropout on the pooled 2048 features, before the final linear layer.")


@pexConfig.registerConfigurable("resnet50", modelRegistry)
class ResNet50(RealBogusModel):
    """torchvision's ResNet-50 with one output, for cutout triplets.

    Layers: ``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1`` to
    ``layer4`` (3, 4, 6 and 3 bottleneck blocks, 256 to 2048 channels),
    global average pool, dropout, ``fc`` (2048 to 1). The submodules keep
    torchvision's names, so the state-dict keys are torchvision's.

    With ``smallInputStem`` (the default) ``conv1`` is a 3x3 stride-1
    convolution (64 channels, no bias, torchvision's initialization) and
    ``maxpool`` is an identity; otherwise the ImageNet stem is kept.

    Parameters
    ----------
    cutoutSize : `int`, optional
        Cutout side ``S``; default 51. Any size would run, but below the
        minimum (9 with the small stem, 33 with the ImageNet stem) layer4
        works on a single pixel: its 3x3 convolutions see only zero
        padding around it, and in training its BatchNorm statistics come
        from one value per image. So the minimum is the smallest ``S``
        whose layer4 output is at least 2x2 (``ceil(S / stride) >= 2``, with
        a total stride of 8 or 32).
    config : `ResNet50Config`, optional
        Stem choice and dropout.
    """

    ConfigClass = ResNet50Config
    name = "resnet50"
    defaultCutoutSize = 51
    minCutoutSize = _STRIDE_SMALL_STEM + 1

    @classmethod
    def supported_sizes(cls, config: ResNet50Config | None = None) -> tuple[int, int | None]:
        # Docstring inherited.
        small = config.smallInputStem if config is not None else True
        return (_STRIDE_SMALL_STEM if small else _STRIDE_IMAGENET_STEM) + 1, None

    def __init__(self, cutoutSize: int | None = None, config: ResNet50Config | None = None):
        super().__init__(cutoutSize, config)
        net = torchvision.models.resnet50(weights=None, num_classes=1)
        if self.config.smallInputStem:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            # torchvision initializes its convolutions this way; keep it for the new one.
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
            net.maxpool = nn.Identity()
        # Adopt torchvision's submodules under their own names rather than
        # wrapping the network, so weights stay loadable by torchvision.
        for childName, child in net.named_children():
            self.add_module(childName, child)
        # No parameters: the state dict does not depend on the dropout rate.
        self.dropout = nn.Dropout(self.config.dropout)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))

    @staticmethod
    def layer4_side(cutoutSize: int, smallInputStem: bool = True) -> int:
        """Side of the map layer4 produces for a cutout size.

        Parameters
        ----------
        cutoutSize : `int`
            Cutout side.
        smallInputStem : `bool`, optional
            Whether the small stem is used.

        Returns
        -------
        side : `int`
            ``ceil(cutoutSize / stride)`` with a total stride of 8 or 32.
        """
        stride = _STRIDE_SMALL_STEM if smallInputStem else _STRIDE_IMAGENET_STEM
        return math.ceil(cutoutSize / stride)
