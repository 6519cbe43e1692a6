"""Ctrl-C for long runs: the first one asks the run to stop after its current unit of work (a
batch, a post), so what is done is kept; a second one stops at once (KeyboardInterrupt).

    with StopOnCtrlC("stopping after this batch") as stop:
        for unit in work:
            do(unit)
            if stop.requested:
                break
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class StopOnCtrlC:
    """Sets `event` (a threading.Event, so other threads can watch it) on the first Ctrl-C."""

    def __init__(self, what_happens: str, event: threading.Event | None = None):
        self.what_happens = what_happens  # e.g. "stopping after this batch"
        self.event = event or threading.Event()
        self._previous = None

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():  # only it may take signals
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        log.warning("Ctrl-C: %s (press again to stop at once)", self.what_happens)

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
