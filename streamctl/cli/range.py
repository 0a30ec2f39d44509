from typing import Annotated, Optional

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import AppContext, state
from streamctl.cli.options import MatchOption, OutputOption, WhereOption, entry_filter
from streamctl.errors import BadInput


def register(app: typer.Typer) -> None:
    app.command("range")(range_command)


def entry_writer(app_ctx: AppContext, fmt: str):  # type: ignore[no-untyped-def]
    from streamctl.render.entries import EntryWriter

    return EntryWriter(fmt, app_ctx.write, app_ctx.print, app_ctx.write_bytes)


def range_command(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to read.")
    ],
    start: Annotated[
        str, typer.Argument(help="First id or time (inclusive; '(ID' exclusive).")
    ] = "-",
    end: Annotated[str, typer.Argument(help="Last id or time (inclusive).")] = "+",
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--count", "-n", help="At most N entries (with a filter: N passing).", metavar="N"
        ),
    ] = None,
    reverse: Annotated[
        bool, typer.Option("--reverse", "-r", help="Newest first (XREVRANGE).")
    ] = False,
    match: MatchOption = None,
    where: WhereOption = None,
    output: OutputOption = None,
) -> None:
    """Read entries of STREAM from START to END, in batches (bounded memory).

    \b
    Examples:
      streamctl range orders
      streamctl range orders 2026-11-27T10:00:00Z 2026-11-27 -o ndjson
      streamctl range orders --reverse --count 10
      streamctl range orders --match status=shipped --where 'to_number(fields.amount) > `100`'
    """
    app_ctx = state(ctx)
    if count is not None and count < 0:
        raise BadInput(f"bad --count {count}: give a count of 0 or more")
    selected = entry_filter(match, where)
    fmt = app_ctx.output_format(output, entries=True)

    from streamctl.cli._bulk import no_gc

    batches = app_ctx.sc.range_batches(
        stream, start, end, count=count, reverse=reverse, match=match or [], where=where
    )
    writer = entry_writer(app_ctx, fmt)

    with no_gc():
        writer.begin()
        for batch in batches:
            writer.batch(batch.stream, batch.entries)
        writer.end()
    if writer.count == 0 and fmt == "table":
        what = "" if selected is None else f" matching {selected.describe()}"
        app_ctx.notice(f"no entries{what} in {stream!r} between {start} and {end}")
