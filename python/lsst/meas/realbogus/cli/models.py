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

"""``rb-models``: list the real/bogus architectures, their supported cutout
sizes, parameter counts and forward cost.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import json
import sys
from typing import Any, NoReturn

from ..errors import CliError
from ..models import ARCHITECTURES, describe


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the usage too; one line is the package's convention.
        raise CliError(message)


def _format_table(rows: list[dict[str, Any]]) -> str:
    """Aligned text table of `describe` results."""
    header = ("architecture", "size", "parameters", "min size", "max size", "MFLOP/triplet")
    body = [
        (
            row["name"],
            str(row["cutoutSize"]),
            f"{row['parameters']:,}" if row["supported"] else "-",
            str(row["minCutoutSize"]),
            "-" if row["maxCutoutSize"] is None else str(row["maxCutoutSize"]),
            f"{row['mflops']:,.1f}" if row["supported"] else "-",
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (header, *body)) for i in range(len(header))]
    lines = []
    for cells, row in zip((header, *body), (None, *rows)):
        text = "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        if row is not None and not row["supported"]:
            text += f"  unsupported: {row['error']}"
        lines.append(text)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rb-models",
        description="List the real/bogus architectures: default cutout size, parameter count, supported "
        "sizes and forward MFLOP per triplet (convolutions and matrix products, 2 per multiply-add).",
    )
    parser.add_argument("--size", type=int, metavar="S",
                        help="Evaluate every architecture at cutouts of S x S pixels instead of its default.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object per architecture.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-models``.

    Parameters
    ----------
    argv : `list` [`str`], optional
        Arguments; ``sys.argv[1:]`` if `None`.

    Returns
    -------
    status : `int`
        0 on success, 2 for bad input (after a one-line message on
        stderr).
    """
    try:
        args = _parser().parse_args(argv)
        if args.size is not None and args.size < 1:
            raise CliError(f"--size must be a positive number of pixels; got {args.size}")
    except CliError as exc:
        print(f"rb-models: error: {exc}", file=sys.stderr)
        return 2
    rows = [describe(name, args.size) for name in ARCHITECTURES]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
