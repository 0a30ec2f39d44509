"""`group ls|create|destroy|setid|consumers|delconsumer|prune`: consumer groups and their
consumers."""

from typing import Annotated, Optional

import typer

from streamctl.cli._complete import complete_group, complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.wording import count_noun

group_app = typer.Typer(
    name="group",
    rich_markup_mode=None,
    no_args_is_help=True,
    help=(
        "Consumer groups of a stream: list, create, destroy, move (setid), consumers, prune.\n\n"
        "\b\nExample:\n  streamctl group ls orders"
    ),
)


def register(app: typer.Typer) -> None:
    app.add_typer(group_app, name="group")


StreamArg = Annotated[str, typer.Argument(help="The stream.", autocompletion=complete_stream)]
GroupArg = Annotated[str, typer.Argument(help="The consumer group.", autocompletion=complete_group)]


def _check_position(text: str, option: str) -> None:
    """The flag-worded check of a group position, before the Client parses it again."""
    from streamctl import ids
    from streamctl.errors import BadInput

    pos = ids.parse_position(text, allow_last=True)
    if pos.kind == "max":
        raise BadInput(f"bad {option} {text!r}: use $ for the end of the stream (only new entries)")


@group_app.command("ls")
def group_ls(ctx: typer.Context, stream: StreamArg, output: OutputOption = None) -> None:
    """List the consumer groups of STREAM: consumers, pending, last delivered id and time,
    entries read, lag (computed and marked when the server reports it unknown) and behind
    (time from the last delivered entry to the newest entry).

    \b
    Example:
      streamctl group ls orders
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.tables import groups_table

    app_ctx.emit(app_ctx.sc.groups(stream), fmt, groups_table)


@group_app.command("create")
def group_create(
    ctx: typer.Context,
    stream: StreamArg,
    group: GroupArg,
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            help="Deliver from here on: $ (only new entries), 0 (everything), an id or a time "
            "(that entry or time on), or (ID (after ID).",
            metavar="$|0|ID|TIME",
        ),
    ] = "$",
    no_mkstream: Annotated[
        bool, typer.Option("--no-mkstream", help="Fail (exit 4) if the stream does not exist.")
    ] = False,
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="An existing group is a success (idempotent).")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Create consumer group GROUP on STREAM (the stream too, unless --no-mkstream). A group
    started at an id or time gets ENTRIESREAD where it can be known, so its lag is known.

    \b
    Examples:
      streamctl group create orders billing
      streamctl group create orders audit --from 0 --exist-ok
      streamctl group create orders replay --from 2026-11-27T10:00:00Z
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    _check_position(from_, "--from")

    from streamctl.render.groups import create_view

    result = app_ctx.sc.create_group(
        stream, group, start=from_, mkstream=not no_mkstream, exist_ok=exist_ok
    )
    app_ctx.emit(result, fmt, create_view)


@group_app.command("destroy")
def group_destroy(
    ctx: typer.Context,
    stream: StreamArg,
    group: GroupArg,
    force: Annotated[
        bool, typer.Option("--force", help="Destroy it even with pending (unacked) entries.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Destroy consumer group GROUP. Refuses (exit 6) while it has pending entries, unless
    --force.

    \b
    Example:
      streamctl group destroy orders billing
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.groups import destroy_view

    app_ctx.emit(app_ctx.sc.destroy_group(stream, group, force=force), fmt, destroy_view)


@group_app.command("setid")
def group_setid(
    ctx: typer.Context,
    stream: StreamArg,
    group: GroupArg,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Deliver from here on: $ (skip to the end), 0 (everything again), an id or a "
            "time (that entry or time on), or (ID (after ID).",
            metavar="$|0|ID|TIME",
        ),
    ],
    execute: Annotated[
        bool, typer.Option("--execute", help="Apply the plan (without it nothing changes).")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Move GROUP's last-delivered id (rewind or skip ahead). Prints a plan by default: the
    current and new position with times, and how many entries will be delivered again or
    skipped; --execute applies it, with ENTRIESREAD where it can be known so lag stays known.
    Pending entries stay pending.

    \b
    Examples:
      streamctl group setid orders billing --to 2026-11-27T10:00:00Z
      streamctl group setid orders billing --to 2h --execute
      streamctl group setid orders billing --to '$' --execute
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    _check_position(to, "--to")

    from streamctl.render.groups import setid_view

    plan = app_ctx.sc.setid(stream, group, to, execute=execute)
    app_ctx.emit(plan, fmt, setid_view)
    if not execute and fmt != "table":
        app_ctx.notice("plan only, nothing changed: rerun with --execute to apply it")


@group_app.command("consumers")
def group_consumers(
    ctx: typer.Context, stream: StreamArg, group: GroupArg, output: OutputOption = None
) -> None:
    """List the consumers of GROUP: pending entries, idle (since its last attempt) and inactive
    (since its last successful read; Redis >= 7.2 and Valkey report it, else "-").

    \b
    Example:
      streamctl group consumers orders billing
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.groups import consumers_table

    app_ctx.emit(app_ctx.sc.consumers(stream, group), fmt, consumers_table)


