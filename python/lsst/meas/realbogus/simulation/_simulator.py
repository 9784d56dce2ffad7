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

__all__ = [
    "BYTES_PER_PIXEL",
    "INCOMPLETE_MARKER",
    "PROCESS_BYTES",
    "SimulationSummary",
    "Simulator",
    "available_memory",
    "memory_needed",
    "world_state",
]

import collections
import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

from astropy.time import Time

from lsst.daf.butler import Butler, Config

from .._atomicWrite import write_bytes_atomically
from ..errors import RealBogusError, RepositoryExistsError, first_line
from ._config import SimulationConfig
from ._detectorVisit import simulate_detector_visit
from ._dimensionRecords import day_obs_from_time, register_instrument, register_visit
from ._imageStorage import image_storage_config
from ._instrument import INSTRUMENT
from ._interrupt import StopBetweenDetectorVisits
from ._repository import (
    DATASET_DIMENSIONS,
    DATASET_TYPES,
    DetectorVisitProduct,
    register_dataset_types,
    write_detector_visit,
)
from ._scene import BOGUS_CLASSES, REAL_CLASSES
from ._survey import DetectorVisitSpec, plan_survey

_LOG = logging.getLogger(__name__)

# What a worker returns for one detector-visit.
_ResultT = TypeVar("_ResultT")

INCOMPLETE_MARKER = "rb-simulate.incomplete"
"""File in a repository that `Simulator.run` has not finished: written
before anything else, removed after the last detector-visit (or, with
``register_only``, after the plan is stored)."""

BYTES_PER_PIXEL = 160
"""Peak resident memory of simulating and writing one detector-visit, per
detector pixel, above `PROCESS_BYTES`: measured 107-145 B (``ru_maxrss`` of
``rb-simulate`` at one detector-visit of 1024**2 to 4096**2 px, ci preset,
default PSFs; ``doc/reliability.rst``), rounded up."""

PROCESS_BYTES = 1_300_000_000
"""Peak resident memory of a simulating process before its pixels (the
stack, torch and GalSim imported, the Butler open): 1.15-1.2 GB measured."""


def memory_needed(config: SimulationConfig, jobs: int = 1) -> tuple[int, int]:
    """Estimate the memory a simulation needs.

    Parameters
    ----------
    config : `SimulationConfig`
        The configuration (its detector shape).
    jobs : `int`, optional
        Worker processes; each simulates one detector-visit at a time, and
        with more than one the parent process only writes the first
        detector-visit and waits.

    Returns
    -------
    per_process : `int`
        Bytes one simulating process needs at its peak.
    total : `int`
        Bytes all processes need together.
    """
    pixels = config.survey.detectorWidth * config.survey.detectorHeight
    per_process = PROCESS_BYTES + BYTES_PER_PIXEL * pixels
    total = per_process * jobs + (PROCESS_BYTES if jobs > 1 else 0)
    return per_process, total


