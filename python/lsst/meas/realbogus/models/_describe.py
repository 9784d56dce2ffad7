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

"""What an architecture costs: parameters, supported sizes and forward
FLOPs (``rb-models`` prints them).
"""

from __future__ import annotations

__all__ = ["describe", "forward_flops"]

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import UnsupportedCutoutSizeError
from ._base import count_parameters
from ._registry import build_model, get_architecture


def forward_flops(model: torch.nn.Module, cutoutSize: int) -> int:
    """Floating-point operations of one forward pass on one triplet.

    Counted by `torch.utils.flop_counter.FlopCounterMode`, which counts
    matrix products and convolutions (two operations per multiply-add) and
    ignores element-wise layers (activations, pooling, batch norm); these
    are a small fraction here.

    Parameters
    ----------
    model : `torch.nn.Module`
        The network, on any device; ``meta`` costs nothing.
    cutoutSize : `int`
        Cutout side.

    Returns
    -------
    flops : `int`
        Operations per triplet.
    """
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, cutoutSize, cutoutSize, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x)
    return counter.get_total_flops()


def describe(name: str, cutoutSize: int | None = None) -> dict[str, Any]:
    """Size range, parameter count and cost of an architecture.

    The network is built on the ``meta`` device (shapes only), so this is
    fast for every architecture.

    Parameters
    ----------
    name : `str`
        Architecture name.
    cutoutSize : `int`, optional
        Size to evaluate; the architecture's default if `None`.

    Returns
    -------
    info : `dict` [`str`, `~typing.Any`]
        ``name``, ``cutoutSize``, ``defaultCutoutSize``, ``minCutoutSize``,
        ``maxCutoutSize`` (`None`: unbounded), ``supported``, and either
        ``parameters`` and ``mflops`` (forward MFLOP per triplet) or
        ``error`` (the reason the size is unsupported).
    """
    cls = get_architecture(name)
    minSize, maxSize = cls.supported_sizes()
    size = cls.defaultCutoutSize if cutoutSize is None else cutoutSize
    info: dict[str, Any] = {
        "name": name,
        "cutoutSize": size,
        "defaultCutoutSize": cls.defaultCutoutSize,
        "minCutoutSize": minSize,
        "maxCutoutSize": maxSize,
    }
    try:
        with torch.device("meta"):
            model = build_model(name, size)
    except UnsupportedCutoutSizeError as exc:
        return info | {"supported": False, "error": str(exc)}
    info |= {"supported": True, "parameters": count_parameters(model)}
    info["mflops"] = round(forward_flops(model, size) / 1e6, 1)
    return info
