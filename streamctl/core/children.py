"""The one owner of child processes (the embedded server of `server` and `demo`).

`ChildProcesses` starts a child and stops it whatever ends the command: a normal return, an
error, or a stop signal. While it is open, SIGINT, SIGTERM and SIGHUP raise `Stopped` in the
main thread (130, 143, 129 = 128 + the signal's number), so the command unwinds through its
`finally` blocks; on the way out every child still running is stopped: terminated, waited for,
killed after a grace period. A signal that arrives while a child is being started or stopped
waits until that is done, so no child is ever started without being recorded, or left half
stopped. A signal the process inherited as ignored (`nohup`, a background job) stays ignored.

On Linux each child also asks the kernel for SIGTERM when its parent dies
(prctl PR_SET_PDEATHSIG): the safety net for a parent killed outright (SIGKILL), which runs no
code at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from streamctl.errors import ExitCode, Stopped

GRACE_SECONDS = 10.0  # a child that has not exited this long after SIGTERM is killed
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h

_STOPPED_BY = {
    signal.SIGINT: (ExitCode.INTERRUPTED, "interrupted"),
    signal.SIGTERM: (ExitCode.TERMINATED, "terminated"),
    signal.SIGHUP: (ExitCode.HANGUP, "hung up"),
}


def stopped_by(signum: int) -> Stopped:
    """The exception (message and exit code) for a stop signal."""
    code, word = _STOPPED_BY[signal.Signals(signum)]
    return Stopped(word, exit_code=code)


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    on_stopped: Callable[[], None] | None


class ChildProcesses:
    """Owns the children a command starts; use as a context manager around the command's work."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.signum: int | None = None  # the first stop signal received, if any
        self._children: list[_Child] = []
        self._previous: dict[int, Any] = {}
        self._holding = False  # starting or stopping a child: a signal waits until it is done
        self._raised = False

    def __enter__(self) -> ChildProcesses:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue  # ignored on purpose by whoever started us (nohup, `cmd &`)
                self._previous[signum] = previous
                signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop_all()
        finally:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if not self._holding:
            self._raised = True
            raise stopped_by(self.signum)

    @contextmanager
    def _held(self) -> Iterator[None]:
        """Signals wait until the block is done, then raise (unless one already did)."""
        outer = self._holding
        self._holding = True
        try:
            yield
        finally:
            self._holding = outer
        if not outer and self.signum is not None and not self._raised:
            self._raised = True
            raise stopped_by(self.signum)

    def start(
        self,
        args: list[str],
        *,
        stdout: int | None = None,
        on_stopped: Callable[[], None] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a child (stdin closed, stderr with stdout, both to `stdout` or nowhere);
        `on_stopped` runs once it has been stopped by this owner (e.g. to remove its files)."""
        with self._held():
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
            self._children.append(_Child(proc, on_stopped))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop one child: SIGTERM, wait up to the grace period, then SIGKILL. Idempotent."""
        with self._held():
            for child in [c for c in self._children if c.proc is proc]:
                self._children.remove(child)
                _end(child.proc, self.grace)
                if child.on_stopped is not None:
                    child.on_stopped()

    def stop_all(self) -> None:
        """Stop every child still owned, the newest first."""
        with self._held():
            for child in reversed(list(self._children)):
                self.stop(child.proc)


def _end(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the child SIGTERM when its parent dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child, between fork and exec
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was in place
            os._exit(1)

    return preexec
