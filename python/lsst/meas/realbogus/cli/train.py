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

"""``rb-train``: train a model on the rb_triplets of a tract, outside pipetask."""

from __future__ import annotations

__all__ = ['main']

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from ..errors import CliError, ModelPackageError, one_line
from ..models import put_model
from ..training import DistributedContext, TrainRealBogusConfig, TrainRealBogusTask
from ..training._trainRealBogus import _describe, _provenance
from ._options import apply_config_overrides

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DatasetRef


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
            try:
                put_model(butler, result.model, args.output)
            except ModelPackageError as exc:
                raise CliError(str(exc)) from None
            log.info("Stored rb_model %s in RUN collection %s.", result.model.version, args.output)
    except CliError as exc:
        print(f"rb-train: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _find_triplets(args: argparse.Namespace, writeable: bool) -> tuple[Butler, list[DatasetRef]]:
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


def _check_output_free(butler: Butler, run: str) -> None:
    """Refuse, before training, an output RUN that already holds a model."""
    try:
        existing = butler.query_datasets("rb_model", collections=run, explain=False)
    except Exception:
        return  # no such collection or dataset type yet: free
    if existing:
        raise CliError(f"RUN collection {run!r} already holds rb_model {existing[0].id}; choose another --output.")


if __name__ == "__main__":
    sys.exit(main())
