from typing import Annotated

import typer

from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)


def ls(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="A glob on stream names.")] = "*",
    memory: Annotated[bool, typer.Option("--memory", help="Add MEMORY USAGE per stream.")] = False,
    output: OutputOption = None,
) -> None:
    """List the streams on the server (SCAN ... TYPE stream): length, groups, first and last
    entry time, age of the last entry.

    \b
    Examples:
      streamctl ls
      streamctl ls 'orders.*' --memory -o json
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.tables import streams_table

    refused: list[str] = []
    streams = app_ctx.sc.streams(
        pattern, memory=memory, on_refused=lambda name, _: refused.append(name)
    )
    app_ctx.emit(streams, fmt, streams_table)
    if refused:
        shown = ", ".join(repr(n) for n in refused[:5]) + (", ..." if len(refused) > 5 else "")
        hidden = count_noun(len(refused), "stream", "streams", grouped=False)
        app_ctx.notice(f"{hidden} not shown: this user may not read them (NOPERM): {shown}")
