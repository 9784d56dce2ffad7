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

"""Write a whole simulated DC2-like repository."""

from __future__ import annotations

__all__ = ["SimulationSummary", "Simulator"]

import collections
import concurrent.futures
import dataclasses
import logging
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

from astropy.time import Time

from lsst.daf.butler import Butler

from ._config import SimulationConfig
from ._detectorVisit import simulate_detector_visit
from ._dimensionRecords import day_obs_from_time, register_instrument, register_visit
from ._instrument import INSTRUMENT
from ._repository import (
    DATASET_DIMENSIONS,
    DetectorVisitProduct,
    create_repository,
    register_dataset_types,
    write_detector_visit,
)
from ._scene import BOGUS_CLASSES, REAL_CLASSES
from ._survey import DetectorVisitSpec, plan_survey

_LOG = logging.getLogger(__name__)

# What a worker returns for one detector-visit.
_ResultT = TypeVar("_ResultT")


@dataclasses.dataclass
class SimulationSummary:
    """What a simulation wrote.

    Attributes
    ----------
    detector_visits : `int`
        Detector-visits written.
    sources : `int`
        DIA sources written.
    real : `int`
        Sources labelled real.
    per_class : `collections.Counter` [`str`]
        Sources per truth class.
    per_tract : `collections.Counter` [`int`]
        Sources per tract.
    seconds : `float`
        Wall-clock time of the simulation.
    """

    detector_visits: int = 0
    sources: int = 0
    real: int = 0
    per_class: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    per_tract: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0

    @property
    def real_fraction(self) -> float:
        """Fraction of the sources that are real (`float`; 0 if none)."""
        return self.real / self.sources if self.sources else 0.0

    def add(self, tract: int, counts: DetectorVisitCounts) -> None:
        """Count one more detector-visit of ``tract``."""
        self.detector_visits += 1
        self.sources += counts.sources
        self.real += counts.real
        self.per_class.update(counts.per_class)
        self.per_tract[tract] += counts.sources

    def format(self) -> str:
        """Return a plain-text table of counts per truth class."""
        lines = [f"{'class':<14} {'kind':<6} {'count':>7} {'fraction':>9}"]
        for kind, names in (("real", REAL_CLASSES), ("bogus", BOGUS_CLASSES)):
            for name in names:
                n = self.per_class.get(name, 0)
                frac = n / self.sources if self.sources else 0.0
                lines.append(f"{name:<14} {kind:<6} {n:>7} {frac:>9.3f}")
        lines.append(f"{'total':<14} {'':<6} {self.sources:>7} {'':>9}")
        lines.append(f"real fraction {self.real_fraction:.3f}; detector-visits {self.detector_visits}; "
                     + ", ".join(f"tract {t}: {n} sources" for t, n in sorted(self.per_tract.items()))
                     + f"; {self.seconds:.1f} s")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class DetectorVisitCounts:
    """Source counts of one simulated detector-visit (what a worker that
    writes its own datasets sends back).
    """

    sources: int
    real: int
    per_class: collections.Counter

    @classmethod
    def of(cls, product: DetectorVisitProduct) -> DetectorVisitCounts:
        """Count the sources of a detector-visit by their truth labels."""
        truth = product.truth
        return cls(len(truth), int(truth["is_real"].sum()), collections.Counter(str(c) for c in truth["truth_class"]))


# The state of a worker process, set once by _init_worker.
_WORKER_CONFIG: SimulationConfig | None = None
_WORKER_BUTLER: Butler | None = None


def _init_worker(config_text: str, root: str | None = None) -> None:
    """Set up a worker: its configuration and, if it writes, its Butler."""
    global _WORKER_CONFIG, _WORKER_BUTLER
    config = SimulationConfig()
    config.loadFromString(config_text)
    _WORKER_CONFIG = config
    if root is not None:
        _WORKER_BUTLER = Butler.from_config(root, writeable=True, run=config.run)


def _simulate_in_worker(spec: DetectorVisitSpec) -> DetectorVisitProduct:
    """Simulate a detector-visit in a worker and send it back."""
    return simulate_detector_visit(spec, _WORKER_CONFIG)


def _write_and_count(butler: Butler, run: str, product: DetectorVisitProduct) -> DetectorVisitCounts:
    """Write a detector-visit and return its counts."""
    write_detector_visit(butler, run, product)
    return DetectorVisitCounts.of(product)


