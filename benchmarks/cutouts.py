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

"""Vectorized triplet cutouts against a per-source loop, on one detector.

The images are one simulated DC2-size detector-visit (4000 x 4072, made on
first use and kept in ``--repo``). At each source count the same positions
(the detector's DIA sources, then uniform random ones, edges included) are
cut three ways, each timed as the best of ``--repeats``:

- ``vectorized``: `lsst.meas.realbogus.triplets.extract_triplets_from_images`,
  all sources at once (what buildTriplets and computeReliability run);
- ``per_source_loop`` (the baseline): the way meas_transiNet cuts, one
  source at a time in Python: a sub-image of each of the three images (as
  ``Exposure.getCutout`` does), padded at the edges, then that source's
  normalization in NumPy (``numpy.nanmedian`` of the pixels and of the
  usable variance, then the arithmetic);
- ``per_source_extractor``: the same sub-images, each cut by calling the
  vectorized extractor with one source (so the compiled kernel runs per
  source, and only the Python around it is per source).

All three must give identical arrays (checked, and written as
``identical``), so each is a faithful implementation of one definition.

Output: JSON lines on stdout, ``cutout_throughput`` (triplets/s, per method
and count) and ``cutout_speedup`` (vectorized over the per-source loop, and
over the per-source extractor). Run::

    .venv/bin/python benchmarks/cutouts.py                   # 50, 212, 1000 sources
    .venv/bin/python benchmarks/cutouts.py --sources 53 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from _benchutil import (
    DETECTOR_SHAPE,
    JsonLineWriter,
    best_time,
    detector_repository,
    load_average,
    package_versions,
    source_positions,
    use_checkout,
)

IMAGES = ("template_detector", "preliminary_visit_image", "difference_image")
"""Dataset types of the triplet channels, in channel order."""


def _sub_images(images, x, y, size):
    """Yield, per source, the three sub-images around it (clipped to the
    image, as ``Exposure.getCutout``) and the stamp origin.
    """
    import lsst.images
    from lsst.meas.realbogus.triplets import stamp_origin

    x0, y0 = stamp_origin(x, y, size)
    for i in range(len(x)):
        box = lsst.images.Box.factory[int(y0[i]) : int(y0[i]) + size, int(x0[i]) : int(x0[i]) + size]
        try:
            subs = [image[box.intersection(image.bbox)] for image in images]
        except lsst.images.NoOverlapError:
            raise ValueError(f"source {i} at ({x[i]}, {y[i]}) is wholly off the image; the loops need "
                             "a sub-image of every source.") from None
        yield subs, int(x0[i]), int(y0[i])


def per_source_loop(images, x, y, config):
    """Cut and normalize triplets one source at a time in NumPy (the
    baseline: the way meas_transiNet prepares its inputs).

    Returns
    -------
    cutouts : `numpy.ndarray`, (N, 3, S, S)
    """
    import warnings

    import numpy as np

    size = config.size
    out = np.empty((len(x), 3, size, size), dtype=np.float32)
    for i, (subs, x0, y0) in enumerate(_sub_images(images, x, y, size)):
        for c, sub in enumerate(subs):
            # Pad to the full stamp: NaN (missing) where it is off the image.
            pixels = np.full((size, size), np.nan, dtype=np.float32)
            variance = np.full((size, size), np.nan, dtype=np.float32)
            missing = np.ones((size, size), dtype=bool)
            window = (slice(sub.bbox.y.start - y0, sub.bbox.y.stop - y0),
                      slice(sub.bbox.x.start - x0, sub.bbox.x.stop - x0))
            pixels[window] = sub.image.array
            variance[window] = sub.variance.array
            present = [p for p in config.badMaskPlanes if p in sub.mask.schema.names]
            bad = (sub.mask.array & sub.mask.schema.bitmask(*present)).any(axis=-1) if present else False
            missing[window] = ~np.isfinite(pixels[window]) | bad
            pixels[missing] = np.nan
            with warnings.catch_warnings(), np.errstate(invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                variance[missing | ~(variance > 0) | np.isinf(variance)] = np.nan
                noise = np.sqrt(np.nanmedian(variance))
                pixels = (pixels - np.nanmedian(pixels)) / noise
            if config.normalization == "snrAsinh":
                s = config.asinhSoftening
                pixels = np.arcsinh(pixels / s) * s
            elif config.normalization != "snr":
                raise ValueError(f"the baseline implements 'snr' and 'snrAsinh', not {config.normalization!r}.")
            if not (np.isfinite(pixels) | missing).all():
                missing[:] = True
            pixels[missing] = config.fillValue
            out[i, c] = pixels
    return out


def per_source_extractor(images, x, y, config):
    """Cut triplets one source at a time with the vectorized extractor.

    Returns
    -------
    cutouts : `numpy.ndarray`, (N, 3, S, S)
    """
    import numpy as np

    from lsst.meas.realbogus.triplets import extract_triplets, planes_from_image

    size = config.size
    out = np.empty((len(x), 3, size, size), dtype=np.float32)
    for i, (subs, _, _) in enumerate(_sub_images(images, x, y, size)):
        planes = [planes_from_image(sub, config.badMaskPlanes) for sub in subs]
        out[i] = extract_triplets(planes, x[i : i + 1], y[i : i + 1], config).cutouts[0]
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="benchmarks/results/detector-repo",
                        help="Repository with one DC2-size detector-visit (simulated if absent).")
    parser.add_argument("--sources", type=int, nargs="+", default=[50, 212, 1000],
                        help="Source counts (default 50 212 1000: mean, peak, AP's limit).")
    parser.add_argument("--repeats", type=int, default=7, help="Timings per method; the best is kept.")
    parser.add_argument("--size", type=int, help="Cutout size (default: CutoutConfig's).")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="Threads of the vectorized extractor (the loop uses one).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    import numpy as np

    from lsst.meas.realbogus.triplets import CutoutConfig, extract_triplets_from_images

    butler, data_id = detector_repository(args.repo)
    images = [butler.get(name, data_id) for name in IMAGES]
    catalog = butler.get("dia_source_unstandardized", data_id)
    config = CutoutConfig()
    if args.size:
        config.size = args.size
    writer = JsonLineWriter("cutouts", package_versions(["torch"]))
    for n in args.sources:
        x, y = source_positions(catalog["slot_Centroid_x"], catalog["slot_Centroid_y"], n, DETECTOR_SHAPE)
        common = {"sources": n, "cutout_size": config.size, "normalization": config.normalization,
                  "detector_shape": list(DETECTOR_SHAPE), "load_before": load_average()}
        baselines = {}
        for method, loop in (("per_source_loop", per_source_loop), ("per_source_extractor", per_source_extractor)):
            baselines[method] = best_time(lambda: loop(images, x, y, config), args.repeats)
            writer.emit("cutout_throughput", n / baselines[method][0], "triplets/s", method=method, threads=1,
                        seconds=baselines[method][0], **common)
        for threads in args.threads:
            t_vec, triplets = best_time(
                lambda: extract_triplets_from_images(*images, x, y, config, threads=threads), args.repeats)
            writer.emit("cutout_throughput", n / t_vec, "triplets/s", method="vectorized", threads=threads,
                        seconds=t_vec, **common)
            for method, (t_loop, looped) in baselines.items():
                identical = bool(np.array_equal(triplets.cutouts, looped, equal_nan=True))
                writer.emit("cutout_speedup", t_loop / t_vec, f"ratio (vectorized over {method})",
                            baseline=method, threads=threads, identical=identical,
                            edge_sources=int(triplets.edge.sum()), **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