def available_memory() -> tuple[int | None, str, int | None, str]:
    """Memory this machine can give a simulation now.

    Returns
    -------
    total : `int` or `None`
        Bytes all processes may use together: the smaller of the kernel's
        ``MemAvailable`` and the room left under this process's cgroup
        limit (`None` if neither can be read).
    total_source : `str`
        Where ``total`` comes from, for messages.
    per_process : `int` or `None`
        Bytes one process may map: the smaller soft limit of
        ``RLIMIT_AS`` and ``RLIMIT_DATA`` (`None` if unlimited).
    per_process_source : `str`
        Which limit.
    """
    totals = []
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    totals.append((int(line.split()[1]) * 1024, "available memory"))
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as stream:
                limit = stream.read().strip()
            with open(usage_file) as stream:
                usage = int(stream.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            totals.append((max(int(limit) - usage, 0), "room under the cgroup memory limit"))
        break
    limits = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY:
            limits.append((soft, name))
    total, total_source = min(totals) if totals else (None, "")
    per_process, per_process_source = min(limits) if limits else (None, "")
    return total, total_source, per_process, per_process_source


def world_state(root: str) -> str:
    """Say what a simulator's target path holds.

    Parameters
    ----------
    root : `str`
        The path.

    Returns
    -------
    state : `str`
        ``"absent"``; ``"empty"`` (an empty directory); ``"file"`` (not a
        directory); ``"incomplete"`` (a world `Simulator.run` did not finish:
        it holds `INCOMPLETE_MARKER`); ``"repository"`` (a Butler repository
        without the marker: a finished world, or another repository);
        ``"foreign"`` (a non-empty directory that is neither).
    """
    if not os.path.lexists(root):
        return "absent"
    if not os.path.isdir(root):
        return "file"
    if os.path.exists(os.path.join(root, INCOMPLETE_MARKER)):
        return "incomplete"
    if os.path.isfile(os.path.join(root, "butler.yaml")):
        return "repository"
    return "empty" if not os.listdir(root) else "foreign"


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
    skipped : `int`
        Detector-visits a resumed simulation found already written (not
        counted in the other figures).
    """

    detector_visits: int = 0
    sources: int = 0
    real: int = 0
    per_class: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    per_tract: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0
    skipped: int = 0

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
        tracts = ", ".join(f"tract {t}: {n} sources" for t, n in sorted(self.per_tract.items()))
        parts = [f"real fraction {self.real_fraction:.3f}", f"detector-visits {self.detector_visits}",
                 *([tracts] if tracts else []), f"{self.seconds:.1f} s"]
        if self.skipped:
            parts.append(f"{self.skipped} detector-visits were already written (resumed; not counted here)")
        lines.append("; ".join(parts))
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
    """Set up a worker: its configuration and, if it writes, its Butler.

    Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and
    the parent alone decides (it lets each worker finish the
    detector-visit it is writing, all or none, and cancels the rest).
    """
    global _WORKER_CONFIG, _WORKER_BUTLER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
        # Set by `run` once its checks pass and writing starts: a failure
        # after that leaves the world marked incomplete.
        self.writing_began = False

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
        yield from self._in_workers(self.specs, jobs, _simulate_in_worker, None)

    def check_memory(self, jobs: int = 1) -> None:
        """Refuse a simulation that cannot fit in this machine's memory.

        Parameters
        ----------
        jobs : `int`, optional
            Worker processes.

        Raises
        ------
        lsst.meas.realbogus.errors.RealBogusError
            Raised, with one line, if one process would need more than its
            ``RLIMIT_AS`` / ``RLIMIT_DATA``, or all of them more than the
            available memory (see `memory_needed`, `available_memory`).
        """
        per_process, total = memory_needed(self.config, jobs)
        room, room_source, limit, limit_source = available_memory()
        survey = self.config.survey
        what = (f"a detector-visit of {survey.detectorWidth}x{survey.detectorHeight} px needs about "
                f"{_gib(per_process)} of memory ({BYTES_PER_PIXEL} B a pixel and {_gib(PROCESS_BYTES)} a "
                "process)")
        if limit is not None and per_process > limit:
            raise RealBogusError(f"{what}, more than this process's {limit_source} of {_gib(limit)}; make "
                                 "survey.detectorWidth and survey.detectorHeight smaller.")
        if room is not None and total > room:
            workers = f"; {jobs} workers need {_gib(total)}" if jobs > 1 else ""
            raise RealBogusError(f"{what}{workers}, more than the {room_source} ({_gib(room)}); make "
                                 "survey.detectorWidth and survey.detectorHeight smaller"
                                 + (" or use fewer workers (-j)." if jobs > 1 else "."))

    def register(self, butler: Butler) -> None:
        """Insert dimension records and dataset types for the whole plan.

        Records already there (a resumed simulation) are left alone.

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
        # Each visit's records go in in one transaction (register_visit).
        known = {int(rec.id) for rec in butler.query_dimension_records("visit", explain=False)}
        by_visit: dict[int, list[DetectorVisitSpec]] = collections.defaultdict(list)
        for spec in self.specs:
            by_visit[spec.visit.visit].append(spec)
        for visit, specs in by_visit.items():
            if visit in known:
                continue
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
        provenance (a resumed simulation compares itself with it). Nothing
        is written if it is already there.
        """
        from lsst.daf.butler import DatasetType

        from ._simulateTask import SIMULATION_CONFIG_DATASET

        butler.registry.registerDatasetType(
            DatasetType(SIMULATION_CONFIG_DATASET, (), "Config", universe=butler.dimensions)
        )
        butler.collections.register(run)
        if _find(butler, SIMULATION_CONFIG_DATASET, run):
            return
        butler.put(self.config, SIMULATION_CONFIG_DATASET, run=run)

    def store_plan(self, butler: Butler, run: str) -> None:
        """Store one ``rb_simulation_plan`` per planned detector-visit in RUN
        ``run``: the quanta of `SimulateDetectorVisitTask` (those already
        there are kept).
        """
        from lsst.daf.butler import DatasetType

        from ._simulateTask import SIMULATION_PLAN_DATASET, plan_record

        butler.registry.registerDatasetType(DatasetType(SIMULATION_PLAN_DATASET, DATASET_DIMENSIONS,
                                                        "StructuredDataDict", universe=butler.dimensions))
        stored = {(ref.dataId["visit"], ref.dataId["detector"])
                  for ref in _find(butler, SIMULATION_PLAN_DATASET, run)}
        with butler.transaction():
            for spec in self.specs:
                if (spec.visit.visit, spec.detector) in stored:
                    continue
                butler.put(plan_record(spec), SIMULATION_PLAN_DATASET,
                           {"instrument": INSTRUMENT, "visit": spec.visit.visit, "detector": spec.detector},
                           run=run)

    def run(self, root: str, *, jobs: int = 1, overwrite: bool = False, resume: bool = False,
            progress: bool | None = None, register_only: bool = False) -> SimulationSummary:
        """Create the repository at ``root`` and fill it.

        Nothing is written until the configuration has passed every check:
        `check_memory`, the state of ``root``, and the first detector-visit
        to write, simulated in memory (what a configuration that validates
        but cannot be simulated fails on). Then `INCOMPLETE_MARKER` is
        written into ``root`` before anything else and removed after the
        last detector-visit: a world that is interrupted (SIGINT, SIGKILL, a
        full disk) stays marked incomplete, and ``resume`` finishes it.

        Parameters
        ----------
        root : `str`
            Repository path; must not exist or be empty unless ``overwrite``
            or ``resume``.
        jobs : `int`, optional
            Worker processes.
        overwrite : `bool`, optional
            Replace an existing Butler repository (or incomplete world) at
            ``root``.
        resume : `bool`, optional
            Finish the world at ``root``: its stored ``rb_simulation_config``
            must equal this configuration; the detector-visits whose five
            datasets exist are kept, the others simulated (the same seed
            gives them bit for bit as in an uninterrupted run). A missing or
            empty ``root`` is simply simulated.
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

        Raises
        ------
        lsst.meas.realbogus.errors.RepositoryExistsError
            Raised, before anything is written, if ``root`` is a file or a
            non-empty directory that is not a Butler repository; if it holds
            a repository or an incomplete world and neither ``overwrite``
            nor ``resume`` is given; or, with ``resume``, if its world was
            made with another configuration or another survey plan (the
            marker's ``planDigest``, `plan_digest`).
        lsst.meas.realbogus.errors.RealBogusError
            Raised, before anything is written, if the simulation cannot fit
            in memory or its first detector-visit cannot be simulated.
        """
        if overwrite and resume:
            raise ValueError("overwrite and resume exclude each other.")
        start = time.perf_counter()
        root = os.path.abspath(root)
        self.check_memory(jobs)
        state = world_state(root)
        if state == "file":
            raise RepositoryExistsError(f"Cannot create a repository at {root}: it is a file.")
        if state == "foreign":
            raise RepositoryExistsError(f"Refusing to use {root}: it is not empty and not a Butler "
                                        "repository (no butler.yaml).")
        if state in ("repository", "incomplete") and not (overwrite or resume):
            raise RepositoryExistsError(
                f"{root} holds an incomplete rb-simulate world (interrupted?); pass resume=True to finish it "
                "or overwrite=True to start again." if state == "incomplete" else
                f"Directory {root} holds a Butler repository; pass overwrite=True to replace it."
            )
        has_repo = os.path.isfile(os.path.join(root, "butler.yaml"))
        butler = None
        pending = self.specs
        if resume and has_repo:
            butler = Butler.from_config(root, writeable=True)
            pending = self._pending(butler, root, register_only, state)
        # The last check, in memory: the first detector-visit to write.
        first = self._trial(pending[0]) if pending else None
        # -- From here on, things are written; the marker first, so that a
        # world interrupted even while the old one is being removed says so.
        # A Ctrl-C from here on stops at a boundary (and leaving the block
        # raises it if none did): the marker is then kept.
        with StopBetweenDetectorVisits() as interrupt:
            self.writing_began = True
            _write_marker(root, self.plan_digest)
            if (overwrite and state in ("repository", "incomplete")) or (resume and not has_repo
                                                                         and state == "incomplete"):
                butler = None
                _empty_but_marker(root)
            if butler is None:
                _make_repository(root, self.config.compressImages)
                butler = Butler.from_config(root, writeable=True)
            self.register(butler)
            config_run = f"{self.config.run}/config" if register_only else self.config.run
            self.store_config(butler, config_run)
            interrupt.check()
            summary = SimulationSummary(skipped=len(self.specs) - len(pending))
            if register_only:
                self.store_plan(butler, config_run)
            else:
                bar = sys.stderr.isatty() if progress is None else progress
                with _Progress(len(pending), bar) as report:
                    writes = self._simulate_and_write(butler, root, jobs, pending, first)
                    try:
                        for spec, counts in writes:
                            summary.add(spec.visit.tract, counts)
                            report(summary)
                            interrupt.check()
                    finally:
                        # Shut the workers down here, while a second Ctrl-C
                        # still raises (not when the generator is collected).
                        writes.close()
        os.remove(os.path.join(root, INCOMPLETE_MARKER))
        summary.seconds = time.perf_counter() - start
        return summary

    @property
    def plan_digest(self) -> str:
        """SHA-256 of the survey plan (every detector-visit's pointing,
        WCS, seeing and sky): what a resumed world must have been started
        with, since the same configuration gives another plan under another
        version of the survey planner.
        """
        # Canonical JSON (sorted keys, floats as Python floats): numpy
        # scalar types or field order cannot change it.
        plan = [dataclasses.asdict(spec) for spec in self.specs]
        text = json.dumps(plan, sort_keys=True, separators=(",", ":"), default=lambda value: value.item())
        return hashlib.sha256(text.encode()).hexdigest()

    def _check_plan(self, root: str) -> None:
        """Refuse to resume an incomplete world whose marker records
        another survey plan, or none (started before plans were recorded).
        """
        try:
            with open(os.path.join(root, INCOMPLETE_MARKER), "rb") as stream:
                record = json.loads(stream.read())
            recorded = record.get("planDigest") if isinstance(record, dict) else None
            why = ("was started under another survey plan (another version of the survey planner?)"
                   if recorded else "does not record its survey plan (started by an older rb-simulate)")
        except (OSError, ValueError) as exc:
            recorded, why = None, f"has an unreadable {INCOMPLETE_MARKER} ({first_line(exc)})"
        if recorded != self.plan_digest:
            raise RepositoryExistsError(f"{root} {why}: its written detector-visits may not match this "
                                        "plan, so it cannot be resumed, only overwritten.")

    def _pending(self, butler: Butler, root: str, register_only: bool, state: str) -> list[DetectorVisitSpec]:
        """The detector-visits a resumed simulation has left to write, after
        checking that the world at ``root`` is this configuration's.
        """
        from ._simulateTask import SIMULATION_CONFIG_DATASET

        here, there = f"{self.config.run}/config", self.config.run
        if not register_only:
            here, there = there, here
        refs = _find(butler, SIMULATION_CONFIG_DATASET, here)
        if not refs:
            if _find(butler, SIMULATION_CONFIG_DATASET, there):
                made = "simulated" if register_only else "registered only (register_only)"
                raise RepositoryExistsError(f"{root} holds a world that was {made}; resume it the way it was "
                                            "started.")
            if state != "incomplete" or any(_find(butler, name, self.config.run) for name in DATASET_TYPES):
                raise RepositoryExistsError(f"{root} holds no {SIMULATION_CONFIG_DATASET} to check it "
                                            "against: not a world rb-simulate started; it cannot be resumed.")
            self._check_plan(root)  # register() may have stored the old plan's visits
            return self.specs  # interrupted before the configuration was stored
        difference = _config_difference(butler.get(refs[0]), self.config)
        if difference:
            raise RepositoryExistsError(f"{root} holds a world simulated with another configuration "
                                        f"({difference}); resume it with the options that started it.")
        if state == "incomplete":
            self._check_plan(root)  # before _written prunes anything
        if register_only:
            return self.specs
        done = self._written(butler)
        return [spec for spec in self.specs if (spec.visit.visit, spec.detector) not in done]

    def _written(self, butler: Butler) -> set[tuple[int, int]]:
        """(visit, detector) of the detector-visits whose five datasets are
        all stored; datasets of a detector-visit that has fewer are removed.
        """
        refs = {name: _find(butler, name, self.config.run) for name in DATASET_TYPES}
        keys = {name: {(ref.dataId["visit"], ref.dataId["detector"]) for ref in found}
                for name, found in refs.items()}
        complete = set.intersection(*keys.values())
        partial = [ref for found in refs.values() for ref in found
                   if (ref.dataId["visit"], ref.dataId["detector"]) not in complete]
        if partial:
            butler.pruneDatasets(partial, purge=True, unstore=True, disassociate=True)
        return complete

    def _trial(self, spec: DetectorVisitSpec) -> DetectorVisitProduct:
        """Simulate one detector-visit in memory, turning any failure into a
        one-line refusal of the configuration.
        """
        try:
            return simulate_detector_visit(spec, self.config)
        except Exception as exc:
            what = "runs out of memory" if isinstance(exc, MemoryError) else \
                f"fails ({type(exc).__name__}: {first_line(exc)})"
            raise RealBogusError(f"this configuration cannot be simulated: visit {spec.visit.visit} detector "
                                 f"{spec.detector} {what}.") from exc

    def _simulate_and_write(
        self, butler: Butler, root: str, jobs: int, specs: list[DetectorVisitSpec],
        first: DetectorVisitProduct | None,
    ) -> Iterator[tuple[DetectorVisitSpec, DetectorVisitCounts]]:
        """Simulate and write ``specs`` (``first``, the product of the first,
        is already simulated), in plan order, yielding their counts.
        """
        run = self.config.run
        if not specs:
            return
        yield specs[0], _write_and_count(butler, run, first)
        rest = specs[1:]
        if jobs <= 1:
            for spec in rest:
                yield spec, _write_and_count(butler, run, simulate_detector_visit(spec, self.config))
            return
        # Workers write their own detector-visits (FITS compression is
        # most of a write, which the parent alone could not keep up
        # with); the registry takes concurrent writers as pipetask -j does.
        butler.collections.register(run)
        yield from self._in_workers(rest, jobs, _simulate_and_write_in_worker, root)

    def _in_workers(
        self, specs: list[DetectorVisitSpec], jobs: int, function: Callable[[DetectorVisitSpec], _ResultT],
        root: str | None,
    ) -> Iterator[tuple[DetectorVisitSpec, _ResultT]]:
        """Map ``function`` over ``specs`` in ``jobs`` spawned workers,
        yielding results in plan order with a bounded look-ahead (memory
        stays flat whatever the plan's size).

        If the caller stops (an exception, a Ctrl-C), the detector-visits
        not yet started are cancelled and those in progress finish.
        """
        if not specs:
            return
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_init_worker,
            initargs=(self.config.saveToString(), root),
        )
        try:
            pending: collections.deque[tuple[DetectorVisitSpec, concurrent.futures.Future[_ResultT]]]
            pending = collections.deque()
            todo = iter(specs)
            for spec in todo:
                pending.append((spec, pool.submit(function, spec)))
                if len(pending) >= 2 * jobs:
                    break
            while pending:
                spec, future = pending.popleft()
                yield spec, future.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(function, nxt)))
        finally:
            try:
                pool.shutdown(wait=True, cancel_futures=True)
            except KeyboardInterrupt:
                # A second Ctrl-C: do not wait for the detector-visits in
                # progress (a resume rewrites partial ones). The executor has
                # no public way to stop its workers before Python 3.14.
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _gib(n: int) -> str:
    """Bytes as GiB (or TiB) for messages."""
    return f"{n / 2**40:.1f} TiB" if n >= 2**40 else f"{n / 2**30:.1f} GiB"


def _find(butler: Butler, dataset_type: str, run: str) -> list:
    """The datasets of a type in a RUN collection (none if the dataset type
    or the collection does not exist).
    """
    try:
        return list(butler.query_datasets(dataset_type, collections=run, find_first=False, explain=False))
    except Exception:  # MissingDatasetTypeError, MissingCollectionError
        return []


def _config_difference(stored: SimulationConfig, config: SimulationConfig) -> str:
    """The first field where two configurations differ ('' if none)."""
    messages: list[str] = []
    if stored.compare(config, shortcut=True, rtol=0.0, atol=0.0, output=messages.append):
        return ""
    text = messages[0] if messages else "they differ"
    return " ".join(text.split())[:200]


def _write_marker(root: str, plan_digest: str) -> None:
    """Write `INCOMPLETE_MARKER` into ``root`` (created if needed),
    atomically, with the survey plan's digest that a resume must match.
    """
    os.makedirs(root, exist_ok=True)
    record = {"writtenBy": "rb-simulate (lsst.meas.realbogus.simulation.Simulator.run)",
              "meaning": "this world is not finished; rb-simulate --resume finishes it, --overwrite starts "
                         "again",
              "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "host": socket.gethostname(), "pid": os.getpid(), "planDigest": plan_digest}
    write_bytes_atomically(os.path.join(root, INCOMPLETE_MARKER), (json.dumps(record) + "\n").encode())


def _empty_but_marker(root: str) -> None:
    """Remove everything in ``root`` but `INCOMPLETE_MARKER`."""
    for entry in os.scandir(root):
        if entry.name == INCOMPLETE_MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)


def _make_repository(root: str, compress_images: bool) -> None:
    """Make the Butler repository in ``root``, which holds the marker.

    What `create_repository` does after its checks (which refuse the
    non-empty directory the marker makes).
    """
    # Imported here: the models package imports torch, which workers do not need.
    from ..models import butler_config

    config = Config(butler_config())
    config.update(image_storage_config(compress_images))
    Butler.makeRepo(root, config=config)


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
