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

"""Helpers shared by the benchmark scripts: machine and version stamps and
the JSON-lines writer.

Not a package module: the scripts import it from their own directory, which
Python puts first on ``sys.path`` when a script is run by path.
"""

from __future__ import annotations

__all__ = [
    "JsonLineWriter",
    "build_triplets_in_processes",
    "best_time",
    "detector_repository",
    "load_average",
    "machine_info",
    "package_versions",
    "source_positions",
    "use_checkout",
]

import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

DEFAULT_PACKAGES = (
    "numpy",
    "scipy",
    "astropy",
    "galsim",
    "photutils",
    "lsst-daf-butler",
    "lsst-pex-config",
    "lsst-sphgeom",
)
"""Distributions whose versions every benchmark line records."""

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The package checkout the benchmarks live in."""


def use_checkout() -> None:
    """Make this checkout's ``lsst.meas.realbogus`` importable.

    If no ``sys.path`` entry holds the package (it is not installed into
    the environment and ``PYTHONPATH`` does not name it), put this
    checkout's ``python/`` first.  Call it before importing anything from
    ``lsst``; worker processes started with ``spawn`` inherit the path.
    """
    package = Path("lsst", "meas", "realbogus", "__init__.py")
    if not any((Path(entry or ".") / package).is_file() for entry in sys.path):
        sys.path.insert(0, str(REPO_ROOT / "python"))


def machine_info() -> dict[str, Any]:
    """Describe the machine a benchmark ran on.

    Returns
    -------
    info : `dict` [`str`, `~typing.Any`]
        Platform string, machine type, Python implementation and version,
        logical CPU count and the number of CPUs this process may use.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
    }


