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

"""``python -m lsst.meas.realbogus.evaluation``: the summary table of scores
against truth, from a repository."""

from __future__ import annotations

__all__ = ['main']

import argparse
import json
import sys

from ..errors import one_line
from ..evaluation import evaluate, format_summary, load_scored_sources


def main(argv: list[str] | None = None) -> int:
    """``python -m lsst.meas.realbogus.evaluation REPO --collections ...
    --where ...``: print the summary table (or JSON).
    """
    from lsst.daf.butler import Butler


    parser = argparse.ArgumentParser(prog="python -m lsst.meas.realbogus.evaluation",
                                     description="Summarize reliability scores against truth.")
    parser.add_argument("repo")
    parser.add_argument("--collections", "-i", action="append", required=True)
    parser.add_argument("--where", default="skymap='DC2' AND tract=4024")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        butler = Butler.from_config(args.repo)
        joined = load_scored_sources(butler, args.collections, args.where)
    except Exception as exc:
        print(f"evaluation: error: {one_line(exc)}", file=sys.stderr)
        return 2
    result = evaluate(joined, threshold=args.threshold)
    print(json.dumps(result) if args.json else format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
