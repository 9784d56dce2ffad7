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

"""The simulation as a PipelineTask, one quantum per (visit, detector), so
that a world of DMTN-272's size is simulated on a cluster (BPS) as every
other step runs.

``rb-simulate REPO --register-only`` creates the repository, inserts the
skymap, instrument and visit records of the survey plan, stores the
configuration as ``rb_simulation_config`` and one ``rb_simulation_plan`` per
planned detector-visit (its pointing and conditions: what gives the
quanta); ``pipetask run`` (or ``bps
submit bps/simulation.yaml``) of ``pipelines/Simulate.yaml`` then simulates
each detector-visit of the plan, the same code ``rb-simulate`` runs on one
machine, and writes the same five datasets, bit for bit.
"""

from __future__ import annotations

__all__ = [
    "SIMULATION_CONFIG_DATASET",
    "SIMULATION_PLAN_DATASET",
    "plan_record",
    "SimulateDetectorVisitConfig",
    "SimulateDetectorVisitConnections",
    "SimulateDetectorVisitTask",
]

import functools
from typing import Any

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.daf.butler import DataCoordinate
from lsst.utils.timer import timeMethod

from ..errors import SimulationPlanError
from ._config import SimulationConfig
from ._detectorVisit import simulate_detector_visit
from ._repository import DATASET_DIMENSIONS, DATASET_TYPES, make_datasets
from ._survey import DetectorVisitSpec, plan_survey

SIMULATION_CONFIG_DATASET = "rb_simulation_config"
"""Dataset type of the stored `SimulationConfig` (no dimensions)."""
SIMULATION_PLAN_DATASET = "rb_simulation_plan"
"""Dataset type of one planned detector-visit (`plan_record`;
``StructuredDataDict``, dimensions instrument, visit, detector)."""

_OUTPUTS = {
    "science": ("preliminary_visit_image", "Science (visit) image."),
    "template": ("template_detector", "Template warped to the science image."),
    "difference": ("difference_image", "Difference image."),
    "diaSources": ("dia_source_unstandardized", "DIA sources detected on the difference image."),
    "truth": ("dia_source_truth", "Truth label of each DIA source."),
}


class SimulateDetectorVisitConnections(pipeBase.PipelineTaskConnections, dimensions=DATASET_DIMENSIONS):
    simulationConfig = cT.Input(
        doc="The simulated world's configuration, stored by rb-simulate --register-only.",
        name=SIMULATION_CONFIG_DATASET,
        storageClass="Config",
        dimensions=(),
    )
    plan = cT.Input(
        doc="The planned detector-visit: its pointing and conditions.",
        name=SIMULATION_PLAN_DATASET,
        storageClass="StructuredDataDict",
        dimensions=DATASET_DIMENSIONS,
    )
    science = cT.Output(doc=_OUTPUTS["science"][1], name=_OUTPUTS["science"][0],
                        storageClass=DATASET_TYPES[_OUTPUTS["science"][0]], dimensions=DATASET_DIMENSIONS)
    template = cT.Output(doc=_OUTPUTS["template"][1], name=_OUTPUTS["template"][0],
                         storageClass=DATASET_TYPES[_OUTPUTS["template"][0]], dimensions=DATASET_DIMENSIONS)
    difference = cT.Output(doc=_OUTPUTS["difference"][1], name=_OUTPUTS["difference"][0],
                           storageClass=DATASET_TYPES[_OUTPUTS["difference"][0]], dimensions=DATASET_DIMENSIONS)
    diaSources = cT.Output(doc=_OUTPUTS["diaSources"][1], name=_OUTPUTS["diaSources"][0],
                           storageClass=DATASET_TYPES[_OUTPUTS["diaSources"][0]], dimensions=DATASET_DIMENSIONS)
    truth = cT.Output(doc=_OUTPUTS["truth"][1], name=_OUTPUTS["truth"][0],
                      storageClass=DATASET_TYPES[_OUTPUTS["truth"][0]], dimensions=DATASET_DIMENSIONS)


class SimulateDetectorVisitConfig(pipeBase.PipelineTaskConfig, pipelineConnections=SimulateDetectorVisitConnections):
    """Configuration of `SimulateDetectorVisitTask` (the world's own
    configuration is the ``simulationConfig`` input).
    """


class SimulateDetectorVisitTask(pipeBase.PipelineTask):
    """Simulate one detector-visit of a registered world.

    The detector-visit is found in the survey plan of the stored
    configuration (`plan_survey`), so its WCS, seeing and seeds are those
    ``rb-simulate`` uses, and the outputs equal its outputs.
    """

    ConfigClass = SimulateDetectorVisitConfig
    _DefaultName = "simulateDetectorVisit"

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(inputs["simulationConfig"], butlerQC.quantum.dataId, plan=inputs["plan"])
        butlerQC.put(outputs, outputRefs)

    @timeMethod
    def run(
        self,
        simulationConfig: SimulationConfig,
        dataId: DataCoordinate | dict[str, Any],
        plan: dict[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Simulate the detector-visit ``dataId`` of the world.

        Parameters
        ----------
        simulationConfig : `SimulationConfig`
            The world's configuration.
        dataId : `lsst.daf.butler.DataCoordinate` or `dict`
            ``visit`` and ``detector``.
        plan : `dict`, optional
            The stored `plan_record`; if given it must be that of the
            configuration's plan (a repository registered with another
            configuration is refused).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``science``, ``template``, ``difference``, ``diaSources`` and
            ``truth``.

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if the plan holds no such detector-visit.
        lsst.meas.realbogus.errors.SimulationPlanError
            Raised if ``plan`` is not the configuration's.
        """
        spec = _plan(simulationConfig.saveToString()).get((int(dataId["visit"]), int(dataId["detector"])))
        if spec is None:
            raise pipeBase.NoWorkFound(f"the simulation plan has no detector-visit {dict(dataId)}.")
        if plan is not None and dict(plan) != plan_record(spec):
            raise SimulationPlanError(f"rb_simulation_plan of {dict(dataId)} is not the stored configuration's; "
                             "register the world again with rb-simulate --register-only.")
        datasets = make_datasets(simulate_detector_visit(spec, simulationConfig))
        self.log.info("Simulated visit %d detector %d: %d DIA sources, %d real.", spec.visit.visit,
                      spec.detector, len(datasets["dia_source_truth"]),
                      int(datasets["dia_source_truth"]["is_real"].sum()))
        return pipeBase.Struct(**{connection: datasets[name] for connection, (name, _) in _OUTPUTS.items()})


@functools.lru_cache(maxsize=2)
def _plan(config_text: str) -> dict[tuple[int, int], DetectorVisitSpec]:
    """The survey plan of a configuration by (visit, detector), once per
    process (a BPS job runs many quanta of one world).
    """
    config = SimulationConfig()
    config.loadFromString(config_text)
    return {(spec.visit.visit, spec.detector): spec for spec in plan_survey(config)}


def plan_record(spec: DetectorVisitSpec) -> dict[str, Any]:
    """Return what ``rb_simulation_plan`` records of a detector-visit."""
    visit = spec.visit
    return {"visit": visit.visit, "detector": spec.detector, "tract": visit.tract, "band": visit.band,
            "boresightRa": visit.boresight_ra, "boresightDec": visit.boresight_dec, "rotation": visit.rotation,
            "seeing": visit.seeing, "skyScale": visit.sky_scale, "mjd": visit.mjd}
