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

"""Detector and processing artifacts added to the science exposure.

Each function adds charge (electrons) to an image in place and marks the
pixels it touched in an `ArtifactMap`, which is what the truth matching
reads: a detection on those pixels is labelled with the artifact's class.
"""

from __future__ import annotations

__all__ = [
    "ARTIFACT_CODES",
    "ArtifactMap",
    "add_bad_column",
    "add_cosmic_rays",
    "add_hot_pixels",
    "add_satellite_trail",
    "apply_saturation",
]

import numpy as np

from ..triplets import extract_stamps

# Codes in the artifact map, in order of precedence (higher wins).
ARTIFACT_CODES = {"satellite": 1, "badColumn": 2, "hotPixel": 3, "cosmicRay": 4, "saturated": 5}
_CLASS_OF_CODE = {v: k for k, v in ARTIFACT_CODES.items()}


class ArtifactMap:
    """Per-pixel record of which artifact touched a pixel, and of which
    injected artifact did.
    """

    def __init__(self, shape: tuple[int, int]):
        self.codes = np.zeros(shape, dtype=np.uint8)
        self.injected_codes = np.zeros(shape, dtype=np.uint8)

    def mark(self, name: str, where: np.ndarray | tuple, injected: bool = False) -> None:
        """Mark pixels (boolean array or index tuple) with an artifact class;
        ``injected`` records that an injected artifact put it there.
        """
        code = ARTIFACT_CODES[name]
        for plane in (self.codes, self.injected_codes) if injected else (self.codes,):
            plane[where] = np.maximum(plane[where], code)

    def injected_near(self, x: np.ndarray, y: np.ndarray, radius: int) -> np.ndarray:
        """Whether the highest-precedence artifact within ``radius`` pixels
        of each position was injected.
        """
        size = 2 * radius + 1
        if not len(x):
            return np.zeros(0, dtype=bool)
        best = extract_stamps(self.codes, x, y, size, fill=0)[0].reshape(len(x), -1).max(axis=1)
        injected = extract_stamps(self.injected_codes, x, y, size, fill=0)[0].reshape(len(x), -1).max(axis=1)
        return (best > 0) & (injected == best)

    def class_near(self, x: np.ndarray, y: np.ndarray, radius: int) -> np.ndarray:
        """Highest-precedence artifact class within ``radius`` pixels of each position.

        Returns an object array with '' where no artifact is near.
        """
        size = 2 * radius + 1
        stamps, _ = extract_stamps(self.codes, x, y, size, fill=0)
        best = stamps.reshape(len(x), -1).max(axis=1) if len(x) else np.zeros(0, dtype=np.uint8)
        return np.array([_CLASS_OF_CODE.get(int(c), "") for c in best], dtype=object)


