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

"""Batched scoring of triplets with a network: one implementation for
validation during training, `ComputeReliabilityTask`, and the benchmarks.
"""

from __future__ import annotations

__all__ = ["LoadedModel", "calibrated_sigmoid", "load_model", "score_triplets"]

import collections
import contextlib
import dataclasses
import threading

import numpy as np
import torch

from ..models._modelPackage import ModelPackage


def score_triplets(
    model: torch.nn.Module,
    cutouts: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 256,
    mixed_precision: bool = False,
    temperature: float = 1.0,
    intercept: float = 0.0,
    logits: bool = False,
) -> np.ndarray:
    """Return sigmoid scores of triplets, in input order.

    Parameters
    ----------
    model : `torch.nn.Module`
        Network returning (N,) logits; put in eval mode here.
    cutouts : `numpy.ndarray`, (N, 3, S, S)
        Normalized triplets.
    device : `torch.device`
        Where the model lives.
    batch_size : `int`, optional
        Triplets per forward pass.
    mixed_precision : `bool`, optional
        bfloat16 autocast (GPU only).
    temperature, intercept : `float`, optional
        Calibration: scores are sigmoid(logit / T + b) (a model package's
        `~lsst.meas.realbogus.models.ModelPackage.temperature` and
        ``intercept``).
    logits : `bool`, optional
        Return the raw logits instead of scores.

    Returns
    -------
    scores : `numpy.ndarray` of `numpy.float32`, (N,)
        Values in [0, 1] (or logits).
    """
    model.eval()
    n = len(cutouts)
    scores = np.empty(n, dtype=np.float32)
    autocast = mixed_precision and device.type == "cuda"
    with torch.inference_mode(), _full_fp32(device.type == "cuda" and not autocast):
        for start in range(0, n, batch_size):
            x = torch.from_numpy(np.ascontiguousarray(cutouts[start : start + batch_size])).to(device)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits_batch = model(x)
            out = logits_batch.float() if logits else calibrated_sigmoid(logits_batch, temperature, intercept)
            scores[start : start + len(x)] = out.cpu().numpy()
    return scores


def calibrated_sigmoid(logits: torch.Tensor, temperature: float = 1.0, intercept: float = 0.0) -> torch.Tensor:
    """Turn logits into scores: sigmoid(logit / T + b) in float32."""
    scaled = logits.float() / temperature
    # Adding a zero intercept is skipped: bit-identical to sigmoid(logit / T).
    return torch.sigmoid(scaled + intercept if intercept else scaled)


@contextlib.contextmanager
def _full_fp32(enabled: bool):
    """Turn off TF32 on the GPU while scoring, so that fp32 GPU scores
    match CPU ones (TF32 convolutions moved logits by ~5e-3 on an H200).
    """
    if not enabled:
        yield
        return
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@dataclasses.dataclass
class LoadedModel:
    """A network built from a package, on a device."""

    package: ModelPackage
    model: torch.nn.Module
    device: torch.device


_CACHE: collections.OrderedDict[tuple[str, str], LoadedModel] = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 2


def load_model(package: ModelPackage, device: torch.device) -> LoadedModel:
    """Build a package's network on a device, reusing a recent one.

    A Prompt Processing worker scores detector after detector with the
    same model; rebuilding it each time would cost more than scoring.
    The cache key is the weights' SHA-256, so a different package never
    gets a stale network.
    """
    key = (package.metadata.weightsSha256, str(device))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    # Channels-last runs the convolutions on oneDNN's (and cuDNN's) fast
    # paths: 1.5-2x on a CPU for rbcnn, vgg6 and resnet50 (benchmarks/inference.py).
    model = package.build_model(device).to(memory_format=torch.channels_last)
    loaded = LoadedModel(package, model, device)
    with _CACHE_LOCK:
        _CACHE[key] = loaded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return loaded
