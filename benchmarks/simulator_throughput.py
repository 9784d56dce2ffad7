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

"""Throughput of the DC2-like repository simulator at several ``-j``.

Simulates the same configuration (a preset, optionally with fewer visits per
tract) into a fresh temporary repository once per worker count, one after
the other in one process, and measures the wall clock of
`lsst.meas.realbogus.simulation.Simulator.run`: repository creation,
dimension records, worker start-up, rendering, detection and Butler writes,
i.e. what a user waits for.  The survey plan (``Simulator.__init__``) is not
timed.  Each repository is deleted as soon as it has been measured.

Output
------
JSON lines on stdout: one ``simulator_throughput`` line per worker count
(detector-visits per second, plus sources per second, seconds and counts)
and one ``simulator_speedup`` line per further worker count (its
throughput over that of the first), each with ``figure``, ``value``,
``unit``, ``machine`` and ``versions``.  Logging goes to stderr.

The results of the runs must not depend on ``-j`` (each detector-visit has
its own seed); the speedup line says whether their source counts agree.
Timings are only comparable on an otherwise idle machine: ``machine``
records the CPU count and each line the load average before the run.

Run it with the package's environment (``PYTHONPATH`` is optional: the
script falls back to this checkout's ``python/``)::

    .venv/bin/python benchmarks/simulator_throughput.py                      # demo, -j 1 and 2
    .venv/bin/python benchmarks/simulator_throughput.py --visits-per-tract 4
    .venv/bin/python benchmarks/simulator_throughput.py --preset ci --jobs 1 2 4
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from _benchutil import JsonLineWriter, load_average, package_versions, use_checkout

if TYPE_CHECKING:
    # The package is imported after use_checkout() has put this checkout on the path.
    from lsst.meas.realbogus.simulation import SimulationConfig

_LOG = logging.getLogger("simulator_throughput")


@dataclasses.dataclass
class Measurement:
    """One timed simulation.

    Attributes
    ----------
    jobs : `int`
        Worker processes.
    seconds : `float`
        Wall clock of ``Simulator.run``.
    detector_visits : `int`
        Detector-visits written.
    sources : `int`
        DIA sources written.
    real : `int`
        Of which real.
    load_before : `list` [`float`]
        1, 5 and 15 minute load averages just before the run.
    """

    jobs: int
    seconds: float
    detector_visits: int
    sources: int
    real: int
    load_before: list[float]

    @property
    def detector_visits_per_s(self) -> float:
        return self.detector_visits / self.seconds

    @property
    def sources_per_s(self) -> float:
        return self.sources / self.seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time Simulator.run at several worker counts, side by side; JSON lines on stdout.",
    )
    parser.add_argument("--preset", default="demo", help="Simulator preset (default demo).")
    parser.add_argument("--visits-per-tract", type=int,
                        help="Override survey.visitsPerTract to shorten the run (default: the preset's).")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="Worker counts to time, in order; speedups are relative to the first "
                        "(default 1 2).")
    parser.add_argument("--seed", type=int, help="Simulator master seed (default: the preset's).")
    parser.add_argument("--tmpdir", help="Where to put the temporary repositories (default: the system's).")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress to stderr.")
    return parser


def build_config(preset: str, visits_per_tract: int | None, seed: int | None) -> SimulationConfig:
    """Return the validated simulator configuration to time.

    Parameters
    ----------
    preset : `str`
        Simulator preset.
    visits_per_tract : `int`, optional
        Override of ``survey.visitsPerTract``.
    seed : `int`, optional
        Override of the master seed.

    Returns
    -------
    config : `lsst.meas.realbogus.simulation.SimulationConfig`
        The preset with the overrides.
    """
    from lsst.meas.realbogus.simulation import make_config

    config = make_config(preset)
    if visits_per_tract is not None:
        config.survey.visitsPerTract = visits_per_tract
    if seed is not None:
        config.seed = seed
    config.validate()
    return config


def time_simulation(config: SimulationConfig, jobs: int, tmpdir: str | None) -> Measurement:
    """Simulate into a temporary repository and time ``Simulator.run``.

    Parameters
    ----------
    config : `lsst.meas.realbogus.simulation.SimulationConfig`
        What to simulate.
    jobs : `int`
        Worker processes.
    tmpdir : `str`, optional
        Parent of the temporary repository.

    Returns
    -------
    measurement : `Measurement`
        The wall clock and what was written.
    """
    from lsst.meas.realbogus.simulation import Simulator

    simulator = Simulator(config)
    with tempfile.TemporaryDirectory(prefix=f"rb-throughput-j{jobs}-", dir=tmpdir) as tmp:
        load = load_average()
        start = time.perf_counter()
        summary = simulator.run(str(Path(tmp) / "repo"), jobs=jobs, progress=False)
        seconds = time.perf_counter() - start
    _LOG.info("-j %d: %d detector-visits in %.1f s.", jobs, summary.detector_visits, seconds)
    return Measurement(jobs=jobs, seconds=seconds, detector_visits=summary.detector_visits,
                       sources=summary.sources, real=summary.real, load_before=load)


def report(writer: JsonLineWriter, measurements: Sequence[Measurement], common: dict) -> None:
    """Emit one throughput line per measurement and the speedups."""
    for m in measurements:
        writer.emit("simulator_throughput", m.detector_visits_per_s, "detector-visits/s", **common,
                    jobs=m.jobs, seconds=m.seconds, detector_visits=m.detector_visits, sources=m.sources,
                    real=m.real, sources_per_s=m.sources_per_s, load_before=m.load_before)
    base = measurements[0]
    for m in measurements[1:]:
        writer.emit("simulator_speedup", m.detector_visits_per_s / base.detector_visits_per_s,
                    "ratio of detector-visits/s", **common, jobs=m.jobs, relative_to_jobs=base.jobs,
                    parallel_efficiency=m.detector_visits_per_s / base.detector_visits_per_s
                    * base.jobs / m.jobs,
                    same_output=(m.detector_visits, m.sources, m.real)
                    == (base.detector_visits, base.sources, base.real))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if any(j < 1 for j in args.jobs):
        _parser().error(f"--jobs must be >= 1; got {args.jobs}.")
    config = build_config(args.preset, args.visits_per_tract, args.seed)
    writer = JsonLineWriter("simulator_throughput", package_versions())
    measurements = [time_simulation(config, jobs, args.tmpdir) for jobs in args.jobs]
    common = {"preset": args.preset, "visits_per_tract": config.survey.visitsPerTract,
              "detectors_per_visit": config.survey.detectorsPerVisit,
              "detector_shape": [config.survey.detectorHeight, config.survey.detectorWidth],
              "seed": config.seed}
    report(writer, measurements, common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
