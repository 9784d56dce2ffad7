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

__all__ = ["default_checkpoint_dir", "main"]

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

from ..errors import CliError, ModelPackageError, one_line
from ..models import ModelPackage, put_model
from ..training import DistributedContext, TrainRealBogusConfig, TrainRealBogusTask
from ..training._checkpoint import CHECKPOINT_NAME
from ..training._trainRealBogus import _describe, _provenance
from ._files import check_output, is_model_package, write_bytes_atomically
from ._options import apply_config_overrides, find_package_storage_classes

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DatasetRef


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rb-train",
        description="Train a real/bogus model on the rb_triplets of a tract and store it as rb_model "
        "(the same code as the trainRealBogus PipelineTask). Under torchrun (e.g. torchrun "
        "--nproc_per_node 2 $(which rb-train) ...) the processes train one model with "
        "DistributedDataParallel (gloo on the CPU, nccl on GPUs; see distributedSharding) and rank 0 "
        "writes it. Exit status: 0; 2 for a user error, found before training; 1 if training ended "
        "but the model could not be written everywhere asked (the message says where it is).",
    )
    parser.add_argument("repo", help="Butler repository.")
    parser.add_argument("--collections", "-i", action="append", required=True,
                        help="Input collection(s) holding rb_triplets (repeatable).")
    parser.add_argument("--tract", type=int, required=True, help="Train on the triplets overlapping this tract.")
    parser.add_argument("--skymap", default="DC2", help="Skymap of the tract (default DC2).")
    parser.add_argument("--output", "-o", help="RUN collection to write rb_model into.")
    parser.add_argument("--package", help="Also (or only) write the model package to this .zip file (checked "
                        "before training, written atomically after the Butler put). An existing file is "
                        "replaced only if it is a valid model package, or with --overwrite.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the --package file even if it is not a model package.")
    parser.add_argument("--no-checkpoint", action="store_true",
                        help="Do not checkpoint. By default rb-train writes a checkpoint after every epoch "
                        "into a directory named after its inputs and settings (printed at start; "
                        "-c checkpointDir=DIR chooses another), resumes from it when the same command "
                        "runs again, and removes it once the model is written.")
    parser.add_argument("-C", "--config-file", action="append", default=[],
                        help="Python config file for TrainRealBogusConfig (as for pipetask). It is "
                        "executed as Python code: use only files you trust.")
    parser.add_argument("-c", "--config", action="append", default=[], metavar="FIELD=VALUE",
                        help="Config override, e.g. epochs=5, model.name=vgg6, device=cuda.")
    parser.add_argument("--show-config", action="store_true", help="Print the config and exit.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-train``.

    Returns
    -------
    status : `int`
        0 on success; 2 on a user error found before training (one line
        on stderr); 1 if the model was trained but could not be written
        everywhere asked (one line saying where it is); 130 after a Ctrl-C
        (one line saying where the last checkpoint is).
    """
    args = _parser().parse_args(argv)
    find_package_storage_classes()
    dist = DistributedContext.from_environment()
    if dist.active:
        # Every rank logs its warnings; rank 0 alone the progress.
        logging.basicConfig(level=logging.INFO if dist.is_main else logging.WARNING,
                            format=f"%(levelname)s [rank {dist.rank}] %(name)s: %(message)s")
    else:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("rb-train")
    config = TrainRealBogusConfig()
    try:
        apply_config_overrides(config, args.config_file, args.config)
        if args.show_config:
            config.saveToStream(sys.stdout)
            return 0
        if not args.output and not args.package:
            raise CliError("give --output (a RUN collection) and/or --package (a .zip file).")
        if args.no_checkpoint and config.checkpointDir:
            raise CliError("--no-checkpoint contradicts -c checkpointDir=...; give one of them.")
        # Rank 0 alone writes: the other ranks open the repository read-only.
        writes = dist.is_main
        # Every rank checks the package path, so that all refuse together.
        package = _check_package_path(args.package, args.overwrite) if args.package else None
        butler, refs = _find_triplets(args, writeable=bool(args.output) and writes)
        if args.output and writes:
            _check_output_free(butler, args.output)
        derived = _set_up_checkpoints(config, args, refs, dist.world_size, writes, log)
        log.info("Training on %d rb_triplets datasets of tract %d in %s.", len(refs), args.tract,
                 args.collections)
        provenance = _provenance(refs, args.skymap, args.tract)
        task = TrainRealBogusTask(config=config)
        try:
            result = task.run([butler.getDeferred(ref) for ref in refs], names=[_describe(r) for r in refs],
                              provenance=provenance)
        except (ValueError, RuntimeError) as exc:
            raise CliError(one_line(exc)) from None
    except CliError as exc:
        print(f"rb-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rb-train: interrupted; {_interrupted(config)}", file=sys.stderr)
        return 130
    if not writes:
        return 0
    return _write_model(result.model, butler, args, package, config.checkpointDir, derived, log)


def _interrupted(config: TrainRealBogusConfig) -> str:
    """What an interrupted rb-train leaves, and how to go on."""
    directory = config.checkpointDir
    if directory and os.path.exists(os.path.join(directory, CHECKPOINT_NAME)):
        return (f"the checkpoint of the last finished epoch is in {directory}: run the same command again to "
                "resume from it.")
    if directory:
        return "no epoch had finished, so there is no checkpoint yet; the same command starts again."
    return "nothing was kept (no checkpoints); the same command starts again."


def _check_package_path(path: str, overwrite: bool) -> str:
    """Check ``--package`` before training; return the path to write."""
    return check_output(path, what="a model package", is_own=is_model_package, overwrite=overwrite,
                        option="--package")


def default_checkpoint_dir(repo: str, refs: list[DatasetRef], config: TrainRealBogusConfig, world_size: int,
                           tract: int) -> str:
    """Return the checkpoint directory rb-train uses when
    ``checkpointDir`` is not set.

    It is ``$XDG_CACHE_HOME/meas_realbogus/rb-train/tract<T>-<key>``
    (``~/.cache`` without ``XDG_CACHE_HOME``), where ``key`` is a hash of
    the repository, the exact ``rb_triplets`` datasets trained on and the
    settings that change the result (`TrainingConfig.fingerprint`): the
    same command finds its checkpoint again, wherever it writes the model,
    and a run on other data or settings never resumes from it.

    Parameters
    ----------
    repo : `str`
        Repository, as given.
    refs : `list` [`lsst.daf.butler.DatasetRef`]
        The ``rb_triplets`` trained on.
    config : `TrainRealBogusConfig`
        The training settings.
    world_size : `int`
        Processes of the run.
    tract : `int`
        The tract (in the name, for people looking at the directory).

    Returns
    -------
    directory : `str`
    """
    where = repo if "://" in repo else os.path.abspath(repo)
    identity = {"repo": where, "datasets": sorted(str(ref.id) for ref in refs),
                "settings": config.fingerprint(world_size)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "meas_realbogus", "rb-train", f"tract{tract}-{key}")


def _set_up_checkpoints(config: TrainRealBogusConfig, args: argparse.Namespace, refs: list[DatasetRef],
                        world_size: int, writes: bool, log: logging.Logger) -> bool:
    """Choose the checkpoint directory (the default one unless
    ``checkpointDir`` is set or ``--no-checkpoint`` is given), say which,
    and check, before training, that it can be written.

    Returns
    -------
    derived : `bool`
        Whether the directory is rb-train's default one (removed once the
        model is written).
    """
    if args.no_checkpoint:
        log.info("No checkpoints (--no-checkpoint): an interrupted run starts again from the beginning.")
        return False
    derived = not config.checkpointDir
    if derived:
        config.checkpointDir = default_checkpoint_dir(args.repo, refs, config, world_size, args.tract)
    directory = config.checkpointDir
    if writes:
        try:
            os.makedirs(directory, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=directory, suffix=".probe")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise CliError(f"cannot write checkpoints to {directory}: {exc.strerror or exc}; choose another "
                           "directory with -c checkpointDir=DIR, or pass --no-checkpoint.") from None
    resumable = config.resume and os.path.exists(os.path.join(directory, CHECKPOINT_NAME))
    log.info("Checkpoints in %s (%s).", directory,
             "resuming from the one there" if resumable else
             "after every epoch; run the same command again to resume" + (
                 ", removed once the model is written" if derived else ""))
    return derived


def _write_model(model: ModelPackage, butler: Butler, args: argparse.Namespace, package: str | None,
                 checkpoint_dir: str, derived: bool, log: logging.Logger) -> int:
    """Store the trained model: in the Butler first (the safe place), then
    in the ``--package`` file, each tried whatever became of the other;
    remove rb-train's default checkpoint directory once the model is
    safely somewhere; keep it if nothing holds the model.

    Returns
    -------
    status : `int`
        0 if every write asked for succeeded, 1 otherwise (after one line
        saying what failed and where the model is).
    """
    failures, places = [], []
    if args.output:
        try:
            put_model(butler, model, args.output)
        except Exception as exc:  # whatever it is, the model must still reach --package
            log.debug("Butler put of rb_model failed.", exc_info=True)
            reason = str(exc) if isinstance(exc, ModelPackageError) else one_line(exc)
            failures.append(f"cannot store it in RUN collection {args.output!r}: {reason.rstrip('.')}")
        else:
            log.info("Stored rb_model %s in RUN collection %s.", model.version, args.output)
            places.append(f"RUN collection {args.output!r} of {args.repo} "
                          f"(butler.get('rb_model', collections={args.output!r}) gives the package)")
    if package:
        try:
            write_bytes_atomically(package, model.to_bytes())
        except Exception as exc:  # a full disk, a directory removed since the check...
            log.debug("Writing --package failed.", exc_info=True)
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else one_line(exc)
            failures.append(f"cannot write --package {args.package}: {reason}")
        else:
            log.info("Wrote %s.", args.package)
            places.append(args.package)
    if not failures or (places and derived):
        # The model is safe somewhere: rb-train's own checkpoint has done its job.
        if derived:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if not failures:
            return 0
    if places:
        tail = f"; it is stored in {' and in '.join(places)}"
    elif checkpoint_dir:
        tail = (f"; nothing else holds it, but the checkpoint in {checkpoint_dir} is kept: run the same "
                "command again with outputs that can be written to get it without training again")
    else:
        tail = "; nothing holds it (no checkpoint: --no-checkpoint)"
    print(f"rb-train: error: trained rb_model {model.version} but {'; '.join(failures)}{tail}.",
          file=sys.stderr)
    return 1


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
