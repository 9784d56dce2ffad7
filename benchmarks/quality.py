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

"""Train each architecture on tract 3080 and test it on held-out tract 4024.

What it does
------------
1. Opens the Butler repository ``--repo``; with ``--simulate`` and no
   repository there yet, first simulates one with
   ``Simulator(make_config(--preset)).run(repo, jobs=-j)``.
2. For each architecture, finds ``rb_triplets`` of its design cutout size
   (51 for rbcnn, rbtn and resnet50, 63 for vgg6) covering tracts 3080 and
   4024: in the ``--triplets`` collections (default ``demo/triplets``), then
   in ``quality/triplets<size>``.  If neither has them, it builds them into
   ``quality/triplets<size>`` by running ``pipelines/BuildTriplets.yaml``
   in-process (`~lsst.pipe.base.simple_pipeline_executor.SimplePipelineExecutor`,
   the executor code of ``pipetask``) on input ``DC2/sim`` with
   ``buildTriplets:cutout.size=<size>`` and the data query
   ``instrument='LSSTCam-imSim' AND skymap='DC2' AND tract IN (3080, 4024)``.
   A later run reuses that collection.
3. Trains with ``TrainRealBogusTask(config=...).run(handles, names=...)``
   (the ``trainRealBogus`` PipelineTask's and ``rb-train``'s code path) on
   the deferred handles of tract 3080's triplets, timed by wall clock (data
   scan, epochs, per-epoch validation, temperature fit and packaging).  The
   package's threshold is chosen on the validation split
   (``--validation-fraction`` of tract 3080, by id hash) as the highest one
   that keeps 90 % of the validation reals.
4. Scores every labelled triplet of tract 4024 with
   `lsst.meas.realbogus.scoring.score_triplets` (batch 256, fp32, the
   package's calibration temperature): the code and settings
   ``computeReliability`` scores with by default, on cutouts cut by the same
   code, so these are the ``reliability`` values ``computeReliability``
   would write (``tests/test_computeReliability.py``,
   ``test_scores_equal_triplet_scores``, checks this to 1e-6).
5. Evaluates with `lsst.meas.realbogus.evaluation.evaluate` (the code of
   ``evaluateRealBogus`` and ``rb-report``) at the natural class mix of the
   test tract, for all sources, ``|snr| > 5`` and ``|snr| > 6``.

A detector-visit that overlaps both tracts would put the same sources in
training and test; the script stops if there is one.

Output
------
One JSON line per architecture on stdout (``"figure": "rb_quality"``, value:
purity at completeness 0.90 for ``|snr| > 6``, OSS-REQ-0353's subset) with
``architecture``, ``parameters``, ``cutoutSize``, ``device`` (and the GPU's
name), ``epochs`` (asked; ``epochsRun``, ``bestEpoch``), ``trainSeconds``,
``trainTripletsPerSecond`` (training triplets over the summed epoch times of
the package's history: optimizer steps only, no validation), the training
and validation counts, ``threshold`` and ``thresholdRule`` (from the
validation split), ``temperature``, and under ``cuts`` (``all``,
``snr>5``, ``snr>6``): ``n``, ``nReal``, ``roc_auc``, ``average_precision``,
``purity_at_completeness_0.90``, ``completeness_at_purity_0.95``,
``meets_requirement`` (some threshold reaches completeness >= 0.90 and
purity >= 0.95 on the test tract), ``ece``, and ``purity``,
``completeness`` and ``threshold_meets_requirement`` at the package's own,
validation-chosen threshold.  Every line has ``machine`` and ``versions``.

resnet50 is skipped on the CPU (a line with ``skipped`` says so): about 7
GFLOP per 51x51 triplet forward pass and three times that per training
triplet, so roughly an hour for 30 epochs of the demo preset on two cores
(estimated from rbtn's measured throughput there), and the scoring of the
test tract on top.  ``--resnet50-on-cpu`` runs it anyway.

Run it with the package's environment::

    .venv/bin/python benchmarks/quality.py --repo demo/repo --architectures rbcnn vgg6 --epochs 30 --threads 2
    .venv/bin/python benchmarks/quality.py --repo /tmp/q/repo --simulate --preset demo -j 16 --device cuda
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _benchutil import REPO_ROOT, JsonLineWriter, package_versions, use_checkout

_LOG = logging.getLogger("quality")

INSTRUMENT = "LSSTCam-imSim"
SKYMAP = "DC2"
TRAIN_TRACT = 3080
TEST_TRACT = 4024
SIM_COLLECTION = "DC2/sim"
BUILD_WHERE = (f"instrument='{INSTRUMENT}' AND skymap='{SKYMAP}' AND tract IN ({TRAIN_TRACT}, {TEST_TRACT})")
PIPELINE = REPO_ROOT / "pipelines" / "BuildTriplets.yaml"
ARCHITECTURES = ("rbcnn", "vgg6", "rbtn", "resnet50")
CPU_SKIP = {"resnet50": "about 7 GFLOP per 51x51 triplet forward pass, ~21 per triplet in training: roughly an hour "
            "for 30 demo epochs on two CPU cores; run it on a GPU (--device cuda) or pass --resnet50-on-cpu"}
TEST_COLUMNS = ["diaSourceId", "cutout", "label", "snr", "truthClass"]
CUT_KEYS = ("roc_auc", "average_precision", "purity_at_completeness_0.90", "completeness_at_purity_0.95",
            "meets_requirement", "ece", "purity", "completeness", "threshold_meets_requirement")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train each architecture on the rb_triplets of tract 3080, score the held-out tract "
        "4024 and print one JSON line of figures per architecture.",
    )
    parser.add_argument("--repo", required=True, help="Butler repository (created with --simulate).")
    parser.add_argument("--simulate", action="store_true",
                        help="Simulate --preset into --repo first if it holds no repository yet.")
    parser.add_argument("--preset", default="demo", help="Simulator preset for --simulate (default demo).")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="Simulator worker processes (default 2).")
    parser.add_argument("--triplets", nargs="*", default=["demo/triplets"],
                        help="Collections searched for rb_triplets before quality/triplets<size> "
                        "(default demo/triplets).")
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES,
                        help="Architectures to train (default all four).")
    parser.add_argument("--epochs", type=int, default=30, help="Training epochs (default 30).")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="Training and scoring device (default auto).")
    parser.add_argument("--validation-fraction", type=float, default=0.2,
                        help="Fraction of tract 3080 held out for validation, early-best weights, "
                        "calibration and the threshold (default 0.2: the demo preset has ~80 reals).")
    parser.add_argument("--threads", type=int, default=0, help="Torch CPU threads (default 0: torch's).")
    parser.add_argument("--seed", type=int, default=1, help="Training seed (default 1).")
    parser.add_argument("--resnet50-on-cpu", action="store_true", help="Do not skip resnet50 on the CPU.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Log the pipeline executor's and every task's lines too.")
    return parser


# --- Data ------------------------------------------------------------------


def simulate(root: str, preset: str, jobs: int) -> None:
    """Simulate a preset into ``root``."""
    from lsst.meas.realbogus.simulation import Simulator, make_config

    start = time.perf_counter()
    summary = Simulator(make_config(preset)).run(root, jobs=jobs, progress=False)
    _LOG.info("Simulated preset %s into %s with -j %d: %d detector-visits, %d sources, %.0f s.", preset, root,
              jobs, summary.detector_visits, summary.sources, time.perf_counter() - start)


def tract_refs(butler, collections: Sequence[str], tract: int) -> list:
    """``rb_triplets`` refs of a tract, deduplicated and sorted by (visit,
    detector); empty if the collections or the dataset type do not exist.
    """
    try:
        refs = butler.query_datasets("rb_triplets", collections=list(collections),
                                     where=f"skymap='{SKYMAP}' AND tract={tract}", find_first=True, explain=False)
    except Exception as exc:  # Missing collection or dataset type.
        _LOG.debug("No rb_triplets of tract %d in %s: %s", tract, collections, exc)
        return []
    return sorted(set(refs), key=lambda r: (r.dataId["visit"], r.dataId["detector"]))


def cutout_size(butler, ref) -> int | None:
    """Cutout size recorded in an ``rb_triplets`` dataset's metadata."""
    table = butler.get(ref, parameters={"columns": ["diaSourceId"], "strip_astropy_meta_yaml": False})
    settings = table.meta.get("cutout") or {}
    return settings.get("size")


