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

"""Reading a repository the way `EvaluateRealBogusTask` reads its quantum:
deferred handles keyed by (visit, detector), for ``rb-report``,
``rb-gallery`` and ``python -m lsst.meas.realbogus.evaluation``.
"""

from __future__ import annotations

__all__ = ["INPUT_DATASETS", "DetectorVisitHandles", "check_collections", "open_butler", "query_inputs"]

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CliError, RealBogusError, one_line

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DeferredDatasetHandle

DetectorVisitHandles = dict[str, dict[tuple[int, int], "DeferredDatasetHandle"]]
"""Handles of each input, by `EvaluateRealBogusTask` connection name, then
by (visit, detector)."""

INPUT_DATASETS: Mapping[str, str] = {
    "classifications": "dia_source_reliability",
    "truth": "dia_source_truth",
    "diaSources": "dia_source_unstandardized",
    "template": "template_detector",
    "science": "preliminary_visit_image",
    "difference": "difference_image",
}
"""Dataset type of each per-detector input connection of
`EvaluateRealBogusTask`."""


def open_butler(repo: str, error: type[RealBogusError] = CliError) -> Butler:
    """Open a repository read-only.

    Parameters
    ----------
    repo : `str`
        Repository root, config file or URI.
    error : `type`, optional
        The exception to raise, with a one-line message.

    Raises
    ------
    lsst.meas.realbogus.errors.RealBogusError
        ``error``, if there is no repository at ``repo`` or it cannot be
        opened.
    """
    from lsst.daf.butler import Butler

    if "://" not in repo and not os.path.isfile(os.path.join(repo, "butler.yaml")) and not (
        os.path.isfile(repo) and repo.endswith((".yaml", ".json"))
    ):
        raise error(f"no Butler repository at {repo!r}.")
    try:
        return Butler.from_config(repo, writeable=False)
    except Exception as exc:
        raise error(f"cannot open Butler repository {repo!r}: {one_line(exc)}") from None


def check_collections(
    butler: Butler, collections: Iterable[str], error: type[RealBogusError] = CliError
) -> None:
    """Raise ``error`` naming the first collection that does not exist."""
    from lsst.daf.butler import MissingCollectionError

    for name in collections:
        try:
            butler.collections.get_info(name)
        except MissingCollectionError:
            raise error(f"collection {name!r} does not exist in the repository.") from None


def query_inputs(
    butler: Butler,
    collections: Sequence[str],
    where: str,
    names: Iterable[str] = INPUT_DATASETS,
    *,
    bind: Mapping[str, Any] | None = None,
    data_id: Mapping[str, Any] | None = None,
    error: type[RealBogusError] = CliError,
) -> DetectorVisitHandles:
    """Find the inputs of every detector-visit matching a query.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Repository.
    collections : `~collections.abc.Sequence` [`str`]
        Collections to search; the first match wins.
    where : `str`
        Data query, e.g. ``"skymap='DC2' AND tract=4024"``.
    names : `~collections.abc.Iterable` [`str`], optional
        Connection names (keys of `INPUT_DATASETS`) to find.
    bind, data_id : `~collections.abc.Mapping`, optional
        Bind values of ``where``; data ID values it is constrained by.
    error : `type`, optional
        The exception to raise, with a one-line message.

    Returns
    -------
    handles : `DetectorVisitHandles`
        Deferred handles of each input by (visit, detector), as
        `EvaluateRealBogusTask.run` takes them; detector-visits without a
        dataset are absent.

    Raises
    ------
    lsst.meas.realbogus.errors.RealBogusError
        ``error``, if a dataset type is not registered or the query is
        invalid.
    """
    from lsst.daf.butler import ButlerUserError, MissingDatasetTypeError

    handles: DetectorVisitHandles = {}
    for name in names:
        dataset_type = INPUT_DATASETS[name]
        try:
            refs = butler.query_datasets(dataset_type, collections=collections, where=where, bind=bind,
                                         data_id=data_id, find_first=True, explain=False)
        except MissingDatasetTypeError:
            raise error(f"dataset type {dataset_type!r} is not registered in the repository.") from None
        except ButlerUserError as exc:
            raise error(one_line(exc)) from None
        handles[name] = {(int(ref.dataId["visit"]), int(ref.dataId["detector"])): butler.getDeferred(ref)
                         for ref in refs}
    return handles
