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

__all__ = ["check_gallery_output", "main", "write_gallery_file"]

import argparse
import logging
import sys
from typing import Any

from ..errors import CliError, GalleryError, one_line
from ..evaluation import write_gallery
from ._files import check_output, is_gallery, tag_gallery_png, write_atomically
from ._options import find_package_storage_classes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rb-gallery",
        description="Draw example template/science/difference triplets of every truth class of a "
        "simulated repository: one row per truth class, one column per example (DMTN-272 Fig. 10).",
    )
    parser.add_argument("repo", help="Butler repository (read-only).")
    parser.add_argument("output", help="PNG file to write (atomically; its directory is created if needed). "
                        "An existing file is replaced only if rb-gallery wrote it, or with --overwrite.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace OUTPUT even if it is not an rb-gallery PNG.")
    parser.add_argument("--collections", action="append", metavar="C",
                        help="Collection(s) to search; repeat or comma-separate. Default: DC2/sim.")
    parser.add_argument("--per-class", type=int, default=4, metavar="N",
                        help="Maximum examples per truth class: the columns (default 4).")
    parser.add_argument("--size", type=int, default=41, metavar="S",
                        help="Stamp size in pixels (default 41).")
    parser.add_argument("--where", help="Butler query expression restricting the detector-visits.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the choice of examples (default 0).")
    return parser


def check_gallery_output(path: str, overwrite: bool, option: str = "OUTPUT") -> str:
    """Check a gallery's output path before any work (see
    `lsst.meas.realbogus.cli._files.check_output`); return the path to
    write.

    Raises
    ------
    lsst.meas.realbogus.errors.CliError
        Raised if the path may not be written.
    """
    return check_output(path, what="an rb-gallery PNG", is_own=is_gallery, overwrite=overwrite, option=option,
                        make_parents=True)


def write_gallery_file(repo: str, target: str, **kwargs: Any) -> dict[str, int]:
    """Draw a gallery (`lsst.meas.realbogus.evaluation.write_gallery`) into
    a temporary file, mark it as rb-gallery's (a PNG ``Software`` text
    chunk) and rename it onto ``target`` (a path `check_gallery_output`
    returned).

    Returns
    -------
    counts : `dict` [`str`, `int`]
        Examples drawn per truth class.
    """
    counts: dict[str, int] = {}

    def write(tmp: str) -> None:
        counts.update(write_gallery(repo, tmp, **kwargs))
        tag_gallery_png(tmp)

    write_atomically(target, write)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-gallery``.

    Returns
    -------
    status : `int`
        0 on success; 2 on a user error (one line on stderr).
    """
    args = _parser().parse_args(argv)
    find_package_storage_classes()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    collections_arg = [c.strip() for item in (args.collections or ["DC2/sim"]) for c in item.split(",")
                       if c.strip()]
    try:
        if args.per_class < 1:
            raise ValueError(f"--per-class must be >= 1; got {args.per_class}.")
        if args.size < 1:
            raise ValueError(f"--size must be >= 1; got {args.size}.")
        target = check_gallery_output(args.output, args.overwrite)
        counts = write_gallery_file(args.repo, target, collections=collections_arg, per_class=args.per_class,
                                    size=args.size, where=args.where, seed=args.seed)
    except CliError as exc:
        print(f"rb-gallery: error: {exc}", file=sys.stderr)
        return 2
    except (GalleryError, ValueError, OSError) as exc:
        print(f"rb-gallery: error: {one_line(exc)}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{name} {n}" for name, n in counts.items()) or "no DIA sources"
    print(f"wrote {sum(counts.values())} examples to {args.output} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
