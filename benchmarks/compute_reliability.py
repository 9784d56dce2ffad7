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

"""computeReliability on one DC2-size detector, end to end inside the task.

A Prompt Processing worker runs one quantum per detector-visit. This runs
the real ``computeReliability`` task of ``pipelines/ComputeReliability.yaml``
through the pipeline executor pipetask uses (in-process, as ``-j 1``) on a
simulated 4000 x 4072 detector whose DIA source catalog is replaced by 50,
212 or 1000 sources (mean, peak and AP's limit per detector: the
detector's own sources, then random positions). The model is an untrained
network of the chosen architecture (speed does not depend on weights),
stored as ``rb_model``.

Each source count runs ``--repeats`` quanta. The first quantum of the
process builds the network (``model_build``, the task's ``loadModel``
step); later ones find it in the process's model cache, as a long-lived
worker does. The task times its steps with ``lsst.utils.timer.timeMethod``,
whose ``<step>StartUtc`` and ``<step>EndUtc`` metadata split each quantum
into Butler reads (``readInputs``), cutouts (``cutTriplets``), model
(``scoreTriplets``) and Butler write (``writeOutputs``); ``own_seconds`` is
everything but the reads (``run`` + write, so cutouts + model + write +
bookkeeping), the figure the latency budget is about.

It also times the two ways of reading the pixels: one full read of each
image, against one Butler ``bbox`` read per source and image.

Output: JSON lines ``compute_reliability_seconds`` (per count: median over
the warm repeats of own/read/cutout/score/write seconds), and
``read_strategy_seconds``. Run::

    .venv/bin/python benchmarks/compute_reliability.py                # rbcnn, 2 threads
    .venv/bin/python benchmarks/compute_reliability.py --architecture vgg6 --threads 1
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from collections.abc import Sequence

from _benchutil import (
    DETECTOR_COLLECTION,
    DETECTOR_SHAPE,
    JsonLineWriter,
    detector_repository,
    load_average,
    package_versions,
    source_positions,
    use_checkout,
)

PIPELINE = "ComputeReliability.yaml#computeReliability"
IMAGES = ("template_detector", "preliminary_visit_image", "difference_image")


def put_sources(butler, data_id, n: int, run: str):
    """Write a DIA source catalog of ``n`` sources for the detector-visit."""
    import numpy as np
    from astropy.table import Table

    catalog = butler.get("dia_source_unstandardized", data_id, collections=[DETECTOR_COLLECTION])
    x, y = source_positions(catalog["slot_Centroid_x"], catalog["slot_Centroid_y"], n, DETECTOR_SHAPE, seed=n)
    table = Table()
    table["id"] = np.arange(1, n + 1, dtype=np.int64) + int(catalog["id"].max())
    table["slot_Centroid_x"] = x
    table["slot_Centroid_y"] = y
    butler.collections.register(run)
    butler.put(table, "dia_source_unstandardized", data_id, run=run)


def put_untrained_model(butler, architecture: str, run: str) -> str:
    """Store an untrained package of ``architecture`` as ``rb_model``."""
    import torch

    from lsst.meas.realbogus.models import ModelPackage, build_model, make_model_config, put_model
    from lsst.meas.realbogus.triplets import CutoutConfig

    cutout = CutoutConfig()
    torch.manual_seed(0)
    model = build_model(architecture, cutout.size)
    package = ModelPackage.from_model(model, architecture=architecture,
                                      model_config=make_model_config(architecture).toDict(),
                                      cutout_config=cutout, threshold=0.5)
    put_model(butler, package, run)
    return package.version


def run_quanta(root: str, inputs: list[str], output: str, overrides: dict):
    """Run computeReliability for the repository's one detector-visit and
    return its task metadata.
    """
    from lsst.daf.butler import Butler
    from lsst.meas.realbogus.tests import run_pipeline

    quanta = run_pipeline(root, PIPELINE, inputs, output, overrides={"computeReliability": overrides})
    if len(quanta) != 1:
        raise RuntimeError(f"expected one quantum, ran {len(quanta)}.")
    reader = Butler.from_config(root, collections=[output])
    return reader.get("computeReliability_metadata", quanta[0].dataId)


def step_seconds(metadata, step: str) -> float:
    """Wall seconds of a task step timed by ``timeMethod``, from the UTC
    times it records at the step's start and end, summed over its calls
    (``cutTriplets`` and ``scoreTriplets`` run once per ``sourceChunkSize``
    chunk of sources).
    """
    def times(edge):
        key = f"{step}{edge}Utc"
        values = metadata.getArray(key) if hasattr(metadata, "getArray") else [metadata[key]]
        return [datetime.datetime.fromisoformat(v) for v in values]

    return sum((end - start).total_seconds() for start, end in zip(times("Start"), times("End")))


def time_reads(butler, data_id, x, y, size: int) -> dict[str, float]:
    """Seconds to read the three images whole, and per-source ``bbox``."""
    import lsst.images
    from lsst.meas.realbogus.triplets import stamp_origin

    start = time.perf_counter()
    images = [butler.get(name, data_id) for name in IMAGES]
    full = time.perf_counter() - start
    bbox = images[0].bbox
    x0, y0 = stamp_origin(x, y, size)
    start = time.perf_counter()
    for name in IMAGES:
        for i in range(len(x)):
            box = lsst.images.Box.factory[int(y0[i]) : int(y0[i]) + size, int(x0[i]) : int(x0[i]) + size]
            butler.get(name, data_id, parameters={"bbox": box.intersection(bbox)})
    per_source = time.perf_counter() - start
    return {"full": full, "per_source_bbox": per_source}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="benchmarks/results/detector-repo",
                        help="Repository with one DC2-size detector-visit (simulated if absent).")
    parser.add_argument("--sources", type=int, nargs="+", default=[50, 212, 1000])
    parser.add_argument("--architecture", default="rbcnn")
    parser.add_argument("--threads", type=int, default=2, help="computeReliability.numThreads.")
    parser.add_argument("--repeats", type=int, default=3, help="Quanta per source count.")
    parser.add_argument("--bbox-reads-up-to", type=int, default=212,
                        help="Time per-source bbox reads for source counts up to this.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    from lsst.daf.butler import Butler

    _, data_id = detector_repository(args.repo)
    root = str(args.repo)
    butler = Butler.from_config(root, writeable=True)
    stamp = f"{os.getpid()}-{int(time.time())}"
    model_run = f"bench/model-{args.architecture}-{stamp}"
    version = put_untrained_model(butler, args.architecture, model_run)
    writer = JsonLineWriter("compute_reliability", package_versions(["torch", "lsst-pipe-base"]))
    overrides = {"device": "cpu", "numThreads": args.threads}
    try:
        measure(args, root, butler, data_id, stamp, model_run, version, writer, overrides)
    finally:
        remove_collections(root, f"bench/*-{stamp}*")
    return 0


def remove_collections(root: str, pattern: str) -> None:
    """Remove this run's collections, so the repository does not grow."""
    from lsst.daf.butler import Butler, CollectionType

    butler = Butler.from_config(root, writeable=True)
    found = butler.collections.query_info(pattern)
    for info in found:
        if info.type == CollectionType.CHAINED:
            butler.collections.redefine_chain(info.name, [])
            butler.registry.removeCollection(info.name)
    runs = [info.name for info in found if info.type == CollectionType.RUN]
    if runs:
        butler.removeRuns(runs)


