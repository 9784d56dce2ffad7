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

"""Reading ``rb_triplets`` for training: one dataset at a time, shuffled
through a bounded buffer, so training never needs every triplet in memory.
"""

from __future__ import annotations

__all__ = ["TripletBatch", "TripletData", "validation_mask"]

import collections
import concurrent.futures
import dataclasses
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lsst.daf.butler import DeferredDatasetHandle

from ..errors import InvalidCatalogError, TripletDataError, one_line
from ..triplets import CutoutConfig, check_source_catalog

_SCAN_COLUMNS = ["diaSourceId", "label", "snr", "truthClass", "injected"]
_LOAD_COLUMNS = ["diaSourceId", "label", "snr", "injected", "cutout"]
# rb_triplets cut before injection was recorded have no "injected" column.
_OPTIONAL_COLUMNS = ("injected",)
# Salt of the hash that holds out the natural-mix calibration split, so it
# is independent of the validation split's.
_CALIBRATION_SALT = 0xCA11B


def validation_mask(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Assign sources to the validation split by a hash of their id.

    The split depends only on (id, fraction, seed), not on which datasets
    are read or in what order, so it is the same on every run and rank.

    Parameters
    ----------
    ids : `numpy.ndarray` of `int`
        Source ids.
    fraction : `float`
        Expected validation fraction.
    seed : `int`
        Seed of the hash.

    Returns
    -------
    mask : `numpy.ndarray` of `bool`
        True for validation sources.
    """
    # splitmix64 finalizer: a well-mixed 64-bit hash; uint64 arithmetic wraps.
    z = np.asarray(ids, dtype=np.int64).view(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    uniform = (z >> np.uint64(11)).astype(np.float64) / float(2**53)
    return uniform < fraction


@dataclasses.dataclass
class TripletBatch:
    """Triplets with their labels (numpy, CPU)."""

    cutouts: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    snr: np.ndarray
    injected: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def concatenate(cls, parts: Sequence[TripletBatch], shape: tuple[int, ...]) -> TripletBatch:
        """Join batches (an empty batch of cutout ``shape`` if none)."""
        if not parts:
            return cls(
                np.zeros((0, *shape), dtype=np.float32),
                np.zeros(0, dtype=np.float32),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.float32),
                np.zeros(0, dtype=bool),
            )
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)))

    def take(self, index: np.ndarray) -> TripletBatch:
        """Select rows."""
        return TripletBatch(self.cutouts[index], self.labels[index], self.ids[index], self.snr[index],
                            self.injected[index])


class TripletData:
    """The labelled ``rb_triplets`` of a training run.

    Parameters
    ----------
    handles : `~collections.abc.Sequence`
        One object per ``rb_triplets`` dataset with a
        ``get(parameters=...)`` method, e.g.
        `lsst.daf.butler.DeferredDatasetHandle`; read lazily.
    names : `~collections.abc.Sequence` [`str`]
        A name per handle for messages (e.g. its data ID).
    validation_fraction : `float`
        Fraction of sources held out (by id hash, see `validation_mask`).
    calibration_fraction : `float`, optional
        Fraction of the natural-mix sources (``injected`` False) held out
        from training and validation as the calibration split (by another
        id hash); 0: none.
    seed : `int`
        Seed of the split and of the shuffles.
    cache_megabytes : `float`
        Keep read training triplets in memory up to this size, so later
        epochs need no I/O; 0 re-reads every epoch.
    log : `logging.Logger`, optional
        Logger.
    readers : `int`, optional
        Threads that read datasets ahead of the one being consumed (Parquet
        decoding releases the GIL, so reads overlap each other and the
        training step); 1 reads in the calling thread. The data and their
        order do not depend on it.
    shard : `tuple` [`int`, `int`], optional
        ``(rank, world_size)`` of a distributed run: `batches` then reads
        only the datasets whose index modulo ``world_size`` is ``rank``
        (and only those are cached).  The scan, the counts and
        `validation` still cover every dataset.  Default: no sharding.

    Raises
    ------
    TripletDataError
        Raised if there are no datasets, no labelled triplet, or the
        datasets were cut with different settings.
    """

    def __init__(
        self,
        handles: Sequence[Any],
        names: Sequence[str],
        *,
        validation_fraction: float,
        seed: int,
        calibration_fraction: float = 0.0,
        cache_megabytes: float = 2048.0,
        log: logging.Logger | None = None,
        shard: tuple[int, int] | None = None,
        readers: int = 1,
    ):
        if not handles:
            raise TripletDataError("no rb_triplets datasets to train on (check the collections and tract).")
        self._handles = list(handles)
        self._names = list(names)
        self._fraction = validation_fraction
        self._calibration_fraction = calibration_fraction
        self._seed = seed
        self._cache_bytes = cache_megabytes * 1024**2
        self._cache: dict[int, TripletBatch] = {}
        self._cached_bytes = 0
        self.log = log or logging.getLogger(__name__)
        if shard is not None:
            rank, world_size = shard
            if not 0 <= rank < world_size:
                raise ValueError(f"shard rank {rank} is outside 0..{world_size - 1}.")
        self._shard = shard
        self._readers = max(int(readers), 1)
        self._scan()

    def _scan(self) -> None:
        """Read ids, labels and cutout settings (not pixels) of every
        dataset.
        """
        self.rows = []
        reference: tuple[str, dict] | None = None
        counts = {"train": [0, 0], "validation": [0, 0], "calibration": [0, 0]}
        unlabelled = 0
        classes: dict[str, int] = {}
        for index, handle in enumerate(self._handles):
            name = self._names[index]
            table = self._read_columns(index, handle, _SCAN_COLUMNS, {"strip_astropy_meta_yaml": False})
            try:
                check_source_catalog(table, ["diaSourceId", "label", "truthClass"], what=f"rb_triplets {name}")
            except InvalidCatalogError as exc:
                raise TripletDataError(str(exc)) from None
            settings = table.meta.get("cutout")
            if settings is None:
                raise TripletDataError(f"rb_triplets {name} records no cutout settings.")
            if reference is None:
                reference = (self._names[index], settings)
            elif settings != reference[1]:
                raise TripletDataError(
                    f"rb_triplets were cut with different settings: {settings} in {self._names[index]} "
                    f"but {reference[1]} in {reference[0]}; rebuild them with one config."
                )
            labels = np.asarray(table["label"], dtype=np.int64)
            labelled = labels >= 0
            train, val, calibration = self._splits(table)
            self.rows.append(int(train.sum()))
            for split, mask in (("train", train), ("validation", val), ("calibration", calibration)):
                counts[split][0] += int((labels[mask] == 0).sum())
                counts[split][1] += int((labels[mask] == 1).sum())
            unlabelled += int((~labelled).sum())
            for name in np.asarray(table["truthClass"]).astype(str)[labelled]:
                classes[name] = classes.get(name, 0) + 1
        self.cutout_config = CutoutConfig.from_metadata(reference[1])
        self.counts = {split: {"bogus": c[0], "real": c[1]} for split, c in counts.items()}
        self.unlabelled = unlabelled
        self.classes = dict(sorted(classes.items()))
        self.n_train = counts["train"][0] + counts["train"][1]
        self.n_validation = counts["validation"][0] + counts["validation"][1]
        self.n_calibration = counts["calibration"][0] + counts["calibration"][1]
        if self.n_train == 0:
            raise TripletDataError(
                f"none of the {len(self._handles)} rb_triplets datasets has a labelled training triplet "
                f"({unlabelled} unlabelled)."
            )
        if self.counts["train"]["real"] == 0 or self.counts["train"]["bogus"] == 0:
            raise TripletDataError(
                f"the training triplets hold only one class ({self.counts['train']}); a classifier needs both."
            )

    @property
    def shard_indices(self) -> list[int]:
        """Indices of the datasets `batches` reads (all without a shard)."""
        return [i for i in range(len(self._handles)) if self._in_shard(i)]

    def _in_shard(self, index: int) -> bool:
        """Whether this process trains on dataset ``index``."""
        return self._shard is None or index % self._shard[1] == self._shard[0]

    def shard_rows(self, rank: int, world_size: int) -> int:
        """Training rows of the datasets of shard ``rank`` of
        ``world_size`` (known after the scan, without reading pixels).
        """
        return sum(self.rows[i] for i in range(rank, len(self._handles), world_size))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape (3, S, S) of one cutout."""
        size = self.cutout_config.size
        return (3, size, size)

    def _get(self, index: int, handle: Any, parameters: dict[str, Any]) -> Any:
        """Read dataset ``index`` through ``handle``; a missing column or an
        unreadable file is a one-line `TripletDataError` naming it.
        """
        try:
            return handle.get(parameters=parameters)
        except (KeyError, ValueError, OSError) as exc:
            raise self._unreadable(index, exc) from None

    def _unreadable(self, index: int, exc: Exception) -> TripletDataError:
        return TripletDataError(f"rb_triplets {self._names[index]} cannot be read for training: {one_line(exc)}")

    def _read_columns(self, index: int, handle: Any, columns: Sequence[str],
                      parameters: dict[str, Any] | None = None) -> Any:
        """Read columns of dataset ``index``; an optional column it lacks
        (an error naming it) is read as all False.
        """
        parameters = dict(parameters or {})
        try:
            return handle.get(parameters={**parameters, "columns": list(columns)})
        except OSError as err:
            raise self._unreadable(index, err) from None
        except (KeyError, ValueError) as err:
            # Only a missing optional column (a lookup error naming it) is
            # read as all False: any other failure, and every OSError (a bad
            # file, a transient read error), must not turn an injected row
            # into a natural-mix one.
            if not any(re.search(rf"\b{name}\b", str(err)) for name in _OPTIONAL_COLUMNS):
                raise self._unreadable(index, err) from None
        present = [c for c in columns if c not in _OPTIONAL_COLUMNS]
        table = self._get(index, handle, {**parameters, "columns": present})
        for name in _OPTIONAL_COLUMNS:
            table[name] = np.zeros(len(table), dtype=bool)
        return table

    def _splits(self, table: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the (train, validation, calibration) masks of a dataset's
        labelled rows: the calibration split takes its fraction of the
        natural-mix rows first, the validation split its fraction of the
        rest.
        """
        ids = np.asarray(table["diaSourceId"], dtype=np.int64)
        labelled = np.asarray(table["label"], dtype=np.int64) >= 0
        calibration = np.zeros(len(ids), dtype=bool)
        if self._calibration_fraction > 0:
            natural = ~np.asarray(table["injected"], dtype=bool)
            calibration = labelled & natural & validation_mask(ids, self._calibration_fraction,
                                                               self._seed ^ _CALIBRATION_SALT)
        val = labelled & ~calibration & validation_mask(ids, self._fraction, self._seed)
        return labelled & ~calibration & ~val, val, calibration

    def _load(self, index: int, handle: Any = None) -> tuple[TripletBatch, TripletBatch, TripletBatch]:
        """Read one dataset (through ``handle``, default its own), split
        into (train, validation, calibration) labelled rows.
        """
        table = self._read_columns(index, self._handles[index] if handle is None else handle, _LOAD_COLUMNS)
        batch = TripletBatch(
            np.asarray(table["cutout"], dtype=np.float32).reshape(len(table), *self.shape),
            np.asarray(table["label"], dtype=np.int64).astype(np.float32),
            np.asarray(table["diaSourceId"], dtype=np.int64),
            np.asarray(table["snr"], dtype=np.float32),
            np.asarray(table["injected"], dtype=bool),
        )
        return tuple(batch.take(mask) for mask in self._splits(table))

    def _loaded(
        self, indices: Sequence[int], skip_cached: bool = True
    ) -> Iterator[tuple[int, tuple[TripletBatch, TripletBatch, TripletBatch] | None]]:
        """Yield ``(index, (train, validation, calibration))`` in the given order, read
        ahead by the reader threads; with ``skip_cached``, cached indices
        yield `None` unread.
        """
        def cached(index: int) -> bool:
            return skip_cached and index in self._cache

        if self._readers <= 1:
            for index in indices:
                yield index, None if cached(index) else self._load(index)
            return
        # A Butler may not be used by several threads at once: each reader
        # thread reads through its own clone of the handle's Butler.
        local = threading.local()

        def load(index: int) -> tuple[TripletBatch, TripletBatch, TripletBatch]:
            handle = self._handles[index]
            if isinstance(handle, DeferredDatasetHandle) and hasattr(handle.butler, "clone"):
                clones = local.__dict__.setdefault("clones", {})
                key = id(handle.butler)
                if key not in clones:
                    clones[key] = handle.butler.clone()
                handle = dataclasses.replace(handle, butler=clones[key])
            return self._load(index, handle)

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self._readers)
        try:
            pending: collections.deque = collections.deque()
            todo = iter(indices)

            def submit() -> bool:
                index = next(todo, None)
                if index is None:
                    return False
                pending.append((index, None if cached(index) else pool.submit(load, index)))
                return True

            # Bounded read-ahead: memory stays a few datasets above the buffer.
            while len(pending) < 2 * self._readers and submit():
                pass
            while pending:
                index, future = pending.popleft()
                submit()
                yield index, None if future is None else future.result()
        finally:
            # An abandoned epoch (an error, or a shard's steps done) does not
            # wait for reads nobody will use.
            pool.shutdown(wait=True, cancel_futures=True)

    def _train_rows(self, index: int, loaded: tuple[TripletBatch, ...] | None) -> TripletBatch:
        if loaded is None:
            return self._cache[index]
        self._remember(index, loaded[0])
        return loaded[0]

    def _remember(self, index: int, train: TripletBatch) -> None:
        """Cache a dataset's training rows if the budget allows."""
        if not self._in_shard(index):
            return  # another rank trains on it
        if index not in self._cache and self._cached_bytes + train.cutouts.nbytes <= self._cache_bytes:
            self._cache[index] = train
            self._cached_bytes += train.cutouts.nbytes

    def validation(self) -> TripletBatch:
        """Read the whole validation split (small: a few percent); see
        `held_out`.
        """
        return self.held_out()[0]

    def held_out(self) -> tuple[TripletBatch, TripletBatch]:
        """Read the validation and calibration splits.

        This reads every dataset once; their training rows go into the
        cache, so the first epoch does not read them again.

        Returns
        -------
        validation, calibration : `TripletBatch`
            The calibration split is empty without a
            ``calibration_fraction``.
        """
        parts: tuple[list[TripletBatch], list[TripletBatch]] = ([], [])
        for index, (train, *held) in self._loaded(range(len(self._handles)), skip_cached=False):
            self._remember(index, train)
            for part, batch in zip(parts, held):
                if len(batch):
                    part.append(batch)
        return tuple(TripletBatch.concatenate(part, self.shape) for part in parts)

    def batches(self, batch_size: int, rng: np.random.Generator, buffer_rows: int) -> Iterator[TripletBatch]:
        """Yield shuffled training batches for one epoch.

        Datasets are visited in a random order and their rows shuffled
        through a buffer of at least ``buffer_rows`` rows; with a buffer
        as large as the data the shuffle is complete.  With a ``shard``,
        only the shard's datasets are visited.

        Parameters
        ----------
        batch_size : `int`
            Rows per batch; the last, partial batch is yielded too unless
            it has a single row (batch norm cannot train on one).
        rng : `numpy.random.Generator`
            Source of the epoch's randomness.
        buffer_rows : `int`
            Minimum rows shuffled together.

        Yields
        ------
        batch : `TripletBatch`
        """
        pending: list[TripletBatch] = []
        pending_rows = 0
        carry = None
        if self._shard is None:
            order = rng.permutation(len(self._handles))
        else:
            shard = np.asarray(self.shard_indices, dtype=np.int64)
            order = shard[rng.permutation(len(shard))]
        order = [int(index) for index in order if self.rows[index] > 0]
        for index, loaded in self._loaded(order):
            pending.append(self._train_rows(index, loaded))
            pending_rows += self.rows[index]
            if pending_rows >= buffer_rows:
                carry = yield from self._emit(pending, carry, batch_size, rng, final=False)
                pending, pending_rows = [], 0
        yield from self._emit(pending, carry, batch_size, rng, final=True)

    def _emit(self, parts, carry, batch_size, rng, final):
        """Shuffle buffered rows and yield full batches; return the rest."""
        if carry is not None:
            parts = [carry, *parts]
        if not parts:
            return None
        buffer = TripletBatch.concatenate(parts, self.shape)
        buffer = buffer.take(rng.permutation(len(buffer)))
        n_full = len(buffer) // batch_size
        for k in range(n_full):
            yield buffer.take(slice(k * batch_size, (k + 1) * batch_size))
        rest = buffer.take(slice(n_full * batch_size, None))
        if final:
            if len(rest) > 1:
                yield rest
            return None
        return rest if len(rest) else None
