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

"""A simulated ``ci`` repository with triplets, built once per test process,
and an in-process pipeline runner (the same executor code as pipetask).
"""

import atexit
import functools
import glob
import os
import shutil
import signal
import tempfile
import time

from lsst.daf.butler import Butler
from lsst.pipe.base import Pipeline
from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

from lsst.meas.realbogus.simulation import Simulator, make_config

PIPELINES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pipelines")
SIM_COLLECTION = "DC2/sim"
TRIPLETS = "ci/triplets"
TRAIN_WHERE = "skymap='DC2' AND tract=3080"
TEST_WHERE = "skymap='DC2' AND tract=4024"
BOTH_WHERE = "instrument='LSSTCam-imSim' AND skymap='DC2' AND tract IN (3080, 4024)"


def run_pipeline(root, pipeline, inputs, output, where, overrides=None):
    """Run a pipeline file of ``pipelines/`` in-process.

    Parameters
    ----------
    root : `str`
        Repository.
    pipeline : `str`
        File name under ``pipelines/``.
    inputs : `list` [`str`]
        Input collections.
    output : `str`
        Output CHAINED collection (a timestamped RUN is made under it).
    where : `str`
        Data query.
    overrides : `dict` [`str`, `dict`], optional
        Config overrides by task label.

    Returns
    -------
    quanta : `list`
        Executed quanta.
    """
    p = Pipeline.from_uri(os.path.join(PIPELINES, pipeline))
    for label, values in (overrides or {}).items():
        for key, value in values.items():
            p.addConfigOverride(label, key, value)
    butler = SimplePipelineExecutor.prep_butler(root, inputs=inputs, output=output)
    executor = SimplePipelineExecutor.from_pipeline(p, where=where, butler=butler)
    return executor.run(register_dataset_types=True)


@functools.cache
def ci_repository():
    """Return the root of a ``ci`` repository holding ``DC2/sim`` and
    triplets of both tracts in ``ci/triplets`` (built once per process).
    """
    tmp = tempfile.mkdtemp(prefix="rb_ci_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    root = os.path.join(tmp, "repo")
    Simulator(make_config("ci")).run(root, jobs=1, progress=False)
    run_pipeline(root, "BuildTriplets.yaml", [SIM_COLLECTION], TRIPLETS, BOTH_WHERE)
    return root


def triplet_handles(root, where=TRAIN_WHERE):
    """Return (butler, deferred handles, names) of the tract's triplets, in
    (visit, detector) order.
    """
    butler = Butler.from_config(root, collections=[TRIPLETS])
    refs = sorted(butler.query_datasets("rb_triplets", where=where),
                  key=lambda r: (r.dataId["visit"], r.dataId["detector"]))
    names = [f"visit={r.dataId['visit']} detector={r.dataId['detector']}" for r in refs]
    return butler, [butler.getDeferred(r) for r in refs], names


MODEL = "ci/model"


def quick_training_config(**values):
    """A few CPU epochs on the ci triplets, single-threaded (deterministic)."""
    from lsst.meas.realbogus.trainRealBogus import TrainRealBogusConfig

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
def ci_model():
    """Return (root, package) after training a small rbcnn on tract 3080
    and storing it as ``rb_model`` in ``ci/model`` (once per process).
    """
    from lsst.meas.realbogus.trainRealBogus import TrainRealBogusTask, _put_model

    root = ci_repository()
    config = quick_training_config()
    _, handles, names = triplet_handles(root)
    package = TrainRealBogusTask(config=config).run(handles, names=names).model
    _put_model(Butler.from_config(root, writeable=True), package, MODEL)
    return root, package


def kill_group_when(proc, pattern, timeout=240):
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
