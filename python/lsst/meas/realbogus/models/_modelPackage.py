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

"""The model package: trained weights plus the metadata needed to use them.

A package is one zip archive holding two members:

``weights.safetensors``
    The model's ``state_dict`` in safetensors format (no pickle: loading
    cannot execute code).
``metadata.json``
    Architecture name and config, cutout settings (size, channel order,
    normalization), training provenance, validation metrics, the chosen
    threshold and a version string; validated against `ModelMetadata`.

In a Butler repository the package is the dimensionless dataset
``rb_model`` with the storage class ``RealBogusModelPackage`` and the
formatter `ModelPackageFormatter` (see `lsst.meas.realbogus.models`), so ``butler.get("rb_model",
collections=...)`` returns a `ModelPackage`.
"""

from __future__ import annotations

__all__ = [
    "CALIBRATION_INTERCEPT_LIMIT",
    "CALIBRATION_TEMPERATURE_RANGE",
    "FORMAT_VERSION",
    "ModelMetadata",
    "ModelPackage",
]

import hashlib
import io
import json
import math
import zipfile
from typing import Any

import numpy as np
import pydantic
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..errors import ModelPackageError, one_line
from ..triplets import CutoutConfig
from ._archive import (
    MAX_METADATA_BYTES,
    MAX_WEIGHTS_BYTES,
    TensorSpec,
    parse_json,
    read_members,
    safetensors_header,
)

FORMAT_VERSION = 2
"""Version of the package layout; readers refuse newer versions.

1: calibration by temperature only. 2: a calibration may also carry an
intercept (``platt``, ``priorShift``), which a version-1 reader would
ignore, so packages with one are written as version 2 and the others
still as 1 (readable by older releases).
"""

CALIBRATION_TEMPERATURE_RANGE = (0.05, 20.0)
"""Temperatures the calibration fitters search and readers accept."""

CALIBRATION_INTERCEPT_LIMIT = 20.0
"""Largest calibration intercept |b| fitted or accepted: beyond it every
float32 score is 0 or 1 whatever the network says."""

SHORT_VERSION_LENGTH = 7
"""Characters of `ModelPackage.short_version`: the size of the AP
pipeline's ``reliabilityVersion`` field."""

