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

"""Cutout triplets: the template/science/difference contract (`CHANNELS`,
`CutoutConfig`), the stamp cutter the simulator measures with, the one
triplet extractor that cuts for training and scoring alike, its compiled
kernels, the image adapters (`lsst.images` images and afw Exposures) with
the one-pixel-grid check, and `BuildTripletsTask`, which writes
``rb_triplets``.

Modules: ``_contract`` (`CHANNELS`, `CutoutConfig`), ``_stamps``
(`stamp_origin`, `extract_stamps`), ``_extractTriplets`` (`ImagePlanes`,
`Triplets`, `extract_triplets`), ``_arrayKernels`` (its compiled kernels),
``_threads`` (its thread runner, internal), ``_images``
(`planes_from_image`, `planes_from_exposure`, `image_grid`,
`check_same_grid`, `extract_triplets_from_images`, `TripletImagesConfig`),
``_sourceCatalogs`` (`SourceColumnsConfig`, `as_astropy_table`, `psf_snr`,
the catalog checks), ``_connections`` (`TripletInputConnections` and the
storage classes it reads with, `TripletInputStorageConfig`) and
``_buildTriplets``.
"""

from ._arrayKernels import *
from ._buildTriplets import *
from ._connections import *
from ._contract import *
from ._extractTriplets import *
from ._images import *
from ._sourceCatalogs import *
from ._stamps import *
