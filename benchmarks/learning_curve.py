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

"""The learning curve: test-world figures against training-set size.

Makes (or reuses) two repositories:

* the fixed test world, ``--test-repo``: ``rb-simulate --preset test``
  (tract 4024 at the natural class mix, >= 400 reals at SNR > 6) and its
  ``rb_triplets`` (``pipelines/BuildTriplets.yaml``);
* the training world, ``--train-repo``: ``--preset train`` (tract 3080 with
  injected sources) with ``--train-visits`` visits, and its triplets.

For each training-set size (``--sizes``, in labelled triplets) it trains on
the first detector-visits of the training world (in visit, detector order)
holding that many, with ``TrainRealBogusTask`` (``calibration=natural``: a
temperature and prior shift fitted on the natural-mix calibration split),
scores every labelled test triplet with the model package as
``computeReliability`` does (`lsst.meas.realbogus.scoring.score_triplets`
with the package's calibration, on cutouts cut by the same code), and
evaluates at the test world's natural mix with bootstrap intervals.  The
test world is never used to choose anything.

Output
------
One ``learning_curve`` JSON line per (architecture, size): value = purity at
completeness 0.90 for ``|snr| > 6``; ``trainingTriplets`` (asked and used),
``trainSeconds`` and, under ``cuts`` (``all``, ``snr>5``, ``snr>6``), the
figures of ``benchmarks/quality.py`` plus ``intervals`` (95 % bootstrap
intervals of purity at completeness 0.90 and completeness at purity 0.95,
and the fraction of resamples meeting OSS-REQ-0353).  With ``--package-dir``
the model package of each line is written there as
``<architecture>-<size>.zip``.

Run it with the package's environment (hours on two cores for 64k)::

    .venv/bin/python benchmarks/learning_curve.py --sizes 1000 4000 16000 64000 -j 2
    .venv/bin/python benchmarks/learning_curve.py --sizes 1000 --train-visits 4 --test-visits 10
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _benchutil import (
    JsonLineWriter,
    build_triplets_in_processes,
    load_average,
    package_versions,
    use_checkout,
)

_LOG = logging.getLogger("learning_curve")
TRIPLETS = "curve/triplets"


def ensure_world(root: str, preset: str, visits: int | None, jobs: int) -> list[str]:
    """Simulate a preset and cut its triplets unless ``root`` holds them;
    return the triplet collections.
    """
    from lsst.daf.butler import Butler
    from lsst.meas.realbogus.simulation import Simulator, make_config

    if not Path(root, "butler.yaml").exists():
        config = make_config(preset)
        if visits is not None:
            config.survey.visitsPerTract = visits
        _LOG.info("Simulating --preset %s (%d visits per tract) into %s.", preset,
                  config.survey.visitsPerTract, root)
        summary = Simulator(config).run(root, jobs=jobs, progress=False)
        _LOG.info("%s", summary.format())
    butler = Butler.from_config(root)
    existing = sorted(c for c in butler.collections.query(f"{TRIPLETS}/*"))
    if existing:
        return existing
    _LOG.info("Cutting the triplets of %s in %d processes.", root, jobs)
    return build_triplets_in_processes(root, ["DC2/sim"], TRIPLETS, jobs)


def triplet_refs(root: str, collections: Sequence[str]) -> list:
    """The world's rb_triplets, in (visit, detector) order."""
    from lsst.daf.butler import Butler

    refs = Butler.from_config(root).query_datasets("rb_triplets", collections=list(collections),
                                                   find_first=True, explain=False)
    return sorted(refs, key=lambda r: (r.dataId["visit"], r.dataId["detector"]))


def first_datasets(root: str, refs: Sequence, size: int) -> tuple[list, int]:
    """The first datasets holding ``size`` labelled triplets, and how many
    they hold.
    """
    from lsst.daf.butler import Butler

    butler = Butler.from_config(root)
    chosen, total = [], 0
    for ref in refs:
        if total >= size:
            break
        labels = np.asarray(butler.get(ref, parameters={"columns": ["label"]})["label"])
        chosen.append(ref)
        total += int((labels >= 0).sum())
    return chosen, total