WEIGHTS_MEMBER = "weights.safetensors"
METADATA_MEMBER = "metadata.json"
MAX_PARAMETERS = 100_000_000
"""Most parameters a declared architecture may have (ResNet50: 23.5 million),
checked on the ``meta`` device before any weight is allocated."""
# safetensors' name of each torch dtype a state_dict holds.
_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.int64: "I64"}
# A fixed timestamp keeps archives byte-identical for identical content.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class CutoutMetadata(pydantic.BaseModel):
    """Cutout settings of a model (see `~lsst.meas.realbogus.triplets.CutoutConfig`)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    size: int
    channels: list[str]
    normalization: str
    asinhSoftening: float
    badMaskPlanes: list[str]
    fillValue: float


class ModelMetadata(pydantic.BaseModel):
    """Schema of ``metadata.json``."""

    model_config = pydantic.ConfigDict(extra="forbid")

    formatVersion: int
    version: str
    architecture: str
    modelConfig: dict[str, Any]
    cutout: CutoutMetadata
    weightsSha256: str
    threshold: float | None = None
    thresholdRule: str = ""
    training: dict[str, Any] = pydantic.Field(default_factory=dict)
    metrics: dict[str, Any] = pydantic.Field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    software: dict[str, str] = pydantic.Field(default_factory=dict)
    created: str = ""



class ModelPackage:
    """Trained weights and their metadata.

    Parameters
    ----------
    metadata : `ModelMetadata`
        Validated metadata.
    weights_bytes : `bytes`
        The safetensors serialization of the weights, kept as written so
        that a round trip is byte-identical.

    Notes
    -----
    Use `from_model` to make a package from a trained network, `read` /
    `from_bytes` to load one, and `build_model` to get a ready network.
    """

    def __init__(self, metadata: ModelMetadata, weights_bytes: bytes):
        self.metadata = metadata
        self.weights_bytes = weights_bytes

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        *,
        architecture: str,
        model_config: dict[str, Any],
        cutout_config: CutoutConfig,
        version: str | None = None,
        **fields: Any,
    ) -> ModelPackage:
        """Package a network.

        Parameters
        ----------
        model : `torch.nn.Module`
            The network; its ``state_dict`` is stored (on CPU).
        architecture : `str`
            Registry name of the architecture.
        model_config : `dict`
            ``config.toDict()`` of the architecture's config.
        cutout_config : `~lsst.meas.realbogus.triplets.CutoutConfig`
            How the training cutouts were made.
        version : `str`, optional
            Label of the version (default: the architecture); the version
            is ``<label>-<first 12 hex digits of the weights' SHA-256>``,
            so that it names these weights and no others.
        **fields
            Other `ModelMetadata` fields (``threshold``, ``training``,
            ``metrics``, ``software``, ``created``...).
        """
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        weights_bytes = save_safetensors(state)
        digest = hashlib.sha256(weights_bytes).hexdigest()
        calibration = fields.get("calibration") or {}
        try:
            metadata = ModelMetadata(
                formatVersion=2 if "intercept" in calibration else 1,
                version=f"{version or architecture}-{digest[:12]}",
                architecture=architecture,
                modelConfig=json.loads(json.dumps(model_config)),
                cutout=cutout_config.to_metadata(),
                weightsSha256=digest,
                **fields,
            )
        except pydantic.ValidationError as err:
            raise ModelPackageError(f"invalid model metadata: {one_line(err)}") from None
        return cls(metadata, weights_bytes)

    # -- properties --------------------------------------------------------

    @property
    def version(self) -> str:
        """Version string of the model."""
        return self.metadata.version

    @property
    def short_version(self) -> str:
        """Short id of the model: the first 7 hex digits of its weights'
        SHA-256 (like a git short hash).

        It names the model where only 7 characters fit: the AP pipeline's
        ``reliabilityVersion`` (``computeReliability`` with
        ``outputSchema="ap"`` writes it as the ``version`` of each score).
        `version` ends with the first 12 hex digits of the same hash, so
        the two always agree.
        """
        return self.metadata.weightsSha256[:SHORT_VERSION_LENGTH]

    @property
    def architecture(self) -> str:
        """Registry name of the architecture."""
        return self.metadata.architecture

    @property
    def threshold(self) -> float | None:
        """Score threshold chosen at the requirement point, if any."""
        return self.metadata.threshold

    @property
    def temperature(self) -> float:
        """Calibration temperature T: scores are sigmoid(logit / T + b)
        (`intercept` b); 1 when the package has no calibration.
        """
        return self._calibration_terms()[0]

    @property
    def intercept(self) -> float:
        """Calibration intercept b (0 but for ``platt`` and ``priorShift``
        calibration)."""
        return self._calibration_terms()[1]

    def _calibration_terms(self) -> tuple[float, float]:
        calibration = self.metadata.calibration or {}
        method = calibration.get("method")
        if method not in ("temperature", "platt", "priorShift"):
            return 1.0, 0.0
        temperature, intercept = calibration.get("temperature"), calibration.get("intercept", 0.0)
        low, high = CALIBRATION_TEMPERATURE_RANGE
        if not isinstance(temperature, (int, float)) or not low <= temperature <= high:
            raise ModelPackageError(
                f"model package calibration temperature {temperature!r} is not a number in [{low}, {high}]."
            )
        if method == "temperature":
            return float(temperature), 0.0
        if (not isinstance(intercept, (int, float)) or not math.isfinite(intercept)
                or abs(intercept) > CALIBRATION_INTERCEPT_LIMIT):
            raise ModelPackageError(f"model package calibration intercept {intercept!r} is not a number in "
                                    f"[-{CALIBRATION_INTERCEPT_LIMIT:g}, {CALIBRATION_INTERCEPT_LIMIT:g}].")
        return float(temperature), float(intercept)

    def trained_for(self) -> dict[str, list[str]]:
        """Return the instruments and bands of the training data, as far as
        the package records them.

        Returns
        -------
        coverage : `dict` [`str`, `list` [`str`]]
            ``instrument`` and ``bands`` lists from the ``training``
            metadata (see `training_data_coverage`); a key is absent when
            the package does not record it.
        """
        coverage = {}
        for key in ("instrument", "bands"):
            value = self.metadata.training.get(key)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ModelPackageError(
                    f"model package training.{key} {value!r} is not a string or list of strings."
                )
            coverage[key] = sorted(set(values))
        return coverage

    def cutout_config(self) -> CutoutConfig:
        """Return the cutout settings the model was trained with."""
        try:
            return CutoutConfig.from_metadata(self.metadata.cutout.model_dump())
        except ValueError as err:
            raise ModelPackageError(f"model package cutout settings: {err}") from None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Decode the weights (safetensors; no code is executed)."""
        try:
            return load_safetensors(self.weights_bytes)
        except (SafetensorError, ValueError, RuntimeError) as err:
            raise ModelPackageError(f"{WEIGHTS_MEMBER} is corrupt: {one_line(err)}") from None

    def build_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """Build the declared architecture, load the weights into it and
        check that it scores.

        The architecture is first built on torch's ``meta`` device, which
        allocates nothing, and the weights' names, shapes and dtypes (read
        from the safetensors header) are compared with it; only then are
        the weights decoded (and required finite) and the network built.
        A fixed probe batch must give finite logits, so that a package
        whose weights overflow is refused here, not after it has scored a
        night of alerts as NaN.

        Parameters
        ----------
        device : `str` or `torch.device`, optional
            Where to put the network.

        Returns
        -------
        model : `torch.nn.Module`
            The network, in eval mode.

        Raises
        ------
        lsst.meas.realbogus.errors.ModelPackageError
            Raised if the architecture is unknown, its config invalid or
            too large, the weights do not fit it (missing, unexpected,
            mis-shaped or of another dtype), hold NaN or infinite values,
            or the network gives non-finite logits on the probe batch.
        """
        config = self._architecture_config()
        self._check_weights_fit(_expected_tensors(self, config))
        state = self.state_dict()
        # NumPy's isfinite on a view: 15x faster than torch's on the CPU here.
        bad = [name for name, tensor in state.items()
               if tensor.is_floating_point() and not np.isfinite(tensor.numpy()).all()]
        if bad:
            raise ModelPackageError(
                f"model {self.version}: weights {_first(bad)} hold NaN or infinite values."
            )
        model = self._instantiate(config)
        model.load_state_dict(state, strict=True)
        model = model.to(device).eval()
        _probe(model, self.metadata.cutout.size, self.version)
        return model

    def _architecture_config(self) -> Any:
        """Return the declared architecture's validated config."""
        from ._registry import make_model_config

        try:
            return make_model_config(self.architecture, self.metadata.modelConfig)
        except ValueError as err:
            raise ModelPackageError(f"model package declares an unusable architecture: {err}") from None

    def _instantiate(self, config: Any) -> torch.nn.Module:
        from ..errors import UnsupportedCutoutSizeError
        from ._registry import build_model

        try:
            return build_model(self.architecture, self.metadata.cutout.size, config)
        except (ValueError, UnsupportedCutoutSizeError) as err:
            raise ModelPackageError(f"model package declares an unusable architecture: {err}") from None

    def _check_weights_fit(self, expected: dict[str, TensorSpec]) -> None:
        """Compare the safetensors header with the declared architecture."""
        found = safetensors_header(self.weights_bytes, WEIGHTS_MEMBER)
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        shapes = [f"{k} {found[k].shape} != {v.shape}" for k, v in expected.items()
                  if k in found and found[k].shape != v.shape]
        dtypes = [f"{k} {found[k].dtype} != {v.dtype}" for k, v in expected.items()
                  if k in found and found[k].shape == v.shape and found[k].dtype != v.dtype]
        detail = "; ".join(
            f"{what} {_first(items)}"
            for what, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes),
                                ("dtype", dtypes))
            if items
        )
        if detail:
            raise ModelPackageError(
                f"weights do not fit architecture {self.architecture!r} at cutout size "
                f"{self.metadata.cutout.size}: {detail}"
            )

    # -- serialization -----------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialize to the zip archive (byte-identical for identical
        content).
        """
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            members = (
                (METADATA_MEMBER, self.metadata.model_dump_json(indent=2).encode()),
                (WEIGHTS_MEMBER, self.weights_bytes),
            )
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "model package") -> ModelPackage:
        """Load a package from its zip archive.

        Parameters
        ----------
        data : `bytes`
            The archive.
        source : `str`, optional
            Name used in error messages (e.g. the file's path).

        Raises
        ------
        lsst.meas.realbogus.errors.ModelPackageError
            Raised, with a one-line message, if the archive is unreadable
            or larger than its limits (`lsst.meas.realbogus.models` reads
            every archive with the hard limits of its ``_archive``
            module), a member is missing or repeated, the metadata fails
            validation, or the weights do not match their recorded
            checksum and version.
        """
        return cls._from_members(read_members(data, _MEMBER_LIMITS, source), source)

    @classmethod
    def read(cls, path: str) -> ModelPackage:
        """Read an archive from a file (streamed, within the same limits as
        `from_bytes`).

        Raises
        ------
        lsst.meas.realbogus.errors.ModelPackageError
            Raised if the file cannot be read or is not a valid package.
        """
        return cls._from_members(read_members(str(path), _MEMBER_LIMITS, str(path)), str(path))

    @classmethod
    def _from_members(cls, members: dict[str, bytes], source: str) -> ModelPackage:
        metadata = _validated_metadata(parse_json(members[METADATA_MEMBER], f"{source}: {METADATA_MEMBER}"),
                                       source)
        weights_bytes = members[WEIGHTS_MEMBER]
        digest = hashlib.sha256(weights_bytes).hexdigest()
        if digest != metadata.weightsSha256:
            raise ModelPackageError(
                f"{source}: {WEIGHTS_MEMBER} is corrupt (SHA-256 {digest[:12]}... does not match the "
                f"recorded {metadata.weightsSha256[:12]}...)."
            )
        if not metadata.version.endswith(f"-{digest[:12]}"):
            raise ModelPackageError(
                f"{source}: version {metadata.version!r} does not name its weights (SHA-256 "
                f"{digest[:12]}...); "
                "a package's version ends with the first 12 hex digits of its weights' SHA-256."
            )
        package = cls(metadata, weights_bytes)
        try:
            # Refuse unusable cutout settings (channel order, normalization)
            # at load, not at the first detector scored.
            package.cutout_config()
            package.trained_for()
            package._calibration_terms()
        except ModelPackageError as err:
            raise ModelPackageError(f"{source}: {err}") from None
        return package

    def write(self, path: str) -> None:
        """Write the archive to a file."""
        with open(path, "wb") as stream:
            stream.write(self.to_bytes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelPackage):
            return NotImplemented
        return self.metadata == other.metadata and self.weights_bytes == other.weights_bytes

    def __repr__(self) -> str:
        return f"ModelPackage(version={self.version!r}, architecture={self.architecture!r})"


def _first(items: list[str], limit: int = 3) -> str:
    """Join the first few items of a list for a message."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


_MEMBER_LIMITS = {METADATA_MEMBER: MAX_METADATA_BYTES, WEIGHTS_MEMBER: MAX_WEIGHTS_BYTES}


def _validated_metadata(values: Any, source: str) -> ModelMetadata:
    try:
        metadata = ModelMetadata.model_validate(values)
    except pydantic.ValidationError as err:
        raise ModelPackageError(f"{source}: invalid {METADATA_MEMBER}: {one_line(err)}") from None
    if metadata.formatVersion > FORMAT_VERSION:
        raise ModelPackageError(
            f"{source} has format version {metadata.formatVersion}; this package reads up to "
            f"{FORMAT_VERSION}."
        )
    return metadata


def _expected_tensors(package: ModelPackage, config: Any) -> dict[str, TensorSpec]:
    """Names, shapes and dtypes of the declared architecture's weights, from
    a copy built on the ``meta`` device (nothing allocated).
    """
    with torch.device("meta"):
        model = package._instantiate(config)
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise ModelPackageError(f"model package declares {package.architecture!r} with {count} parameters; "
                                f"at most {MAX_PARAMETERS} are built.")
    return {name: TensorSpec(_SAFETENSORS_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
            for name, t in model.state_dict().items()}


def _probe(model: torch.nn.Module, size: int, version: str) -> None:
    """Refuse a network whose logits are not finite on a fixed probe batch:
    blank, noise, and the extremes of normalized cutouts.
    """
    # Two triplets: a blank one, and noise at 30 sigma with the difference
    # channel at the largest value a snrAsinh cutout reaches (~90).
    noise = 30.0 * torch.randn((1, 3, size, size), generator=torch.Generator().manual_seed(0))
    noise[:, 2] = 90.0
    probe = torch.cat([torch.zeros((1, 3, size, size)), noise])
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(probe.to(device)).float()
    if not bool(torch.isfinite(logits).all()):
        raise ModelPackageError(f"model {version} gives non-finite logits on the probe batch (its weights "
                                "overflow); it cannot be used to score.")
