"""Graceful stop for bulk work: SIGINT/SIGTERM/SIGHUP set a flag that the work checks between
batches, so what was done can be counted exactly and reported before exiting 130/143/129."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from streamctl.errors import ExitCode


class StopRequest:
    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> ExitCode:
        if self.signum == signal.SIGTERM:
            return ExitCode.TERMINATED
        if self.signum == signal.SIGHUP:
            return ExitCode.HANGUP
        return ExitCode.INTERRUPTED

    @property
    def name(self) -> str:
        if self.signum == signal.SIGTERM:
            return "terminated"
        if self.signum == signal.SIGHUP:
            return "hung up"
        return "interrupted"


@contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.signum is not None:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        stop.signum = signum

    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) is signal.SIG_IGN:
            continue  # ignored when we started (nohup, a background job): it stays ignored
        previous[s] = signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
