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

"""``rb-simulate``: write a DC2-like repository."""

from __future__ import annotations

__all__ = ["build_config", "main"]

import argparse
import logging
import sys

from ..errors import CliError, RepositoryExistsError, UnknownPresetError, one_line
from ..simulation import SimulationConfig, Simulator, make_config
from ._options import apply_config_overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rb-simulate",
        description="Simulate a DC2-like Butler repository (tracts 3080 and 4024) of science, template and "
        "difference images with labelled DIA sources. With --register-only, only create and register the "
        "world: pipelines/Simulate.yaml (pipetask or bps/simulation.yaml) then simulates it, one quantum "
        "per detector-visit.",
    )
    parser.add_argument("repo", help="Butler repository to create.")
    parser.add_argument("--preset", default="demo",
                        help="Preset: ci (seconds), demo (minutes), dl (DL v0.1.2-like; hours): the natural "
                        "class mix; train (tract 3080 with injected sources, the training world), test "
                        "(tract 4024, natural mix, large enough to judge OSS-REQ-0353). Default: demo.")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="Worker processes (default 1).")
    parser.add_argument("--config-file", "-C", action="append", default=[],
                        help="pex_config override file(s), applied after the preset.")
    parser.add_argument("--config", "-c", action="append", default=[], metavar="FIELD=VALUE",
                        help="Config override, e.g. -c survey.visitsPerTract=4 (after files).")
    parser.add_argument("--seed", type=int, help="Master random seed (overrides the config).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an existing butler repository at REPO.")
    parser.add_argument("--gallery", metavar="PNG", help="Also write a gallery of example triplets per class.")
    parser.add_argument("--show-config", action="store_true", help="Print the final config and exit.")
    parser.add_argument("--no-progress", action="store_true", help="Log lines instead of a progress bar.")
    parser.add_argument("--register-only", action="store_true",
                        help="Create the repository, register the plan and store the configuration (RUN "
                        "<run>/config) without simulating: then run pipelines/Simulate.yaml with pipetask "
                        "(-i DC2/sim/config -o DC2/sim) or bps/simulation.yaml.")
    return parser


def build_config(args: argparse.Namespace) -> SimulationConfig:
    """Apply the preset, files, overrides and seed; validate.

    Raises
    ------
    CliError
        For any bad configuration, with a one-line message.
    """
    try:
        config = make_config(args.preset)
    except UnknownPresetError as exc:
        raise CliError(str(exc)) from None
    apply_config_overrides(config, args.config_file, args.config)
    if args.seed is not None:
        config.seed = args.seed
    if args.jobs < 1:
        raise CliError(f"-j must be >= 1; got {args.jobs}.")
    try:
        config.validate()
    except Exception as exc:
        raise CliError(f"invalid configuration: {one_line(exc)}") from None
    return config


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rb-simulate``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(args)
        if args.show_config:
            config.saveToStream(sys.stdout)
            return 0
        simulator = Simulator(config)
        try:
            summary = simulator.run(args.repo, jobs=args.jobs, overwrite=args.overwrite,
                                    progress=False if args.no_progress else None,
                                    register_only=args.register_only)
        except RepositoryExistsError as exc:
            raise CliError(str(exc)) from None
        if args.register_only:
            print(f"registered {len(simulator.specs)} detector-visits in {args.repo}; simulate them with "
                  f"pipelines/Simulate.yaml (-i {config.run}/config -o {config.run}).")
            return 0
        print(summary.format())
        if args.gallery:
            from ..evaluation import write_gallery  # matplotlib only when asked for

            write_gallery(args.repo, args.gallery, collections=config.run)
            print(f"gallery written to {args.gallery}")
    except CliError as exc:
        print(f"rb-simulate: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
