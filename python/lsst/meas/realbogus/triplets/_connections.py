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

"""Connections shared by the per-detector tasks: the AP pipeline's images
and DIA sources, under their AP names, with storage classes the config
chooses.

The defaults read a repository made by ``rb-simulate`` (lsst.images images,
Parquet catalogs); ``config/ap/computeReliability.py`` reads what a real AP
repository holds (``ExposureF`` images, a ``SourceCatalog`` read as an
astropy table).
"""

from __future__ import annotations

__all__ = ["TripletInputConnections", "TripletInputStorageConfig", "replace_storage_class"]

import dataclasses

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

_DIMENSIONS = ("instrument", "visit", "detector")

_IMAGE_STORAGE_CLASSES = (
    "Storage class to read it with: an lsst.images type (VisitImage, DifferenceImage, MaskedImageV2) or an "
    "afw Exposure (ExposureF, which needs lsst.afw); only its image, variance and mask planes and its WCS "
    "are used."
)


class TripletInputStorageConfig(pexConfig.Config):
    """Storage classes of the triplet inputs (a mixin of the configs of
    the tasks that cut triplets; `TripletInputConnections` applies them).
    """

    scienceStorageClass = pexConfig.Field(
        dtype=str, default="VisitImage", doc=f"Science image. {_IMAGE_STORAGE_CLASSES}"
    )
    templateStorageClass = pexConfig.Field(
        dtype=str,
        default="DifferenceImage",
        doc="Warped template, used as a plain masked image (a real template, an afw ExposureF, carries no "
        "detector, which its conversions to VisitImage or DifferenceImage need: read it as ExposureF). "
        f"{_IMAGE_STORAGE_CLASSES}",
    )
    differenceStorageClass = pexConfig.Field(
        dtype=str, default="DifferenceImage", doc=f"Difference image. {_IMAGE_STORAGE_CLASSES}"
    )
    diaSourcesStorageClass = pexConfig.Field(
        dtype=str,
        default="ArrowAstropy",
        doc="Storage class to read the DIA sources with: ArrowAstropy (Parquet, as rb-simulate writes), "
        "AstropyTable (converts a real SourceCatalog with afw's asAstropy) or SourceCatalog (an afw "
        "catalog, converted by the task).",
    )


def replace_storage_class(connection: cT.BaseConnection, storage_class: str) -> cT.BaseConnection:
    """Return a connection with another storage class (connections are
    frozen dataclasses).
    """
    if connection.storageClass == storage_class:
        return connection
    return dataclasses.replace(connection, storageClass=storage_class)


class TripletInputConnections(pipeBase.PipelineTaskConnections, dimensions=_DIMENSIONS):
    """The inputs a triplet is cut from, and the sources it is cut around."""

    template = cT.Input(
        doc="Template warped to the science image.",
        name="template_detector",
        storageClass="DifferenceImage",
        dimensions=_DIMENSIONS,
    )
    science = cT.Input(
        doc="Science (visit) image.",
        name="preliminary_visit_image",
        storageClass="VisitImage",
        dimensions=_DIMENSIONS,
    )
    difference = cT.Input(
        doc="Difference image.",
        name="difference_image",
        storageClass="DifferenceImage",
        dimensions=_DIMENSIONS,
    )
    diaSources = cT.Input(
        doc="DIA sources detected on the difference image.",
        name="dia_source_unstandardized",
        storageClass="ArrowAstropy",
        dimensions=_DIMENSIONS,
    )

    def __init__(self, *, config: TripletInputStorageConfig | None = None):
        super().__init__(config=config)
        if config is None:
            return
        self.science = replace_storage_class(self.science, config.scienceStorageClass)
        self.template = replace_storage_class(self.template, config.templateStorageClass)
        self.difference = replace_storage_class(self.difference, config.differenceStorageClass)
        self.diaSources = replace_storage_class(self.diaSources, config.diaSourcesStorageClass)
