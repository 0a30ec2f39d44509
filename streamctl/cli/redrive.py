"""`redrive DLQ`: the way back from a dead-letter stream."""

from typing import Annotated, Any, Optional

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import AppContext, state
from streamctl.cli.options import MatchOption, OutputOption, WhereOption, entry_filter
from streamctl.errors import BadInput, PartialFailure
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("redrive")(redrive)


def redrive(
    ctx: typer.Context,
    dlq: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The dead-letter stream.")
    ],
    into: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--into",
            autocompletion=complete_stream,
            help="Publish every entry into this stream (default: each entry's dlq_stream).",
            metavar="STREAM",
        ),
    ] = None,
    start: Annotated[
        str,
        typer.Option(
            "--from", help="First DLQ id or time (inclusive; '(ID' after ID).", metavar="ID|TIME"
        ),
    ] = "-",
    end: Annotated[
        str,
        typer.Option("--to", help="Last DLQ id or time (inclusive).", metavar="ID|TIME"),
    ] = "+",
    match: MatchOption = None,
    where: WhereOption = None,
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--count", "-n", help="Redrive at most N entries.", metavar="N"),
    ] = None,
    rate: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--rate", help="At most N entries per second.", metavar="N"),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Copy the entries; leave the DLQ as it is.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go where; change nothing.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Re-publish the entries of dead-letter stream DLQ into the stream each came from (its
    dlq_stream field, or --into), without the dlq_* fields and with redriven_from=<DLQ id>,
    and delete them from DLQ. Each entry moves in one atomic step (XADD and XDEL in one script;
    on a cluster with the keys in different slots, with the idempotency marks of `pending
    --dead-letter`): a rerun after Ctrl-C, SIGTERM or a lost server never publishes an entry
    twice. --match/--where filter on the DLQ entry (dlq_* fields included). Entries without a
    usable dlq_stream are reported and left in place. Reports how many went to each stream and
    the last DLQ id handled.

    \b
    Examples:
      streamctl redrive orders-dlq --dry-run
      streamctl redrive orders-dlq --where "fields.dlq_group == 'billing'" --rate 200
      streamctl redrive orders-dlq --from 2026-11-27T10:00:00Z --into orders-retry --keep
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    if into is not None and into == dlq:
        raise BadInput("--into names the dead-letter stream itself: give the stream to publish to")
    entry_filter(match, where)  # a bad filter is exit 2 naming the flag, before anything runs
    for flag, value in (("--count", count), ("--rate", rate)):
        if value is not None and value <= 0:
            raise BadInput(f"bad {flag} {value:g}: give a number above 0")

    from streamctl.render.repairs import redrive_view

    result, stopped = _run(
        app_ctx,
        dlq,
        into=into,
        start=start,
        end=end,
        match=match or [],
        where=where,
        count=count,
        rate=rate,
        keep=keep,
        dry_run=dry_run,
    )
    app_ctx.emit(result, fmt, redrive_view)
    if stopped is not None:
        raise stopped


def _run(app_ctx: AppContext, dlq: str, **kw: Any) -> tuple[Any, PartialFailure | None]:
    """The run with a progress bar and signal handling; a stop comes back as the error to raise
    after the report is written."""
    from streamctl.cli._bulk import bulk_run

    with bulk_run(app_ctx, "redriving", kw["count"]) as run:
        result = app_ctx.sc.redrive(
            dlq,
            should_stop=run.should_stop,
            on_progress=lambda redriven, scanned: run.progress(redriven),
            **kw,
        )
    redrove = count_noun(result.redriven, "entry", "entries")
    if result.stopped:
        last = f"; last DLQ id handled {result.last_id}" if result.last_id else ""
        message = (
            f"redrove {redrove}{last}; the rest are still in "
            f"{dlq!r}: rerun the same command to continue"
        )
        return result, run.stopped(message, done=result.redriven)
    if not result.dry_run:
        where = ", ".join(f"{n:,} into {s!r}" for s, n in sorted(result.per_stream.items()))
        app_ctx.notice(
            f"redrove {redrove} from {dlq!r}"
            + (f" ({where})" if where else "")
            + (f"; {result.unusable_count:,} left in place" if result.unusable_count else "")
        )
    return result, None
