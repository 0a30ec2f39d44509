"""The root command: global options -> AppContext, the table of commands, errors -> exit codes.

Each command is a module of this package that defines `register(app)`, listed in COMMANDS.
Commands are loaded lazily: a run imports and builds only the command it invokes, and
core/render load inside the command, so a one-shot command stays close to the cost of
`import typer, redis` and `--help` loads neither redis nor rich. This module and the command
modules keep real annotations (no `from __future__ import annotations`): typer reads the
signature of the command it builds, and string annotations would each be compiled by eval.
"""

import difflib
import importlib
import os
import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from streamctl import __version__
from streamctl.cli._click import click, conventional_arguments
from streamctl.cli.context import AppContext
from streamctl.config import ENV_DEBUG, scrub
from streamctl.errors import ExitCode, OutputClosed, Stopped, StreamctlError

# Every command: its name -> the module of streamctl.cli that defines `register(app)`. The one
# place to add a command (tests/cli/test_app.py fails for a module with `register` not listed).
COMMANDS: dict[str, str] = {
    "ack": "ack",
    "bench": "bench",
    "check": "check",
    "completion": "completion",
    "demo": "demo",
    "doctor": "doctor",
    "export": "export",
    "group": "group",
    "import": "import_",
    "info": "info",
    "ls": "ls",
    "metrics": "metrics",
    "pending": "pending",
    "profile": "profile",
    "publish": "publish",
    "range": "range",
    "redrive": "redrive",
    "replay": "replay",
    "server": "server",
    "tail": "tail",
    "top": "top",
    "trace": "trace",
    "trim": "trim",
}


def _print_error(message: str, secrets: tuple[str, ...] = ()) -> None:
    line = " ".join(scrub(message, secrets).split())
    try:
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed, or its terminal gone (SIGHUP)
        pass


def _silence_stdout() -> None:
    # the reader went away: point stdout at /dev/null so the final flush cannot fail
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _debug() -> bool:
    return os.environ.get(ENV_DEBUG, "") not in ("", "0", "false", "no")


def _print_traceback(secrets: tuple[str, ...] = ()) -> None:
    import traceback

    sys.stderr.write(scrub(traceback.format_exc(), secrets))


def load_command(name: str, module_name: str) -> Any:
    """Import one command module and build its click command (a group for `group`)."""
    module = importlib.import_module(f"streamctl.cli.{module_name}")
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    module.register(holder)
    holder.callback()(lambda: None)  # makes typer build a group even for one command
    built = typer.main.get_group(holder)
    command = built.commands.get(name)
    if command is None:
        raise RuntimeError(f"streamctl.cli.{module_name} does not register a command {name!r}")
    conventional_arguments(command)
    return command


