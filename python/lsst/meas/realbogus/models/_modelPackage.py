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
    "FORMAT_VERSION",
    "ModelMetadata",
    "ModelPackage",
    "ModelPackageFormatter",
    "put_model",
    "training_data_coverage",
]

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any

import pydantic
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lsst.daf.butler import Butler, DatasetRef, FormatterV2
from lsst.resources import ResourcePath

from ..errors import ModelPackageError, one_line
from ..triplets._cutouts import CutoutConfig
from ._storageClass import STORAGE_CLASS

FORMAT_VERSION = 1
"""Version of the package layout; readers refuse newer versions."""

WEIGHTS_MEMBER = "weights.safetensors"
METADATA_MEMBER = "metadata.json"
# Guards against zip bombs: no sane model here is larger.
MAX_MEMBER_BYTES = 4 * 1024**3
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


def _one_line(err: pydantic.ValidationError) -> str:
    """Summarize a pydantic error in one line."""
    parts = []
    for item in err.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "(top)"
        parts.append(f"{where}: {item['msg']}")
    more = f" (+{err.error_count() - 3} more)" if err.error_count() > 3 else ""
    return "; ".join(parts) + more


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
            Version string; by default ``<architecture>-<first 12 hex
            digits of the weights' SHA-256>``.
        **fields
            Other `ModelMetadata` fields (``threshold``, ``training``,
            ``metrics``, ``software``, ``created``...).
        """
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        weights_bytes = save_safetensors(state)
        digest = hashlib.sha256(weights_bytes).hexdigest()
        try:
            metadata = ModelMetadata(
                formatVersion=FORMAT_VERSION,
                version=version or f"{architecture}-{digest[:12]}",
                architecture=architecture,
                modelConfig=json.loads(json.dumps(model_config)),
                cutout=cutout_config.to_metadata(),
                weightsSha256=digest,
                **fields,
            )
        except pydantic.ValidationError as err:
            raise ModelPackageError(f"invalid model metadata: {_one_line(err)}") from None
        return cls(metadata, weights_bytes)

    # -- properties --------------------------------------------------------

    @property
    def version(self) -> str:
        """Version string of the model."""
        return self.metadata.version

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
        """Calibration temperature T (scores are sigmoid(logit / T)); 1
        when the package has no calibration.
        """
        calibration = self.metadata.calibration or {}
        if calibration.get("method") != "temperature":
            return 1.0
        value = calibration.get("temperature")
        if not isinstance(value, (int, float)) or not (0 < value < float("inf")):
            raise ModelPackageError(f"model package calibration temperature {value!r} is not a positive number.")
        return float(value)

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
                raise ModelPackageError(f"model package training.{key} {value!r} is not a string or list of strings.")
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
            raise ModelPackageError(f"{WEIGHTS_MEMBER} is corrupt: {err}") from None

    def build_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """Build the declared architecture and load the weights into it.

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
        ModelPackageError
            Raised if the architecture is unknown, its config invalid, or
            the weights do not fit it (missing, unexpected or mis-shaped
            tensors).
        """
        from ..errors import UnsupportedCutoutSizeError
        from ._registry import build_model, make_model_config

        try:
            config = make_model_config(self.architecture, self.metadata.modelConfig)
            model = build_model(self.architecture, self.metadata.cutout.size, config)
        except (ValueError, UnsupportedCutoutSizeError) as err:
            raise ModelPackageError(f"model package declares an unusable architecture: {err}") from None
        state = self.state_dict()
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        shapes = [
            f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state and tuple(state[k].shape) != tuple(v.shape)
        ]
        if missing or unexpected or shapes:
            detail = "; ".join(
                part
                for part in (
                    f"missing {_first(missing)}" if missing else "",
                    f"unexpected {_first(unexpected)}" if unexpected else "",
                    f"shape {_first(shapes)}" if shapes else "",
                )
                if part
            )
            raise ModelPackageError(
                f"weights do not fit architecture {self.architecture!r} at cutout size "
                f"{self.metadata.cutout.size}: {detail}"
            )
        model.load_state_dict(state, strict=True)
        return model.to(device).eval()

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
        ModelPackageError
            Raised, with a one-line message, if the archive is unreadable,
            a member is missing, the metadata fails validation, or the
            weights do not match their recorded checksum.
        """
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as err:
            raise ModelPackageError(f"{source} is not a model package (zip): {err}") from None
        with archive:
            names = set(archive.namelist())
            for member in (METADATA_MEMBER, WEIGHTS_MEMBER):
                if member not in names:
                    raise ModelPackageError(f"{source} has no {member}.")
                if archive.getinfo(member).file_size > MAX_MEMBER_BYTES:
                    raise ModelPackageError(f"{source}: {member} is larger than {MAX_MEMBER_BYTES} bytes.")
            try:
                raw_metadata = archive.read(METADATA_MEMBER)
                weights_bytes = archive.read(WEIGHTS_MEMBER)
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise ModelPackageError(f"{source} is corrupt: {err}") from None
        try:
            values = json.loads(raw_metadata)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelPackageError(f"{source}: {METADATA_MEMBER} is not valid JSON: {err}") from None
        try:
            metadata = ModelMetadata.model_validate(values)
        except pydantic.ValidationError as err:
            raise ModelPackageError(f"{source}: invalid {METADATA_MEMBER}: {_one_line(err)}") from None
        if metadata.formatVersion > FORMAT_VERSION:
            raise ModelPackageError(
                f"{source} has format version {metadata.formatVersion}; this package reads up to "
                f"{FORMAT_VERSION}."
            )
        digest = hashlib.sha256(weights_bytes).hexdigest()
        if digest != metadata.weightsSha256:
            raise ModelPackageError(
                f"{source}: {WEIGHTS_MEMBER} is corrupt (SHA-256 {digest[:12]}... does not match the "
                f"recorded {metadata.weightsSha256[:12]}...)."
            )
        package = cls(metadata, weights_bytes)
        try:
            # Refuse unusable cutout settings (channel order, normalization)
            # at load, not at the first detector scored.
            package.cutout_config()
            package.trained_for()
        except ModelPackageError as err:
            raise ModelPackageError(f"{source}: {err}") from None
        return package

    def write(self, path: str) -> None:
        """Write the archive to a file."""
        with open(path, "wb") as stream:
            stream.write(self.to_bytes())

    @classmethod
    def read(cls, path: str) -> ModelPackage:
        """Read an archive from a file.

        Raises
        ------
        ModelPackageError
            Raised if the file cannot be read or is not a valid package.
        """
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except OSError as err:
            raise ModelPackageError(f"cannot read model package {path}: {err.strerror}") from None
        return cls.from_bytes(data, source=str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelPackage):
            return NotImplemented
        return self.metadata == other.metadata and self.weights_bytes == other.weights_bytes

    def __repr__(self) -> str:
        return f"ModelPackage(version={self.version!r}, architecture={self.architecture!r})"


