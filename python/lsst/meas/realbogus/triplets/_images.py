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

"""Triplets from the images of a Butler repository: the planes the
extractor reads, the check that the three images share one pixel grid
(bounding box and WCS), and `extract_triplets_from_images`, which the tasks
call.

Two kinds of image are read, by one code path: `lsst.images` masked images
(`~lsst.images.VisitImage`, `~lsst.images.DifferenceImage`,
`~lsst.images.MaskedImage`: what ``rb-simulate`` writes) and afw
Exposures (``lsst.afw.image.ExposureF``: what the AP pipeline writes, read
in a full stack). `image_grid` and `planes_from_image` reduce either to
what cutting needs (pixel arrays, the packed mask and the bits of the bad
mask planes by name, the parent origin, and the WCS), so the cutouts of an
afw Exposure are those of the same pixels as an lsst.images image.
"""

from __future__ import annotations

__all__ = [
    "ImageGrid",
    "TripletImagesConfig",
    "check_same_grid",
    "extract_triplets_from_images",
    "image_grid",
    "is_afw_exposure",
    "planes_from_exposure",
    "planes_from_image",
]

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import lsst.pex.config as pexConfig

from ..errors import ImageMismatchError
from ._contract import CutoutConfig
from ._extractTriplets import ImagePlanes, Triplets, extract_triplets

if TYPE_CHECKING:
    from lsst.images import MaskedImage


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


def is_afw_exposure(image: Any) -> bool:
    """Return whether an image is an afw Exposure (it has
    ``getMaskedImage``), rather than an `lsst.images` masked image.
    """
    return callable(getattr(image, "getMaskedImage", None))


def planes_from_image(image: Any, bad_mask_planes: Sequence[str] = ("NO_DATA",)) -> ImagePlanes:
    """Collect the planes of an `lsst.images` masked image or an afw
    Exposure.

    Parameters
    ----------
    image : `lsst.images.MaskedImage` or `lsst.afw.image.Exposure`
        A masked image (`lsst.images.VisitImage`,
        `lsst.images.DifferenceImage`, or any object with ``image``,
        ``variance`` and ``mask`` attributes as they have), or an afw
        Exposure (see `planes_from_exposure`).
    bad_mask_planes : `~collections.abc.Sequence` [`str`]
        Mask planes whose pixels count as missing; planes the mask does not
        have are ignored.

    Returns
    -------
    planes : `ImagePlanes`
    """
    if is_afw_exposure(image):
        return planes_from_exposure(image, bad_mask_planes)
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


def planes_from_exposure(exposure: Any, bad_mask_planes: Sequence[str] = ("NO_DATA",)) -> ImagePlanes:
    """Collect the planes of an afw Exposure.

    Parameters
    ----------
    exposure : `lsst.afw.image.Exposure`
        An Exposure, such as the AP pipeline's ``ExposureF`` images; only its
        masked image is read (no detector, PSF or visit info is needed, so a
        template from ``GetTemplateTask`` will do).
    bad_mask_planes : `~collections.abc.Sequence` [`str`]
        Mask planes whose pixels count as missing; planes the mask does not
        define are ignored.

    Returns
    -------
    planes : `ImagePlanes`
        The image and variance arrays (views), the mask as one integer word
        per pixel with the bits of the bad planes (afw's
        ``Mask.getPlaneBitMask``), and the parent origin of pixel ``[0, 0]``.
    """
    masked = exposure.getMaskedImage()
    mask = masked.getMask()
    packed = bits = None
    if bad_mask_planes:
        defined = mask.getMaskPlaneDict()
        present = [name for name in bad_mask_planes if name in defined]
        if present:
            packed = np.asarray(mask.array)
            bits = np.array([mask.getPlaneBitMask(present)], dtype=packed.dtype)
    box = exposure.getBBox()
    return ImagePlanes(
        image=np.asarray(masked.getImage().array),
        variance=np.asarray(masked.getVariance().array),
        x0=int(box.getMinX()),
        y0=int(box.getMinY()),
        mask=packed,
        maskBits=bits,
    )


@dataclasses.dataclass(frozen=True)
class ImageGrid:
    """The pixel grid of one image: its bounding box and WCS.

    Attributes
    ----------
    box : `tuple` [`int`, `int`, `int`, `int`]
        ``(x0, y0, width, height)`` of the image in parent pixels.
    description : `str`
        The bounding box as the image's own type prints it, for messages.
    wcs : `object` or `None`
        The image's WCS object (`None` if it has none); the same object
        compares equal without transforming.
    pixel_to_sky : `~collections.abc.Callable` or `None`
        ``(x, y) -> (ra, dec)``, ICRS radians, of arrays.
    sky_to_pixel : `~collections.abc.Callable` or `None`
        The inverse.
    """

    box: tuple[int, int, int, int]
    description: str
    wcs: Any = None
    pixel_to_sky: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    sky_to_pixel: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None


