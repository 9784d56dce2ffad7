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

"""Plot and tabulate ``learning_curve.py``'s JSON lines.

Reads the lines (a file or stdin), writes a PNG of purity at completeness
0.90 (with its 95 % bootstrap interval) and ECE against training-set size,
per architecture and SNR cut, with OSS-REQ-0353's purity 0.95 drawn in, and
prints the README's table (reStructuredText) on stdout::

    .venv/bin/python benchmarks/plot_learning_curve.py \\
        benchmarks/reference/learning_curve.jsonl -o doc/learning_curve.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

CUTS = ("snr>6", "snr>5", "all")
PURITY = "purity_at_completeness_0.90"


def read_lines(path: str) -> list[dict[str, Any]]:
    """The ``learning_curve`` lines of a JSON-lines file (``-``: stdin),
    ordered by architecture and training-set size.
    """
    stream = sys.stdin if path == "-" else open(path)
    with stream:
        lines = [json.loads(text) for text in stream if text.strip()]
    lines = [line for line in lines if line.get("figure") == "learning_curve"]
    return sorted(lines, key=lambda line: (line["architecture"], line["trainingTriplets"]))


def _figure(value: float | None, interval: Sequence[float] | None = None) -> str:
    if value is None:
        return "--"
    if not interval:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def table(lines: Sequence[dict[str, Any]]) -> str:
    """The README's table: one row per (architecture, size)."""
    header = ["model", "triplets", "train s", *[f"{cut} purity [95 %]" for cut in CUTS], "AP snr>6",
              "ECE all", "ECE snr>6"]
    rows = []
    for line in lines:
        cuts = line["cuts"]
        rows.append([
            line["architecture"], f"{line['trainingTriplets']:,}", f"{line['trainSeconds']:.0f}",
            *[_figure(cuts[cut].get(PURITY), (cuts[cut].get("intervals") or {}).get(PURITY)) for cut in CUTS],
            _figure(cuts["snr>6"].get("average_precision")), _figure(cuts["all"].get("ece")),
            _figure(cuts["snr>6"].get("ece")),
        ])
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    out = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join([*out, rule])


def plot(lines: Sequence[dict[str, Any]], output: str) -> None:
    """Purity at completeness 0.90 and ECE against training-set size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name in sorted({line["architecture"] for line in lines}):
        mine = [line for line in lines if line["architecture"] == name]
        sizes = [line["trainingTriplets"] for line in mine]
        for cut, marker in zip(CUTS, "osd"):
            values = [line["cuts"][cut].get(PURITY) for line in mine]
            intervals = [(line["cuts"][cut].get("intervals") or {}).get(PURITY) or [v, v]
                         for line, v in zip(mine, values)]
            errors = [[v - lo for v, (lo, _) in zip(values, intervals)],
                      [hi - v for v, (_, hi) in zip(values, intervals)]]
            left.errorbar(sizes, values, yerr=errors, marker=marker, capsize=3, label=f"{name} {cut}")
            right.plot(sizes, [line["cuts"][cut].get("ece") for line in mine], marker=marker,
                       label=f"{name} {cut}")
    left.axhline(0.95, color="k", linestyle="--", linewidth=1, label="OSS-REQ-0353 (0.95)")
    left.set(xscale="log", xlabel="training triplets", ylabel="purity at completeness 0.90",
             title="tract 4024, natural mix (95 % bootstrap)")
    right.axhline(0.02, color="k", linestyle="--", linewidth=1, label="ECE 0.02")
    right.set(xscale="log", xlabel="training triplets", ylabel="ECE", title="calibration")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    fig.savefig(output, dpi=90)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script."""
    parser = argparse.ArgumentParser(description="Plot and tabulate learning_curve.py's JSON lines.")
    parser.add_argument("lines", help="learning_curve.py's JSON lines (-: stdin).")
    parser.add_argument("-o", "--output", help="Write the plot here (PNG).")
    args = parser.parse_args(argv)
    lines = read_lines(args.lines)
    if not lines:
        print(f"no learning_curve lines in {args.lines}", file=sys.stderr)
        return 2
    print(table(lines))
    if args.output:
        plot(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
