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

"""Augmentation of training triplets: the symmetries of the square grid."""

from __future__ import annotations

__all__ = ["random_dihedral"]

import torch


def random_dihedral(cutouts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply a random element of the dihedral group D4 (flips and
    90-degree rotations) to each triplet, the same to its three channels.

    Parameters
    ----------
    cutouts : `torch.Tensor`, (N, 3, S, S)
        Triplets.
    generator : `torch.Generator`
        CPU generator (deterministic under a seed).

    Returns
    -------
    augmented : `torch.Tensor`, (N, 3, S, S)
        The triplets, each flipped and rotated by its own draw.
    """
    n = cutouts.shape[0]
    # One draw per triplet: 0-3 rotate by k * 90 degrees, 4-7 flip first.
    choice = torch.randint(0, 8, (n,), generator=generator).to(cutouts.device)
    flipped = torch.where((choice >= 4)[:, None, None, None], cutouts.flip(-1), cutouts)
    out = flipped.clone()
    for k in (1, 2, 3):
        sel = (choice % 4) == k
        if bool(sel.any()):
            out[sel] = torch.rot90(flipped[sel], k, dims=(-2, -1))
    return out
