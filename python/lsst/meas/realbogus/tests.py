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

"""Support shared by the package's tests and benchmarks (as
`lsst.utils.tests` is for the stack): simulated ``ci`` repositories with
triplets and a model, and an in-process pipeline runner that uses the
executor ``pipetask`` uses.

Not imported by the package itself.
"""

from __future__ import annotations

__all__ = [
    "BOTH_WHERE",
    "MODEL",
    "SIM_COLLECTION",
    "TEST_WHERE",
    "TRAIN_WHERE",
    "TRIPLETS",
    "ci_model",
    "ci_repository",
    "kill_group_when",
    "make_ci_repository",
    "package_dir",
    "pipeline_path",
    "quick_training_config",
    "run_pipeline",
    "triplet_handles",
]

import atexit
import functools
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DeferredDatasetHandle

    from .models import ModelPackage
    from .training import TrainRealBogusConfig

SIM_COLLECTION = "DC2/sim"
"""RUN collection the simulator writes."""
TRIPLETS = "ci/triplets"
"""Output collection of `make_ci_repository`'s triplets."""
MODEL = "ci/model"
"""RUN collection of `ci_model`'s ``rb_model``."""
TRAIN_WHERE = "skymap='DC2' AND tract=3080"
TEST_WHERE = "skymap='DC2' AND tract=4024"
BOTH_WHERE = "instrument='LSSTCam-imSim' AND skymap='DC2' AND tract IN (3080, 4024)"


def package_dir() -> Path:
    """Return the root of the package's checkout (``pipelines/``,
    ``config/``, ...): ``$MEAS_REALBOGUS_DIR`` if set (EUPS sets it), else
    the checkout this module lies in.
    """
    root = os.environ.get("MEAS_REALBOGUS_DIR")
    return Path(root) if root else Path(__file__).resolve().parents[4]


def pipeline_path(pipeline: str) -> str:
    """Return the path of a pipeline of ``pipelines/`` (``file.yaml`` or
    ``file.yaml#label,...``).
    """
    return str(package_dir() / "pipelines" / pipeline)


def run_pipeline(
    root: str,
    pipeline: str,
    inputs: Sequence[str],
    output: str,
    where: str = "",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list:
    """Run a pipeline of ``pipelines/`` in-process, with the executor
    ``pipetask run -j 1`` uses, registering dataset types.

    Parameters
    ----------
    root : `str`
        Repository.
    pipeline : `str`
        ``file.yaml`` or ``file.yaml#label`` under ``pipelines/``.
    inputs : `~collections.abc.Sequence` [`str`]
        Input collections.
    output : `str`
        Output CHAINED collection (a timestamped RUN is made under it).
    where : `str`, optional
        Data query.
    overrides : `~collections.abc.Mapping`, optional
        Config overrides by task label: ``{label: {field: value}}``.

    Returns
    -------
    quanta : `list`
        The executed quanta.
    """
    from lsst.pipe.base import Pipeline
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    p = Pipeline.from_uri(pipeline_path(pipeline))
    for label, values in (overrides or {}).items():
        for key, value in values.items():
            p.addConfigOverride(label, key, value)
    butler = SimplePipelineExecutor.prep_butler(root, inputs=list(inputs), output=output)
    executor = SimplePipelineExecutor.from_pipeline(p, where=where, butler=butler)
    return executor.run(register_dataset_types=True)


def make_ci_repository(root: str) -> str:
    """Simulate a ``ci`` repository at ``root`` and cut the triplets of
    both tracts into `TRIPLETS`.

    Returns
    -------
    root : `str`
    """
    from .simulation import Simulator, make_config

    Simulator(make_config("ci")).run(root, jobs=1, progress=False)
    run_pipeline(root, "BuildTriplets.yaml", [SIM_COLLECTION], TRIPLETS, BOTH_WHERE)
    return root


@functools.cache
def ci_repository() -> str:
    """Return the root of a ``ci`` repository holding `SIM_COLLECTION` and
    triplets of both tracts in `TRIPLETS`, built once per process in a
    temporary directory removed at exit.
    """
    tmp = tempfile.mkdtemp(prefix="rb_ci_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return make_ci_repository(os.path.join(tmp, "repo"))


def triplet_handles(root: str, where: str = TRAIN_WHERE) -> tuple[Butler, list[DeferredDatasetHandle], list[str]]:
    """Return (butler, deferred handles, names) of a tract's triplets in
    `TRIPLETS`, in (visit, detector) order.
    """
    from lsst.daf.butler import Butler

    butler = Butler.from_config(root, collections=[TRIPLETS])
    refs = sorted(butler.query_datasets("rb_triplets", where=where),
                  key=lambda r: (r.dataId["visit"], r.dataId["detector"]))
    names = [f"visit={r.dataId['visit']} detector={r.dataId['detector']}" for r in refs]
    return butler, [butler.getDeferred(r) for r in refs], names


def quick_training_config(**values: Any) -> TrainRealBogusConfig:
    """Return a config for a few CPU epochs on the ci triplets,
    single-threaded (deterministic); ``values`` override fields.
    """
    from .training import TrainRealBogusConfig

    config = TrainRealBogusConfig()
    config.epochs = 3
    config.batchSize = 8
    config.device = "cpu"
    config.numThreads = 1
    config.validationFraction = 0.2
    config.progressBar = False
    for key, value in values.items():
        setattr(config, key, value)
    return config


@functools.cache
def ci_model() -> tuple[str, ModelPackage]:
    """Return (root, package) after training a small rbcnn on tract 3080 of
    `ci_repository` and storing it as ``rb_model`` in `MODEL` (once per
    process).
    """
    from lsst.daf.butler import Butler

    from .models import put_model
    from .training import TrainRealBogusTask

    root = ci_repository()
    _, handles, names = triplet_handles(root)
    package = TrainRealBogusTask(config=quick_training_config()).run(handles, names=names).model
    put_model(Butler.from_config(root, writeable=True), package, MODEL)
    return root, package


def kill_group_when(proc: subprocess.Popen, pattern: str, timeout: float = 240) -> bool:
    """SIGKILL a process group once a file matching ``pattern`` exists.

    Returns
    -------
    killed : `bool`
        False if the process ended (or the wait timed out) first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not glob.glob(pattern, recursive=True):
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed
