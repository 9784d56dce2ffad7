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

"""The one triplet extractor: template/science/difference cutouts around
source positions, normalized.

The triplet builder (training) and the scoring task (inference) both cut
here, so a source sees the same pixels, normalized the same way, in
training and inference. The per-pixel work of a triplet channel (gather,
missing-pixel tests, the two medians of the normalization, and the 'snr'
standardization) runs in one compiled pass per stamp,
`~lsst.meas.realbogus.triplets.cut_channel_stamps`; what follows it (the
asinh, or the 'l2' norm) is NumPy's. Stamps are placed as `stamp_origin`
places them.
"""

from __future__ import annotations

__all__ = ["ImagePlanes", "Triplets", "extract_triplets"]

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import ImageMismatchError
from ._arrayKernels import ChannelStamps, cut_channel_stamps
from ._contract import CHANNELS, CutoutConfig
from ._stamps import stamp_origin, stamps_off_image
from ._threads import run_in_threads


@dataclasses.dataclass(frozen=True)
class ImagePlanes:
    """The pixel planes of one channel that cutting needs.

    Attributes
    ----------
    image : `numpy.ndarray`, (H, W)
        Pixel values.
    variance : `numpy.ndarray`, (H, W), or `None`
        Per-pixel variance; required by the 'snr' normalizations.
    bad : `numpy.ndarray` of `bool`, (H, W), or `None`
        Pixels to treat as missing (e.g. NO_DATA).
    x0, y0 : `int`
        Parent coordinates of pixel ``[0, 0]``.
    mask : `numpy.ndarray` of unsigned `int`, (H, W, B), or `None`
        A packed bit mask (as `lsst.images.Mask.array`); pixels where
        ``mask & maskBits`` is nonzero are missing too. Tested only inside
        the stamps, which is much cheaper than unpacking whole planes.
    maskBits : `numpy.ndarray`, (B,), or `None`
        The bits of ``mask`` that mean missing.
    """

    image: np.ndarray
    variance: np.ndarray | None = None
    bad: np.ndarray | None = None
    x0: int = 0
    y0: int = 0
    mask: np.ndarray | None = None
    maskBits: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape)


@dataclasses.dataclass
class Triplets:
    """Cutout triplets of N sources.

    Attributes
    ----------
    cutouts : `numpy.ndarray` of `numpy.float32`, (N, 3, S, S)
        Normalized cutouts, channels in `CHANNELS` order.
    edge : `numpy.ndarray` of `bool`, (N,)
        Part of a cutout fell off an image and was padded.
    noData : `numpy.ndarray` of `bool`, (N,)
        Some pixels inside an image were NaN, inf or in a bad mask plane
        (or a whole channel had no usable noise estimate) and were filled.
    noDataFraction : `numpy.ndarray` of `numpy.float32`, (N,)
        Fraction of the 3*S*S pixels that were filled, for either reason.
    """

    cutouts: np.ndarray
    edge: np.ndarray
    noData: np.ndarray
    noDataFraction: np.ndarray

    def __len__(self) -> int:
        return len(self.cutouts)

    def flag_columns(self) -> dict[str, np.ndarray]:
        """Return the per-source flag columns written to output catalogs."""
        return {
            "cutoutFlags_edge": self.edge,
            "cutoutFlags_noData": self.noData,
            "cutoutNoDataFraction": self.noDataFraction,
        }


def extract_triplets(
    planes: Sequence[ImagePlanes],
    x: np.ndarray,
    y: np.ndarray,
    config: CutoutConfig,
    threads: int = 1,
) -> Triplets:
    """Cut and normalize template/science/difference triplets.

    Parameters
    ----------
    planes : `~collections.abc.Sequence` [`ImagePlanes`]
        The three channels, in `CHANNELS` order.
    x, y : `numpy.ndarray`, (N,)
        Source positions in parent pixel coordinates.
    config : `CutoutConfig`
        Size and normalization.
    threads : `int`, optional
        Threads to cut with (each takes channels of blocks of sources); the
        result does not depend on it.

    Returns
    -------
    triplets : `Triplets`
        Sources near an edge are padded, not dropped; missing pixels are
        filled with ``config.fillValue``; both are flagged.

    Raises
    ------
    ImageMismatchError
        Raised if the planes' shapes or origins differ.
    ValueError
        Raised if there are not three channels, or if a normalization needs
        a variance that is absent.
    """
    _check_one_grid(planes)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if len(x) == 0:
        return _no_triplets(int(config.size))
    cut = _TripletCut.allocate(planes, x, y, config)
    workers = max(int(threads), 1)
    run_in_threads(cut.cut_piece, cut.pieces(workers), workers)
    return cut.triplets()


