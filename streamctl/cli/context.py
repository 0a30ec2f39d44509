"""The CLI's application object (ctx.obj): global options, the settings and the library Client
they give (built at first use), the consoles and the output helpers.

Nothing heavy is imported here: rich, yaml and redis load only when a command needs them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from streamctl.config import ENV_OUTPUT, Settings, resolve_settings
from streamctl.errors import BadInput, OutputClosed, StreamctlError
from streamctl.render.formats import FORMAT_HELP, FORMATS, resolve_output_format

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from streamctl.client import Client
    from streamctl.core.connection import Client as Redis


@dataclass
class AppContext:
    url: str | None = None
    profile: str | None = None
    config: str | None = None
    cluster: bool | None = None
    output: str | None = None
    no_color: bool = False
    quiet: bool = False
    timeout: float | None = None
    tls_ca: str | None = None
    _settings: Settings | None = None
    _library: Client | None = None
    _console: Console | None = None
    _err_console: Console | None = None

    # ---- connection ----

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve_settings(
                url=self.url,
                profile=self.profile,
                config_path=self.config,
                cluster=self.cluster,
                tls_ca=self.tls_ca,
                timeout=self.timeout,
            )
        return self._settings

    @property
    def sc(self) -> Client:
        """The library Client for the chosen server: every command calls its methods."""
        if self._library is None:
            from streamctl.client import Client

            self._library = Client(self.settings, wording="flags")
        return self._library

    def client(self, *, blocking: bool = False) -> Redis:
        """The redis-py client under `sc`; `blocking=True` has no socket timeout (BLOCK reads)."""
        return self.sc.blocking_redis if blocking else self.sc.redis

    @property
    def secrets(self) -> tuple[str, ...]:
        """What error output must mask (known once the settings are resolved)."""
        return self._settings.secrets if self._settings is not None else ()

    def translate(self, exc: BaseException) -> StreamctlError | None:
        """The error kind an exception stands for, worded with this run's server."""
        if self._library is not None:
            return self._library.translate(exc)
        if self._settings is None or "redis" not in sys.modules:
            return None
        from streamctl.core.connection import translate_error

        return translate_error(exc, self._settings)

    def close(self) -> None:
        if self._library is not None:
            self._library.close()

    # ---- output ----

    def requested_format(self, override: str | None = None) -> str:
        """The format asked for (flag after the command, global flag, env), before `auto`."""
        requested = (override or self.output or os.environ.get(ENV_OUTPUT) or "auto").lower()
        if requested not in FORMATS:
            raise BadInput(f"bad output format {requested!r}: accepted {FORMAT_HELP}")
        return requested

    def output_format(self, override: str | None = None, *, entries: bool = False) -> str:
        requested = self.requested_format(override)
        return resolve_output_format(requested, entries=entries, is_tty=self.stdout_is_tty)

    @property
    def stdout_is_tty(self) -> bool:
        try:
            return sys.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def stderr_is_tty(self) -> bool:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                no_color=self.no_color or None, highlight=False, soft_wrap=False
            )
        return self._console

    @property
    def err_console(self) -> Console:
        if self._err_console is None:
            from rich.console import Console

            self._err_console = Console(
                stderr=True, no_color=self.no_color or None, highlight=False
            )
        return self._err_console

    def write(self, text: str) -> None:
        """Write data to stdout and flush (entries are flushed as they come)."""
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise OutputClosed() from None

    def write_bytes(self, data: bytes) -> None:
        """Write encoded data to stdout and flush (the bulk entry paths)."""
        try:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise OutputClosed() from None

    def print(self, renderable: Any) -> None:
        """A Rich renderable (table) to stdout."""
        try:
            self.console.print(renderable)
        except BrokenPipeError:
            raise OutputClosed() from None

    def progress_bar(self, description: str, total: int | None = None) -> Progress | None:
        """A transient progress bar on stderr (one task), only on a terminal and without -q."""
        if self.quiet or not self.stderr_is_tty:
            return None
        from rich.progress import (
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err_console,
            transient=True,
            refresh_per_second=4,  # the refresh thread takes the GIL from the bulk work
        )
        progress.add_task(description, total=total)
        return progress

    def notice(self, message: str) -> None:
        """A notice on stderr, unless --quiet."""
        if not self.quiet:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    def emit(self, model: Any, fmt: str, table: Any = None) -> None:
        """Write a report: a Rich table (built by `table(model)`) or its plain data."""
        from streamctl.render import serialize

        if fmt == "table":
            if table is None:
                from streamctl.render.serialize import dump_yaml, to_data

                self.write(dump_yaml(to_data(model)))
            else:
                self.print(table(model))
            return
        self.write(serialize.dump(serialize.to_data(model), fmt))


def state(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # a command invoked without the root callback (tests)
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj
