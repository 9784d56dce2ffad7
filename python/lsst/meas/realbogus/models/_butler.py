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

"""The model package in a Butler repository: its formatter, storing one,
and what a package records of the data IDs it was trained on.
"""

from __future__ import annotations

__all__ = ["ModelPackageFormatter", "put_model", "training_data_coverage"]

from collections.abc import Iterable
from typing import Any

from lsst.daf.butler import Butler, DatasetRef, FormatterV2
from lsst.resources import ResourcePath

from ..errors import ModelPackageError, one_line
from ._modelPackage import ModelPackage
from ._storageClass import STORAGE_CLASS


def training_data_coverage(data_ids: Iterable[Any]) -> dict[str, list[str]]:
    """Return the ``instrument`` and ``bands`` entries a model package's
    ``training`` metadata should record, from the training data's data IDs.

    Parameters
    ----------
    data_ids : `~collections.abc.Iterable`
        Data IDs (`lsst.daf.butler.DataCoordinate` with full values, or
        mappings) of the training datasets; ``band`` is read where present.

    Returns
    -------
    coverage : `dict` [`str`, `list` [`str`]]
        Sorted distinct instruments and bands; `ModelPackage.trained_for`
        reads them back and ``computeReliability`` compares them with the
        data it scores.
    """
    instruments, bands = set(), set()
    for data_id in data_ids:
        mapping = data_id.mapping if hasattr(data_id, "mapping") else data_id
        if "instrument" in mapping:
            instruments.add(str(mapping["instrument"]))
        if "band" in mapping:
            bands.add(str(mapping["band"]))
    coverage = {}
    if instruments:
        coverage["instrument"] = sorted(instruments)
    if bands:
        coverage["bands"] = sorted(bands)
    return coverage


class ModelPackageFormatter(FormatterV2):
    """Butler formatter of `ModelPackage` (a ``.zip`` file)."""

    default_extension = ".zip"
    supported_extensions = frozenset({".zip"})
    can_read_from_local_file = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        # Docstring inherited.
        return ModelPackage.read(path)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        # Docstring inherited.
        if not isinstance(in_memory_dataset, ModelPackage):
            raise TypeError(f"expected a ModelPackage; got {type(in_memory_dataset).__name__}.")
        uri.write(in_memory_dataset.to_bytes())


def put_model(butler: Butler, package: ModelPackage, run: str, dataset_type: str = "rb_model") -> DatasetRef:
    """Store a model package in a repository, as ``trainRealBogus`` does.

    Registers the dataset type (no dimensions, storage class
    `STORAGE_CLASS`) and the RUN collection if they are new.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler.
    package : `ModelPackage`
        The model.
    run : `str`
        RUN collection to write to.
    dataset_type : `str`, optional
        Dataset type name.

    Returns
    -------
    ref : `lsst.daf.butler.DatasetRef`
        The stored dataset.

    Raises
    ------
    lsst.meas.realbogus.errors.ModelPackageError
        Raised with a one-line message if it cannot be stored.
    """
    from lsst.daf.butler import DatasetType

    try:
        butler.registry.registerDatasetType(
            DatasetType(dataset_type, (), STORAGE_CLASS, universe=butler.dimensions)
        )
        butler.collections.register(run)
        return butler.put(package, dataset_type, run=run)
    except Exception as exc:
        raise ModelPackageError(f"cannot store {dataset_type} in {run!r}: {one_line(exc)}") from None
