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
and DIA sources, under their AP names.
"""

from __future__ import annotations

__all__ = ["TripletInputConnections"]

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

_DIMENSIONS = ("instrument", "visit", "detector")


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