class StreamctlGroup(TyperGroup):
    """The root group: a lazy group as click documents it ("Defining lazily loaded
    subcommands": `list_commands`/`get_command` over the COMMANDS table, a command's module
    imported when it is invoked or asked for help), and every way a command can end mapped to
    the SPEC's exit codes, with one line on stderr."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(cmd_name, module)
        return self._loaded[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # TyperGroup suggests close names from `self.commands`, which holds none of ours
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as exc:
            close = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if close and "Did you mean" not in exc.message:
                names = ", ".join(repr(name) for name in close)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from streamctl.cli._complete import enable_shell_completion

        enable_shell_completion()  # nothing unless a shell asks (_STREAMCTL_COMPLETE is set)
        # the application object of this run: the root callback fills in the global options,
        # and the errors that end the run are worded (and scrubbed) with its settings
        app_ctx = extra.pop("obj", None)
        if not isinstance(app_ctx, AppContext):
            app_ctx = AppContext()
        try:
            code = run_guarded(
                lambda: super(StreamctlGroup, self).main(
                    args=args,
                    prog_name=prog_name or "streamctl",
                    complete_var=complete_var,
                    standalone_mode=False,
                    obj=app_ctx,
                    **extra,
                ),
                app_ctx,
            )
        finally:
            app_ctx.close()
        if standalone_mode:
            sys.exit(code)
        return code


def run_guarded(call: Any, app_ctx: AppContext | None = None) -> int:
    """Run the command; every way it can end becomes an exit code and at most one line on
    stderr, worded and scrubbed with the run's settings (`app_ctx`)."""
    ctx = app_ctx or AppContext()

    def error(message: str) -> None:
        _print_error(message, ctx.secrets)

    try:
        rv = call()
        return rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            sys.stdout.write(exc.ctx.get_help() + "\n")
        return ExitCode.USAGE
    except click.exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "streamctl"
        error(f"{exc.format_message()} (see '{cmd} --help')")
        return ExitCode.USAGE
    except click.exceptions.ClickException as exc:
        error(exc.format_message())
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        error("interrupted")
        return ExitCode.INTERRUPTED
    except Stopped as exc:  # a stop signal while a command owned a child process (server, demo)
        _print_error(exc.message)
        return exc.exit_code
    except OutputClosed:
        _silence_stdout()
        return ExitCode.OK
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.OK
    except StreamctlError as exc:
        if _debug():
            _print_traceback(ctx.secrets)
        error(exc.message)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes an exit code
        if _debug():
            _print_traceback(ctx.secrets)
        mapped = ctx.translate(exc)
        if mapped is not None:
            error(mapped.message)
            return mapped.exit_code
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error(f"unexpected {type(exc).__name__}: {text} (STREAMCTL_DEBUG=1 shows details)")
        return ExitCode.ERROR


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"streamctl {__version__}\n")
        raise typer.Exit(0)


app = typer.Typer(
    name="streamctl",
    cls=StreamctlGroup,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=(
        "Operate and inspect Redis Streams: publish, tail, consumer groups, pending entries, "
        "claims, dead letters, trimming, replay, export/import and health checks."
    ),
    epilog="Example: streamctl -u redis://localhost:6379/0 ls",
)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "-u",
            "--url",
            help="redis://[user:pass@]host:port/db, rediss:// (TLS), unix:///path.sock or "
            "redis+sentinel://[user:pass@]HOST:PORT[,HOST:PORT...]/MASTER[/DB] "
            "[env: STREAMCTL_URL, REDIS_URL; default redis://localhost:6379/0]",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "-P",
            "--profile",
            help="A named connection from the config file [env: STREAMCTL_PROFILE]",
        ),
    ] = None,
    config: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--config",
            help="Config file [env: STREAMCTL_CONFIG; default config.yaml in the app dir]",
            metavar="PATH",
        ),
    ] = None,
    cluster: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--cluster/--no-cluster", help="Force Redis Cluster mode (default: detect)"),
    ] = None,
    output: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            help="auto, table, json, ndjson or yaml [env: STREAMCTL_OUTPUT]",
            metavar="FMT",
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colors (NO_COLOR and FORCE_COLOR are honoured)")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Data only on stdout; no notices or progress")
    ] = False,
    timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--timeout",
            help="Connect and command timeout in seconds (default 5); blocking reads are not cut",
            metavar="SECONDS",
        ),
    ] = None,
    tls_ca: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--tls-ca", help="CA bundle for rediss:// [env: STREAMCTL_TLS_CA]", metavar="PATH"
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    app_ctx = ctx.obj if isinstance(ctx.obj, AppContext) else AppContext()
    app_ctx.url = url
    app_ctx.profile = profile
    app_ctx.config = config
    app_ctx.cluster = cluster
    app_ctx.output = output
    app_ctx.no_color = no_color
    app_ctx.quiet = quiet
    app_ctx.timeout = timeout
    app_ctx.tls_ca = tls_ca
    ctx.obj = app_ctx
    if output is not None:
        app_ctx.output_format()  # validate early: a bad -o is a usage error before any work


def main() -> None:
    app(prog_name="streamctl")