def _check_one_grid(planes: Sequence[ImagePlanes]) -> None:
    """Check that there are three channels, on one pixel grid.

    Raises
    ------
    ImageMismatchError
        Raised if their shapes or origins differ.
    ValueError
        Raised if there are not three channels.
    """
    if len(planes) != len(CHANNELS):
        raise ValueError(f"need {len(CHANNELS)} channels {CHANNELS}; got {len(planes)}.")
    template = planes[0]
    for name, p in zip(CHANNELS[1:], planes[1:]):
        if p.shape != template.shape or (p.x0, p.y0) != (template.x0, template.y0):
            raise ImageMismatchError(
                f"the {name} image covers {p.shape} at ({p.x0}, {p.y0}) but the template covers "
                f"{template.shape} at ({template.x0}, {template.y0}); the triplet images must be "
                "on one pixel grid.",
                {"image": name, "shape": str(p.shape), "origin": str((p.x0, p.y0)),
                 "templateShape": str(template.shape), "templateOrigin": str((template.x0, template.y0))},
            )


def _no_triplets(size: int) -> Triplets:
    """Return the triplets of no sources."""
    return Triplets(
        cutouts=np.zeros((0, len(CHANNELS), size, size), dtype=np.float32),
        edge=np.zeros(0, dtype=bool),
        noData=np.zeros(0, dtype=bool),
        noDataFraction=np.zeros(0, dtype=np.float32),
    )


