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

"""Stop a simulation between detector-visits when SIGINT arrives."""

from __future__ import annotations

__all__ = ["StopBetweenDetectorVisits"]

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any


class StopBetweenDetectorVisits:
    """Turn a SIGINT (Ctrl-C) during a simulation's writes into a
    `KeyboardInterrupt` at the next detector-visit boundary.

    A `KeyboardInterrupt` raised wherever the main thread happens to be
    (inside the registry's SQL, a datastore write, a pool's bookkeeping) can
    be caught below us; the world would then carry on and finish as though
    nothing had been asked. Here the first SIGINT is only recorded; `check`
    raises it where the simulator can stop cleanly, and leaving the context
    raises it if no `check` did, so a Ctrl-C always ends the run as
    interrupted, with the world marked incomplete. A second SIGINT raises
    at once, for a user who will not wait for the detector-visits in
    progress.

    Nothing is installed outside the main thread (where Python cannot
    install handlers) or where SIGINT is ignored (``nohup``, batch systems):
    SIGINT then behaves as it did.

    Attributes
    ----------
    requested : `bool`
        Whether a SIGINT has arrived since `__enter__`.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None
        self._installed = False

    def __enter__(self) -> StopBetweenDetectorVisits:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            # None: a handler not set from Python; give back the default.
            signal.signal(signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous)
            self._installed = False
        if exc_type is None:
            self.check()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise `KeyboardInterrupt` if a SIGINT has arrived.

        Raises
        ------
        KeyboardInterrupt
            Raised if SIGINT arrived since `__enter__`.
        """
        if self.requested:
            raise KeyboardInterrupt