def measure(args, root, butler, data_id, stamp, model_run, version, writer, overrides) -> None:
    """Run the quanta at each source count and write their lines."""
    from lsst.daf.butler import Butler
    from lsst.meas.realbogus.triplets import CutoutConfig

    for n in args.sources:
        sources_run = f"bench/sources-{n}-{stamp}"
        put_sources(butler, data_id, n, sources_run)
        load = load_average()
        runs = []
        for r in range(args.repeats):
            metadata = run_quanta(root, [sources_run, DETECTOR_COLLECTION, model_run],
                                  f"bench/scores-{n}-{stamp}-{r}", overrides)
            task = metadata["computeReliability"]
            quantum = metadata["quantum"]
            runs.append({
                "read": step_seconds(task, "readInputs"),
                "model_build": step_seconds(task, "loadModel"),
                "cutouts": step_seconds(task, "cutTriplets"),
                "score": step_seconds(task, "scoreTriplets"),
                "write": step_seconds(task, "writeOutputs"),
                "run": step_seconds(task, "run"),
                "quantum_cpu": quantum["endCpuTime"] - quantum["startCpuTime"],
            })
            if task["nSources"] != n:
                raise RuntimeError(f"scored {task['nSources']} sources, expected {n}.")
        warm = runs[1:] or runs
        median = {key: statistics.median(r[key] for r in warm) for key in runs[0]}
        own = median["run"] + median["write"]
        writer.emit("compute_reliability_seconds", own, "s (task's own: cutouts + model + write)",
                    sources=n, architecture=args.architecture, model_version=version, threads=args.threads,
                    detector_shape=list(DETECTOR_SHAPE), reads_add=median["read"],
                    wall_with_reads=own + median["read"], split=median, first_quantum=runs[0],
                    repeats=args.repeats, load_before=load)
        if n <= args.bbox_reads_up_to:
            reader = Butler.from_config(root, collections=[DETECTOR_COLLECTION])
            catalog = reader.get("dia_source_unstandardized", data_id, collections=[sources_run])
            reads = time_reads(reader, data_id, catalog["slot_Centroid_x"], catalog["slot_Centroid_y"],
                               CutoutConfig().size)
            for strategy, seconds in reads.items():
                writer.emit("read_strategy_seconds", seconds, "s (three images)", strategy=strategy, sources=n)


if __name__ == "__main__":
    sys.exit(main())