@dataclasses.dataclass
class _TripletCut:
    """What one `extract_triplets` call cuts and fills in.

    The work splits into (channel, block of sources) pieces, independent of
    each other; each piece writes its own part of every array, so threads
    need no lock to share them.
    """

    planes: Sequence[ImagePlanes]
    config: CutoutConfig
    x0: np.ndarray
    """Column of each stamp's first pixel in the planes' arrays, (N,)."""
    y0: np.ndarray
    """Row of each stamp's first pixel in the planes' arrays, (N,)."""
    cutouts: np.ndarray
    """The normalized cutouts, (N, 3, S, S) `numpy.float32`."""
    missing: np.ndarray | None
    """The missing pixels, (N, 3, S, S) `bool`; recorded only where they
    are filled after the kernel (`_fills_after_kernel`), which counts them
    in any case."""
    missing_count: np.ndarray
    """Missing pixels of each channel, (3, N) `numpy.int64`."""
    missing_on_image: np.ndarray
    """How many of those lie on the image, (3, N) `numpy.int64`."""

    @classmethod
    def allocate(
        cls, planes: Sequence[ImagePlanes], x: np.ndarray, y: np.ndarray, config: CutoutConfig
    ) -> _TripletCut:
        """Place the stamps and allocate the arrays of N = ``len(x)``
        sources.
        """
        size = int(config.size)
        n = len(x)
        shape = (n, len(CHANNELS), size, size)
        # The planes share one grid (_check_one_grid), so one set of origins.
        x0, y0 = stamp_origin(x - planes[0].x0, y - planes[0].y0, size)
        return cls(
            planes=planes,
            config=config,
            x0=x0,
            y0=y0,
            cutouts=np.empty(shape, dtype=np.float32),
            missing=np.empty(shape, dtype=bool) if _fills_after_kernel(config) else None,
            missing_count=np.empty((len(CHANNELS), n), dtype=np.int64),
            missing_on_image=np.empty((len(CHANNELS), n), dtype=np.int64),
        )

    def pieces(self, workers: int) -> list[tuple[int, slice]]:
        """Split the work into (channel, block of sources) pieces for
        ``workers`` threads: blocks of sources keep two threads evenly
        loaded (three channels alone would not).
        """
        n = len(self.x0)
        blocks = [slice(start, start + -(-n // workers)) for start in range(0, n, -(-n // workers))]
        return [(c, block) for c in range(len(CHANNELS)) for block in blocks]

    def cut_piece(self, piece: tuple[int, slice]) -> None:
        """Cut and normalize one channel of one block of sources."""
        c, block = piece
        stamps = _cut_and_normalize_channel(
            self.planes[c], c, block, self.x0[block], self.y0[block], self.config, self.cutouts, self.missing
        )
        self.missing_count[c, block] = stamps.missing_count
        self.missing_on_image[c, block] = stamps.missing_on_image

    def triplets(self) -> Triplets:
        """Return the cutouts and the flags made of the counts."""
        return Triplets(
            cutouts=self.cutouts,
            edge=stamps_off_image(self.planes[0].shape, self.x0, self.y0, int(self.config.size)),
            noData=self.missing_on_image.sum(axis=0) > 0,
            noDataFraction=(self.missing_count.sum(axis=0) / self.cutouts[0].size).astype(np.float32),
        )


def _fills_after_kernel(config: CutoutConfig) -> bool:
    """Whether missing pixels are filled after the kernel: for 'l2' and
    'none', which the kernel does not normalize, and for 'snrAsinh' with a
    fillValue that s*asinh(v/s) would change (any but +0 and -0, which the
    kernel writes and the asinh keeps).
    """
    return config.normalization in ("l2", "none") or (
        config.normalization == "snrAsinh" and config.fillValue != 0
    )


def _cut_and_normalize_channel(
    p: ImagePlanes,
    channel: int,
    block: slice,
    x0: np.ndarray,
    y0: np.ndarray,
    config: CutoutConfig,
    cutouts: np.ndarray,
    missing_all: np.ndarray | None,
) -> ChannelStamps:
    """Cut and normalize one channel of a block of triplets.

    Writes the normalized stamps whose first pixels are at ``x0``, ``y0``
    (image array indices) into ``cutouts[block, channel]`` and, unless it is
    `None`, their missing pixels into ``missing_all[block, channel]``;
    returns what the kernel measured, with the counts of missing pixels
    final.
    """
    size = int(config.size)
    snr = config.normalization in ("snr", "snrAsinh")
    asinh = config.normalization == "snrAsinh"
    if snr and p.variance is None:
        raise ValueError(f"normalization {config.normalization!r} needs the {CHANNELS[channel]} variance.")
    fill = np.float32(config.fillValue)
    softening = np.float32(config.asinhSoftening)
    refill = _fills_after_kernel(config)
    # The kernel standardizes (the 'snr' family) and fills.
    stamps = cut_channel_stamps(
        p.image, y0, x0, cutouts, missing_all, channel=channel, start=block.start,
        variance=p.variance if snr else None, mask=p.mask, mask_bits=p.maskBits, bad=p.bad,
        standardize=snr, divisor=softening if asinh else 1.0, fill=0.0 if refill else fill,
    )
    out = cutouts[block, channel]
    if asinh:
        np.arcsinh(out, out=out)
        out *= softening
        if refill:
            np.copyto(out, fill, where=missing_all[block, channel])
    elif not snr:
        missing = missing_all[block, channel]
        _normalize_after_kernel(out, stamps.center, config)
        # A channel without a usable norm is filled whole.
        unusable = ~(np.isfinite(out) | missing).all(axis=(1, 2))
        missing |= unusable[:, None, None]
        np.copyto(out, fill, where=missing)
        off_image = stamps.missing_count - stamps.missing_on_image
        stamps.missing_count[unusable] = size * size
        stamps.missing_on_image[unusable] = size * size - off_image[unusable]
    return stamps


def _normalize_after_kernel(stamps: np.ndarray, center: np.ndarray, config: CutoutConfig) -> None:
    """Normalize (N, S, S) stamps of one channel in place by the
    normalizations the kernel does not do ('l2' and 'none'), given each
    stamp's median; missing pixels are NaN and stay NaN, and a stamp
    without a usable norm becomes NaN.
    """
    if config.normalization == "none":
        return
    if config.normalization != "l2":
        raise ValueError(f"normalization {config.normalization!r} is done by the kernel.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing stamps give NaN
        stamps -= center[:, None, None]
        scale = np.sqrt(np.nansum(stamps * stamps, axis=(1, 2)))[:, None, None]
        stamps /= np.where(scale > 0, scale, np.nan)

