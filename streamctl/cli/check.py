from typing import TYPE_CHECKING, Annotated, Optional

import typer

from streamctl.cli._complete import complete_group, complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.errors import CheckFailed
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.models_health import CheckReport


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    ctx: typer.Context,
    streams: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            help="Streams to check (default: every stream).",
            show_default=False,
            autocompletion=complete_stream,
        ),
    ] = None,
    group: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--group",
            "-g",
            help="Check only this consumer group.",
            metavar="GROUP",
            autocompletion=complete_group,
        ),
    ] = None,
    max_lag: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--max-lag", help="Entries a group may have left to read.", metavar="N"),
    ] = None,
    max_pending: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-pending", help="Entries a group may hold delivered but unacked.", metavar="N"
        ),
    ] = None,
    max_idle: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--max-idle",
            help="How long a pending entry may wait since its last delivery (e.g. 5m).",
            metavar="DUR",
        ),
    ] = None,
    max_behind: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--max-behind",
            help="Time from a group's last delivered entry to the newest entry (e.g. 30s).",
            metavar="DUR",
        ),
    ] = None,
    max_length: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--max-length", help="Entries a stream may hold.", metavar="N"),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Health check for CI and cron: each stream and group against the thresholds given.

    Exit 0 when every check passes, 5 when any threshold is breached, 4 when a named stream
    or group does not exist. A value breaches its threshold when it is greater than it. With
    no threshold, the values are reported (and the check passes).

    \b
    Examples:
      streamctl check orders --group billing --max-lag 1000 --max-idle 5m
      streamctl check --max-pending 100 --max-behind 30s -o json
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.cli._bulk import no_gc
    from streamctl.render import health as render_health

    with no_gc():  # thousands of streams: many objects, no cycles
        report = app_ctx.sc.check(
            streams or [],
            group=group,
            max_length=max_length,
            max_lag=max_lag,
            max_pending=max_pending,
            max_idle=max_idle,
            max_behind=max_behind,
        )
    for where in report.approximate:
        app_ctx.notice(
            f"note: the PEL of {where} is too large to scan whole: its idle is a lower bound "
            "(the status is exact)"
        )
    app_ctx.emit(report, fmt, render_health.check_table)
    if report.breached:
        raise CheckFailed(_summary(report))


def _summary(report: "CheckReport") -> str:
    from streamctl.render.health import CHECK_LABELS, check_value

    breached = [r for r in report.results if r.breached]
    parts = [
        f"{r.stream}{'/' + r.group if r.group else ''} {CHECK_LABELS[r.check]} "
        f"{check_value(r.check, r.value)} > {check_value(r.check, r.max)}"
        for r in breached[:3]
    ]
    more = f" (and {len(breached) - 3} more)" if len(breached) > 3 else ""
    failed = count_noun(len(breached), "check", "checks", grouped=False)
    return f"{failed} breached: " + "; ".join(parts) + more
