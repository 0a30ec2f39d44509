"""`ack`: acknowledge pending entries of a consumer group."""

import sys
from typing import Annotated, Optional

import typer

from streamctl.cli._complete import complete_group, complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.errors import BadInput


def register(app: typer.Typer) -> None:
    app.command("ack")(ack)


def ack(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.", autocompletion=complete_stream)],
    group: Annotated[
        str, typer.Argument(help="The consumer group.", autocompletion=complete_group)
    ],
    ids: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="The ids to acknowledge.", show_default=False),
    ] = None,
    stdin: Annotated[
        bool,
        typer.Option(
            "--stdin",
            help="Read ids from stdin, one per line (bare ids, or the ndjson of `pending`).",
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Acknowledge IDs in GROUP (XACK) and report how many were acknowledged and how many were
    not pending. A missing group is exit 4 (XACK alone would answer 0).

    \b
    Examples:
      streamctl ack orders billing 1795773600000-0 1795773600000-1
      streamctl pending orders billing -c dead-1 -o ndjson | streamctl ack orders billing --stdin
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    if bool(ids) == stdin:
        raise BadInput("give the ids as arguments or with --stdin (one of them)")

    from streamctl.core.pending import read_id_lines
    from streamctl.render.groups import ack_view

    source = read_id_lines(sys.stdin) if stdin else (ids or [])
    app_ctx.emit(app_ctx.sc.ack(stream, group, source), fmt, ack_view)
