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

__all__ = ["main"]

import argparse
import json
import sys

import lsst.pipe.base as pipeBase

from ..errors import RealBogusError, one_line
from ..evaluation import SCORE_INPUTS, evaluate_detector_visits, format_summary, open_butler, query_inputs
from ._options import find_package_storage_classes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lsst.meas.realbogus.evaluation",
                                     description="Summarize reliability scores against truth, as "
                                     "evaluateRealBogus computes them (no plots, nothing written).")
    parser.add_argument("repo", help="Butler repository.")
    parser.add_argument("--collections", "-i", action="append", required=True,
                        help="Collection(s) holding dia_source_reliability and the simulator's outputs "
                        "(repeatable).")
    parser.add_argument("--where", default="skymap='DC2' AND tract=4024", help="Data query.")
    parser.add_argument("--threshold", type=float, default=0.5, help="Operating threshold (default 0.5).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lsst.meas.realbogus.evaluation``: print
    the summary table (or JSON).

    Returns
    -------
    status : `int`
        0 on success; 2 on a user error (one line on stderr).
    """
    args = _parser().parse_args(argv)
    find_package_storage_classes()
    try:
        butler = open_butler(args.repo)
        handles = query_inputs(butler, args.collections, args.where, SCORE_INPUTS)
        evaluation = evaluate_detector_visits(handles, threshold=args.threshold)
    except (RealBogusError, pipeBase.NoWorkFound) as exc:
        print(f"evaluation: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(evaluation.metrics) if args.json else format_summary(evaluation.metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