def train(name: str, root: str, refs: Sequence, args: argparse.Namespace) -> tuple[Any, float]:
    """Train ``name`` on the datasets; return (package, wall seconds)."""
    from lsst.daf.butler import Butler
    from lsst.meas.realbogus.training import TrainRealBogusConfig, TrainRealBogusTask

    butler = Butler.from_config(root)
    config = TrainRealBogusConfig()
    config.model.name = name
    config.epochs = args.epochs
    config.device = args.device
    config.numThreads = args.threads
    config.validationFraction = args.validation_fraction
    config.calibration = args.calibration
    config.seed = args.seed
    config.progressBar = False
    provenance = {"inputCollections": sorted({r.run for r in refs}), "datasets": len(refs), "skymap": "DC2",
                  "tract": 3080}
    start = time.perf_counter()
    package = TrainRealBogusTask(config=config).run(
        [butler.getDeferred(r) for r in refs],
        names=[f"visit={r.dataId['visit']} detector={r.dataId['detector']}" for r in refs],
        provenance=provenance,
    ).model
    return package, time.perf_counter() - start


def score_and_evaluate(package: Any, cutouts: np.ndarray, joined: Any, device: str,
                       resamples: int) -> dict[str, Any]:
    """Score the test triplets as computeReliability does and evaluate at
    the natural mix, with bootstrap intervals.
    """
    from lsst.meas.realbogus.evaluation import evaluate
    from lsst.meas.realbogus.models import select_device
    from lsst.meas.realbogus.scoring import score_triplets

    torch_device = select_device(device)
    joined = joined.copy(copy_data=False)
    joined["reliability"] = score_triplets(package.build_model(torch_device), cutouts, device=torch_device,
                                           temperature=package.temperature, intercept=package.intercept)
    threshold = package.threshold if package.threshold is not None else 0.5
    result = evaluate(joined, threshold=threshold, bootstrap_resamples=resamples)
    result["errorsAtCompleteness090"] = errors_at_completeness(joined)
    return result


def errors_at_completeness(joined: Any, completeness: float = 0.90) -> dict[str, Any]:
    """Which truth classes hold the false positives and negatives at the
    threshold of ``completeness`` 0.90, per SNR cut (the diagnosis of a
    curve that flattens below the requirement).
    """
    from lsst.meas.realbogus.evaluation import purity_at_completeness

    labels = np.asarray(joined["label"]) == 1
    scores = np.asarray(joined["reliability"], dtype=np.float64)
    snr = np.abs(np.asarray(joined["snr"], dtype=np.float64))
    classes = np.asarray(joined["truthClass"]).astype(str)
    out = {}
    for name, keep in (("all", np.ones(len(labels), bool)), ("snr>5", snr > 5), ("snr>6", snr > 6),
                       ("5<snr<=6", (snr > 5) & (snr <= 6))):
        if not 0 < labels[keep].sum() < keep.sum():
            continue
        _, threshold = purity_at_completeness(labels[keep], scores[keep], completeness)
        kept = keep & (scores >= threshold)
        fp = kept & ~labels
        fn = keep & labels & ~kept
        out[name] = {"threshold": float(threshold),
                     "falsePositives": dict(sorted(collections.Counter(classes[fp]).items())),
                     "falseNegatives": dict(sorted(collections.Counter(classes[fn]).items()))}
    return out


