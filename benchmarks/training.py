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

"""Training throughput per architecture, and the rate data loading feeds it.

Builds (once, in ``--repo``) a simulated repository of the ``ci`` preset
with its ``rb_triplets`` (``pipelines/BuildTriplets.yaml``), then measures:

- ``loader_throughput``: triplets/s that
  `lsst.meas.realbogus.training.TripletData` yields training batches at,
  reading every ``rb_triplets`` through the Butler (``uncached``: the first
  epoch, and every epoch of data larger than the cache; with 1, 2 and 4
  reader threads) and from its in-memory cache (``cached``), over ``--loader-datasets`` datasets of
  ``--loader-rows`` triplets tiled from the ci ones (ci detectors are
  small; a DC2 detector gives ~50-200 DIA sources);
- ``training_throughput``: samples/s of `lsst.meas.realbogus.training.train`
  per architecture on the CPU (``--threads``) and, when a GPU is visible,
  on it with bfloat16 autocast, taken from the package's own per-epoch
  history (epochs after the first, so the cache is warm). On a GPU the
  utilisation is sampled with ``nvidia-smi`` while training, and
  ``loader_over_training`` says how many times faster than training the
  loader is: above 1 it cannot be what limits the GPU.

Output: JSON lines. Run::

    .venv/bin/python benchmarks/training.py
    .venv/bin/python benchmarks/training.py --architectures rbcnn resnet50 --epochs 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from _benchutil import JsonLineWriter, load_average, package_versions, use_checkout

CPU_ARCHITECTURES = ("rbcnn", "vgg6", "rbtn")
GPU_ARCHITECTURES = ("rbcnn", "vgg6", "rbtn", "resnet50")


def triplet_repository(root: Path):
    """Return (butler, deferred handles, names) of the ci preset's triplets
    of both tracts, simulating and cutting them on first use.
    """
    from lsst.meas.realbogus.tests import BOTH_WHERE, make_ci_repository, triplet_handles

    if not (root / "butler.yaml").exists():
        make_ci_repository(str(root))
    return triplet_handles(str(root), where=BOTH_WHERE)


def loader_datasets(root: Path, handles, datasets: int, rows: int):
    """Return (handles, names) of ``datasets`` rb_triplets of ``rows`` rows
    each, tiled from the ci triplets (ci detectors are small; DC2 detectors
    give ~50-200 DIA sources each). Written once, each into its own RUN
    ``bench/loader-<rows>/<k>`` (they reuse the ci data IDs).
    """
    import numpy as np
    from astropy.table import vstack

    from lsst.daf.butler import Butler, MissingCollectionError

    butler = Butler.from_config(str(root), writeable=True)
    runs = [f"bench/loader-{rows}/{k}" for k in range(datasets)]
    data_ids = [handles[k % len(handles)].dataId for k in range(datasets)]
    pool = None
    refs = []
    for k, (run, data_id) in enumerate(zip(runs, data_ids)):
        try:
            ref = butler.find_dataset("rb_triplets", data_id, collections=[run])
        except MissingCollectionError:
            ref = None
        if ref is None:
            if pool is None:
                tables = [h.get(parameters={"strip_astropy_meta_yaml": False}) for h in handles]
                tables = [t for t in tables if len(t)]
                pool = vstack(tables)
                pool.meta = tables[0].meta
            table = pool[np.arange(k * rows, (k + 1) * rows) % len(pool)]
            table["diaSourceId"] = np.arange(rows, dtype=np.int64) + (k + 1) * 10**9
            table.meta = pool.meta
            butler.collections.register(run)
            ref = butler.put(table, "rb_triplets", data_id, run=run)
        refs.append(ref)
    return [butler.getDeferred(r) for r in refs], runs


def loader_rates(handles, names, batch_size: int, repeats: int, readers: Sequence[int]) -> dict[str, float]:
    """Triplets per second of one training epoch's batches, uncached with
    each number of reader threads, and cached (best of ``repeats``).
    """
    import numpy as np

    from lsst.meas.realbogus.training import TripletData

    def epoch(data):
        start = time.perf_counter()
        rows = sum(len(b) for b in data.batches(batch_size, np.random.default_rng(0), 4096))
        return rows / (time.perf_counter() - start)

    rates = {}
    for n in readers:
        uncached = TripletData(handles, names, validation_fraction=0.2, seed=1, cache_megabytes=0, readers=n)
        rates[f"uncached, {n} reader(s)"] = max(epoch(uncached) for _ in range(repeats))
    cached = TripletData(handles, names, validation_fraction=0.2, seed=1)
    epoch(cached)  # fills the cache
    rates["cached"] = max(epoch(cached) for _ in range(repeats))
    return rates


class GpuSampler:
    """Sample GPU utilisation (%) with nvidia-smi in a thread."""

    def __init__(self, period_ms: int = 200):
        self.samples: list[float] = []
        self._proc = None
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 f"-lms={period_ms}"], stdout=subprocess.PIPE, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()

    def _read(self):
        for line in self._proc.stdout:
            try:
                self.samples.append(float(line.split(",")[0]))
            except ValueError:
                pass

    def stop(self) -> float | None:
        """Stop; return the mean utilisation, or None without nvidia-smi."""
        if self._proc is None:
            return None
        self._proc.terminate()
        self._proc.wait()
        return statistics.mean(self.samples) if self.samples else None


def train_rate(handles, names, architecture: str, device: str, threads: int, epochs: int, batch_size: int,
               mixed_precision: bool) -> dict:
    """Train briefly; return samples/s of the warm epochs and more."""
    from lsst.meas.realbogus.training import TrainingConfig, TripletData, train

    config = TrainingConfig()
    config.model.name = architecture
    config.epochs = epochs
    config.batchSize = batch_size
    config.device = device
    config.numThreads = threads
    config.mixedPrecision = mixed_precision
    config.validationFraction = 0.2
    config.progressBar = False
    data = TripletData(handles, names, validation_fraction=0.2, seed=config.seed)
    sampler = GpuSampler() if device != "cpu" else None
    package = train(config, data)
    utilisation = sampler.stop() if sampler else None
    history = package.metadata.training["history"]
    warm = [h["samplesPerSecond"] for h in history[1:] if h.get("samplesPerSecond")] or \
        [history[0]["samplesPerSecond"]]
    return {"samples_per_s": statistics.median(warm), "first_epoch_samples_per_s": history[0]["samplesPerSecond"],
            "epochs": len(history), "gpu_utilisation_percent": utilisation}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="benchmarks/results/triplet-repo",
                        help="Repository with ci triplets (simulated if absent).")
    parser.add_argument("--architectures", nargs="+", help="Default: rbcnn vgg6 rbtn (+ resnet50 on a GPU).")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads.")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cpu-datasets", type=int, default=4, help="Loader datasets the CPU trains on.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--gpu-batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="Loader epochs timed; the best is kept.")
    parser.add_argument("--loader-datasets", type=int, default=16, help="rb_triplets datasets the loader reads.")
    parser.add_argument("--loader-rows", type=int, default=200, help="Triplets per loader dataset.")
    parser.add_argument("--readers", type=int, nargs="+", default=[1, 2, 4],
                        help="Reader threads (TrainingConfig.loaderThreads) to time the uncached loader with.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    import torch

    _, handles, _ = triplet_repository(Path(args.repo))
    writer = JsonLineWriter("training", package_versions(["torch"]))
    big_handles, big_names = loader_datasets(Path(args.repo), handles, args.loader_datasets, args.loader_rows)
    rates = loader_rates(big_handles, big_names, args.batch_size, args.repeats, args.readers)
    for mode, rate in rates.items():
        writer.emit("loader_throughput", rate, "triplets/s", mode=mode, datasets=args.loader_datasets,
                    rows_per_dataset=args.loader_rows, batch_size=args.batch_size, load_before=load_average())
    # The CPU trains on a few of the loader's datasets, a GPU on all of them.
    runs = [("cpu", args.threads, args.batch_size, False, args.architectures or CPU_ARCHITECTURES,
             args.cpu_datasets)]
    if torch.cuda.is_available():
        runs.append(("cuda", 0, args.gpu_batch_size, True, args.architectures or GPU_ARCHITECTURES,
                     args.loader_datasets))
    for device, threads, batch_size, mixed, architectures, n_datasets in runs:
        for arch in architectures:
            result = train_rate(big_handles[:n_datasets], big_names[:n_datasets], arch, device, threads,
                                args.epochs, batch_size, mixed)
            rate = result.pop("samples_per_s")
            writer.emit("training_throughput", rate, "samples/s", architecture=arch, device=device,
                        device_name=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                        threads=threads, batch_size=batch_size,
                        precision="bfloat16" if mixed else "float32", load_before=load_average(),
                        loader_over_training={m: r / rate for m, r in rates.items()}, **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
