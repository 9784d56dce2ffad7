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

"""Inference throughput per architecture, against the machine's peak.

For each architecture (at its default cutout size, random weights: the
speed does not depend on them), each CPU thread count and each batch size,
two loops are timed over the same random triplets:

- ``plain`` and ``plain_channels_last``: a bare PyTorch loop,
  ``model(x[i:i+b])`` on prepared tensors under ``torch.inference_mode``,
  in the default and the channels-last memory layout (the best a caller
  could do);
- ``task``: `lsst.meas.realbogus.scoring.score_triplets`, what
  computeReliability runs (NumPy in, calibrated scores out).

Each point runs for at least ``--min-seconds`` after a warm-up. Lines also
carry FLOPs per triplet (`lsst.meas.realbogus.cli.models.forward_flops`:
convolutions and matrix products) and the achieved fraction of two peaks:
``peak_theoretical`` (cores x clock x FLOP/cycle, the assumption written in
the line) and ``peak_sgemm`` (a large float32 matrix product measured here:
what this machine's BLAS reaches, the practical ceiling).

With a GPU (``torch.cuda.is_available()``) the same is measured on it in
float32 and bfloat16 autocast, against matrix-product peaks measured on it.

Output: JSON lines ``inference_throughput`` (triplets/s), ``inference_task_over_plain``
(task at computeReliability's default batch size over the plain loop at its
best batch size and layout) and ``machine_peak`` (GFLOP/s). Run::

    .venv/bin/python benchmarks/inference.py
    .venv/bin/python benchmarks/inference.py --architectures rbcnn vgg6 --threads 2 --batch-sizes 64 256
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from _benchutil import JsonLineWriter, load_average, package_versions, use_checkout

ARCHITECTURES = ("rbcnn", "vgg6", "rbtn", "resnet50")
BATCH_SIZES = (1, 16, 64, 256, 1024)


def run_for(step: Callable[[], int], min_seconds: float) -> float:
    """Call ``step`` (returning the triplets it did) until ``min_seconds``
    have passed, after one warm-up call; return triplets per second.
    """
    step()
    done = 0
    start = time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def cpu_peak_theoretical(threads: int, ghz: float | None = None) -> tuple[float | None, str]:
    """Cores x clock x FLOP/cycle, in GFLOP/s, and the assumption made."""
    mhz = None if ghz is None else ghz * 1000
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz") and mhz is None:
                    mhz = float(line.split(":")[1])
                elif line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        return None, "no /proc/cpuinfo"
    if mhz is None:
        return None, "clock unknown"
    # Two FMA pipes per core; 256-bit wide (AVX2, and AVX-512 on AMD Zen 4)
    # gives 32 float32 FLOP/cycle.
    per_cycle = 32 if " fma" in flags else 8
    assumption = (f"{threads} core(s) x {mhz / 1000:.2f} GHz (cpu MHz) x {per_cycle} fp32 FLOP/cycle "
                  "(2 FMA pipes x 256 bit)")
    return threads * mhz / 1000 * per_cycle, assumption


def matmul_peak(device, dtype, min_seconds: float) -> float:
    """Measured GFLOP/s of a large square matrix product."""
    import torch

    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def step():
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        return 1

    return run_for(step, min_seconds) * 2 * n**3 / 1e9


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts.")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--min-seconds", type=float, default=1.0, help="Time per point.")
    parser.add_argument("--max-call-seconds", type=float, default=4.0,
                        help="Skip a batch size whose one call would take longer than this, estimated from "
                        "the FLOPs at half the measured matrix-product peak (ResNet50 on a CPU).")
    parser.add_argument("--no-cpu", action="store_true", help="Only the GPU (if any).")
    parser.add_argument("--cpu-ghz", type=float,
                        help="Clock for the theoretical CPU peak (default: 'cpu MHz' of /proc/cpuinfo, the "
                        "nominal clock a VM shows; boost can exceed it, which the measured sgemm reveals).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    args = _parser().parse_args(argv)
    use_checkout()
    import numpy as np
    import torch

    from lsst.meas.realbogus.cli.models import forward_flops
    from lsst.meas.realbogus.models import ModelPackage, build_model, get_architecture, make_model_config
    from lsst.meas.realbogus.scoring import ComputeReliabilityConfig, load_model, score_triplets
    from lsst.meas.realbogus.triplets import CutoutConfig

    writer = JsonLineWriter("inference", package_versions(["torch"]))
    task_batch = ComputeReliabilityConfig().batchSize
    devices = [] if args.no_cpu else [("cpu", t) for t in args.threads]
    if torch.cuda.is_available():
        devices.append(("cuda", None))
    peaks: dict[tuple, dict] = {}
    for kind, threads in devices:
        device = torch.device(kind)
        if kind == "cpu":
            torch.set_num_threads(threads)
            theoretical, assumption = cpu_peak_theoretical(threads, args.cpu_ghz)
            peaks[(kind, threads)] = {"float32": (theoretical, matmul_peak(device, torch.float32, 2.0))}
            writer.emit("machine_peak", theoretical, "GFLOP/s", device="cpu", threads=threads,
                        kind="theoretical", assumption=assumption)
            writer.emit("machine_peak", peaks[(kind, threads)]["float32"][1], "GFLOP/s", device="cpu",
                        threads=threads, kind="sgemm 2048 float32")
        else:
            name = torch.cuda.get_device_name(0)
            peaks[(kind, threads)] = {}
            for precision, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
                measured = matmul_peak(device, dtype, 2.0)
                peaks[(kind, threads)][precision] = (None, measured)
                writer.emit("machine_peak", measured, "GFLOP/s", device=name, kind=f"matmul 8192 {precision}")
    for arch in args.architectures:
        size = get_architecture(arch).defaultCutoutSize
        torch.manual_seed(0)
        model = build_model(arch, size).eval()
        flops = forward_flops(model, size)
        # The task's network comes from a model package through the task's loader.
        cutout = CutoutConfig()
        cutout.size = size
        package = ModelPackage.from_model(model, architecture=arch, model_config=make_model_config(arch).toDict(),
                                          cutout_config=cutout)
        rng = np.random.default_rng(0)
        for kind, threads in devices:
            device = torch.device(kind)
            if kind == "cpu":
                torch.set_num_threads(threads)
                precisions = ("float32",)
            else:
                precisions = ("float32", "bfloat16")
            model.to(device)
            for precision in precisions:
                autocast = precision == "bfloat16"
                best_plain = (0.0, None, None)
                task_rate = None
                for batch in args.batch_sizes:
                    n = batch * max(1, 1024 // batch) if kind == "cuda" else batch * max(1, 16 // batch)
                    estimate = n * flops / (0.5 * peaks[(kind, threads)][precision][1] * 1e9)
                    if estimate > args.max_call_seconds:
                        writer.emit("inference_skipped", estimate, "s (estimated per call)", architecture=arch,
                                    device=kind, threads=threads, precision=precision, batch_size=batch)
                        continue
                    cutouts = rng.standard_normal((n, 3, size, size), dtype=np.float32)
                    x = torch.from_numpy(cutouts).to(device)
                    # The plain loop in both memory layouts; the best of them is
                    # what the task is compared with.
                    layouts = [("plain", x), ("plain_channels_last", x.contiguous(memory_format=torch.channels_last))]
                    common = {"architecture": arch, "cutout_size": size, "device": kind,
                              "threads": threads, "precision": precision, "batch_size": batch,
                              "flops_per_triplet": flops, "load_before": load_average()}
                    for method, tensor in layouts:
                        if method == "plain_channels_last":
                            model.to(memory_format=torch.channels_last)

                        def plain(tensor=tensor):
                            with torch.inference_mode(), torch.autocast(kind, torch.bfloat16, enabled=autocast):
                                for s in range(0, n, batch):
                                    model(tensor[s : s + batch])
                            if kind == "cuda":
                                torch.cuda.synchronize()
                            return n

                        rate = run_for(plain, args.min_seconds)
                        model.to(memory_format=torch.contiguous_format)
                        _emit_rate(writer, rate, method, flops, peaks[(kind, threads)][precision], common)
                        if rate > best_plain[0]:
                            best_plain = (rate, batch, method)

                    task_model = load_model(package, device).model

                    def task():
                        score_triplets(task_model, cutouts, device=device, batch_size=batch,
                                       mixed_precision=autocast, temperature=1.3)
                        return n

                    rate = run_for(task, args.min_seconds)
                    _emit_rate(writer, rate, "task", flops, peaks[(kind, threads)][precision], common)
                    if batch == task_batch:
                        task_rate = rate
                if task_rate is not None:
                    writer.emit("inference_task_over_plain", task_rate / best_plain[0],
                                "ratio (task at its default batch over plain at its best)", architecture=arch,
                                device=kind, threads=threads, precision=precision, task_batch_size=task_batch,
                                plain_best_batch_size=best_plain[1], plain_best_layout=best_plain[2],
                                task_rate=task_rate,
                                plain_best_rate=best_plain[0])
            model.to("cpu")
    return 0


def _emit_rate(writer, rate, method, flops, peak, common):
    theoretical, measured = peak
    achieved = rate * flops / 1e9
    writer.emit("inference_throughput", rate, "triplets/s", method=method, gflops=achieved,
                fraction_of_peak_theoretical=None if not theoretical else achieved / theoretical,
                fraction_of_peak_sgemm=achieved / measured, **common)


if __name__ == "__main__":
    sys.exit(main())
