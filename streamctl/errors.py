"""Exit codes and the error kinds that carry them: the single source of truth for both."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes of the CLI; each error kind carries one (`exit_code`)."""

    OK = 0
    ERROR = 1  # the server refused, or an unexpected error
    USAGE = 2  # bad option, bad id, malformed input
    CONNECTION = 3  # cannot connect, authenticate, or the server timed out
    NOT_FOUND = 4  # stream, group or consumer does not exist
    CHECK_FAILED = 5  # a threshold was breached, or tail timed out
    UNSAFE = 6  # would lose data or needs confirmation: rerun with --force / --yes
    HANGUP = 129  # SIGHUP (128 + 1): the terminal went away, or `kill -HUP`
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


class StreamctlError(Exception):
    """An error with a one-line message for the user and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ServerRefused(StreamctlError):
    """The server refused the command (e.g. WRONGTYPE, NOPERM)."""

    exit_code = ExitCode.ERROR


class BadInput(StreamctlError):
    """A bad argument or input: what was wrong and what is accepted."""

    exit_code = ExitCode.USAGE


class ConnectionFailed(StreamctlError):
    """Cannot connect or authenticate, or the server timed out."""

    exit_code = ExitCode.CONNECTION


class NotFound(StreamctlError):
    """The stream, group or consumer does not exist."""

    exit_code = ExitCode.NOT_FOUND


class CheckFailed(StreamctlError):
    """A threshold was breached, or a wait timed out before it saw what was asked."""

    exit_code = ExitCode.CHECK_FAILED


class Refused(StreamctlError):
    """Refused because it would lose data or needs confirmation (rerun with force)."""

    exit_code = ExitCode.UNSAFE


class Interrupted(StreamctlError):
    """Raised by bulk work after it has reported its progress, so the exit code is 130/143."""

    exit_code = ExitCode.INTERRUPTED


class PartialFailure(StreamctlError):
    """Bulk work stopped part-way: `done` items were completed before the failure."""

    def __init__(self, message: str, *, done: int, exit_code: ExitCode) -> None:
        super().__init__(message, exit_code=exit_code)
        self.done = done


class OutputClosed(StreamctlError):
    """stdout was closed by the reader (`| head`): stop quietly with success."""

    exit_code = ExitCode.OK

    def __init__(self) -> None:
        super().__init__("output closed")


class Stopped(BaseException):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) arrived while a command owned child processes.

    A BaseException, as KeyboardInterrupt is, so that no `except Exception` on the way up
    swallows it; the root command maps it to its exit code (130, 143, 129) with one line."""

    def __init__(self, message: str, *, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
