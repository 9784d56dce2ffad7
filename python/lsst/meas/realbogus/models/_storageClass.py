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

Kept free of heavy imports: the simulator uses it when it creates a
repository.
"""

from __future__ import annotations

__all__ = ["STORAGE_CLASS", "butler_config", "butler_config_yaml"]

from typing import Any

import yaml

STORAGE_CLASS = "RealBogusModelPackage"
"""Storage class of ``rb_model``: a `~lsst.meas.realbogus.models.ModelPackage`."""


def butler_config() -> dict[str, Any]:
    """Return the Butler configuration that defines `STORAGE_CLASS` and its
    formatter.

    ``Butler.makeRepo(root, config=Config(butler_config()))`` writes it into
    a new repository's ``butler.yaml``; for an existing repository merge
    `butler_config_yaml` into its ``butler.yaml`` (the ``formatters`` entry
    goes under the existing ``datastore:`` key, not a second one).
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