def training_data_coverage(data_ids: Iterable[Any]) -> dict[str, list[str]]:
    """Return the ``instrument`` and ``bands`` entries a model package's
    ``training`` metadata should record, from the training data's data IDs.

    Parameters
    ----------
    data_ids : `~collections.abc.Iterable`
        Data IDs (`lsst.daf.butler.DataCoordinate` with full values, or
        mappings) of the training datasets; ``band`` is read where present.

    Returns
    -------
    coverage : `dict` [`str`, `list` [`str`]]
        Sorted distinct instruments and bands; `ModelPackage.trained_for`
        reads them back and ``computeReliability`` compares them with the
        data it scores.
    """
    instruments, bands = set(), set()
    for data_id in data_ids:
        mapping = data_id.mapping if hasattr(data_id, "mapping") else data_id
        if "instrument" in mapping:
            instruments.add(str(mapping["instrument"]))
        if "band" in mapping:
            bands.add(str(mapping["band"]))
    coverage = {}
    if instruments:
        coverage["instrument"] = sorted(instruments)
    if bands:
        coverage["bands"] = sorted(bands)
    return coverage


def _first(items: list[str], limit: int = 3) -> str:
    """Join the first few items of a list for a message."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


class ModelPackageFormatter(FormatterV2):
    """Butler formatter of `ModelPackage` (a ``.zip`` file)."""

    default_extension = ".zip"
    supported_extensions = frozenset({".zip"})
    can_read_from_local_file = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        # Docstring inherited.
        return ModelPackage.read(path)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        # Docstring inherited.
        if not isinstance(in_memory_dataset, ModelPackage):
            raise TypeError(f"expected a ModelPackage; got {type(in_memory_dataset).__name__}.")
        uri.write(in_memory_dataset.to_bytes())


def put_model(butler: Butler, package: ModelPackage, run: str, dataset_type: str = "rb_model") -> DatasetRef:
    """Store a model package in a repository, as ``trainRealBogus`` does.

    Registers the dataset type (no dimensions, storage class
    `STORAGE_CLASS`) and the RUN collection if they are new.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler.
    package : `ModelPackage`
        The model.
    run : `str`
        RUN collection to write to.
    dataset_type : `str`, optional
        Dataset type name.

    Returns
    -------
    ref : `lsst.daf.butler.DatasetRef`
        The stored dataset.

    Raises
    ------
    lsst.meas.realbogus.errors.ModelPackageError
        Raised with a one-line message if it cannot be stored.
    """
    from lsst.daf.butler import DatasetType

    try:
        butler.registry.registerDatasetType(DatasetType(dataset_type, (), STORAGE_CLASS, universe=butler.dimensions))
        butler.collections.register(run)
        return butler.put(package, dataset_type, run=run)
    except Exception as exc:
        raise ModelPackageError(f"cannot store {dataset_type} in {run!r}: {one_line(exc)}") from None
