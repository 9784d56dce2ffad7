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

"""Summarize the JSON lines of the performance benchmarks as a table.

Reads the files ``make bench`` writes and prints the headline figures, each
next to the limit the performance issue set where there is one::

    .venv/bin/python benchmarks/summary.py benchmarks/results/*.jsonl
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence


def read(paths: Sequence[str]) -> Iterator[dict]:
    """The JSON objects of the files, in order (missing files skipped)."""
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            continue


def rows(lines: list[dict]) -> Iterator[tuple[str, str, str]]:
    """(figure, value, limit or note) rows."""
    for d in lines:
        f = d["figure"]
        if f == "cutout_speedup":
            baseline = d.get("baseline", "per_source_loop")
            yield (f"cutouts, {d['sources']} sources: vectorized ({d['threads']}t) / {baseline}",
                   f"{d['value']:.1f}x (identical: {d['identical']})",
                   ">= 20x at 212" if d["sources"] == 212 and baseline == "per_source_loop" else "")
        elif f == "cutout_throughput":
            yield (f"cutouts, {d['sources']} sources, {d['method']} ({d['threads']}t)",
                   f"{d['value']:,.0f} triplets/s", "")
        elif f == "machine_peak":
            where = d["device"] + (f", {d['threads']} thread(s)" if d.get("threads") else "")
            yield (f"peak {d['kind']} ({where})", f"{d['value']:.0f} GFLOP/s", d.get("assumption", ""))
        elif f == "inference_throughput":
            where = d["device"] + (f" {d['threads']}t" if d.get("threads") else "")
            share = d.get("fraction_of_peak_sgemm")
            yield (f"inference {d['architecture']} {where} {d['precision']} batch {d['batch_size']} {d['method']}",
                   f"{d['value']:,.0f} triplets/s",
                   f"{d['gflops']:.1f} GFLOP/s = {share:.0%} of sgemm" if share else "")
        elif f == "inference_task_over_plain":
            where = d["device"] + (f" {d['threads']}t" if d.get("threads") else "")
            yield (f"inference {d['architecture']} {where}: task (batch {d['task_batch_size']}) / best plain "
                   f"({d['plain_best_layout']}, batch {d['plain_best_batch_size']})", f"{d['value']:.2f}", ">= 0.5")
        elif f == "compute_reliability_seconds":
            s = d["split"]
            yield (f"computeReliability {d['architecture']} {d['sources']} sources, {d['threads']} threads",
                   f"{d['value']:.3f} s own (cutouts {s['cutouts']:.3f}, model {s['score']:.3f}, "
                   f"write {s['write']:.3f}); reads add {d['reads_add']:.2f} s",
                   "< 1 s at 1000 (rbcnn, 2 cores)" if d["sources"] == 1000 else "")
        elif f == "read_strategy_seconds":
            yield (f"reads of 3 images, {d['sources']} sources: {d['strategy']}", f"{d['value']:.2f} s", "")
        elif f == "loader_throughput":
            yield (f"loader from rb_triplets, {d['mode']}", f"{d['value']:,.0f} triplets/s", "")
        elif f == "training_throughput":
            util = d.get("gpu_utilisation_percent")
            yield (f"training {d['architecture']} {d['device_name']} {d['precision']} batch {d['batch_size']}",
                   f"{d['value']:,.0f} samples/s",
                   "loader/training uncached "
                   f"{min(v for k, v in d['loader_over_training'].items() if k != 'cached'):.1f}x or more"
                   + (f", GPU busy {util:.0f}%" if util is not None else ""))
        elif f == "simulator_throughput":
            yield (f"simulator -j {d['jobs']} ({d['preset']})", f"{d['value']:.2f} detector-visits/s", "")
        elif f == "simulator_speedup":
            yield (f"simulator -j {d['jobs']} / -j {d['relative_to_jobs']}", f"{d['value']:.2f}x",
                   f"same output: {d['same_output']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    paths = list(sys.argv[1:] if argv is None else argv)
    table = list(rows(list(read(paths))))
    if not table:
        print("no benchmark results in", " ".join(paths))
        return 1
    width = max(len(r[0]) for r in table)
    vwidth = max(len(r[1]) for r in table)
    for name, value, note in table:
        print(f"{name:<{width}}  {value:<{vwidth}}  {note}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
