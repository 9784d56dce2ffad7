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

"""Triplets from `lsst.images` images: the planes the extractor reads, the
check that the three images share one pixel grid (bounding box and WCS),
and `extract_triplets_from_images`, which the tasks call.
"""

from __future__ import annotations

__all__ = ["TripletImagesConfig", "check_same_grid", "extract_triplets_from_images", "planes_from_image"]

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

import lsst.pex.config as pexConfig

from ..errors import ImageMismatchError
from ._contract import CutoutConfig
from ._extractTriplets import ImagePlanes, Triplets, extract_triplets

if TYPE_CHECKING:
    from lsst.images import MaskedImage, SkyProjection


class TripletImagesConfig(pexConfig.Config):
    """Checks of the three images a triplet is cut from (a mixin of the
    configs of the tasks that cut triplets).
    """

    maxWcsOffset = pexConfig.RangeField(
        dtype=float,
        default=0.1,
        min=0.0,
        doc="Largest offset, in pixels, allowed between where the template's or difference image's WCS "
        "and the science image's WCS put the same sky point (image corners and centre); more is refused "
        "as images not on one pixel grid.",
    )


def planes_from_image(image: MaskedImage, bad_mask_planes: Sequence[str] = ("NO_DATA",)) -> ImagePlanes:
    """Collect the planes of an `lsst.images` masked image.

    Parameters
    ----------
    image : `lsst.images.MaskedImage`
        A masked image (`lsst.images.VisitImage`,
        `lsst.images.DifferenceImage`), or any object with ``image``,
        ``variance`` and ``mask`` attributes as they have.
    bad_mask_planes : `~collections.abc.Sequence` [`str`]
        Mask planes whose pixels count as missing; planes the mask does not
        have are ignored.

    Returns
    -------
    planes : `ImagePlanes`
    """
    pixels = image.image
    packed = bits = None
    mask = getattr(image, "mask", None)
    if mask is not None and bad_mask_planes:
        present = [name for name in bad_mask_planes if name in set(mask.schema.names)]
        if present:
            packed = np.asarray(mask.array)
            bits = mask.schema.bitmask(*present)
    variance = getattr(image, "variance", None)
    return ImagePlanes(
        image=np.asarray(pixels.array),
        variance=None if variance is None else np.asarray(variance.array),
        x0=int(pixels.bbox.x.start),
        y0=int(pixels.bbox.y.start),
        mask=packed,
        maskBits=bits,
    )


def check_same_grid(
    template: MaskedImage, science: MaskedImage, difference: MaskedImage, max_offset: float = 0.1
) -> None:
    """Check that three `lsst.images` images share one pixel grid.

    Parameters
    ----------
    template, science, difference : `lsst.images.MaskedImage` subclasses
        The images; a WCS is compared only where both images have one.
    max_offset : `float`, optional
        Largest offset allowed, in pixels.

    Raises
    ------
    ImageMismatchError
        Raised if the bounding boxes differ, or the WCSs disagree by more
        than ``max_offset`` pixels at the corners or centre.
    """
    reference = science.bbox
    others = (("template", template), ("difference", difference))
    for name, image in others:
        if image.bbox != reference:
            raise ImageMismatchError(
                f"the {name} image covers {image.bbox} but the science image covers {reference}; the "
                "triplet images must be on one pixel grid.",
                {"image": name, "bbox": str(image.bbox), "scienceBbox": str(reference)},
            )
    science_wcs = getattr(science, "sky_projection", None)
    if science_wcs is None:
        return
    xs = np.array([reference.x.start, reference.x.stop - 1, reference.x.start, reference.x.stop - 1,
                   (reference.x.start + reference.x.stop - 1) / 2], dtype=float)
    ys = np.array([reference.y.start, reference.y.start, reference.y.stop - 1, reference.y.stop - 1,
                   (reference.y.start + reference.y.stop - 1) / 2], dtype=float)
    for name, image in others:
        wcs = getattr(image, "sky_projection", None)
        if wcs is None or wcs is science_wcs:
            continue
        worst = _largest_wcs_offset(wcs, science_wcs, xs, ys)
        if not worst <= max_offset:
            raise ImageMismatchError(
                f"the {name} image's WCS puts pixels up to {worst:.3g} px away from where the science "
                f"image's WCS does (maxWcsOffset={max_offset}); the triplet images must be on one pixel "
                "grid.",
                {"image": name, "wcsOffsetPixels": worst, "maxWcsOffset": float(max_offset)},
            )


def _largest_wcs_offset(
    wcs: SkyProjection, science_wcs: SkyProjection, xs: np.ndarray, ys: np.ndarray
) -> float:
    """Return how far, in science pixels, the science WCS puts the sky
    points that ``wcs`` puts at pixels ``(xs, ys)``, at the most (inf if
    none maps).
    """
    # The low-level transforms (sky in ICRS radians) skip building an
    # astropy SkyCoord, which cost 0.35 ms an image, 10x the transforms.
    sky = wcs.pixel_to_sky_transform.apply_forward(x=xs, y=ys)
    back = science_wcs.pixel_to_sky_transform.apply_inverse(x=sky.x, y=sky.y)
    offset = np.hypot(np.asarray(back.x, dtype=float) - xs, np.asarray(back.y, dtype=float) - ys)
    return float(np.nanmax(offset)) if np.isfinite(offset).any() else float("inf")


def extract_triplets_from_images(
    template: MaskedImage,
    science: MaskedImage,
    difference: MaskedImage,
    x: np.ndarray,
    y: np.ndarray,
    config: CutoutConfig,
    max_wcs_offset: float = 0.1,
    threads: int = 1,
) -> Triplets:
    """Cut triplets from `lsst.images` masked images.

    This is what `BuildTripletsTask` and `ComputeReliabilityTask` call.

    Parameters
    ----------
    template, science, difference : `lsst.images.MaskedImage` subclasses
        The warped template, science and difference images of one
        detector-visit.
    x, y : `numpy.ndarray`, (N,)
        Source positions in parent pixel coordinates.
    config : `CutoutConfig`
        Size and normalization.
    max_wcs_offset : `float`, optional
        Largest disagreement of the images' WCSs, pixels (see
        `check_same_grid`).
    threads : `int`, optional
        Threads to cut the channels with (see `extract_triplets`).

    Returns
    -------
    triplets : `Triplets`

    Raises
    ------
    ImageMismatchError
        Raised if the images are not on one pixel grid.
    """
    check_same_grid(template, science, difference, max_wcs_offset)
    planes = [planes_from_image(image, config.badMaskPlanes) for image in (template, science, difference)]
    return extract_triplets(planes, x, y, config, threads=threads)
