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

"""The registry of architectures, and building one by name."""

from __future__ import annotations

__all__ = ["ARCHITECTURES", "build_model", "get_architecture", "make_model_config"]

from typing import Any

import torch

import lsst.pex.config as pexConfig

from ..errors import first_line
from ._base import RealBogusModel, modelRegistry

ARCHITECTURES = ("vgg6", "resnet50", "rbtn", "rbcnn")
"""Names of the registered architectures, from the published baselines to
the production-style default."""


def get_architecture(name: str) -> type[RealBogusModel]:
    """The model class registered under a name.

    Parameters
    ----------
    name : `str`
        Architecture name, one of `ARCHITECTURES`.

    Returns
    -------
    cls : `type` [`RealBogusModel`]
        The class; its ``ConfigClass``, ``defaultCutoutSize``,
        ``minCutoutSize``, ``maxCutoutSize`` and ``supported_sizes``
        describe it.

    Raises
    ------
    ValueError
        Raised with a one-line message if ``name`` is not registered.
    """
    if not isinstance(name, str) or name not in modelRegistry:
        raise ValueError(f"unknown model architecture {name!r}; known: {', '.join(modelRegistry)}")
    return modelRegistry[name]


def make_model_config(name: str, values: dict[str, Any] | None = None) -> pexConfig.Config:
    """Build an architecture's config from plain values.

    This is the inverse of ``config.toDict()`` (after a JSON round trip),
    used to rebuild a trained model from its stored metadata.

    Parameters
    ----------
    name : `str`
        Architecture name.
    values : `dict` [`str`, `~typing.Any`], optional
        Field values; fields not given keep their defaults.

    Returns
    -------
    config : `lsst.pex.config.Config`
        A validated instance of the architecture's ``ConfigClass``.

    Raises
    ------
    ValueError
        Raised with a one-line message for an unknown architecture, an
        unknown field, or a value that does not validate.
    """
    cls = get_architecture(name)
    config = cls.ConfigClass()
    known = list(config.keys())
    for key, value in (values or {}).items():
        if key not in known:
            raise ValueError(f"unknown field {key!r} for model {name!r}; fields: {', '.join(known)}")
        try:
            setattr(config, key, value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"model {name!r}: {first_line(exc)}") from None
    try:
        config.validate()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"model {name!r}: invalid config: {first_line(exc)}") from None
    return config


def build_model(name: str, cutoutSize: int, config: pexConfig.Config | None = None) -> torch.nn.Module:
    """Build an untrained network.

    Parameters
    ----------
    name : `str`
        Architecture name.
    cutoutSize : `int`
        Side of the square cutouts the network will take.
    config : `lsst.pex.config.Config`, optional
        The architecture's config (see `make_model_config`); defaults if
        `None`.

    Returns
    -------
    model : `RealBogusModel`
        The network, in training mode, on the current default device.

    Raises
    ------
    ValueError
        Raised for an unknown architecture or an invalid config.
    UnsupportedCutoutSizeError
        Raised if the architecture cannot take ``cutoutSize`` (a
        `ValueError` too).
    TypeError
        Raised if ``config`` belongs to another architecture.
    """
    cls = get_architecture(name)
    return cls(cutoutSize, config=config)