def _git_commit(root: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, check=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def package_versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """Versions of the packages a benchmark depends on.

    Parameters
    ----------
    extra : iterable of `str`, optional
        Distribution names to record besides `DEFAULT_PACKAGES`.

    Returns
    -------
    versions : `dict` [`str`, `str` or `None`]
        Installed version per distribution (`None` if not installed), plus
        ``meas_realbogus``: the git commit of this checkout (``-dirty`` when
        it has uncommitted changes), since the package itself is not
        installed as a distribution.
    """
    versions: dict[str, str | None] = {}
    for name in (*DEFAULT_PACKAGES, *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["meas_realbogus"] = _git_commit(REPO_ROOT)
    return versions


def _jsonable(value: Any) -> Any:
    # NaN and infinities are not JSON: write null.  NumPy scalars become
    # Python ones.
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class JsonLineWriter:
    """Write one JSON object per line, stamped with machine and versions.

    Parameters
    ----------
    benchmark : `str`
        Name of the benchmark script, recorded in every line.
    versions : `dict` [`str`, `str` or `None`]
        Package versions, recorded in every line.
    stream : `typing.TextIO`, optional
        Where to write; default `sys.stdout`.
    """

    def __init__(self, benchmark: str, versions: Mapping[str, str | None], stream: TextIO | None = None):
        self._benchmark = benchmark
        self._machine = machine_info()
        self._versions = dict(versions)
        self._stream = stream if stream is not None else sys.stdout

    def emit(self, figure: str, value: Any, unit: str, **extra: Any) -> None:
        """Write one line.

        Parameters
        ----------
        figure : `str`
            What is measured.
        value : `~typing.Any`
            The measured value (NaN is written as ``null``).
        unit : `str`
            Unit of ``value``.
        **extra
            Further keys of the line.
        """
        line = {"benchmark": self._benchmark, "figure": figure, "value": value, "unit": unit}
        line.update(extra)
        line["machine"] = self._machine
        line["versions"] = self._versions
        self._stream.write(json.dumps(_jsonable(line)) + "\n")
        self._stream.flush()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where unknown), to
    record beside timings: these machines are shared and noisy.
    """
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def best_time(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Call a function ``repeats`` times; return the shortest wall time and
    the last result (the minimum is the least disturbed by other load).
    """
    best = math.inf
    result = None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


DETECTOR_SHAPE = (4000, 4072)
"""Rows and columns of a DC2 (imSim ITL) detector."""

DETECTOR_COLLECTION = "DC2/sim"


def detector_repository(root: str | os.PathLike, shape: tuple[int, int] = DETECTOR_SHAPE) -> tuple[Any, Any]:
    """A repository holding one simulated detector-visit at DC2 size.

    Simulated on first use (about a minute on one core) and reused after,
    so that the cutout and scoring benchmarks read the same full-size
    images, as a Prompt Processing worker would.

    Parameters
    ----------
    root : path-like
        Repository root.
    shape : `tuple` [`int`, `int`], optional
        Detector rows and columns.

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        Read-only, with the simulation's collection as default.
    data_id : `lsst.daf.butler.DataCoordinate`
        The detector-visit.
    """
    from lsst.daf.butler import Butler
    from lsst.meas.realbogus.simulation import Simulator, make_config

    root = Path(root)
    if not (root / "butler.yaml").exists():
        config = make_config("ci")
        config.survey.tracts = [4024]
        config.survey.visitsPerTract = 1
        config.survey.detectorsPerVisit = 1
        config.survey.edgePointingFraction = 0.0
        config.survey.detectorHeight, config.survey.detectorWidth = shape
        Simulator(config).run(str(root), jobs=1, progress=False)
    butler = Butler.from_config(str(root), collections=[DETECTOR_COLLECTION])
    refs = butler.query_datasets("difference_image")
    if len(refs) != 1:
        raise RuntimeError(f"{root} should hold one detector-visit; it holds {len(refs)}.")
    return butler, refs[0].dataId


def source_positions(catalog_x, catalog_y, n: int, shape: tuple[int, int], seed: int = 0):
    """Positions of ``n`` sources on a detector: the catalog's own first,
    then uniform random ones (edges included), as a busy detector has.

    Returns
    -------
    x, y : `numpy.ndarray`, (n,)
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.asarray(catalog_x, dtype=float)[:n]
    y = np.asarray(catalog_y, dtype=float)[:n]
    extra = n - len(x)
    if extra > 0:
        x = np.concatenate([x, rng.uniform(-0.5, shape[1] - 0.5, extra)])
        y = np.concatenate([y, rng.uniform(-0.5, shape[0] - 0.5, extra)])
    return x, y


# One buildTriplets shard, run in its own process.
_SHARD = """
import sys
from lsst.meas.realbogus.tests import run_pipeline
root, inputs, output, where = sys.argv[1:5]
run_pipeline(root, "BuildTriplets.yaml", inputs.split(","), output, where)
"""


def build_triplets_in_processes(root: str, inputs: Sequence[str], output: str, jobs: int,
                                where: str = "instrument='LSSTCam-imSim'") -> list[str]:
    """Run ``pipelines/BuildTriplets.yaml`` over every visit with a
    ``difference_image`` in ``inputs``, in ``jobs`` processes, each running
    its share of the visits in-process with the executor ``pipetask run -j
    1`` uses (``pipetask -j N`` starts a fresh Python per quantum, whose
    3 s of imports are several quanta's work here).

    Returns
    -------
    outputs : `list` [`str`]
        The output collections, ``output/<k>`` per process.
    """
    import subprocess

    from lsst.daf.butler import Butler

    visits = sorted({ref.dataId["visit"] for ref in Butler.from_config(root).query_datasets(
        "difference_image", collections=list(inputs), explain=False)})
    shards = [visits[k::jobs] for k in range(jobs) if visits[k::jobs]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    outputs = [f"{output}/{k}" for k in range(len(shards))]
    procs = [
        subprocess.Popen([sys.executable, "-c", _SHARD, root, ",".join(inputs), out,
                          f"{where} AND visit IN ({', '.join(map(str, shard))})"], env=env)
        for out, shard in zip(outputs, shards)
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"a buildTriplets shard failed (exit status {proc.returncode}).")
    return outputs
