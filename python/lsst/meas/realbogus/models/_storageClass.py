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

"""Butler configuration for the package's own storage class.

Every Butler learns the storage class ``RealBogusModelPackage`` and its
formatter from the configuration directory `butler_config_dir`
(``config/butler/`` of the package) once ``$DAF_BUTLER_CONFIG_PATH``
includes it: the EUPS table sets it, a pip install exports it (or calls
`use_package_butler_config` before making a Butler). Then a repository
made by a plain ``butler create`` stores and reads ``rb_model``, with no
edit of its ``butler.yaml``. Repositories made by ``rb-simulate`` also
carry the definition in their ``butler.yaml`` (`butler_config`), so they
work without the variable.

Kept free of heavy imports: the simulator uses it when it creates a
repository.
"""

from __future__ import annotations

__all__ = [
    "BUTLER_CONFIG_PATH_ENV",
    "STORAGE_CLASS",
    "butler_config",
    "butler_config_dir",
    "butler_config_yaml",
    "use_package_butler_config",
]

import os
from pathlib import Path
from typing import Any

import yaml

STORAGE_CLASS = "RealBogusModelPackage"
"""Storage class of ``rb_model``: a `~lsst.meas.realbogus.models.ModelPackage`."""

BUTLER_CONFIG_PATH_ENV = "DAF_BUTLER_CONFIG_PATH"
"""The environment variable daf_butler searches for configuration
directories (``os.pathsep``-separated, before its own defaults)."""


def butler_config_dir() -> Path:
    """Return the package's Butler configuration directory, the one
    ``$DAF_BUTLER_CONFIG_PATH`` should include.

    It is ``config/butler`` of ``$MEAS_REALBOGUS_DIR`` when that is set (EUPS
    sets it), else of the checkout this module lies in. It holds
    ``storageClasses.yaml`` and ``datastores/fileDatastore.yaml``, which
    daf_butler reads from every directory of the variable.
    """
    root = os.environ.get("MEAS_REALBOGUS_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[5]
    return base / "config" / "butler"


def use_package_butler_config() -> Path:
    """Append `butler_config_dir` to ``$DAF_BUTLER_CONFIG_PATH`` of this
    process, unless it is there already.

    For command-line front ends and scripts of a pip install: call it before
    the first Butler (or storage class factory) of the process is made;
    daf_butler reads the variable then.

    Returns
    -------
    path : `pathlib.Path`
        The directory.

    Raises
    ------
    lsst.meas.realbogus.errors.RealBogusError
        Raised if the directory has no ``storageClasses.yaml`` (an
        installation without the package's ``config/``; set
        ``$MEAS_REALBOGUS_DIR`` to a checkout).
    """
    path = butler_config_dir()
    if not (path / "storageClasses.yaml").is_file():
        from ..errors import RealBogusError

        raise RealBogusError(
            f"no Butler configuration at {path}; set MEAS_REALBOGUS_DIR to a meas_realbogus checkout."
        )
    entries = [entry for entry in os.environ.get(BUTLER_CONFIG_PATH_ENV, "").split(os.pathsep) if entry]
    if not any(os.path.abspath(entry) == str(path) for entry in entries):
        os.environ[BUTLER_CONFIG_PATH_ENV] = os.pathsep.join([*entries, str(path)])
    return path


def butler_config() -> dict[str, Any]:
    """Return the Butler configuration that defines `STORAGE_CLASS` and its
    formatter (what the files of `butler_config_dir` hold).

    ``Butler.makeRepo(root, config=Config(butler_config()))`` writes it into
    a new repository's ``butler.yaml`` (``rb-simulate`` does). Other
    repositories need no edit when ``$DAF_BUTLER_CONFIG_PATH`` includes
    `butler_config_dir`; without that, merge `butler_config_yaml` into a
    repository's ``butler.yaml`` (the ``formatters`` entry goes under the
    existing ``datastore:`` key, not a second one).
    """
    return {
        "storageClasses": {
            STORAGE_CLASS: {"pytype": "lsst.meas.realbogus.models.ModelPackage"},
        },
        "datastore": {
            "formatters": {STORAGE_CLASS: "lsst.meas.realbogus.models.ModelPackageFormatter"},
        },
    }


def butler_config_yaml() -> str:
    """Return `butler_config` as YAML, to merge into an existing
    repository's ``butler.yaml``.
    """
    return yaml.safe_dump(butler_config(), sort_keys=False)