def _simulate_and_write_in_worker(spec: DetectorVisitSpec) -> DetectorVisitCounts:
    """Simulate and write a detector-visit in a worker; send back its
    counts.
    """
    return _write_and_count(_WORKER_BUTLER, _WORKER_CONFIG.run, simulate_detector_visit(spec, _WORKER_CONFIG))


class Simulator:
    """Simulate a DC2-like repository.

    Parameters
    ----------
    config : `SimulationConfig`
        Configuration; validated here.

    Attributes
    ----------
    config : `SimulationConfig`
        The configuration.
    specs : `list` [`DetectorVisitSpec`]
        The survey plan: every detector-visit, by visit then detector.
    """

    def __init__(self, config: SimulationConfig):
        config.validate()
        self.config = config
        self.specs = plan_survey(config)

    def products(self, jobs: int = 1) -> Iterator[tuple[DetectorVisitSpec, DetectorVisitProduct]]:
        """Simulate every detector-visit, in plan order.

        Parameters
        ----------
        jobs : `int`, optional
            Worker processes; 1 runs in this process. Results do not depend
            on it: each detector-visit has its own seed.

        Yields
        ------
        spec : `DetectorVisitSpec`
            A detector-visit of the plan.
        product : `DetectorVisitProduct`
            What was simulated for it.
        """
        if jobs <= 1:
            for spec in self.specs:
                yield spec, simulate_detector_visit(spec, self.config)
            return
        yield from self._in_workers(jobs, _simulate_in_worker, None)

    def register(self, butler: Butler) -> None:
        """Insert dimension records and dataset types for the whole plan.

        Parameters
        ----------
        butler : `lsst.daf.butler.Butler`
            Writeable Butler of the repository.
        """
        survey = self.config.survey
        detectors = sorted({s.detector for s in self.specs})
        register_instrument(butler, detector_ids=detectors,
                            detector_shape=(survey.detectorHeight, survey.detectorWidth),
                            bands=sorted(set(survey.bands)))
        register_dataset_types(butler)
        by_visit: dict[int, list[DetectorVisitSpec]] = collections.defaultdict(list)
        for spec in self.specs:
            by_visit[spec.visit.visit].append(spec)
        for specs in by_visit.values():
            v = specs[0].visit
            obs = Time(v.mjd, format="mjd", scale="tai")
            register_visit(
                butler, visit=v.visit, band=v.band, physical_filter=v.physical_filter,
                day_obs=day_obs_from_time(obs), exposure_time_s=v.exposure_time, obs_begin=obs,
                boresight_ra=v.boresight_ra, boresight_dec=v.boresight_dec, rotation_deg=v.rotation,
                detector_regions={s.detector: s.wcs.sky_polygon((s.height, s.width)) for s in specs},
            )

    def store_config(self, butler: Butler, run: str) -> None:
        """Store the configuration as ``rb_simulation_config`` in RUN
        ``run``: the input of `SimulateDetectorVisitTask`, and the world's
        provenance.
        """
        from lsst.daf.butler import DatasetType

        from ._simulateTask import SIMULATION_CONFIG_DATASET

        butler.registry.registerDatasetType(
            DatasetType(SIMULATION_CONFIG_DATASET, (), "Config", universe=butler.dimensions)
        )
        butler.collections.register(run)
        butler.put(self.config, SIMULATION_CONFIG_DATASET, run=run)

    def store_plan(self, butler: Butler, run: str) -> None:
        """Store one ``rb_simulation_plan`` per planned detector-visit in RUN
        ``run``: the quanta of `SimulateDetectorVisitTask`.
        """
        from lsst.daf.butler import DatasetType

        from ._simulateTask import SIMULATION_PLAN_DATASET, plan_record

        butler.registry.registerDatasetType(DatasetType(SIMULATION_PLAN_DATASET, DATASET_DIMENSIONS,
                                                        "StructuredDataDict", universe=butler.dimensions))
        with butler.transaction():
            for spec in self.specs:
                butler.put(plan_record(spec), SIMULATION_PLAN_DATASET,
                           {"instrument": INSTRUMENT, "visit": spec.visit.visit, "detector": spec.detector},
                           run=run)

    def run(self, root: str, *, jobs: int = 1, overwrite: bool = False, progress: bool | None = None,
            register_only: bool = False) -> SimulationSummary:
        """Create the repository at ``root`` and fill it.

        Parameters
        ----------
        root : `str`
            Repository path; must not exist or be empty unless ``overwrite``.
        jobs : `int`, optional
            Worker processes.
        overwrite : `bool`, optional
            Replace an existing butler repository at ``root``.
        progress : `bool`, optional
            Show a progress bar; default: when stderr is a terminal.
        register_only : `bool`, optional
            Only create the repository, register the plan's records and
            dataset types and store the configuration (in RUN
            ``<run>/config``): ``pipelines/Simulate.yaml`` then simulates
            the detector-visits, one quantum each (``bps/simulation.yaml``).

        Returns
        -------
        summary : `SimulationSummary`
            What was written, and how long it took.
        """
        start = time.perf_counter()
        create_repository(root, overwrite=overwrite, compress_images=self.config.compressImages)
        # A registered-only world's RUN is left to pipetask, which makes it
        # a CHAINED collection.
        butler = Butler.from_config(root, writeable=True, run=None if register_only else self.config.run)
        self.register(butler)
        summary = SimulationSummary()
        self.store_config(butler, f"{self.config.run}/config" if register_only else self.config.run)
        if register_only:
            self.store_plan(butler, f"{self.config.run}/config")
            summary.seconds = time.perf_counter() - start
            return summary
        with _Progress(len(self.specs), sys.stderr.isatty() if progress is None else progress) as report:
            for spec, counts in self._simulate_and_write(butler, root, jobs):
                summary.add(spec.visit.tract, counts)
                report(summary)
        summary.seconds = time.perf_counter() - start
        return summary

    def _simulate_and_write(
        self, butler: Butler, root: str, jobs: int
    ) -> Iterator[tuple[DetectorVisitSpec, DetectorVisitCounts]]:
        """Simulate and write every detector-visit, in plan order, yielding
        their counts.
        """
        if jobs <= 1:
            return ((spec, _write_and_count(butler, self.config.run, product))
                    for spec, product in self.products(1))
        # Workers write their own detector-visits (FITS compression is
        # most of a write, which the parent alone could not keep up
        # with); the registry takes concurrent writers as pipetask -j does.
        butler.collections.register(self.config.run)
        return self._in_workers(jobs, _simulate_and_write_in_worker, root)

    def _in_workers(
        self, jobs: int, function: Callable[[DetectorVisitSpec], _ResultT], root: str | None
    ) -> Iterator[tuple[DetectorVisitSpec, _ResultT]]:
        """Map ``function`` over the plan in ``jobs`` spawned workers,
        yielding results in plan order with a bounded look-ahead (memory
        stays flat whatever the plan's size).
        """
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_init_worker,
            initargs=(self.config.saveToString(), root),
        ) as pool:
            pending: collections.deque[tuple[DetectorVisitSpec, concurrent.futures.Future[_ResultT]]]
            pending = collections.deque()
            specs = iter(self.specs)
            for spec in specs:
                pending.append((spec, pool.submit(function, spec)))
                if len(pending) >= 2 * jobs:
                    break
            while pending:
                spec, future = pending.popleft()
                yield spec, future.result()
                nxt = next(specs, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(function, nxt)))


class _Progress:
    """Progress of a simulation: a progress bar, or a log line every tenth
    of the plan.

    Parameters
    ----------
    total : `int`
        Detector-visits in the plan.
    bar : `bool`
        Show a progress bar (`tqdm`) rather than log lines.
    """

    def __init__(self, total: int, bar: bool):
        self._total = total
        self._bar_wanted = bar
        self._bar = None

    def __enter__(self) -> _Progress:
        if self._bar_wanted:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, unit="detector-visit", desc="rb-simulate")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()

    def __call__(self, summary: SimulationSummary) -> None:
        """Report that one more detector-visit of ``summary`` is done."""
        done = summary.detector_visits
        if self._bar is not None:
            self._bar.update()
            self._bar.set_postfix(sources=summary.sources, real=summary.real)
        elif done % max(1, self._total // 10) == 0 or done == self._total:
            _LOG.info("Simulated %d/%d detector-visits (%d sources, %d real).", done, self._total,
                      summary.sources, summary.real)