def _splat(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bilinear deposit of point charges; returns the touched-pixel mask."""
    h, w = image.shape
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    touched = np.zeros(image.shape, dtype=bool)
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                        (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & (wgt > 0.05)
        np.add.at(image, (yi[ok], xi[ok]), values[ok] * wgt[ok])
        touched[yi[ok], xi[ok]] = True
    return touched


def add_cosmic_rays(
    image: np.ndarray,
    amap: ArtifactMap,
    rng: np.random.Generator,
    *,
    count: int,
    electrons: tuple[float, float],
    injected: bool = False,
) -> int:
    """Add ``count`` cosmic-ray tracks (sharp, not PSF-convolved); recorded
    as injected if ``injected``.

    Track lengths follow the inclined paths of muons through a 100 um
    sensor: mostly 1-10 pixels, a few longer.
    """
    h, w = image.shape
    for _ in range(count):
        x, y = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
        length = min(rng.exponential(4.0), 40.0)
        angle = rng.uniform(0, 2 * np.pi)
        n = max(int(length * 4), 1)
        t = np.linspace(0.0, 1.0, n)
        xs = x + t * length * np.cos(angle)
        ys = y + t * length * np.sin(angle)
        per_pixel = rng.uniform(*electrons)
        values = np.full(n, per_pixel * max(length, 1.0) / n)
        touched = _splat(image, xs, ys, values)
        amap.mark("cosmicRay", touched, injected)
    return count


def add_hot_pixels(
    image: np.ndarray,
    amap: ArtifactMap,
    rng: np.random.Generator,
    *,
    count: int,
    electrons: tuple[float, float],
) -> None:
    """Add hot pixels (drawn from a per-detector generator so they persist)."""
    h, w = image.shape
    ys = rng.integers(0, h, count)
    xs = rng.integers(0, w, count)
    image[ys, xs] += rng.uniform(*electrons, count)
    amap.mark("hotPixel", (ys, xs))


def add_bad_column(
    image: np.ndarray,
    amap: ArtifactMap,
    bad_mask: np.ndarray,
    rng: np.random.Generator,
    *,
    masked: bool,
    injected: bool = False,
) -> None:
    """Add a partial bad column; if ``masked`` it is in the defect list; an
    unmasked one is recorded as injected if ``injected``.

    A masked column is marked BAD and interpolated over by the pipeline, so
    it leaves nothing in the difference; an unmasked one leaves its offset.
    """
    h, w = image.shape
    col = int(rng.integers(2, w - 2))
    y0 = int(rng.integers(0, h // 2))
    y1 = int(rng.integers(y0 + h // 8, h + 1))
    offset = rng.choice([-1.0, 1.0]) * rng.uniform(40.0, 400.0)
    image[y0:y1, col] += offset
    if masked:
        bad_mask[y0:y1, col] = True
        image[y0:y1, col] = 0.5 * (image[y0:y1, col - 1] + image[y0:y1, col + 1])
    else:
        amap.mark("badColumn", (slice(y0, y1), col), injected)


def add_satellite_trail(
    signal: np.ndarray,
    amap: ArtifactMap,
    rng: np.random.Generator,
    *,
    peak: float,
    sigma: float,
    noise: float,
) -> tuple[float, float, float]:
    """Add a straight satellite trail across the image.

    Returns the trail's (x, y, angle) and marks pixels where the trail is
    brighter than the per-pixel noise.
    """
    h, w = signal.shape
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    # Distance of each pixel from the line through (x0, y0).
    dist = np.abs(-(xx - x0) * np.sin(angle) + (yy - y0) * np.cos(angle))
    trail = peak * np.exp(-0.5 * (dist / sigma) ** 2)
    signal += trail
    amap.mark("satellite", trail > noise)
    return x0, y0, angle


def apply_saturation(
    image: np.ndarray, amap: ArtifactMap, sat_mask: np.ndarray, full_well: float
) -> None:
    """Clip at full well and bleed the excess charge along columns.

    Parameters
    ----------
    image : `numpy.ndarray`
        Total charge (signal + sky), electrons; modified in place.
    amap : `ArtifactMap`
        Bled and saturated pixels are marked ``saturated``.
    sat_mask : `numpy.ndarray` of `bool`
        Set True on saturated pixels.
    full_well : `float`
        Full-well capacity, electrons.
    """
    over = image > full_well
    if not over.any():
        return
    for col in np.flatnonzero(over.any(axis=0)):
        column = image[:, col]
        excess = float(np.sum(column[column > full_well] - full_well))
        rows = np.flatnonzero(column > full_well)
        column[rows] = full_well
        # Spread the excess up and down from the saturated run, filling
        # each pixel to full well in turn (imSim's bleed model).
        lo, hi = rows.min() - 1, rows.max() + 1
        while excess > 0 and (lo >= 0 or hi < len(column)):
            for r in (lo, hi):
                if 0 <= r < len(column) and excess > 0:
                    room = full_well - column[r]
                    take = min(room, excess / 2 if (lo >= 0 and hi < len(column)) else excess)
                    column[r] += take
                    excess -= take
            lo -= 1
            hi += 1
        image[:, col] = column
    sat = image >= full_well * 0.999
    sat_mask |= sat
    amap.mark("saturated", sat)
