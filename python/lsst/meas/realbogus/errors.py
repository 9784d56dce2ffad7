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

"""The package's exceptions and the one-line messages they carry.

Every error this package raises on purpose derives from `RealBogusError`,
and its message is one line that says what is wrong and, where it can,
what to do. Failures of one quantum's data (a catalog without the
required columns, images not on one pixel grid, an unreadable
``rb_triplets``) are also `lsst.pipe.base.AlgorithmError` subclasses, so
that ``pipetask`` records them as repeatable failures of that quantum, does
not retry them, and goes on with the others, as pipe_tasks' PSF
measurement errors do. A bad model package, device or configuration is
not: it fails every quantum alike and must be fixed before running.

This module does not import torch; the command-line front ends, which
print these messages, live in `lsst.meas.realbogus.cli`.
"""

from __future__ import annotations

__all__ = [
    "CliError",
    "DeviceError",
    "GalleryError",
    "ImageMismatchError",
    "InvalidCatalogError",
    "ModelPackageError",
    "NonFiniteScoreError",
    "RealBogusDataError",
    "RealBogusError",
    "RepositoryExistsError",
    "SimulationPlanError",
    "TrainingError",
    "TripletDataError",
    "UnknownPresetError",
    "UnsupportedCutoutSizeError",
    "first_line",
    "one_line",
]

from collections.abc import Mapping

import lsst.pipe.base as pipeBase

_MAX_LINE = 300


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message.

    ``lsst.pex.config`` validation errors append several lines pointing at
    the field definitions; a message built from one wants only the first.

    Parameters
    ----------
    exc : `BaseException`
        The exception.

    Returns
    -------
    line : `str`
        Its message's first line, or its type's name if it has none.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """Return an exception's whole message squeezed onto one short line.

    Parameters
    ----------
    exc : `BaseException`
        The exception; a pydantic ``ValidationError`` is summarized by its
        first three errors (field path and message each).

    Returns
    -------
    line : `str`
        At most 300 characters.
    """
    errors = getattr(exc, "errors", None)
    if callable(errors) and hasattr(exc, "error_count"):  # pydantic.ValidationError
        parts = [f"{'.'.join(str(p) for p in item['loc']) or '(top)'}: {item['msg']}" for item in errors()[:3]]
        more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        text = "; ".join(parts) + more
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
        # pex_config appends where the field was defined; users need the problem.
        text = text.split(" For more information see")[0]
    return text if len(text) < _MAX_LINE else text[: _MAX_LINE - 3] + "..."


class RealBogusError(Exception):
    """Base class of the errors this package raises; the message is one
    line.
    """


class RealBogusDataError(RealBogusError, pipeBase.AlgorithmError):
    """The data of one quantum cannot be processed (a repeatable failure of
    that quantum alone; ``pipetask`` records it and goes on).

    Parameters
    ----------
    message : `str`
        One line: what is wrong with which input.
    metadata : `~collections.abc.Mapping`, optional
        Facts about the failure for the quantum's metadata (`str` keys;
        `str`, `int`, `float` or `bool` values).
    """

    def __init__(self, message: str, metadata: Mapping[str, str | int | float | bool] | None = None):
        super().__init__(message)
        self._metadata = dict(metadata or {})

    @property
    def metadata(self) -> dict[str, str | int | float | bool]:
        return self._metadata


class InvalidCatalogError(RealBogusDataError, ValueError):
    """A source catalog lacks required columns, or its ids repeat or do not
    match another catalog's.
    """


class ImageMismatchError(RealBogusDataError, ValueError):
    """The template, science and difference images of a triplet are not on
    one pixel grid (shape, origin or WCS differ).
    """


class NonFiniteScoreError(RealBogusDataError, ValueError):
    """A model gave a DIA source a NaN or infinite score; the quantum fails
    instead of writing it (it would send the source to the low-reliability
    catalog, and drop its alert, without an error).
    """


class TripletDataError(RealBogusDataError, ValueError):
    """``rb_triplets`` cannot be read or used for training."""


class ModelPackageError(RealBogusError, ValueError):
    """A model package cannot be read, or does not suit the data or the
    configuration.
    """


class UnsupportedCutoutSizeError(RealBogusError, ValueError):
    """An architecture cannot be built for the requested cutout size."""


class DeviceError(RealBogusError, RuntimeError):
    """The requested torch device is not available."""


class TrainingError(RealBogusError, RuntimeError):
    """Training cannot start or continue."""


class UnknownPresetError(RealBogusError, ValueError):
    """No simulation preset has that name."""


class RepositoryExistsError(RealBogusError, ValueError):
    """The simulator's target already holds a repository or other files."""


class SimulationPlanError(RealBogusError, ValueError):
    """A repository's simulation plan is not its stored configuration's."""


class GalleryError(RealBogusError, RuntimeError):
    """A gallery of examples cannot be drawn from a repository."""


class CliError(RealBogusError):
    """A command-line user error: printed as one line, exit status 2."""
