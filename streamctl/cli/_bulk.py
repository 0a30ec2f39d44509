"""What every bulk command (publish --file, import, replay, export, claim, dead-letter) shares:
one runner for the stop signals, the progress bar and the partial-failure report, and `no_gc`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from streamctl.cli._signals import StopRequest, graceful_stop
from streamctl.errors import PartialFailure

if TYPE_CHECKING:
    from rich.progress import Progress

    from streamctl.cli.context import AppContext


class BulkRun:
    """One bulk run: `should_stop` (SIGINT, SIGTERM, SIGHUP ask the work to stop between
    batches), `progress` (a bar on a terminal, nothing otherwise) and `stopped` (the one-line
    report of what was done before the stop, with the signal's exit code)."""

    def __init__(self, stop: StopRequest, bar: Progress | None) -> None:
        self._stop = stop
        self._bar = bar

    def should_stop(self) -> bool:
        return self._stop()

    def progress(self, completed: int) -> None:
        if self._bar is not None:
            self._bar.update(self._bar.task_ids[0], completed=completed)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._bar.task_ids[0], count)

    def stopped(self, report: str, *, done: int) -> PartialFailure:
        """'interrupted: <report>' (or terminated, hung up) as the error to raise."""
        return PartialFailure(
            f"{self._stop.name}: {report}", done=done, exit_code=self._stop.exit_code
        )


@contextmanager
def bulk_run(
    app_ctx: AppContext, description: str, total: int | None = None, *, show_bar: bool = True
) -> Iterator[BulkRun]:
    """The runner of a bulk command; the bar (if any) is gone when the block ends.
    `show_bar=False` where the command's own output goes to the terminal."""
    bar = app_ctx.progress_bar(description, total) if show_bar else None
    with graceful_stop() as stop:
        if bar is not None:
            bar.start()
        try:
            yield BulkRun(stop, bar)
        finally:
            if bar is not None:
                bar.stop()


@contextmanager
def rare_gc(threshold: int = 50_000) -> Iterator[None]:
    """For a run that may last days and makes many short-lived objects (tail): the cycle
    collector looks at the young objects every `threshold` allocations instead of 700 (a tail
    draining a backlog spent ~15% of its time in it) and still runs."""
    old = gc.get_threshold()
    gc.set_threshold(threshold, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@contextmanager
def no_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