def find_triplets(butler, collections: Sequence[str], size: int) -> tuple[list, list] | None:
    """Train and test refs in ``collections`` if both tracts have triplets
    of ``size`` there (first dataset of each checked), else `None`.
    """
    train, test = tract_refs(butler, collections, TRAIN_TRACT), tract_refs(butler, collections, TEST_TRACT)
    if not train or not test:
        return None
    if cutout_size(butler, train[0]) != size or cutout_size(butler, test[0]) != size:
        return None
    return train, test


def build_triplets(root: str, size: int, output: str) -> None:
    """Run BuildTriplets.yaml in-process for both tracts at a cutout size."""
    from lsst.pipe.base import Pipeline
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    pipeline = Pipeline.from_uri(str(PIPELINE))
    pipeline.addConfigOverride("buildTriplets", "cutout.size", size)
    butler = SimplePipelineExecutor.prep_butler(root, inputs=[SIM_COLLECTION], output=output)
    executor = SimplePipelineExecutor.from_pipeline(pipeline, where=BUILD_WHERE, butler=butler)
    start = time.perf_counter()
    quanta = executor.run(register_dataset_types=True)
    _LOG.info("Built %dx%d triplets into %s: %d quanta, %.0f s.", size, size, output, len(quanta),
              time.perf_counter() - start)


