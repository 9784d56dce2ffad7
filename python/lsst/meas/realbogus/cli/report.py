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

"""``rb-report``: one self-contained HTML page of a tract's evaluation."""

from __future__ import annotations

__all__ = ['main']

import argparse
import sys

from ..errors import CliError, one_line
from ..evaluation import PLOT_NAMES, format_summary, render_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rb-report",
                                     description="Write one self-contained HTML page of a tract's evaluation "
                                     "(rb_metrics and rb_plot_* from evaluateRealBogus).")
    parser.add_argument("repo", help="Butler repository.")
    parser.add_argument("--collections", "-i", action="append", required=True,
                        help="Collection(s) holding rb_metrics (repeatable).")
    parser.add_argument("--tract", type=int, required=True)
    parser.add_argument("--skymap", default="DC2")
    parser.add_argument("--output", "-o", default="rb_report.html", help="HTML file to write.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-report``."""
    args = _parser().parse_args(argv)
    try:
        from lsst.daf.butler import Butler

        try:
            butler = Butler.from_config(args.repo)
        except Exception as exc:
            raise CliError(f"cannot open Butler repository {args.repo!r}: {one_line(exc)}") from None
        data_id = {"skymap": args.skymap, "tract": args.tract}
        try:
            metrics = butler.get("rb_metrics", data_id, collections=args.collections)
        except Exception as exc:
            raise CliError(f"no rb_metrics for tract {args.tract} in {args.collections}: {one_line(exc)}; "
                           "run pipelines/EvaluateRealBogus.yaml first.") from None
        images = {}
        for name in PLOT_NAMES:
            ref = butler.find_dataset(f"rb_plot_{name}", data_id, collections=args.collections)
            if ref is not None:
                images[name] = butler.getURI(ref).read()
        title = f"Real/bogus evaluation: {args.skymap} tract {args.tract}"
        page = render_report(metrics, images, title)
        try:
            with open(args.output, "w") as stream:
                stream.write(page)
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
        print(format_summary(metrics))
        print(f"Wrote {args.output} ({len(images)} plots).")
    except CliError as exc:
        print(f"rb-report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
