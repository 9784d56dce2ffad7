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

"""Train a real/bogus model on the ``rb_triplets`` of a tract: the
``trainRealBogus`` PipelineTask and the ``rb-train`` command, one code path.
"""

from __future__ import annotations

__all__ = [
    "TrainRealBogusConfig",
    "TrainRealBogusConnections",
    "TrainRealBogusTask",
    "main",
]

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

from .butlerConfig import STORAGE_CLASS
from .cliUtils import CliError, apply_config_overrides, one_line
from .devices import configure_threads
from .modelPackage import training_data_coverage
from .training import DistributedContext, TrainingConfig, train
from .tripletData import TripletData


class TrainRealBogusConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract")):
    triplets = cT.Input(
        doc="Labelled cutout triplets of the detector-visits overlapping the tract.",
        name="rb_triplets",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        deferLoad=True,
    )
    model = cT.Output(
        doc="Trained model package (weights and metadata).",
        name="rb_model",
        storageClass=STORAGE_CLASS,
        dimensions=(),
    )

    def adjust_all_quanta(self, adjuster):
        # rb_model has no dimensions: two tracts in one graph would both
        # write it, and the second would fail only after the first trained.
        data_ids = list(adjuster.iter_data_ids())
        if len(data_ids) > 1:
            tracts = sorted(f"{d['skymap']}/{d['tract']}" for d in data_ids)
            raise ValueError(
                f"{adjuster.task_label} writes one dimensionless {self.model.name!r} per output collection "
                f"but the data query selects {len(data_ids)} tracts ({', '.join(tracts)}); train one tract "
                "per run, e.g. -d \"skymap='DC2' AND tract=3080\"."
            )


class TrainRealBogusConfig(
    pipeBase.PipelineTaskConfig, TrainingConfig, pipelineConnections=TrainRealBogusConnections
):
    """Configuration of `TrainRealBogusTask`: the fields of
    `~lsst.meas.realbogus.training.TrainingConfig`.
    """