def triplets_for_size(root: str, size: int, collections: Sequence[str]) -> tuple[Any, str, list, list]:
    """Find, or build, the triplets of a cutout size.

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        Butler of ``root``.
    collection : `str`
        Collection the refs came from.
    train, test : `list` [`lsst.daf.butler.DatasetRef`]
        Refs of tract 3080 and 4024, sorted by (visit, detector).
    """
    from lsst.daf.butler import Butler

    own = f"quality/triplets{size}"
    butler = Butler.from_config(root)
    for candidate in [*collections, own]:
        found = find_triplets(butler, [candidate], size)
        if found is not None:
            _LOG.info("Using %dx%d rb_triplets of %s.", size, size, candidate)
            return butler, candidate, *found
    _LOG.info("No %dx%d rb_triplets of both tracts in %s; building them into %s.", size, size,
              [*collections, own], own)
    build_triplets(root, size, own)
    butler = Butler.from_config(root)
    found = find_triplets(butler, [own], size)
    if found is None:
        raise RuntimeError(f"building {size}x{size} triplets into {own} left no triplets of both tracts")
    return butler, own, *found


def describe(ref) -> str:
    """Name of a dataset for messages."""
    return f"visit={ref.dataId['visit']} detector={ref.dataId['detector']}"


def read_test(butler, refs: Sequence, size: int):
    """Read the labelled triplets of the test tract.

    Returns
    -------
    cutouts : `numpy.ndarray`, (N, 3, S, S)
    table : `astropy.table.Table`
        ``label``, ``snr``, ``truthClass`` of the same rows.
    """
    from astropy.table import Table

    cutouts, labels, snr, classes = [], [], [], []
    for ref in refs:
        table = butler.get(ref, parameters={"columns": TEST_COLUMNS, "strip_astropy_meta_yaml": False})
        recorded = (table.meta.get("cutout") or {}).get("size")
        if recorded != size:
            raise RuntimeError(f"rb_triplets {describe(ref)} has cutout size {recorded}, not {size}")
        keep = np.asarray(table["label"], dtype=np.int64) >= 0  # -1: no truth
        if not keep.any():
            continue
        cutouts.append(np.asarray(table["cutout"], dtype=np.float32)[keep].reshape(-1, 3, size, size))
        labels.append(np.asarray(table["label"], dtype=np.int64)[keep])
        snr.append(np.asarray(table["snr"], dtype=np.float64)[keep])
        classes.append(np.asarray(table["truthClass"]).astype(str)[keep])
    joined = Table({"label": np.concatenate(labels), "snr": np.concatenate(snr),
                    "truthClass": np.concatenate(classes)})
    return np.concatenate(cutouts), joined


# --- Train and evaluate ----------------------------------------------------


def train_architecture(name: str, handles: Sequence, names: Sequence[str], args: argparse.Namespace,
                       provenance: dict[str, Any]):
    """Train one architecture; return (package, wall-clock seconds)."""
    from lsst.meas.realbogus.training import TrainRealBogusConfig, TrainRealBogusTask

    config = TrainRealBogusConfig()
    config.model.name = name
    config.epochs = args.epochs
    config.device = args.device
    config.numThreads = args.threads
    config.validationFraction = args.validation_fraction
    config.seed = args.seed
    config.progressBar = False
    start = time.perf_counter()
    package = TrainRealBogusTask(config=config).run(handles, names=names, provenance=provenance).model
    return package, time.perf_counter() - start


def triplets_per_second(history: Sequence[dict[str, Any]]) -> float | None:
    """Training triplets over the summed epoch times of a training history."""
    seen = sum((h.get("samplesPerSecond") or 0.0) * h["seconds"] for h in history)
    seconds = sum(h["seconds"] for h in history)
    return seen / seconds if seconds > 0 else None


