from typing import Annotated

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption


def register(app: typer.Typer) -> None:
    app.command("info")(info)


def info(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to describe.")
    ],
    output: OutputOption = None,
) -> None:
    """Describe STREAM (XINFO STREAM): length, first/last/last-generated id and time, entries
    added, max deleted id, and its consumer groups.

    \b
    Example:
      streamctl info orders
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.tables import stream_info_view

    app_ctx.emit(app_ctx.sc.info(stream), fmt, stream_info_view)
