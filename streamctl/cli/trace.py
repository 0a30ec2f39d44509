"""`trace STREAM ID`: where is this entry?"""

from typing import Annotated, Optional

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)


def trace(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream of the entry.")
    ],
    entry_id: Annotated[
        str, typer.Argument(metavar="ID", help="The entry's id (full, or milliseconds).")
    ],
    dlq: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--dlq",
            autocompletion=complete_stream,
            help="Also find its copies in this dead-letter stream (repeatable).",
            metavar="DLQ",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Where is entry ID of STREAM? Its fields (or that it is gone), then its state in every
    consumer group: not-delivered (after the group's last-delivered id), pending (consumer,
    deliveries, idle), acked (delivered, no longer pending), deleted-while-pending (gone from the
    stream, still in the group's PEL) or gone (in neither). With --dlq, its dead-letter copies
    (found by their dlq_stream and dlq_id fields). Exit 4 when nothing knows the id.

    \b
    Examples:
      streamctl trace orders 1795773600000-3
      streamctl trace orders 1795773600000-3 --dlq orders-dlq -o json
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.repairs import trace_view

    app_ctx.emit(app_ctx.sc.trace(stream, entry_id, dlqs=dlq or []), fmt, trace_view)
