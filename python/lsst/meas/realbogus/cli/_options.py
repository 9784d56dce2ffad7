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

"""Pieces shared by the package's command-line tools."""

from __future__ import annotations

__all__ = ["apply_config_overrides", "find_package_storage_classes"]

import ast
import logging
import os
from collections.abc import Iterable

import lsst.pex.config as pexConfig

from ..errors import CliError, one_line


def find_package_storage_classes() -> None:
    """Let this process's Butlers know ``RealBogusModelPackage``
    (`~lsst.meas.realbogus.models.use_package_butler_config`), so that the
    tools read and write ``rb_model`` in a repository made by plain ``butler
    create`` too; an installation without the package's ``config/`` keeps
    the repository's own configuration.
    """
    from ..errors import RealBogusError
    from ..models._storageClass import use_package_butler_config

    try:
        use_package_butler_config()
    except RealBogusError as err:
        # Not fatal: a repository made by rb-simulate declares the storage
        # class itself; only a plain `butler create` one needs ours.
        logging.getLogger("lsst.meas.realbogus").warning(
            "%s; rb_model is readable only in repositories that declare RealBogusModelPackage.", err)


def apply_config_overrides(config: pexConfig.Config, files: Iterable[str], items: Iterable[str]) -> None:
    """Apply ``-C FILE`` config files, then ``-c FIELD=VALUE`` overrides,
    then validate, as ``pipetask`` does.

    Parameters
    ----------
    config : `lsst.pex.config.Config`
        Config to modify in place.
    files : `~collections.abc.Iterable` [`str`]
        Python config files (``config.field = value`` lines).
    items : `~collections.abc.Iterable` [`str`]
        ``FIELD=VALUE`` strings; ``FIELD`` may be dotted
        (``model.name=vgg6``, ``model.active.dropout=0.3``) and ``VALUE``
        is read as a Python literal, else as a string.

    Raises
    ------
    CliError
        Raised with a one-line message for any bad file or value.
    """
    for path in files:
        if not os.path.isfile(path):
            raise CliError(f"config file {path!r} does not exist.")
        try:
            config.load(path)
        except Exception as exc:
            raise CliError(f"config file {path!r}: {one_line(exc)}") from None
    for item in items:
        field, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--config expects FIELD=VALUE; got {item!r}.")
        try:
            _set_field(config, field.strip(), value.strip())
        except Exception as exc:
            raise CliError(f"--config {item!r}: {one_line(exc)}") from None
    try:
        config.validate()
    except Exception as exc:
        raise CliError(f"invalid configuration: {one_line(exc)}") from None


def _set_field(config: pexConfig.Config, dotted: str, text: str) -> None:
    *path, name = dotted.split(".")
    target = config
    for part in path:
        target = getattr(target, part)
    fields = getattr(target, "_fields", None)
    if fields is not None and name not in fields:
        raise ValueError(f"no config field {dotted!r}.")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    setattr(target, name, value)
