"""The root command: global options -> AppContext, command discovery, errors -> exit codes.

Every module in this package (but the few below) is a command of the same name (`import_` is
`import`) and defines `register(app)`. Commands are loaded lazily: a run imports and builds only
the command it invokes, and core/render load inside the command, so a one-shot command stays
close to the cost of `import typer, redis` and `--help` loads neither redis nor rich.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from streamctl import __version__
from streamctl.cli._click import click
from streamctl.cli.context import AppContext, current_settings
from streamctl.config import ENV_DEBUG, scrub
from streamctl.errors import ExitCode, OutputClosed, Stopped, StreamctlError

NOT_COMMANDS = {"app", "context", "options"}


def _print_error(message: str) -> None:
    line = " ".join(scrub(message).split())
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


def _print_traceback() -> None:
    import traceback

    sys.stderr.write(scrub(traceback.format_exc()))


def command_modules() -> dict[str, str]:
    """{command name: module name} of the command modules in this package (no import)."""
    names = {}
    for filename in os.listdir(os.path.dirname(__file__)):
        module, ext = os.path.splitext(filename)
        if ext != ".py" or module in NOT_COMMANDS or module.startswith("_"):
            continue
        names[module.rstrip("_")] = module
    return dict(sorted(names.items()))


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
    _conventional_metavars(command)
    return command


def _conventional_metavars(command: Any) -> None:
    """Arguments shown as `STREAM [START] GROUP...` in usage lines, not typer's `{stream}`."""
    for sub in getattr(command, "commands", {}).values():
        _conventional_metavars(sub)
    for param in getattr(command, "params", []):
        if param.param_type_name != "argument" or param.metavar is not None:
            continue
        label = (param.name or "").upper() + ("..." if param.nargs != 1 else "")

        def make_metavar(
            ctx: Any = None, *, usage: bool = False, label: str = label, p: Any = param
        ) -> str:
            return f"[{label}]" if usage and not p.required else label

        param.make_metavar = make_metavar


class LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: names known up front, each built on first access."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = modules
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in self._modules:
                raise KeyError(name)
            self._built[name] = load_command(name, self._modules[name])
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._built.pop(name, None)
        self._modules.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._modules) | set(self._built)))

    def __len__(self) -> int:
        return len(set(self._modules) | set(self._built))


class StreamctlGroup(TyperGroup):
    """Loads commands lazily, and maps every way a command can end to the SPEC's exit codes,
    with one line on stderr."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(command_modules())

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
        code = run_guarded(
            lambda: super(StreamctlGroup, self).main(
                args=args,
                prog_name=prog_name or "streamctl",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


def run_guarded(call: Any) -> int:
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
        _print_error(f"{exc.format_message()} (see '{cmd} --help')")
        return ExitCode.USAGE
    except click.exceptions.ClickException as exc:
        _print_error(exc.format_message())
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _print_error("interrupted")
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
            _print_traceback()
        _print_error(exc.message)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes an exit code
        if _debug():
            _print_traceback()
        mapped = None
        if "redis" in sys.modules:
            from streamctl.core.connection import translate_error

            mapped = translate_error(exc, current_settings())
        if mapped is not None:
            _print_error(mapped.message)
            return mapped.exit_code
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _print_error(f"unexpected {type(exc).__name__}: {text} (STREAMCTL_DEBUG=1 shows details)")
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
            help="redis://[user:pass@]host:port/db, rediss:// (TLS) or unix:///path.sock "
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
    ctx.obj = AppContext(
        url=url,
        profile=profile,
        config=config,
        cluster=cluster,
        output=output,
        no_color=no_color,
        quiet=quiet,
        timeout=timeout,
        tls_ca=tls_ca,
    )
    if output is not None:
        ctx.obj.output_format()  # validate early: a bad -o is a usage error before any work


def main() -> None:
    app(prog_name="streamctl")
