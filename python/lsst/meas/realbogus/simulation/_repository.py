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

"""The simulator's Butler repository: its creation, the simulated dataset
types, and writing one detector-visit's datasets (all or none).
"""

from __future__ import annotations

__all__ = (
    "DATASET_DIMENSIONS",
    "DATASET_TYPES",
    "DetectorVisitProduct",
    "create_repository",
    "make_datasets",
    "register_dataset_types",
    "write_detector_visit",
)

import dataclasses
import os
import shutil
from collections.abc import Iterable

import numpy as np
from astropy.table import Table
from astropy.time import Time

from lsst.daf.butler import Butler, Config, DatasetRef, DatasetType
from lsst.images import DifferenceImage, VisitImage

from ..errors import RepositoryExistsError
from ._imageFactory import ImageFactory
from ._imageStorage import image_storage_config
from ._instrument import INSTRUMENT
from ._tanWcs import TanWcs

DATASET_TYPES: dict[str, str] = {
    "preliminary_visit_image": "VisitImage",
    "template_detector": "DifferenceImage",
    "difference_image": "DifferenceImage",
    "dia_source_unstandardized": "ArrowAstropy",
    "dia_source_truth": "ArrowAstropy",
}
"""Storage class of each simulated dataset type; all have dimensions
``{instrument, visit, detector}``."""

DATASET_DIMENSIONS = ("instrument", "visit", "detector")
"""Dimensions of every simulated dataset type."""