def _cuts(result: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The per-cut figures of one line, in ``benchmarks/quality.py``'s form."""
    cuts = {}
    for cut, entry in result["cuts"].items():
        summary = entry["unweighted"] or {}
        cuts[cut] = {"n": entry["n"], "nReal": entry["nReal"], **{k: summary.get(k) for k in keys},
                     "intervals": entry.get("intervals")}
    return cuts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description="Test-world figures against training-set size; JSON lines.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000, 64000],
                        help="Training-set sizes, labelled triplets (default 1000 4000 16000 64000).")
    parser.add_argument("--architectures", nargs="+", default=["rbcnn"], help="Architectures (default rbcnn).")
    parser.add_argument("--test-repo", default="benchmarks/results/test_world/repo",
                        help="The fixed test world (made with --preset test if absent).")
    parser.add_argument("--train-repo", default="benchmarks/results/train_world/repo",
                        help="The training world (made with --preset train if absent).")
    parser.add_argument("--test-visits", type=int, help="Visits of the test world (default: the preset's).")
    parser.add_argument("--train-visits", type=int, help="Visits of the training world (default: the preset's).")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="Processes to simulate and cut with.")
    parser.add_argument("--epochs", type=int, default=30, help="Training epochs (default 30).")
    parser.add_argument("--device", default="cpu", help="Training and scoring device (default cpu).")
    parser.add_argument("--threads", type=int, default=0, help="Torch CPU threads (default: torch's).")
    parser.add_argument("--validation-fraction", type=float, default=0.05,
                        help="Validation fraction of the injected triplets (default 0.05, DMTN-272).")
    parser.add_argument("--calibration", default="natural", help="TrainingConfig.calibration (default natural).")
    parser.add_argument("--seed", type=int, default=1, help="Training seed (default 1).")
    parser.add_argument("--resamples", type=int, default=1000, help="Bootstrap resamples (default 1000).")
    parser.add_argument("--package-dir", help="Write each model package here.")
    parser.add_argument("--evaluate-package", metavar="PACKAGE",
                        help="Train nothing: score the test world with this model package (e.g. the committed "
                        "models/*.zip) and print its line, to check the README's figures without retraining.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress to stderr.")
    args = parser.parse_args(argv)
    use_checkout()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("learning_curve", "lsst.trainRealBogus"):
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.WARNING)

    from quality import CUT_KEYS, read_test, triplets_per_second

    from lsst.daf.butler import Butler

    test_root, train_root = os.path.abspath(args.test_repo), os.path.abspath(args.train_repo)
    test_refs = triplet_refs(test_root, ensure_world(test_root, "test", args.test_visits, args.jobs))
    writer = JsonLineWriter("learning_curve", package_versions(["torch", "lsst-pipe-base"]))
    if args.evaluate_package:
        from lsst.meas.realbogus.models import ModelPackage

        package = ModelPackage.read(args.evaluate_package)
        cutouts, joined = read_test(Butler.from_config(test_root), test_refs, package.metadata.cutout.size)
        result = score_and_evaluate(package, cutouts, joined, args.device, args.resamples)
        training = package.metadata.training
        cuts = _cuts(result, CUT_KEYS)
        writer.emit("learning_curve", cuts.get("snr>6", {}).get("purity_at_completeness_0.90"),
                    "purity at completeness 0.90 (|snr|>6)", architecture=package.architecture,
                    package=os.path.basename(args.evaluate_package), modelVersion=package.version,
                    trainingTriplets=sum(split.get("real", 0) + split.get("bogus", 0)
                                         for split in (training.get("triplets") or {}).values()),
                    trainTriplets=training.get("triplets"), trainSeconds=training.get("seconds"),
                    calibration=package.metadata.calibration, threshold=package.threshold,
                    testDatasets=len(test_refs), n=len(joined), nReal=int(np.sum(joined["label"] == 1)),
                    cuts=cuts, errorsAtCompleteness090=result["errorsAtCompleteness090"])
        return 0
    train_refs = triplet_refs(train_root, ensure_world(train_root, "train", args.train_visits, args.jobs))
    cutouts, joined = read_test(Butler.from_config(test_root), test_refs, 51)
    for name in args.architectures:
        for size in args.sizes:
            refs, used = first_datasets(train_root, train_refs, size)
            if used < size:
                _LOG.warning("The training world holds %d labelled triplets, fewer than %d.", used, size)
            load = load_average()
            package, seconds = train(name, train_root, refs, args)
            result = score_and_evaluate(package, cutouts, joined, args.device, args.resamples)
            cuts = _cuts(result, CUT_KEYS)
            training = package.metadata.training
            if args.package_dir:
                os.makedirs(args.package_dir, exist_ok=True)
                package.write(os.path.join(args.package_dir, f"{name}-{size}.zip"))
            writer.emit(
                "learning_curve", cuts.get("snr>6", {}).get("purity_at_completeness_0.90"),
                "purity at completeness 0.90 (|snr|>6)",
                architecture=name, trainingTripletsAsked=size, trainingTriplets=used,
                trainDatasets=len(refs), trainTriplets=training.get("triplets"), epochs=args.epochs,
                epochsRun=training.get("epochsRun"), bestEpoch=training.get("bestEpoch"),
                device=args.device, threads=training.get("threads"), trainSeconds=seconds, loadBefore=load,
                trainTripletsPerSecond=triplets_per_second(training.get("history", [])),
                modelVersion=package.version, calibration=package.metadata.calibration,
                threshold=package.threshold, thresholdRule=package.metadata.thresholdRule,
                testDatasets=len(test_refs), n=len(joined), nReal=int(np.sum(joined["label"] == 1)), cuts=cuts,
                perClassKept={k: [v["kept"], v["n"]] for k, v in result["cuts"]["all"]["perClass"].items()},
                errorsAtCompleteness090=result["errorsAtCompleteness090"],
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
