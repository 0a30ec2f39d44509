from typing import Annotated, Any

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import AppContext, state
from streamctl.cli.options import OutputOption
from streamctl.errors import BadInput, ExitCode


def register(app: typer.Typer) -> None:
    app.command("top")(top)


def top(
    ctx: typer.Context,
    pattern: Annotated[
        str, typer.Argument(help="A glob on stream names.", autocompletion=complete_stream)
    ] = "*",
    interval: Annotated[
        float,
        typer.Option("--interval", "-n", help="Seconds between refreshes.", metavar="SECONDS"),
    ] = 1.0,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Print one snapshot and exit (two samples --interval apart, for the rates).",
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """A live dashboard: per stream its length and incoming rate, per group its lag, pending
    entries, outgoing rate and oldest pending entry, with a sparkline of the last minute of
    rates. Ctrl-C quits.

    Rates come from the servers' counters: entries added per stream, entries read per group.
    A lag marked * was counted by streamctl (the server reported none).

    \b
    Examples:
      streamctl top 'orders*' --interval 2
      streamctl top --once -o json
    """
    app_ctx = state(ctx)
    if interval <= 0:
        raise BadInput(f"bad --interval {interval:g}: give a number of seconds above 0")
    if not once:
        if not app_ctx.stdout_is_tty:
            raise BadInput(
                "top is a live dashboard and needs a terminal: "
                "use --once for one snapshot (e.g. top --once -o json)"
            )
        _live(app_ctx, pattern, interval)
        return

    fmt = app_ctx.output_format(output)
    from streamctl.render import health as render_health

    report = app_ctx.sc.rates(pattern, interval)
    app_ctx.emit(report, fmt, render_health.top_table)


def _title(app_ctx: AppContext, pattern: str) -> str:
    where = app_ctx.settings.display_url
    return f"streamctl top  {where}" + (f"  {pattern}" if pattern != "*" else "")


def _live(app_ctx: AppContext, pattern: str, interval: float) -> None:
    import time

    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from streamctl.core.health import RateTracker
    from streamctl.errors import ConnectionFailed
    from streamctl.render.health import top_table

    tracker = RateTracker()
    title = _title(app_ctx, pattern)
    view: Any = Text(f"{title}\nsampling...")
    try:
        with Live(view, console=app_ctx.console, auto_refresh=False, transient=False) as live:
            while True:
                started = time.monotonic()
                try:
                    report = tracker.update(app_ctx.sc.snapshot(pattern))
                    view = top_table(report, title=title)
                    live.update(view, refresh=True)
                except Exception as exc:  # noqa: BLE001 - a server that goes away is shown, not fatal
                    mapped = app_ctx.translate(exc)
                    if not isinstance(mapped, ConnectionFailed):
                        raise
                    tracker = RateTracker()  # rates across the gap would be wrong
                    line = Text(f"{mapped.message}: retrying", style="bold red")
                    live.update(Group(view, line), refresh=True)
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None