@group_app.command("delconsumer")
def group_delconsumer(
    ctx: typer.Context,
    stream: StreamArg,
    group: GroupArg,
    consumer: Annotated[str, typer.Argument(help="The consumer to delete.")],
    reassign_to: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--reassign-to",
            help="First claim its pending entries for consumer OTHER, then delete it.",
            metavar="OTHER",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Delete it even though it owns pending entries (dropped)."),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Delete CONSUMER from GROUP. Refuses (exit 6) while it owns pending entries, unless
    --reassign-to OTHER (claims them for OTHER first) or --force (its entries leave the PEL
    unacknowledged).

    \b
    Examples:
      streamctl group delconsumer orders billing worker-1 --reassign-to worker-2
      streamctl group delconsumer orders billing worker-1 --force
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.groups import delconsumer_view

    result = app_ctx.sc.delete_consumer(
        stream, group, consumer, reassign_to=reassign_to, force=force
    )
    app_ctx.emit(result, fmt, delconsumer_view)


@group_app.command("prune")
def group_prune(
    ctx: typer.Context,
    stream: StreamArg,
    group: GroupArg,
    idle: Annotated[
        str,
        typer.Option(
            "--idle",
            help="Prune consumers idle this long or longer (e.g. 1h, 7d).",
            metavar="DUR",
        ),
    ],
    execute: Annotated[
        bool, typer.Option("--execute", help="Delete them (default: only show the plan).")
    ] = False,
    reassign_to: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--reassign-to",
            help="Also prune consumers owning pending entries: claim them for C first.",
            metavar="C",
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Remove the consumers of GROUP idle for --idle or longer that own no pending entries.
    Idleness is the server's `inactive` (time since the last successful read or claim; Redis
    7.2+, Valkey) where it reports it, else `idle`; the report says which. A plan by default
    (who goes, who stays and why); --execute deletes. Consumers owning pending entries stay,
    unless --reassign-to C, which claims their entries for C first.

    \b
    Examples:
      streamctl group prune orders billing --idle 7d
      streamctl group prune orders billing --idle 1h --reassign-to worker-1 --execute
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    from streamctl import ids

    ids.parse_duration(idle, what="--idle")

    from streamctl.render.repairs import prune_view

    plan = app_ctx.sc.prune_consumers(
        stream, group, idle=idle, reassign_to=reassign_to, execute=execute
    )
    app_ctx.emit(plan, fmt, prune_view)
    kept = [d for d in plan.consumers if not d.prune and d.pending and d.reason.startswith("owns")]
    if kept and reassign_to is None:
        app_ctx.notice(
            count_noun(
                len(kept),
                "idle consumer owns pending entries and stays",
                "idle consumers own pending entries and stay",
                grouped=False,
            )
            + ": --reassign-to C claims their entries for C first"
        )
