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

from ..errors import CliError, RealBogusError, UnknownPresetError, one_line
from ..simulation import SimulationConfig, Simulator, make_config, world_state
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
                        help="pex_config override file(s), applied after the preset. They are executed as "
                        "Python code: use only files you trust.")
    parser.add_argument("--config", "-c", action="append", default=[], metavar="FIELD=VALUE",
                        help="Config override, e.g. -c survey.visitsPerTract=4 (after files).")
    parser.add_argument("--seed", type=int, help="Master random seed (overrides the config).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an existing butler repository (or an incomplete world) at REPO, and a "
                        "--gallery file that rb-gallery did not write.")
    parser.add_argument("--resume", action="store_true",
                        help="Finish the world at REPO that an interrupted or failed rb-simulate left "
                        "incomplete: with the same options, the detector-visits already written are kept "
                        "and the others simulated, as an uninterrupted run would have.")
    parser.add_argument("--gallery", metavar="PNG", help="Also write a gallery of example triplets per class "
                        "(its path is checked before the simulation).")
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
    """Entry point of ``rb-simulate``.

    Returns
    -------
    status : `int`
        0 on success; 2 on a user error, found before anything is written
        (one line on stderr); 1 if writing the repository failed (a full
        disk, or a detector-visit refused after writing began: one line
        saying that REPO is left marked incomplete); 130 after a
        Ctrl-C (one line; REPO is left marked incomplete).
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    simulator = None
    try:
        config = build_config(args)
        if args.show_config:
            config.saveToStream(sys.stdout)
            return 0
        if args.overwrite and args.resume:
            raise CliError("give one of --overwrite (start again) and --resume (finish an incomplete world).")
        _check_repository(args.repo, args.overwrite, args.resume)
        gallery = None
        if args.gallery:
            from .gallery import check_gallery_output

            gallery = check_gallery_output(args.gallery, args.overwrite, option="--gallery")
        simulator = Simulator(config)
        summary = simulator.run(args.repo, jobs=args.jobs, overwrite=args.overwrite, resume=args.resume,
                                progress=False if args.no_progress else None,
                                register_only=args.register_only)
    except CliError as exc:
        print(f"rb-simulate: error: {exc}", file=sys.stderr)
        return 2
    except RealBogusError as exc:
        # Refused before anything was written (2), or failed after writing
        # began (1), which leaves REPO marked incomplete: say so.
        # A refusal before writing says itself what to do with REPO.
        written = simulator is not None and simulator.writing_began
        left = f"; {_left(args.repo)}" if written and world_state(args.repo) == "incomplete" else ""
        print(f"rb-simulate: error: {one_line(exc)}{left}", file=sys.stderr)
        return 1 if written else 2
    except KeyboardInterrupt:
        print(f"rb-simulate: interrupted; {_left(args.repo)}", file=sys.stderr)
        return 130
    except Exception as exc:
        os_error = _os_error(exc)
        if os_error is None:
            raise  # a bug: its traceback is what to report
        print(f"rb-simulate: error: {os_error.strerror or os_error} ({os_error.filename or 'writing'}); "
              f"{_left(args.repo)}", file=sys.stderr)
        return 1
    if args.register_only:
        print(f"registered {len(simulator.specs)} detector-visits in {args.repo}; simulate them with "
              f"pipelines/Simulate.yaml (-i {config.run}/config -o {config.run}).")
        return 0
    print(summary.format())
    if gallery:
        from .gallery import write_gallery_file

        try:
            write_gallery_file(args.repo, gallery, collections=config.run)
        except (RealBogusError, OSError) as exc:
            print(f"rb-simulate: error: the repository is complete, but the gallery was not written: "
                  f"{one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("rb-simulate: interrupted; the repository is complete, but the gallery was not written "
                  "(rb-gallery draws it).", file=sys.stderr)
            return 130
        print(f"gallery written to {args.gallery}")
    return 0


def _check_repository(repo: str, overwrite: bool, resume: bool) -> None:
    """Refuse, in the CLI's words, a REPO that may not be written."""
    state = world_state(repo)
    if state == "file":
        raise CliError(f"{repo} is a file; give a directory for the repository.")
    if state == "foreign":
        raise CliError(f"{repo} exists, is not empty and is not a Butler repository (no butler.yaml); choose "
                       "another path (--overwrite replaces only a Butler repository).")
    if state == "incomplete" and not (overwrite or resume):
        raise CliError(f"{repo} holds an incomplete rb-simulate world (interrupted?); re-run with --resume "
                       "to finish it or --overwrite to start again.")
    if state == "repository" and not (overwrite or resume):
        raise CliError(f"{repo} already holds a Butler repository; pass --overwrite to replace it.")


def _left(repo: str) -> str:
    """What an interrupted or failed run left at REPO, and what to do."""
    if world_state(repo) == "incomplete":
        return (f"{repo} is marked incomplete: re-run with --resume to finish it or --overwrite to start "
                "again.")
    return "nothing was written."


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError (a full disk...) behind an exception, if any: the Butler
    wraps a formatter's failures in a RuntimeError.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
