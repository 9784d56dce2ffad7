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

"""``rb-gallery``: example triplets of every truth class of a repository."""

from __future__ import annotations

__all__ = ["main"]

import argparse
import logging
import sys

from ..errors import GalleryError, one_line
from ..evaluation import write_gallery


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rb-gallery",
        description="Draw example template/science/difference triplets of every truth class of a "
        "simulated repository: one row per truth class, one column per example (DMTN-272 Fig. 10).",
    )
    parser.add_argument("repo", help="Butler repository (read-only).")
    parser.add_argument("output", help="PNG file to write.")
    parser.add_argument("--collections", action="append", metavar="C",
                        help="Collection(s) to search; repeat or comma-separate. Default: DC2/sim.")
    parser.add_argument("--per-class", type=int, default=4, metavar="N",
                        help="Maximum examples per truth class: the columns (default 4).")
    parser.add_argument("--size", type=int, default=41, metavar="S",
                        help="Stamp size in pixels (default 41).")
    parser.add_argument("--where", help="Butler query expression restricting the detector-visits.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the choice of examples (default 0).")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-gallery``.

    Returns
    -------
    status : `int`
        0 on success; 2 on a user error (one line on stderr).
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    collections_arg = [c.strip() for item in (args.collections or ["DC2/sim"]) for c in item.split(",")
                       if c.strip()]
    try:
        if args.per_class < 1:
            raise ValueError(f"--per-class must be >= 1; got {args.per_class}.")
        if args.size < 1:
            raise ValueError(f"--size must be >= 1; got {args.size}.")
        counts = write_gallery(args.repo, args.output, collections=collections_arg,
                               per_class=args.per_class, size=args.size, where=args.where, seed=args.seed)
    except (GalleryError, ValueError, OSError) as exc:
        print(f"rb-gallery: error: {one_line(exc)}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{name} {n}" for name, n in counts.items()) or "no DIA sources"
    print(f"wrote {sum(counts.values())} examples to {args.output} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