def create_repository(root: str, *, overwrite: bool = False, compress_images: bool = False) -> Butler:
    """Create a new, empty Butler repository (SQLite registry, file
    datastore).

    Parameters
    ----------
    root : `str`
        Local directory of the repository.
    overwrite : `bool`, optional
        If `True`, an existing Butler repository at ``root`` is deleted
        first.  A directory that is not a Butler repository (no
        ``butler.yaml``) is never deleted.
    compress_images : `bool`, optional
        Compress every plane of the images (lsst.images' default); by
        default the image and variance planes are stored uncompressed
        (see `UncompressedImageFormatter`).

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler for the new repository.

    Raises
    ------
    RepositoryExistsError
        Raised if ``root`` is a non-empty directory and ``overwrite`` is
        `False`, if ``overwrite`` is `True` but ``root`` is not a Butler
        repository, or if ``root`` is a file.  Nothing is touched then.
    """
    root = os.path.abspath(root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise RepositoryExistsError(f"Cannot create a repository at {root}: it is a file.")
    if os.path.isdir(root) and os.listdir(root):
        if not overwrite:
            raise RepositoryExistsError(
                f"Directory {root} exists and is not empty; "
                "use overwrite=True to replace a Butler repository."
            )
        if not os.path.isfile(os.path.join(root, "butler.yaml")):
            raise RepositoryExistsError(
                f"Refusing to delete {root}: it is not a Butler repository (no butler.yaml)."
            )
        shutil.rmtree(root)
    # The package's model storage class goes into the new butler.yaml so
    # that pipetask can store rb_model without extra set-up.
    # Imported here: the models package imports torch, which workers do not need.
    from ..models import butler_config

    config = Config(butler_config())
    config.update(image_storage_config(compress_images))
    Butler.makeRepo(root, config=config)
    return Butler.from_config(root, writeable=True)


def register_dataset_types(butler: Butler) -> dict[str, DatasetType]:
    """Register the simulated dataset types (`DATASET_TYPES`).

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.

    Returns
    -------
    dataset_types : `dict` [`str`, `lsst.daf.butler.DatasetType`]
        The dataset types, by name.
    """
    result = {}
    for name, storage_class in DATASET_TYPES.items():
        dataset_type = DatasetType(name, DATASET_DIMENSIONS, storage_class, universe=butler.dimensions)
        butler.registry.registerDatasetType(dataset_type)
        result[name] = dataset_type
    return result


# -- datasets -------------------------------------------------------------------


@dataclasses.dataclass
class DetectorVisitProduct:
    """Everything the simulator made for one detector-visit, as plain numpy
    and astropy data (picklable, so it can come back from worker processes).

    Images are in nJy and variances in nJy², all on the science pixel grid
    (``wcs``); mask dictionaries map Rubin mask plane names to boolean
    arrays (see `make_mask`).
    """

    visit: int
    detector: int
    band: str
    physical_filter: str
    wcs: TanWcs
    science_psf_sigma: float
    template_psf_sigma: float
    difference_psf_sigma: float
    science_image: np.ndarray
    science_variance: np.ndarray
    science_masks: dict[str, np.ndarray]
    template_image: np.ndarray
    template_variance: np.ndarray
    template_masks: dict[str, np.ndarray]
    difference_image: np.ndarray
    difference_variance: np.ndarray
    difference_masks: dict[str, np.ndarray]
    sources: Table
    truth: Table
    obs_time: Time
    exposure_time_s: float
    detector_shape: tuple[int, int] | None = None
    """Full detector shape ``(ny, nx)``; the image shape if `None`."""

    @property
    def data_id(self) -> dict[str, int | str]:
        """Butler data ID of the detector-visit (`dict`)."""
        return {"instrument": INSTRUMENT, "visit": self.visit, "detector": self.detector}

    def image_factory(self) -> ImageFactory:
        """Return the builder of this detector-visit's `lsst.images` images
        (`ImageFactory`).
        """
        return ImageFactory(
            wcs=self.wcs,
            band=self.band,
            physical_filter=self.physical_filter,
            visit=self.visit,
            detector=self.detector,
            exposure_time_s=self.exposure_time_s,
            obs_time=self.obs_time,
            instrument=INSTRUMENT,
            detector_shape=self.detector_shape,
        )


def make_datasets(product: DetectorVisitProduct) -> dict[str, VisitImage | DifferenceImage | Table]:
    """Build the in-memory datasets of a detector-visit, by dataset type."""
    factory = product.image_factory()
    return {
        "preliminary_visit_image": factory.visit_image(
            product.science_image, product.science_variance, product.science_masks, product.science_psf_sigma
        ),
        "template_detector": factory.difference_image(
            product.template_image,
            product.template_variance,
            product.template_masks,
            product.template_psf_sigma,
        ),
        "difference_image": factory.difference_image(
            product.difference_image,
            product.difference_variance,
            product.difference_masks,
            product.difference_psf_sigma,
        ),
        "dia_source_unstandardized": _as_table(product.sources, "sources"),
        "dia_source_truth": _as_table(product.truth, "truth"),
    }


def _as_table(table: object, what: str) -> Table:
    """Check that a catalog is an `astropy.table.Table` (a product made by
    hand may hold anything).
    """
    if not isinstance(table, Table):
        raise TypeError(f"DetectorVisitProduct.{what} must be an astropy Table; got {type(table).__name__}.")
    return table


def write_detector_visit(butler: Butler, run: str, product: DetectorVisitProduct) -> dict[str, DatasetRef]:
    """Write the five datasets of one detector-visit, all or none.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler whose repository has the dimension records of the
        detector-visit and the dataset types (`register_dataset_types`).
    run : `str`
        RUN collection to write to; registered if needed.
    product : `DetectorVisitProduct`
        What to write.

    Returns
    -------
    refs : `dict` [`str`, `lsst.daf.butler.DatasetRef`]
        The written datasets, by dataset type name.

    Notes
    -----
    All in-memory objects are built before anything is written, and the puts
    run in one Butler transaction: if one fails, the datasets (registry
    entries and files) already written for this detector-visit are removed
    before the exception propagates.
    """
    datasets = make_datasets(product)
    butler.collections.register(run)
    refs: dict[str, DatasetRef] = {}
    try:
        with butler.transaction():
            for name, dataset in datasets.items():
                refs[name] = butler.put(dataset, name, product.data_id, run=run)
    except BaseException:
        _remove_leftovers(butler, refs.values())
        raise
    return refs


def _remove_leftovers(butler: Butler, refs: Iterable[DatasetRef]) -> None:
    """Remove datasets that survived a rolled-back transaction, if any."""
    leftovers = [ref for ref in refs if butler.stored(ref) or _known(butler, ref)]
    if leftovers:
        butler.pruneDatasets(leftovers, purge=True, unstore=True, disassociate=True)


def _known(butler: Butler, ref: DatasetRef) -> bool:
    """Return whether the registry still knows a dataset."""
    return butler.get_dataset(ref.id) is not None
