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

"""Build the `lsst.images` images of a simulated detector-visit from plain
numpy arrays.

The physics code of the simulator works with numpy arrays, a simple
gnomonic `TanWcs` and Gaussian PSF widths; `ImageFactory` turns those into
the `lsst.images.VisitImage` and `lsst.images.DifferenceImage` objects that
are written to the Butler.
"""

from __future__ import annotations

__all__ = ("ImageFactory",)

import dataclasses
import math
from collections.abc import Mapping
from typing import TypeVar

import astropy.units as u
import numpy as np
from astro_metadata_translator import ObservationInfo
from astropy.time import Time

from lsst.images import Box, DifferenceImage, Image, VisitImage
from lsst.images.cameras import Detector
from lsst.images.psfs import GaussianPointSpreadFunction

from ._instrument import INSTRUMENT, detector_full_name, make_detector
from ._maskPlanes import make_mask
from ._tanWcs import TanWcs

# VisitImage or DifferenceImage: they take the same constructor arguments.
_ImageT = TypeVar("_ImageT", VisitImage, DifferenceImage)


@dataclasses.dataclass(frozen=True)
class ImageFactory:
    """Builder of the `lsst.images` images of one detector-visit.

    The science image, the warped template and the difference of a
    detector-visit share their pixel grid, observation and detector; those
    are the factory's fields, and each image's arrays, masks and PSF width
    are the arguments of `visit_image` and `difference_image`.

    Parameters
    ----------
    wcs : `TanWcs`
        Pixel-to-sky mapping of the arrays (0-based pixels; that of the
        science image).
    band : `str`
        Band name, e.g. ``"r"``.
    physical_filter : `str`
        Physical filter name of the science visit, e.g. ``"r_sim_1.4"``.
    visit : `int`
        Science visit id.
    detector : `int`
        Detector id (0-188).
    exposure_time_s : `float`
        Exposure time of the science visit in seconds.
    obs_time : `astropy.time.Time`
        Start of the science exposure.
    instrument : `str`, optional
        Butler instrument name.
    detector_shape : `tuple` [`int`, `int`], optional
        Full detector shape ``(ny, nx)``; defaults to each image's shape.
        An image covers ``[0:ny, 0:nx]`` of the detector.
    """

    wcs: TanWcs
    band: str
    physical_filter: str
    visit: int
    detector: int
    exposure_time_s: float
    obs_time: Time
    instrument: str = INSTRUMENT
    detector_shape: tuple[int, int] | None = None

    def visit_image(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        mask_planes: Mapping[str, np.ndarray],
        psf_sigma_pixels: float,
    ) -> VisitImage:
        """Make an `lsst.images.VisitImage` (``preliminary_visit_image``).

        Parameters
        ----------
        image : `numpy.ndarray`
            Calibrated pixel values in nJy, shape ``(ny, nx)``; stored as
            float32.
        variance : `numpy.ndarray`
            Per-pixel variance in nJy², same shape; stored as float32.
        mask_planes : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
            Boolean arrays keyed by mask plane name (see `make_mask`).
        psf_sigma_pixels : `float`
            Gaussian PSF width (sigma) in pixels.

        Returns
        -------
        visit_image : `lsst.images.VisitImage`
            The image, with a
            `~lsst.images.psfs.GaussianPointSpreadFunction`, a nominal
            `~lsst.images.cameras.Detector` and an
            `~astro_metadata_translator.ObservationInfo`.

        Raises
        ------
        ValueError
            Raised if the arrays do not have one 2-d shape that fits in the
            detector, or for an unknown mask plane.
        """
        return self._make(VisitImage, image, variance, mask_planes, psf_sigma_pixels)

    def difference_image(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        mask_planes: Mapping[str, np.ndarray],
        psf_sigma_pixels: float,
    ) -> DifferenceImage:
        """Make an `lsst.images.DifferenceImage`: the warped template
        (``template_detector``) or the difference (``difference_image``),
        both on the science image's pixel grid.

        The parameters, returned metadata and errors are those of
        `visit_image`; no kernel or template provenance is attached.
        """
        return self._make(DifferenceImage, image, variance, mask_planes, psf_sigma_pixels)

    def obs_info(self) -> ObservationInfo:
        """Return the `~astro_metadata_translator.ObservationInfo` of the
        detector-visit.
        """
        begin = self.obs_time.tai
        exposure_time = self.exposure_time_s * u.s
        raft, sensor = detector_full_name(self.detector).split("_")
        return ObservationInfo(
            instrument=self.instrument,
            physical_filter=self.physical_filter,
            exposure_time=exposure_time,
            exposure_time_requested=exposure_time,
            dark_time=exposure_time,
            datetime_begin=begin,
            datetime_end=begin + exposure_time,
            visit_id=self.visit,
            exposure_id=self.visit,
            observation_id=f"{self.instrument}_{self.visit}",
            detector_num=self.detector,
            detector_name=sensor,
            detector_group=raft,
            detector_unique_name=f"{raft}_{sensor}",
            detector_serial=f"ITL-SIM-{self.detector:03d}",
            observation_type="science",
            observation_reason="science",
            science_program="DC2",
            has_simulated_content=True,
            can_see_sky=True,
        )

    def camera_detector(self, image_shape: tuple[int, int]) -> Detector:
        """Return the `lsst.images.cameras.Detector` of an image.

        Parameters
        ----------
        image_shape : `tuple` [`int`, `int`]
            Shape ``(ny, nx)`` of the image; the detector's if
            ``detector_shape`` is `None`.

        Raises
        ------
        ValueError
            Raised if the image does not fit in the detector.
        """
        detector_shape = image_shape if self.detector_shape is None else self.detector_shape
        detector_shape = (int(detector_shape[0]), int(detector_shape[1]))
        if image_shape[0] > detector_shape[0] or image_shape[1] > detector_shape[1]:
            raise ValueError(f"image shape {image_shape} does not fit in detector shape {detector_shape}.")
        return make_detector(self.detector, detector_shape, instrument=self.instrument, visit=self.visit)

    def _make(
        self,
        image_type: type[_ImageT],
        image: np.ndarray,
        variance: np.ndarray,
        mask_planes: Mapping[str, np.ndarray],
        psf_sigma_pixels: float,
    ) -> _ImageT:
        """Make an image of ``image_type``: the one implementation of
        `visit_image` and `difference_image`.
        """
        image = np.asarray(image)
        variance = np.asarray(variance)
        if image.ndim != 2:
            raise ValueError(f"image must be 2-d; got shape {image.shape}.")
        if variance.shape != image.shape:
            raise ValueError(f"variance shape {variance.shape} differs from image shape {image.shape}.")
        shape = (int(image.shape[0]), int(image.shape[1]))
        camera_detector = self.camera_detector(shape)
        bbox = Box.factory[0 : shape[0], 0 : shape[1]]
        sky_projection = self.wcs.to_sky_projection(camera_detector.frame, pixel_bounds=camera_detector.bbox)
        return image_type(
            Image(image.astype(np.float32), bbox=bbox, unit=u.nJy, sky_projection=sky_projection),
            mask=make_mask(mask_planes, shape),
            variance=Image(variance.astype(np.float32), bbox=bbox, unit=u.nJy**2),
            obs_info=self.obs_info(),
            psf=GaussianPointSpreadFunction(
                float(psf_sigma_pixels),
                bounds=camera_detector.bbox,
                stamp_size=2 * int(math.ceil(5.0 * psf_sigma_pixels)) + 1,
            ),
            detector=camera_detector,
            band=self.band,
        )