class TrainRealBogusTask(pipeBase.PipelineTask):
    """Train a real/bogus classifier on the triplets of one tract.

    ``rb_model`` has no dimensions: run one tract per output collection,
    e.g. ``-d "skymap='DC2' AND tract=3080"``.
    """

    ConfigClass = TrainRealBogusConfig
    _DefaultName = "trainRealBogus"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        refs = sorted(inputRefs.triplets, key=lambda ref: (ref.dataId["visit"], ref.dataId["detector"]))
        handles = [butlerQC.get(ref) for ref in refs]
        provenance = _provenance(refs, butlerQC.quantum.dataId["skymap"], butlerQC.quantum.dataId["tract"])
        if self.config.numThreads == 0:
            # pipetask limits each quantum to --cores-per-quantum threads; use them.
            configure_threads(butlerQC.resources.num_cores)
        outputs = self.run(handles, names=[_describe(ref) for ref in refs], provenance=provenance)
        butlerQC.put(outputs, outputRefs)

    def run(
        self,
        triplets: Sequence[Any],
        names: Sequence[str] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Train and package a model.

        Parameters
        ----------
        triplets : `~collections.abc.Sequence`
            Handles of ``rb_triplets`` datasets (objects with
            ``get(parameters=...)``, read lazily).
        names : `~collections.abc.Sequence` [`str`], optional
            A name per handle for messages.
        provenance : `dict`, optional
            Facts recorded in the package's training metadata.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``model``: the `~lsst.meas.realbogus.modelPackage.ModelPackage`.

        Notes
        -----
        Under ``torchrun`` every rank calls this with the same triplets and
        trains one model with DistributedDataParallel (see
        `~lsst.meas.realbogus.training.train`); every rank returns rank
        0's package.
        """
        c = self.config
        names = list(names) if names is not None else [f"dataset {i}" for i in range(len(triplets))]
        dist = DistributedContext.from_environment()
        shard = (dist.rank, dist.world_size) if dist.active and c.distributedSharding == "datasets" else None
        data = TripletData(
            triplets,
            names,
            validation_fraction=c.validationFraction,
            seed=c.seed,
            cache_megabytes=c.cacheMegabytes,
            log=self.log,
            shard=shard,
            readers=c.loaderThreads,
        )
        package = train(c, data, provenance=provenance, log=self.log, distributed=dist)
        return pipeBase.Struct(model=package)


def _provenance(refs, skymap: str, tract: int) -> dict[str, Any]:
    """What the model package records of its training data."""
    return {
        "inputCollections": sorted({ref.run for ref in refs}),
        "datasets": len(refs),
        "skymap": str(skymap),
        "tract": int(tract),
        # What computeReliability compares with the data it scores.
        **training_data_coverage(ref.dataId for ref in refs),
    }


def _describe(ref) -> str:
    return f"visit={ref.dataId['visit']} detector={ref.dataId['detector']}"


# -- rb-train -----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rb-train",
        description="Train a real/bogus model on the rb_triplets of a tract and store it as rb_model "
        "(the same code as the trainRealBogus PipelineTask). Under torchrun (e.g. torchrun "
        "--nproc_per_node 2 $(which rb-train) ...) the processes train one model with "
        "DistributedDataParallel (gloo on the CPU, nccl on GPUs; see distributedSharding) and rank 0 "
        "writes it.",
    )
    parser.add_argument("repo", help="Butler repository.")
    parser.add_argument("--collections", "-i", action="append", required=True,
                        help="Input collection(s) holding rb_triplets (repeatable).")
    parser.add_argument("--tract", type=int, required=True, help="Train on the triplets overlapping this tract.")
    parser.add_argument("--skymap", default="DC2", help="Skymap of the tract (default DC2).")
    parser.add_argument("--output", "-o", help="RUN collection to write rb_model into.")
    parser.add_argument("--package", help="Also (or only) write the model package to this .zip file.")
    parser.add_argument("-C", "--config-file", action="append", default=[],
                        help="Python config file for TrainRealBogusConfig (as for pipetask).")
    parser.add_argument("-c", "--config", action="append", default=[], metavar="FIELD=VALUE",
                        help="Config override, e.g. epochs=5, model.name=vgg6, device=cuda.")
    parser.add_argument("--show-config", action="store_true", help="Print the config and exit.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-train``."""
    args = _parser().parse_args(argv)
    dist = DistributedContext.from_environment()
    if dist.active:
        # Every rank logs its warnings; rank 0 alone the progress.
        logging.basicConfig(level=logging.INFO if dist.is_main else logging.WARNING,
                            format=f"%(levelname)s [rank {dist.rank}] %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("rb-train")
    try:
        config = TrainRealBogusConfig()
        apply_config_overrides(config, args.config_file, args.config)
        if args.show_config:
            config.saveToStream(sys.stdout)
            return 0
        if not args.output and not args.package:
            raise CliError("give --output (a RUN collection) and/or --package (a .zip file).")
        # Rank 0 alone writes: the other ranks open the repository read-only.
        writes = dist.is_main
        butler, refs = _find_triplets(args, writeable=bool(args.output) and writes)
        if args.output and writes:
            _check_output_free(butler, args.output)
        log.info("Training on %d rb_triplets datasets of tract %d in %s.", len(refs), args.tract, args.collections)
        provenance = _provenance(refs, args.skymap, args.tract)
        task = TrainRealBogusTask(config=config)
        try:
            result = task.run([butler.getDeferred(ref) for ref in refs], names=[_describe(r) for r in refs],
                              provenance=provenance)
        except (ValueError, RuntimeError) as exc:
            raise CliError(one_line(exc)) from None
        if args.package and writes:
            result.model.write(args.package)
            log.info("Wrote %s.", args.package)
        if args.output and writes:
            _put_model(butler, result.model, args.output)
            log.info("Stored rb_model %s in RUN collection %s.", result.model.version, args.output)
    except CliError as exc:
        print(f"rb-train: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _find_triplets(args: argparse.Namespace, writeable: bool):
    """Open the repository and find the tract's triplets, sorted."""
    from lsst.daf.butler import Butler

    try:
        butler = Butler.from_config(args.repo, writeable=writeable)
    except Exception as exc:
        raise CliError(f"cannot open Butler repository {args.repo!r}: {one_line(exc)}") from None
    try:
        refs = butler.query_datasets(
            "rb_triplets",
            collections=args.collections,
            where="skymap = sm AND tract = t",
            bind={"sm": args.skymap, "t": args.tract},
            find_first=True,
            explain=False,
        )
    except Exception as exc:
        raise CliError(f"cannot query rb_triplets in {args.collections}: {one_line(exc)}") from None
    if not refs:
        raise CliError(
            f"no rb_triplets overlap tract {args.tract} of skymap {args.skymap} in collections "
            f"{args.collections}; run the BuildTriplets pipeline first."
        )
    refs = sorted(set(refs), key=lambda ref: (ref.dataId["visit"], ref.dataId["detector"]))
    return butler, refs


def _check_output_free(butler, run: str) -> None:
    """Refuse, before training, an output RUN that already holds a model."""
    try:
        existing = butler.query_datasets("rb_model", collections=run, explain=False)
    except Exception:
        return  # no such collection or dataset type yet: free
    if existing:
        raise CliError(f"RUN collection {run!r} already holds rb_model {existing[0].id}; choose another --output.")


def _put_model(butler, package, run: str) -> None:
    """Store the package as rb_model in a RUN collection."""
    from lsst.daf.butler import DatasetType

    dataset_type = DatasetType("rb_model", (), STORAGE_CLASS, universe=butler.dimensions)
    try:
        butler.registry.registerDatasetType(dataset_type)
        butler.collections.register(run)
        butler.put(package, dataset_type, run=run)
    except Exception as exc:
        raise CliError(f"cannot store rb_model in {run!r}: {one_line(exc)}") from None


if __name__ == "__main__":
    sys.exit(main())
