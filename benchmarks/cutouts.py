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
cut two ways, each timed as the best of ``--repeats``:

- ``vectorized``: `lsst.meas.realbogus.cutouts.extract_triplets_from_images`,
  all sources at once (what buildTriplets and computeReliability run);
- ``per_source_loop``: the way meas_transiNet cuts (one source at a time:
  a sub-image of each of the three images, as ``Exposure.getCutout`` does,
  then that source's normalization), written with the same lsst.images
  sub-images and the same extractor called per source, so that both give
  identical arrays (checked, and written as ``identical``).

Output: JSON lines on stdout, ``cutout_throughput`` (triplets/s, per method
and count) and ``cutout_speedup`` (vectorized over loop). Run::

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


def per_source_loop(images, x, y, config):
    """Cut triplets one source at a time (the baseline).

    Returns
    -------
    cutouts : `numpy.ndarray`, (N, 3, S, S)
    """
    import numpy as np

    import lsst.images

    from lsst.meas.realbogus.cutouts import extract_triplets, planes_from_image, stamp_origin

    size = config.size
    x0, y0 = stamp_origin(x, y, size)
    out = np.empty((len(x), 3, size, size), dtype=np.float32)
    for i in range(len(x)):
        box = lsst.images.Box.factory[int(y0[i]) : int(y0[i]) + size, int(x0[i]) : int(x0[i]) + size]
        planes = [planes_from_image(image[box.intersection(image.bbox)], config.badMaskPlanes)
                  for image in images]
        out[i] = extract_triplets(planes, x[i : i + 1], y[i : i + 1], config).cutouts[0]
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="benchmarks/results/detector-repo",
                        help="Repository with one DC2-size detector-visit (simulated if absent).")
    parser.add_argument("--sources", type=int, nargs="+", default=[50, 212, 1000],
                        help="Source counts (default 50 212 1000: mean, peak, AP's limit).")
    parser.add_argument("--repeats", type=int, default=3, help="Timings per method; the best is kept.")
    parser.add_argument("--size", type=int, help="Cutout size (default: CutoutConfig's).")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="Threads of the vectorized extractor (the loop uses one).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    import numpy as np

    from lsst.meas.realbogus.cutouts import CutoutConfig, extract_triplets_from_images

    butler, data_id = detector_repository(args.repo)
    images = [butler.get(name, data_id) for name in IMAGES]
    catalog = butler.get("dia_source_unstandardized", data_id)
    config = CutoutConfig()
    if args.size:
        config.size = args.size
    writer = JsonLineWriter("cutouts", package_versions(["torch"]))
    for n in args.sources:
        x, y = source_positions(catalog["x"], catalog["y"], n, DETECTOR_SHAPE)
        common = {"sources": n, "cutout_size": config.size, "normalization": config.normalization,
                  "detector_shape": list(DETECTOR_SHAPE), "load_before": load_average()}
        t_loop, looped = best_time(lambda: per_source_loop(images, x, y, config), args.repeats)
        writer.emit("cutout_throughput", n / t_loop, "triplets/s", method="per_source_loop", threads=1,
                    seconds=t_loop, **common)
        for threads in args.threads:
            t_vec, triplets = best_time(
                lambda: extract_triplets_from_images(*images, x, y, config, threads=threads), args.repeats)
            identical = bool(np.array_equal(triplets.cutouts, looped, equal_nan=True))
            writer.emit("cutout_throughput", n / t_vec, "triplets/s", method="vectorized", threads=threads,
                        seconds=t_vec, **common)
            writer.emit("cutout_speedup", t_loop / t_vec, "ratio (vectorized over per-source loop)",
                        threads=threads, identical=identical, edge_sources=int(triplets.edge.sum()), **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