def image_grid(image: Any) -> ImageGrid:
    """Return the pixel grid of an `lsst.images` masked image or an afw
    Exposure.
    """
    if is_afw_exposure(image):
        box = image.getBBox()
        wcs = image.getWcs()
        return ImageGrid(
            box=(int(box.getMinX()), int(box.getMinY()), int(box.getWidth()), int(box.getHeight())),
            description=str(box),
            wcs=wcs,
            pixel_to_sky=None if wcs is None else wcs.pixelToSkyArray,
            sky_to_pixel=None if wcs is None else wcs.skyToPixelArray,
        )
    bbox = image.bbox
    wcs = getattr(image, "sky_projection", None)
    to_sky = from_sky = None
    if wcs is not None:
        # The low-level transforms (sky in ICRS radians) skip building an
        # astropy SkyCoord, which cost 0.35 ms an image, 10x the transforms.
        transform = wcs.pixel_to_sky_transform

        def to_sky(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sky = transform.apply_forward(x=x, y=y)
            return sky.x, sky.y

        def from_sky(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pixels = transform.apply_inverse(x=ra, y=dec)
            return pixels.x, pixels.y

    return ImageGrid(
        box=(int(bbox.x.start), int(bbox.y.start), int(bbox.x.stop - bbox.x.start),
             int(bbox.y.stop - bbox.y.start)),
        description=str(bbox),
        wcs=wcs,
        pixel_to_sky=to_sky,
        sky_to_pixel=from_sky,
    )


def check_same_grid(template: Any, science: Any, difference: Any, max_offset: float = 0.1) -> None:
    """Check that three images share one pixel grid.

    Parameters
    ----------
    template, science, difference : `lsst.images.MaskedImage` or `lsst.afw.image.Exposure`
        The images (either kind, see `image_grid`); a WCS is compared only
        where both images have one.
    max_offset : `float`, optional
        Largest offset allowed, in pixels.

    Raises
    ------
    ImageMismatchError
        Raised if the bounding boxes differ, or the WCSs disagree by more
        than ``max_offset`` pixels at the corners or centre.
    """
    reference = image_grid(science)
    others = (("template", image_grid(template)), ("difference", image_grid(difference)))
    for name, grid in others:
        if grid.box != reference.box:
            raise ImageMismatchError(
                f"the {name} image covers {grid.description} but the science image covers "
                f"{reference.description}; the triplet images must be on one pixel grid.",
                {"image": name, "bbox": grid.description, "scienceBbox": reference.description},
            )
    if reference.sky_to_pixel is None:
        return
    x0, y0, width, height = reference.box
    x1, y1 = x0 + width - 1, y0 + height - 1
    xs = np.array([x0, x1, x0, x1, (x0 + x1) / 2], dtype=float)
    ys = np.array([y0, y0, y1, y1, (y0 + y1) / 2], dtype=float)
    for name, grid in others:
        if grid.pixel_to_sky is None or grid.wcs is reference.wcs:
            continue
        worst = _largest_wcs_offset(grid, reference, xs, ys)
        if not worst <= max_offset:
            raise ImageMismatchError(
                f"the {name} image's WCS puts pixels up to {worst:.3g} px away from where the science "
                f"image's WCS does (maxWcsOffset={max_offset}); the triplet images must be on one pixel "
                "grid.",
                {"image": name, "wcsOffsetPixels": worst, "maxWcsOffset": float(max_offset)},
            )


def _largest_wcs_offset(grid: ImageGrid, science: ImageGrid, xs: np.ndarray, ys: np.ndarray) -> float:
    """Return how far, in science pixels, the science WCS puts the sky
    points that ``grid``'s WCS puts at pixels ``(xs, ys)``, at the most (inf
    if none maps).
    """
    ra, dec = grid.pixel_to_sky(xs, ys)
    back_x, back_y = science.sky_to_pixel(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float))
    offset = np.hypot(np.asarray(back_x, dtype=float) - xs, np.asarray(back_y, dtype=float) - ys)
    return float(np.nanmax(offset)) if np.isfinite(offset).any() else float("inf")


def extract_triplets_from_images(
    template: MaskedImage | Any,
    science: MaskedImage | Any,
    difference: MaskedImage | Any,
    x: np.ndarray,
    y: np.ndarray,
    config: CutoutConfig,
    max_wcs_offset: float = 0.1,
    threads: int = 1,
) -> Triplets:
    """Cut triplets from `lsst.images` masked images or afw Exposures.

    This is what `BuildTripletsTask` and `ComputeReliabilityTask` call.

    Parameters
    ----------
    template, science, difference : `lsst.images.MaskedImage` or `lsst.afw.image.Exposure`
        The warped template, science and difference images of one
        detector-visit (either kind, mixed or not).
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
