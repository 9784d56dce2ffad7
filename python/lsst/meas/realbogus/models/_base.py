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

"""What every real/bogus architecture shares: the registry, the size check
and the input/output contract.

Contract: a model is built for one cutout size ``S`` and takes a float32
tensor of shape ``(N, 3, S, S)`` whose channels are template, science and
difference (in that order, see `CHANNELS`); ``forward`` returns raw logits
of shape ``(N,)``. Callers apply `torch.sigmoid` to get scores; training
uses `torch.nn.BCEWithLogitsLoss`, which is numerically safer than a sigmoid
inside the network followed by a plain BCE loss.
"""

from __future__ import annotations

__all__ = [
    "CHANNELS",
    "RealBogusModel",
    "count_parameters",
    "dropout_field",
    "first_line",
    "modelRegistry",
]

import copy
import operator

import torch

import lsst.pex.config as pexConfig

from ..errors import UnsupportedCutoutSizeError, first_line
from ..triplets import CHANNELS

modelRegistry = pexConfig.makeRegistry(
    doc="Real/bogus classifier architectures by name. Each entry is a `RealBogusModel` subclass, "
    "called as ``entry(cutoutSize, config=config)``; use ``registry.makeField`` in a task config and "
    "``config.model.apply(cutoutSize)`` to build the selected network."
)


def count_parameters(model: torch.nn.Module, trainableOnly: bool = False) -> int:
    """Number of parameters (scalars) of a network.

    Parameters
    ----------
    model : `torch.nn.Module`
        The network; may live on the ``meta`` device.
    trainableOnly : `bool`, optional
        Count only parameters with ``requires_grad``.

    Returns
    -------
    count : `int`
        Sum of the parameters' element counts.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainableOnly)


def dropout_field(default: float, doc: str) -> pexConfig.RangeField:
    """A dropout probability field, in ``[0, 1)``.

    Parameters
    ----------
    default : `float`
        Default probability.
    doc : `str`
        Where the dropout sits.

    Returns
    -------
    field : `lsst.pex.config.RangeField`
        The field.
    """
    return pexConfig.RangeField(
        dtype=float, default=default, min=0.0, max=1.0, inclusiveMax=False,
        doc=f"{doc} Probability of zeroing an activation in training; 0 disables it.",
    )


class RealBogusModel(torch.nn.Module):
    """Base class of the real/bogus networks.

    Subclasses set the class attributes below, build their layers after
    calling ``super().__init__``, and implement `_logits`.

    Parameters
    ----------
    cutoutSize : `int`, optional
        Side ``S`` of the square cutouts, in pixels; `defaultCutoutSize`
        if `None`.
    config : `lsst.pex.config.Config`, optional
        Instance of the subclass's ``ConfigClass``; its defaults if `None`.
        It is validated, and a frozen copy is kept as ``self.config``.

    Raises
    ------
    UnsupportedCutoutSizeError
        Raised if the architecture cannot take ``cutoutSize`` with this
        config.
    TypeError
        Raised if ``config`` is of the wrong class or ``cutoutSize`` is not
        an integer.
    lsst.pex.config.FieldValidationError
        Raised if the config does not validate (a `ValueError`).
    """

    ConfigClass: type[pexConfig.Config] = pexConfig.Config
    name: str = ""
    """Registry name of the architecture."""
    defaultCutoutSize: int = 0
    """Cutout size the architecture was designed for."""
    minCutoutSize: int = 1
    """Smallest supported cutout size with the default config."""
    maxCutoutSize: int | None = None
    """Largest supported cutout size with the default config (`None`: no
    limit)."""

    def __init__(self, cutoutSize: int | None = None, config: pexConfig.Config | None = None):
        super().__init__()
        if config is None:
            config = self.ConfigClass()
        elif not isinstance(config, self.ConfigClass):
            raise TypeError(
                f"{self.name} needs a {self.ConfigClass.__name__}, not a {type(config).__name__}"
            )
        config.validate()
        cutoutSize = self.defaultCutoutSize if cutoutSize is None else operator.index(cutoutSize)
        self.check_cutout_size(cutoutSize, config)
        # A frozen copy: later edits of a task config must not make the
        # config disagree with the layers it built.
        self.config = copy.deepcopy(config)
        self.config.freeze()
        self.cutoutSize = cutoutSize

    @classmethod
    def supported_sizes(cls, config: pexConfig.Config | None = None) -> tuple[int, int | None]:
        """Range of cutout sizes the architecture takes with a config.

        Parameters
        ----------
        config : `lsst.pex.config.Config`, optional
            The architecture's config; its defaults if `None`.

        Returns
        -------
        minSize : `int`
            Smallest supported size.
        maxSize : `int` or `None`
            Largest supported size, `None` if unbounded.
        """
        return cls.minCutoutSize, cls.maxCutoutSize

    @classmethod
    def check_cutout_size(cls, cutoutSize: int, config: pexConfig.Config | None = None) -> None:
        """Raise if the architecture cannot take ``cutoutSize``.

        Raises
        ------
        UnsupportedCutoutSizeError
            Raised with a one-line message if the size is out of range.
        """
        minSize, maxSize = cls.supported_sizes(config if config is not None else cls.ConfigClass())
        if cutoutSize < minSize:
            raise UnsupportedCutoutSizeError(
                f"{cls.name} needs cutouts of at least {minSize} pixels (got {cutoutSize})"
            )
        if maxSize is not None and cutoutSize > maxSize:
            raise UnsupportedCutoutSizeError(
                f"{cls.name} takes cutouts of at most {maxSize} pixels (got {cutoutSize})"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real/bogus logits of a batch of triplets.

        Parameters
        ----------
        x : `torch.Tensor`
            Cutout triplets, shape ``(N, 3, S, S)`` with ``S`` the size the
            model was built for; channels in `CHANNELS` order.

        Returns
        -------
        logits : `torch.Tensor`
            Shape ``(N,)``; ``torch.sigmoid(logits)`` is the score
            (probability of real).
        """
        expected = (len(CHANNELS), self.cutoutSize, self.cutoutSize)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            # The dense heads fix S; a clear message beats a matmul shape error.
            raise ValueError(
                f"{self.name} built for inputs (N, {', '.join(map(str, expected))}); "
                f"got {tuple(x.shape)}"
            )
        # reshape, not squeeze: a batch of one must stay 1-d.
        return self._logits(x).reshape(-1)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, 1)`` or ``(N,)``; implemented by
        subclasses.
        """
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"cutoutSize={self.cutoutSize}"
