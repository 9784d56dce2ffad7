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

"""Which code evaluated: the package's commit, read once per process.

``rb_metrics`` records the commit of the meas_realbogus that computed it, so
that ``rb-report`` names the model, the data and the code. It is read from
files, without running ``git``: a Task must not start subprocesses (a
pipetask worker may lack ``git`` on its ``PATH``, run as a user ``git``
refuses to serve, or hold a CUDA context that a fork would copy), and the
answer cannot change while the process runs.
"""

from __future__ import annotations

__all__ = ["package_commit"]

import functools
import importlib.metadata
import json
import re
from pathlib import Path

DISTRIBUTION = "lsst-meas-realbogus"
"""The package's Python distribution name (``pyproject.toml``)."""

_SHORT = 12
"""Hex digits of a recorded commit (as ``git rev-parse --short=12``)."""

_SHA = re.compile(r"[0-9a-f]{40}")


@functools.cache
def package_commit() -> str:
    """Return the commit of the meas_realbogus code this process runs.

    Returns
    -------
    commit : `str`
        The first 12 hex digits of the commit: that of the git checkout
        holding this module (a source or editable install: its ``HEAD``,
        uncommitted changes not counted), else the one pip recorded when it
        installed the distribution from a git URL (PEP 610
        ``direct_url.json``), else ``"unknown"``.
    """
    try:
        commit = _checkout_commit(Path(__file__).resolve().parent)
    except OSError:
        commit = None
    commit = commit or _installed_commit()
    return commit[:_SHORT] if commit else "unknown"


def _checkout_commit(start: Path) -> str | None:
    """The ``HEAD`` commit of the git checkout holding ``start``, read from
    its ``.git``.
    """
    for directory in (start, *start.parents):
        git_dir = directory / ".git"
        if git_dir.is_file():
            # A worktree or submodule: ".git" says where its git directory is.
            text = git_dir.read_text().strip()
            if not text.startswith("gitdir:"):
                return None
            git_dir = (directory / text.removeprefix("gitdir:").strip()).resolve()
        if git_dir.is_dir():
            return _head(git_dir)
    return None


def _head(git_dir: Path) -> str | None:
    """Resolve ``HEAD`` of a git directory: a detached commit, or a branch
    as a loose ref or in ``packed-refs`` (a worktree's branches live in the
    ``commondir`` it names).
    """
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref:"):
        return _sha(head)
    ref = head.removeprefix("ref:").strip()
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
    for base in (git_dir, common):
        if (base / ref).is_file():
            return _sha((base / ref).read_text())
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return _sha(sha)
    return None  # a branch without commits


def _sha(text: str) -> str | None:
    text = text.strip()
    return text if _SHA.fullmatch(text) else None


def _installed_commit() -> str | None:
    """The commit pip recorded for a distribution installed from git."""
    try:
        text = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
        commit = json.loads(text or "{}").get("vcs_info", {}).get("commit_id")
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        return None
    return _sha(commit) if isinstance(commit, str) else None
