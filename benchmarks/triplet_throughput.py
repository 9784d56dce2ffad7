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

"""Labelled triplets per second, end to end: simulate a world, then cut its
triplets with buildTriplets, for the ``demo`` preset at the natural class mix
(its injection turned off: the world every triplet came from before the
training world) and the ``train`` preset (its training tract with injected
sources), side by side in one run, at each ``-j``.

For each preset and worker count: ``Simulator.run`` with ``-j N`` workers
into a fresh temporary repository, then ``pipelines/BuildTriplets.yaml``
in ``N`` processes, each running its share of the visits in-process with
the executor ``pipetask run -j 1`` uses (``pipetask -j N`` would start a
fresh Python per quantum, whose 3 s of imports are several quanta's work
here).  The wall clock of both steps is what a user waits for; the CPU
seconds (this process and its children) are what a cluster is billed.
Both presets simulate the same number of visits per tract at the preset's
detector size (``--visits``).

Output
------
JSON lines on stdout: one ``triplet_throughput`` line per preset and ``-j``
(labelled triplets per second, with the triplets, reals, detector-visits,
seconds of each step and labelled triplets per CPU-second) and one
``triplet_throughput_ratio`` line per ``-j`` (train over demo).

Run it with the package's environment::

    .venv/bin/python benchmarks/triplet_throughput.py                 # demo vs train, -j 1 and 2
    .venv/bin/python benchmarks/triplet_throughput.py --visits 2 --jobs 1
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _benchutil import (
    JsonLineWriter,
    build_triplets_in_processes,
    load_average,
    package_versions,
    use_checkout,
)

_LOG = logging.getLogger("triplet_throughput")
PRESETS = ("demo", "train")
TRIPLETS = "bench/triplets"

def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def simulate(preset: str, visits: int, root: str, jobs: int) -> dict:
    """Simulate a preset with ``visits`` visits per tract; return counts."""
    from lsst.meas.realbogus.simulation import Simulator, make_config

    config = make_config(preset)
    if preset == "demo":
        # The natural-mix baseline: the demo preset without its injected
        # training tract.
        config.injection.tracts = []
    config.survey.visitsPerTract = visits
    config.survey.visitsByTract = {}
    summary = Simulator(config).run(root, jobs=jobs, progress=False)
    return {"detector_visits": summary.detector_visits, "sources": summary.sources, "real": summary.real}


def count_labelled(root: str) -> tuple[int, int]:
    """Count the labelled triplets (and the real ones) written."""
    import numpy as np

    from lsst.daf.butler import Butler

    butler = Butler.from_config(root)
    labelled = real = 0
    for ref in butler.query_datasets("rb_triplets", collections=f"{TRIPLETS}/*", find_first=False):
        labels = np.asarray(butler.get(ref, parameters={"columns": ["label"]})["label"])
        labelled += int((labels >= 0).sum())
        real += int((labels == 1).sum())
    return labelled, real


def measure(preset: str, visits: int, jobs: int, tmpdir: str | None) -> dict:
    """Simulate and cut one preset at one ``-j``; return the figures."""
    with tempfile.TemporaryDirectory(prefix=f"rb-triplets-{preset}-j{jobs}-", dir=tmpdir) as tmp:
        root = str(Path(tmp) / "repo")
        load = load_average()
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        counts = simulate(preset, visits, root, jobs)
        t1 = time.perf_counter()
        build_triplets_in_processes(root, ["DC2/sim"], TRIPLETS, jobs)
        t2, cpu = time.perf_counter(), _cpu_seconds() - cpu0
        labelled, real = count_labelled(root)
    _LOG.info("%s -j %d: %d labelled triplets in %.1f s.", preset, jobs, labelled, t2 - t0)
    return {"preset": preset, "jobs": jobs, "labelled": labelled, "real": real, **counts,
            "simulate_seconds": t1 - t0, "triplets_seconds": t2 - t1, "seconds": t2 - t0, "cpu_seconds": cpu,
            "per_cpu_second": labelled / cpu if cpu else None, "load_before": load}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description="Labelled triplets per second, demo against train; "
                                     "JSON lines on stdout.")
    parser.add_argument("--visits", type=int, default=4, help="Visits per tract of each preset (default 4).")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="Worker counts (default 1 2).")
    parser.add_argument("--tmpdir", help="Where to put the temporary repositories.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress to stderr.")
    args = parser.parse_args(argv)
    use_checkout()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    writer = JsonLineWriter("triplet_throughput", package_versions())
    for jobs in args.jobs:
        rows = {preset: measure(preset, args.visits, jobs, args.tmpdir) for preset in PRESETS}
        for row in rows.values():
            writer.emit("triplet_throughput", row["labelled"] / row["seconds"], "labelled triplets/s",
                        visits_per_tract=args.visits, **row)
        demo, train = rows["demo"], rows["train"]
        writer.emit("triplet_throughput_ratio", (train["labelled"] / train["seconds"])
                    / (demo["labelled"] / demo["seconds"]), "train / demo labelled triplets/s", jobs=jobs,
                    per_cpu_second_ratio=train["per_cpu_second"] / demo["per_cpu_second"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
