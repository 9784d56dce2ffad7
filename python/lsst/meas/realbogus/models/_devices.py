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

"""Choice of the torch device and CPU threads, shared by training and
scoring.
"""

from __future__ import annotations

__all__ = [
    "DEVICE_CHOICES",
    "configure_quantum_threads",
    "configure_threads",
    "device_field",
    "is_device_name",
    "select_device",
    "threads_field",
]

from typing import Any

import torch

import lsst.pex.config as pexConfig

from ..errors import DeviceError

DEVICE_CHOICES = {
    "auto": "The first CUDA GPU if torch sees one, else the CPU.",
    "cpu": "The CPU.",
    "cuda": "The current CUDA GPU; an error if there is none.",
}
"""Allowed values of the ``device`` config fields."""


def is_device_name(value: str) -> bool:
    """Whether a config value names a device (`DEVICE_CHOICES` or
    ``cuda:N``); the ``check`` of the tasks' ``device`` fields.
    """
    return value in DEVICE_CHOICES or (value.startswith("cuda:") and value[5:].isdigit())


def select_device(name: str) -> torch.device:
    """Return the torch device for a config value.

    Parameters
    ----------
    name : `str`
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns
    -------
    device : `torch.device`

    Raises
    ------
    DeviceError
        Raised, with a one-line message, if a GPU is requested and torch
        sees none (or not that many), or the name is not a device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} was requested but torch finds no CUDA GPU on this machine "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'."
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} was requested but torch sees {torch.cuda.device_count()} GPU(s)."
            )
        return device
    raise DeviceError(f"unknown device {name!r}; expected one of {sorted(DEVICE_CHOICES)} or 'cuda:N'.")


def configure_threads(num_threads: int) -> int:
    """Set torch's intra-op CPU threads.

    Parameters
    ----------
    num_threads : `int`
        Threads to use; 0 leaves torch's default.

    Returns
    -------
    threads : `int`
        The thread count now in effect.
    """
    if num_threads > 0 and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()


def device_field() -> pexConfig.Field:
    """Return the ``device`` config field of the tasks that run a model."""
    return pexConfig.Field(
        dtype=str,
        default="auto",
        check=is_device_name,
        doc="'auto' (the first CUDA GPU if torch sees one, else the CPU), 'cpu', 'cuda' or 'cuda:N'.",
    )


def threads_field() -> pexConfig.RangeField:
    """Return the ``numThreads`` config field of the tasks that run a model:
    one meaning for training and scoring.
    """
    return pexConfig.RangeField(
        dtype=int,
        default=0,
        min=0,
        doc="CPU threads for torch. 0: pipetask's --cores-per-quantum (default 1) when run by pipetask, "
        "torch's default when run() is called directly or from rb-train.",
    )


def configure_quantum_threads(num_threads: int, butlerQC: Any) -> int:
    """Set torch's CPU threads for a quantum: ``num_threads``, or the
    quantum's cores (``pipetask --cores-per-quantum``) when it is 0.

    Parameters
    ----------
    num_threads : `int`
        The task's ``numThreads``.
    butlerQC : `lsst.pipe.base.QuantumContext`
        The quantum's context; its ``resources.num_cores`` are the cores
        pipetask allows it.

    Returns
    -------
    threads : `int`
        The thread count now in effect.
    """
    return configure_threads(num_threads or butlerQC.resources.num_cores)
