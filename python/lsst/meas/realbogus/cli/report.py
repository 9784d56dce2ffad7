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

__all__ = ["main"]

import argparse
import io
import sys
from typing import TYPE_CHECKING, Any

import lsst.pipe.base as pipeBase

from ..errors import CliError, RealBogusError, one_line
from ..evaluation import PLOT_NAMES, format_summary, open_butler, query_inputs, render_report
from ._files import check_output, is_report, mark_report, write_bytes_atomically
from ._options import find_package_storage_classes

if TYPE_CHECKING:
    from lsst.daf.butler import Butler


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rb-report",
                                     description="Write one self-contained HTML page of a tract's evaluation "
                                     "(rb_metrics and rb_plot_* from evaluateRealBogus).")
    parser.add_argument("repo", help="Butler repository.")
    parser.add_argument("--collections", "-i", action="append", required=True,
                        help="Collection(s) holding rb_metrics (repeatable).")
    parser.add_argument("--tract", type=int, required=True)
    parser.add_argument("--skymap", default="DC2")
    parser.add_argument("--output", "-o", default="rb_report.html",
                        help="HTML file to write (atomically). An existing file is replaced only if it is an "
                        "rb-report page, or with --overwrite.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the --output file even if it is not an rb-report page.")
    parser.add_argument("--evaluate", action="store_true",
                        help="Evaluate the tract here, with evaluateRealBogus's code and default config, "
                        "instead of reading rb_metrics: the collections must hold dia_source_reliability, "
                        "the simulator's outputs and rb_model. Nothing is written to the repository.")
    parser.add_argument("--threshold", type=float,
                        help="With --evaluate: this threshold instead of the model's.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-report``.

    Returns
    -------
    status : `int`
        0 on success; 2 on a user error (one line on stderr).
    """
    args = _parser().parse_args(argv)
    find_package_storage_classes()
    try:
        if args.threshold is not None and not args.evaluate:
            raise CliError("--threshold needs --evaluate (rb_metrics already has its threshold).")
        # Before the evaluation: -o must not be (say) the repository's registry.
        target = check_output(args.output, what="an rb-report page", is_own=is_report,
                              overwrite=args.overwrite, option="-o")
        butler = open_butler(args.repo)
        metrics, images = _evaluate(butler, args) if args.evaluate else _read(butler, args)
        page = render_report(metrics, images, f"Real/bogus evaluation: {args.skymap} tract {args.tract}")
        try:
            write_bytes_atomically(target, mark_report(page).encode("utf-8"))
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(format_summary(metrics))
        print(f"Wrote {args.output} ({len(images)} plots).")
    except CliError as exc:
        print(f"rb-report: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _read(butler: Butler, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``rb_metrics`` and the PNG of each ``rb_plot_*`` of the tract."""
    data_id = {"skymap": args.skymap, "tract": args.tract}
    try:
        metrics = butler.get("rb_metrics", data_id, collections=args.collections)
    except Exception as exc:
        raise CliError(f"no rb_metrics for tract {args.tract} in {args.collections}: {one_line(exc)}; "
                       "run pipelines/EvaluateRealBogus.yaml first, or pass --evaluate.") from None
    images = {}
    for name in PLOT_NAMES:
        ref = butler.find_dataset(f"rb_plot_{name}", data_id, collections=args.collections)
        if ref is not None:
            images[name] = butler.getURI(ref).read()
    return metrics, images


def _evaluate(butler: Butler, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run `EvaluateRealBogusTask` on the tract's datasets in this process;
    return its metrics and the PNG of each plot.
    """
    from ..evaluation import EvaluateRealBogusConfig, EvaluateRealBogusTask

    config = EvaluateRealBogusConfig()
    if args.threshold is not None:
        config.thresholdFromModel = False
        config.threshold = args.threshold
    try:
        config.validate()
    except Exception as exc:
        raise CliError(f"--threshold: {one_line(exc)}") from None
    try:
        model = butler.get("rb_model", collections=args.collections)
    except Exception as exc:
        raise CliError(f"no rb_model in {args.collections} to evaluate with: {one_line(exc)}") from None
    handles = query_inputs(butler, args.collections, "skymap = :skymap AND tract = :tract",
                           bind={"skymap": args.skymap, "tract": args.tract})
    data = {"skymap": args.skymap, "tract": args.tract,
            "inputCollections": sorted({h.ref.run for h in handles["classifications"].values()}),
            "evaluatedBy": "rb-report --evaluate"}
    try:
        outputs = EvaluateRealBogusTask(config=config).run(handles, model, data=data)
    except (RealBogusError, pipeBase.NoWorkFound) as exc:
        raise CliError(f"cannot evaluate tract {args.tract} from {args.collections}: {one_line(exc)}") from None
    images = {}
    for name in PLOT_NAMES:
        stream = io.BytesIO()
        getattr(outputs, f"plot_{name}").savefig(stream, format="png")
        images[name] = stream.getvalue()
    return outputs.metrics, images


if __name__ == "__main__":
    sys.exit(main())