def evaluate_architecture(name: str, args: argparse.Namespace, writer: JsonLineWriter,
                          root: str, test_cache: dict[int, Any]) -> None:
    """Train, score and evaluate one architecture; emit its line."""
    import torch

    from lsst.meas.realbogus.evaluation import evaluate
    from lsst.meas.realbogus.models import get_architecture, select_device
    from lsst.meas.realbogus.scoring import score_triplets

    size = get_architecture(name).defaultCutoutSize
    device = select_device(args.device)
    common: dict[str, Any] = {"architecture": name, "cutoutSize": size, "device": str(device),
                              "epochs": args.epochs, "trainTract": TRAIN_TRACT, "testTract": TEST_TRACT}
    if device.type == "cuda":
        common["gpu"] = torch.cuda.get_device_name(device)
    if device.type == "cpu" and name in CPU_SKIP and not args.resnet50_on_cpu:
        _LOG.warning("Skipping %s on the CPU: %s.", name, CPU_SKIP[name])
        writer.emit("rb_quality", None, "purity at completeness 0.90 (|snr|>6)", **common,
                    skipped=CPU_SKIP[name])
        return

    butler, collection, train_refs, test_refs = triplets_for_size(root, size, args.triplets)
    overlap = ({(r.dataId["visit"], r.dataId["detector"]) for r in train_refs}
               & {(r.dataId["visit"], r.dataId["detector"]) for r in test_refs})
    if overlap:
        raise RuntimeError(f"{len(overlap)} detector-visits overlap both tracts, e.g. {sorted(overlap)[:3]}; "
                           "training and test would share sources")
    provenance = {"inputCollections": sorted({r.run for r in train_refs}), "datasets": len(train_refs),
                  "skymap": SKYMAP, "tract": TRAIN_TRACT}
    _LOG.info("Training %s on %d datasets of tract %d (%s, %d epochs).", name, len(train_refs), TRAIN_TRACT,
              device, args.epochs)
    load_before = os.getloadavg()[0]
    package, seconds = train_architecture(name, [butler.getDeferred(r) for r in train_refs],
                                          [describe(r) for r in train_refs], args, provenance)
    training = package.metadata.training

    if size not in test_cache:
        test_cache[size] = read_test(butler, test_refs, size)
    cutouts, joined = test_cache[size]
    model = package.build_model(device)
    start = time.perf_counter()
    joined = joined.copy(copy_data=False)
    joined["reliability"] = score_triplets(model, cutouts, device=device, temperature=package.temperature, intercept=package.intercept)
    score_seconds = time.perf_counter() - start
    threshold = package.threshold if package.threshold is not None else 0.5
    result = evaluate(joined, threshold=threshold)

    cuts = {}
    for cut, entry in result["cuts"].items():
        summary = entry["unweighted"] or {}
        cuts[cut] = {"n": entry["n"], "nReal": entry["nReal"], **{k: summary.get(k) for k in CUT_KEYS}}
    headline = cuts.get("snr>6", {}).get("purity_at_completeness_0.90")
    validation = package.metadata.metrics.get("validation", {})
    writer.emit(
        "rb_quality", headline, "purity at completeness 0.90 (|snr|>6)",
        **common,
        parameters=sum(p.numel() for p in model.parameters()),
        modelVersion=package.version,
        tripletsCollection=collection,
        epochsRun=training.get("epochsRun"),
        bestEpoch=training.get("bestEpoch"),
        mixedPrecision=training.get("mixedPrecision"),
        threads=training.get("threads"),
        trainSeconds=seconds,
        loadBefore=load_before,
        trainTripletsPerSecond=triplets_per_second(training.get("history", [])),
        scoreSeconds=score_seconds,
        trainTriplets=training.get("triplets"),
        trainDatasets=len(train_refs),
        testDatasets=len(test_refs),
        validation={k: validation.get(k) for k in ("n", "n_real", "roc_auc", "average_precision")},
        threshold=threshold,
        thresholdRule=package.metadata.thresholdRule,
        temperature=package.temperature, intercept=package.intercept,
        n=len(joined),
        nReal=int(np.sum(joined["label"] == 1)),
        cuts=cuts,
        perClassKept={k: [v["kept"], v["n"]] for k, v in result["cuts"]["all"]["perClass"].items()},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("quality", "lsst.trainRealBogus"):
        logging.getLogger(name).setLevel(logging.INFO)
    root = os.path.abspath(args.repo)
    if not Path(root, "butler.yaml").exists():
        if not args.simulate:
            print(f"quality: error: no Butler repository at {root}; give --simulate to make one.", file=sys.stderr)
            return 2
        simulate(root, args.preset, args.jobs)
    writer = JsonLineWriter("quality", package_versions(["torch", "torchvision", "lsst-pipe-base"]))
    test_cache: dict[int, Any] = {}
    for name in args.architectures:
        evaluate_architecture(name, args, writer, root, test_cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
